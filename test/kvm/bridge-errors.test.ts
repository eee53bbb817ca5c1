// The shape of every error the real backend throws, and what this kernel (no conversion ioctl)
// answers to the conversion calls.
import { openSync } from 'node:fs';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, HostAccessError, KvmError, UnsupportedError, open, type Kvm, type Vm } from '../../lib/index.js';
import { kvmError } from '../../lib/errors.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE, supported, thrown } from '../fixtures/kvm-cases.js';

const errno = os.constants.errno as Record<string, number>;

describeKvm('error shapes on the real backend', () => {
  let kvm: Kvm;
  let vm: Vm;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
  });
  afterEach(() => kvm.close());

  it('KvmError from an ioctl: code, negative errno, syscall, ioctl name, an Error whose message names the code', () => {
    const e = thrown(() => vm.createGuestMemfd({ size: 1 }));
    expect(e).toBeInstanceOf(KvmError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('KvmError');
    expect(e.code).toBe('EINVAL');
    expect(e.errno).toBe(-errno.EINVAL!);
    expect(e.syscall).toBe('ioctl');
    expect(e.ioctl).toBe('KVM_CREATE_GUEST_MEMFD');
    expect(e.message).toContain('EINVAL');
    expect(e.message).toContain('KVM_CREATE_GUEST_MEMFD');
    expect(typeof e.stack).toBe('string');
  });

  it("an ioctl's KvmError message ends with the arguments the kernel refused", () => {
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x1000, size: PAGE });
    expect(thrown(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x1000, size: PAGE })).message).toBe(
      'EEXIST: File exists, ioctl KVM_SET_USER_MEMORY_REGION2 (slot 1, flags 0x0, guest_phys_addr 0x1000, memory_size 4096, guest_memfd_offset 0)',
    );
    using gm = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true });
    expect(
      thrown(() =>
        vm.setMemoryRegion({
          slot: 2,
          guestPhysAddr: 0x100000,
          size: 2 * PAGE,
          guestMemfd: gm,
          guestMemfdOffset: PAGE,
        }),
      ).message,
    ).toBe(
      'EINVAL: Invalid argument, ioctl KVM_SET_USER_MEMORY_REGION2 (slot 2, flags 0x4, guest_phys_addr 0x100000, memory_size 8192, guest_memfd_offset 4096)',
    );
    expect(thrown(() => vm.createGuestMemfd({ size: 1000 })).message).toBe(
      'EINVAL: Invalid argument, ioctl KVM_CREATE_GUEST_MEMFD (size 1000, flags 0x0)',
    );
    vm.createVcpu(0);
    expect(thrown(() => vm.createVcpu(0)).message).toBe('EEXIST: File exists, ioctl KVM_CREATE_VCPU (id 0)');
    expect(thrown(() => vm.enableCap(9999)).message).toBe(
      'EINVAL: Invalid argument, ioctl KVM_ENABLE_CAP (cap 9999, flags 0x0)',
    );
    const attrs = thrown(() => vm.setMemoryAttributes(0, PAGE, { private: true }));
    expect(attrs.message).toMatch(
      /^E[A-Z]+: .*, ioctl KVM_SET_MEMORY_ATTRIBUTES \(address 0x0, size 4096, attributes 0x8\)$/,
    );
  });

  it('KvmError from mmap and fallocate names the syscall and no ioctl', () => {
    using plain = vm.createGuestMemfd({ size: PAGE });
    const m = thrown(() => plain.map());
    expect(m).toBeInstanceOf(KvmError);
    expect([m.code, m.errno, m.syscall, m.ioctl]).toEqual(['ENODEV', -errno.ENODEV!, 'mmap', undefined]);
    expect(m.message).toContain('ENODEV');
    const f = thrown(() => plain.punchHole(1, PAGE));
    expect([f.code, f.errno, f.syscall, f.ioctl]).toEqual(['EINVAL', -errno.EINVAL!, 'fallocate', undefined]);
  });

  it('KvmError from open matches what Node itself reports for the same path', () => {
    const ours = thrown(() => open({ backend: 'kvm', path: '/nonexistent/kvm' }));
    const node = thrown(() => openSync('/nonexistent/kvm', 'r+'));
    expect(ours).toBeInstanceOf(KvmError);
    expect([ours.code, ours.errno, ours.syscall]).toEqual([node.code, node.errno, node.syscall]);
  });

  it('the kernel and kvmError() build the same KvmError for the same failure', () => {
    const real = thrown(() => vm.createGuestMemfd({ size: PAGE, flags: 4 }));
    const made = kvmError('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD');
    expect(made).toBeInstanceOf(KvmError);
    for (const k of ['name', 'code', 'errno', 'syscall', 'ioctl'] as const) expect(made[k]).toBe(real[k]);
  });

  it('HostAccessError: code SIGBUS, the faulting offset, an Error', () => {
    using g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true });
    using m = g.map(PAGE);
    const e = thrown(() => m.write(5, Uint8Array.of(1)));
    expect(e).toBeInstanceOf(HostAccessError);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.offset, e.access]).toEqual(['HostAccessError', 'SIGBUS', PAGE + 5, 'write']);
    expect(e.message).toContain('SIGBUS');
    expect(thrown(() => m.read(0, 1)).access).toBe('read');
  });

  it('ClosedError: code ERR_KVM_CLOSED, an Error', () => {
    vm.close();
    const e = thrown(() => vm.guestMemfdFlags());
    expect(e).toBeInstanceOf(ClosedError);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code]).toEqual(['ClosedError', 'ERR_KVM_CLOSED']);
  });

  it('argument errors carry Node-style codes and are the built-in classes', () => {
    const t = thrown(() => vm.createGuestMemfd({ size: '4096' as never }));
    expect(t.constructor).toBe(TypeError);
    expect(t.code).toBe('ERR_INVALID_ARG_TYPE');
    const r = thrown(() => vm.createGuestMemfd({ size: -4096 }));
    expect(r.constructor).toBe(RangeError);
    expect(r.code).toBe('ERR_OUT_OF_RANGE');
  });
});

