// The mapping port in the simulator: a MAP_SHARED window on a simulated guest_memfd. Host access
// follows the kernel's rule: a page that is not shared, or lies past i_size, is a SIGBUS, reported
// as HostAccessError with the first faulting byte. Writes and fills are all-or-nothing here (the
// real copy may or may not have stored the bytes before the fault; nothing should rely on them).
// view() hands out one ArrayBuffer that backs the mapping's pages while it lives (see pages.ts);
// like the real view it is detached on unmap and when any byte under it turns private.
import { HostAccessError, UnsupportedError } from '../errors.js';
import type { MapPort } from '../ports.js';
import { PAGE_SIZE } from '../validate.js';
import type { SimGuestMemfd } from './guest-memfd.js';
import type { ViewRegion } from './pages.js';

/** Largest mapping view() backs with one buffer. */
const MAX_VIEW = 1 << 30;

export class SimMapping implements MapPort {
  #closed = false;
  #view: ViewRegion | undefined;

  constructor(
    readonly file: SimGuestMemfd,
    readonly start: bigint,
    readonly len: bigint,
    private readonly onUnmap: (m: SimMapping) => void,
  ) {}

  #check(at: bigint, length: bigint, access: 'read' | 'write'): void {
    const fault = this.file.hostFault(at, length, this);
    // Number() as the native error factory does, also past 2^53.
    if (fault >= 0n) throw new HostAccessError(Number(fault), access);
  }

  read(offset: bigint | number, length: bigint | number): Buffer {
    const at = this.start + BigInt(offset);
    this.#check(at, BigInt(length), 'read');
    const buf = Buffer.alloc(Number(length));
    this.file.pages.read(at, buf);
    return buf;
  }

  readInto(offset: bigint | number, dst: Uint8Array): number {
    const at = this.start + BigInt(offset);
    this.#check(at, BigInt(dst.length), 'read');
    this.file.pages.read(at, dst);
    return dst.length;
  }

  write(offset: bigint | number, src: Uint8Array): void {
    const at = this.start + BigInt(offset);
    this.#check(at, BigInt(src.length), 'write');
    this.file.pages.write(at, src);
  }

  fill(offset: bigint | number, length: bigint | number, byte: number): void {
    const at = this.start + BigInt(offset);
    this.#check(at, BigInt(length), 'write');
    this.file.pages.fill(at, Number(length), byte);
  }

  /** Host bytes [offset, offset + length) of the mapping as the guest's userspace memory sees them, or the first bad offset. */
  guestView(offset: bigint, length: bigint): { at: bigint } | { fault: true } {
    // The guest sees the whole pages of the mapping (the VMA), not just its byte length.
    const pages = ((this.len + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE)) * BigInt(PAGE_SIZE);
    if (this.#closed || offset + length > pages) return { fault: true };
    const at = this.start + offset;
    if (this.file.hostFault(at, length, this) >= 0n) return { fault: true };
    return { at };
  }

  viewUnsupported(): UnsupportedError | undefined {
    if (this.#view) return undefined;
    if (this.len > BigInt(MAX_VIEW) || this.len % BigInt(PAGE_SIZE) !== 0n) {
      return new UnsupportedError(
        'Mapping.view',
        'Mapping.view in the simulator needs a page-multiple mapping length of at most 1 GiB',
      );
    }
    return undefined;
  }

  view(): ArrayBuffer {
    if (this.#view) return this.#view.buffer;
    const first = Number(this.start / BigInt(PAGE_SIZE));
    const pages = Number(this.len) / PAGE_SIZE;
    const filePages = Number(this.file.sizeBig / BigInt(PAGE_SIZE));
    const region = this.file.pages.attachView(first, first + pages, Number(this.len), filePages);
    if (!region)
      throw new UnsupportedError(
        'Mapping.view',
        "Mapping.view in the simulator: another mapping's live view already covers these pages",
      );
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
    this.onUnmap(this);
  }
}
