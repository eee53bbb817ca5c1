// The extent map in TypeScript: what the simulator uses where the native addon cannot load (no
// compiler, macOS, `npm install --ignore-scripts`). The same API, argument checks, errors and
// results as native/extent_map.cc (test/extent-map-ts.test.ts holds the two equal on random
// operation sequences); only bytesUsed() and depth() describe this structure instead of the B+tree.
// Page ranges [start, end) map to a uint32 value, kept canonical (no two adjacent extents share a
// value) as two sorted arrays: extent starts and their values, an extent ending where the next
// starts. A lookup is a binary search; an edit moves the entries after it (a memmove, as a B+tree
// leaf does, but over the whole map: O(n) where the native tree is O(log n)).
import { argRangeError, argTypeError } from './errors.js';

/** native/extent_map_binding.cc: kMaxPages, so every page and end is a safe integer. */
const MAX_PAGES = Number.MAX_SAFE_INTEGER;
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** How the native layer describes a bad value (errors.cc Got()). */
function got(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  return 'an object';
}

/** errors.cc GetU64: a number when it is a safe integer, else the bigint (up to 2^64-1). */
function u64(v: unknown, name: string): number | bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0)
      throw argRangeError(`${name} must be a non-negative safe integer, got ${got(v)}`);
    return v === 0 ? 0 : v; // -0 reads as 0, as the native double-to-integer cast makes it
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw argRangeError(`${name} must be between 0 and 2^64-1, got ${got(v)}`);
    return v <= BigInt(MAX_PAGES) ? Number(v) : v;
  }
  throw argTypeError(`${name} must be a number or a bigint, got ${got(v)}`);
}

/** errors.cc GetU32. */
function u32(v: unknown, name: string): number {
  const x = u64(v, name);
  if (typeof x === 'bigint' || x > U32_MAX) throw argRangeError(`${name} must fit in 32 bits, got ${x}`);
  return x;
}

/** extent_map_binding.cc GetI64, clamped to what can matter for a uint32 value (|delta| <= 2^33). */
function i64(v: unknown, name: string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw argRangeError(`${name} must be a safe integer`);
    return v;
  }
  if (typeof v === 'bigint') {
    if (v < I64_MIN || v > I64_MAX) throw argRangeError(`${name} must be between -2^63 and 2^63-1`);
    const cap = 1n << 33n;
    return Number(v > cap ? cap : v < -cap ? -cap : v);
  }
  throw argTypeError(`${name} must be a number or a bigint`);
}

/** a > b over the two forms u64() returns. */
function greater(a: number | bigint, b: number | bigint): boolean {
  return typeof a === 'number' && typeof b === 'number' ? a > b : BigInt(a) > BigInt(b);
}

export class TsExtentMap {
  #pages: number;
  /** Extent starts, sorted; keys[0] is 0 whenever pages > 0. */
  #keys: Float64Array;
  #vals: Uint32Array;
  #n = 0;

  constructor(pages: unknown, initial?: unknown) {
    const p = u64(pages, 'pages');
    if (greater(p, MAX_PAGES)) throw argRangeError('pages must be at most 2^53-1');
    const value = u32(initial, 'initial');
    this.#pages = p as number;
    this.#keys = new Float64Array(8);
    this.#vals = new Uint32Array(8);
    if (this.#pages > 0) {
      this.#keys[0] = 0;
      this.#vals[0] = value;
      this.#n = 1;
    }
  }

  get pages(): number {
    return this.#pages;
  }

  extentCount(): number {
    return this.#n;
  }

  /** The two arrays' bytes (their capacity, not only the entries in use). */
  bytesUsed(): number {
    return this.#keys.byteLength + this.#vals.byteLength;
  }

  /** Levels of the structure: this one is flat. */
  depth(): number {
    return 1;
  }

  assign(start: unknown, end: unknown, value: unknown): void {
    const [s, e] = this.#range(start, end);
    this.#assign(s, e, typeof value === 'number' && value >>> 0 === value ? value : u32(value, 'value'));
  }

