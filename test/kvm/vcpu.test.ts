// vCPUs on the real kernel: every exit this machine produces from hand-assembled real-mode code,
// registers, run() and runSync(), concurrency, and closing under a pending run.
import { afterEach, expect, it } from 'vitest';
import { ClosedError, KvmError, open } from '../../lib/index.js';
import type { Regs } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { CODE_GPA, realModeGuest, type RealModeGuest } from './vcpu-fixture.js';

const OUT_IN_HLT = [
  0xba,
  0xf8,
  0x03, // mov dx, 0x3f8
  0xb0,
  0x41, //       mov al, 'A'
  0xee, //             out dx, al
  0xec, //             in al, dx
  0xa2,
  0x00,
  0x20, // mov [0x2000], al
  0xf4, //             hlt
];
const SPIN = [0xeb, 0xfe]; // jmp $
const OUT_LOOP = [
  0xba,
  0x10,
  0x00, // mov dx, 0x10
  0xee, //             l: out dx, al
  0xfe,
  0xc0, //       inc al
  0xeb,
  0xfb, //       jmp l
];

let guests: RealModeGuest[] = [];
function guest(code: number[]): RealModeGuest {
  const g = realModeGuest(code);
  guests.push(g);
  return g;
}
afterEach(() => {
  for (const g of guests) g.close();
  guests = [];
});

