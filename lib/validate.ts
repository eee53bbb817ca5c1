// Argument checks shared by both backends: done once, in TypeScript, before any syscall.
// Wrong types give TypeError (ERR_INVALID_ARG_TYPE); values no kernel call could carry give
// RangeError (ERR_OUT_OF_RANGE). Values the kernel itself judges (alignment, size 0, beyond the
// file) are passed on so the kernel's own errno comes back.
import { argRangeError, argTypeError, ClosedError } from './errors.js';
import { PAGE_SIZE } from './constants.js';

export { PAGE_SIZE };
export const U64_MAX = (1n << 64n) - 1n;
export const I64_MAX = (1n << 63n) - 1n;

/** A number (safe, non-negative integer) or bigint in [0, 2^64) as a bigint. */
export function u64(name: string, v: unknown): bigint {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || !Number.isSafeInteger(v)) {
      throw argRangeError(`${name} must be a non-negative safe integer or a bigint, got ${v}`);
    }
    return BigInt(v);
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw argRangeError(`${name} must be between 0 and 2^64-1, got ${v}`);
    return v;
  }
  throw argTypeError(`${name} must be a number or a bigint, got ${describe(v)}`);
}

/** As u64, but also below 2^63: what loff_t arguments (mmap, fallocate) can carry. */
export function i64(name: string, v: unknown): bigint {
  const b = u64(name, v);
  if (b > I64_MAX) throw argRangeError(`${name} must be below 2^63, got ${b}`);
  return b;
}

/** offset + length must not pass 2^64 - 1. Returns the end. */
export function rangeEnd(offset: bigint, length: bigint, limit: bigint = U64_MAX): bigint {
  const end = offset + length;
  if (end > limit) throw argRangeError(`offset ${offset} + length ${length} overflows`);
  return end;
}

export function u32(name: string, v: unknown): number {
  // The common case (a small integer) without a detour through BigInt: slot ids, caps, vCPU ids.
  if (typeof v === 'number' && v >>> 0 === v) return v;
  if (typeof v !== 'number' && typeof v !== 'bigint')
    throw argTypeError(`${name} must be a number, got ${describe(v)}`);
  const b = u64(name, v);
  if (b > 0xffffffffn) throw argRangeError(`${name} must fit in 32 bits, got ${b}`);
  return Number(b);
}

export function byteValue(name: string, v: unknown): number {
  if (typeof v !== 'number') throw argTypeError(`${name} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v) || v < 0 || v > 255)
    throw argRangeError(`${name} must be an integer from 0 to 255, got ${v}`);
  return v;
}

export function optBool(name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw argTypeError(`${name} must be a boolean, got ${describe(v)}`);
  return v;
}

/**
 * An options object as a plain snapshot of its known keys. Each known key is read exactly once
 * (a getter or Proxy cannot show one value to a check and another to the call); an own key that
 * is not known is a TypeError naming it, so a misspelt option never passes unnoticed.
 */
export function options<T extends object>(
  name: string,
  v: unknown,
  keys: readonly (keyof T & string)[],
  required?: boolean,
): Partial<T>;
/** Without a key list: only that it is an object, returned as is (setRegs/setSregs check their keys themselves). */
export function options<T extends object>(name: string, v: unknown, required?: boolean): T;
export function options<T extends object>(
  name: string,
  v: unknown,
  keysOrRequired?: readonly string[] | boolean,
  req = false,
): Partial<T> {
  const keys = Array.isArray(keysOrRequired) ? keysOrRequired : undefined;
  const required = keys ? req : keysOrRequired === true;
  if (v === undefined && !required) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw argTypeError(`${name} must be an object, got ${describe(v)}`);
  if (!keys) return v as T;
  for (const k of Object.keys(v)) {
    if (!(keys as readonly string[]).includes(k)) {
      throw argTypeError(`${name} has no option ${JSON.stringify(k)} (known: ${keys.join(', ')})`);
    }
  }
  const out: Partial<T> = {};
  for (const k of keys) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) (out as Record<string, unknown>)[k] = x;
  }
  return out;
}

export function bytes(name: string, v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw argTypeError(`${name} must be a Uint8Array, Buffer or other ArrayBufferView, got ${describe(v)}`);
}

/** A bigint back as a number where it fits exactly (api.md: values come back as numbers). */
export function num(b: bigint): number {
  if (b > BigInt(Number.MAX_SAFE_INTEGER)) return b as unknown as number;
  return Number(b);
}

export function ensureOpen(closed: boolean, what: string): void {
  if (closed) throw new ClosedError(what);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'Object'}`;
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v)})`;
  return `${typeof v} (${String(v)})`;
}
