#!/usr/bin/env node
// Builds the prebuilt addon the package ships for this platform (linux-x64 glibc here):
// prebuilds/<platform>-<arch>/kvm_gmem.<libc>.node and a manifest beside it. The build runs in a
// scratch copy of binding.gyp and native/ with build-addon.mjs (the local Node headers, nothing
// downloaded), so ./build is left as it is. N-API (NAPI_VERSION in binding.gyp) makes one binary
// serve every Node from 20.19 on. Options: --from FILE packages an addon already built;
// --out DIR writes elsewhere than ./prebuilds.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { libc, prebuildPath } from './addon-target.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { from: { type: 'string' }, out: { type: 'string' } }, strict: true });

let built = values.from ? path.resolve(values.from) : undefined;
let scratch;
if (!built) {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-prebuild-'));
  cpSync(path.join(root, 'binding.gyp'), path.join(scratch, 'binding.gyp'));
  cpSync(path.join(root, 'native'), path.join(scratch, 'native'), { recursive: true });
  const r = spawnSync(process.execPath, [path.join(root, 'tools', 'build-addon.mjs')], {
    cwd: scratch,
    // The build's output on stderr: stdout is npm pack's (--json) when this runs as prepack.
    stdio: ['ignore', 2, 2],
    // binding.gyp finds node-addon-api's headers through require(): from this checkout.
    env: { ...process.env, NODE_PATH: path.join(root, 'node_modules') },
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
  built = path.join(scratch, 'build', 'Release', 'kvm_gmem.node');
}

const target = values.out
  ? path.join(path.resolve(values.out), path.relative(path.join(root, 'prebuilds'), prebuildPath(root)))
  : prebuildPath(root);
mkdirSync(path.dirname(target), { recursive: true });
copyFileSync(built, target);
const header = /** @type {{ header: { glibcVersionRuntime?: string } }} */ (process.report.getReport()).header;
writeFileSync(
  `${target}.json`,
  JSON.stringify(
    {
      platform: process.platform,
      arch: process.arch,
      libc: libc(),
      glibc: header.glibcVersionRuntime ?? null,
      builtWith: process.version,
    },
    null,
    2,
  ) + '\n',
);
if (scratch) rmSync(scratch, { recursive: true, force: true });
console.error(`prebuild: ${path.relative(process.cwd(), target)}`);
