// lib/extent-map.ts, the TypeScript extent map the simulator uses without the addon, and
// lib/extent-map-hybrid.ts (TypeScript while small, native once large), each held equal to the
// native one (native/extent_map.cc): random operation sequences, good and bad arguments, run on
// both; every result, thrown error (class, code, message) and the whole map after each step agree.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { native } from '../lib/native.js';
import { TsExtentMap } from '../lib/extent-map.js';
import { HybridExtentMap } from '../lib/extent-map-hybrid.js';
import type { NativeExtentMap } from '../lib/kvm/addon.js';

type AnyMap = Record<string, (...args: unknown[]) => unknown> & { readonly pages: number };
const NativeMap = native.ExtentMap as unknown as new (pages: unknown, initial?: unknown) => AnyMap;
const makeNative = (pages: number, initial: number) => new native.ExtentMap(pages, initial) as NativeExtentMap;
/** The hybrid with a low threshold, so random sequences cross it (and some maps never do). */
class HybridMap extends HybridExtentMap {
  constructor(pages: unknown, initial?: unknown) {
    super(pages, initial, makeNative, 4);
  }
}
const maps: [string, new (pages: unknown, initial?: unknown) => AnyMap][] = [
  ['TypeScript', TsExtentMap as unknown as new (pages: unknown, initial?: unknown) => AnyMap],
  ['hybrid', HybridMap as unknown as new (pages: unknown, initial?: unknown) => AnyMap],
];

/** What a call did, comparable across the two maps. */
function outcome(f: () => unknown): unknown {
  try {
    const r = f();
    return { ok: r instanceof Float64Array ? Array.from(r) : r };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { threw: err.constructor.name, code: err.code, message: err.message };
  }
}

/** A page argument: mostly in range, sometimes at or past the end, as a number or a bigint. */
function pageArb(pages: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max: pages }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: pages }).map(BigInt) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        -1,
        1.5,
        pages + 1,
        NaN,
        2 ** 53,
        -0,
        2n ** 64n,
        2n ** 60n,
        -1n,
        '3',
        null,
        undefined,
        {},
        true,
      ),
    },
  );
}

const valueArb = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(2 ** 32 - 1, 2n ** 32n - 1n) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(2 ** 32, -1, 'x', 2n ** 32n) },
);
const deltaArb = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: -3, max: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(2 ** 32 - 1, -(2 ** 32), 2n ** 40n, -(2n ** 40n)) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0.5, 2 ** 53, 2n ** 63n, -(2n ** 63n) - 1n, 'x') },
);

type Op = [string, ...unknown[]];
function opArb(pages: number): fc.Arbitrary<Op> {
  const p = pageArb(pages);
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constant('assign'), p, p, valueArb) },
    { weight: 4, arbitrary: fc.tuple(fc.constant('add'), p, p, deltaArb) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('query'), p, p) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('queryInto'), p, p, fc.integer({ min: 0, max: 12 })) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('valueAt'), p) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constant('findFirst'), p, p, valueArb, fc.constantFrom<unknown>(true, false, 1)),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.constant('resize'),
        fc.oneof(fc.integer({ min: 0, max: pages * 2 }), fc.constantFrom<unknown>(2 ** 53, -1)),
        valueArb,
      ),
    },
  ) as fc.Arbitrary<Op>;
}

/** Runs one op on a map; queryInto gets a fresh buffer of the asked size so both see the same. */
function apply(m: AnyMap, [name, ...args]: Op): unknown {
  if (name === 'queryInto') {
    const out = new Float64Array(3 * (args[2] as number));
    return outcome(() => [m.queryInto!(args[0], args[1], out), Array.from(out)]);
  }
  return outcome(() => m[name]!(...args));
}

function whole(m: AnyMap): number[] {
  return Array.from(m.query!(0, m.pages) as Float64Array);
}

