// open(): the real kernel when /dev/kvm opens, else (backend 'auto') the simulator.
import { argRangeError, argTypeError, KvmError } from './errors.js';
import { KvmSystem } from './kvm/kvm.js';
import { PROFILE_NAMES, openSim } from './sim/index.js';
import type { Kvm, OpenOptions, Profile } from './types.js';
import { describe, options } from './validate.js';

const PROFILES: readonly Profile[] = PROFILE_NAMES;

export function open(opts?: OpenOptions): Kvm {
  const o = options<OpenOptions>('options', opts);
  const backend = o.backend ?? 'auto';
  if (typeof backend !== 'string') throw argTypeError(`backend must be a string, got ${describe(backend)}`);
  if (backend !== 'auto' && backend !== 'kvm' && backend !== 'sim') {
    throw argRangeError(`backend must be 'auto', 'kvm' or 'sim', got ${describe(backend)}`);
  }
  const path = o.path ?? '/dev/kvm';
  if (typeof path !== 'string') throw argTypeError(`path must be a string, got ${describe(path)}`);
  const profile = o.profile ?? undefined; // null means the default, as for backend and path
  if (profile !== undefined && typeof profile !== 'string') {
    throw argTypeError(`profile must be a string, got ${describe(profile)}`);
  }
  if (profile !== undefined && !PROFILES.includes(profile)) {
    throw argRangeError(`profile must be one of ${PROFILES.join(', ')}, got ${describe(profile)}`);
  }
  if (profile !== undefined && backend === 'kvm') {
    throw argRangeError('profile applies to the simulator only (backend: sim)');
  }
  if (backend === 'sim') return openSim(profile ?? 'rfc-v5');
  if (backend === 'kvm') return new KvmSystem(path);
  try {
    return new KvmSystem(path);
  } catch (e) {
    if (e instanceof KvmError) return openSim(profile ?? 'rfc-v5');
    throw e;
  }
}
