// The ports: one narrow interface per kernel object, in the style of rust-vmm's kvm-ioctls (one
// type per fd kind, each method one kernel operation, the errno carried unchanged in a KvmError).
// lib/core/ holds everything both backends must agree on (argument checks and their order, closed
// checks, ownership and the close cascade, view detaching, the state mirror) and calls these;
// a port only executes. Arguments arrive checked: integers as bigints in range, byte offsets
// relative to the object. lib/kvm/ implements them over the addon, lib/sim/ over the model.
import type { Vm } from './core/vm.js';
import type { UnsupportedError } from './errors.js';
import type {
  Backend,
  ConversionMechanism,
  ConversionResult,
  CpuidEntry,
  Extent,
  FileStat,
  GuestAccess,
  GuestMemfdFlags,
  Profile,
  Sregs,
} from './types.js';

export type { Backend };

/** A byte offset or length a port receives: a bigint, or a number where both of a call's are safe integers. */
export type Offset = bigint | number;

/** A MAP_SHARED mapping of a guest_memfd: offsets are bytes into the mapping, ranges inside it. */
export interface MapPort {
  // Offsets and lengths the core has checked: a bigint, or a number when both fit a safe integer
  // (the common case, which then crosses into the addon without a BigInt).
  read(offset: bigint | number, length: bigint | number): Buffer;
  readInto(offset: bigint | number, target: Uint8Array): number;
  write(offset: bigint | number, data: Uint8Array): void;
  fill(offset: bigint | number, length: bigint | number, byte: number): void;
  /** An ArrayBuffer over the mapping (the core has refused ranges the host may not touch). */
  view(): ArrayBuffer;
  /** What this backend cannot back with a view, asked before the core's own refusal. */
  viewUnsupported?(): UnsupportedError | undefined;
  detachViews(): void;
  /** munmap; also called when the owner closed (idempotent). */
  unmap(): void;
}

/** Host references on pages of a file, dropped by release (idempotent). */
export interface HoldPort {
  release(): void;
}

/** A guest_memfd file descriptor: offsets are bytes into the file. */
export interface GmemPort {
  readonly backend: Backend;
  readonly fd: number;
  /**
   * What the raw creation flags mean, where the kernel gives them a meaning of its own (the
   * model: RFC v5's bit 0 is INIT_MAPPABLE); otherwise the core reads them as mainline's.
   */
  readonly flags?: GuestMemfdFlags;
  /** mmap(2); the kernel's errno for what it refuses (alignment, flags, limits). */
  map(offset: bigint, length: bigint, priv: boolean): MapPort;
  /** fallocate(2) with FALLOC_FL_KEEP_SIZE, or with PUNCH_HOLE as well. */
  fallocate(mode: 'allocate' | 'punch', offset: bigint, length: bigint): void;
  /**
   * The kernel's conversion call (whichever it has; UnsupportedError if none), range inside the
   * file. Offsets are bigints, or numbers when both are safe integers (the hot path from JS).
   */
  convert(to: 'shared' | 'private', offset: Offset, length: Offset): ConversionResult;
  stat(): FileStat;
  /** Take host references on [offset, offset + length) (a non-empty range inside the file). */
  hold(offset: bigint, length: bigint): HoldPort;
  /**
   * The kernel's own record of the conversion states, where the backend has one (the model). A
   * real kernel has no call to read them back: the core then answers from its mirror of what
   * this process converted.
   */
  states?(offset: Offset, length: Offset): Extent[];
  close(): void;
}

/** A memory slot as the port sets it: struct kvm_userspace_memory_region2 with the ports it points at. */
export interface RegionPort {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  size: bigint;
  userspace?: MapPort;
  userspaceOffset: bigint;
  guestMemfd?: GmemPort;
  guestMemfdOffset: bigint;
}

/** One vm.guest access, its arguments checked: the core runs it in its turn. */
export type GuestOp<T> = () => Promise<T>;

/**
 * A backend's vm.guest (lib/kvm/guest.ts, lib/sim/guest.ts), behind the core's GuestAccess
 * (lib/core/guest-access.ts), which checks each call's arguments (values, the largest Buffer,
 * closed, the range and the slots' coverage) and queues the accesses. A port method gets checked
 * values only: `gpa + length` within 2^64 and covered by the core Vm's slots when the call was
 * made, the buffer a plain Uint8Array over the caller's memory. It returns the access, which the
 * core runs after every earlier access on the VM has settled (slots may have changed by then).
 */
