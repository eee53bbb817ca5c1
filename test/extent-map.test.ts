// The extent map (native/extent_map.*): random operation sequences checked step by step against
// a dense one-entry-per-page oracle, plus deep trees, huge ranges, all-or-nothing add() and bad input.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { native } from '../lib/native.js';
import { makeNativeError } from '../lib/errors.js';

native.setErrorFactory(makeNativeError);

interface ExtentMap {
  readonly pages: number;
  assign(start: number | bigint, end: number | bigint, value: number | bigint): void;
  add(start: number | bigint, end: number | bigint, delta: number | bigint): void;
  query(start: number | bigint, end: number | bigint): Float64Array;
  valueAt(page: number | bigint): number;
  findFirst(start: number | bigint, end: number | bigint, value: number | bigint, equal: boolean): number;
  extentCount(): number;
  bytesUsed(): number;
  resize(pages: number | bigint, fill: number | bigint): void;
  checkInvariants(): string;
  depth(): number;
}
// Typed for bad arguments too: the table below passes what the declaration would refuse.
const ExtentMap = native.ExtentMap as unknown as new (pages: unknown, initial?: unknown) => ExtentMap;

const MAX_U32 = 2 ** 32 - 1;

/** Runs of a dense oracle clipped to [start, end), as flat triples. */
function denseRuns(dense: ArrayLike<number>, start: number, end: number): number[] {
  const out: number[] = [];
  let s = start;
  for (let p = start + 1; p <= end; p++) {
    if (p === end || dense[p] !== dense[s]) {
      out.push(s, p, dense[s]!);
      s = p;
    }
  }
  return out;
}

function denseFindFirst(dense: ArrayLike<number>, start: number, end: number, value: number, equal: boolean): number {
  for (let p = start; p < end; p++) if ((dense[p] === value) === equal) return p;
  return -1;
}

/** What breaks canonical form in whole-map runs ('' when they tile [0, pages) with no equal neighbours). */
function canonicalProblem(q: Float64Array, pages: number): string {
  if (q.length % 3 !== 0) return 'not triples';
  if (pages === 0) return q.length === 0 ? '' : 'runs in an empty map';
  if (q[0] !== 0) return 'does not start at 0';
  if (q[q.length - 2] !== pages) return 'does not end at pages';
  for (let i = 0; i < q.length; i += 3) {
    if (q[i]! >= q[i + 1]!) return `empty run at ${q[i]}`;
    if (i > 0 && q[i] !== q[i - 2]) return `gap or overlap at ${q[i]}`;
    if (i > 0 && q[i + 2] === q[i - 1]) return `equal neighbours at ${q[i]}`;
  }
  return '';
}

function expectCanonical(q: Float64Array, pages: number): void {
  expect(canonicalProblem(q, pages)).toBe('');
}

function expectThrows(fn: () => unknown, kind: typeof TypeError | typeof RangeError): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(kind);
  expect((caught as { code?: string }).code).toBe(kind === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE');
}

// A range inside [0, pages]: edges, empty, full, short (splits a lot), on extent boundaries
// (where neighbours can merge), or anywhere.
const rangeArb = fc.record({
  shape: fc.constantFrom('any', 'any', 'short', 'short', 'aligned', 'aligned', 'empty', 'full', 'toEnd', 'fromStart'),
  x: fc.nat(),
  y: fc.nat(),
});
type RangeSpec = { shape: string; x: number; y: number };

/** Extent boundaries of the oracle: every run start, then pages. */
function boundaries(dense: ArrayLike<number>, pages: number): number[] {
  const b = [0];
  for (let p = 1; p < pages; p++) if (dense[p] !== dense[p - 1]) b.push(p);
  b.push(pages);
  return b;
}

function pickRange(r: RangeSpec, pages: number, dense?: ArrayLike<number>): [number, number] {
  const a = r.x % (pages + 1);
  const b = r.y % (pages + 1);
  switch (r.shape) {
    case 'empty':
      return [a, a];
    case 'full':
      return [0, pages];
    case 'toEnd':
      return [a, pages];
    case 'fromStart':
      return [0, a];
    case 'short':
      return [a, Math.min(pages, a + (r.y % 4) + 1)];
    case 'aligned': {
      if (dense === undefined) return [0, pages];
      const bs = boundaries(dense, pages);
      const i = r.x % bs.length;
      const j = Math.min(bs.length - 1, i + (r.y % 4));
      return [bs[i]!, bs[j]!];
    }
    default:
      return a <= b ? [a, b] : [b, a];
  }
}

