// Vm on the real backend: guest_memfd files, memory slots, attributes, vCPUs.
import { attributesArgs, capNumber, createMemfdArgs, memfdFlagsOf, regionArgs } from '../args.js';
import { FLAGS, CAPS } from '../constants.js';
import type { CreateGuestMemfdOptions, GuestAccess, GuestMemfd, GuestMemfdFlags, MemoryRegion, U64, Vcpu, Vm } from '../types.js';
import { ensureOpen, u32 } from '../validate.js';
import { enableCapArgs } from '../cpu-args.js';
import { KvmGuestMemfd } from './guest-memfd.js';
import type { NativeVm } from './addon.js';
import { KvmMapping } from './mapping.js';
import { KvmGuestAccess } from './guest.js';
import { KvmVcpu } from './vcpu.js';
import { Children } from './children.js';

/** A slot as this process set it (the kernel has no call to read slots back). */
export interface SlotInfo {
  slot: number;
  guestPhysAddr: bigint;
  size: bigint;
  flags: number;
  guestMemfd?: KvmGuestMemfd;
  guestMemfdOffset: bigint;
  userspace?: KvmMapping;
  userspaceOffset: bigint;
}

export class KvmVm implements Vm {
  #closed = false;
  #files = new Children<KvmGuestMemfd>();
  #vcpus = new Children<KvmVcpu>();
  #guest: KvmGuestAccess | undefined;
  /** Slots set through this object, by slot id. */
  readonly slots = new Map<number, SlotInfo>();

  constructor(
    readonly native: NativeVm,
    private readonly onClose: (vm: KvmVm) => void,
    /** A type-0 VM of the same /dev/kvm, for vm.guest's helper memory where this VM's own files cannot be shared. */
    readonly makeDonor: () => NativeVm = () => {
      throw new Error('no /dev/kvm to make a donor VM from');
    },
  ) {}

  get type(): number {
    return this.native.type;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get guest(): GuestAccess {
    if (!this.#guest) this.#guest = new KvmGuestAccess(this);
    return this.#guest;
  }

  checkExtension(cap: number | string): number {
    ensureOpen(this.#closed, 'Vm');
    return this.native.checkExtension(capNumber(cap));
  }

  guestMemfdFlags(): GuestMemfdFlags {
    return memfdFlagsOf(this.checkExtension(CAPS.GUEST_MEMFD_FLAGS!));
  }

  createGuestMemfd(opts: CreateGuestMemfdOptions): GuestMemfd {
    ensureOpen(this.#closed, 'Vm');
    const { size, flags } = createMemfdArgs(opts);
    const n = this.native.createGuestMemfd(size, flags);
    const g = new KvmGuestMemfd(n, size, flags, (x) => this.#files.delete(x));
    this.#files.add(g);
    return g;
  }

  setMemoryRegion(region: MemoryRegion): void {
    ensureOpen(this.#closed, 'Vm');
    const { slot, flags, gpa, size, gmem, gmemOffset, mapping, userspaceOffset: uOffset } = regionArgs(region, KvmGuestMemfd, KvmMapping, 'kvm');
    // vm.guest's helper region moves if this slot would collide with it.
    this.#guest?.makeRoom(slot, gpa, size);
    this.native.setUserMemoryRegion2({
      slot, flags, guestPhysAddr: gpa, size, userspace: mapping?.native, userspaceOffset: uOffset, guestMemfd: gmem?.native, guestMemfdOffset: gmemOffset,
    });
    if (size === 0n) {
      this.slots.delete(slot);
    } else {
      this.slots.set(slot, { slot, guestPhysAddr: gpa, size, flags, guestMemfd: gmem, guestMemfdOffset: gmemOffset, userspace: mapping, userspaceOffset: uOffset });
    }
  }

  deleteMemoryRegion(slot: number): void {
    ensureOpen(this.#closed, 'Vm');
    const s = u32('slot', slot);
    // The helper of vm.guest moves off the slot id first, so the user never deletes it.
    this.#guest?.makeRoom(s, 0n, 0n);
    this.native.setUserMemoryRegion2({ slot: s });
    this.slots.delete(s);
  }

  setMemoryAttributes(gpa: U64, size: U64, attributes: { private: boolean }): void {
    ensureOpen(this.#closed, 'Vm');
    const a = attributesArgs(gpa, size, attributes);
    this.native.setMemoryAttributes(a.gpa, a.size, a.private ? BigInt(FLAGS.KVM_MEMORY_ATTRIBUTE_PRIVATE!) : 0n);
  }

  createVcpu(id: number = 0): Vcpu {
    ensureOpen(this.#closed, 'Vm');
    const v = new KvmVcpu(
      this.native.createVcpu(u32('id', id)),
      (x) => this.#vcpus.delete(x),
      (cap) => this.native.checkExtension(cap),
    );
    this.#vcpus.add(v);
    return v;
  }

  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number {
    ensureOpen(this.#closed, 'Vm');
    const a = enableCapArgs(cap, args, flags);
    ensureOpen(this.#closed, 'Vm');
    return this.native.enableCap(a.cap, a.flags, a.args);
  }

  /** The owner (Kvm) closed: mark this and everything under it. */
  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#files.drain()) f.markClosed();
    for (const v of this.#vcpus.drain()) v.markClosed();
    this.slots.clear();
    this.#guest?.markClosed();
  }

  close(): void {
    if (this.#closed) return;
    this.#guest?.markClosed();
    this.native.close();
    this.markClosed();
    this.onClose(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
