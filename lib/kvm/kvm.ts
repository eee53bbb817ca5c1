// Kvm on the real backend: /dev/kvm.
import { capNumber, vmTypeArg, vmTypesOf } from '../args.js';
import { CAPS } from '../constants.js';
import { native } from '../native.js';
import type { ConversionMechanism, CpuidEntry, Kvm, Vm } from '../types.js';
import { wordsToCpuid } from '../cpu-args.js';
import { ensureOpen } from '../validate.js';
import type { NativeKvm } from './addon.js';
import { KvmVm } from './vm.js';
import { Children } from './children.js';

export class KvmSystem implements Kvm {
  readonly backend = 'kvm' as const;
  /** Set by open() when backend 'auto' fell back to the simulator: why /dev/kvm was not used. */
  fallbackReason: string | null = null;
  readonly apiVersion: number;
  readonly native: NativeKvm;
  #closed = false;
  #vms = new Children<KvmVm>();
  #mechanism: ConversionMechanism | undefined;

  constructor(readonly path: string = '/dev/kvm') {
    this.native = new native.NativeKvm(path);
    try {
      this.apiVersion = this.native.apiVersion();
    } catch (e) {
      // Not a KVM device (or the ioctl failed): never keep the fd we opened.
      this.native.close();
      throw e;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The conversion mechanism this kernel offers, found once with size-0 probes. */
  get profile(): ConversionMechanism {
    if (this.#mechanism === undefined) {
      const found = detectConversion(this);
      // A probe that could not run (no VM could be made) is asked again next time.
      if (found === undefined) return null;
      this.#mechanism = found;
    }
    return this.#mechanism;
  }

  checkExtension(cap: number | string): number {
    ensureOpen(this.#closed, 'Kvm');
    return this.native.checkExtension(capNumber(cap));
  }

  vmTypes(): number[] {
    return vmTypesOf(this.checkExtension(CAPS.VM_TYPES!));
  }

  createVm(opts?: { type?: number }): Vm {
    ensureOpen(this.#closed, 'Kvm');
    const type = vmTypeArg(opts);
    const vm = new KvmVm(this.native.createVm(type), (x) => this.#vms.delete(x), () => this.native.createVm(0));
    this.#vms.add(vm);
    return vm;
  }

  supportedCpuid(): CpuidEntry[] {
    ensureOpen(this.#closed, 'Kvm');
    return wordsToCpuid(this.native.supportedCpuid());
  }

  msrIndexList(): number[] {
    ensureOpen(this.#closed, 'Kvm');
    return [...this.native.msrIndexList()];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.close();
    for (const vm of this.#vms.drain()) vm.markClosed();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * In-place conversion first (on the guest_memfd fd), then the VM-level attributes ioctl; each
 * probed with a size-0 call on a scratch VM and file, which changes nothing.
 */
export function detectConversion(kvm: KvmSystem): ConversionMechanism | undefined {
  let vm: KvmVm | undefined;
  try {
    vm = kvm.createVm() as KvmVm;
    const g = vm.native.createGuestMemfd(4096, 0);
    const found = g.probeConversion();
    g.close();
    if (found) return found;
    return vm.native.probeVmAttributes() ? 'vm-attributes' : null;
  } catch {
    return undefined;
  } finally {
    vm?.close();
  }
}
