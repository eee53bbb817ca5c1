// vm.guest, for both backends: the checks of each call's arguments and the order of the accesses.
// A call checks at once, in one order (the values: gpa, then length or buffer, then a length no
// Buffer can hold; then closed; then gpa + length past 2^64; then the slots' coverage), and a bad
// argument is a rejection right away, queued behind nothing. The port only ever sees checked
// values. Then the call waits for every earlier access on the same VM to settle, fulfilled or
// rejected, before its own runs. So an access never starts inside the code that made the call: a
// host write that follows the call synchronously lands first, and accesses take effect one at a
// time in call order. The real backend needs this (its helper vCPU runs one access at a time);
// the simulator follows it, so the two backends order calls the same way.
import { guestBufferArgs, guestDetached, guestReadArgs } from '../args.js';
import { argRangeError } from '../errors.js';
import type { GuestAccessPort, GuestOp } from '../ports.js';
import type { GuestAccess as GuestAccessApi, U64 } from '../types.js';
import { ensureOpen, rangeEnd } from '../validate.js';

/** What the checks read of the core Vm: whether it is open and the slots this process set. */
export interface GuestOwner {
  readonly closed: boolean;
  readonly slots: ReadonlyMap<number, { guestPhysAddr: bigint; size: bigint }>;
}

export class GuestAccess implements GuestAccessApi {
  /** Settles when the last access queued has settled, either way (a rejection does not stop the next one). */
  #queue: Promise<void> = Promise.resolve();

  constructor(
    readonly port: GuestAccessPort,
    readonly vm: GuestOwner,
  ) {}

  get reserved(): { gpa: number; size: number } | null {
    return this.port.reserved;
  }

  read(gpa: U64, length: U64): Promise<Buffer> {
    return this.#enqueue(() => {
      const [start, len] = guestReadArgs(gpa, length);
      this.#range(start, len);
      const op = this.port.read(start, len);
      // At its turn: the VM and its slots may have changed while earlier accesses ran.
      return () => {
        this.#range(start, len);
        return op();
      };
    });
  }

  readInto(gpa: U64, target: Uint8Array): Promise<number> {
    return this.#buffered('readInto', gpa, target, (start, dst) => this.port.readInto(start, dst));
  }

  write(gpa: U64, data: ArrayBufferView): Promise<void> {
    return this.#buffered('write', gpa, data, (start, src) => this.port.write(start, src));
  }

  /** readInto and write: the buffer's length fixes the range, and it must keep it until the call's turn. */
  #buffered<T>(
    call: 'readInto' | 'write',
    gpa: U64,
    buf: unknown,
    access: (start: bigint, bytes: Uint8Array) => GuestOp<T>,
  ): Promise<T> {
    return this.#enqueue(() => {
      const [start, bytes] = guestBufferArgs(call === 'readInto' ? 'target' : 'data', gpa, buf);
      const len = bytes.byteLength;
      this.#range(start, BigInt(len));
      const op = access(start, bytes);
      return () => {
        // Transferred or shrunk while the call waited: as the kvm port says mid-copy.
        if (bytes.byteLength !== len) throw guestDetached(call);
        this.#range(start, BigInt(len));
        return op();
      };
    });
  }

  /** Before the user sets a slot: the port's helper moves out of its way (the core Vm calls this). */
  makeRoom(slot: number, gpa: bigint, size: bigint): void {
    this.port.makeRoom?.(slot, gpa, size);
  }

  /** The VM is closing: the port lets its helper go. */
  markClosed(): void {
    this.port.markClosed?.();
  }

  /**
   * Closed, then [gpa, gpa + len) within 2^64 and covered whole by the user's slots (any address
   * space): a RangeError naming the first gpa none covers, before anything is read or written.
   */
  #range(gpa: bigint, len: bigint): void {
    ensureOpen(this.vm.closed, 'Vm');
    const end = rangeEnd(gpa, len);
    const slots = [...this.vm.slots.values()];
    for (let at = gpa; at < end;) {
      const s = slots.find((x) => x.guestPhysAddr <= at && at < x.guestPhysAddr + x.size);
      if (!s) {
        throw argRangeError(`gpa 0x${at.toString(16)} is not in any memory slot (range 0x${gpa.toString(16)}+${len})`);
      }
      at = s.guestPhysAddr + s.size;
    }
  }

  #enqueue<T>(check: () => GuestOp<T>): Promise<T> {
    let op: GuestOp<T>;
    try {
      op = check();
    } catch (e) {
      return Promise.reject(e);
    }
    // The queue's tail is a promise of its own that never rejects, so the caller's promise is the
    // only one a failure rejects: an access nobody awaits that fails is an unhandled rejection.
    const prev = this.#queue;
    let settled!: () => void;
    this.#queue = new Promise<void>((resolve) => (settled = resolve));
    return prev.then(async () => {
      try {
        return await op();
      } finally {
        settled();
      }
    });
  }
}
