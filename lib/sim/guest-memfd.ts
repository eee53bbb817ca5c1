// The guest_memfd port in the simulator: sparse contents, per-page conversion states and host holds in
// extent maps (cost follows the number of runs, not the range length), and the errno the kernel
// gives for every bad create/mmap/fallocate call (measured on Linux 6.18; see lib/sim/profiles.ts).
import { memfdFlagsOf } from '../args.js';
import { ConversionBusyError, UnsupportedError, kvmError } from '../errors.js';
import type { GmemPort, HoldPort } from '../ports.js';
import { PENDING, PRIVATE, SHARED, StateMap, newExtentMap, pageRange, type NativeExtentMap } from '../state-map.js';
import type { ConversionResult, Extent, FileStat, GuestMemfdFlags } from '../types.js';
import { PAGE_SIZE, num } from '../validate.js';
import { SimMapping } from './mapping.js';
import { PageStore } from './pages.js';
import { privateCommitRefused } from './commit.js';
import { LIMITS, type SimProfile } from './profiles.js';

const P = BigInt(PAGE_SIZE);
const ATTRS2 = 'KVM_SET_MEMORY_ATTRIBUTES2';
/** native/page_hold.h: PageHolds::kMaxPages. */
const MAX_HOLD_PAGES = 16384n;
let nextIno = 1000;

export class SimGuestMemfd implements GmemPort {
  readonly backend = 'sim' as const;
  readonly fd = -1;
  readonly size: number;
  readonly flags: GuestMemfdFlags;
  readonly rawFlags: bigint;
  readonly pages = new PageStore();
  /** Slots bound to page ranges of this file (kvm_gmem_bind refuses overlaps). */
  readonly bindings = new Set<{ first: bigint; end: bigint }>();
  #closed = false;
  readonly #size: bigint;
  readonly #pageCount: bigint;
  readonly #ino = nextIno++;
  #states: StateMap | undefined;
  #holds: NativeExtentMap | undefined;
  #mappings = new Set<SimMapping>();

  constructor(
    readonly profile: SimProfile,
    /** The VM that created the file (a slot of another VM may not bind it). */
    readonly owner: object,
    size: bigint,
    rawFlags: bigint,
    private readonly onClose: (g: SimGuestMemfd) => void,
  ) {
    this.#size = size;
    this.#pageCount = size / P;
    this.size = num(size);
    this.rawFlags = rawFlags;
    this.flags = memfdFlagsOf(rawFlags);
  }

  get closed(): boolean {
    return this.#closed;
  }
  get sizeBig(): bigint {
    return this.#size;
  }
  /** Pages whose contents take memory (not part of the public API: for tests and benchmarks). */
  get storedPages(): number {
    return this.pages.count;
  }