describeKvm('vcpu exits', () => {
  it('runSync decodes an io out, takes the in reply from exit.data, then halts', () => {
    const g = guest(OUT_IN_HLT);
    const out = g.vcpu.runSync();
    expect(out).toEqual({ reason: 'io', port: 0x3f8, direction: 'out', size: 1, count: 1, data: Buffer.from('A') });
    const inExit = g.vcpu.runSync();
    expect(inExit).toMatchObject({ reason: 'io', port: 0x3f8, direction: 'in', size: 1, count: 1 });
    if (inExit.reason !== 'io') throw new Error('unreachable');
    inExit.data[0] = 0x5a;
    expect(g.vcpu.runSync()).toEqual({ reason: 'hlt' });
    expect(g.map.read(0x2000, 1)[0]).toBe(0x5a);
  });

  it('run() resolves the same exits as runSync', async () => {
    const g = guest(OUT_IN_HLT);
    const p = g.vcpu.run();
    expect(p).toBeInstanceOf(Promise);
    expect(await p).toMatchObject({ reason: 'io', direction: 'out', data: Buffer.from('A') });
    const inExit = await g.vcpu.run();
    if (inExit.reason !== 'io') throw new Error(`expected io, got ${inExit.reason}`);
    inExit.data.writeUInt8(0x33);
    expect(await g.vcpu.run()).toEqual({ reason: 'hlt' });
    expect(g.map.read(0x2000, 1)[0]).toBe(0x33);
  });

  it('rep outsb hands out every byte in order, each exit carrying size * count bytes', () => {
    const g = guest([
      0xbe,
      0x00,
      0x20, // mov si, 0x2000
      0xb9,
      0x04,
      0x00, // mov cx, 4
      0xba,
      0x10,
      0x00, // mov dx, 0x10
      0xf3,
      0x6e, //       rep outsb
      0xf4, //             hlt
    ]);
    g.map.write(0x2000, Buffer.from([1, 2, 3, 4]));
    // KVM may batch the string (count > 1) or not (this AMD host exits once per byte).
    const got: number[] = [];
    for (let e = g.vcpu.runSync(); e.reason !== 'hlt'; e = g.vcpu.runSync()) {
      if (e.reason !== 'io') throw new Error(`unexpected ${e.reason}`);
      expect(e).toMatchObject({ port: 0x10, direction: 'out', size: 1 });
      expect(e.data.length).toBe(e.size * e.count);
      got.push(...e.data);
    }
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('a 16-bit out carries size 2', () => {
    const g = guest([0xba, 0x10, 0x00, 0xb8, 0x34, 0x12, 0xef, 0xf4]); // mov dx,0x10; mov ax,0x1234; out dx,ax; hlt
    expect(g.vcpu.runSync()).toMatchObject({ reason: 'io', size: 2, count: 1, data: Buffer.from([0x34, 0x12]) });
  });

  it('an access to an unmapped gpa exits as mmio: writes carry data, reads take the reply', async () => {
    const g = guest([
      0xb8,
      0x00,
      0x80, //             mov ax, 0x8000
      0x8e,
      0xd8, //                   mov ds, ax          ; ds base 0x80000: no slot there
      0xc6,
      0x06,
      0x10,
      0x00,
      0x99, // mov byte [0x10], 0x99
      0xa0,
      0x20,
      0x00, //             mov al, [0x20]
      0x31,
      0xdb, //                   xor bx, bx
      0x8e,
      0xdb, //                   mov ds, bx
      0xa2,
      0x00,
      0x20, //             mov [0x2000], al
      0xf4, //                         hlt
    ]);
    expect(await g.vcpu.run()).toEqual({
      reason: 'mmio',
      address: 0x80010,
      length: 1,
      isWrite: true,
      data: Buffer.from([0x99]),
    });
    const read = g.vcpu.runSync();
    expect(read).toMatchObject({ reason: 'mmio', address: 0x80020, length: 1, isWrite: false });
    if (read.reason !== 'mmio') throw new Error('unreachable');
    read.data[0] = 0x77;
    expect(g.vcpu.runSync()).toEqual({ reason: 'hlt' });
    expect(g.map.read(0x2000, 1)[0]).toBe(0x77);
  });

  it('a triple fault (ud2 in protected mode with an empty IDT) exits as shutdown', () => {
    const g = guest([0x0f, 0x0b]); // ud2
    const flat = { base: 0n, limit: 0xffffffff, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 };
    const data = { ...flat, selector: 0x10, type: 3 };
    g.vcpu.setSregs({
      cr0: g.vcpu.getSregs().cr0 | 1n, // PE
      cs: { ...flat, selector: 0x08, type: 11 },
      ds: data,
      es: data,
      ss: data,
      idt: { base: 0n, limit: 0 }, // #UD -> #GP -> #DF -> triple fault
    });
    expect(g.vcpu.runSync()).toEqual({ reason: 'shutdown' });
  });

  it('fetching code from a gpa without memory exits as internal_error with the suberror', () => {
    const g = guest([0xea, 0x00, 0x00, 0x00, 0x80]); // jmp 0x8000:0000 (no slot at 0x80000)
    const e = g.vcpu.runSync();
    expect(e.reason).toBe('internal_error');
    if (e.reason !== 'internal_error') throw new Error('unreachable');
    expect(e.suberror).toBe(1); // KVM_INTERNAL_ERROR_EMULATION
    expect(Array.isArray(e.data)).toBe(true);
  });
});

describeKvm('vcpu registers', () => {
  const names = [
    'rax',
    'rbx',
    'rcx',
    'rdx',
    'rsi',
    'rdi',
    'rsp',
    'rbp',
    'r8',
    'r9',
    'r10',
    'r11',
    'r12',
    'r13',
    'r14',
    'r15',
  ] as const;

  it('setRegs then getRegs round-trips every general register as bigints', () => {
    const g = guest([0xf4]);
    const want: Partial<Regs> = { rip: 0x1000n, rflags: 0x2n };
    names.forEach((n, i) => (want[n] = 0x0f01_0000_0000_0000n * BigInt(i + 1) + BigInt(i)));
    g.vcpu.setRegs(want);
    expect(g.vcpu.getRegs()).toEqual(want);
  });

  it('a partial setRegs keeps the other registers, and numbers are accepted', () => {
    const g = guest([0xf4]);
    g.vcpu.setRegs({ rax: 5n, rbx: 7 });
    g.vcpu.setRegs({ rbx: 9n });
    const r = g.vcpu.getRegs();
    expect(r.rax).toBe(5n);
    expect(r.rbx).toBe(9n);
    expect(r.rip).toBe(BigInt(CODE_GPA));
  });

  it('the guest computes with the registers the host set', () => {
    const g = guest([0x01, 0xd8, 0xf4]); // add ax, bx; hlt
    g.vcpu.setRegs({ rax: 40n, rbx: 2n });
    expect(g.vcpu.runSync()).toEqual({ reason: 'hlt' });
    expect(g.vcpu.getRegs().rax).toBe(42n);
    expect(g.vcpu.getRegs().rip).toBe(BigInt(CODE_GPA + 3));
  });

  it('getSregs and setSregs round-trip segments, tables and control registers', () => {
    const g = guest([0xf4]);
    const before = g.vcpu.getSregs();
    expect(before.cs).toMatchObject({ base: 0n, selector: 0, present: 1 });
    expect(typeof before.cr0).toBe('bigint');
    g.vcpu.setSregs({
      ds: { base: 0x12340n, selector: 0x1234, limit: 0xffff },
      gdt: { base: 0x5000n, limit: 0x27 },
      cr8: 3n,
    });
    const after = g.vcpu.getSregs();
    expect(after.ds).toMatchObject({ base: 0x12340n, selector: 0x1234, limit: 0xffff, type: before.ds.type });
    expect(after.gdt).toEqual({ base: 0x5000n, limit: 0x27 });
    expect(after.cr8).toBe(3n);
    expect(after.cs).toEqual(before.cs);
    expect(after.efer).toBe(before.efer);
  });

  it('the vcpu keeps its id', () => {
    const g = guest([0xf4]);
    expect(g.vcpu.id).toBe(0);
    const v = g.vm.createVcpu(7);
    expect(v.id).toBe(7);
  });
});

describeKvm('vcpu run() scheduling', () => {
  it('a long-running guest does not block the event loop and kick() returns intr', async () => {
    const g = guest(SPIN);
    const p = g.vcpu.run();
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (++ticks === 5) {
          clearInterval(t);
          resolve();
        }
      }, 2);
    });
    expect(ticks).toBe(5);
    g.vcpu.kick();
    expect(await p).toEqual({ reason: 'intr' });
    // The vCPU runs again afterwards (and still spins).
    const again = g.vcpu.run();
    await new Promise((r) => setTimeout(r, 5));
    g.vcpu.kick();
    expect(await again).toEqual({ reason: 'intr' });
  });

  it('kick() before a run makes that run return intr at once', async () => {
    const g = guest(SPIN);
    g.vcpu.kick();
    expect(g.vcpu.runSync()).toEqual({ reason: 'intr' });
    g.vcpu.kick();
    expect(await g.vcpu.run()).toEqual({ reason: 'intr' });
  });

  it('a second run while one is pending is refused, as are register calls', async () => {
    const g = guest(SPIN);
    const p = g.vcpu.run();
    await expect(g.vcpu.run()).rejects.toMatchObject({ code: 'ERR_KVM_VCPU_BUSY' });
    expect(() => g.vcpu.runSync()).toThrow(expect.objectContaining({ code: 'ERR_KVM_VCPU_BUSY' }));
    expect(() => g.vcpu.getRegs()).toThrow(expect.objectContaining({ code: 'ERR_KVM_VCPU_BUSY' }));
    g.vcpu.kick();
    await p;
    expect(g.vcpu.getRegs().rip).toBe(BigInt(CODE_GPA));
  });

  it('closing the VM while a run() is pending rejects it with ClosedError', async () => {
    const g = guest(SPIN);
    const p = g.vcpu.run();
    await new Promise((r) => setTimeout(r, 5));
    g.vm.close();
    await expect(p).rejects.toBeInstanceOf(ClosedError);
    expect(g.vcpu.closed).toBe(true);
  });

  it('closing the vcpu (or the Kvm) while run() is pending rejects it cleanly', async () => {
    const a = guest(SPIN);
    const pa = a.vcpu.run();
    a.vcpu.close();
    await expect(pa).rejects.toMatchObject({ code: 'ERR_KVM_CLOSED' });
    const b = guest(SPIN);
    const pb = b.vcpu.run();
    await new Promise((r) => setTimeout(r, 2));
    b.kvm.close();
    await expect(pb).rejects.toMatchObject({ code: 'ERR_KVM_CLOSED' });
  });

  it('many run() calls in flight across several VMs each get their own exits', async () => {
    const kvm = open({ backend: 'kvm' });
    try {
      const gs = Array.from({ length: 6 }, () => realModeGuest(OUT_LOOP, { kvm }));
      gs.forEach((g, i) => i % 2 === 0 && g.vcpu.setRunInline(0)); // half always on their thread
      const counts = await Promise.all(
        gs.map(async (g) => {
          const seen: number[] = [];
          for (let i = 0; i < 200; i++) {
            const e = await g.vcpu.run();
            if (e.reason !== 'io') throw new Error(`unexpected ${e.reason}`);
            seen.push(e.data[0]!);
          }
          return seen;
        }),
      );
      for (const seen of counts) expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i & 0xff));
      // And several long runs pending at once, all settled by kicks.
      for (const g of gs) g.vm.close();
      const spinners = Array.from({ length: 4 }, () => realModeGuest(SPIN, { kvm }));
      const pending = spinners.map((g) => g.vcpu.run());
      await new Promise((r) => setTimeout(r, 5));
      spinners.forEach((g) => g.vcpu.kick());
      expect(await Promise.all(pending)).toEqual(spinners.map(() => ({ reason: 'intr' })));
    } finally {
      kvm.close();
    }
  });
});

