// GuestMemfd, for both backends: argument checks and their order, the closed state and the close
// cascade to its mappings, detaching the views over a range that turned private, and the state
// mirror (what this process converted) where the port cannot report the kernel's own states.
import { fileRange, holdRange, mapArgs, statesRange } from '../args.js';
import { PRIVATE, SHARED, StateMap, pageRange } from '../state-map.js';
import type { Backend, GmemPort, Offset } from '../ports.js';
import type {
  ConversionResult,
  Extent,
  FileStat,
  GuestMemfd as GuestMemfdApi,
  GuestMemfdFlags,
  Hold,
  MapOptions,
  U64,
} from '../types.js';
import { PAGE_SIZE, ensureOpen, i64, num } from '../validate.js';
import { memfdFlagsOf } from '../args.js';
import { Children } from './children.js';
import { HostHold } from './hold.js';
import { Mapping, type MappedFile } from './mapping.js';
import { Owned } from './owned.js';

export class GuestMemfd extends Owned implements GuestMemfdApi, MappedFile {
  readonly size: number;
  readonly flags: GuestMemfdFlags;
  readonly rawFlags: bigint;
  readonly #size: bigint;
  /** The size when it is a safe integer, else -1: offsets in numbers below it need no BigInt. */
  readonly #sizeNum: number;
  #mirror: StateMap | undefined;
  #mappings = new Children<Mapping>();

  constructor(
    readonly port: GmemPort,
    size: bigint,
    rawFlags: bigint,
    onClose: (g: GuestMemfd) => void,
  ) {
    super(onClose);
    this.#size = size;
    this.size = num(size);
    this.#sizeNum = size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : -1;
    this.rawFlags = rawFlags;
    this.flags = port.flags ?? memfdFlagsOf(rawFlags);
  }

  get backend(): Backend {
    return this.port.backend;
  }
  get fd(): number {
    return this.closed ? -1 : this.port.fd;
  }
  get sizeBig(): bigint {
    return this.#size;
  }

  // The mirror is made on first use: most files never ask for their states.
  #states(): StateMap {
    if (!this.#mirror) {
      const pages = (this.#size + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE);
      this.#mirror = new StateMap(pages, this.flags.initShared ? SHARED : PRIVATE);
    }
    return this.#mirror;
  }

  #extents(offset: Offset, length: Offset): Extent[] {
    return this.port.states ? this.port.states(offset, length) : this.#states().extents(offset, length);
  }

  /**
   * Offset and length are safe-integer numbers with the range inside the file: the checks
   * fileRange makes, in numbers (the hot path from JS; anything else takes fileRange and its errors).
   */
  #quick(offset: unknown, length: unknown): boolean {
    return (
      typeof offset === 'number' &&
      typeof length === 'number' &&
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset >= 0 &&
      length >= 0 &&
      offset + length <= this.#sizeNum
    );
  }

  map(offset: U64 = 0, length?: U64, opts?: MapOptions): Mapping {
    ensureOpen(this.closed, 'GuestMemfd');
    const { offset: off, length: len, private: priv } = mapArgs(this.#size, offset, length, opts);
    const m = new Mapping(this.port.map(off, len, priv), this, off, len, (x) => this.#mappings.delete(x));
    this.#mappings.add(m);
    return m;
  }

  firstUnshared(offset: bigint, length: bigint): bigint | null {
    if (this.closed) return null;
    const end = offset + length > this.#size ? this.#size : offset + length;
    if (offset < end) {
      const e = this.#extents(offset, end - offset).find((x) => x.state !== 'shared');
      if (e) return BigInt(e.offset);
    }
    return offset + length > this.#size ? this.#size : null;
  }

  #convert(offset: U64, length: U64, to: 'shared' | 'private'): ConversionResult {
    ensureOpen(this.closed, 'GuestMemfd');
    let off: Offset;
    let len: Offset;
    // `+ 0` makes -0 a 0, as BigInt(-0) would.
    if (this.#quick(offset, length)) {
      off = (offset as number) + 0;
      len = (length as number) + 0;
    } else {
      const r = fileRange(this.#size, offset, length);
      off = r[0];
      len = r[1];
    }
    const result = this.port.convert(to, off, len);
    if (!this.port.states) {
      const [first, end] = pageRange(BigInt(off), BigInt(len));
      this.#states().set(first, end, to === 'private' ? PRIVATE : SHARED);
    }
    if (to === 'private' && this.#mappings.size > 0) {
      // A view over any page that left the shared state is detached (its touch would be a SIGBUS).
      const o = BigInt(off);
      const e = o + BigInt(len);
      for (const m of this.#mappings) {
        const mo = BigInt(m.offset);
        if (mo < e && o < mo + BigInt(m.length)) m.detachViews();
      }
    }
    return result;
  }

  share(offset: U64, length: U64): void {
    this.#convert(offset, length, 'shared');
  }

  unshare(offset: U64, length: U64): ConversionResult {
    return this.#convert(offset, length, 'private');
  }

  states(offset: U64 = 0, length?: U64): Extent[] {
    ensureOpen(this.closed, 'GuestMemfd');
    if (typeof offset === 'number') {
      const len = length === undefined ? this.#sizeNum - offset : length;
      if (this.#quick(offset, len)) return this.#extents(offset + 0, (len as number) + 0);
    }
    const [o, l] = statesRange(this.#size, offset, length);
    return this.#extents(o, l);
  }

  allocate(offset: U64, length: U64): void {
    ensureOpen(this.closed, 'GuestMemfd');
    this.port.fallocate('allocate', i64('offset', offset), i64('length', length));
  }

  punchHole(offset: U64, length: U64): void {
    ensureOpen(this.closed, 'GuestMemfd');
    this.port.fallocate('punch', i64('offset', offset), i64('length', length));
  }

  hold(offset: U64, length: U64): Hold {
    ensureOpen(this.closed, 'GuestMemfd');
    const [off, len] = holdRange(this.#size, offset, length);
    return new HostHold(num(off), num(len), this.port.hold(off, len));
  }

  stat(): FileStat {
    ensureOpen(this.closed, 'GuestMemfd');
    return this.port.stat();
  }

  protected teardown(): void {
    for (const m of this.#mappings.drain()) m.markClosed();
    this.port.close();
  }
}
