// The native addon's surface, typed: every class and function native/addon.cc exports, with the
// argument shapes its C++ reads. Nothing here runs; lib/native.ts loads the addon as `Addon`.
// The C++ side still checks every argument (types, ranges, lifetimes): these types are for the
// TypeScript callers, not a substitute for those checks.
import type { VcpuPort } from '../ports.js';
import type { FileStat, U64 } from '../types.js';

/** The kernel numbers of native/uapi.h, as addon.cc exports them (lib/constants.ts is their one reader). */
export interface NativeConstants {
  readonly caps: Readonly<Record<string, number>>;
  readonly ioctls: Readonly<Record<string, number>>;
  readonly vmTypes: Readonly<Record<string, number>>;
  readonly flags: Readonly<Record<string, number>>;
  readonly hypercalls: Readonly<Record<string, number>>;
  readonly exits: Readonly<Record<string, number>>;
  readonly PAGE_SIZE: number;
}

export interface NativeKvm {
  readonly fd: number;
  apiVersion(): number;
  checkExtension(cap: number): number;
  /** checkExtension as a plain function bound to this fd (no method dispatch: the hot path). */
  checkExtensionFunction(): (cap: number) => number;
  createVm(type: number): NativeVm;
  supportedCpuid(): Uint32Array;
  msrIndexList(): Uint32Array;
  close(): void;
}

/** struct kvm_userspace_memory_region2 by field name: a missing number is 0, a missing object none. */
export interface NativeRegion {
  slot: number;
  flags?: number;
  guestPhysAddr?: U64;
  size?: U64;
  userspace?: NativeMapping;
  userspaceOffset?: U64;
  guestMemfd?: NativeGuestMemfd;
  guestMemfdOffset?: U64;
}

export interface NativeVm {
  readonly fd: number;
  readonly type: number;
  checkExtension(cap: number): number;
  /** checkExtension as a plain function bound to this fd (no method dispatch: the hot path). */
  checkExtensionFunction(): (cap: number) => number;
  createGuestMemfd(size: U64, flags: U64): NativeGuestMemfd;
  setUserMemoryRegion2(region: NativeRegion): void;
  setMemoryAttributes(gpa: U64, size: U64, attributes: U64, flags?: U64): void;
  probeVmAttributes(): boolean;
  createVcpu(id: number): NativeVcpu;
  enableCap(cap: number, flags: number, args: BigUint64Array): number;
  close(): void;
}

export type NativeConversion = 'attributes2' | 'gmem-convert';

export interface NativeGuestMemfd {
  readonly fd: number;
  map(offset: U64, length: U64, priv: boolean): NativeMapping;
  fallocate(mode: 'allocate' | 'punch', offset: U64, length: U64): void;
  stat(): FileStat;
  probeConversion(): NativeConversion | null;
  convert(mechanism: NativeConversion, toPrivate: boolean, offset: U64, size: U64): void;
  hold(offset: bigint, length: bigint): number;
  releaseHold(id: number): void;
  /** Test aid: bytes the hold's first page still carries. */
  peekHold(id: number, bytes: number): Buffer | null;
  close(): void;
}

export interface NativeMapping {
  readonly offset: number;
  readonly length: number;
  read(offset: U64, length: U64): Buffer;
  readInto(offset: U64, target: Uint8Array): number;
  write(offset: U64, data: ArrayBufferView): void;
  fill(offset: U64, length: U64, byte: number): void;
  view(): ArrayBuffer;
  detachViews(): void;
  unmap(): void;
}

/** The native vCPU is the VcpuPort itself (its `layout` read from the C++ struct kvm_run). */
export type NativeVcpu = VcpuPort;

export interface NativeExtentMap {
  readonly pages: number;
  assign(start: number | bigint, end: number | bigint, value: number): void;
  add(start: number | bigint, end: number | bigint, delta: number): void;
  query(start: number | bigint, end: number | bigint): Float64Array;
  queryInto(start: number, end: number, out: Float64Array): number;
  valueAt(page: number | bigint): number;
  findFirst(start: number | bigint, end: number | bigint, value: number, equal: boolean): number;
  extentCount(): number;
  bytesUsed(): number;
  resize(pages: number | bigint, fill: number): void;
  /** Empty when the tree is sound, else what is wrong. */
  checkInvariants(): string;
  depth(): number;
}

/** Present only in builds with fault injection (npm run test:asan). */
export interface NativeTestHooks {
  failNext(kind: 'ioctl' | 'mmap' | 'fallocate' | 'open', errno: number, request?: number, skip?: number): void;
  fired(kind: string): number;
  clear(): void;
}

export type NativeErrorFactory = (kind: string, props: Record<string, unknown>) => Error;

export interface Addon {
  NativeKvm: new (path: string) => NativeKvm;
  ExtentMap: new (pages: number | bigint, initial: number) => NativeExtentMap;
  setErrorFactory(factory: NativeErrorFactory): void;
  readonly constants: NativeConstants;
  readonly testHooks?: NativeTestHooks;
}
