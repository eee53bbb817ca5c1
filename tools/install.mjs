#!/usr/bin/env node
// The package's install script: the prebuilt addon when one for this machine ships and loads,
// else a build from source (tools/build-addon.mjs, which names any missing tool in one line).
// KVM_GMEM_BUILD_FROM_SOURCE=1 skips the prebuilt one. The addon is the real backend only: the
// simulator needs none, so an installed package where no addon can be had (not Linux x64, or no
// compiler) installs all the same, with one line saying so. A checkout of the repository (whose
// tests need the addon) and a build that was tried and failed still fail the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prebuildPath } from './addon-target.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prebuilt = prebuildPath(root);

// In a checkout (npm install / npm ci of the repository itself) the sources may be newer than
// any prebuilds/ left by a pack: only an installed package uses the prebuilt addon.
const installed = root.split(path.sep).includes('node_modules');

if (installed && (process.platform !== 'linux' || process.arch !== 'x64')) {
  // native/ speaks the x86-64 Linux KVM uAPI: elsewhere there is nothing to build.
  console.error(
    `kvm-gmem: no native addon for ${process.platform}-${process.arch} (the real backend is Linux x64 only); the simulator works here.`,
  );
  process.exit(0);
}

if (installed && process.env.KVM_GMEM_BUILD_FROM_SOURCE !== '1' && existsSync(prebuilt)) {
  // Loaded in a child: a binary this C library cannot load (too old a glibc) must not stop the install.
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', prebuilt], { encoding: 'utf8' });
  if (r.status === 0) process.exit(0);
  console.error(
    `kvm-gmem: the prebuilt addon does not load here (${(
      r.stderr
        .trim()
        .split('\n')
        .find((l) => l.includes('Error')) ?? 'unknown error'
    ).trim()}); building from source`,
  );
}
const r = spawnSync(process.execPath, [path.join(root, 'tools', 'build-addon.mjs')], { cwd: root, stdio: 'inherit' });
// 3: the build tools are missing (build-addon.mjs said which, in one line).
process.exit(r.status === 3 && installed ? 0 : (r.status ?? 1));
