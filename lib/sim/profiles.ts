// The kernels the simulator models, as data: what checkExtension answers, which VM types exist,
// which conversion model the guest_memfd files follow, and the kernel rules that differ between
// mainline KVM and this project's development host (docs/profiles.md has every rule and its source).
//
// Three kernels were measured with `checkExtension(0..399)` on /dev/kvm and on a type-0 VM:
//   - 'linux-6.18-pvm': the development machines (Linux 6.18 in Firecracker, /dev/kvm from the
//     kvm_pvm module: PVM, shadow paging, Intel Xeon, 2 vCPUs). Not mainline KVM.
//   - 'linux-6.18': Debian's 6.18.15 in the rig (tools/rig: QEMU TCG, EPYC with SVM, 1 vCPU,
//     kvm_amd with nested paging), i.e. mainline 6.18's KVM on an AMD host with NPT.
//   - 'linux-7.3': Debian's 7.3.4 in the rig, same host.
// Caps marked 'host' below depend on the host CPU or hypervisor, not on the kernel version: a
// model can only answer them for the host it was measured on (see HOST_DEPENDENT_CAPS).
//
// The two patch-series profiles start from the PVM table (where they were first measured against)
// and change only what their series changes (sources next to each profile below; docs/profiles.md):
//
// | cap                                   | 6.18-pvm | rfc-v5          | inplace-v8      |
// |---------------------------------------|---------:|-----------------|-----------------|
// | 233 MEMORY_ATTRIBUTES                 |        0 | 0               | 0 (v8-10)       |
// | 234 GUEST_MEMFD                       |        1 | 1               | 1               |
// | 235 VM_TYPES                          |        1 | 3 (types 0, 1)  | 3 (types 0, 1)  |
// | 239 GUEST_MEMFD_MAPPABLE (RFC v5)     |        0 | 1; type-0 VM: 0 | 0               |
// | 244 GUEST_MEMFD_FLAGS                 |        3 | 0 (6.13 base)   | 3               |
// | 250 GUEST_MEMFD_MEMORY_ATTRIBUTES (v8)|        0 | 0               | 8; type-0 VM: 0 |
// | 129 (VM fd only)                      |       11 | 11              | 11              |
// Mainline numbers 239 (ARM_WRITABLE_IMP_ID_REGS) and up collide with the series' (lib/series-caps.ts).
import { CAPS, FLAGS, constants } from '../constants.js';
import { SERIES_CAPS } from '../series-caps.js';
import type { Profile } from '../types.js';
import { inplaceV8, none, rfcV5, type ConversionModel } from './conversion/index.js';

// Capability numbers by name: mainline's and the addon's from native/uapi.h (lib/constants.ts),
// the series' from lib/series-caps.ts. The measured tables below are keyed by number as
// checkExtension(0..399) answered; every rule over them names its capability.
/** A number of lib/constants.ts by name; a name it lacks fails when this module loads. */
function known(group: Readonly<Record<string, number>>, name: string): number {
  const n = group[name];
  if (n === undefined) throw new Error(`lib/constants.ts has no ${name}`);
  return n;
}
const cap = (name: string): number => known(CAPS, name);
const VM_DEFAULT = known(constants.vmTypes, 'DEFAULT');
const VM_SW_PROTECTED = known(constants.vmTypes, 'SW_PROTECTED');

/** A series capability's number in the revision lib/series-caps.ts records. */
function seriesCap(name: string): number {
  const c = SERIES_CAPS.find((s) => s.series === name);
  if (!c) throw new Error(`lib/series-caps.ts has no series capability ${name}`);
  return c.cap;
}
const GUEST_MEMFD_MEMORY_ATTRIBUTES = seriesCap('GUEST_MEMFD_MEMORY_ATTRIBUTES');
/** KVM_CAP_VM_TYPES of a kernel offering VM types 0 and 1 (a bit per type). */
const VM_TYPES_0_1 = (1 << VM_DEFAULT) | (1 << VM_SW_PROTECTED);
const ATTRIBUTE_PRIVATE = known(FLAGS, 'KVM_MEMORY_ATTRIBUTE_PRIVATE');

