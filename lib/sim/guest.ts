// vm.guest in the simulator: memory as the guest sees it, through the memory slots.
// A gpa range not covered by slots is refused whole (RangeError naming the first uncovered gpa),
// as the real backend refuses it before running its guest program. Otherwise the access runs in
// order and stops at the first page the guest may not use (GuestMemoryFault, size 4096):
//   - linux-6.18, linux-7.3 (mainline): a slot bound to a guest_memfd with MMAP is gmem-only
//     (kvm_gmem_bind sets KVM_MEMSLOT_GMEM_ONLY): every guest fault is served from the file by
//     __kvm_mmu_faultin_pfn -> kvm_gmem_get_pfn, shared or not, with or without `userspace`; once
//     the file is released (kvm_gmem_release clears slot->gmem.file) the guest faults. A slot on a
//     file without MMAP goes through its userspace memory (a type-0 VM has no private gfns).
//     Measured on Debian 6.18.15 and 7.3.4 with kvm_amd in the rig (tools/rig).
//   - linux-6.18-pvm: PVM reaches guest memory only through the slot's userspace memory, guest_memfd
//     or not (measured: a MMAP|INIT_SHARED slot without `userspace` gives the guest an MMIO exit;
//     with the file's own mapping it sees the file).
//   - series profiles, guest_memfd slot, file with MMAP: the file's pages in place; rfc-v5 refuses
//     pending pages, inplace-v8 refuses nothing. File without MMAP: shared pages through the
//     userspace memory, private pages in the file.
//   - userspace memory that is missing, unmapped, too short or not host-accessible faults (mainline:
//     KVM_RUN fails with EFAULT, a KvmError; PVM: an MMIO exit, a GuestMemoryFault), and so
//     does a write to a readonly slot (and, in the series profiles, a slot whose guest_memfd was
//     closed; on linux-6.18 the kernel keeps the file and the userspace memory answers).
// A fault names its page, and is `private` when the guest_memfd page behind it is not shared.
import { GuestMemoryFault, argRangeError, kvmError } from '../errors.js';
import type { GuestAccessPort, GuestOp } from '../ports.js';
import { PAGE_SIZE, ensureOpen, num } from '../validate.js';
import { guestPhysLimit } from '../phys-bits.js';
import type { SimGuestMemfd } from './guest-memfd.js';
import type { SimProfile } from './profiles.js';
import { MEM_READONLY, type SimSlot, type SlotTable } from './slots.js';

const P = BigInt(PAGE_SIZE);

interface Owner {
  readonly closed: boolean;
  readonly profile: SimProfile;
  readonly slotTable: SlotTable;
}

type Piece = { file: SimGuestMemfd; at: bigint } | { fault: boolean } | { efault: true };

/** The simulator's vm.guest port: the core's GuestAccess queues its accesses. */
export class SimGuestAccess implements GuestAccessPort {
  constructor(private readonly vm: Owner) {}

  /** The simulator's guest access takes no guest-physical memory. */
  get reserved(): null {
    return null;
  }

  // The core checked the arguments and the slots' coverage (lib/core/guest-access.ts); its queue
  // runs the access later, against the slots and pages as they are then.
  read(start: bigint, len: bigint): GuestOp<Buffer> {
    return async () => {
      const out = Buffer.alloc(Number(len));
      this.#walk(start, len, false, (file, at, pos, n) => file.pages.read(at, out.subarray(pos, pos + n)));
      return out;
    };
  }

  readInto(start: bigint, dst: Uint8Array): GuestOp<number> {
    const len = BigInt(dst.byteLength); // as the call was made
    return async () => {
      this.#walk(start, len, false, (file, at, pos, n) => file.pages.read(at, dst.subarray(pos, pos + n)));
      return dst.byteLength;
    };
  }

  write(start: bigint, src: Uint8Array): GuestOp<void> {
    const len = BigInt(src.byteLength); // as the call was made
    return async () => {
      this.#walk(start, len, true, (file, at, pos, n) => file.pages.write(at, src.subarray(pos, pos + n)));
    };
  }

