// The vCPU configuration calls: CPUID (supported, a vCPU's own, set), MSRs (index list, get,
// set, a refused index named), KVM_ENABLE_CAP, and KVM_PRE_FAULT_MEMORY where this kernel lacks
// it (UnsupportedError). The simulator has no vCPUs: its answers are UnsupportedError too.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KvmError, UnsupportedError, open, type Kvm, type Vcpu, type Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

const IA32_SYSENTER_CS = 0x174;
const IA32_TSC = 0x10;

describeKvm('vCPU configuration on the real kernel', () => {
  let kvm: Kvm;
  let vm: Vm;
  let vcpu: Vcpu;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
    vcpu = vm.createVcpu(0);
  });
  afterEach(() => kvm.close());

  it('supportedCpuid has leaf 0 with the vendor; the vCPU was given exactly that set', () => {
    const supported = kvm.supportedCpuid();
    const leaf0 = supported.find((e) => e.function === 0)!;
    const vendor = Buffer.alloc(12);
    [leaf0.ebx, leaf0.edx, leaf0.ecx].forEach((w, i) => vendor.writeUInt32LE(w, i * 4));
    expect(['GenuineIntel', 'AuthenticAMD']).toContain(vendor.toString('latin1'));
    const mine = vcpu.getCpuid();
    const key = (e: { function: number; index: number }) => `${e.function}.${e.index}`;
    for (const e of mine) expect(supported.map(key)).toContain(key(e));
    expect(mine.find((e) => e.function === 0)).toEqual(leaf0);
  });

  it('setCpuid replaces the vCPU CPUID: a changed leaf reads back changed', () => {
    const entries = kvm.supportedCpuid().filter((e) => e.function !== 0x40000000);
    const leaf1 = entries.find((e) => e.function === 1)!;
    // ebx of leaf 1 (APIC id, CLFLUSH size, ...) is the guest's as given; ecx KVM adjusts itself.
    leaf1.ebx = 0x12345678;
    vcpu.setCpuid(entries);
    expect(vcpu.getCpuid().find((e) => e.function === 1)!.ebx).toBe(0x12345678);
    expect(vcpu.getCpuid().some((e) => e.function === 0x40000000)).toBe(false);
  });

  it('MSRs: the index list has SYSENTER_CS; set and get round-trip; the TSC moves', () => {
    expect(kvm.msrIndexList()).toContain(IA32_SYSENTER_CS);
    vcpu.setMsrs([{ index: IA32_SYSENTER_CS, value: 0x10 }]);
    const [cs, tsc1] = vcpu.getMsrs([IA32_SYSENTER_CS, IA32_TSC]);
    expect(cs).toBe(0x10n);
    const [tsc2] = vcpu.getMsrs([IA32_TSC]);
    expect(tsc2! > tsc1!).toBe(true);
  });

  it('an MSR the kernel refuses is a KvmError naming it and the count processed', () => {
    expect(() => vcpu.getMsrs([IA32_SYSENTER_CS, 0xdeadbeef])).toThrow(
      expect.objectContaining({
        name: 'KvmError',
        code: 'EINVAL',
        ioctl: 'KVM_GET_MSRS',
        index: 0xdeadbeef,
        processed: 1,
      }),
    );
    expect(() => vcpu.setMsrs([{ index: 0xdeadbeef, value: 1n }])).toThrow(
      expect.objectContaining({ code: 'EINVAL', ioctl: 'KVM_SET_MSRS', index: 0xdeadbeef, processed: 0 }),
    );
  });

  it('enableCap: KVM_CAP_EXIT_HYPERCALL with a mask the VM offers works, another is EINVAL', () => {
    const mask = vm.checkExtension('EXIT_HYPERCALL');
    expect(mask).not.toBe(0);
    expect(vm.enableCap('EXIT_HYPERCALL', [mask])).toBe(0);
    const bad = (() => {
      try {
        vm.enableCap('EXIT_HYPERCALL', [1n << 40n]);
      } catch (e) {
        return e;
      }
    })();
    expect(bad).toBeInstanceOf(KvmError);
    expect(bad).toMatchObject({ code: 'EINVAL', ioctl: 'KVM_ENABLE_CAP' });
  });

  it('preFaultMemory: UnsupportedError where KVM_CAP_PRE_FAULT_MEMORY is 0, after the argument checks', () => {
    expect(() => vcpu.preFaultMemory(-1, 4096)).toThrow(RangeError);
    if (vm.checkExtension('PRE_FAULT_MEMORY') === 0) {
      expect(() => vcpu.preFaultMemory(0, 4096)).toThrow(UnsupportedError);
    } else {
      vm.setMemoryRegion({
        slot: 0,
        guestPhysAddr: 0,
        size: 1 << 21,
        userspace: vm.createGuestMemfd({ size: 1 << 21, mmap: true, initShared: true }).map(),
      });
      vcpu.preFaultMemory(0, 1 << 21);
      expect(() => vcpu.preFaultMemory(1 << 22, 4096)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    }
  });

  it('bad arguments are typed errors before any ioctl', () => {
    expect(() => vcpu.setCpuid([{ function: 0, bogus: 1 } as never])).toThrow(TypeError);
    expect(() => vcpu.setCpuid('x' as never)).toThrow(TypeError);
    expect(() => vcpu.getMsrs([-1])).toThrow(RangeError);
    expect(() => vcpu.setMsrs([{ index: 1 } as never])).toThrow(TypeError);
    expect(() => vm.enableCap('EXIT_HYPERCALL', [1, 2, 3, 4, 5])).toThrow(RangeError);
    expect(() => vm.enableCap('NO_SUCH_CAP')).toThrow(RangeError);
  });

  it('after close: ClosedError', () => {
    vcpu.close();
    expect(() => vcpu.getCpuid()).toThrow(expect.objectContaining({ code: 'ERR_KVM_CLOSED' }));
    expect(() => vcpu.getMsrs([IA32_TSC])).toThrow(expect.objectContaining({ code: 'ERR_KVM_CLOSED' }));
    kvm.close();
    expect(() => kvm.supportedCpuid()).toThrow(expect.objectContaining({ code: 'ERR_KVM_CLOSED' }));
    expect(() => vm.enableCap('EXIT_HYPERCALL', [0])).toThrow(expect.objectContaining({ code: 'ERR_KVM_CLOSED' }));
  });
});

describe('vCPU configuration on the simulator', () => {
  it('supportedCpuid, msrIndexList and enableCap are UnsupportedError', () => {
    using kvm = open({ backend: 'sim' });
    expect(() => kvm.supportedCpuid()).toThrow(UnsupportedError);
    expect(() => kvm.msrIndexList()).toThrow(UnsupportedError);
    expect(() => kvm.createVm().enableCap('EXIT_HYPERCALL', [0])).toThrow(UnsupportedError);
  });
});
