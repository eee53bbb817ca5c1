// open(): the backend asked for, and never another without saying so. Backend 'auto' is the real
// kernel, or the simulator only when there is no KVM device at the default path at all (ENOENT);
// a device that exists but fails (EACCES, not a KVM device) or a path given explicitly throws,
// so a test meant for the kernel cannot pass against the model unnoticed. Without the native addon
// (lib/native.ts) the same rule holds: 'auto' gives the simulator only when there is no device.
import { existsSync } from 'node:fs';
import './dispose.js';
import { argRangeError, argTypeError, KvmError } from './errors.js';
import { openKvm } from './kvm/kvm.js';
import { addonError } from './native.js';
import { PROFILE_NAMES, openSim } from './sim/index.js';
import type { Kvm, OpenOptions, Profile } from './types.js';
import { describe, options } from './validate.js';

const PROFILES: readonly Profile[] = PROFILE_NAMES;
const DEFAULT_PATH = '/dev/kvm';
// The simulator's profile when none is named: mainline 6.18, the kernel a VMM most likely meets
// (a series profile is asked for by name: its flags and rules differ from mainline's).
const DEFAULT_PROFILE: Profile = 'linux-6.18';

export function open(opts?: OpenOptions): Kvm {
  const o = options<OpenOptions>('options', opts, ['backend', 'path', 'profile']);
  const backend = o.backend ?? 'auto';
  if (typeof backend !== 'string') throw argTypeError(`backend must be a string, got ${describe(backend)}`);
  if (backend !== 'auto' && backend !== 'kvm' && backend !== 'sim') {
    throw argRangeError(`backend must be 'auto', 'kvm' or 'sim', got ${describe(backend)}`);
  }
  const explicitPath = o.path ?? undefined; // null means the default, as for backend and profile
  if (explicitPath !== undefined && typeof explicitPath !== 'string')
    throw argTypeError(`path must be a string, got ${describe(explicitPath)}`);
  const profile = o.profile ?? undefined;
  if (profile !== undefined && typeof profile !== 'string') {
    throw argTypeError(`profile must be a string, got ${describe(profile)}`);
  }
  if (profile !== undefined && !PROFILES.includes(profile)) {
    throw argRangeError(`profile must be one of ${PROFILES.join(', ')}, got ${describe(profile)}`);
  }
  if (profile !== undefined && backend === 'kvm') {
    throw argRangeError(
      `profile applies to the simulator only (backend: 'sim'), got backend 'kvm' with profile '${profile}'`,
    );
  }
  if (explicitPath !== undefined && backend === 'sim') {
    throw argRangeError(
      `path applies to the real kernel only, got backend 'sim' with path ${JSON.stringify(explicitPath)}`,
    );
  }
  if (profile !== undefined && explicitPath !== undefined) {
    throw argRangeError(`profile (the simulator) and path (the real kernel) exclude each other, got both`);
  }
  // A profile names a model of a kernel: with backend 'auto' it means the simulator.
  if (backend === 'sim' || profile !== undefined) return openSim(profile ?? DEFAULT_PROFILE);
  const path = explicitPath ?? DEFAULT_PATH;
  if (backend === 'kvm' || explicitPath !== undefined) return openKvm(path);
  if (addonError && !existsSync(path)) {
    const sim = openSim(DEFAULT_PROFILE) as Kvm & { fallbackReason: string | null };
    sim.fallbackReason = `the native addon is not loaded and there is no ${path} (the simulator's '${DEFAULT_PROFILE}' profile instead)`;
    return sim;
  }
  try {
    return openKvm(path);
  } catch (e) {
    if (!(e instanceof KvmError) || e.code !== 'ENOENT') throw e;
    const sim = openSim(DEFAULT_PROFILE) as Kvm & { fallbackReason: string | null };
    sim.fallbackReason = `${e.message} (no KVM device here; the simulator's '${DEFAULT_PROFILE}' profile instead)`;
    return sim;
  }
}
