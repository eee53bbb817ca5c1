#!/usr/bin/env node
// Differential fuzzing budget: seeded call sequences on the real kernel and the simulator's
// profile for this host side by side (lib/fuzz). Exit 1 on the first difference, printing the seed
// and the shortest failing sequence found.
//   node tools/fuzz.mjs [--seeds 10] [--steps 2000] [--first 1] [--seed N] [--stats] [--counts FILE] [--dist DIR]
//     [--profile P]  (default: the profile probe expects on this host, hostProfile())
import { appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const usage = `usage: node tools/fuzz.mjs [options]
Differential fuzzing: the same seeded call sequences on the real kernel and the simulator's
profile for this kernel; exit 1 on the first difference (with the seed and a shrunk sequence),
0 when every call agrees or when there is no usable /dev/kvm to compare with, 2 on bad options.
  --seeds N     how many seeds to run (default 10)
  --first N     the first seed (default 1)
  --seed N      run this one seed only
  --steps N     calls per seed (default 2000)
  --stats       print how each call ended, by call
  --counts FILE append {fuzzSteps, badInputs} as a JSON line (CI sums these)
  --dist DIR    the compiled library to fuzz (default dist/)
  --profile P   the simulator profile to compare with (default: the one probe finds for this kernel)
  -h, --help    this text`;
let a;
try {
  ({ values: a } = parseArgs({
    options: {
      seeds: { type: 'string', default: '10' },
      steps: { type: 'string', default: '2000' },
      first: { type: 'string', default: '1' },
      seed: { type: 'string' },
      counts: { type: 'string' },
      dist: { type: 'string', default: path.join(root, 'dist') },
      stats: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      profile: { type: 'string' },
    },
  }));
} catch (e) {
  console.error(`fuzz: ${e.message}\n${usage}`);
  process.exit(2);
}
if (a.help) {
  console.log(usage);
  process.exit(0);
}
for (const k of ['seeds', 'steps', 'first', 'seed']) {
  if (a[k] !== undefined && !/^\d+$/.test(a[k])) {
    console.error(`fuzz: --${k} must be a non-negative integer, got ${JSON.stringify(a[k])}`);
    process.exit(2);
  }
}
if (a.profile) process.env.KVM_GMEM_FUZZ_PROFILE = a.profile;
const entry = path.join(a.dist, 'fuzz', 'index.js');
if (!existsSync(entry)) {
  console.error(`fuzz: ${entry} is missing; compile the library first (npm run build:ts)`);
  process.exit(2);
}
const { fuzzSeed, fuzzProfile, report } = await import(pathToFileURL(entry).href);
const { kvmAvailable } = await import(pathToFileURL(path.join(a.dist, 'fuzz', 'available.js')).href);

const steps = Number(a.steps);
const seeds =
  a.seed !== undefined ? [Number(a.seed)] : Array.from({ length: Number(a.seeds) }, (_, i) => Number(a.first) + i);
const why = kvmAvailable();
if (why !== null) {
  console.log(`fuzz: skipped, the real kernel is not usable here (${why}): nothing to compare the simulator with`);
  if (a.counts) appendFileSync(a.counts, JSON.stringify({ fuzzSteps: 0, badInputs: 0 }) + '\n');
  process.exit(0);
}

console.log(
  `fuzz: kernel ${process.platform === 'linux' ? (await import('node:os')).release() : ''} vs the simulator's '${fuzzProfile()}'`,
);
let total = 0;
let bad = 0;
let failed = false;
const outcomes = {};
const t0 = performance.now();
for (const seed of seeds) {
  const r = await fuzzSeed(seed, steps);
  total += r.steps;
  bad += r.badInputs;
  for (const [call, by] of Object.entries(r.outcomes)) {
    for (const [how, n] of Object.entries(by)) (outcomes[call] ??= {})[how] = (outcomes[call][how] ?? 0) + n;
  }
  if (r.mismatch) {
    console.log(report(r));
    failed = true;
    break;
  }
  console.log(`fuzz seed ${seed}: ${r.steps} calls agree (${r.badInputs} with bad arguments), ${r.ms} ms`);
}
if (a.stats) {
  for (const [call, by] of Object.entries(outcomes).sort()) {
    console.log(
      `  ${call.padEnd(20)} ${Object.entries(by)
        .sort((x, y) => y[1] - x[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  }
}
const secs = ((performance.now() - t0) / 1000).toFixed(1);
console.log(
  `fuzz: ${total} steps fuzzed, ${bad} bad inputs tried, ${seeds.length} seeds, ${secs} s${failed ? ', FAILED' : ''}`,
);
if (a.counts) appendFileSync(a.counts, JSON.stringify({ fuzzSteps: total, badInputs: bad }) + '\n');
process.exit(failed ? 1 : 0);
