// A Hold as both backends hand it out: its range, whether it was released, and what releasing
// does (the simulator drops its counts, the kvm backend closes the pipes that hold the pages).
import type { Hold } from './types.js';

export class HostHold implements Hold {
  #released = false;
  constructor(
    readonly offset: number,
    readonly length: number,
    private readonly onRelease: () => void,
  ) {}
  get released(): boolean {
    return this.#released;
  }
  /** Idempotent: only the first call releases. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease();
  }
  [Symbol.dispose](): void {
    this.release();
  }
}
