// The simulated backend (being built: see issue 3).
import { UnsupportedError } from '../errors.js';
import type { Kvm, Profile } from '../types.js';

export function openSim(_profile: Profile): Kvm {
  throw new UnsupportedError('simulator');
}
