// The public shapes (api.md). Both backends implement these interfaces.

/** Offsets, sizes and addresses: safe integers or bigints in; numbers out. */
export type U64 = number | bigint;

export type Backend = 'kvm' | 'sim';
export type Profile = 'rfc-v5' | 'inplace-v8' | 'linux-6.18' | 'linux-7.3' | 'linux-6.18-pvm';
export type ConversionMechanism = 'attributes2' | 'gmem-convert' | 'vm-attributes' | null;
export type PageState = 'shared' | 'private' | 'pending';

export interface OpenOptions {
  backend?: 'auto' | Backend;
  path?: string;
  profile?: Profile;
}

export interface Extent {
  offset: number;
  length: number;
  state: PageState;
}

export interface ConversionResult {
  pending: Extent[];
}

export interface GuestMemfdFlags {
  mmap: boolean;
  initShared: boolean;
}

export interface CreateGuestMemfdOptions {
  size: U64;
  mmap?: boolean;
  initShared?: boolean;
  /** Raw flags, passed through unchecked (for kernels with new flags); ORed with the named ones. */
  flags?: U64;
}

export interface MemoryRegion {
  slot: number;
  guestPhysAddr: U64;
  size: U64;
  guestMemfd?: GuestMemfd;
  guestMemfdOffset?: U64;
  userspace?: Mapping;
  /** Offset into `userspace` where the slot starts (default 0). */
  userspaceOffset?: U64;
  readonly?: boolean;
  /** KVM_MEM_LOG_DIRTY_PAGES */
  logDirtyPages?: boolean;
}

export interface MapOptions {
  /** MAP_PRIVATE instead of MAP_SHARED (guest_memfd refuses it: EINVAL). */
  private?: boolean;
}

export interface FileStat {
  size: number;
  blksize: number;
  blocks: number;
  ino: number | bigint;
  dev: number | bigint;
  mode: number;
}

export interface Hold extends Disposable {
  readonly offset: number;
  readonly length: number;
  readonly released: boolean;
  release(): void;
}

export interface Mapping extends Disposable {
  /** Offset of the mapping in its guest_memfd. */
  readonly offset: number;
  readonly length: number;
  readonly closed: boolean;
  read(offset: U64, length: U64): Buffer;
  /** Reads into `target` (as many bytes as it holds); returns the count. */
  readInto(offset: U64, target: Uint8Array): number;
  write(offset: U64, data: ArrayBufferView): void;
  fill(offset: U64, length: U64, byte: number): void;
  view(): ArrayBuffer;
  unmap(): void;
  close(): void;
}

export interface GuestMemfd extends Disposable {
  readonly fd: number;
  readonly size: number;
  readonly flags: GuestMemfdFlags;
  /** The raw flag bits the file was created with. */
  readonly rawFlags: bigint;
  readonly closed: boolean;
  map(offset?: U64, length?: U64, options?: MapOptions): Mapping;
  share(offset: U64, length: U64): void;
  unshare(offset: U64, length: U64): ConversionResult;
  states(offset?: U64, length?: U64): Extent[];
  allocate(offset: U64, length: U64): void;
  punchHole(offset: U64, length: U64): void;
  hold(offset: U64, length: U64): Hold;
  stat(): FileStat;
  close(): void;
}

export interface Regs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DescriptorTable {
  base: bigint;
  limit: number;
}

