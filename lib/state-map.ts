// Per-page conversion states of one guest_memfd, kept in an extent map (one entry per run of equal
// pages, so a 1 TiB range costs what a page costs): the native B+tree, or its TypeScript port
// (lib/extent-map.ts) where the addon is not loaded.
import { TsExtentMap } from './extent-map.js';
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

/** Which extent map newExtentMap() makes: 'native' when the addon loaded, else 'ts'. */
export const extentMapKind: 'native' | 'ts' = addonError ? 'ts' : 'native';

export function newExtentMap(pages: bigint, initial: number): NativeExtentMap {
  return extentMapKind === 'native'
    ? (new native.ExtentMap(pages, initial) as NativeExtentMap)
    : new TsExtentMap(pages, initial);
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

export class StateMap {
  readonly map: NativeExtentMap;
  constructor(
    readonly pages: bigint,
    initial: number,
  ) {
    this.map = newExtentMap(pages, initial);
  }

  set(firstPage: bigint, endPage: bigint, state: number): void {
    // Page numbers are below 2^53: numbers cross N-API cheaper than bigints.
    this.map.assign(Number(firstPage), Number(endPage), state);
  }

  /** The runs over pages [first, end) as [start, end, value] triples, in a shared buffer. */
  #runs(first: number, end: number): [Float64Array, number] {
    let n = this.map.queryInto(first, end, runsBuf);
    if (n < 0) {
      runsBuf = new Float64Array(-n * 3);
      n = this.map.queryInto(first, end, runsBuf);
    }
    return [runsBuf, n];
  }

  /** Extents over the byte range, clipped to it; pages past the file read as `beyond`. */
  extents(offset: bigint, length: bigint): Extent[] {
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
    const end = offset + length;
    const first = Math.floor(offset / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    const pages = Number(this.pages);
    const [runs, n] = this.#runs(first, last < pages ? last : pages);
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
  firstIn(first: bigint, end: bigint, state: number): bigint {
    if (first >= end) return -1n;
    const r = this.map.findFirst(first, end, state, true);
    return r < 0 ? -1n : BigInt(r);
  }

  /** First page in [first, end) NOT in the given state, or -1n. */
  firstNotIn(first: bigint, end: bigint, state: number): bigint {
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
