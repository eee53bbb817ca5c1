// The VM port on the real backend: each method one ioctl on the VM fd, through the addon.
import type { Vm } from '../core/vm.js';
import type { GmemPort, GuestAccessPort, RegionPort, VcpuPort, VmPort } from '../ports.js';
import type { NativeMapping, NativeVm } from './addon.js';
import { KvmGmemPort } from './guest-memfd.js';
import { KvmGuestAccess } from './guest.js';

/** What vm.guest's helper (lib/kvm/guest.ts) reads of its VM: the core Vm's record and this port's fd. */
export interface KvmVm {
  readonly type: number;
  readonly closed: boolean;
  readonly slots: Vm['slots'];
  readonly native: NativeVm;
  checkExtension(cap: number): number;
  /** A type-0 VM of the same /dev/kvm, for vm.guest's helper memory where this VM's own files cannot be shared. */
  makeDonor(): NativeVm;
}

export class KvmVmPort implements VmPort {
  readonly backend = 'kvm' as const;
  #checkExtension: ((cap: number) => number) | undefined;

  constructor(
    readonly native: NativeVm,
    readonly makeDonor: () => NativeVm,
  ) {}

  get type(): number {
    return this.native.type;
  }

  checkExtension(cap: number): number {
    // The plain function, made on first use (most VMs never ask).
    return (this.#checkExtension ??= this.native.checkExtensionFunction())(cap);
  }

  createGuestMemfd(size: bigint, flags: bigint): GmemPort {
    return new KvmGmemPort(this.native.createGuestMemfd(size, flags));
  }

  setUserMemoryRegion2(r: RegionPort): void {
    this.native.setUserMemoryRegion2({
      slot: r.slot,
      flags: r.flags,
      guestPhysAddr: r.guestPhysAddr,
      size: r.size,
      userspace: r.userspace as NativeMapping | undefined,
      userspaceOffset: r.userspaceOffset,
      guestMemfd: (r.guestMemfd as KvmGmemPort | undefined)?.native,
      guestMemfdOffset: r.guestMemfdOffset,
    });
  }

  setMemoryAttributes(gpa: bigint, size: bigint, attributes: bigint): void {
    this.native.setMemoryAttributes(gpa, size, attributes);
  }

  createVcpu(id: number): VcpuPort {
    return this.native.createVcpu(id);
  }

  enableCap(cap: number, flags: number, args: BigUint64Array): number {
    return this.native.enableCap(cap, flags, args);
  }

  guestAccess(vm: Vm): GuestAccessPort {
    const native = this.native;
    const makeDonor = this.makeDonor;
    return new KvmGuestAccess({
      get type() {
        return native.type;
      },
      get closed() {
        return vm.closed;
      },
      slots: vm.slots,
      native,
      checkExtension: (cap) => vm.checkExtension(cap),
      makeDonor,
    });
  }

  close(): void {
    this.native.close();
  }
}
