// Vcpu on the real backend (being built: see issue 6).
import { UnsupportedError } from '../errors.js';
import type { Regs, Sregs, Vcpu, VcpuExit } from '../types.js';

export interface NativeVcpu {
  close(): void;
}

export class KvmVcpu implements Vcpu {
  #closed = false;
  constructor(
    readonly native: NativeVcpu,
    private readonly onClose: (v: KvmVcpu) => void,
  ) {}
  get id(): number {
    return 0;
  }
  get closed(): boolean {
    return this.#closed;
  }
  getRegs(): Regs {
    throw new UnsupportedError('vcpu');
  }
  setRegs(_: Partial<Regs>): void {
    throw new UnsupportedError('vcpu');
  }
  getSregs(): Sregs {
    throw new UnsupportedError('vcpu');
  }
  setSregs(_: Partial<Sregs>): void {
    throw new UnsupportedError('vcpu');
  }
  run(): Promise<VcpuExit> {
    return Promise.reject(new UnsupportedError('vcpu'));
  }
  runSync(): VcpuExit {
    throw new UnsupportedError('vcpu');
  }
  markClosed(): void {
    this.#closed = true;
  }
  close(): void {
    if (this.#closed) return;
    this.native.close();
    this.#closed = true;
    this.onClose(this);
  }
  [Symbol.dispose](): void {
    this.close();
  }
}