export interface SimProfile {
  readonly name: Profile;
  readonly apiVersion: number;
  /** /dev/kvm answers; caps not listed are 0. */
  readonly caps: ReadonlyMap<number, number>;
  /** VM fd answers where they differ from /dev/kvm. */
  readonly vmCaps: ReadonlyMap<number, number>;
  /** VM fd answers of one VM type where they differ from vmCaps (see vmCap). */
  readonly vmTypeCaps?: ReadonlyMap<number, ReadonlyMap<number, number>>;
  /** VM types for which kvm_arch_has_private_mem() is true (x86: KVM_X86_SW_PROTECTED_VM and the CoCo types). */
  readonly privateMemVmTypes: ReadonlySet<number>;
  /** The conversion rules of its guest_memfd files (lib/sim/conversion/). */
  readonly conversion: ConversionModel;
  /** KVM_CREATE_GUEST_MEMFD: flag bits accepted (6.18: MMAP | INIT_SHARED; rfc-v5: INIT_MAPPABLE). */
  readonly gmemFlags: bigint;
  /**
   * A slot bound to a guest_memfd created with MMAP is gmem-only: the guest's faults are served
   * from the file, with no userspace address needed, and fault once the file is released.
   * Mainline: kvm_gmem_bind sets KVM_MEMSLOT_GMEM_ONLY, __kvm_mmu_faultin_pfn then takes
   * kvm_gmem_get_pfn. PVM (false): the guest reaches memory only through userspace_addr.
   */
  readonly gmemOnlySlots: boolean;
  /**
   * KVM_SET_MEMORY_ATTRIBUTES exists (CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES, selected by
   * KVM_AMD_SEV / KVM_INTEL_TDX / KVM_SW_PROTECTED_VM in Debian's config): on a type-0 VM it
   * accepts attributes 0 and refuses PRIVATE with EINVAL (kvm_vm_ioctl_set_mem_attributes against
   * kvm_supported_mem_attributes). false: the ioctl is ENOTTY (the PVM host's build lacks it).
   */
  readonly vmAttributes: boolean;
  /**
   * Two-dimensional paging (NPT/EPT). Decides KVM_CAP_PRE_FAULT_MEMORY (= tdp_enabled) and the
   * highest gpa a slot may reach: kvm_mmu_max_gfn() is the host MAXPHYADDR with TDP, 52 bits
   * without (shadow paging, as PVM). Host-dependent.
   */
  readonly tdp: boolean;
  /**
   * The same guest_memfd range bound to a second slot: EINVAL in 6.18's kvm_gmem_bind, EEXIST in
   * 7.x, where the binding moved to kvm_gmem_commit_memory_region.
   */
  readonly rebindErrno: 'EINVAL' | 'EEXIST';
  /**
   * 6.18's kvm_gmem_bind sums offset + size as loff_t: a sum reaching 2^63 wraps negative and
   * passes the end-of-file check. 7.x takes uoff_t (kvm_gmem_prepare_memory_region): no wrap.
   */
  readonly gmemOffsetSignedSum: boolean;
  /**
   * A guest access the slot's userspace memory cannot serve (no mapping, unmapped, past the file,
   * host-private): mainline's KVM_RUN fails with EFAULT (hva_to_pfn gives KVM_PFN_ERR_FAULT and
   * kvm_handle_error_pfn returns -EFAULT, no memory-fault exit); PVM exits to userspace as MMIO.
   * Found by the differential fuzzer in tools/rig (Debian 7.3.4).
   */
  readonly userspaceFaultEfault: boolean;
}