/** Starts the map and the oracle in runs of 1-4 pages, so the tree has several nodes from step one. */
function fragment(m: ExtentMap, dense: Uint8Array | Uint32Array, pages: number, seed: number): void {
  let s = seed >>> 0;
  for (let p = 0; p < pages;) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const e = Math.min(pages, p + 1 + ((s >>> 8) % 4));
    const v = (s >>> 16) % 3;
    m.assign(p, e, v);
    dense.fill(v, p, e);
    p = e;
  }
}

/** Everything the map says must match the oracle; the probe picks the subrange and page to ask about. */
function checkStep(m: ExtentMap, dense: ArrayLike<number>, pages: number, probe: RangeSpec, value: number): void {
  const all = m.query(0, pages);
  expectCanonical(all, pages);
  expect(Array.from(all)).toEqual(denseRuns(dense, 0, pages));
  expect(m.extentCount()).toBe(all.length / 3);
  const [s, e] = pickRange(probe, pages, dense);
  expect(Array.from(m.query(s, e))).toEqual(denseRuns(dense, s, e));
  if (pages > 0) {
    const p = probe.x % pages;
    expect(m.valueAt(p)).toBe(dense[p]);
  }
  expect(m.findFirst(s, e, value, true)).toBe(denseFindFirst(dense, s, e, value, true));
  expect(m.findFirst(s, e, value, false)).toBe(denseFindFirst(dense, s, e, value, false));
  // The layout's own rules (fill bounds, exact separators, uniform depth, counters) after every op.
  expect(m.checkInvariants()).toBe('');
}