export interface Sregs {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

/** What setRegs takes: any of the registers, as bigints or safe-integer numbers. */
export type RegsUpdate = { [K in keyof Regs]?: U64 };

/** What setSregs takes: any of the fields, down to one field of one segment or descriptor table. */
export type SregsUpdate = {
  [K in keyof Sregs]?: Sregs[K] extends Segment | DescriptorTable
    ? { [F in keyof Sregs[K]]?: Sregs[K][F] extends bigint ? U64 : number }
    : U64;
};

/** One CPUID leaf (struct kvm_cpuid_entry2 without its padding). */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface MsrEntry {
  index: number;
  value: U64;
}

/** KVM_HC_MAP_GPA_RANGE's arguments, decoded (args[0..2] of its hypercall exit). */
export interface MapGpaRange {
  gpa: number;
  pages: number;
  /** Bytes: pages times the page size the attributes name. */
  size: number;
  /** KVM_MAP_GPA_RANGE_ENCRYPTED: the guest asks for private memory; else for shared. */
  private: boolean;
  pageSize: 4096 | 2097152 | 1073741824;
  attributes: number;
}

export type VcpuExit =
  | { reason: 'io'; port: number; direction: 'in' | 'out'; size: number; count: number; data: Buffer }
  | { reason: 'mmio'; address: number; length: number; isWrite: boolean; data: Buffer }
  | { reason: 'hlt' }
  | { reason: 'shutdown' }
  | { reason: 'memory_fault'; gpa: number; size: number; private: boolean; flags: number }
  | { reason: 'fail_entry'; hardwareEntryFailureReason: bigint; cpu: number }
  | { reason: 'internal_error'; suberror: number; data: bigint[] }
  | { reason: 'intr' }
  | {
      reason: 'hypercall';
      nr: number;
      args: bigint[];
      longMode: boolean;
      /** The hypercall's return value (rax for the guest): written back before the next run. */
      ret: bigint;
      /** For KVM_HC_MAP_GPA_RANGE (with KVM_CAP_EXIT_HYPERCALL enabled for it). */
      mapGpaRange?: MapGpaRange;
    }
  | { reason: 'unknown'; exitReason: number; hardwareExitReason?: bigint };

export interface Vcpu extends Disposable {
  readonly id: number;
  readonly closed: boolean;
  getRegs(): Regs;
  setRegs(regs: RegsUpdate): void;
  getSregs(): Sregs;
  setSregs(sregs: SregsUpdate): void;
  /**
   * KVM_RUN without blocking the caller for long: it starts on the calling thread for at most a
   * short window (setRunInline, default 2000 us), then continues on the vCPU's own thread.
   */
  run(): Promise<VcpuExit>;
  runSync(): VcpuExit;
  /** Makes the run in flight (or else the next one) return `{ reason: 'intr' }` promptly. */
  kick(): void;
  /** The window run() may keep KVM_RUN on the calling thread, in microseconds (0: never). */
  setRunInline(micros: number): void;
  /** KVM_ENABLE_CAP on the vCPU: up to four argument words; returns the ioctl's result. */
  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number;
  /** KVM_GET_CPUID2: the CPUID the vCPU was given (the library sets the supported set at creation). */
  getCpuid(): CpuidEntry[];
  /** KVM_SET_CPUID2. */
  setCpuid(entries: readonly CpuidEntry[]): void;
  /** KVM_GET_MSRS: the values, in order; an MSR the kernel refuses is a KvmError naming it. */
  getMsrs(indices: readonly number[]): bigint[];
  /** KVM_SET_MSRS: all or a KvmError naming the first MSR the kernel refused. */
  setMsrs(entries: readonly MsrEntry[]): void;
  /**
   * KVM_PRE_FAULT_MEMORY over [gpa, gpa + size): repeated until the whole range is done (each
   * ioctl may do part of it). A failure after some progress carries `remaining: { gpa, size }`.
   * UnsupportedError where KVM_CAP_PRE_FAULT_MEMORY is 0.
   */
  preFaultMemory(gpa: U64, size: U64): void;
  close(): void;
}

export interface GuestAccess {
  read(gpa: U64, length: U64): Promise<Buffer>;
  write(gpa: U64, data: ArrayBufferView): Promise<void>;
  /** As read, into `target` (any Uint8Array, SharedArrayBuffer too): resolves to its length. */
  readInto(gpa: U64, target: Uint8Array): Promise<number>;
  /**
   * The guest-physical range the library's own helper guest occupies (real backend, once the
   * first access made it), which the user's vCPUs cannot change; null while there is none.
   */
  readonly reserved: { gpa: number; size: number } | null;
}

export interface Vm extends Disposable {
  readonly type: number;
  readonly closed: boolean;
  readonly guest: GuestAccess;
  checkExtension(cap: number | string): number;
  guestMemfdFlags(): GuestMemfdFlags;
  createGuestMemfd(options: CreateGuestMemfdOptions): GuestMemfd;
  setMemoryRegion(region: MemoryRegion): void;
  deleteMemoryRegion(slot: number): void;
  setMemoryAttributes(gpa: U64, size: U64, attributes: { private: boolean }): void;
  createVcpu(id?: number): Vcpu;
  /** KVM_ENABLE_CAP on the VM (e.g. KVM_CAP_EXIT_HYPERCALL with the hypercall mask in args[0]). */
  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number;
  close(): void;
}

export interface Kvm extends Disposable {
  readonly backend: Backend;
  /** null, unless open() with backend 'auto' fell back to the simulator: then why (the open error). */
  readonly fallbackReason: string | null;
  /** The simulator's profile, or on the real backend the conversion mechanism found. */
  readonly profile: Profile | ConversionMechanism;
  readonly apiVersion: number;
  readonly closed: boolean;
  checkExtension(cap: number | string): number;
  vmTypes(): number[];
  createVm(options?: { type?: number }): Vm;
  /** KVM_GET_SUPPORTED_CPUID. */
  supportedCpuid(): CpuidEntry[];
  /** KVM_GET_MSR_INDEX_LIST: the MSRs this kernel saves and restores. */
  msrIndexList(): number[];
  close(): void;
}

export interface ProbeReport {
  kvm: { available: boolean; path: string; error?: { code: string; message: string } };
  apiVersion: number | null;
  kernel: string;
  capabilities: Record<string, number>;
  vmTypes: number[];
  guestMemfdFlags: (GuestMemfdFlags & { raw: number }) | null;
  conversion: { mechanism: ConversionMechanism; inPlace: boolean };
  /** The simulator profile verified on a kernel like this one (by version, PVM by /sys/module/kvm_pvm), or null. */
  profile: Profile | null;
}
