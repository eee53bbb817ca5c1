// share / unshare / states take numbers on a path without BigInt (lib/core/guest-memfd.ts #quick,
// the conversion models' wholePages/pageOf, the hybrid extent map). Held equal to the same calls
// with bigints: random sequences of good and bad ranges on two files, one fed numbers and one fed
// bigints, give the same results, errors and states after every step.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { GuestMemfd, Profile } from '../../lib/index.js';
import { PAGE, sim } from './helpers.js';

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { threw: err.constructor.name, code: err.code, message: err.message };
  }
}

const PAGES = 96;
const SIZE = PAGES * PAGE;
/** Offsets and lengths: mostly whole pages inside the file, some unaligned, past the end, negative or -0. */
const byteArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: PAGES }).map((p) => p * PAGE) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: SIZE + PAGE }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, -PAGE, SIZE + PAGE, 2 ** 53 - 1, 2 ** 52) },
);
type Op = ['share' | 'unshare' | 'states', number, number];
const opArb: fc.Arbitrary<Op> = fc.tuple(
  fc.constantFrom('share', 'unshare', 'states'),
  byteArb,
  byteArb,
) as fc.Arbitrary<Op>;

function run(g: GuestMemfd, [name, offset, length]: Op, big: boolean): unknown {
  // BigInt(-0) is 0n; a negative number has no bigint twin that fails the same way, so it stays a number.
  const o = big && offset >= 0 ? BigInt(offset) : offset;
  const l = big && length >= 0 ? BigInt(length) : length;
  return outcome(() => g[name](o, l));
}

describe.each<Profile>(['rfc-v5', 'inplace-v8'])('%s: numbers and bigints give the same answers', (profile) => {
  it('on random sequences of conversions and states()', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.boolean(), (ops, held) => {
        const kvm = sim(profile);
        try {
          const vm = kvm.createVm({ type: 1 });
          const [a, b] = [0, 1].map(() => vm.createGuestMemfd({ size: SIZE, mmap: true }));
          // A held page exercises the models' reference rules (pending, busy) on both paths.
          if (held) for (const g of [a!, b!]) g.hold(5 * PAGE, PAGE);
          for (const op of ops) {
            expect(run(b!, op, true), JSON.stringify(op)).toEqual(run(a!, op, false));
            expect(b!.states()).toEqual(a!.states());
          }
        } finally {
          kvm.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('-0 is 0: no extent starts at -0', () => {
    const kvm = sim(profile);
    try {
      const g = kvm.createVm({ type: 1 }).createGuestMemfd({ size: SIZE, mmap: true });
      g.share(0, SIZE);
      g.unshare(-0, PAGE);
      const first = g.states(-0, PAGE)[0]!;
      expect(Object.is(first.offset, 0)).toBe(true);
      expect(g.states(-0)).toEqual(g.states(0n));
    } finally {
      kvm.close();
    }
  });
});