describe('ExtentMap against a dense oracle', () => {
  it('random assign/query sequences match a one-byte-per-page oracle after every step', () => {
    let steps = 0;
    const op = fc.record({
      kind: fc.constantFrom('assign', 'assign', 'assign', 'query'),
      range: rangeArb,
      value: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 })),
      probe: rangeArb,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 300, max: 2000 }),
        fc.integer({ min: 0, max: 3 }),
        fc.nat(),
        fc.array(op, { minLength: 40, maxLength: 60 }),
        (pages, initial, frag, ops) => {
          const dense = new Uint8Array(pages).fill(initial);
          const m = new ExtentMap(pages, initial);
          if (frag % 2 === 0) fragment(m, dense, pages, frag);
          for (const o of ops) {
            const [s, e] = pickRange(o.range, pages, dense);
            if (o.kind === 'assign') {
              m.assign(s, e, o.value);
              dense.fill(o.value, s, e);
            } else {
              expect(Array.from(m.query(s, e))).toEqual(denseRuns(dense, s, e));
            }
            checkStep(m, dense, pages, o.probe, o.value & 3);
            steps++;
          }
          expect(m.checkInvariants()).toBe('');
        },
      ),
      { numRuns: 250 },
    );
    expect(steps).toBeGreaterThanOrEqual(10_000);
  });

  it('random add/assign sequences match a Uint32 counter oracle, refusing under- and overflow whole', () => {
    let steps = 0;
    let refused = 0;
    const op = fc.record({
      kind: fc.constantFrom('add', 'add', 'add', 'assign', 'query'),
      range: rangeArb,
      delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(MAX_U32, -MAX_U32, 2 ** 53 - 1, -(2 ** 53 - 1))),
      value: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(MAX_U32, MAX_U32 - 1)),
      probe: rangeArb,
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 300, max: 2000 }),
        fc.nat(),
        fc.array(op, { minLength: 40, maxLength: 60 }),
        (pages, frag, ops) => {
          const dense = new Uint32Array(pages);
          const m = new ExtentMap(pages, 0);
          if (frag % 2 === 0) fragment(m, dense, pages, frag);
          for (const o of ops) {
            const [s, e] = pickRange(o.range, pages, dense);
            if (o.kind === 'add') {
              let fits = true;
              for (let p = s; p < e && fits; p++) fits = dense[p]! + o.delta >= 0 && dense[p]! + o.delta <= MAX_U32;
              if (fits) {
                m.add(s, e, o.delta);
                for (let p = s; p < e; p++) dense[p]! += o.delta;
              } else {
                expectThrows(() => m.add(s, e, o.delta), RangeError);
                refused++;
              }
            } else if (o.kind === 'assign') {
              m.assign(s, e, o.value);
              dense.fill(o.value, s, e);
            } else {
              expect(Array.from(m.query(s, e))).toEqual(denseRuns(dense, s, e));
            }
            checkStep(m, dense, pages, o.probe, o.value);
            steps++;
          }
          expect(m.checkInvariants()).toBe('');
        },
      ),
      { numRuns: 250 },
    );
    expect(steps).toBeGreaterThanOrEqual(10_000);
    expect(refused).toBeGreaterThan(100);
  });

  it('random short and wide changes on a three-level tree keep every node half full and match the oracle', () => {
    let steps = 0;
    const op = fc.record({
      kind: fc.constantFrom('assign', 'add'),
      x: fc.nat(),
      len: fc.integer({ min: 0, max: 6 }),
      wide: fc.boolean(),
      value: fc.integer({ min: 0, max: 2 }),
      delta: fc.integer({ min: -2, max: 2 }),
    });
    fc.assert(
      fc.property(fc.nat(), fc.array(op, { minLength: 300, maxLength: 300 }), (seed, ops) => {
        const pages = 20_000;
        const dense = new Uint32Array(pages);
        const m = new ExtentMap(pages, 0);
        fragment(m, dense, pages, seed);
        expect(m.depth()).toBeGreaterThanOrEqual(3);
        for (const [k, o] of ops.entries()) {
          const s = o.x % pages;
          const e = Math.min(pages, s + (o.wide ? o.len * 700 : o.len));
          if (o.kind === 'assign') {
            m.assign(s, e, o.value);
            dense.fill(o.value, s, e);
          } else if (dense.subarray(s, e).every((v) => v + o.delta >= 0)) {
            m.add(s, e, o.delta);
            for (let p = s; p < e; p++) dense[p]! += o.delta;
          } else {
            expectThrows(() => m.add(s, e, o.delta), RangeError);
          }
          expect(m.checkInvariants()).toBe('');
          if (k % 20 === 0) expect(Array.from(m.query(0, pages))).toEqual(denseRuns(dense, 0, pages));
          steps++;
        }
        expect(Array.from(m.query(0, pages))).toEqual(denseRuns(dense, 0, pages));
      }),
      { numRuns: 8, endOnFailure: true }, // shrinking 300-step runs takes minutes
    );
    expect(steps).toBe(2400);
  });

  it('resize grows with the fill value and shrinks by cutting the tail, staying canonical', () => {
    const pages = 1000;
    const dense: number[] = new Array(pages).fill(0);
    const m = new ExtentMap(pages, 0);
    for (let i = 0; i < pages; i += 7) {
      m.assign(i, Math.min(pages, i + 3), i % 3);
      for (let p = i; p < Math.min(pages, i + 3); p++) dense[p] = i % 3;
    }
    const sizes = [999, 500, 500, 1200, 3, 0, 0, 40, 2000];
    for (const [k, size] of sizes.entries()) {
      const fill = k % 3;
      m.resize(size, fill);
      if (size < dense.length) dense.length = size;
      while (dense.length < size) dense.push(fill);
      expect(m.pages).toBe(size);
      expect(Array.from(m.query(0, size))).toEqual(denseRuns(dense, 0, size));
      expectCanonical(m.query(0, size), size);
      expect(m.extentCount()).toBe(m.query(0, size).length / 3);
      expect(m.checkInvariants()).toBe('');
    }
  });
});

