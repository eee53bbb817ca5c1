// Loads the compiled addon. KVM_GMEM_ADDON names another build (the sanitizer build, a helper's
// scratch build); otherwise the node-gyp build beside the package, then the prebuilt one it ships.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeNativeError } from './errors.js';
import { fileURLToPath } from 'node:url';
import type { Addon } from './kvm/addon.js';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The prebuilt addon's place for this machine (the same rule as tools/addon-target.mjs). */
function prebuilt(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const libc = process.platform !== 'linux' ? '' : header?.glibcVersionRuntime ? '.glibc' : '.musl';
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `kvm_gmem${libc}.node`);
}

function addonPath(): string {
  const override = process.env.KVM_GMEM_ADDON;
  if (override) return path.resolve(override);
  // Installed as a dependency, or a checkout of the repository (whose prebuilds/ may be older than its sources).
  const installed = root.split(path.sep).includes('node_modules');
  const candidates = [
    path.join(root, 'build', 'Release', 'kvm_gmem.node'),
    path.join(root, 'build', 'Debug', 'kvm_gmem.node'),
    ...(installed ? [prebuilt()] : []),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    const how = installed
      ? 'run `npm rebuild kvm-gmem` in your project (it needs a C++ compiler, make and python3; npm install --ignore-scripts skips this build)'
      : 'run `npm run build:native`';
    throw new Error(`kvm-gmem: the native addon is not built (looked in ${candidates.join(', ')}); ${how}`);
  }
  return found;
}

export const native = require(addonPath()) as Addon;

// Native failures arrive as this library's typed errors.
native.setErrorFactory(makeNativeError);
