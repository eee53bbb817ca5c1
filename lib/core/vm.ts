// Vm, for both backends: argument shaping and its order, the closed checks, the record of the
// slots this process set (the kernel has no call to read them back; vm.guest reads it), and the
// ownership of files and vCPUs with the close cascade. The kernel's judgement is the port's.
import { attributesArgs, capNumber, createMemfdArgs, memfdFlagsOf, regionArgs } from '../args.js';
import { CAPS, FLAGS } from '../constants.js';
import { enableCapArgs } from '../cpu-args.js';
import type { VmPort } from '../ports.js';
import type {
  CreateGuestMemfdOptions,
  GuestAccess,
  GuestMemfdFlags,
  MemoryRegion,
  U64,
  Vm as VmApi,
} from '../types.js';
import { ensureOpen, u32 } from '../validate.js';
import { Children } from './children.js';
import { GuestAccess as QueuedGuestAccess } from './guest-access.js';
import { GuestMemfd } from './guest-memfd.js';
import { Mapping } from './mapping.js';
import { Owned } from './owned.js';
import { Vcpu } from './vcpu.js';

/** A slot as this process set it. */
export interface SlotInfo {
  slot: number;
  guestPhysAddr: bigint;
  size: bigint;
  flags: number;
  guestMemfd?: GuestMemfd;
  guestMemfdOffset: bigint;
  userspace?: Mapping;
  userspaceOffset: bigint;
}

export class Vm extends Owned implements VmApi {
  // Held weakly: a file or vCPU the user dropped stays collectable (its native finalizer closes the fd).
  #files = new Children<GuestMemfd>();
  #vcpus = new Children<Vcpu>();
  #guest: QueuedGuestAccess | undefined;
  /** Slots set through this object, by slot id. */
  readonly slots = new Map<number, SlotInfo>();

  constructor(
    readonly port: VmPort,
    onClose: (vm: Vm) => void,
  ) {
    super(onClose);
  }

  get type(): number {
    return this.port.type;
  }
  /** The backend's guest access, behind the core's checks and queue (lib/core/guest-access.ts). */
  get guest(): GuestAccess {
    this.#guest ??= new QueuedGuestAccess(this.port.guestAccess(this), this);
    return this.#guest;
  }

  checkExtension(cap: number | string): number {
    ensureOpen(this.closed, 'Vm');
    return this.port.checkExtension(capNumber(cap));
  }

  guestMemfdFlags(): GuestMemfdFlags {
    return memfdFlagsOf(this.checkExtension(CAPS.GUEST_MEMFD_FLAGS!));
  }

  createGuestMemfd(opts: CreateGuestMemfdOptions): GuestMemfd {
    ensureOpen(this.closed, 'Vm');
    const { size, flags } = createMemfdArgs(opts);
    const g = new GuestMemfd(this.port.createGuestMemfd(size, flags), size, flags, (x) => this.#files.delete(x));
    this.#files.add(g);
    return g;
  }

  setMemoryRegion(region: MemoryRegion): void {
    ensureOpen(this.closed, 'Vm');
    const { slot, flags, gpa, size, gmem, gmemOffset, mapping, userspaceOffset } = regionArgs(
      region,
      GuestMemfd,
      Mapping,
      this.port.backend,
    );
    const guestMemfdOffset = gmem ? gmemOffset : 0n;
    // vm.guest's helper region moves if this slot would collide with it.
    this.#guest?.makeRoom(slot, gpa, size);
    this.port.setUserMemoryRegion2({
      slot,
      flags,
      guestPhysAddr: gpa,
      size,
      userspace: mapping?.port,
      userspaceOffset,
      guestMemfd: gmem?.port,
      guestMemfdOffset,
    });
    if (size === 0n) {
      this.slots.delete(slot);
    } else {
      this.slots.set(slot, {
        slot,
        guestPhysAddr: gpa,
        size,
        flags,
        guestMemfd: gmem,
        guestMemfdOffset,
        userspace: mapping,
        userspaceOffset,
      });
    }
  }

  deleteMemoryRegion(slot: number): void {
    ensureOpen(this.closed, 'Vm');
    const s = u32('slot', slot);
    // The helper of vm.guest moves off the slot id first, so the user never deletes it.
    this.#guest?.makeRoom(s, 0n, 0n);
    this.port.setUserMemoryRegion2({
      slot: s,
      flags: 0,
      guestPhysAddr: 0n,
      size: 0n,
      userspaceOffset: 0n,
      guestMemfdOffset: 0n,
    });
    this.slots.delete(s);
  }

  setMemoryAttributes(gpa: U64, size: U64, attributes: { private: boolean }): void {
    ensureOpen(this.closed, 'Vm');
    const a = attributesArgs(gpa, size, attributes);
    this.port.setMemoryAttributes(a.gpa, a.size, a.private ? BigInt(FLAGS.KVM_MEMORY_ATTRIBUTE_PRIVATE!) : 0n);
  }

  createVcpu(id: number = 0): Vcpu {
    ensureOpen(this.closed, 'Vm');
    const v = new Vcpu(
      this.port.createVcpu(u32('id', id)),
      (x) => this.#vcpus.delete(x),
      (cap) => this.port.checkExtension(cap),
    );
    this.#vcpus.add(v);
    return v;
  }

  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number {
    ensureOpen(this.closed, 'Vm');
    const a = enableCapArgs(cap, args, flags);
    // Reading the arguments can run a script's getters: open again before the call.
    ensureOpen(this.closed, 'Vm');
    return this.port.enableCap(a.cap, a.flags, a.args);
  }

  protected teardown(): void {
    // vm.guest first: its helper's vCPU and slots go before the VM's own.
    this.#guest?.markClosed();
    for (const f of this.#files.drain()) f.markClosed();
    for (const v of this.#vcpus.drain()) v.markClosed();
    this.slots.clear();
    this.port.close();
  }
}
