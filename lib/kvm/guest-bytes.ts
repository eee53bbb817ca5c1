// The bytes of a vm.guest buffer argument (both backends), read through the built-in getters, so
// a Proxy, a look-alike or a typed array with shadowed `buffer`/`byteLength` properties cannot
// change which memory is read or written (TypeError ERR_INVALID_ARG_TYPE for anything else).
import { argTypeError } from '../errors.js';
import { describe } from '../validate.js';

type Getter = (this: unknown) => unknown;
const getter = (proto: object, key: string): Getter => Object.getOwnPropertyDescriptor(proto, key)!.get as Getter;
const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const TA = {
  buffer: getter(typedProto, 'buffer'),
  offset: getter(typedProto, 'byteOffset'),
  length: getter(typedProto, 'byteLength'),
};
const DV = {
  buffer: getter(DataView.prototype, 'buffer'),
  offset: getter(DataView.prototype, 'byteOffset'),
  length: getter(DataView.prototype, 'byteLength'),
};

/** A fresh Uint8Array over the same memory as `v` (any ArrayBufferView, SharedArrayBuffer too). */
export function guestBytes(name: string, v: unknown): Uint8Array {
  // isView reads the internal slots: false for a Proxy, whatever it pretends to be.
  if (!ArrayBuffer.isView(v))
    throw argTypeError(`${name} must be a Uint8Array, Buffer or other ArrayBufferView, got ${describe(v)}`);
  const g = v instanceof DataView ? DV : TA;
  try {
    return new Uint8Array(g.buffer.call(v) as ArrayBuffer, g.offset.call(v) as number, g.length.call(v) as number);
  } catch {
    // A DataView's prototype swapped for a typed array's (or the reverse): the other getters apply.
    const h = g === DV ? TA : DV;
    return new Uint8Array(h.buffer.call(v) as ArrayBuffer, h.offset.call(v) as number, h.length.call(v) as number);
  }
}
