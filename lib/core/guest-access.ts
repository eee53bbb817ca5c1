// vm.guest, for both backends: the order of the accesses. Each call checks its arguments at once
// (the port's checks: a bad one is a rejection right away, queued behind nothing), then waits for
// every earlier access on the same VM to settle, fulfilled or rejected, before its own runs. So an
// access never starts inside the code that made the call: a host write that follows the call
// synchronously lands first, and accesses take effect one at a time in call order. The real
// backend needs this (its helper vCPU runs one access at a time); the simulator follows it, so the
// two backends order calls the same way.
import type { GuestAccessPort, GuestOp } from '../ports.js';
import type { GuestAccess as GuestAccessApi, U64 } from '../types.js';

export class GuestAccess implements GuestAccessApi {
  /** The last access queued, settled either way (a rejection does not stop the next one). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(readonly port: GuestAccessPort) {}

  get reserved(): { gpa: number; size: number } | null {
    return this.port.reserved;
  }

  read(gpa: U64, length: U64): Promise<Buffer> {
    return this.#enqueue(() => this.port.read(gpa, length));
  }

  readInto(gpa: U64, target: Uint8Array): Promise<number> {
    return this.#enqueue(() => this.port.readInto(gpa, target));
  }

  write(gpa: U64, data: ArrayBufferView): Promise<void> {
    return this.#enqueue(() => this.port.write(gpa, data));
  }

  /** Before the user sets a slot: the port's helper moves out of its way (the core Vm calls this). */
  makeRoom(slot: number, gpa: bigint, size: bigint): void {
    this.port.makeRoom?.(slot, gpa, size);
  }

  /** The VM is closing: the port lets its helper go. */
  markClosed(): void {
    this.port.markClosed?.();
  }

  #enqueue<T>(check: () => GuestOp<T>): Promise<T> {
    let op: GuestOp<T>;
    try {
      op = check();
    } catch (e) {
      return Promise.reject(e);
    }
    const p = this.#queue.then(op, op);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}
