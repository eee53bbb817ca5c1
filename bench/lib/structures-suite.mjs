// The kernel-structure comparison as a step of `npm run bench`: builds bench/kernel/structures
// from Debian's kernel source package (or says why it cannot) and turns its lines into results.
import { runJsonLines } from './harness.mjs';
import { structureIds, structureResults } from './structures.mjs';
import { skipped } from './report.mjs';
import { buildStructuresBench } from '../kernel/build.mjs';

export function structuresSteps(ctx) {
  return [
    {
      label: 'structures.* (kernel xarray, maple tree, interval tree vs the extent map, C, interleaved)',
      run: () => structures(ctx),
    },
  ];
}

function structures(ctx) {
  let exe;
  try {
    ({ exe } = buildStructuresBench({ log: (m) => process.stderr.write(`\nkernel bench: ${m}\n`) }));
  } catch (e) {
    for (const id of structureIds()) ctx.results.push(skipped(id, /\.bytes-/.test(id) ? 'B' : 'ns', e.message));
    return;
  }
  let lines;
  try {
    lines = runJsonLines(exe, ctx.quick ? ['--quick'] : [], 1_800_000);
  } catch (e) {
    for (const id of structureIds())
      ctx.results.push(skipped(id, /\.bytes-/.test(id) ? 'B' : 'ns', `bench/kernel/structures: ${e.message}`));
    return;
  }
  ctx.results.push(...structureResults(lines));
  const lock = lines.find((l) => l.workload === 'lock-pair');
  if (lock) ctx.structuresLockPairNs = lock.value;
}
