// A VMM loop for guest-driven conversions, as the kernel selftests' private_mem_conversions_test
// and QEMU's kvm_convert_memory do it: KVM_HC_MAP_GPA_RANGE hypercall exits and
// KVM_EXIT_MEMORY_FAULT exits are answered by converting the range with the mechanism the kernel
// has, then the vCPU runs on.
//   - 'vm-attributes': KVM_SET_MEMORY_ATTRIBUTES on the VM (merged since 6.8; VMs with private
//     memory, e.g. type 1 KVM_X86_SW_PROTECTED_VM): the gpa range's PRIVATE attribute.
//   - 'guest-memfd': conversion on the guest_memfd itself (in-place conversion series, kernel-uapi.md
//     §3; the simulator's 'inplace-v8' and 'rfc-v5' profiles): gm.share / gm.unshare of the file
//     range behind each gpa, found through the regions the caller names.
// A kernel with neither is an UnsupportedError when the loop is made, never a silent no-op.
//
// A memory fault is a conversion request only where its PRIVATE flag says how the guest accessed
// the gpa (SNP: the C-bit, svm.c npf_interception; TDX: the shared bit). On x86's
// KVM_X86_SW_PROTECTED_VM (type 1) the flag is the gpa's current attribute: kvm_mmu_page_fault
// (mmu.c) sets PFERR_PRIVATE_ACCESS from kvm_mem_is_private, "the source of truth for such VMs".
// Such a fault says the slot cannot serve that state (a private gpa in a slot without guest_memfd,
// kvm_mmu_faultin_pfn_gmem; or in no slot, kvm_handle_noslot_fault): converting to it changes
// nothing and the vCPU would fault again at once, so the loop hands it back to the caller.
// (Measured on the rig's custom 7.3 kernel: conv.guest-memory-fault, cases-private-guest.ts.)
import { CAPS, FLAGS, constants } from '../constants.js';
import { KvmError, UnsupportedError, argTypeError } from '../errors.js';
import type { GuestMemfd, Kvm, U64, Vcpu, VcpuExit, Vm } from '../types.js';
import { describe, u64 } from '../validate.js';

export type ConversionMechanismName = 'vm-attributes' | 'guest-memfd';

export interface ConversionRequest {
  /** What asked: the guest's MAP_GPA_RANGE hypercall, or a memory-fault exit. */
  source: 'hypercall' | 'memory_fault';
  gpa: number;
  size: number;
  /** The state asked for. */
  private: boolean;
  exit: VcpuExit;
}

export interface ConversionRecord extends ConversionRequest {
  /** 'converted', 'refused' (by the hook or outside every region) or 'failed' (the kernel's error). */
  outcome: 'converted' | 'refused' | 'failed';
  /** The hypercall's return value given to the guest (hypercalls only). */
  ret?: bigint;
  error?: Error;
}

/** A guest_memfd range behind guest-physical memory (the shape of setMemoryRegion's argument). */
export interface ConversionRegion {
  guestPhysAddr: U64;
  size: U64;
  guestMemfd: GuestMemfd;
  guestMemfdOffset?: U64;
}

export interface ConversionOptions {
  /** Default: what `kvm.profile` names (a VM without private memory has no 'vm-attributes'). */
  mechanism?: ConversionMechanismName;
  /** 'guest-memfd': where each gpa's file pages are. */
  regions?: ConversionRegion[];
  /** KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL) for MAP_GPA_RANGE when the loop is made (default true). */
  enableHypercallExit?: boolean;
  /** Each request before it is carried out: return false to refuse it (a hypercall gets -EPERM). */
  onRequest?: (req: ConversionRequest) => boolean | void | Promise<boolean | void>;
  /** Each request after it was handled. */
  onConverted?: (rec: ConversionRecord) => void;
}

const HC_MAP_GPA_RANGE = constants.hypercalls.KVM_HC_MAP_GPA_RANGE!;
const KVM_X86_SW_PROTECTED_VM = 1;
const EPERM = 1;
const EINVAL = 22;
const KEYS = new Set(['mechanism', 'regions', 'enableHypercallExit', 'onRequest', 'onConverted']);

/**
 * Whether a memory fault on this VM names the state the guest accessed (a request) rather than
 * the gpa's current attribute (type 1 on x86, above). The simulator's 'rfc-v5' stands for arm64,
 * where type 1 is a protected VM and faults are requests.
 */
