// Differential fuzzing in the normal suite: a small budget of seeded call sequences on the real
// kernel and the simulator's 'linux-6.18' profile, every result compared (CI runs the big budget
// with tools/fuzz.mjs). And the fuzzer itself: it finds a planted difference and shrinks it.
import { appendFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import { formatOp, fuzzProfile, fuzzSeed, replay, report, type Backends } from '../../lib/fuzz/index.js';
import { Generator } from '../../lib/fuzz/ops.js';
import { Rng } from '../../lib/fuzz/rng.js';
import { describeKvm } from '../helpers/kvm.js';

const SEEDS = [11, 12, 13, 14];
const STEPS = 500;

function count(fields: Record<string, number>): void {
  if (process.env.KVM_GMEM_COUNTS) appendFileSync(process.env.KVM_GMEM_COUNTS, JSON.stringify(fields) + '\n');
}

describeKvm(`differential fuzzing: kernel vs simulator ${fuzzProfile()}`, () => {
  it(`${SEEDS.length} seeds x ${STEPS} calls agree on every result and error`, async () => {
    let steps = 0;
    let bad = 0;
    for (const seed of SEEDS) {
      const r = await fuzzSeed(seed, STEPS, { shrinkMs: 20_000 });
      steps += r.steps;
      bad += r.badInputs;
      expect(r.mismatch, report(r)).toBeUndefined();
    }
    // Most calls must really run (skips are calls on objects never made).
    expect(steps).toBeGreaterThan(SEEDS.length * STEPS * 0.9);
    expect(bad).toBeGreaterThan(0);
    count({ fuzzSteps: steps, badInputs: bad });
    console.log(`[kvm-gmem] fuzz: ${steps} steps, ${bad} bad inputs`);
  });
});

describe('the fuzzer', () => {
  // The simulator stands in for the kernel, and a copy with one wrong answer (capability 239,
  // GUEST_MEMFD_MAPPABLE, said to be 1) for a wrong model.
  const planted: Backends = {
    kernel: () => open({ backend: 'sim', profile: 'linux-6.18' }),
    sim: () => {
      const k = open({ backend: 'sim', profile: 'linux-6.18' });
      const real = k.checkExtension.bind(k);
      k.checkExtension = (cap) => (cap === 239 ? 1 : real(cap));
      return k;
    },
  };

  it('finds a planted difference, names the seed and shrinks it to the one call that differs', async () => {
    let found;
    for (let seed = 1; seed < 50 && !found; seed++) {
      const r = await fuzzSeed(seed, 3000, { backends: planted, shrinkMs: 10_000 });
      if (r.mismatch) found = r;
    }
    expect(found?.mismatch?.op.call).toBe('checkExtension');
    expect(found!.shrunk).toHaveLength(1);
    expect(formatOp(found!.shrunk![0]!)).toMatch(/checkExtension\(239\)/);
    expect(await replay(found!.shrunk!, planted)).toBeDefined();
    expect(report(found!)).toMatch(new RegExp(`seed ${found!.seed}: .*differ`));
  });

  it('makes the same calls from the same seed', () => {
    const state = { objects: [], kvmClosed: false, step: 0, steps: 10 };
    const a = new Generator(new Rng(7));
    const b = new Generator(new Rng(7));
    const ops = (g: Generator) => Array.from({ length: 20 }, (_, i) => formatOp(g.next(i, state)));
    expect(ops(a)).toEqual(ops(b));
  });

  it('runs the same sequence on the simulator against itself without a difference', async () => {
    const same: Backends = { kernel: planted.kernel, sim: planted.kernel };
    const r = await fuzzSeed(3, 1000, { backends: same });
    expect(r.mismatch).toBeUndefined();
    expect(r.steps).toBeGreaterThan(900);
  });
});
