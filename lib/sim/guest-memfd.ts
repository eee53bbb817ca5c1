// The guest_memfd port in the simulator: sparse contents, and the errno the kernel gives for every
// bad create/mmap/fallocate call (measured on Linux 6.18; see lib/sim/profiles.ts). Conversion
// states, host references and what host and guest may touch are the profile's conversion model's
// (lib/sim/conversion/): this file only delegates to it.
import { kvmError } from '../errors.js';
import type { GmemPort, HoldPort, Offset } from '../ports.js';
import { StateMap, pageRange } from '../state-map.js';
import type { ConversionResult, Extent, FileStat, GuestMemfdFlags } from '../types.js';
import { PAGE_SIZE, num } from '../validate.js';
import { SimMapping } from './mapping.js';
import { PageStore } from './pages.js';
import { privateCommitRefused } from './commit.js';
import { LIMITS, type SimProfile } from './profiles.js';
import type { FileConversion } from './conversion/index.js';

const P = BigInt(PAGE_SIZE);
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
  readonly #conv: FileConversion;
  #mappings = new Set<SimMapping>();

  constructor(
    readonly profile: SimProfile,
    /** The VM that created the file (a slot of another VM may not bind it). */
    readonly owner: { readonly type: number },
    size: bigint,
    rawFlags: bigint,
    private readonly onClose: (g: SimGuestMemfd) => void,
  ) {
    this.#size = size;
    this.#pageCount = size / P;
    this.size = num(size);
    this.rawFlags = rawFlags;
    const pageCount = this.#pageCount;
    const isClosed = () => this.closed;
    const hasPrivateMem = profile.privateMemVmTypes.has(owner.type);
    this.#conv = profile.conversion.attach({
      rawFlags,
      pageCount,
      hasPrivateMem,
      get closed() {
        return isClosed();
      },
    });
    this.flags = this.#conv.flags;
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

  /** The file's conversion state and rules (the profile's conversion model). */
  get conversion(): FileConversion {
    return this.#conv;
  }

  /** Conversion states (made on first use; a file without conversions keeps its initial state). */
  get stateMap(): StateMap {
    return this.#conv.states;
  }

  /** First byte of [offset, offset+length) the host may not touch through `via` (the model's refusal, or past i_size), or -1n. */
  hostFault(offset: bigint, length: bigint, via?: SimMapping): bigint {
    if (length === 0n) return -1n;
    const [first, end] = pageRange(offset, length);
    const inFile = end < this.#pageCount ? end : this.#pageCount;
    if (first < inFile) {
      const bad = this.#conv.hostRefused(first, inFile, via);
      if (bad >= 0n) return bad * P > offset ? bad * P : offset;
    }
    if (end > this.#pageCount) return this.#size > offset ? this.#size : offset;
    return -1n;
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
    const refused = this.#conv.mmapError(priv);
    if (refused) throw mmapError(refused);
    const m = new SimMapping(this, off, len, (x) => {
      this.#mappings.delete(x);
      this.#conv.unmapped(x);
    });
    this.#mappings.add(m);
    return m;
  }

  /** Offsets were checked to lie in the file (the core); the model checks the rest. */
  convert(to: 'shared' | 'private', offset: Offset, length: Offset): ConversionResult {
    if (to === 'private') return this.#conv.unshare(offset, length);
    this.#conv.share(offset, length);
    return { pending: [] };
  }

  states(offset: Offset, length: Offset): Extent[] {
    return this.#conv.extents(offset, length);
  }

  // vfs_fallocate's checks, then guest_memfd's: EINVAL for an empty or unaligned range, EFBIG past
  // the largest file, and (allocate only) EINVAL for pages past i_size.
  #fallocate(off: bigint, len: bigint, punch: boolean): [bigint, bigint] {
    const fallocateError = (code: string) =>
      kvmError(
        code,
        'fallocate',
        undefined,
        undefined,
        `${punch ? 'punch hole' : 'allocate'}, offset ${off}, length ${len}`,
      );
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
    if (first < last) {
      this.pages.drop(Number(first), Number(last));
      this.#conv.punched(first, last);
    }
  }

  hold(off: bigint, len: bigint): HoldPort {
    const [first, end] = pageRange(off, len);
    this.#conv.hold(first, end);
    return {
      release: () => {
        if (!this.#closed) this.#conv.release(first, end);
      },
    };
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
