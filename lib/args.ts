// Argument shaping shared by both backends: each public call's options turned into the values
// its ioctl or syscall takes, checked once (lib/validate.ts has the checks themselves).
import { constants as bufferConstants } from 'node:buffer';
import { argRangeError, argTypeError } from './errors.js';
import { CAPS, FLAGS, bitsOf } from './constants.js';
import { EXTRA_CAP_NAMES, SERIES_CAPS, seriesCapLabel } from './series-caps.js';
import type { CreateGuestMemfdOptions, GuestMemfdFlags, MapOptions, MemoryRegion, U64 } from './types.js';
import { describe, ensureOpen, i64, optBool, options, rangeEnd, u32, u64 } from './validate.js';

/** A capability by number or by name ('GUEST_MEMFD_FLAGS' or 'KVM_CAP_GUEST_MEMFD_FLAGS'). */
export function capNumber(cap: unknown): number {
  if (typeof cap === 'string') {
    const name = cap.startsWith('KVM_CAP_') ? cap.slice(8) : cap;
    const n = CAPS[name] ?? EXTRA_CAP_NAMES[name];
    if (n === undefined)
      throw argRangeError(
        `unknown capability name ${JSON.stringify(cap)}; known: ${[...Object.keys(CAPS), ...Object.keys(EXTRA_CAP_NAMES).filter((k) => !(k in CAPS))].join(', ')}`,
      );
    return n;
  }
  if (typeof cap !== 'number' && typeof cap !== 'bigint')
    throw argTypeError(`cap must be a number or a name, got ${describe(cap)}`);
  return u32('cap', cap);
}

const capNames = new Map<number, string>(Object.entries(CAPS).map(([k, v]) => [v, k]));
// Series numbers that mainline reused read as both (lib/series-caps.ts).
for (const c of SERIES_CAPS) capNames.set(c.cap, seriesCapLabel(c.cap)!);

export function capName(n: number): string | undefined {
  return capNames.get(n);
}

/** The flag mask of KVM_CAP_GUEST_MEMFD_FLAGS as named booleans. */
export function memfdFlagsOf(mask: number | bigint): GuestMemfdFlags {
  const m = BigInt(mask);
  return {
    mmap: (m & BigInt(FLAGS.GUEST_MEMFD_FLAG_MMAP!)) !== 0n,
    initShared: (m & BigInt(FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!)) !== 0n,
  };
}

/** KVM_CAP_VM_TYPES' mask as the list of types; kernels before the cap know only the default type. */
export function vmTypesOf(mask: number): number[] {
  return mask === 0 ? [0] : bitsOf(mask);
}

/** createVm({ type }) -> the KVM_CREATE_VM argument. */
export function vmTypeArg(opts: unknown): number {
  const o = options<{ type?: number }>('options', opts, ['type']);
  return o.type === undefined ? 0 : u32('type', o.type);
}

/** createGuestMemfd options -> struct kvm_create_guest_memfd's size and flags. */
export function createMemfdArgs(opts: unknown): { size: bigint; flags: bigint } {
  const o = options<CreateGuestMemfdOptions>('options', opts, ['size', 'mmap', 'initShared', 'flags'], true);
  const size = u64('size', o.size);
  let flags = o.flags === undefined ? 0n : u64('flags', o.flags);
  if (optBool('mmap', o.mmap)) flags |= BigInt(FLAGS.GUEST_MEMFD_FLAG_MMAP!);
  if (optBool('initShared', o.initShared)) flags |= BigInt(FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!);
  return { size, flags };
}

/** map(offset, length, options) -> mmap's offset, length and MAP_PRIVATE. */
export function mapArgs(
  fileSize: bigint,
  offset: U64,
  length: U64 | undefined,
  opts: unknown,
): { offset: bigint; length: bigint; private: boolean } {
  const off = i64('offset', offset);
  let len: bigint;
  if (length === undefined) {
    if (off > fileSize) throw argRangeError(`offset ${off} is beyond the file (size ${fileSize}); give a length`);
    len = fileSize - off;
  } else {
    len = u64('length', length);
  }
  rangeEnd(off, len);
  const priv = optBool('options.private', options<MapOptions>('options', opts, ['private']).private);
  return { offset: off, length: len, private: priv };
}

/** A byte range that must lie inside a file of `fileSize` (states, share, unshare, hold). */
export function fileRange(fileSize: bigint, offset: U64, length: U64): [bigint, bigint] {
  const off = u64('offset', offset);
  const len = u64('length', length);
  const end = rangeEnd(off, len);
  if (end > fileSize) throw argRangeError(`range [${off}, ${end}) is beyond the file (size ${fileSize})`);
  return [off, len];
}

/** hold(offset, length): a range inside the file covering at least one byte (a pin of nothing is no pin). */
export function holdRange(fileSize: bigint, offset: U64, length: U64): [bigint, bigint] {
  const [off, len] = fileRange(fileSize, offset, length);
  if (len === 0n) throw argRangeError('a hold must cover at least one byte, got length 0');
  return [off, len];
}

/** states(offset = 0, length = size - offset): the range it reports. */
export function statesRange(fileSize: bigint, offset: U64, length: U64 | undefined): [bigint, bigint] {
  const off = u64('offset', offset);
  if (length === undefined && off > fileSize) throw argRangeError(`offset ${off} is beyond the file`);
  return fileRange(fileSize, off, length === undefined ? fileSize - off : length);
}

export interface RegionArgs<G, M> {
  slot: number;
  flags: number;
  gpa: bigint;
  size: bigint;
  gmem?: G;
  gmemOffset: bigint;
  mapping?: M;
  userspaceOffset: bigint;
}

type Ctor<T> = abstract new (...args: never[]) => T;