// Measured on the PVM host (Linux 6.18, kvm_pvm, /dev/kvm); see the table above. The raw answers,
// keyed by the number probed.
const PVM_6_18_CAPS: ReadonlyArray<[number, number]> = [
  [0, 1],
  [1, 1],
  [2, 1],
  [3, 1],
  [4, 1],
  [6, 1],
  [7, 1],
  [8, 1],
  [9, 2],
  [10, 32764],
  [11, 1],
  [12, 1],
  [14, 1],
  [15, 2],
  [16, 1],
  [21, 1],
  [22, 1],
  [23, 1],
  [24, 1],
  [25, 4096],
  [26, 1],
  [30, 1],
  [31, 32],
  [32, 1],
  [33, 1],
  [34, 1],
  [35, 1],
  [36, 1],
  [37, 1],
  [39, 14],
  [40, 1],
  [41, 1],
  [47, 1],
  [50, 1],
  [51, 1],
  [54, 1],
  [55, 1],
  [56, 1],
  [59, 1],
  [61, 1],
  [66, 1024],
  [70, 1],
  [72, 1],
  [74, 7],
  [76, 1],
  [77, 1],
  [81, 1],
  [82, 1],
  [89, 1],
  [95, 1],
  [97, 1],
  [98, 1],
  [100, 1],
  [105, 1],
  [116, 1],
  [121, 1],
  [122, 1],
  [127, 1],
  [128, 4096],
  [129, 15],
  [136, 1],
  [143, 14],
  [153, 1],
  [159, 1],
  [162, 1],
  [164, 1],
  [168, 3],
  [173, 1],
  [182, 1],
  [183, 1],
  [184, 1],
  [185, 1],
  [187, 1],
  [188, 1],
  [189, 1],
  [190, 1],
  [192, 1048576],
  [195, 2031619],
  [197, 1],
  [200, 1],
  [201, 4096],
  [203, 1],
  [204, 1],
  [206, 1],
  [208, 4096],
  [209, 1],
  [213, 1535],
  [215, 1],
  [218, 1],
  [220, 1],
  [223, 1048576],
  [226, 1],
  [231, 1],
  [232, 1],
  [234, 1],
  [235, 1],
  [237, 1],
  [238, 1],
  [244, 3],
];
const PVM_6_18_VM_CAPS: ReadonlyArray<[number, number]> = [[cap('X2APIC_API'), 11]];

