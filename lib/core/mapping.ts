// Mapping, for both backends: the argument checks and their order (argument types, then open,
// then the range, then what no Buffer can hold), view() refusal where the file's states say the
// host may not touch, and the closed state. The copies themselves are the port's (the kvm
// backend's run under the SIGBUS guard; the simulator's follow the model's host-access rule).
import { kMaxLength } from 'node:buffer';
import { argRangeError, viewRefused } from '../errors.js';
import type { Backend, MapPort } from '../ports.js';
import type { Mapping as MappingApi, U64 } from '../types.js';
import { byteValue, bytes, ensureOpen, num, u64 } from '../validate.js';
import { Owned } from './owned.js';

/** What a mapping asks of its file. */
export interface MappedFile {
  readonly backend: Backend;
  /** The first byte of [offset, offset + length) the host may not touch (not shared, or past the end), or null. */
  firstUnshared(offset: bigint, length: bigint): bigint | null;
}

export class Mapping extends Owned implements MappingApi {
  readonly offset: number;
  readonly length: number;
  readonly #start: bigint;
  readonly #len: bigint;

  constructor(
    readonly port: MapPort,
    /** The file the mapping shows (vm.guest asks which file a slot's userspace memory is). */
    readonly file: MappedFile,
    offset: bigint,
    length: bigint,
    onClose: (m: Mapping) => void,
  ) {
    super(onClose);
    this.#start = offset;
    this.#len = length;
    this.offset = num(offset);
    this.length = num(length);
  }

  get backend(): Backend {
    return this.file.backend;
  }

  /**
   * The common case with no BigInt: a safe-integer offset (and length) inside an open mapping.
   * undefined sends the call down the checked path, which gives every error in its order.
   */
  #quick(offset: unknown, length: number): number | undefined {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || this.closed) return undefined;
    return offset + length <= this.length ? offset : undefined;
  }

  #range(offset: bigint, length: bigint): void {
    ensureOpen(this.closed, 'Mapping');
    if (offset > this.#len || length > this.#len - offset) throw argRangeError('range is outside the mapping');
  }

  read(offset: U64, length: U64): Buffer {
    if (typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 && length <= kMaxLength) {
      const quick = this.#quick(offset, length);
      if (quick !== undefined) return this.port.read(quick, length);
    }
    const off = u64('offset', offset);
    const len = u64('length', length);
    this.#range(off, len);
    // Larger than any Buffer: a range error, not Node's untyped allocation failure.
    if (len > BigInt(kMaxLength))
      throw argRangeError(`length ${len} is larger than the largest Buffer (${kMaxLength}); use readInto in pieces`);
    return this.port.read(off, len);
  }

  readInto(offset: U64, target: Uint8Array): number {
    const dst = bytes('target', target);
    const quick = this.#quick(offset, dst.length);
    if (quick !== undefined) return this.port.readInto(quick, dst);
    const off = u64('offset', offset);
    this.#range(off, BigInt(dst.length));
    return this.port.readInto(off, dst);
  }

  write(offset: U64, data: ArrayBufferView): void {
    const src = bytes('data', data);
    const quick = this.#quick(offset, src.length);
    if (quick !== undefined) return this.port.write(quick, src);
    const off = u64('offset', offset);
    this.#range(off, BigInt(src.length));
    this.port.write(off, src);
  }

  fill(offset: U64, length: U64, byte: number): void {
    const b = byteValue('byte', byte);
    const off = u64('offset', offset);
    const len = u64('length', length);
    this.#range(off, len);
    this.port.fill(off, len, b);
  }

  view(): ArrayBuffer {
    ensureOpen(this.closed, 'Mapping');
    const unsupported = this.port.viewUnsupported?.();
    if (unsupported) throw unsupported;
    // A view's first touch of a private page is a SIGBUS no guard catches: refuse what is known
    // private (or past the end of the file) before handing one out.
    const bad = this.file.firstUnshared(this.#start, this.#len);
    if (bad !== null) throw viewRefused(bad);
    return this.port.view();
  }

  /** Detaches every view (a range under the mapping turned private). */
  detachViews(): void {
    this.port.detachViews();
  }

  /** munmap; idempotent, as close(). */
  unmap(): void {
    this.close();
  }

  protected teardown(): void {
    this.port.unmap();
  }
}