const REGION_KEYS = [
  'slot',
  'guestPhysAddr',
  'size',
  'guestMemfd',
  'guestMemfdOffset',
  'userspace',
  'userspaceOffset',
  'readonly',
  'logDirtyPages',
] as const satisfies readonly (keyof MemoryRegion)[];

/**
 * setMemoryRegion's object -> struct kvm_userspace_memory_region2's fields. The file and the
 * mapping must be lib/core's (`Gmem`, `Map`), of this backend and open.
 */
export function regionArgs<
  G extends { closed: boolean; backend: string },
  M extends { closed: boolean; length: number; backend: string },
>(region: unknown, Gmem: Ctor<G>, Map: Ctor<M>, backend: string): RegionArgs<G, M> {
  const r = options<MemoryRegion>('region', region, REGION_KEYS, true);
  const slot = u32('slot', r.slot);
  const gpa = u64('guestPhysAddr', r.guestPhysAddr);
  const size = u64('size', r.size);
  let flags = 0;
  if (optBool('readonly', r.readonly)) flags |= FLAGS.KVM_MEM_READONLY!;
  if (optBool('logDirtyPages', r.logDirtyPages)) flags |= FLAGS.KVM_MEM_LOG_DIRTY_PAGES!;
  let gmem: G | undefined;
  if (r.guestMemfd !== undefined) {
    if (!(r.guestMemfd instanceof Gmem) || r.guestMemfd.backend !== backend)
      throw argTypeError(`guestMemfd must be a GuestMemfd of the ${backend} backend, got ${describe(r.guestMemfd)}`);
    gmem = r.guestMemfd;
    ensureOpen(gmem.closed, 'GuestMemfd');
    flags |= FLAGS.KVM_MEM_GUEST_MEMFD!;
  }
  const gmemOffset = r.guestMemfdOffset === undefined ? 0n : u64('guestMemfdOffset', r.guestMemfdOffset);
  let mapping: M | undefined;
  if (r.userspace !== undefined) {
    if (!(r.userspace instanceof Map) || r.userspace.backend !== backend)
      throw argTypeError(`userspace must be a Mapping of the ${backend} backend, got ${describe(r.userspace)}`);
    mapping = r.userspace;
    ensureOpen(mapping.closed, 'Mapping');
  }
  const userspaceOffset = r.userspaceOffset === undefined ? 0n : u64('userspaceOffset', r.userspaceOffset);
  if (mapping && userspaceOffset > BigInt(mapping.length))
    throw argRangeError(`userspaceOffset must be within the mapping (${mapping.length} bytes), got ${userspaceOffset}`);
  // The kernel only checks that the range is user memory: a slot longer than the rest of its
  // mapping would give the guest whatever this process maps next (V8's heap, say) to read and write.
  const mapped = mapping ? ((BigInt(mapping.length) + 4095n) / 4096n) * 4096n : 0n;
  if (mapping && size > mapped - userspaceOffset) {
    throw argRangeError(
      `the slot (${size} bytes from userspaceOffset ${userspaceOffset}) reaches past the end of its mapping (${mapping.length} bytes)`,
    );
  }
  // Without a mapping the slot's userspace address is 0 whatever the offset says (the kvm backend
  // never passed it on; the simulator took it for an address: found by the differential fuzzer).
  return { slot, flags, gpa, size, gmem, gmemOffset, mapping, userspaceOffset: mapping ? userspaceOffset : 0n };
}

/** setMemoryAttributes' arguments -> struct kvm_memory_attributes' address, size and PRIVATE bit. */
export function attributesArgs(
  gpa: U64,
  size: U64,
  attributes: unknown,
): { gpa: bigint; size: bigint; private: boolean } {
  const a = options<{ private: boolean }>('attributes', attributes, ['private'], true);
  const priv = optBool('attributes.private', a.private);
  return { gpa: u64('gpa', gpa), size: u64('size', size), private: priv };
}

/**
 * The longest vm.guest access: buffer.constants.MAX_LENGTH, which is v8::TypedArray::kMaxLength,
 * the largest Buffer or Uint8Array this Node can make (64-bit: 2^32 on Node 20, 2^53-1 from Node
 * 22, nodejs/node#52465). A read's Buffer must be one; readInto's target and write's data are
 * views, whose length is within it by construction (the kvm backend copies any Uint8Array).
 */
export const GUEST_ACCESS_MAX = BigInt(bufferConstants.MAX_LENGTH);

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

/**
 * A vm.guest buffer argument as a fresh Uint8Array over the same memory (any ArrayBufferView,
 * SharedArrayBuffer too), read through the built-in getters: a Proxy, a look-alike or a typed
 * array with shadowed `buffer`/`byteLength` cannot change which memory is read or written.
 */
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

/** vm.guest.read(gpa, length): the values, then the length a Buffer can hold (before closed and the range). */
export function guestReadArgs(gpa: U64, length: U64): [bigint, bigint] {
  const start = u64('gpa', gpa);
  const len = u64('length', length);
  if (len > GUEST_ACCESS_MAX) throw argRangeError(`length ${len} is larger than a Buffer can be (${GUEST_ACCESS_MAX})`);
  return [start, len];
}

/** vm.guest.readInto(gpa, target) / write(gpa, data): the gpa, then the buffer's own memory. */
/** A vm.guest target or source that was detached or shrunk before or during its access. */
export function guestDetached(call: 'readInto' | 'write'): RangeError {
  return argRangeError(`the buffer given to vm.guest.${call} was detached or resized during the call`);
}

export function guestBufferArgs(name: 'target' | 'data', gpa: U64, buf: unknown): [bigint, Uint8Array] {
  return [u64('gpa', gpa), guestBytes(name, buf)];
}
