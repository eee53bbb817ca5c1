// Vm on the real backend: guest_memfd files, memory slots, attributes, vCPUs.
import { argTypeError } from '../errors.js';
import { FLAGS, CAPS, capNumber } from '../constants.js';
import type { CreateGuestMemfdOptions, GuestAccess, GuestMemfd, GuestMemfdFlags, MemoryRegion, U64, Vcpu, Vm } from '../types.js';
import { describe, ensureOpen, optBool, options, u32, u64 } from '../validate.js';
import { KvmGuestMemfd, type NativeGuestMemfd } from './guest-memfd.js';
import { KvmMapping } from './mapping.js';
import { KvmGuestAccess } from './guest.js';
import { KvmVcpu, type NativeVcpu } from './vcpu.js';
import { Children } from './children.js';

export interface NativeVm {
  readonly fd: number;
  readonly type: number;
  checkExtension(cap: number): number;
  createGuestMemfd(size: U64, flags: U64): NativeGuestMemfd;
  setUserMemoryRegion2(slot: number, flags: number, gpa: U64, size: U64, mapping: unknown, mappingOffset: U64, gmem: unknown, gmemOffset: U64): void;
  setMemoryAttributes(gpa: U64, size: U64, attributes: U64, flags?: U64): void;
  probeVmAttributes(): boolean;
  createVcpu(id: number): NativeVcpu;
  close(): void;
}

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
    const mask = this.checkExtension(CAPS.GUEST_MEMFD_FLAGS!);
    return { mmap: (mask & FLAGS.GUEST_MEMFD_FLAG_MMAP!) !== 0, initShared: (mask & FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!) !== 0 };
  }

  createGuestMemfd(opts: CreateGuestMemfdOptions): GuestMemfd {
    ensureOpen(this.#closed, 'Vm');
    const o = options<CreateGuestMemfdOptions>('options', opts, true);
    const size = u64('size', o.size);
    let flags = o.flags === undefined ? 0n : u64('flags', o.flags);
    if (optBool('mmap', o.mmap)) flags |= BigInt(FLAGS.GUEST_MEMFD_FLAG_MMAP!);
    if (optBool('initShared', o.initShared)) flags |= BigInt(FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!);
    const n = this.native.createGuestMemfd(size, flags);
    const g = new KvmGuestMemfd(n, size, flags, (x) => this.#files.delete(x));
    this.#files.add(g);
    return g;
  }

  setMemoryRegion(region: MemoryRegion): void {
    ensureOpen(this.#closed, 'Vm');
    const r = options<MemoryRegion>('region', region, true);
    const slot = u32('slot', r.slot);
    const gpa = u64('guestPhysAddr', r.guestPhysAddr);
    const size = u64('size', r.size);
    let flags = 0;
    if (optBool('readonly', r.readonly)) flags |= FLAGS.KVM_MEM_READONLY!;
    if (optBool('logDirtyPages', r.logDirtyPages)) flags |= FLAGS.KVM_MEM_LOG_DIRTY_PAGES!;
    let gmem: KvmGuestMemfd | undefined;
    if (r.guestMemfd !== undefined) {
      if (!(r.guestMemfd instanceof KvmGuestMemfd)) throw argTypeError(`guestMemfd must be a GuestMemfd of the kvm backend, got ${describe(r.guestMemfd)}`);
      gmem = r.guestMemfd;
      ensureOpen(gmem.closed, 'GuestMemfd');
      flags |= FLAGS.KVM_MEM_GUEST_MEMFD!;
    }
    const gmemOffset = r.guestMemfdOffset === undefined ? 0n : u64('guestMemfdOffset', r.guestMemfdOffset);
    let mapping: KvmMapping | undefined;
    if (r.userspace !== undefined) {
      if (!(r.userspace instanceof KvmMapping)) throw argTypeError(`userspace must be a Mapping of the kvm backend, got ${describe(r.userspace)}`);
      mapping = r.userspace;
      ensureOpen(mapping.closed, 'Mapping');
    }
    const uOffset = r.userspaceOffset === undefined ? 0n : u64('userspaceOffset', r.userspaceOffset);
    this.native.setUserMemoryRegion2(slot, flags, gpa, size, mapping?.native ?? null, uOffset, gmem?.native ?? null, gmemOffset);
    if (size === 0n) {
      this.slots.delete(slot);
    } else {
      this.slots.set(slot, { slot, guestPhysAddr: gpa, size, flags, guestMemfd: gmem, guestMemfdOffset: gmemOffset, userspace: mapping, userspaceOffset: uOffset });
    }
  }

  deleteMemoryRegion(slot: number): void {
    ensureOpen(this.#closed, 'Vm');
    const s = u32('slot', slot);
    this.native.setUserMemoryRegion2(s, 0, 0, 0, null, 0, null, 0);
    this.slots.delete(s);
  }

  setMemoryAttributes(gpa: U64, size: U64, attributes: { private: boolean }): void {
    ensureOpen(this.#closed, 'Vm');
    const a = options<{ private: boolean }>('attributes', attributes, true);
    const priv = optBool('attributes.private', a.private);
    this.native.setMemoryAttributes(u64('gpa', gpa), u64('size', size), priv ? BigInt(FLAGS.KVM_MEMORY_ATTRIBUTE_PRIVATE!) : 0n);
  }

  createVcpu(id: number = 0): Vcpu {
    ensureOpen(this.#closed, 'Vm');
    const v = new KvmVcpu(this.native.createVcpu(u32('id', id)), (x) => this.#vcpus.delete(x));
    this.#vcpus.add(v);
    return v;
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
