// Sparse page contents of one simulated guest_memfd: only pages ever written hold memory, so a
// 1 TiB file costs nothing until touched; a missing page reads as zeros. A Mapping.view() makes
// its pages windows into one ArrayBuffer (so the view and read/write see the same bytes) until
// the view is detached, when the pages get their own copies back.
import { PAGE_SIZE } from '../validate.js';

const P = BigInt(PAGE_SIZE);

/** Pages [first, end) backed by one ArrayBuffer handed out as a view. */
export interface ViewRegion {
  readonly first: number;
  readonly end: number;
  readonly buffer: ArrayBuffer;
}

export class PageStore {
  readonly #pages = new Map<number, Uint8Array>();
  readonly #views = new Set<ViewRegion>();
  readonly #viewBuffers = new Set<ArrayBuffer>();

  /** Pages holding memory now. */
  get count(): number {
    return this.#pages.size;
  }

  /** Copies file bytes [offset, offset + dst.length) into dst. */
  read(offset: bigint, dst: Uint8Array): void {
    this.#each(offset, dst.length, (page, at, pos, n) => {
      const p = this.#pages.get(page);
      if (p) dst.set(p.subarray(at, at + n), pos);
      else dst.fill(0, pos, pos + n);
    });
  }

  write(offset: bigint, src: Uint8Array): void {
    this.#each(offset, src.length, (page, at, pos, n) => {
      this.#page(page).set(src.subarray(pos, pos + n), at);
    });
  }

  fill(offset: bigint, length: number, byte: number): void {
    this.#each(offset, length, (page, at, _pos, n) => {
      // Zeros into a page never written change nothing: keep it sparse.
      if (byte === 0 && !this.#pages.has(page)) return;
      this.#page(page).fill(byte, at, at + n);
    });
  }

  /** Drops (zeroes) whole pages [first, end). Cost follows the smaller of the range and the store. */
  drop(first: number, end: number): void {
    if (end - first <= this.#pages.size) {
      for (let i = first; i < end; i++) this.#dropPage(i);
      return;
    }
    for (const k of [...this.#pages.keys()]) if (k >= first && k < end) this.#dropPage(k);
  }

  #dropPage(i: number): void {
    const p = this.#pages.get(i);
    if (!p) return;
    // A page under a live view keeps its place in the view's buffer: zero it there.
    if (this.#viewBuffers.has(p.buffer as ArrayBuffer)) p.fill(0);
    else this.#pages.delete(i);
  }

  /**
   * Backs pages [first, end) with one new buffer of `bytes` bytes (the pages' current contents
   * copied in), or returns null when another live view already backs one of them.
   */
  attachView(first: number, end: number, bytes: number, filePages: number): ViewRegion | null {
    for (const v of this.#views) if (first < v.end && v.first < end) return null;
    const buffer = new ArrayBuffer(bytes);
    const last = Math.min(end, filePages);
    for (let i = first; i < last; i++) {
      const window = new Uint8Array(buffer, (i - first) * PAGE_SIZE, PAGE_SIZE);
      const old = this.#pages.get(i);
      if (old) window.set(old);
      this.#pages.set(i, window);
    }
    const region = { first, end: last, buffer };
    this.#views.add(region);
    this.#viewBuffers.add(buffer);
    return region;
  }

  /** Gives the region's pages their own memory again and detaches its buffer. */
  detachView(region: ViewRegion): void {
    if (!this.#views.delete(region)) return;
    this.#viewBuffers.delete(region.buffer);
    for (let i = region.first; i < region.end; i++) {
      const p = this.#pages.get(i);
      if (!p || p.buffer !== region.buffer) continue;
      if (p.every((b) => b === 0)) this.#pages.delete(i);
      else this.#pages.set(i, p.slice());
    }
    structuredClone(region.buffer, { transfer: [region.buffer] });
  }

  #page(i: number): Uint8Array {
    let p = this.#pages.get(i);
    if (!p) {
      p = new Uint8Array(PAGE_SIZE);
      this.#pages.set(i, p);
    }
    return p;
  }

  // Visits [offset, offset + length) page by page: (page index, offset in page, position in the buffer, bytes).
  #each(offset: bigint, length: number, fn: (page: number, at: number, pos: number, n: number) => void): void {
    let page = Number(offset / P);
    let at = Number(offset % P);
    let pos = 0;
    while (pos < length) {
      const n = Math.min(PAGE_SIZE - at, length - pos);
      fn(page, at, pos, n);
      pos += n;
      page++;
      at = 0;
    }
  }
}
