// A Hold as both backends hand it out: its range, whether it was released, and the port whose
// release drops the references (the simulator's counts, the kvm backend's pipes).
import type { HoldPort } from '../ports.js';
import type { Hold } from '../types.js';

export class HostHold implements Hold {
  #released = false;
  constructor(
    readonly offset: number,
    readonly length: number,
    readonly port: HoldPort,
  ) {}
  get released(): boolean {
    return this.#released;
  }
  /** Idempotent: only the first call releases. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.port.release();
  }
  [Symbol.dispose](): void {
    this.release();
  }
}
