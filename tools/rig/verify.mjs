#!/usr/bin/env node
// Inside the rig: run `kvm-gmem check` and fail unless this kernel matches, with 0 differences,
// the profile probe names for it (hostProfile). `check` alone exits 0 when any profile matches;
// CI needs the right one to.
//   npm run rig -- debian-7.3 node tools/rig/verify.mjs [--expect PROFILE]
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const { check } = await import(pathToFileURL(path.join(dist, 'check.js')).href);
const { hostProfile } = await import(pathToFileURL(path.join(dist, 'probe.js')).href);
const i = process.argv.indexOf('--expect');
const expected = i > 0 ? process.argv[i + 1] : hostProfile();
if (!expected) {
  console.log(`verify: no profile was verified on ${os.release()}; nothing to hold it to`);
  process.exit(2);
}
// --skip X (repeatable; a group prefix such as 'guest' or a case id): those cases are left out,
// each one named, so a known bug of the library on this kernel does not hide the others' verdict.
const skip = process.argv.flatMap((a, k) => (a === '--skip' ? [process.argv[k + 1]] : []));
const r = await check();
if (skip.length) {
  const left = (list) => list.filter((d) => !skip.some((g) => d.id === g || d.id.startsWith(`${g}.`)));
  for (const [p, list] of Object.entries(r.verdict.differences)) {
    const gone = list.filter((d) => !left([d]).length);
    if (p === expected)
      for (const d of gone) console.log(`  SKIPPED (--skip): ${d.id} differs, not held to '${p}' in this run`);
    r.verdict.differences[p] = left(list);
  }
  r.verdict.kernelErrors = left(r.verdict.kernelErrors);
}
const diffs = r.verdict.differences[expected];
if (!diffs) {
  console.log(`verify: unknown profile '${expected}'`);
  process.exit(2);
}
console.log(
  `verify: ${r.host.kernel}: ${r.verdict.compared} cases compared, ${r.verdict.notSupported.length} not supported; matches ${r.verdict.matches.map((m) => `'${m}'`).join(', ') || 'none'} (${r.ms} ms)`,
);
for (const d of diffs)
  console.log(
    `  differs from '${expected}': ${d.id} at ${d.where.join(', ')}: kernel ${JSON.stringify(d.kernel.outcome ?? d.kernel.status)} / profile ${JSON.stringify(d.profile.outcome ?? d.profile.status)}`.slice(
      0,
      600,
    ),
  );
for (const e of r.verdict.kernelErrors) console.log(`  kernel ${e.status}: ${e.id}: ${e.reason}`);
const ok = diffs.length === 0 && r.verdict.kernelErrors.length === 0;
console.log(`verify: '${expected}' ${ok ? 'matches with 0 differences' : `DIVERGES in ${diffs.length} cases`}`);
process.exit(ok ? 0 : 1);