describe('ExtentMap with deep trees', () => {
  // Issue 14's memory goal: a full leaf first fills a neighbour, so neither build order leaves a
  // trail of half-empty leaves (before: 25.3 B/extent ascending, 18.0 random).
  it('100,000 one-page extents take at most 16 bytes each, built in ascending or in random order', () => {
    const pages = 100_000;
    const order = Array.from({ length: pages }, (_, i) => i);
    let s = 12345;
    for (let i = pages - 1; i > 0; i--) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const [name, pagesInOrder] of [
      ['ascending', order.map((_, i) => i)],
      ['random', order],
    ] as const) {
      const m = new ExtentMap(pages, 0);
      for (const p of pagesInOrder) m.assign(p, p + 1, p & 1);
      expect(m.extentCount(), name).toBe(pages);
      expect(m.checkInvariants(), name).toBe('');
      expect(m.bytesUsed() / m.extentCount(), name).toBeLessThanOrEqual(16);
    }
  });

  it('200,000 alternating extents build a multi-level tree under 32 bytes per extent and merge back to one', () => {
    const pages = 200_000;
    const m = new ExtentMap(pages, 0);
    for (let p = 1; p < pages; p += 2) m.assign(p, p + 1, 1);
    expect(m.extentCount()).toBe(pages);
    expect(m.depth()).toBeGreaterThanOrEqual(3);
    expect(m.bytesUsed() / m.extentCount()).toBeLessThanOrEqual(32);
    expect(m.checkInvariants()).toBe('');
    const q = m.query(0, pages);
    expect(q.length).toBe(3 * pages);
    expect(Array.from(q.subarray(3 * 12345, 3 * 12345 + 6))).toEqual([12345, 12346, 1, 12346, 12347, 0]);
    expect(m.findFirst(1000, pages, 1, true)).toBe(1001);
    expect(m.findFirst(1001, pages, 1, false)).toBe(1002);

    // Merge a middle stretch, then everything.
    m.assign(50_000, 150_000, 0);
    // 50,000 single pages, one merged [50,000, 150,001), then 49,999 single pages.
    expect(m.extentCount()).toBe(100_000);
    expect(m.checkInvariants()).toBe('');
    expect(Array.from(m.query(49_998, 150_002))).toEqual([
      49_998, 49_999, 0, 49_999, 50_000, 1, 50_000, 150_001, 0, 150_001, 150_002, 1,
    ]);
    m.assign(0, pages, 5);
    expect(m.extentCount()).toBe(1);
    expect(m.depth()).toBe(1);
    expect(Array.from(m.query(0, pages))).toEqual([0, pages, 5]);
    expect(m.checkInvariants()).toBe('');
  });

  it('fragmenting with add() and merging page by page in random order keeps the tree sound to one extent', () => {
    const pages = 60_000;
    const m = new ExtentMap(pages, 0);
    for (let p = 0; p < pages; p += 2) m.add(p, p + 1, 2);
    expect(m.extentCount()).toBe(pages);
    expect(m.checkInvariants()).toBe('');
    const order = Array.from({ length: pages / 2 }, (_, i) => 2 * i);
    let seed = 12345;
    for (let i = order.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const [k, p] of order.entries()) {
      m.add(p, p + 1, -2);
      if (k % 5000 === 0) expect(m.checkInvariants()).toBe('');
    }
    expect(m.extentCount()).toBe(1);
    expect(Array.from(m.query(0, pages))).toEqual([0, pages, 0]);
    expect(m.checkInvariants()).toBe('');
    expect(m.bytesUsed()).toBeLessThan(2048);
  });
});

