// The system port on the real backend: /dev/kvm, each method one ioctl through the addon.
import { Kvm } from '../core/kvm.js';
import { wordsToCpuid } from '../cpu-args.js';
import { native } from '../native.js';
import type { SystemPort, VmPort } from '../ports.js';
import type { ConversionMechanism, CpuidEntry } from '../types.js';
import type { NativeKvm } from './addon.js';
import { KvmVmPort } from './vm.js';

export class KvmSystemPort implements SystemPort {
  readonly backend = 'kvm' as const;
  readonly apiVersion: number;
  readonly native: NativeKvm;
  #mechanism: ConversionMechanism | undefined;
  /** The addon's plain function itself (no wrapper frame: the hot path). */
  readonly checkExtension: (cap: number) => number;

  constructor(readonly path: string) {
    this.native = new native.NativeKvm(path);
    try {
      this.apiVersion = this.native.apiVersion();
      this.checkExtension = this.native.checkExtensionFunction();
    } catch (e) {
      // Not a KVM device (or the ioctl failed): never keep the fd we opened.
      this.native.close();
      throw e;
    }
  }

  /** The conversion mechanism this kernel offers, found once with size-0 probes. */
  get profile(): ConversionMechanism {
    if (this.#mechanism === undefined) {
      const found = detectConversion(this.native);
      // A probe that could not run (no VM could be made) is asked again next time.
      if (found === undefined) return null;
      this.#mechanism = found;
    }
    return this.#mechanism;
  }

  createVm(type: number): VmPort {
    return new KvmVmPort(this.native.createVm(type), () => this.native.createVm(0));
  }

  supportedCpuid(): CpuidEntry[] {
    return wordsToCpuid(this.native.supportedCpuid());
  }

  msrIndexList(): number[] {
    return [...this.native.msrIndexList()];
  }

  close(): void {
    this.native.close();
  }
}

/** The real backend's Kvm: /dev/kvm at `path`. */
export function openKvm(path: string = '/dev/kvm'): Kvm {
  return new Kvm(new KvmSystemPort(path));
}

/**
 * In-place conversion first (on the guest_memfd fd), then the VM-level attributes ioctl; each
 * probed with a size-0 call on a scratch VM and file, which changes nothing.
 */
function detectConversion(kvm: NativeKvm): ConversionMechanism | undefined {
  let vm;
  try {
    vm = kvm.createVm(0);
    const g = vm.createGuestMemfd(4096, 0);
    const found = g.probeConversion();
    g.close();
    if (found) return found;
    return vm.probeVmAttributes() ? 'vm-attributes' : null;
  } catch {
    return undefined;
  } finally {
    vm?.close();
  }
}