describeKvm('conversion on a kernel without it (6.18)', () => {
  let kvm: Kvm;
  let vm: Vm;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
  });
  afterEach(() => kvm.close());

  it('kvm.profile is null: no conversion mechanism found', () => {
    expect(kvm.profile).toBeNull();
  });

  it('setMemoryAttributes gives KvmError ENOTTY from KVM_SET_MEMORY_ATTRIBUTES', () => {
    for (const priv of [true, false]) {
      const e = thrown(() => vm.setMemoryAttributes(0, PAGE, { private: priv }));
      expect(e).toBeInstanceOf(KvmError);
      expect([e.code, e.errno, e.syscall, e.ioctl]).toEqual([
        'ENOTTY',
        -errno.ENOTTY!,
        'ioctl',
        'KVM_SET_MEMORY_ATTRIBUTES',
      ]);
    }
  });

  for (const fs of supported.flagSets) {
    describe(`flags ${fs.label}`, () => {
      it("share and unshare give UnsupportedError for 'in-place conversion'", () => {
        using g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: fs.mmap, initShared: fs.initShared });
        for (const call of [() => g.share(0, PAGE), () => g.unshare(PAGE, PAGE)]) {
          const e = thrown(call);
          expect(e).toBeInstanceOf(UnsupportedError);
          expect([e.code, e.feature]).toEqual(['ERR_KVM_UNSUPPORTED', 'in-place conversion']);
        }
      });

      it(`hold ${!fs.mmap ? 'gives ENODEV from mmap' : fs.initShared ? 'takes references on the shared pages' : 'of a private page gives EFAULT from vmsplice'}`, () => {
        using g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: fs.mmap, initShared: fs.initShared });
        if (fs.mmap && fs.initShared) {
          const h = g.hold(0, PAGE);
          expect([h.offset, h.length, h.released]).toEqual([0, PAGE, false]);
          h.release();
          expect(h.released).toBe(true);
          return;
        }
        const e = thrown(() => g.hold(0, PAGE));
        expect(e).toBeInstanceOf(KvmError);
        expect([e.code, e.syscall]).toEqual(fs.mmap ? ['EFAULT', 'vmsplice'] : ['ENODEV', 'mmap']);
      });

      it(`states() reports the whole file ${fs.initShared ? 'shared' : 'private'}, also for sub-ranges and after failed conversions`, () => {
        using g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: fs.mmap, initShared: fs.initShared });
        const state = fs.initShared ? 'shared' : 'private';
        expect(g.states()).toEqual([{ offset: 0, length: 4 * PAGE, state }]);
        expect(() => g.unshare(0, PAGE)).toThrow(UnsupportedError);
        expect(g.states(PAGE, 2 * PAGE)).toEqual([{ offset: PAGE, length: 2 * PAGE, state }]);
        expect(g.states(3 * PAGE)).toEqual([{ offset: 3 * PAGE, length: PAGE, state }]);
        expect(g.states(4 * PAGE)).toEqual([]);
      });
    });
  }
});
