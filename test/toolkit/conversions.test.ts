// The conversion loop's decisions. The simulator runs no guest code (its createVcpu is
// UnsupportedError), so a port-level fake stands in for the vCPU: it hands out the exits a guest
// would cause, shaped as the kvm backend decodes them, and the conversions land on a simulated
// guest_memfd (profile 'inplace-v8') or on a fake VM recording KVM_SET_MEMORY_ATTRIBUTES.
import { describe, expect, it } from 'vitest';
import {
  ConversionBusyError,
  ConversionLoop,
  UnsupportedError,
  conversionMechanism,
  createGuest,
  open,
  probe,
  type GuestMemfd,
  type Kvm,
  type VcpuExit,
  type Vm,
} from '../../lib/index.js';
import { kvmError } from '../../lib/errors.js';
import { describeKvm } from '../helpers/kvm.js';

const P = 4096;
const DATA = 0x10_0000; // the data region's gpa
const U64 = (n: number) => BigInt.asUintN(64, BigInt(n));

/** A KVM_HC_MAP_GPA_RANGE exit as the kvm backend decodes it (vcpu.ts). */
function mapGpaRange(gpa: number, pages: number, priv: boolean): VcpuExit {
  const attributes = priv ? 0x10 : 0;
  return {
    reason: 'hypercall',
    nr: 12,
    args: [BigInt(gpa), BigInt(pages), BigInt(attributes), 0n, 0n, 0n],
    longMode: true,
    ret: 0n,
    mapGpaRange: { gpa, pages, size: pages * P, private: priv, pageSize: 4096, attributes },
  };
}
const fault = (gpa: number, size: number, priv: boolean): VcpuExit => ({
  reason: 'memory_fault',
  gpa,
  size,
  private: priv,
  flags: priv ? 8 : 0,
});
const fakeVcpu = (exits: VcpuExit[]) => ({ run: async () => exits.shift() ?? { reason: 'hlt' as const } });

function simSetup(profile: 'inplace-v8' | 'rfc-v5' = 'inplace-v8'): {
  kvm: Kvm;
  vm: Vm;
  gm: GuestMemfd;
  states: () => string;
} {
  const kvm = open({ backend: 'sim', profile });
  const vm = kvm.createVm({ type: 1 }); // both convert only on a VM with private memory (kvm_arch_has_private_mem)
  const gm = vm.createGuestMemfd({
    size: 16 * P,
    mmap: true,
    ...(profile === 'inplace-v8' ? { initShared: true } : {}),
  });
  vm.setMemoryRegion({ slot: 1, guestPhysAddr: DATA, size: 16 * P, guestMemfd: gm, guestMemfdOffset: 0 });
  const states = () =>
    gm
      .states()
      .map((e) => `${e.offset / P}+${e.length / P}:${e.state}`)
      .join(' ');
  return { kvm, vm, gm, states };
}
const regionsOf = (gm: GuestMemfd) => [{ guestPhysAddr: DATA, size: 16 * P, guestMemfd: gm }];