// Debian 6.18.15 with kvm_amd in the rig, measured as the PVM table was: where it differs from it.
// 'host': the host CPU or hypervisor decides; 'config': Debian's kernel config; 'version': 6.18 vs 7.3.
const MAINLINE_6_18_OVER: ReadonlyArray<[number, number, string]> = [
  [cap('NR_VCPUS'), 1, 'host: NR_VCPUS is num_online_cpus() (the rig runs -smp 1)'],
  [cap('XEN_HVM'), 511, 'config: CONFIG_KVM_XEN (XEN_HVM flags)'],
  [cap('HYPERV'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_VAPIC'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_SPIN'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_TIME'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_SYNIC'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_SYNIC2'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_VP_INDEX'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_EVENTFD'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_TLBFLUSH'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_SEND_IPI'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_CPUID'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('SYS_HYPERV_CPUID'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('HYPERV_ENFORCE_CPUID'), 1, 'config: CONFIG_KVM_HYPERV'],
  [cap('MAX_VCPUS'), 4096, 'config: CONFIG_KVM_MAX_NR_VCPUS'],
  [cap('MAX_VCPU_ID'), 16384, 'config: MAX_VCPU_ID follows KVM_MAX_NR_VCPUS'],
  [cap('X86_SMM'), 1, 'config: CONFIG_KVM_SMM'],
  [cap('MULTI_ADDRESS_SPACE'), 2, 'config: SMM gives a second address space'],
  [cap('SGX_ATTRIBUTE'), 1, 'config: CONFIG_X86_SGX_KVM'],
  [cap('X2APIC_API'), 3, 'version: 6.18 answers X2APIC_API 3 on kvm_amd (7.3 and the PVM host: 15)'],
  [cap('X86_DISABLE_EXITS'), 15, 'host: X86_DISABLE_EXITS (kvm_amd offers CSTATE here; PVM 14)'],
  [cap('NESTED_STATE'), 4224, "host: NESTED_STATE is kvm_amd's nested state size (PVM has no nesting: 0)"],
  [cap('SMALLER_MAXPHYADDR'), 0, 'host: SMALLER_MAXPHYADDR needs EPT with allow_smaller_maxphyaddr (Intel only)'],
  [cap('DISABLE_QUIRKS2'), 1023, 'host+version: DISABLE_QUIRKS2, vendor quirks (PVM 1535) and 7.3 adds bits (4095)'],
  [
    cap('MEMORY_ATTRIBUTES'),
    ATTRIBUTE_PRIVATE,
    'config: KVM_GENERIC_MEMORY_ATTRIBUTES; /dev/kvm answers PRIVATE (kvm_supported_mem_attributes(NULL))',
  ],
  [cap('PRE_FAULT_MEMORY'), 1, 'host: PRE_FAULT_MEMORY is tdp_enabled (NPT here; PVM shadow-pages: 0)'],
];
// On a type-0 VM: no private memory, so no attributes; 6.18 answers X2APIC_API as /dev/kvm does.
const MAINLINE_6_18_VM_CAPS: ReadonlyArray<[number, number]> = [[cap('MEMORY_ATTRIBUTES'), 0]];
// Debian 7.3.4 in the rig: the 6.18 table except these (version changes).
const MAINLINE_7_3_OVER: ReadonlyArray<[number, number, string]> = [
  [cap('X2APIC_API'), 15, 'version: X2APIC_API gained flags; a VM answers 11'],
  [cap('DISABLE_QUIRKS2'), 4095, 'version: DISABLE_QUIRKS2 gained quirks'],
];
const MAINLINE_7_3_VM_CAPS: ReadonlyArray<[number, number]> = [
  [cap('X2APIC_API'), 11],
  [cap('MEMORY_ATTRIBUTES'), 0],
];

function overlay(
  base: ReadonlyArray<[number, number]>,
  ...overs: ReadonlyArray<ReadonlyArray<readonly [number, number, ...unknown[]]>>
): Map<number, number> {
  const m = new Map(base);
  for (const over of overs) {
    for (const [k, v] of over) {
      if (v === 0) m.delete(k);
      else m.set(k, v);
    }
  }
  return m;
}

/** Caps whose value depends on the host (CPU vendor, paging mode, vCPU count), not on the kernel. */
export const HOST_DEPENDENT_CAPS: ReadonlySet<number> = new Set(
  MAINLINE_6_18_OVER.filter(([, , why]) => why.startsWith('host')).map(([k]) => k),
);

const GMEM_FLAGS = BigInt(known(FLAGS, 'GUEST_MEMFD_FLAG_MMAP') | known(FLAGS, 'GUEST_MEMFD_FLAG_INIT_SHARED'));

// This project's development host, PVM (kernel-uapi.md §1).
const PVM_RULES = {
  privateMemVmTypes: new Set<number>(),
  gmemOnlySlots: false,
  vmAttributes: false,
  tdp: false,
  rebindErrno: 'EINVAL',
  gmemOffsetSignedSum: true,
  userspaceFaultEfault: false,
} as const;

export const PROFILES: Readonly<Record<Profile, SimProfile>> = {
  'linux-6.18': {
    name: 'linux-6.18',
    apiVersion: 12,
    caps: overlay(PVM_6_18_CAPS, MAINLINE_6_18_OVER),
    vmCaps: new Map(MAINLINE_6_18_VM_CAPS),
    privateMemVmTypes: new Set(),
    conversion: none,
    gmemFlags: GMEM_FLAGS,
    gmemOnlySlots: true,
    vmAttributes: true,
    tdp: true,
    rebindErrno: 'EINVAL',
    gmemOffsetSignedSum: true,
    userspaceFaultEfault: true,
  },
  'linux-7.3': {
    name: 'linux-7.3',
    apiVersion: 12,
    caps: overlay(PVM_6_18_CAPS, MAINLINE_6_18_OVER, MAINLINE_7_3_OVER),
    vmCaps: new Map(MAINLINE_7_3_VM_CAPS),
    privateMemVmTypes: new Set(),
    conversion: none,
    gmemFlags: GMEM_FLAGS,
    gmemOnlySlots: true,
    vmAttributes: true,
    tdp: true,
    rebindErrno: 'EEXIST',
    gmemOffsetSignedSum: false,
    userspaceFaultEfault: true,
  },
  'linux-6.18-pvm': {
    name: 'linux-6.18-pvm',
    apiVersion: 12,
    caps: new Map(PVM_6_18_CAPS),
    vmCaps: new Map(PVM_6_18_VM_CAPS),
    conversion: none,
    gmemFlags: GMEM_FLAGS,
    ...PVM_RULES,
  },
  'rfc-v5': {
    name: 'rfc-v5',
    apiVersion: 12,
    // 6.13 base: KVM_CAP_GUEST_MEMFD_FLAGS (244) does not exist yet; the series adds 239 (-10-tabba).
    // VM type 1 stands for a VM with private memory (x86's KVM_X86_SW_PROTECTED_VM; on arm64,
    // where the series runs, kvm_arch_has_private_mem is is_protected_kvm_enabled(), -16-tabba).
    caps: overlay(PVM_6_18_CAPS, [
      [cap('GUEST_MEMFD_MAPPABLE'), 1],
      [cap('VM_TYPES'), VM_TYPES_0_1],
      [cap('GUEST_MEMFD_FLAGS'), 0],
    ]),
    vmCaps: new Map(PVM_6_18_VM_CAPS),
    // -10-tabba kvm_vm_ioctl_check_extension_generic: "case KVM_CAP_GUEST_MEMFD_MAPPABLE: return
    // !kvm || kvm_arch_has_private_mem(kvm);": 1 on /dev/kvm and type 1, 0 on a type-0 VM.
    vmTypeCaps: new Map([[VM_DEFAULT, new Map([[cap('GUEST_MEMFD_MAPPABLE'), 0]])]]),
    conversion: rfcV5,
    // -11-tabba kvm_gmem_create: valid_flags |= GUEST_MEMFD_FLAG_INIT_MAPPABLE (1 << 0), nothing else.
    gmemFlags: 1n,
    ...PVM_RULES,
    privateMemVmTypes: new Set([VM_SW_PROTECTED]),
  },
  'inplace-v8': {
    name: 'inplace-v8',
    apiVersion: 12,
    // v8 is tested on KVM_X86_SW_PROTECTED_VM (type 1) VMs (v8-31 gmem_conversions_do_setup).
    caps: overlay(PVM_6_18_CAPS, [
      [cap('VM_TYPES'), VM_TYPES_0_1],
      [GUEST_MEMFD_MEMORY_ATTRIBUTES, ATTRIBUTE_PRIVATE],
    ]),
    vmCaps: new Map(PVM_6_18_VM_CAPS),
    // v8-17: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (250 in v8) answers PRIVATE iff
    // gmem_in_place_conversion && (!kvm || kvm_arch_has_private_mem(kvm)): 0 on a type-0 VM.
    vmTypeCaps: new Map([[VM_DEFAULT, new Map([[GUEST_MEMFD_MEMORY_ATTRIBUTES, 0]])]]),
    conversion: inplaceV8,
    // v8-25: INIT_SHARED is allowed on VMs with private memory too when in-place conversion is on.
    gmemFlags: GMEM_FLAGS,
    ...PVM_RULES,
    privateMemVmTypes: new Set([VM_SW_PROTECTED]),
  },
};

/** A VM's KVM_CHECK_EXTENSION answer: its type's own, else the VM fd's, else /dev/kvm's. */
export function vmCap(profile: SimProfile, type: number, cap: number): number {
  return profile.vmTypeCaps?.get(type)?.get(cap) ?? profile.vmCaps.get(cap) ?? profile.caps.get(cap) ?? 0;
}

/** Every profile name, in the order check prints its columns. */
export const PROFILE_NAMES: readonly Profile[] = ['rfc-v5', 'inplace-v8', 'linux-6.18', 'linux-7.3', 'linux-6.18-pvm'];

/** The limits the kernel applies, measured on Linux 6.18 x86-64 (see lib/sim/slots.ts). */
export const LIMITS = {
  /** KVM_CAP_NR_MEMSLOTS: slot ids 0..32763 in address space 0. */
  userSlots: 32764,
  /** Address spaces (slot >> 16): only 0 here (a non-zero id gives EINVAL). */
  addressSpaces: 1,
  /** KVM_MEM_MAX_NR_PAGES. */
  maxSlotPages: (1n << 31n) - 1n,
  /** A slot must end at or below this gpa (kvm_mmu_max_gfn() + 1 pages) without TDP; with TDP, the host MAXPHYADDR. */
  maxGpaEnd: 1n << 52n,
  /** i_size and file offsets (loff_t): below 2^63. */
  maxFileBytes: (1n << 63n) - 1n,
  /** Longest single mmap the simulator grants (a 47-bit address space: 2^46 bytes mapped here, more gave ENOMEM). */
  maxMapBytes: 1n << 46n,
} as const;