  add(start: unknown, end: unknown, delta: unknown): void {
    const [s, e] = this.#range(start, end);
    const d = i64(delta, 'delta');
    if (s === e || d === 0) return;
    // Every extent first, so a failure changes nothing.
    for (let i = this.#index(s); i < this.#n && this.#keys[i]! < e; i++) {
      const v = this.#vals[i]! + d;
      if (v < 0) throw argRangeError('add would take a value below 0; the map is unchanged');
      if (v > U32_MAX) throw argRangeError('add would take a value above 2^32-1; the map is unchanged');
    }
    this.#split(s);
    if (e < this.#pages) this.#split(e);
    for (let i = this.#index(s); i < this.#n && this.#keys[i]! < e; i++) this.#vals[i] = this.#vals[i]! + d;
    // Inside the range neighbours stayed different; only the two edges can now merge.
    this.#mergeAt(e);
    this.#mergeAt(s);
  }

  query(start: unknown, end: unknown): Float64Array {
    const [s, e] = this.#range(start, end);
    const n = this.#runCount(s, e);
    const out = new Float64Array(3 * n);
    this.#writeRuns(s, e, out);
    return out;
  }

  /** As native queryInto: the runs written into `out`, or minus their number when `out` is too short. */
  queryInto(start: unknown, end: unknown, out: unknown): number {
    const [s, e] = this.#range(start, end);
    if (!(out instanceof Float64Array)) throw argTypeError('out must be a Float64Array');
    if (s === e) return 0;
    // One search for each end, shared by the count and the copy.
    const first = this.#index(s);
    const last = this.#lowerBound(e);
    const n = last - first;
    if (3 * n > out.length) return -n;
    let o = 0;
    for (let i = first; i < last; i++) {
      const k = this.#keys[i]!;
      out[o++] = k > s ? k : s;
      out[o++] = i + 1 < last ? this.#keys[i + 1]! : e;
      out[o++] = this.#vals[i]!;
    }
    return n;
  }

  valueAt(page: unknown): number {
    const p = u64(page, 'page');
    if (!greater(this.#pages, p)) throw argRangeError("page must be less than the map's pages");
    return this.#vals[this.#index(p as number)]!;
  }

  findFirst(start: unknown, end: unknown, value: unknown, equal: unknown): number {
    const [s, e] = this.#range(start, end);
    const v = u32(value, 'value');
    if (typeof equal !== 'boolean') throw argTypeError('equal must be a boolean');
    if (s === e) return -1;
    for (let i = this.#index(s); i < this.#n && this.#keys[i]! < e; i++) {
      if ((this.#vals[i] === v) === equal) return Math.max(this.#keys[i]!, s);
    }
    return -1;
  }

  /** Grows (new pages take fill) or shrinks the covered range to [0, pages). */
  resize(pages: unknown, fill: unknown): void {
    const p = u64(pages, 'pages');
    if (greater(p, MAX_PAGES)) throw argRangeError('pages must be at most 2^53-1');
    const f = u32(fill, 'fill');
    const to = p as number;
    if (to < this.#pages) {
      this.#n = this.#lowerBound(to);
    } else if (to > this.#pages) {
      if (this.#n === 0) this.#insertAt(0, 0, f);
      else if (this.#vals[this.#n - 1] !== f) this.#insertAt(this.#n, this.#pages, f);
    }
    this.#pages = to;
  }

  /** '' when the arrays are canonical, else what is wrong (linear time; for tests). */
  checkInvariants(): string {
    if (this.#pages === 0) return this.#n === 0 ? '' : 'empty map holds extents';
    if (this.#n === 0 || this.#keys[0] !== 0) return 'the first extent does not start at 0';
    for (let i = 1; i < this.#n; i++) {
      const k = this.#keys[i]!;
      if (k <= this.#keys[i - 1]! || k >= this.#pages || this.#vals[i] === this.#vals[i - 1]) {
        return `extent at ${k} is out of order, past the end, or equal to its neighbour`;
      }
    }
    return '';
  }

  // start and end as page numbers with start <= end <= pages, or the native binding's error.
  #range(start: unknown, end: unknown): [number, number] {
    // The common case first: safe integers in range (`+ 0` turns -0 into 0, as u64 does).
    if (
      typeof start === 'number' &&
      typeof end === 'number' &&
      start >= 0 &&
      start <= end &&
      end <= this.#pages &&
      Number.isSafeInteger(start) &&
      Number.isSafeInteger(end)
    )
      return [start + 0, end + 0];
    const s = u64(start, 'start');
    const e = u64(end, 'end');
    if (greater(s, e)) throw argRangeError('start must not be greater than end');
    if (greater(e, this.#pages)) throw argRangeError("end must not be greater than the map's pages");
    return [s as number, e as number];
  }

  /** First index whose key is >= x. */
  #lowerBound(x: number): number {
    let lo = 0;
    let hi = this.#n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the extent holding page x (0 <= x < pages). */
  #index(x: number): number {
    const i = this.#lowerBound(x + 1) - 1;
    return i < 0 ? 0 : i;
  }

  #runCount(s: number, e: number): number {
    return s === e ? 0 : this.#lowerBound(e) - this.#index(s);
  }

  #writeRuns(s: number, e: number, out: Float64Array): void {
    if (s === e) return;
    let o = 0;
    const last = this.#lowerBound(e);
    for (let i = this.#index(s); i < last; i++) {
      out[o++] = Math.max(this.#keys[i]!, s);
      out[o++] = i + 1 < last ? this.#keys[i + 1]! : e;
      out[o++] = this.#vals[i]!;
    }
  }

  #assign(s: number, e: number, value: number): void {
    if (s === e) return;
    const hasPrev = s > 0;
    const hasTail = e < this.#pages;
    // Drop every start in [s, e], then put back only the starts canonical form needs. keys[0] is
    // 0, so with s > 0 the extent before s is a - 1; the extent holding e is b - 1.
    const a = this.#lowerBound(s);
    const b = hasTail ? this.#lowerBound(e + 1) : this.#n;
    const prevVal = hasPrev ? this.#vals[a - 1] : 0;
    const tailVal = hasTail ? this.#vals[b - 1]! : 0;
    const head = !hasPrev || prevVal !== value;
    const tail = hasTail && tailVal !== value;
    const count = (head ? 1 : 0) + (tail ? 1 : 0);
    this.#open(a, b, count);
    let k = a;
    if (head) {
      this.#keys[k] = s;
      this.#vals[k++] = value;
    }
    if (tail) {
      this.#keys[k] = e;
      this.#vals[k] = tailVal;
    }
  }

  /** Makes page x (0 < x < pages) start an extent, with the value it has now. */
  #split(x: number): void {
    const i = this.#lowerBound(x);
    if (i < this.#n && this.#keys[i] === x) return;
    this.#insertAt(i, x, this.#vals[i - 1]!);
  }

  /** Removes the start at x when the extent before it now has the same value. */
  #mergeAt(x: number): void {
    if (x <= 0 || x >= this.#pages) return;
    const i = this.#lowerBound(x);
    if (i < this.#n && this.#keys[i] === x && this.#vals[i] === this.#vals[i - 1]) this.#replace(i, i + 1, []);
  }

  #insertAt(i: number, key: number, value: number): void {
    this.#replace(i, i, [key, value]);
  }

  /** Entries [a, b) become the (key, value) pairs in `put`. */
  #replace(a: number, b: number, put: number[]): void {
    const count = put.length / 2;
    this.#open(a, b, count);
    for (let k = 0; k < count; k++) {
      this.#keys[a + k] = put[2 * k]!;
      this.#vals[a + k] = put[2 * k + 1]!;
    }
  }

  /** Entries [a, b) are dropped and `count` slots opened at a (for the caller to fill). */
  #open(a: number, b: number, count: number): void {
    const n = this.#n - (b - a) + count;
    if (n > this.#keys.length) {
      const keys = new Float64Array(Math.max(n, 2 * this.#keys.length));
      const vals = new Uint32Array(keys.length);
      keys.set(this.#keys.subarray(0, this.#n));
      vals.set(this.#vals.subarray(0, this.#n));
      this.#keys = keys;
      this.#vals = vals;
    }
    const moved = this.#n - b;
    const to = a + count;
    if (to !== b && moved > 0) {
      const keys = this.#keys;
      const vals = this.#vals;
      if (moved > 16) {
        keys.copyWithin(to, b, this.#n);
        vals.copyWithin(to, b, this.#n);
      } else if (to < b) {
        for (let i = 0; i < moved; i++) {
          keys[to + i] = keys[b + i]!;
          vals[to + i] = vals[b + i]!;
        }
      } else {
        for (let i = moved - 1; i >= 0; i--) {
          keys[to + i] = keys[b + i]!;
          vals[to + i] = vals[b + i]!;
        }
      }
    }
    this.#n = n;
  }
}