describe('ConversionLoop (port-level fake vCPU, simulated guest_memfd)', () => {
  it('answers MAP_GPA_RANGE both ways with ret 0 and stops at the first other exit', async () => {
    const { kvm, vm, gm, states } = simSetup();
    const loop = new ConversionLoop(kvm, vm, { regions: regionsOf(gm), enableHypercallExit: false });
    expect(loop.mechanism).toBe('guest-memfd');
    const toPrivate = mapGpaRange(DATA + 2 * P, 3, true);
    const io: VcpuExit = { reason: 'io', port: 0x4b55, direction: 'out', size: 4, count: 1, data: Buffer.alloc(4) };
    const exits = [toPrivate, io, mapGpaRange(DATA + 3 * P, 1, false)];
    expect(await loop.run(fakeVcpu(exits))).toBe(io);
    expect(toPrivate).toMatchObject({ ret: 0n });
    expect(states()).toBe('0+2:shared 2+3:private 5+11:shared');
    expect(await loop.run(fakeVcpu([{ reason: 'intr' }]))).toEqual({ reason: 'intr' }); // a kick is the caller's
    expect(await loop.run(fakeVcpu(exits))).toEqual({ reason: 'hlt' });
    expect(states()).toBe('0+2:shared 2+1:private 3+1:shared 4+1:private 5+11:shared');
    expect(loop.log.map((r) => [r.source, r.outcome, r.private])).toEqual([
      ['hypercall', 'converted', true],
      ['hypercall', 'converted', false],
    ]);
  });

  it('a memory fault converts its range to the state the guest wanted and the vCPU runs on (rfc-v5: arm64)', async () => {
    const { kvm, vm, gm, states } = simSetup('rfc-v5');
    const seen: unknown[] = [];
    const loop = new ConversionLoop(kvm, vm, {
      regions: regionsOf(gm),
      enableHypercallExit: false,
      onConverted: (r) => seen.push([r.gpa, r.outcome]),
    });
    expect(await loop.handle(fault(DATA + P, P, true))).toBe(true);
    expect(states()).toBe('0+1:shared 1+1:private 2+14:shared');
    expect(seen).toEqual([[DATA + P, 'converted']]);
  });

  it('x86 type 1: a memory fault is no request (its flag is the attribute): handed back, not logged, nothing converts', async () => {
    const { kvm, vm, gm, states } = simSetup();
    const asked: unknown[] = [];
    const loop = new ConversionLoop(kvm, vm, {
      regions: regionsOf(gm),
      enableHypercallExit: false,
      onRequest: (r) => void asked.push(r.source),
    });
    const f = fault(DATA + P, P, true);
    expect(await loop.handle(f)).toBe(false);
    expect(await loop.run(fakeVcpu([mapGpaRange(DATA, 1, true), f]))).toBe(f);
    expect(asked).toEqual(['hypercall']);
    expect(loop.log.map((r) => r.source)).toEqual(['hypercall']);
    expect(states()).toBe('0+1:private 1+15:shared');
  });

  it('the hook refuses: the hypercall gets -EPERM, the fault is handed back, nothing converts', async () => {
    const { kvm, vm, gm, states } = simSetup('rfc-v5');
    const asked: unknown[] = [];
    const loop = new ConversionLoop(kvm, vm, {
      regions: regionsOf(gm),
      enableHypercallExit: false,
      onRequest: (r) => (asked.push(r.source), false),
    });
    const hc = mapGpaRange(DATA, 1, true);
    expect(await loop.handle(hc)).toBe(true);
    expect(hc).toMatchObject({ ret: U64(-1) });
    const f = fault(DATA, P, true);
    expect(await loop.run(fakeVcpu([f]))).toBe(f);
    expect(asked).toEqual(['hypercall', 'memory_fault']);
    expect(states()).toBe('0+16:shared');
  });

  it('a range outside the regions is -EINVAL; a held page going private is -EAGAIN', async () => {
    const { kvm, vm, gm, states } = simSetup();
    const loop = new ConversionLoop(kvm, vm, { regions: regionsOf(gm), enableHypercallExit: false });
    const outside = mapGpaRange(DATA + 15 * P, 2, true);
    await loop.handle(outside);
    expect(outside).toMatchObject({ ret: U64(-22) });
    const hold = gm.hold(4 * P, P);
    const busy = mapGpaRange(DATA + 4 * P, 1, true);
    await loop.handle(busy);
    expect(busy).toMatchObject({ ret: U64(-11) });
    expect(loop.log.at(-1)).toMatchObject({ outcome: 'failed', error: expect.any(ConversionBusyError) });
    hold.release();
    expect(states()).toBe('0+16:shared');
  });

  it.each([
    [1, 'handed back'],
    [4, 'converted'],
  ] as const)('vm-attributes: KVM_SET_MEMORY_ATTRIBUTES on the VM (type %i: a fault is %s)', async (type, what) => {
    const calls: unknown[] = [];
    const vm = {
      type, // 4: KVM_X86_SNP_VM, where a fault's PRIVATE flag is the guest's C-bit (svm.c npf_interception)
      checkExtension: (cap: number) => (cap === 233 ? 8 : cap === 201 ? 1 << 12 : 0),
      enableCap: (cap: number, args: bigint[]) => (calls.push(['enableCap', cap, args]), 0),
      setMemoryAttributes: (gpa: number, size: number, a: { private: boolean }) =>
        calls.push(['attributes', gpa, size, a.private]),
    } as unknown as Vm;
    const loop = new ConversionLoop({ profile: 'vm-attributes', backend: 'kvm' } as Kvm, vm);
    expect(loop.mechanism).toBe('vm-attributes');
    const f = fault(0x2000, P, false);
    const stop = await loop.run(fakeVcpu([mapGpaRange(0x2000, 2, true), f]));
    expect(stop).toEqual(what === 'converted' ? { reason: 'hlt' } : f);
    expect(calls).toEqual([
      ['enableCap', 201, [4096n]],
      ['attributes', 0x2000, 2 * P, true],
      ...(what === 'converted' ? [['attributes', 0x2000, P, false]] : []),
    ]);
  });

  it('a fault whose conversion the kernel refuses throws its error (type 4, a fake VM)', async () => {
    const vm = {
      type: 4,
      checkExtension: (cap: number) => (cap === 233 ? 8 : 0),
      setMemoryAttributes: () => {
        throw kvmError('EAGAIN', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
      },
    } as unknown as Vm;
    const loop = new ConversionLoop({ profile: 'vm-attributes', backend: 'kvm' } as Kvm, vm, {
      enableHypercallExit: false,
    });
    await expect(loop.handle(fault(0x2000, P, true))).rejects.toMatchObject({ code: 'EAGAIN' });
    expect(loop.log).toMatchObject([{ source: 'memory_fault', outcome: 'failed' }]);
  });

  it('no mechanism, a VM without the private attribute, bad options: typed errors', () => {
    using pvm = open({ backend: 'sim', profile: 'linux-6.18-pvm' });
    expect(() => new ConversionLoop(pvm, pvm.createVm())).toThrow(
      expect.objectContaining({ name: 'UnsupportedError', feature: 'conversion' }),
    );
    const type0 = { type: 0, checkExtension: () => 0 } as unknown as Vm;
    expect(() => new ConversionLoop({ profile: 'vm-attributes', backend: 'kvm' } as Kvm, type0)).toThrow(
      UnsupportedError,
    );
    const { kvm, vm, gm } = simSetup();
    expect(() => new ConversionLoop(kvm, vm, { enableHypercallExit: false })).toThrow(TypeError); // no regions
    expect(() => new ConversionLoop(kvm, vm, { regions: regionsOf(gm), bogus: 1 } as never)).toThrow(TypeError);
    expect(() => new ConversionLoop(kvm, vm, { regions: regionsOf(gm), mechanism: 'vm-attributes' })).toThrow(
      UnsupportedError,
    );
    // The simulator has no KVM_ENABLE_CAP: asking for the hypercall exit there is UnsupportedError.
    expect(() => new ConversionLoop(kvm, vm, { regions: regionsOf(gm) })).toThrow(UnsupportedError);
  });
});

describeKvm('conversions on this kernel', () => {
  it('ConversionLoop is UnsupportedError exactly where the kernel names no mechanism for the VM (so on PVM)', () => {
    using kvm = open({ backend: 'kvm' });
    using vm = kvm.createVm();
    const m = conversionMechanism(kvm, vm);
    if (probe().profile === 'linux-6.18-pvm') expect(m).toBeNull();
    if (m === null) {
      expect(() => new ConversionLoop(kvm, vm)).toThrow(
        expect.objectContaining({ name: 'UnsupportedError', feature: 'conversion' }),
      );
    } else {
      const gm = vm.createGuestMemfd({ size: P, mmap: true });
      expect(new ConversionLoop(kvm, vm, { regions: [{ guestPhysAddr: 0, size: P, guestMemfd: gm }] }).mechanism).toBe(
        m,
      );
    }
  });

  it('KVM refuses hypercalls from CPL3 with -KVM_EPERM, without an exit (x86.c kvm_emulate_hypercall)', async () => {
    using kvm = open({ backend: 'kvm' });
    using vm = kvm.createVm();
    vm.enableCap('EXIT_HYPERCALL', [1n << 12n]);
    const src =
      '#include <kvm-gmem-guest.h>\nvoid guest_main(void) { GUEST_SYNC(kvm_map_gpa_range(0x100000, 4096, true)); }';
    using g = await createGuest(vm, { slot: 1, cpl: 3, program: { c: src } });
    expect(await g.run()).toMatchObject({ kind: 'sync', value: U64(-1) });
  });
});
