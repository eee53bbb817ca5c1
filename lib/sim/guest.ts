// vm.guest in the simulator: memory as the guest sees it, through the memory slots.
// A gpa range not covered by slots is refused whole (RangeError naming the first uncovered gpa),
// as the real backend refuses it before running its guest program. Otherwise the access runs in
// order and stops at the first page the guest may not use (GuestMemoryFault, size 4096):
//   - guest_memfd slot, file with MMAP: the file's pages; linux-6.18 refuses private pages (a
//     type-0 VM has no private memory: the real kernel exits to userspace as MMIO there),
//     rfc-v5 refuses pending pages, inplace-v8 refuses nothing.
//   - guest_memfd slot, file without MMAP: on linux-6.18 the slot's userspace memory (the kernel
//     does the same); in the series profiles shared pages there too and private pages in the file.
//   - a slot's userspace memory that is missing, unmapped, too short or not host-accessible
//     faults with private: false, and so does a write to a readonly slot.
//   - a slot whose guest_memfd was closed faults with private: false.
import { GuestMemoryFault, argRangeError } from '../errors.js';
import type { GuestAccess, U64 } from '../types.js';
import { PAGE_SIZE, bytes, ensureOpen, num, rangeEnd, u64 } from '../validate.js';
import { SHARED } from '../state-map.js';
import type { SimGuestMemfd } from './guest-memfd.js';
import { MEM_READONLY, type SimSlot, type SlotTable } from './slots.js';

const P = BigInt(PAGE_SIZE);

interface Owner {
  readonly closed: boolean;
  readonly slotTable: SlotTable;
}

type Piece = { file: SimGuestMemfd; at: bigint } | { fault: boolean };

export class SimGuestAccess implements GuestAccess {
  constructor(private readonly vm: Owner) {}

  async read(gpa: U64, length: U64): Promise<Buffer> {
    const [start, len] = this.#args(gpa, length);
    const out = Buffer.alloc(Number(len));
    this.#walk(start, len, false, (file, at, pos, n) => file.pages.read(at, out.subarray(pos, pos + n)));
    return out;
  }

  async write(gpa: U64, data: ArrayBufferView): Promise<void> {
    const src = bytes('data', data);
    const [start, len] = this.#args(gpa, src.length);
    this.#walk(start, len, true, (file, at, pos, n) => file.pages.write(at, src.subarray(pos, pos + n)));
  }

  #args(gpa: U64, length: U64): [bigint, bigint] {
    const start = u64('gpa', gpa);
    const len = u64('length', length);
    rangeEnd(start, len);
    ensureOpen(this.vm.closed, 'Vm');
    if (len > 0x7fffffffn) throw argRangeError(`length ${len} is too large for one guest access`);
    return [start, len];
  }

  #walk(start: bigint, len: bigint, write: boolean, fn: (file: SimGuestMemfd, at: bigint, pos: number, n: number) => void): void {
    const end = start + len;
    // Coverage first, so an uncovered range changes nothing.
    const runs: { slot: SimSlot; from: bigint; to: bigint }[] = [];
    for (let gpa = start; gpa < end; ) {
      const slot = this.vm.slotTable.find(gpa);
      if (!slot) throw argRangeError(`gpa 0x${gpa.toString(16)} is not in any memory slot`);
      const to = slot.gpa + slot.size < end ? slot.gpa + slot.size : end;
      runs.push({ slot, from: gpa, to });
      gpa = to;
    }
    for (const { slot, from, to } of runs) {
      // Page by page, since the backing can change from one page to the next.
      for (let gpa = from; gpa < to; ) {
        const pageEnd = (gpa / P + 1n) * P;
        const stop = pageEnd < to ? pageEnd : to;
        const piece = this.#backing(slot, gpa, stop - gpa, write);
        if ('fault' in piece) throw new GuestMemoryFault({ gpa: num(gpa), size: PAGE_SIZE, private: piece.fault });
        fn(piece.file, piece.at, Number(gpa - start), Number(stop - gpa));
        gpa = stop;
      }
    }
  }

  // Where the guest's bytes [gpa, gpa+n) (within one page) live, or the fault (private or not).
  #backing(slot: SimSlot, gpa: bigint, n: bigint, write: boolean): Piece {
    if (write && (slot.flags & MEM_READONLY) !== 0) return { fault: false };
    const rel = gpa - slot.gpa;
    const g = slot.gmem;
    if (g) {
      if (g.closed) return { fault: false };
      const at = slot.gmemOffset + rel;
      const page = at / P;
      if (g.flags.mmap) {
        if (g.guestFault(page, page + 1n) >= 0n) return { fault: true };
        return { file: g, at };
      }
      if (g.profile.conversion !== null) {
        if (g.stateMap.map.valueAt(page) !== SHARED) {
          if (g.guestFault(page, page + 1n) >= 0n) return { fault: true };
          return { file: g, at };
        }
      }
    }
    const m = slot.mapping;
    if (!m) return { fault: false };
    const where = m.guestView(slot.userspaceOffset + rel, n);
    if ('fault' in where) return { fault: false };
    return { file: m.file, at: where.at };
  }
}
