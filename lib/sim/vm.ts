// Vm in the simulator: guest_memfd files, memory slots, attributes and guest access, with the
// same argument checks as the kvm backend and the kernel's errno where the kernel judges.
import { attributesArgs, createMemfdArgs, memfdFlagsOf, regionArgs } from '../args.js';
import { CAPS, capNumber } from '../constants.js';
import { UnsupportedError, kvmError } from '../errors.js';
import type { CreateGuestMemfdOptions, GuestAccess, GuestMemfd, GuestMemfdFlags, MemoryRegion, U64, Vcpu, Vm } from '../types.js';
import { PAGE_SIZE, ensureOpen, u32 } from '../validate.js';
import { enableCapArgs } from '../cpu-args.js';
import { SimGuestAccess } from './guest.js';
import { SimGuestMemfd } from './guest-memfd.js';
import { SimMapping } from './mapping.js';
import { vmCap, type SimProfile } from './profiles.js';
import { SlotTable } from './slots.js';

const P = BigInt(PAGE_SIZE);

export class SimVm implements Vm {
  #closed = false;
  #files = new Set<SimGuestMemfd>();
  #guest: SimGuestAccess | undefined;
  readonly slotTable: SlotTable;

  constructor(
    readonly profile: SimProfile,
    readonly type: number,
    private readonly onClose: (vm: SimVm) => void,
  ) {
    this.slotTable = new SlotTable(this, profile);
  }

  get closed(): boolean {
    return this.#closed;
  }
  get guest(): GuestAccess {
    if (!this.#guest) this.#guest = new SimGuestAccess(this);
    return this.#guest;
  }

  checkExtension(cap: number | string): number {
    ensureOpen(this.#closed, 'Vm');
    const n = capNumber(cap);
    return vmCap(this.profile, this.type, n);
  }

  guestMemfdFlags(): GuestMemfdFlags {
    return memfdFlagsOf(this.checkExtension(CAPS.GUEST_MEMFD_FLAGS!));
  }

  createGuestMemfd(opts: CreateGuestMemfdOptions): GuestMemfd {
    ensureOpen(this.#closed, 'Vm');
    const { size, flags } = createMemfdArgs(opts);
    // KVM_CREATE_GUEST_MEMFD: unknown flag bits, then a size that is 0, unaligned or negative as a loff_t.
    // The arguments in the message as the native layer writes them (native/vm.cc).
    const args = `size ${size}, flags 0x${flags.toString(16)}`;
    if ((flags & ~this.profile.gmemFlags) !== 0n) throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD', undefined, args);
    if (size === 0n || size % P !== 0n || size >= 1n << 63n) throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD', undefined, args);
    const g = new SimGuestMemfd(this.profile, this, size, flags, (x) => this.#files.delete(x));
    this.#files.add(g);
    return g;
  }

  setMemoryRegion(region: MemoryRegion): void {
    ensureOpen(this.#closed, 'Vm');
    const { slot, flags, gpa, size, gmem, gmemOffset, mapping, userspaceOffset } = regionArgs(region, SimGuestMemfd, SimMapping, 'sim');
    this.slotTable.set({ slot, flags, gpa, size, mapping, userspaceOffset, gmem, gmemOffset: gmem ? gmemOffset : 0n });
  }

  deleteMemoryRegion(slot: number): void {
    ensureOpen(this.#closed, 'Vm');
    this.slotTable.set({ slot: u32('slot', slot), flags: 0, gpa: 0n, size: 0n, userspaceOffset: 0n, gmemOffset: 0n });
  }

  setMemoryAttributes(gpa: U64, size: U64, attributes: { private: boolean }): void {
    ensureOpen(this.#closed, 'Vm');
    const a = attributesArgs(gpa, size, attributes);
    // The PVM host's build has no KVM_SET_MEMORY_ATTRIBUTES (ENOTTY), nor do the series profiles.
    if (!this.profile.vmAttributes) throw kvmError('ENOTTY', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    // kvm_vm_ioctl_set_mem_attributes, in its order: attributes outside kvm_supported_mem_attributes
    // (none on a VM without private memory), then an empty or wrapping range, then alignment.
    // Every modelled mainline VM is type 0, so shared (attributes 0) is all it accepts, as a no-op.
    if (a.private) throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    if (a.size === 0n || a.gpa + a.size >= 1n << 64n) throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
    if (a.gpa % P !== 0n || a.size % P !== 0n) throw kvmError('EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES');
  }

  createVcpu(id: number = 0): Vcpu {
    ensureOpen(this.#closed, 'Vm');
    u32('id', id);
    throw new UnsupportedError('vcpu', 'vcpu is not supported: the simulator models memory, not CPUs (use the kvm backend)');
  }

  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number {
    ensureOpen(this.#closed, 'Vm');
    enableCapArgs(cap, args, flags);
    throw new UnsupportedError('enableCap', 'enableCap is not supported: the simulator models no capabilities that can be enabled (use the kvm backend)');
  }

  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#files) f.markClosed();
    this.#files.clear();
    this.slotTable.clear();
  }

  close(): void {
    if (this.#closed) return;
    this.markClosed();
    this.onClose(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

