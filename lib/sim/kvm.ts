// The system port in the simulator: the profile's answers in place of /dev/kvm.
import { vmTypesOf } from '../args.js';
import { CAPS } from '../constants.js';
import { UnsupportedError, kvmError } from '../errors.js';
import type { SystemPort, VmPort } from '../ports.js';
import type { CpuidEntry, Profile } from '../types.js';
import type { SimProfile } from './profiles.js';
import { SimVm } from './vm.js';

export class SimKvm implements SystemPort {
  readonly backend = 'sim' as const;
  readonly apiVersion: number;

  constructor(readonly model: SimProfile) {
    this.apiVersion = model.apiVersion;
  }

  get profile(): Profile {
    return this.model.name;
  }

  checkExtension(cap: number): number {
    return this.model.caps.get(cap) ?? 0;
  }

  createVm(type: number): VmPort {
    if (!vmTypesOf(this.checkExtension(CAPS.VM_TYPES!)).includes(type))
      throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_VM', undefined, `type ${type}`);
    return new SimVm(this.model, type);
  }

  supportedCpuid(): CpuidEntry[] {
    throw new UnsupportedError(
      'supportedCpuid',
      'supportedCpuid is not supported: the simulator models memory, not CPUs (use the kvm backend)',
    );
  }

  msrIndexList(): number[] {
    throw new UnsupportedError(
      'msrIndexList',
      'msrIndexList is not supported: the simulator models memory, not CPUs (use the kvm backend)',
    );
  }

  close(): void {
    // The model holds nothing a close must give back; the core closes the VMs.
  }
}
