#!/usr/bin/env node
// npm run bench [-- --quick] [-- --out DIR]: the extent map against the kernel's own xarray, maple
// tree and interval tree (C against C, interleaved), the JS-level figures against the N-API floor,
// and the cost of crossing N-API and the SIGBUS guard against C doing the same work. C/C++ baselines
// are compiled and run in this same run. Writes DIR/latest.json and DIR/latest.svg (default
// bench/out/, which git ignores; the committed bench/results/ behind the README is only rewritten
// by --out bench/results) and prints the tables.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Progress, compileBaselines, machineInfo } from './lib/harness.mjs';
import { applyRatios, applyValueGoals, formatRatio, formatTable, missingIds, sortForReport } from './lib/report.mjs';
import { benchSvg } from './lib/svg.mjs';
import { structuresSteps } from './lib/structures-suite.mjs';
import { applyStructureRatios, formatStructureTables, structureIds } from './lib/structures.mjs';
import { kvmSteps } from './lib/kvm-suite.mjs';
import { convertSteps, fragmentedSteps } from './lib/suites.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`usage: npm run bench [-- --quick] [-- --out DIR]
  --quick     shorter samples and smaller windows (about two minutes), still 7 interleaved rounds; the same ids
  --out DIR   where latest.json and latest.svg go (default bench/out/, git-ignored)
Prints the tables and the path of the results.
`);
  process.exit(0);
}
let outDir = path.join(here, 'out');
let quick = false;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--quick') quick = true;
  else if (argv[i] === '--out' && argv[i + 1] !== undefined) outDir = path.resolve(argv[++i]);
  else if (argv[i].startsWith('--out=')) outDir = path.resolve(argv[i].slice(6));
  else {
    process.stderr.write(`bench: unknown argument ${argv[i]} (try --help)\n`);
    process.exit(2);
  }
}
const started = Date.now();

ensureDist();
const lib = await import(path.join(root, 'dist/index.js'));
const { native } = await import(path.join(root, 'dist/native.js'));

const kvmReason = kvmUnusable();
const ctx = { lib, native, quick, root, kvmReason, bin: {}, binErrors: {}, results: [] };
const steps = [
  { label: 'compiling C/C++ baselines', run: compile },
  ...convertSteps(ctx),
  ...fragmentedSteps(ctx),
  ...structuresSteps(ctx),
  ...kvmSteps(ctx),
];
const progress = new Progress(steps.length);
/** @type {{ built: unknown, errors: unknown, cleanup(): void } | undefined} */
let built;
try {
  for (const s of steps) {
    progress.step(s.label);
    await s.run(ctx);
  }
} finally {
  built?.cleanup();
}
progress.end(`finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);

// applyRatios resets goal verdicts it does not own; the structures' own are filled in after it.
const results = sortForReport(applyStructureRatios(applyValueGoals(applyRatios(ctx.results))));
const have = new Set(results.map((r) => r.id));
const missing = [...missingIds(results), ...structureIds().filter((id) => !have.has(id))];
if (missing.length) throw new Error(`bench: no result for ${missing.join(', ')}`);

const machine = machineInfo(quick);
const headline = results.find((r) => r.id === 'convert.per-page.1tib');
const floor = results.find((r) => r.id === 'convert.per-page-floor.1tib');
const report = {
  command: `npm run bench${quick ? ' -- --quick' : ''}`,
  machine,
  durationSeconds: Math.round((Date.now() - started) / 100) / 10,
  ratioDefinition:
    'ratio = value / baseline value (for times: how many times slower than the baseline; for GB/s: the fraction of the baseline throughput); where both were measured in the same alternating rounds (roundValues), the median of the per-round ratios, with ratioOfMedians beside it',
  headline: {
    perPageOverExtentMap1TiB: headline?.ratio ?? null,
    floorOverExtentMap1TiB: floor?.ratio ?? null,
  },
  structuresNote:
    "structures.*: C against C in one process (bench/kernel/structures.c), medians of >= 7 interleaved rounds with min-max spread; ratio = value / the maple tree's, ratioTo.xarray = value / the per-page xarray's. Kernel structures take their own lock per call (a pthread mutex in the harness, lockPairNs each); the extent map and interval tree take none.",
  lockPairNs: ctx.structuresLockPairNs ?? null,
  results,
};
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
const subtitle = `${machine.cpu}, ${machine.cores} cores, Linux ${machine.kernel}, Node ${machine.node}, ${machine.date.slice(0, 10)}${quick ? ' (--quick)' : ''}`;
writeFileSync(path.join(outDir, 'latest.svg'), benchSvg(results, { subtitle }));

const isStructure = (r) => r.id.startsWith('structures.');
process.stdout.write(
  `JS-level and kernel-call figures (public API on the simulator, the raw binding, the N-API floor):\n`,
);
process.stdout.write(`${formatTable(results.filter((r) => !isStructure(r)))}\n\n`);
process.stdout.write(`Kernel structures against the extent map (C, one process, interleaved rounds):\n\n`);
process.stdout.write(`${formatStructureTables(results)}\n\n`);
process.stdout.write(`machine: ${subtitle}\n`);
if (headline?.ratio !== undefined) {
  process.stdout.write(
    `headline: at 1 TiB the per-page loop takes ${formatRatio(headline.ratio)} the extent map's time`,
  );
  process.stdout.write(floor?.ratio !== undefined ? ` (the byte-store floor ${formatRatio(floor.ratio)})\n` : '\n');
}
process.stdout.write(`wrote ${path.join(outDir, 'latest.json')} and latest.svg\n`);

function compile(c) {
  built = compileBaselines(path.join(here, 'baselines'), extraBaselines());
  c.bin = built.built;
  c.binErrors = built.errors;
}

// The extent map helper's own C++ micro benchmark, when it exists, runs as a second figure.
function extraBaselines() {
  const micro = path.join(here, 'extent_map_micro.cc');
  if (!existsSync(micro)) return [];
  return [
    {
      name: 'extent_map_micro',
      cmd: 'g++',
      args: [
        '-std=c++17',
        '-O2',
        '-Wall',
        '-Wextra',
        '-I',
        path.join(root, 'native'),
        micro,
        path.join(root, 'native', 'extent_map.cc'),
      ],
    },
  ];
}

function kvmUnusable() {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return null;
  } catch (e) {
    return `/dev/kvm is not usable here (${e.code ?? e.message})`;
  }
}

// dist/ is what `npm install` builds; rebuild it when a lib/ source is newer so a run never measures stale code.
function ensureDist() {
  const dist = path.join(root, 'dist', 'index.js');
  const newest = newestMtime(path.join(root, 'lib'));
  if (existsSync(dist) && statSync(dist).mtimeMs >= newest) return;
  process.stderr.write('bench: building dist/ (tsc)\n');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (r.status !== 0 && !existsSync(dist)) {
    process.stderr.write('bench: tsc failed and there is no dist/ to run\n');
    process.exit(1);
  }
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}
