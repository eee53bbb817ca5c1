// Loads the compiled addon. KVM_GMEM_ADDON names another build (the sanitizer build, a helper's
// scratch build); otherwise the node-gyp build beside the package, then the cmake-js one.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeNativeError } from './errors.js';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function addonPath(): string {
  const override = process.env.KVM_GMEM_ADDON;
  if (override) return path.resolve(override);
  const candidates = [
    path.join(root, 'build', 'Release', 'kvm_gmem.node'),
    path.join(root, 'build', 'Debug', 'kvm_gmem.node'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`kvm-gmem: the native addon is not built (looked in ${candidates.join(', ')}); run \`npm run build:native\``);
  }
  return found;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const native: any = require(addonPath());

// Native failures arrive as this library's typed errors.
native.setErrorFactory(makeNativeError);
