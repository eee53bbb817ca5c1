// The case runner: time limits, crashes kept to their case, outcomes made comparable JSON.
import { describe, expect, it } from 'vitest';
import { GROUPS, attempt, bytesDigest, cases, errorShape, runCases, type Case } from '../../lib/conformance/index.js';
import { withVm } from '../../lib/conformance/case.js';
import { open } from '../../lib/index.js';
import { ConversionBusyError, HostAccessError, KvmError, UnsupportedError } from '../../lib/errors.js';
import type { Kvm, Vm } from '../../lib/types.js';

const fakeKvm = {} as Kvm;

describe('conformance runner', () => {
  it('a case that throws or hangs is recorded as such and the cases after it still run', async () => {
    const suite: Case[] = [
      {
        id: 'a',
        group: 'fallocate',
        title: 'throws',
        run: async () => {
          throw new Error('boom');
        },
      },
      { id: 'b', group: 'fallocate', title: 'hangs', timeoutMs: 50, run: () => new Promise(() => {}) },
      {
        id: 'c',
        group: 'fallocate',
        title: 'unsupported',
        requires: () => 'not supported here: X',
        run: async () => 1,
      },
      { id: 'd', group: 'fallocate', title: 'fine', run: async () => ({ n: 10n, b: Buffer.alloc(4, 0xab) }) },
    ];
    const rs = await runCases(fakeKvm, suite);
    expect(rs.map((r) => r.status)).toEqual(['crashed', 'timeout', 'n/s', 'ran']);
    expect(rs[0]!.reason).toBe('Error: boom');
    expect(rs[1]!.reason).toBe('no result after 50 ms');
    expect(rs[2]!.reason).toBe('not supported here: X');
    expect(rs[3]!.outcome).toEqual({ n: 10, b: 'ab*4' });
  });

  it("a case that times out has its withVm VMs closed (a hung KVM_RUN is kicked out); the next case's stays open while it runs", async () => {
    using kvm = open({ backend: 'sim' });
    let hungVm: Vm | undefined;
    let nextVm: Vm | undefined;
    const suite: Case[] = [
      {
        id: 'hangs',
        group: 'fallocate',
        title: 'hangs inside withVm',
        timeoutMs: 50,
        run: (k) =>
          withVm(k, (vm) => {
            hungVm = vm;
            return new Promise(() => {});
          }),
      },
      { id: 'next', group: 'fallocate', title: 'fine', run: (k) => withVm(k, (vm) => ((nextVm = vm), vm.closed)) },
    ];
    const rs = await runCases(kvm, suite);
    expect(rs.map((r) => [r.status, r.outcome])).toEqual([
      ['timeout', undefined],
      ['ran', false],
    ]);
    expect(hungVm?.closed).toBe(true);
    expect(nextVm?.closed).toBe(true); // closed by its own withVm when it returned
  });

  it('a case that needs an mmap-able file, on a kernel without the flag, is n/s, not a crash (Debian 6.12)', async () => {
    const kernelWith = (mmap: boolean) =>
      ({ createVm: () => ({ guestMemfdFlags: () => ({ mmap, initShared: mmap }), close() {} }) }) as unknown as Kvm;
    const einval = new KvmError({ code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' });
    const suite: Case[] = [
      {
        id: 'a',
        group: 'mapping and SIGBUS',
        title: 'needs mmap',
        run: async () => {
          throw einval;
        },
      },
      {
        id: 'b',
        group: 'mapping and SIGBUS',
        title: 'another EINVAL',
        run: async () => {
          throw new KvmError({ code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_SET_USER_MEMORY_REGION2' });
        },
      },
    ];
    const without = await runCases(kernelWith(false), suite);
    expect(without.map((r) => r.status)).toEqual(['n/s', 'crashed']);
    expect(without[0]!.reason).toMatch(/^not supported here: GUEST_MEMFD_FLAG_MMAP/);
    // Where the kernel offers the flag, the same EINVAL is a real crash of the case.
    expect((await runCases(kernelWith(true), suite)).map((r) => r.status)).toEqual(['crashed', 'crashed']);
  });

  it('errors keep their class, code and public fields, never their message', async () => {
    expect(
      await attempt(() => {
        throw new KvmError({ code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_X', message: 'm' });
      }),
    ).toEqual({ error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_X' } });
    expect(errorShape(new HostAccessError(8192, 'write'))).toEqual({
      class: 'HostAccessError',
      code: 'SIGBUS',
      offset: 8192,
      access: 'write',
    });
    expect(errorShape(new ConversionBusyError(4096))).toEqual({
      class: 'ConversionBusyError',
      code: 'EAGAIN',
      errorOffset: 4096,
    });
    expect(errorShape(new UnsupportedError('hold'))).toEqual({
      class: 'UnsupportedError',
      code: 'ERR_KVM_UNSUPPORTED',
      feature: 'hold',
    });
    expect(await attempt(() => 5)).toEqual({ ok: 5 });
  });

  it('bytes read as runs while short, else as a digest', () => {
    expect(bytesDigest(Buffer.concat([Buffer.alloc(4096), Buffer.alloc(10, 0xaa)]))).toBe('00*4096 aa*10');
    expect(bytesDigest(Buffer.from(Array.from({ length: 64 }, (_, i) => i)))).toMatch(
      /^sha256:[0-9a-f]{16} \(64 bytes\)$/,
    );
  });

  it('the suite has 40+ cases with unique ids, covering every group', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
    expect(new Set(cases.map((c) => c.group))).toEqual(new Set(GROUPS));
  });
});