describeKvm('vcpu bad input and lifetime', () => {
  it('createVcpu checks its id before the kernel, and the kernel refuses a duplicate', () => {
    const g = guest([0xf4]);
    expect(() => g.vm.createVcpu(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => g.vm.createVcpu(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => g.vm.createVcpu('1' as unknown as number)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => g.vm.createVcpu(0)).toThrow(KvmError);
    expect(() => g.vm.createVcpu(0)).toThrow(expect.objectContaining({ code: 'EEXIST', ioctl: 'KVM_CREATE_VCPU' }));
  });

  it('setRegs and setSregs reject bad shapes and values before any ioctl', () => {
    const g = guest([0xf4]);
    const v = g.vcpu;
    const type = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' });
    const range = expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' });
    expect(() => v.setRegs(null as unknown as Regs)).toThrow(type);
    expect(() => v.setRegs({ rax: 'x' as unknown as bigint })).toThrow(type);
    expect(() => v.setRegs({ rpi: 1n } as unknown as Regs)).toThrow(type);
    expect(() => v.setRegs({ rax: -1n })).toThrow(range);
    expect(() => v.setRegs({ rax: 1n << 64n })).toThrow(range);
    expect(() => v.setSregs(5 as unknown as object)).toThrow(type);
    expect(() => v.setSregs({ cs: 1 } as unknown as object)).toThrow(type);
    expect(() => v.setSregs({ cs: { limit: 2 ** 33 } } as unknown as object)).toThrow(range);
    expect(() => v.setSregs({ cs: { selector: 0x10000 } } as unknown as object)).toThrow(range);
    expect(() => v.setSregs({ cr9: 1n } as unknown as object)).toThrow(type);
    expect(() => v.setSregs({ cr0: -1n })).toThrow(range);
    expect(() => v.setRunInline(-1)).toThrow(range);
    expect(() => v.setRunInline('1' as unknown as number)).toThrow(type);
    // Nothing above reached the vCPU.
    expect(v.getRegs().rax).toBe(0n);
  });

  it('a closed vcpu throws ClosedError everywhere; close is idempotent', async () => {
    const g = guest([0xf4]);
    const v = g.vcpu;
    v.close();
    v.close();
    v[Symbol.dispose]();
    expect(v.closed).toBe(true);
    expect(() => v.getRegs()).toThrow(ClosedError);
    expect(() => v.setRegs({ rax: 1n })).toThrow(ClosedError);
    expect(() => v.getSregs()).toThrow(ClosedError);
    expect(() => v.setSregs({})).toThrow(ClosedError);
    expect(() => v.runSync()).toThrow(ClosedError);
    expect(() => v.kick()).toThrow(ClosedError);
    await expect(v.run()).rejects.toBeInstanceOf(ClosedError);
  });

  it('a vcpu is closed with its VM, and creating one on a closed VM throws ClosedError', async () => {
    const g = guest([0xf4]);
    g.vm.close();
    expect(g.vcpu.closed).toBe(true);
    expect(() => g.vcpu.getRegs()).toThrow(expect.objectContaining({ code: 'ERR_KVM_CLOSED' }));
    await expect(g.vcpu.run()).rejects.toBeInstanceOf(ClosedError);
    expect(() => g.vm.createVcpu(1)).toThrow(ClosedError);
  });
});
