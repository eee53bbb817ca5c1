// Kvm, for both backends: the closed checks, argument shaping, and the VMs it owns with the close
// cascade. What /dev/kvm (or the profile standing in for it) answers is the port's.
import { capNumber, vmTypeArg, vmTypesOf } from '../args.js';
import { CAPS } from '../constants.js';
import type { SystemPort } from '../ports.js';
import type { Backend, ConversionMechanism, CpuidEntry, Kvm as KvmApi, Profile } from '../types.js';
import { ensureOpen } from '../validate.js';
import { Children } from './children.js';
import { Owned } from './owned.js';
import { Vm } from './vm.js';

export class Kvm extends Owned implements KvmApi {
  /** Set by open() when backend 'auto' fell back to the simulator: why /dev/kvm was not used. */
  fallbackReason: string | null = null;
  readonly apiVersion: number;
  #vms = new Children<Vm>();

  constructor(readonly port: SystemPort) {
    super();
    this.apiVersion = port.apiVersion;
  }

  get backend(): Backend {
    return this.port.backend;
  }
  get profile(): Profile | ConversionMechanism {
    return this.port.profile;
  }

  checkExtension(cap: number | string): number {
    // The hot case first: a uint32 number on an open object (capNumber gives every other case its answer or error).
    if (typeof cap === 'number' && cap >>> 0 === cap && !this.closed) return this.port.checkExtension(cap);
    ensureOpen(this.closed, 'Kvm');
    return this.port.checkExtension(capNumber(cap));
  }

  vmTypes(): number[] {
    return vmTypesOf(this.checkExtension(CAPS.VM_TYPES!));
  }

  createVm(opts?: { type?: number }): Vm {
    ensureOpen(this.closed, 'Kvm');
    const vm = new Vm(this.port.createVm(vmTypeArg(opts)), (x) => this.#vms.delete(x));
    this.#vms.add(vm);
    return vm;
  }

  supportedCpuid(): CpuidEntry[] {
    ensureOpen(this.closed, 'Kvm');
    return this.port.supportedCpuid();
  }

  msrIndexList(): number[] {
    ensureOpen(this.closed, 'Kvm');
    return this.port.msrIndexList();
  }

  protected teardown(): void {
    for (const vm of this.#vms.drain()) vm.markClosed();
    this.port.close();
  }
}