describe('ExtentMap over huge ranges', () => {
  it('a 1 TiB map (2^28 pages) converts whole and partial ranges exactly and instantly', () => {
    const pages = 2 ** 28;
    const m = new ExtentMap(pages, 0);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) {
      m.assign(0, pages, 1);
      m.assign(1, pages - 1, 2);
    }
    // A page-by-page structure would need 2^28 steps per call; 2000 calls must take milliseconds.
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(Array.from(m.query(0, pages))).toEqual([0, 1, 1, 1, pages - 1, 2, pages - 1, pages, 1]);
    m.add(0, pages, 3);
    expect(Array.from(m.query(0, pages))).toEqual([0, 1, 4, 1, pages - 1, 5, pages - 1, pages, 4]);
    expect(m.findFirst(0, pages, 4, false)).toBe(1);
    expect(m.findFirst(2, pages, 4, true)).toBe(pages - 1);
    expect(m.pages).toBe(pages);
  });

  it('a 2^52-page map takes bigint and number arguments and returns exact offsets', () => {
    const pages = 2 ** 52;
    const m = new ExtentMap(2n ** 52n, 7);
    expect(m.pages).toBe(pages);
    m.assign(0n, 2n ** 52n, 1);
    expect(Array.from(m.query(0, pages))).toEqual([0, pages, 1]);
    m.add(pages - 1, pages, 1);
    m.assign(2 ** 40, 2 ** 51 + 3, 9);
    expect(Array.from(m.query(0, pages))).toEqual([
      0,
      2 ** 40,
      1,
      2 ** 40,
      2 ** 51 + 3,
      9,
      2 ** 51 + 3,
      pages - 1,
      1,
      pages - 1,
      pages,
      2,
    ]);
    expect(m.valueAt(pages - 1)).toBe(2);
    expect(m.findFirst(0, pages, 1, false)).toBe(2 ** 40);
    expect(m.findFirst(2 ** 51 + 3, pages, 1, false)).toBe(pages - 1);
    expect(Array.from(m.query(2 ** 51, 2 ** 51 + 5))).toEqual([2 ** 51, 2 ** 51 + 3, 9, 2 ** 51 + 3, 2 ** 51 + 5, 1]);
    m.assign(0, pages, 1);
    expect(m.extentCount()).toBe(1);
  });

  it('maps up to 2^53-1 pages (every offset a safe integer) are accepted and larger ones refused', () => {
    expect(new ExtentMap(2 ** 53 - 1, 0).pages).toBe(2 ** 53 - 1);
    expect(new ExtentMap(2n ** 53n - 1n, 0).query(0, 2 ** 53 - 1)[1]).toBe(2 ** 53 - 1);
    expectThrows(() => new ExtentMap(2n ** 53n, 0), RangeError);
  });
});

describe('ExtentMap.add all-or-nothing', () => {
  it('an add that would go below 0 throws RangeError and leaves the map unchanged', () => {
    const m = new ExtentMap(100, 0);
    m.add(10, 90, 2);
    m.add(40, 50, -2);
    const before = Array.from(m.query(0, 100));
    expectThrows(() => m.add(10, 90, -1), RangeError);
    expectThrows(() => m.add(0, 11, -1), RangeError);
    expectThrows(() => m.add(20, 30, -3), RangeError);
    expect(Array.from(m.query(0, 100))).toEqual(before);
    expect(m.checkInvariants()).toBe('');
  });

  it('an add that would go above 2^32-1 throws RangeError and leaves the map unchanged', () => {
    const m = new ExtentMap(100, 0);
    m.assign(60, 61, MAX_U32);
    m.assign(70, 80, MAX_U32 - 5);
    const before = Array.from(m.query(0, 100));
    expectThrows(() => m.add(0, 100, 1), RangeError);
    expectThrows(() => m.add(70, 80, 6), RangeError);
    expectThrows(() => m.add(0, 1, 2n ** 62n), RangeError);
    expectThrows(() => m.add(0, 1, 2n ** 63n), RangeError); // not even an int64
    expect(Array.from(m.query(0, 100))).toEqual(before);
    m.add(70, 80, 5n);
    expect(m.valueAt(75)).toBe(MAX_U32);
    m.add(0, 100, -Number(m.valueAt(0)));
    expect(m.checkInvariants()).toBe('');
  });
});

