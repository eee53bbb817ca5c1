// The guest builder on the real kernel: modes and privilege levels, exception reports instead of
// triple faults, both kinds of memory, the user's own slots left alone, and typed errors.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuestCompileError, UnsupportedError, createGuest, open, type Kvm, type Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

const CODE = 0x100000; // the program's offset in a long-mode region (layout.ts)
const withVm = async (fn: (kvm: Kvm, vm: Vm) => Promise<void>) => {
  using kvm = open({ backend: 'kvm' });
  using vm = kvm.createVm();
  await fn(kvm, vm);
};

describeKvm('createGuest on the real kernel', () => {
  it.each([3, 0] as const)('ud2 at CPL%i is a #UD report with its rip and code segment, not a triple fault', (cpl) =>
    withVm(async (_kvm, vm) => {
      const g = await createGuest(vm, {
        slot: 2,
        guestPhysAddr: 0x4000_0000,
        cpl,
        program: { code: Buffer.from([0x90, 0x0f, 0x0b]) },
      });
      const ev = await g.run();
      expect(ev).toMatchObject({
        kind: 'exception',
        vector: 6,
        name: 'UD',
        errorCode: 0,
        rip: BigInt(0x4000_0000 + CODE + 1),
        cs: cpl === 3 ? 0x2b : 0x08,
      });
      expect(await g.run()).toBe(ev); // stopped: the same report again, the vCPU is not run
    }),
  );

  it('a kick stops a spinning guest: run() gives the intr exit back, and the guest can run on', () =>
    withVm(async (_kvm, vm) => {
      const g = await createGuest(vm, { slot: 2, program: { code: Buffer.from([0xeb, 0xfe]) } }); // jmp $
      setTimeout(() => g.vcpu.kick(), 50);
      expect(await g.run()).toEqual({ kind: 'exit', exit: { reason: 'intr' } });
      expect(g.vcpu.getRegs().rip).toBe(BigInt(g.entry));
    }));

  it('a page fault at CPL3 reports the error code and cr2', () =>
    withVm(async (_kvm, vm) => {
      // mov rax, [0xffffffff80000000] (disp32, sign-extended): nothing maps it
      const g = await createGuest(vm, {
        slot: 2,
        program: { code: Buffer.from([0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0x80]) },
      });
      expect(await g.run()).toMatchObject({
        kind: 'exception',
        vector: 14,
        name: 'PF',
        errorCode: 4,
        cr2: 0xffffffff80000000n,
      });
    }));

  it('real mode: a division by zero is #DE at its ip; `out` comes back as an exit', () =>
    withVm(async (_kvm, vm) => {
      // out 0x80, al; xor cx, cx; div cx
      const g = await createGuest(vm, {
        slot: 2,
        mode: 'real',
        guestPhysAddr: 0x20000,
        program: { code: Buffer.from([0xe6, 0x80, 0x31, 0xc9, 0xf7, 0xf1]) },
      });
      expect(await g.run()).toMatchObject({ kind: 'exit', exit: { reason: 'io', port: 0x80, direction: 'out' } });
      expect(await g.run()).toMatchObject({ kind: 'exception', vector: 0, name: 'DE', rip: 0x1004n, cs: 0x2000 });
    }));

  it.each(['guest_memfd', 'plain'] as const)(
    "memory %s: the guest reads the user's own slot, which stays as it was",
    (memory) =>
      withVm(async (_kvm, vm) => {
        const gm = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
        const map = gm.map();
        map.write(0x1000, Buffer.from('8877665544332211', 'hex'));
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gm, userspace: map });
        const src =
          '#include <kvm-gmem-guest.h>\nvoid guest_main(void) { GUEST_SYNC(*(volatile uint64_t *)0x1000); *(volatile uint8_t *)0x2000 = 0xab; }';
        using g = await createGuest(vm, { slot: 7, guestPhysAddr: 0x8000_0000, memory, program: { c: src } });
        expect(g.region).toMatchObject({ slot: 7, gpa: 0x8000_0000, memory });
        expect(await g.run()).toMatchObject({ kind: 'sync', value: 0x1122334455667788n });
        expect(await g.run()).toEqual({ kind: 'done' });
        expect(map.read(0x2000, 1)[0]).toBe(0xab);
        expect(await vm.guest.read(0x1000, 8)).toEqual(Buffer.from('8877665544332211', 'hex'));
      }),
  );

  it("memoryVm: the region lives in another VM's file, bound as a plain slot (what a type-1 VM needs)", () =>
    withVm(async (kvm, vm) => {
      using donor = kvm.createVm();
      const src = '#include <kvm-gmem-guest.h>\nstatic uint64_t x = 41;\nvoid guest_main(void) { x++; GUEST_SYNC(x); }';
      await expect(createGuest(vm, { slot: 1, memoryVm: donor, program: { c: src } })).rejects.toThrow(RangeError);
      using g = await createGuest(vm, { slot: 1, memoryVm: donor, memory: 'plain', program: { c: src } });
      const syncs: bigint[] = [];
      await g.runToDone((v) => void syncs.push(v));
      expect(syncs).toEqual([42n]);
      expect(g.region.guestMemfd.closed).toBe(false);
    }));

  it('above 4 GiB (the ucall address then comes from rdi; -mcmodel=large): sync and assert as below', () =>
    withVm(async (_kvm, vm) => {
      const src =
        '#include <kvm-gmem-guest.h>\nstatic uint64_t v = 7;\nvoid guest_main(void) { GUEST_SYNC(&v); GUEST_ASSERT(v == 8); }';
      using g = await createGuest(vm, { slot: 5, guestPhysAddr: 0x1_4000_0000, program: { c: src } });
      const ev = await g.run();
      expect(ev).toMatchObject({ kind: 'sync' });
      const at = (ev as { value: bigint }).value;
      expect(at > 0x1_4000_0000n).toBe(true);
      expect(g.read(at, 8).readBigUInt64LE(0)).toBe(7n);
      expect(await g.run()).toEqual({ kind: 'assert', file: 'guest.c', line: 3, expr: 'v == 8' });
    }));

  it('GUEST_ASSERT_EQ reports both values; returning from guest_main is done', () =>
    withVm(async (_kvm, vm) => {
      const src =
        '#include <kvm-gmem-guest.h>\nvoid guest_main(void) { volatile int x = 3; GUEST_ASSERT_EQ(x + 1, 5); }';
      const g = await createGuest(vm, { slot: 3, program: { c: src, filename: 'eq.c' } });
      expect(await g.run()).toEqual({ kind: 'assert', file: 'eq.c', line: 2, expr: 'x + 1 == 5', values: [4n, 5n] });
      await expect(g.runToDone()).rejects.toMatchObject({
        code: 'ERR_GUEST_STOPPED',
        event: { kind: 'assert', line: 2 },
      });
      const g2 = await createGuest(vm, {
        slot: 4,
        guestPhysAddr: 0x8000_0000,
        vcpuId: 1,
        program: { c: '#include <kvm-gmem-guest.h>\nvoid guest_main(void) {}' },
      });
      expect(await g2.run()).toEqual({ kind: 'done' });
    }));

  it('a compiler failure is a GuestCompileError with its diagnostics; no compiler is UnsupportedError', () =>
    withVm(async (_kvm, vm) => {
      const bad = createGuest(vm, { slot: 2, program: { c: 'void guest_main(void) { undeclared_thing = 1; }' } });
      await expect(bad).rejects.toBeInstanceOf(GuestCompileError);
      await expect(bad).rejects.toMatchObject({
        code: 'ERR_GUEST_COMPILE',
        diagnostics: expect.stringContaining('undeclared_thing'),
      });
      const none = createGuest(vm, { slot: 2, program: { c: 'void guest_main(void) {}', cc: '/nonexistent/cc' } });
      await expect(none).rejects.toBeInstanceOf(UnsupportedError);
      await expect(none).rejects.toMatchObject({ feature: 'c-compiler' });
      // Nothing was set up: the slot is free for the next guest.
      const g = await createGuest(vm, { slot: 2, program: { code: Buffer.from([0x0f, 0x0b]) } });
      expect(await g.run()).toMatchObject({ vector: 6 });
    }));

  it('bad options are typed errors before any slot is set', () =>
    withVm(async (_kvm, vm) => {
      const code = { code: Buffer.from([0xf4]) };
      await expect(createGuest(vm, { slot: 1, program: code, bogus: 1 } as never)).rejects.toThrow(TypeError);
      await expect(createGuest(vm, { slot: 1, program: code, cpl: 2 as never })).rejects.toThrow(RangeError);
      await expect(createGuest(vm, { slot: 1, program: code, size: 0x1000 })).rejects.toThrow(RangeError);
      await expect(createGuest(vm, { slot: 1, program: code, mode: 'real', guestPhysAddr: 0x100000 })).rejects.toThrow(
        RangeError,
      );
      await expect(createGuest(vm, { slot: 1, program: { elf: Buffer.from('not an elf') } })).rejects.toThrow(
        TypeError,
      );
      await expect(createGuest(vm, { slot: 1, program: { code: Buffer.alloc(0x400000) } })).rejects.toThrow(RangeError);
      await expect(
        createGuest(vm, {
          slot: 1,
          program: { c: '#include <kvm-gmem-guest.h>\nvoid guest_main(void) {}' },
          mode: 'real',
        }),
      ).rejects.toThrow(TypeError);
      // vm.guest finds no slot at the default gpa: nothing was left behind.
      await expect(vm.guest.read(0x4000_0000, 1)).rejects.toThrow(RangeError);
    }));
});

describe('createGuest on the simulator', () => {
  it('is UnsupportedError (the simulator models memory, not CPUs) and sets no slot', async () => {
    using kvm = open({ backend: 'sim' });
    const vm = kvm.createVm();
    await expect(createGuest(vm, { slot: 1, program: { code: Buffer.from([0xf4]) } })).rejects.toBeInstanceOf(
      UnsupportedError,
    );
    await expect(vm.guest.read(0x4000_0000, 1)).rejects.toThrow(RangeError);
  });

  it('the package ships the guest header', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('guest');
    expect(readFileSync(path.resolve(__dirname, '../../guest/kvm-gmem-guest.h'), 'utf8')).toMatch(/#define GUEST_SYNC/);
  });
});