export function faultsAreRequests(kvm: Kvm, vm: Vm): boolean {
  return vm.type !== KVM_X86_SW_PROTECTED_VM || kvm.profile === 'rfc-v5';
}

/** The mechanism a kernel (or simulator profile) converts with, or null. */
export function conversionMechanism(kvm: Kvm, vm: Vm): ConversionMechanismName | null {
  const p = kvm.profile;
  if (p === 'attributes2' || p === 'gmem-convert' || p === 'inplace-v8' || p === 'rfc-v5') return 'guest-memfd';
  if (p === 'vm-attributes' && vmHasPrivateAttribute(vm)) return 'vm-attributes';
  return null;
}

function vmHasPrivateAttribute(vm: Vm): boolean {
  return (vm.checkExtension(CAPS.MEMORY_ATTRIBUTES!) & FLAGS.KVM_MEMORY_ATTRIBUTE_PRIVATE!) !== 0;
}

export class ConversionLoop {
  readonly mechanism: ConversionMechanismName;
  /** Every request handled, in order. */
  readonly log: ConversionRecord[] = [];
  #regions: { gpa: bigint; size: bigint; file: GuestMemfd; offset: bigint }[];
  #onRequest: ConversionOptions['onRequest'];
  #onConverted: ConversionOptions['onConverted'];
  #faultsAreRequests: boolean;

