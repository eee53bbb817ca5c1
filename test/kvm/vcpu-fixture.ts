// Shared set-up for the vCPU tests: a VM with one guest_memfd slot the host can map, and a vCPU
// in real mode starting at a hand-assembled program.
import { open } from '../../lib/index.js';
import type { Kvm, Mapping, GuestMemfd, Vcpu, Vm } from '../../lib/index.js';

export const CODE_GPA = 0x1000;

export interface RealModeGuest {
  kvm: Kvm;
  vm: Vm;
  gmem: GuestMemfd;
  map: Mapping;
  vcpu: Vcpu;
  close(): void;
}

/** `code` is placed at CODE_GPA in a 64 KiB shared guest_memfd slot at gpa 0; cs = 0, ip = CODE_GPA. */
export function realModeGuest(code: number[], opts: { kvm?: Kvm; memSize?: number } = {}): RealModeGuest {
  const kvm = opts.kvm ?? open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const size = opts.memSize ?? 0x10000;
  const gmem = vm.createGuestMemfd({ size, mmap: true, initShared: true });
  const map = gmem.map();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size, guestMemfd: gmem, userspace: map });
  map.write(CODE_GPA, Buffer.from(code));
  const vcpu = vm.createVcpu(0);
  vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
  vcpu.setRegs({ rip: BigInt(CODE_GPA), rflags: 2n });
  return {
    kvm,
    vm,
    gmem,
    map,
    vcpu,
    close() {
      if (opts.kvm) vm.close();
      else kvm.close();
    },
  };
}