export interface GuestAccessPort {
  readonly reserved: GuestAccess['reserved'];
  read(gpa: bigint, length: bigint): GuestOp<Buffer>;
  readInto(gpa: bigint, target: Uint8Array): GuestOp<number>;
  write(gpa: bigint, data: Uint8Array): GuestOp<void>;
  /** Before a slot is set: the helper moves out of its way (the kvm backend's helper memory). */
  makeRoom?(slot: number, gpa: bigint, size: bigint): void;
  markClosed?(): void;
}

/** Byte offsets of kvm_run's fields (the kernel's struct, as the addon reads them from its header). */
export interface VcpuLayout {
  immediateExit: number;
  exitReason: number;
  ioDirection: number;
  ioSize: number;
  ioPort: number;
  ioCount: number;
  ioDataOffset: number;
  mmioPhysAddr: number;
  mmioData: number;
  mmioLen: number;
  mmioIsWrite: number;
  failEntryReason: number;
  failEntryCpu: number;
  internalSuberror: number;
  internalNdata: number;
  internalData: number;
  hwExitReason: number;
  memoryFaultFlags: number;
  memoryFaultGpa: number;
  memoryFaultSize: number;
  memoryFaultFlagPrivate: number;
  ioIn: number;
  hypercallNr: number;
  hypercallArgs: number;
  hypercallRet: number;
  hypercallLongMode: number;
}

/** A vCPU file descriptor: its ioctls, and the mmapped kvm_run area the core decodes exits from. */
export interface VcpuPort {
  readonly id: number;
  readonly fd: number;
  readonly layout: VcpuLayout;
  area(): ArrayBuffer;
  getRegs(out: BigUint64Array): void;
  setRegs(regs: BigUint64Array): void;
  getSregs(): Sregs;
  setSregs(sregs: Partial<Sregs>): void;
  /** KVM_RUN on this thread: the exit reason. */
  runSync(): number;
  /** KVM_RUN, moving to the vCPU's own thread past the inline window. */
  run(): number | Promise<number>;
  kick(): void;
  setRunInline(ns: number): void;
  enableCap(cap: number, flags: number, args: BigUint64Array): number;
  getCpuid(): Uint32Array;
  setCpuid(words: Uint32Array): void;
  /** KVM_GET_MSRS / KVM_SET_MSRS: how many entries the kernel processed. */
  getMsrs(indices: Uint32Array, values: BigUint64Array): number;
  setMsrs(indices: Uint32Array, values: BigUint64Array): number;
  /** KVM_PRE_FAULT_MEMORY once: the range left [gpa, size]. */
  preFaultMemory(gpa: bigint, size: bigint): BigUint64Array;
  close(): void;
}

/** A VM file descriptor. */
export interface VmPort {
  readonly backend: Backend;
  readonly type: number;
  checkExtension(cap: number): number;
  /** KVM_CREATE_GUEST_MEMFD. */
  createGuestMemfd(size: bigint, flags: bigint): GmemPort;
  /** KVM_SET_USER_MEMORY_REGION2 (size 0 deletes). */
  setUserMemoryRegion2(region: RegionPort): void;
  /** KVM_SET_MEMORY_ATTRIBUTES. */
  setMemoryAttributes(gpa: bigint, size: bigint, attributes: bigint): void;
  /** KVM_CREATE_VCPU. */
  createVcpu(id: number): VcpuPort;
  /** KVM_ENABLE_CAP on the VM. */
  enableCap(cap: number, flags: number, args: BigUint64Array): number;
  /** vm.guest's machinery for this backend, made on first use. */
  guestAccess(vm: Vm): GuestAccessPort;
  close(): void;
}

/** /dev/kvm (or the model's stand-in for it). */
export interface SystemPort {
  readonly backend: Backend;
  readonly apiVersion: number;
  /** The simulator's profile, or the conversion mechanism this kernel offers. */
  readonly profile: Profile | ConversionMechanism;
  checkExtension(cap: number): number;
  /** KVM_CREATE_VM. */
  createVm(type: number): VmPort;
  supportedCpuid(): CpuidEntry[];
  msrIndexList(): number[];
  close(): void;
}
