// Loads the compiled addon. KVM_GMEM_ADDON names another build (the sanitizer build, a helper's
// scratch build), or is `none` to run as where the addon cannot load; otherwise the node-gyp build
// beside the package, then the prebuilt one it ships. Without an addon the package still loads: the
// simulator needs none (lib/extent-map.ts, lib/uapi-constants.ts), and the real backend's first
// native call is an UnsupportedError saying why the addon is missing.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UnsupportedError, makeNativeError } from './errors.js';
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
  if (override === 'none') throw new Error('kvm-gmem: the native addon is not loaded (KVM_GMEM_ADDON=none)');
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

function load(): { addon: Addon | null; error: Error | null } {
  try {
    const addon = require(addonPath()) as Addon;
    // Native failures arrive as this library's typed errors.
    addon.setErrorFactory(makeNativeError);
    return { addon, error: null };
  } catch (e) {
    return { addon: null, error: e instanceof Error ? e : new Error(String(e)) };
  }
}

const loaded = load();

/** Why the addon did not load (null when it did): the real backend needs it, the simulator does not. */
export const addonError: Error | null = loaded.error;

/** The thrown error for any use of a missing addon. */
export function addonMissing(): UnsupportedError {
  return new UnsupportedError(
    'native addon',
    `${addonError?.message ?? 'the native addon is not loaded'}; only the simulator (open({ backend: 'sim' })) works without it`,
  );
}

// Without the addon every property read throws addonMissing(), so the first real-backend call says why.
const missing = new Proxy(
  {},
  {
    get(_target, key) {
      if (typeof key === 'symbol') return undefined;
      throw addonMissing();
    },
  },
);

export const native: Addon = loaded.addon ?? (missing as Addon);