  constructor(
    readonly kvm: Kvm,
    readonly vm: Vm,
    options: ConversionOptions = {},
  ) {
    if (typeof options !== 'object' || options === null)
      throw argTypeError(`options must be an object, got ${describe(options)}`);
    for (const k of Object.keys(options))
      if (!KEYS.has(k)) throw argTypeError(`ConversionLoop options have no key ${JSON.stringify(k)}`);
    const { mechanism, regions, enableHypercallExit = true, onRequest, onConverted } = options;
    if (mechanism !== undefined && mechanism !== 'vm-attributes' && mechanism !== 'guest-memfd') {
      throw argTypeError(`mechanism must be 'vm-attributes' or 'guest-memfd', got ${describe(mechanism)}`);
    }
    if (onRequest !== undefined && typeof onRequest !== 'function')
      throw argTypeError(`onRequest must be a function, got ${describe(onRequest)}`);
    if (onConverted !== undefined && typeof onConverted !== 'function')
      throw argTypeError(`onConverted must be a function, got ${describe(onConverted)}`);
    if (typeof enableHypercallExit !== 'boolean')
      throw argTypeError(`enableHypercallExit must be a boolean, got ${describe(enableHypercallExit)}`);
    if (regions !== undefined && !Array.isArray(regions))
      throw argTypeError(`regions must be an array, got ${describe(regions)}`);
    this.#regions = (regions ?? []).map((r, i) => {
      if (typeof r !== 'object' || r === null || typeof r.guestMemfd !== 'object' || r.guestMemfd === null) {
        throw argTypeError(
          `regions[${i}] must be { guestPhysAddr, size, guestMemfd, guestMemfdOffset? }, got ${describe(r)}`,
        );
      }
      return {
        gpa: u64(`regions[${i}].guestPhysAddr`, r.guestPhysAddr),
        size: u64(`regions[${i}].size`, r.size),
        file: r.guestMemfd,
        offset: u64(`regions[${i}].guestMemfdOffset`, r.guestMemfdOffset ?? 0),
      };
    });

    const found = conversionMechanism(kvm, vm);
    const m = mechanism ?? found;
    if (m === null) {
      throw new UnsupportedError(
        'conversion',
        `no conversion mechanism on this ${kvm.backend === 'sim' ? `simulator profile (${String(kvm.profile)})` : 'kernel'}: neither KVM_SET_MEMORY_ATTRIBUTES with KVM_MEMORY_ATTRIBUTE_PRIVATE on this VM (type ${vm.type}) nor guest_memfd in-place conversion`,
      );
    }
    if (m === 'vm-attributes' && !vmHasPrivateAttribute(vm)) {
      throw new UnsupportedError(
        'vm-attributes',
        `this VM (type ${vm.type}) has no private memory attribute (KVM_CAP_MEMORY_ATTRIBUTES lacks KVM_MEMORY_ATTRIBUTE_PRIVATE): use a VM type with private memory, e.g. 1 (KVM_X86_SW_PROTECTED_VM)`,
      );
    }
    if (m === 'guest-memfd' && found !== 'guest-memfd') {
      throw new UnsupportedError(
        'guest-memfd-conversion',
        `guest_memfd conversion is not offered here (kvm.profile is ${String(kvm.profile)})`,
      );
    }
    if (m === 'guest-memfd' && this.#regions.length === 0)
      throw argTypeError("mechanism 'guest-memfd' needs regions: the guest_memfd range behind each gpa");
    this.mechanism = m;
    if (enableHypercallExit) {
      const mask = BigInt(vm.checkExtension(CAPS.EXIT_HYPERCALL!));
      const bit = 1n << BigInt(HC_MAP_GPA_RANGE);
      if ((mask & bit) === 0n)
        throw new UnsupportedError(
          'hypercall-exit',
          'KVM_CAP_EXIT_HYPERCALL does not offer KVM_HC_MAP_GPA_RANGE on this VM',
        );
      vm.enableCap(CAPS.EXIT_HYPERCALL!, [bit]);
    }
    this.#onRequest = onRequest;
    this.#onConverted = onConverted;
    this.#faultsAreRequests = faultsAreRequests(kvm, vm);
  }

  /**
   * Answers one exit if it is a conversion request: true when answered (the vCPU may run on);
   * false for any other exit, for a memory fault the hook refused (nothing can answer it), and for
   * a memory fault on a type-1 VM (no request: its flag is the current attribute; see above).
   * A hypercall's result goes to the guest as `exit.ret` (0, or -errno).
   */
  async handle(exit: VcpuExit): Promise<boolean> {
    let req: ConversionRequest;
    if (exit.reason === 'hypercall' && exit.nr === HC_MAP_GPA_RANGE && exit.mapGpaRange) {
      const m = exit.mapGpaRange;
      req = { source: 'hypercall', gpa: m.gpa, size: m.size, private: m.private, exit };
    } else if (exit.reason === 'memory_fault' && this.#faultsAreRequests) {
      req = { source: 'memory_fault', gpa: exit.gpa, size: exit.size, private: exit.private, exit };
    } else {
      return false;
    }
    const rec = await this.#carryOut(req);
    this.log.push(rec);
    if (exit.reason === 'hypercall') exit.ret = rec.ret!;
    this.#onConverted?.(rec);
    if (rec.outcome === 'failed' && req.source === 'memory_fault') throw rec.error;
    return req.source === 'hypercall' || rec.outcome === 'converted';
  }

  async #carryOut(req: ConversionRequest): Promise<ConversionRecord> {
    const answer = (outcome: ConversionRecord['outcome'], errno: number, error?: Error): ConversionRecord => ({
      ...req,
      outcome,
      ...(req.source === 'hypercall' ? { ret: BigInt.asUintN(64, BigInt(-errno)) } : {}),
      ...(error ? { error } : {}),
    });
    if ((await this.#onRequest?.(req)) === false) return answer('refused', EPERM);
    const pieces = this.#pieces(req);
    if (pieces === null) return answer('refused', EINVAL);
    try {
      if (this.mechanism === 'vm-attributes') {
        this.vm.setMemoryAttributes(req.gpa, req.size, { private: req.private });
      } else {
        for (const p of pieces) {
          if (req.private) p.file.unshare(p.offset, p.length);
          else p.file.share(p.offset, p.length);
        }
      }
    } catch (e) {
      if (e instanceof KvmError) return answer('failed', -e.errno, e);
      throw e;
    }
    return answer('converted', 0);
  }

  /** The file ranges behind the request ('guest-memfd'), [] for 'vm-attributes'; null when a gpa has none. */
  #pieces(req: ConversionRequest): { file: GuestMemfd; offset: bigint; length: bigint }[] | null {
    if (this.mechanism === 'vm-attributes') return [];
    const out: { file: GuestMemfd; offset: bigint; length: bigint }[] = [];
    const end = BigInt(req.gpa) + BigInt(req.size);
    for (let at = BigInt(req.gpa); at < end;) {
      const r = this.#regions.find((x) => x.gpa <= at && at < x.gpa + x.size);
      if (!r) return null;
      const to = r.gpa + r.size < end ? r.gpa + r.size : end;
      out.push({ file: r.file, offset: r.offset + (at - r.gpa), length: to - at });
      at = to;
    }
    return out;
  }

  /** Runs the vCPU, answering conversion requests, until any other exit: that exit is returned. */
  async run(vcpu: Pick<Vcpu, 'run'>): Promise<VcpuExit> {
    for (;;) {
      const exit = await vcpu.run();
      if (!(await this.handle(exit))) return exit;
    }
  }
}