  /** Conversion states (made on first use; a file without conversions keeps its initial state). */
  get stateMap(): StateMap {
    if (!this.#states) this.#states = new StateMap(this.#pageCount, this.flags.initShared ? SHARED : PRIVATE);
    return this.#states;
  }

  #holdMap(): NativeExtentMap {
    if (!this.#holds) this.#holds = newExtentMap(this.#pageCount, 0);
    return this.#holds;
  }

  /** First byte of [offset, offset+length) the host may not touch (not shared, or past i_size), or -1n. */
  hostFault(offset: bigint, length: bigint): bigint {
    if (length === 0n) return -1n;
    const [first, end] = pageRange(offset, length);
    const inFile = end < this.#pageCount ? end : this.#pageCount;
    if (first < inFile) {
      const bad = this.flags.initShared && !this.#states ? -1n : this.stateMap.firstNotIn(first, inFile, SHARED);
      if (bad >= 0n) return bad * P > offset ? bad * P : offset;
    }
    if (end > this.#pageCount) return this.#size > offset ? this.#size : offset;
    return -1n;
  }

  /** First page in [first, end) the guest may not map in this profile, or -1n. */
  guestFault(first: bigint, end: bigint): bigint {
    // PVM (6.18) type-0 VM: a private page is not memory to its guest (MMIO exit). Mainline serves
    // MMAP files' pages to the guest without asking (guest.ts); this answers the other paths.
    if (this.profile.conversion === null) return this.flags.initShared ? -1n : first;
    if (!this.#states) return -1n;
    return this.stateMap.firstIn(first, end, PENDING);
  }

  map(off: bigint, len: bigint, priv: boolean): SimMapping {
    // The kernel's order: the syscall's alignment check, do_mmap's length checks, the address
    // space, file_mmap_ok's size limit, then guest_memfd's own mmap handler.
    // The arguments in the message as native/guest_memfd.cc writes them.
    const mmapError = (code: string) => kvmError(code, 'mmap', undefined, undefined, `offset ${off}, length ${len}`);
    if (off % P !== 0n) throw mmapError('EINVAL');
    if (len === 0n) throw mmapError('EINVAL');
    const rounded = ((len + P - 1n) / P) * P;
    if (rounded > LIMITS.maxMapBytes) throw mmapError('ENOMEM');
    if (off + rounded > LIMITS.maxFileBytes) throw mmapError('EOVERFLOW');
    // mmap_region charges a private writable mapping before guest_memfd's handler runs.
    if (priv && privateCommitRefused(rounded)) throw mmapError('ENOMEM');
    if (!this.flags.mmap) throw mmapError('ENODEV');
    if (priv) throw mmapError('EINVAL');
    const m = new SimMapping(this, off, len, (x) => this.#mappings.delete(x));
    this.#mappings.add(m);
    return m;
  }

  // The conversion call of the series profiles: page-aligned and non-empty, as KVM_SET_MEMORY_ATTRIBUTES2.
  #convertRange(off: bigint, len: bigint): [bigint, bigint] {
    if (this.profile.conversion === null) {
      throw new UnsupportedError(
        'in-place conversion',
        'in-place conversion is not supported by this kernel (the simulator\'s linux-6.18 profile has no KVM_SET_MEMORY_ATTRIBUTES2 or KVM_GMEM_CONVERT_*)',
      );
    }
    if (len === 0n || off % P !== 0n || len % P !== 0n) throw kvmError('EINVAL', 'ioctl', ATTRS2);
    return [off / P, (off + len) / P];
  }

  convert(to: 'shared' | 'private', offset: bigint, length: bigint): ConversionResult {
    const [first, end] = this.#convertRange(offset, length);
    if (to === 'private') return this.#unshare(first, end);
    // Shared cancels a pending to-private conversion (rfc-v5) and never checks holds.
    this.stateMap.set(first, end, SHARED);
    return { pending: [] };
  }

  #unshare(first: bigint, end: bigint): ConversionResult {
    const held = this.#holds ? this.#holds.findFirst(first, end, 0, false) : -1;
    if (this.profile.conversion === 'inplace-v8') {
      if (held >= 0) throw new ConversionBusyError(Number(BigInt(held) * P), undefined, ATTRS2);
      this.stateMap.set(first, end, PRIVATE);
      return { pending: [] };
    }
    const states = this.stateMap;
    states.set(first, end, PRIVATE);
    if (held < 0) return { pending: [] };
    // Held pages wait (pending) until their last hold goes.
    const runs = this.#holds!.query(BigInt(held), end);
    for (let i = 0; i < runs.length; i += 3) {
      if (runs[i + 2]! > 0) states.set(BigInt(runs[i]!), BigInt(runs[i + 1]!), PENDING);
    }
    return { pending: states.extents(first * P, (end - first) * P).filter((e) => e.state === 'pending') };
  }

  states(offset: bigint, length: bigint): Extent[] {
    return this.stateMap.extents(offset, length);
  }

  // vfs_fallocate's checks, then guest_memfd's: EINVAL for an empty or unaligned range, EFBIG past
  // the largest file, and (allocate only) EINVAL for pages past i_size.
  #fallocate(off: bigint, len: bigint, punch: boolean): [bigint, bigint] {
    const fallocateError = (code: string) =>
      kvmError(code, 'fallocate', undefined, undefined, `${punch ? 'punch hole' : 'allocate'}, offset ${off}, length ${len}`);
    if (len === 0n) throw fallocateError('EINVAL');
    if (off + len > LIMITS.maxFileBytes) throw fallocateError('EFBIG');
    if (off % P !== 0n || len % P !== 0n) throw fallocateError('EINVAL');
    if (!punch && off + len > this.#size) throw fallocateError('EINVAL');
    return [off / P, (off + len) / P];
  }

  fallocate(mode: 'allocate' | 'punch', offset: bigint, length: bigint): void {
    // Allocation is not observable here (the kernel's st_blocks stays 0 and new pages read zero).
    if (mode === 'allocate') {
      this.#fallocate(offset, length, false);
      return;
    }
    const [first, end] = this.#fallocate(offset, length, true);
    const last = end < this.#pageCount ? end : this.#pageCount;
    // Contents go; the conversion state stays (a private page refaults as zero).
    if (first < last) this.pages.drop(Number(first), Number(last));
  }

  hold(off: bigint, len: bigint): HoldPort {
    const [first, end] = pageRange(off, len);
    if (this.profile.conversion === null) {
      // As the kvm backend takes a hold on this kernel (lib/kvm/guest-memfd.ts): mmap of the
      // range (ENODEV without MMAP), then vmsplice, which refuses a page the host may not map.
      if (end - first > MAX_HOLD_PAGES) throw new UnsupportedError('hold', 'a hold on the kvm backend covers at most 64 MiB (its pipe buffers are quota-limited)');
      if (!this.flags.mmap) throw kvmError('ENODEV', 'mmap');
      if (this.hostFault(first * P, (end - first) * P) >= 0n) throw kvmError('EFAULT', 'vmsplice');
    }
    this.#holdMap().add(first, end, 1);
    return {
      release: () => {
        if (!this.#closed) this.#release(first, end);
      },
    };
  }

  #release(first: bigint, end: bigint): void {
    const holds = this.#holdMap();
    holds.add(first, end, -1);
    if (this.profile.conversion !== 'rfc-v5' || !this.#states) return;
    // A pending page whose last hold went completes its conversion (kvm_gmem_handle_folio_put).
    const states = this.#states;
    const pending = states.map.query(first, end);
    for (let i = 0; i < pending.length; i += 3) {
      if (pending[i + 2] !== PENDING) continue;
      const counts = holds.query(pending[i]!, pending[i + 1]!);
      for (let j = 0; j < counts.length; j += 3) {
        if (counts[j + 2] === 0) states.set(BigInt(counts[j]!), BigInt(counts[j + 1]!), PRIVATE);
      }
    }
  }

  stat(): FileStat {
    // As 6.18 reports a guest_memfd: a 0600 regular file, st_blocks always 0.
    return { size: this.size, blksize: PAGE_SIZE, blocks: 0, ino: this.#ino, dev: 0, mode: 0o100600 };
  }

  /** Idempotent; the file's mappings go with it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of [...this.#mappings]) m.unmap();
    this.onClose(this);
  }
}
