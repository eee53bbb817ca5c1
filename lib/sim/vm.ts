// The VM port in the simulator: guest_memfd files, memory slots, attributes and guest access,
// with the kernel's errno where the kernel judges (the core has checked the arguments).
import { FLAGS } from '../constants.js';
import { UnsupportedError, kvmError } from '../errors.js';
import type { GuestAccessPort, RegionPort, VcpuPort, VmPort } from '../ports.js';
import { PAGE_SIZE } from '../validate.js';
import { SimGuestAccess } from './guest.js';
import { SimGuestMemfd } from './guest-memfd.js';
import type { SimMapping } from './mapping.js';
import { vmCap, type SimProfile } from './profiles.js';
import { SlotTable } from './slots.js';

const P = BigInt(PAGE_SIZE);

export class SimVm implements VmPort {
  readonly backend = 'sim' as const;
  #closed = false;
  #files = new Set<SimGuestMemfd>();
  readonly slotTable: SlotTable;

  constructor(
    readonly profile: SimProfile,
    readonly type: number,
  ) {
    this.slotTable = new SlotTable(this, profile);
  }

  get closed(): boolean {
    return this.#closed;
  }

  checkExtension(cap: number): number {
    return vmCap(this.profile, this.type, cap);
  }

  createGuestMemfd(size: bigint, flags: bigint): SimGuestMemfd {
    // KVM_CREATE_GUEST_MEMFD: unknown flag bits, then a size that is 0, unaligned or negative as a loff_t.
    // The arguments in the message as the native layer writes them (native/vm.cc).
    const args = `size ${size}, flags 0x${flags.toString(16)}`;
    if ((flags & ~this.profile.gmemFlags) !== 0n)
      throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD', undefined, args);
    if (size === 0n || size % P !== 0n || size >= 1n << 63n)
      throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD', undefined, args);
    const g = new SimGuestMemfd(this.profile, this, size, flags, (x) => this.#files.delete(x));
    this.#files.add(g);
    return g;
  }

  setUserMemoryRegion2(r: RegionPort): void {
    this.slotTable.set({
      slot: r.slot,
      flags: r.flags,
      gpa: r.guestPhysAddr,
      size: r.size,
      mapping: r.userspace as SimMapping | undefined,
      userspaceOffset: r.userspaceOffset,
      gmem: r.guestMemfd as SimGuestMemfd | undefined,
      gmemOffset: r.guestMemfdOffset,
    });
  }

  setMemoryAttributes(gpa: bigint, size: bigint, attributes: bigint): void {
    // The PVM host's build has no KVM_SET_MEMORY_ATTRIBUTES (ENOTTY), nor do the series profiles.
    if (!this.profile.vmAttributes) throw kvmError('ENOTTY', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    // kvm_vm_ioctl_set_mem_attributes, in its order: attributes outside kvm_supported_mem_attributes
    // (none on a VM without private memory), then an empty or wrapping range, then alignment.
    // Every modelled mainline VM is type 0, so shared (attributes 0) is all it accepts, as a no-op.
    if ((attributes & BigInt(FLAGS.KVM_MEMORY_ATTRIBUTE_PRIVATE!)) !== 0n)
      throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    if (size === 0n || gpa + size >= 1n << 64n) throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    if (gpa % P !== 0n || size % P !== 0n) throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
  }

  createVcpu(): VcpuPort {
    throw new UnsupportedError(
      'vcpu',
      'vcpu is not supported: the simulator models memory, not CPUs (use the kvm backend)',
    );
  }

  enableCap(): number {
    throw new UnsupportedError(
      'enableCap',
      'enableCap is not supported: the simulator models no capabilities that can be enabled (use the kvm backend)',
    );
  }

  guestAccess(): GuestAccessPort {
    return new SimGuestAccess(this);
  }

  /** Idempotent: the files and the slots go with the VM. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of [...this.#files]) f.close();
    this.slotTable.clear();
  }
}
