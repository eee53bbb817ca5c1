// GuestMemfd, for both backends: argument checks and their order, the closed state and the close
// cascade to its mappings, detaching the views over a range that turned private, and the state
// mirror (what this process converted) where the port cannot report the kernel's own states.
import { fileRange, holdRange, mapArgs, statesRange } from '../args.js';
import { PRIVATE, SHARED, StateMap, pageRange } from '../state-map.js';
import type { Backend, GmemPort } from '../ports.js';
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

  #extents(offset: bigint, length: bigint): Extent[] {
    return this.port.states ? this.port.states(offset, length) : this.#states().extents(offset, length);
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
    const [off, len] = fileRange(this.#size, offset, length);
    const result = this.port.convert(to, off, len);
    if (!this.port.states) {
      const [first, end] = pageRange(off, len);
      this.#states().set(first, end, to === 'private' ? PRIVATE : SHARED);
    }
    if (to === 'private') {
      // A view over any page that left the shared state is detached (its touch would be a SIGBUS).
      for (const m of this.#mappings) {
        const mo = BigInt(m.offset);
        if (mo < off + len && off < mo + BigInt(m.length)) m.detachViews();
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
