// The simulated backend: the kernel's guest_memfd/KVM memory model in TypeScript, for hosts
// without /dev/kvm and for kernels that do not exist yet (profiles in ./profiles.ts).
import { Kvm } from '../core/kvm.js';
import { argRangeError } from '../errors.js';
import type { Profile } from '../types.js';
import { describe } from '../validate.js';
import { SimKvm } from './kvm.js';
import { PROFILES } from './profiles.js';

export function openSim(profile: Profile): Kvm {
  const model = Object.hasOwn(PROFILES, profile) ? PROFILES[profile] : undefined;
  if (!model)
    throw argRangeError(`profile must be one of ${Object.keys(PROFILES).join(', ')}, got ${describe(profile)}`);
  return new Kvm(new SimKvm(model));
}

export { SimKvm } from './kvm.js';
export { SimVm } from './vm.js';
export { SimGuestMemfd } from './guest-memfd.js';
export { SimMapping } from './mapping.js';
export { HOST_DEPENDENT_CAPS, PROFILES, PROFILE_NAMES } from './profiles.js';
