// Per-page conversion states of one guest_memfd, kept in an extent map (one entry per run of equal
// pages, so a 1 TiB range costs what a page costs): the TypeScript map while it is small and the
// native B+tree once it is not (lib/extent-map-hybrid.ts), or the TypeScript map alone
// (lib/extent-map.ts) where the addon is not loaded.
import { TsExtentMap } from './extent-map.js';
import { HybridExtentMap } from './extent-map-hybrid.js';
import { addonError, native } from './native.js';
import type { NativeExtentMap } from './kvm/addon.js';

export type { NativeExtentMap };
import type { Extent, PageState } from './types.js';
import { PAGE_SIZE, num } from './validate.js';

export const SHARED = 0;
export const PRIVATE = 1;
export const PENDING = 2;
const names: PageState[] = ['shared', 'private', 'pending'];
const P = BigInt(PAGE_SIZE);

/** Which extent map newExtentMap() makes: 'native' (small maps in TypeScript, large ones native) when the addon loaded, else 'ts'. */
export const extentMapKind: 'native' | 'ts' = addonError ? 'ts' : 'native';

const nativeMap = (pages: number, initial: number): NativeExtentMap =>
  new native.ExtentMap(pages, initial) as NativeExtentMap;

export function newExtentMap(pages: bigint, initial: number): NativeExtentMap {
  return extentMapKind === 'native' ? new HybridExtentMap(pages, initial, nativeMap) : new TsExtentMap(pages, initial);
}

/** Byte range [offset, offset+length) as the page range that covers it. */
export function pageRange(offset: bigint, length: bigint): [bigint, bigint] {
  const first = offset / P;
  const end = (offset + length + P - 1n) / P;
  return [first, end];
}

/** queryInto's buffer, shared by every map (one call at a time: JS is single-threaded here). */
let runsBuf = new Float64Array(3 * 64);
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const SAFE_NUM = Number.MAX_SAFE_INTEGER;

export class StateMap {
  readonly map: NativeExtentMap;
  readonly #pagesNum: number;
  constructor(
    readonly pages: bigint,
    initial: number,
  ) {
    this.map = newExtentMap(pages, initial);
    this.#pagesNum = Number(pages);
  }

  set(firstPage: number | bigint, endPage: number | bigint, state: number): void {
    // Page numbers are below 2^53: numbers cross N-API cheaper than bigints.
    this.map.assign(Number(firstPage), Number(endPage), state);
  }

  /** How many runs over pages [first, end) queryInto wrote into runsBuf (grown when too short). */
  #runs(first: number, end: number): number {
    let n = this.map.queryInto(first, end, runsBuf);
    if (n < 0) {
      runsBuf = new Float64Array(-n * 3);
      n = this.map.queryInto(first, end, runsBuf);
    }
    return n;
  }

  /** Extents over the byte range, clipped to it; pages past the file read as `beyond`. */
  extents(offset: number | bigint, length: number | bigint): Extent[] {
    if (typeof offset === 'number' && typeof length === 'number' && offset + length + PAGE_SIZE <= SAFE_NUM)
      return this.#extentsSmall(offset, length);
    return this.#extentsBig(BigInt(offset), BigInt(length));
  }

  #extentsBig(offset: bigint, length: bigint): Extent[] {
    const out: Extent[] = [];
    if (length === 0n) return out;
    if (offset + length + P <= SAFE) return this.#extentsSmall(Number(offset), Number(length));
    const end = offset + length;
    const [first, last] = pageRange(offset, length);
    const runs = this.map.query(first, last < this.pages ? last : this.pages);
    for (let i = 0; i < runs.length; i += 3) {
      const s = BigInt(runs[i]!) * P;
      const e = BigInt(runs[i + 1]!) * P;
      const from = s > offset ? s : offset;
      const to = e < end ? e : end;
      pushExtent(out, from, to, names[runs[i + 2]!]!);
    }
    return out;
  }

  // Byte offsets that are safe integers: the same walk in plain numbers.
  #extentsSmall(offset: number, length: number): Extent[] {
    const out: Extent[] = [];
    if (length === 0) return out;
    const end = offset + length;
    const first = Math.floor(offset / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    const pages = this.#pagesNum;
    const n = this.#runs(first, last < pages ? last : pages);
    const runs = runsBuf;
    for (let i = 0; i < 3 * n; i += 3) {
      const s = runs[i]! * PAGE_SIZE;
      const e = runs[i + 1]! * PAGE_SIZE;
      const from = s > offset ? s : offset;
      const to = e < end ? e : end;
      if (to <= from) continue;
      const state = names[runs[i + 2]!]!;
      const prev = out[out.length - 1];
      if (prev && prev.state === state) prev.length += to - from;
      else out.push({ offset: from, length: to - from, state });
    }
    return out;
  }

  /** First page at or after `first` (and before `end`) in the given state, or -1n. */
  firstIn(first: number | bigint, end: number | bigint, state: number): bigint {
    if (first >= end) return -1n;
    const r = this.map.findFirst(first, end, state, true);
    return r < 0 ? -1n : BigInt(r);
  }

  /** First page in [first, end) NOT in the given state, or -1n. */
  firstNotIn(first: number | bigint, end: number | bigint, state: number): bigint {
    if (first >= end) return -1n;
    const r = this.map.findFirst(first, end, state, false);
    return r < 0 ? -1n : BigInt(r);
  }
}

function pushExtent(out: Extent[], from: bigint, to: bigint, state: PageState): void {
  if (to <= from) return;
  const prev = out[out.length - 1];
  if (prev && prev.state === state) {
    prev.length = num(BigInt(prev.length) + (to - from));
    return;
  }
  out.push({ offset: num(from), length: num(to - from), state });
}
