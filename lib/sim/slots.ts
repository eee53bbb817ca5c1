// Memory slots in the simulator, judged in the order __kvm_set_memory_region (Linux 6.18) does;
// every answer below was measured on the real kernel through the kvm backend:
//   flags (READONLY or LOG_DIRTY_PAGES with GUEST_MEMFD) -> EINVAL; address space (slot >> 16) != 0
//   or id >= 32764 -> EINVAL; size, gpa, userspace address or guest_memfd offset not page-aligned,
//   gpa + size or offset + size wrapping, size >= 2^43 -> EINVAL; delete (size 0) of a missing slot
//   -> EINVAL; any change to a guest_memfd slot (even setting it again unchanged) -> EINVAL; a change
//   of size, userspace address or READONLY -> EINVAL; the same region again -> no-op; a create or
//   move overlapping another slot -> EEXIST; a slot ending past 2^52 -> EINVAL; guest_memfd of
//   another VM, a range past the file's end (unless offset + size reaches 2^63: the kernel's
//   signed sum wraps and it accepts), or pages bound to another slot -> EINVAL. Where mainline
//   6.18, 7.x and the PVM host differ, the profile says which (SimProfile: tdp, rebindErrno,
//   gmemOffsetSignedSum; docs/profiles.md).
import { CAPS, FLAGS } from '../constants.js';
import { kvmError } from '../errors.js';
import { PAGE_SIZE } from '../validate.js';
import type { SimGuestMemfd } from './guest-memfd.js';
import type { SimMapping } from './mapping.js';
import { guestPhysLimit } from '../phys-bits.js';
import { LIMITS, type SimProfile } from './profiles.js';

const P = BigInt(PAGE_SIZE);
const IOCTL = 'KVM_SET_USER_MEMORY_REGION2';
const MEM_LOG_DIRTY_PAGES = FLAGS.KVM_MEM_LOG_DIRTY_PAGES!;
export const MEM_READONLY = FLAGS.KVM_MEM_READONLY!;
const MEM_GUEST_MEMFD = FLAGS.KVM_MEM_GUEST_MEMFD!;

export interface SlotRequest {
  slot: number;
  flags: number;
  gpa: bigint;
  size: bigint;
  mapping?: SimMapping;
  userspaceOffset: bigint;
  gmem?: SimGuestMemfd;
  gmemOffset: bigint;
}

export interface SimSlot extends SlotRequest {
  /** This slot's binding in its guest_memfd (released on delete). */
  binding?: { first: bigint; end: bigint };
}

function einval(): Error {
  return kvmError('EINVAL', 'ioctl', IOCTL);
}

function sameUserspace(a: SlotRequest, b: SlotRequest): boolean {
  // A slot's userspace address is (mapping, offset); no mapping is address 0.
  if (!a.mapping || !b.mapping) return !a.mapping && !b.mapping && a.userspaceOffset === b.userspaceOffset;
  return a.mapping === b.mapping && a.userspaceOffset === b.userspaceOffset;
}

export class SlotTable {
  readonly slots = new Map<number, SimSlot>();

  constructor(
    private readonly vm: object,
    private readonly profile: SimProfile,
  ) {}

  set(r: SlotRequest): void {
    const gmemFlag = (r.flags & MEM_GUEST_MEMFD) !== 0;
    if (gmemFlag && (r.flags & (MEM_READONLY | MEM_LOG_DIRTY_PAGES)) !== 0) throw einval();
    // Address spaces: KVM_CAP_MULTI_ADDRESS_SPACE (2 with SMM on mainline kvm_amd/kvm_intel; PVM has 1).
    const spaces = this.profile.caps.get(CAPS.MULTI_ADDRESS_SPACE!) ?? LIMITS.addressSpaces;
    if (r.slot >>> 16 >= spaces || (r.slot & 0xffff) >= LIMITS.userSlots) throw einval();
    if (r.size % P !== 0n || r.gpa % P !== 0n || r.userspaceOffset % P !== 0n) throw einval();
    if (gmemFlag && (r.gmemOffset % P !== 0n || r.gmemOffset + r.size >= 1n << 64n)) throw einval();
    if (r.gpa + r.size >= 1n << 64n) throw einval();
    const npages = r.size / P;
    if (npages > LIMITS.maxSlotPages) throw einval();
    const old = this.slots.get(r.slot);
    if (r.size === 0n) {
      if (!old) throw einval();
      this.#delete(old);
      return;
    }
    if (old) {
      // guest_memfd slots are immutable: they can only be deleted.
      if (gmemFlag || old.gmem) throw einval();
      if (!sameUserspace(r, old) || r.size !== old.size || ((r.flags ^ old.flags) & MEM_READONLY) !== 0) throw einval();
      if (r.gpa === old.gpa) {
        old.flags = r.flags;
        return;
      }
    }
    this.#checkOverlap(r);
    // kvm_arch_prepare_memory_region against kvm_mmu_max_gfn(): the host MAXPHYADDR with TDP, else 52 bits.
    if (r.gpa + r.size > (this.profile.tdp ? guestPhysLimit() : LIMITS.maxGpaEnd)) throw einval();
    let binding: SimSlot['binding'];
    if (gmemFlag) binding = this.#bind(r.gmem!, r.gmemOffset, npages);
    if (old) this.slots.delete(r.slot);
    this.slots.set(r.slot, { ...r, binding });
  }

  #checkOverlap(r: SlotRequest): void {
    const end = r.gpa + r.size;
    for (const s of this.slots.values()) {
      // Only slots of the same address space can overlap (__kvm_set_memory_region, per as_id).
      if (s.slot === r.slot || s.slot >>> 16 !== r.slot >>> 16) continue;
      if (r.gpa < s.gpa + s.size && s.gpa < end) throw kvmError('EEXIST', 'ioctl', IOCTL);
    }
  }

  #bind(g: SimGuestMemfd, offset: bigint, npages: bigint): { first: bigint; end: bigint } {
    if (g.owner !== this.vm) throw einval();
    const last = offset + npages * P;
    if (this.profile.gmemOffsetSignedSum) {
      // 6.18's kvm_gmem_bind compares offset + size with i_size as loff_t: a negative offset is
      // refused, but a sum of 2^63 or more wraps negative and passes (found by the fuzzer).
      if (offset >= 1n << 63n || (last < 1n << 63n && last > g.sizeBig)) throw einval();
    } else if (last > g.sizeBig) {
      // 7.x's kvm_gmem_prepare_memory_region sums them as uoff_t: no wrap.
      throw einval();
    }
    const first = offset / P;
    const end = first + npages;
    // A range already bound: 6.18's kvm_gmem_bind EINVAL, 7.x's kvm_gmem_commit_memory_region EEXIST.
    for (const b of g.bindings)
      if (first < b.end && b.first < end) throw kvmError(this.profile.rebindErrno, 'ioctl', IOCTL);
    const binding = { first, end };
    g.bindings.add(binding);
    return binding;
  }

  #delete(s: SimSlot): void {
    if (s.binding) s.gmem!.bindings.delete(s.binding);
    this.slots.delete(s.slot);
  }

  clear(): void {
    for (const s of [...this.slots.values()]) this.#delete(s);
  }

  /** The slot holding gpa, preferring address space 0 (the guest's); any space counts as covering, as in the kvm backend. */
  find(gpa: bigint): SimSlot | undefined {
    let other: SimSlot | undefined;
    for (const s of this.slots.values()) {
      if (gpa < s.gpa || gpa >= s.gpa + s.size) continue;
      if (s.slot >>> 16 === 0) return s;
      other ??= s;
    }
    return other;
  }
}
