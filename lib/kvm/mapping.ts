// Mapping on the real backend: a thin shell over the native mapping, whose copies run under the
// SIGBUS guard (a private page gives HostAccessError, never a dead process).
import { kMaxLength } from 'node:buffer';
import { argRangeError, viewRefused } from '../errors.js';
import type { Mapping, U64 } from '../types.js';
import { byteValue, bytes, ensureOpen, u64 } from '../validate.js';
import type { NativeMapping } from './addon.js';

export class KvmMapping implements Mapping {
  #closed = false;
  constructor(
    readonly native: NativeMapping,
    private readonly onClose: (m: KvmMapping) => void,
    /** Where the file's state mirror says the host may not touch a range (view() refuses it). */
    private readonly firstUnshared: (offset: bigint, length: bigint) => bigint | null = () => null,
  ) {}

  get offset(): number {
    return this.native.offset;
  }
  get length(): number {
    return this.native.length;
  }
  get closed(): boolean {
    // The owner marks this closed when it closes the native side (markClosed).
    return this.#closed;
  }

  read(offset: U64, length: U64): Buffer {
    // Larger than any Buffer: say so as a range error, not Node's untyped allocation failure; in
    // the native order (argument types, then closed, then ranges) so both backends agree.
    if ((typeof length === 'number' || typeof length === 'bigint') && length > kMaxLength) {
      u64('offset', offset);
      u64('length', length);
      ensureOpen(this.#closed, 'Mapping');
      throw argRangeError(`length ${length} is larger than the largest Buffer (${kMaxLength}); use readInto in pieces`);
    }
    return this.native.read(offset, length);
  }
  readInto(offset: U64, target: Uint8Array): number {
    return this.native.readInto(offset, bytes('target', target));
  }
  write(offset: U64, data: ArrayBufferView): void {
    this.native.write(offset, bytes('data', data));
  }
  fill(offset: U64, length: U64, byte: number): void {
    this.native.fill(offset, length, byteValue('byte', byte));
  }
  view(): ArrayBuffer {
    // A view's first touch of a private page is a SIGBUS no guard catches: refuse what is known
    // private (or past the end of the file) before handing one out.
    if (!this.#closed) {
      const bad = this.firstUnshared(BigInt(this.native.offset), BigInt(this.native.length));
      if (bad !== null) throw viewRefused(bad);
    }
    return this.native.view();
  }
  /** Detaches every view (used when a range under the mapping turns private). */
  detachViews(): void {
    this.native.detachViews();
  }
  unmap(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.unmap();
    this.onClose(this);
  }
  /** The owner closed; the native side is already closed. */
  markClosed(): void {
    this.#closed = true;
  }
  close(): void {
    this.unmap();
  }
  [Symbol.dispose](): void {
    this.unmap();
  }
}
