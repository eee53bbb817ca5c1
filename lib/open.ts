// open(): the real kernel when /dev/kvm opens, else (backend 'auto') the simulator.
import { argRangeError, argTypeError, KvmError } from './errors.js';
import { KvmSystem } from './kvm/kvm.js';
import { openSim } from './sim/index.js';
import type { Kvm, OpenOptions, Profile } from './types.js';
import { describe, options } from './validate.js';

const PROFILES: readonly Profile[] = ['rfc-v5', 'inplace-v8', 'linux-6.18'];

export function open(opts?: OpenOptions): Kvm {
  const o = options<OpenOptions>('options', opts);
  const backend = o.backend ?? 'auto';
  if (typeof backend !== 'string') throw argTypeError(`backend must be a string, got ${describe(backend)}`);
  if (backend !== 'auto' && backend !== 'kvm' && backend !== 'sim') {
    throw argRangeError(`backend must be 'auto', 'kvm' or 'sim', got ${describe(backend)}`);
  }
  const path = o.path ?? '/dev/kvm';
  if (typeof path !== 'string') throw argTypeError(`path must be a string, got ${describe(path)}`);
  if (o.profile !== undefined && typeof o.profile !== 'string') {
    throw argTypeError(`profile must be a string, got ${describe(o.profile)}`);
  }
  if (o.profile !== undefined && !PROFILES.includes(o.profile)) {
    throw argRangeError(`profile must be one of ${PROFILES.join(', ')}, got ${describe(o.profile)}`);
  }
  if (o.profile !== undefined && backend === 'kvm') {
    throw argRangeError('profile applies to the simulator only (backend: sim)');
  }
  if (backend === 'sim') return openSim(o.profile ?? 'rfc-v5');
  if (backend === 'kvm') return new KvmSystem(path);
  try {
    return new KvmSystem(path);
  } catch (e) {
    if (e instanceof KvmError) return openSim(o.profile ?? 'rfc-v5');
    throw e;
  }
}
