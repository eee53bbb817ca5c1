// Mapping in the simulator: a MAP_SHARED window on a simulated guest_memfd. Host access follows
// the kernel's rule: a page that is not shared, or lies past i_size, is a SIGBUS, reported as
// HostAccessError with the first faulting byte. Writes and fills are all-or-nothing here (the
// real copy may or may not have stored the bytes before the fault; nothing should rely on them).
// view() hands out one ArrayBuffer that backs the mapping's pages while it lives (see pages.ts);
// like the real view it is detached on unmap and when any byte under it turns private.
import { kMaxLength } from 'node:buffer';
import { HostAccessError, UnsupportedError, argRangeError, viewRefused } from '../errors.js';
import type { Mapping, U64 } from '../types.js';
import { PAGE_SIZE, byteValue, bytes, ensureOpen, num, u64 } from '../validate.js';
import type { SimGuestMemfd } from './guest-memfd.js';
import type { ViewRegion } from './pages.js';

/** Largest mapping view() backs with one buffer. */
const MAX_VIEW = 1 << 30;

export class SimMapping implements Mapping {
  readonly offset: number;
  readonly length: number;
  #closed = false;
  readonly #start: bigint;
  readonly #len: bigint;
  #view: ViewRegion | undefined;

  constructor(
    readonly file: SimGuestMemfd,
    offset: bigint,
    length: bigint,
    private readonly onClose: (m: SimMapping) => void,
  ) {
    this.#start = offset;
    this.#len = length;
    this.offset = num(offset);
    this.length = num(length);
  }

  get closed(): boolean {
    return this.#closed;
  }

  // As the native layer: argument types first, then open, then the range.
  #range(offset: bigint, length: bigint): bigint {
    ensureOpen(this.#closed, 'Mapping');
    if (offset > this.#len || length > this.#len - offset) throw argRangeError('range is outside the mapping');
    return this.#start + offset;
  }

  #check(at: bigint, length: bigint, access: 'read' | 'write'): void {
    const fault = this.file.hostFault(at, length, this);
    // Number() as the native error factory does, also past 2^53.
    if (fault >= 0n) throw new HostAccessError(Number(fault), access);
  }

  read(offset: U64, length: U64): Buffer {
    const off = u64('offset', offset);
    const len = u64('length', length);
    const at = this.#range(off, len);
    // As the kvm backend: larger than any Buffer is a RangeError, before any page is looked at.
    if (len > BigInt(kMaxLength)) throw argRangeError(`length ${len} is larger than the largest Buffer (${kMaxLength}); use readInto in pieces`);
    this.#check(at, len, 'read');
    const buf = Buffer.alloc(Number(len));
    this.file.pages.read(at, buf);
    return buf;
  }

  readInto(offset: U64, target: Uint8Array): number {
    const dst = bytes('target', target);
    const off = u64('offset', offset);
    const at = this.#range(off, BigInt(dst.length));
    this.#check(at, BigInt(dst.length), 'read');
    this.file.pages.read(at, dst);
    return dst.length;
  }

  write(offset: U64, data: ArrayBufferView): void {
    const src = bytes('data', data);
    const off = u64('offset', offset);
    const at = this.#range(off, BigInt(src.length));
    this.#check(at, BigInt(src.length), 'write');
    this.file.pages.write(at, src);
  }

  fill(offset: U64, length: U64, byte: number): void {
    const b = byteValue('byte', byte);
    const off = u64('offset', offset);
    const len = u64('length', length);
    const at = this.#range(off, len);
    this.#check(at, len, 'write');
    this.file.pages.fill(at, Number(len), b);
  }

  /** Host bytes [offset, offset + length) of the mapping as the guest's userspace memory sees them, or the first bad offset. */
  guestView(offset: bigint, length: bigint): { at: bigint } | { fault: true } {
    // The guest sees the whole pages of the mapping (the VMA), not just its byte length.
    const pages = ((this.#len + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE)) * BigInt(PAGE_SIZE);
    if (this.#closed || offset + length > pages) return { fault: true };
    const at = this.#start + offset;
    if (this.file.hostFault(at, length, this) >= 0n) return { fault: true };
    return { at };
  }

  view(): ArrayBuffer {
    ensureOpen(this.#closed, 'Mapping');
    if (this.#view) return this.#view.buffer;
    if (this.#len > BigInt(MAX_VIEW) || this.#len % BigInt(PAGE_SIZE) !== 0n) {
      throw new UnsupportedError('Mapping.view', 'Mapping.view in the simulator needs a page-multiple mapping length of at most 1 GiB');
    }
    // Refused where the model says the host may not touch (as the kvm backend does with its mirror).
    const fileEnd = this.file.sizeBig;
    const end = this.#start + this.#len > fileEnd ? fileEnd : this.#start + this.#len;
    const bad = this.#start < end ? this.file.states(this.#start, end - this.#start).find((x) => x.state !== 'shared') : undefined;
    if (bad) throw viewRefused(bad.offset);
    if (this.#start + this.#len > fileEnd) throw viewRefused(fileEnd);
    const first = Number(this.#start / BigInt(PAGE_SIZE));
    const pages = Number(this.#len) / PAGE_SIZE;
    const filePages = Number(this.file.sizeBig / BigInt(PAGE_SIZE));
    const region = this.file.pages.attachView(first, first + pages, Number(this.#len), filePages);
    if (!region) throw new UnsupportedError('Mapping.view', 'Mapping.view in the simulator: another mapping\'s live view already covers these pages');
    this.#view = region;
    // A view maps every page of the mapping.
    this.file.conversion.faultedIn(this, BigInt(first), BigInt(first + pages));
    return region.buffer;
  }

  /** Detaches the view, if any (unmap, close, or a range under the mapping turned private). */
  detachViews(): void {
    if (!this.#view) return;
    this.file.pages.detachView(this.#view);
    this.#view = undefined;
  }

  unmap(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.detachViews();
    this.onClose(this);
  }

  /** The owner closed. */
  markClosed(): void {
    this.#closed = true;
    this.detachViews();
  }

  close(): void {
    this.unmap();
  }

  [Symbol.dispose](): void {
    this.unmap();
  }
}