describe.each(maps)('the %s extent map equals the native one', (_name, TsMap) => {
  it('on random operation sequences: every result, error and resulting map', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 40 })
          .chain((pages) =>
            fc.tuple(fc.constant(pages), fc.integer({ min: 0, max: 3 }), fc.array(opArb(pages), { maxLength: 60 })),
          ),
        ([pages, initial, ops]) => {
          const a = new NativeMap(pages, initial);
          const b = new TsMap(pages, initial);
          for (const op of ops) {
            expect(
              apply(b, op),
              JSON.stringify(op, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
            ).toEqual(apply(a, op));
            expect(b.pages).toBe(a.pages);
            expect(whole(b)).toEqual(whole(a));
            expect(b.extentCount!()).toBe(a.extentCount!());
            expect(b.checkInvariants!()).toBe('');
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('on long sequences over a large map (many extents, both directions of merge)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 4999 }),
            fc.integer({ min: 1, max: 300 }),
            fc.integer({ min: 0, max: 2 }),
            fc.boolean(),
          ),
          { minLength: 200, maxLength: 1500 },
        ),
        (steps) => {
          const a = new NativeMap(5000, 0);
          const b = new TsMap(5000, 0);
          for (const [s, len, v, add] of steps) {
            const e = Math.min(5000, s + len);
            const op: Op = add ? ['add', s, e, v === 2 ? -1 : v] : ['assign', s, e, v];
            expect(apply(b, op)).toEqual(apply(a, op));
          }
          expect(whole(b)).toEqual(whole(a));
          expect(b.checkInvariants!()).toBe('');
        },
      ),
      { numRuns: 30 },
    );
  });

  it('the constructor refuses what the native one refuses, with the same errors', () => {
    for (const args of [
      [-1, 0],
      [2 ** 53, 0],
      [2n ** 53n, 0],
      ['4', 0],
      [4],
      [4, 2 ** 32],
      [4, -1],
      [2 ** 53 - 1, 7],
    ]) {
      expect(
        outcome(() => new TsMap(...(args as [unknown, unknown])).pages),
        JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      ).toEqual(outcome(() => new NativeMap(...(args as [unknown, unknown])).pages));
    }
  });

  it('huge ranges cost one extent: 2^52 pages assigned in pieces', () => {
    const big = 2 ** 52;
    const a = new NativeMap(big, 0);
    const b = new TsMap(big, 0);
    for (const op of [
      ['assign', 1, big - 1, 1],
      ['add', 0, big, 2],
      ['assign', 2 ** 40, 2 ** 41, 3],
      ['findFirst', 0, big, 3, true],
    ] as Op[]) {
      expect(apply(b, op)).toEqual(apply(a, op));
    }
    expect(whole(b)).toEqual(whole(a));
    expect(b.extentCount!()).toBe(3);
  });
});

describe('the hybrid extent map', () => {
  it('moves to the native tree past its threshold, and the runs move with it', () => {
    const m = new HybridExtentMap(1000, 7, makeNative, 8);
    for (let p = 1; p <= 5; p += 2) m.assign(p, p + 1, p + 10); // 7 extents
    expect(m.backing).toBe('ts');
    const before = Array.from(m.query(0, 1000));
    m.assign(20, 21, 3); // 9: past 8
    expect(m.backing).toBe('native');
    expect(m.extentCount()).toBe(9);
    expect(Array.from(m.query(0, 20))).toEqual(before.slice(0, -3).concat([6, 20, 7]));
    expect(Array.from(m.query(20, 1000))).toEqual([20, 21, 3, 21, 1000, 7]);
    expect(m.checkInvariants()).toBe('');
  });

  it('the maps the simulator makes start in TypeScript (no N-API crossing while small)', async () => {
    const { newExtentMap, extentMapKind } = await import('../lib/state-map.js');
    const m = newExtentMap(1n << 20n, 0) as HybridExtentMap;
    expect(extentMapKind).toBe('native');
    expect(m.backing).toBe('ts');
    for (let p = 0; p < 200; p += 2) m.assign(p, p + 1, 1);
    expect(m.backing).toBe('native');
  });
});