  /** The slots covering [start, end) in order, or the RangeError naming the first gpa none covers. */
  #runs(start: bigint, end: bigint): { slot: SimSlot; from: bigint; to: bigint }[] {
    const runs: { slot: SimSlot; from: bigint; to: bigint }[] = [];
    for (let gpa = start; gpa < end;) {
      const slot = this.vm.slotTable.find(gpa);
      if (!slot) throw argRangeError(`gpa 0x${gpa.toString(16)} is not in any memory slot`);
      const to = slot.gpa + slot.size < end ? slot.gpa + slot.size : end;
      runs.push({ slot, from: gpa, to });
      gpa = to;
    }
    return runs;
  }

  #walk(
    start: bigint,
    len: bigint,
    write: boolean,
    fn: (file: SimGuestMemfd, at: bigint, pos: number, n: number) => void,
  ): void {
    // The VM may have closed, or its slots changed, since the call was checked.
    ensureOpen(this.vm.closed, 'Vm');
    // Coverage first, so an uncovered range changes nothing.
    for (const { slot, from, to } of this.#runs(start, start + len)) {
      // Page by page, since the backing can change from one page to the next.
      for (let gpa = from; gpa < to;) {
        const pageEnd = (gpa / P + 1n) * P;
        const stop = pageEnd < to ? pageEnd : to;
        // No guest reaches past its physical address width (the host's MAXPHYADDR).
        if (gpa >= guestPhysLimit())
          throw new GuestMemoryFault({ gpa: num((gpa / P) * P), size: PAGE_SIZE, private: false });
        const piece = this.#backing(slot, gpa, stop - gpa, write);
        if ('efault' in piece) throw kvmError('EFAULT', 'ioctl', 'KVM_RUN');
        if ('fault' in piece)
          throw new GuestMemoryFault({ gpa: num((gpa / P) * P), size: PAGE_SIZE, private: piece.fault });
        fn(piece.file, piece.at, Number(gpa - start), Number(stop - gpa));
        gpa = stop;
      }
    }
  }

  // Where the guest's bytes [gpa, gpa+n) (within one page) live, or the fault (private or not).
  #backing(slot: SimSlot, gpa: bigint, n: bigint, write: boolean): Piece {
    // A slot of address space 1 (SMM) is not the guest's memory: no memslot there, an MMIO exit.
    if (slot.slot >>> 16 !== 0) return { fault: false };
    if (write && (slot.flags & MEM_READONLY) !== 0) return { fault: false };
    const rel = gpa - slot.gpa;
    const g = slot.gmem;
    const pagePrivate = (): boolean =>
      g !== undefined && !g.closed && g.conversion.isPrivate((slot.gmemOffset + rel) / P);
    // The conversion model decides first (lib/sim/conversion/); null leaves it to the rules below.
    const way = g?.conversion.guestWay((slot.gmemOffset + rel) / P, slot.mapping !== undefined);
    if (way === 'fault') return { fault: pagePrivate() };
    if (way === 'file') return { file: g!, at: slot.gmemOffset + rel };
    if (g && g.profile.gmemOnlySlots && g.flags.mmap) {
      // Mainline: KVM_MEMSLOT_GMEM_ONLY; a released file leaves kvm_gmem_get_pfn nothing (EFAULT).
      if (g.closed) return { fault: false };
      return { file: g, at: slot.gmemOffset + rel };
    }
    // linux-6.18-pvm: closing the guest_memfd's fd leaves the slot's binding, and the guest goes
    // through the userspace memory anyway (found by the differential fuzzer).
    const m = slot.mapping;
    // Mainline: an hva that cannot be faulted in fails KVM_RUN with EFAULT; PVM: an MMIO exit.
    const unserved = (): Piece =>
      (slot.gmem?.profile ?? this.vm.profile).userspaceFaultEfault ? { efault: true } : { fault: pagePrivate() };
    if (!m) return unserved();
    const where = m.guestView(slot.userspaceOffset + rel, n);
    if ('fault' in where) return unserved();
    return { file: m.file, at: where.at };
  }
}
