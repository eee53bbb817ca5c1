// Kvm in the simulator: the profile's answers in place of /dev/kvm.
import { capNumber, vmTypeArg, vmTypesOf } from '../args.js';
import { CAPS } from '../constants.js';
import { UnsupportedError, kvmError } from '../errors.js';
import type { CpuidEntry, Kvm, Profile, Vm } from '../types.js';
import { ensureOpen } from '../validate.js';
import type { SimProfile } from './profiles.js';
import { SimVm } from './vm.js';

export class SimKvm implements Kvm {
  readonly backend = 'sim' as const;
  /** Set by open() when backend 'auto' fell back to the simulator: why /dev/kvm was not used. */
  fallbackReason: string | null = null;
  readonly apiVersion: number;
  #closed = false;
  #vms = new Set<SimVm>();

  constructor(readonly model: SimProfile) {
    this.apiVersion = model.apiVersion;
  }

  get profile(): Profile {
    return this.model.name;
  }
  get closed(): boolean {
    return this.#closed;
  }

  checkExtension(cap: number | string): number {
    ensureOpen(this.#closed, 'Kvm');
    return this.model.caps.get(capNumber(cap)) ?? 0;
  }

  vmTypes(): number[] {
    return vmTypesOf(this.checkExtension(CAPS.VM_TYPES!));
  }

  createVm(opts?: { type?: number }): Vm {
    ensureOpen(this.#closed, 'Kvm');
    const type = vmTypeArg(opts);
    if (!this.vmTypes().includes(type)) throw kvmError('EINVAL', 'ioctl', 'KVM_CREATE_VM', undefined, `type ${type}`);
    const vm = new SimVm(this.model, type, (x) => this.#vms.delete(x));
    this.#vms.add(vm);
    return vm;
  }

  supportedCpuid(): CpuidEntry[] {
    ensureOpen(this.#closed, 'Kvm');
    throw new UnsupportedError('supportedCpuid', 'supportedCpuid is not supported: the simulator models memory, not CPUs (use the kvm backend)');
  }

  msrIndexList(): number[] {
    ensureOpen(this.#closed, 'Kvm');
    throw new UnsupportedError('msrIndexList', 'msrIndexList is not supported: the simulator models memory, not CPUs (use the kvm backend)');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const vm of this.#vms) vm.markClosed();
    this.#vms.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
