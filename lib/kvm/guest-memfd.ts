// GuestMemfd on the real backend: mmap, fallocate, and conversion through whichever ioctl this
// kernel has, with a mirror of the states this process set so states() answers here too.
import { fileRange, holdRange, mapArgs, statesRange } from '../args.js';
import { UnsupportedError } from '../errors.js';
import { PRIVATE, SHARED, StateMap, pageRange } from '../state-map.js';
import type { ConversionResult, Extent, FileStat, GuestMemfd, GuestMemfdFlags, Hold, MapOptions, Mapping, U64 } from '../types.js';
import { PAGE_SIZE, ensureOpen, i64, num } from '../validate.js';
import { KvmMapping } from './mapping.js';
import type { NativeConversion, NativeGuestMemfd } from './addon.js';
import { Children } from './children.js';
import { HostHold } from '../hold.js';

/** A hold on the real backend: the pipes the native side keeps for it, by id. */
export class KvmHold extends HostHold {
  constructor(offset: number, length: number, readonly id: number, native: NativeGuestMemfd) {
    // A file already closed released its holds; the id is then unknown there, a no-op.
    super(offset, length, () => native.releaseHold(id));
  }
}

/** The file behind each mapping (vm.guest asks which file a slot's userspace memory shows). */
export const mappingFile = new WeakMap<KvmMapping, KvmGuestMemfd>();

export class KvmGuestMemfd implements GuestMemfd {
  readonly size: number;
  readonly flags: GuestMemfdFlags;
  readonly rawFlags: bigint;
  #closed = false;
  #size: bigint;
  #mirror: StateMap | undefined;
  #mappings = new Children<KvmMapping>();
  #mechanism: NativeConversion | null | undefined;

  constructor(
    readonly native: NativeGuestMemfd,
    size: bigint,
    rawFlags: bigint,
    private readonly onClose: (g: KvmGuestMemfd) => void,
  ) {
    this.#size = size;
    this.size = num(size);
    this.rawFlags = rawFlags;
    this.flags = { mmap: (rawFlags & 1n) !== 0n, initShared: (rawFlags & 2n) !== 0n };
  }

  get fd(): number {
    return this.#closed ? -1 : this.native.fd;
  }
  get closed(): boolean {
    return this.#closed;
  }

  // The mirror is made on first use: most files never ask for their states.
  #states(): StateMap {
    if (!this.#mirror) {
      const pages = (this.#size + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE);
      this.#mirror = new StateMap(pages, this.flags.initShared ? SHARED : PRIVATE);
    }
    return this.#mirror;
  }

  map(offset: U64 = 0, length?: U64, opts?: MapOptions): Mapping {
    ensureOpen(this.#closed, 'GuestMemfd');
    const { offset: off, length: len, private: priv } = mapArgs(this.#size, offset, length, opts);
    const m = new KvmMapping(this.native.map(off, len, priv), (x) => this.#mappings.delete(x), (o, l) => this.#firstUnshared(o, l));
    this.#mappings.add(m);
    mappingFile.set(m, this);
    return m;
  }

  /** The first byte of [offset, offset + length) the host may not touch as far as this process knows, or null. */
  #firstUnshared(offset: bigint, length: bigint): bigint | null {
    if (this.#closed) return null;
    const end = offset + length > this.#size ? this.#size : offset + length;
    if (offset < end) {
      const e = this.#states().extents(offset, end - offset).find((x) => x.state !== 'shared');
      if (e) return BigInt(e.offset);
    }
    return offset + length > this.#size ? this.#size : null;
  }

  #checkRange(offset: U64, length: U64): [bigint, bigint] {
    ensureOpen(this.#closed, 'GuestMemfd');
    return fileRange(this.#size, offset, length);
  }

  #mechanismFound(): NativeConversion | null {
    if (this.#mechanism === undefined) this.#mechanism = this.native.probeConversion();
    return this.#mechanism;
  }

  #convert(offset: U64, length: U64, toPrivate: boolean): void {
    const [off, len] = this.#checkRange(offset, length);
    const mech = this.#mechanismFound();
    if (mech === null) {
      throw new UnsupportedError(
        'in-place conversion',
        'in-place conversion is not supported by this kernel (no KVM_SET_MEMORY_ATTRIBUTES2 or KVM_GMEM_CONVERT_* on guest_memfd)',
      );
    }
    this.native.convert(mech, toPrivate, off, len);
    const [first, end] = pageRange(off, len);
    this.#states().set(first, end, toPrivate ? PRIVATE : SHARED);
    if (toPrivate) {
      for (const m of this.#mappings) {
        const mo = BigInt(m.offset);
        if (mo < off + len && off < mo + BigInt(m.length)) m.detachViews();
      }
    }
  }

  share(offset: U64, length: U64): void {
    this.#convert(offset, length, false);
  }

  unshare(offset: U64, length: U64): ConversionResult {
    this.#convert(offset, length, true);
    return { pending: [] };
  }

  states(offset: U64 = 0, length?: U64): Extent[] {
    ensureOpen(this.#closed, 'GuestMemfd');
    const [o, l] = statesRange(this.#size, offset, length);
    return this.#states().extents(o, l);
  }

  allocate(offset: U64, length: U64): void {
    ensureOpen(this.#closed, 'GuestMemfd');
    this.native.fallocate('allocate', i64('offset', offset), i64('length', length));
  }

  punchHole(offset: U64, length: U64): void {
    ensureOpen(this.#closed, 'GuestMemfd');
    this.native.fallocate('punch', i64('offset', offset), i64('length', length));
  }

  /**
   * Host references on the pages, taken as a process can: the range is mapped and vmspliced into
   * pipes, which keep a reference on each page until release() (or the file's close) drops them.
   * The pages must be ones the host may map: a private page is KvmError EFAULT (vmsplice).
   */
  hold(offset: U64, length: U64): Hold {
    ensureOpen(this.#closed, 'GuestMemfd');
    const [off, len] = holdRange(this.#size, offset, length);
    const id = this.native.hold(off, len);
    return new KvmHold(num(off), num(len), id, this.native);
  }

  stat(): FileStat {
    ensureOpen(this.#closed, 'GuestMemfd');
    return this.native.stat();
  }

  /** The owner closed the file; mark this and its mappings. */
  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#mappings.drain()) m.markClosed();
  }

  close(): void {
    if (this.#closed) return;
    this.native.close();
    this.markClosed();
    this.onClose(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