describe('ExtentMap argument checking', () => {
  it('constructor arguments of the wrong type or out of range throw typed errors', () => {
    expectThrows(() => new ExtentMap('10', 0), TypeError);
    expectThrows(() => new ExtentMap({}, 0), TypeError);
    expectThrows(() => new ExtentMap(undefined, 0), TypeError);
    expectThrows(() => new ExtentMap(10), TypeError);
    expectThrows(() => new ExtentMap(-1, 0), RangeError);
    expectThrows(() => new ExtentMap(NaN, 0), RangeError);
    expectThrows(() => new ExtentMap(1.5, 0), RangeError);
    expectThrows(() => new ExtentMap(2 ** 53 + 2, 0), RangeError);
    expectThrows(() => new ExtentMap(2n ** 64n, 0), RangeError);
    expectThrows(() => new ExtentMap(-1n, 0), RangeError);
    expectThrows(() => new ExtentMap(10, 2 ** 32), RangeError);
    expectThrows(() => new ExtentMap(10, -1), RangeError);
  });

  it('bad ranges, values and deltas throw typed errors and change nothing', () => {
    const m = new ExtentMap(100, 3);
    m.assign(10, 20, 4);
    const before = Array.from(m.query(0, 100));
    // The same object without its TypeScript signature, to pass what JS callers might.
    const bad = m as unknown as Record<
      'assign' | 'add' | 'query' | 'valueAt' | 'findFirst' | 'resize',
      (...args: unknown[]) => unknown
    >;
    const calls: Array<[() => unknown, typeof TypeError | typeof RangeError]> = [
      [() => bad.assign('0', 1, 1), TypeError],
      [() => bad.assign({}, 1, 1), TypeError],
      [() => bad.assign(undefined, 1, 1), TypeError],
      [() => bad.assign(0, null, 1), TypeError],
      [() => bad.assign(0, 1, 'x'), TypeError],
      [() => bad.assign(0, 1), TypeError],
      [() => bad.assign(-1, 1, 1), RangeError],
      [() => bad.assign(NaN, 1, 1), RangeError],
      [() => bad.assign(0.5, 1, 1), RangeError],
      [() => bad.assign(0, Infinity, 1), RangeError],
      [() => bad.assign(2n ** 64n, 1, 1), RangeError],
      [() => bad.assign(-1n, 1, 1), RangeError],
      [() => bad.assign(5, 4, 1), RangeError],
      [() => bad.assign(0, 101, 1), RangeError],
      [() => bad.assign(101, 101, 1), RangeError],
      [() => bad.assign(0, 1, -1), RangeError],
      [() => bad.assign(0, 1, 2 ** 32), RangeError],
      [() => bad.add(0, 1, '1'), TypeError],
      [() => bad.add(0, 1, {}), TypeError],
      [() => bad.add(0, 1), TypeError],
      [() => bad.add(0, 1, 1.5), RangeError],
      [() => bad.add(0, 1, NaN), RangeError],
      [() => bad.add(0, 1, -Infinity), RangeError],
      [() => bad.add(0, 1, 2 ** 53), RangeError],
      [() => bad.add(0, 1, -(2n ** 63n) - 1n), RangeError],
      [() => bad.add(50, 40, 1), RangeError],
      [() => bad.add(0, 2n ** 64n - 1n, 1), RangeError],
      [() => bad.query(5, 4), RangeError],
      [() => bad.query(0, 101), RangeError],
      [() => bad.query('a', 4), TypeError],
      [() => bad.valueAt(100), RangeError],
      [() => bad.valueAt(-1), RangeError],
      [() => bad.valueAt('1'), TypeError],
      [() => bad.valueAt(), TypeError],
      [() => bad.findFirst(0, 10, 0, 'yes'), TypeError],
      [() => bad.findFirst(0, 10, 0), TypeError],
      [() => bad.findFirst(0, 10, -1, true), RangeError],
      [() => bad.findFirst(10, 0, 0, true), RangeError],
      [() => bad.resize(-1, 0), RangeError],
      [() => bad.resize(2n ** 53n, 0), RangeError],
      [() => bad.resize(10, 'x'), TypeError],
    ];
    for (const [call, kind] of calls) expectThrows(call, kind);
    expect(Array.from(m.query(0, 100))).toEqual(before);
    expect(m.pages).toBe(100);
    expect(m.checkInvariants()).toBe('');
  });

  it('empty ranges are no-ops: query returns nothing, findFirst -1, assign and add change nothing', () => {
    const m = new ExtentMap(100, 3);
    m.assign(50, 50, 9);
    m.add(100, 100, -5);
    m.add(0n, 0n, 1);
    expect(Array.from(m.query(0, 100))).toEqual([0, 100, 3]);
    expect(m.query(42, 42).length).toBe(0);
    expect(m.findFirst(42, 42, 3, true)).toBe(-1);
    expect(m.findFirst(0, 100, 3, false)).toBe(-1);
  });

  it('methods called on an object that is not an ExtentMap throw instead of crashing', () => {
    const proto = ExtentMap.prototype as unknown as ExtentMap;
    expect(() => proto.assign.call({}, 0, 1, 1)).toThrow();
    expect(() => proto.query.call(Object.create(proto), 0, 1)).toThrow();
  });
});
