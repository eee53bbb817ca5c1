// The kernels the simulator models, as data: what checkExtension answers, which VM types exist,
// and which conversion model the guest_memfd files follow.
//
// checkExtension values (capability number: value). 'linux-6.18' is the real kernel of the
// development machines, measured with `checkExtension(0..399)` on /dev/kvm and on a type-0 VM
// (Linux 6.18, x86-64, Intel, 2 vCPUs); every cap not listed answers 0, as the kernel does.
// The two patch-series profiles start from it and change only what their series changes:
//
// | cap                               | linux-6.18 | rfc-v5 | inplace-v8 | why                                         |
// |-----------------------------------|-----------:|-------:|-----------:|---------------------------------------------|
// | 233 MEMORY_ATTRIBUTES             |          0 |      0 |          0 | no VM-level attributes on a type-0 VM        |
// | 235 VM_TYPES                      |          1 |      1 |          3 | v8 is tested on SW_PROTECTED (type 1) VMs   |
// | 239 GUEST_MEMFD_MAPPABLE (RFC v5) |          0 |      1 |          0 | the series' proposed capability             |
// | 244 GUEST_MEMFD_FLAGS             |          3 |      3 |          3 | same public flags everywhere (portable code) |
// | 250 MEMORY_ATTRIBUTES2 (v8)       |          0 |      0 |          8 | KVM_MEMORY_ATTRIBUTE_PRIVATE; the number     |
// |                                   |            |        |            | moved between revisions (246..250)          |
// | 129 (VM fd only)                  |         11 |     11 |         11 | the VM answers 11 where /dev/kvm answers 15 |
//
// Conversion entry points of the two series profiles are modelled as the v8 ioctl on the file
// (KVM_SET_MEMORY_ATTRIBUTES2): page-aligned, non-empty ranges, else EINVAL. RFC v5 had no ioctl
// (pKVM hypercalls drove it); using the same rule keeps code portable between the two.
import type { Profile } from '../types.js';

export type ConversionModel = 'rfc-v5' | 'inplace-v8' | null;

export interface SimProfile {
  readonly name: Profile;
  readonly apiVersion: number;
  /** /dev/kvm answers; caps not listed are 0. */
  readonly caps: ReadonlyMap<number, number>;
  /** VM fd answers where they differ from /dev/kvm. */
  readonly vmCaps: ReadonlyMap<number, number>;
  readonly conversion: ConversionModel;
  /** KVM_CREATE_GUEST_MEMFD: flag bits accepted (MMAP | INIT_SHARED). */
  readonly gmemFlags: bigint;
}

// Measured on Linux 6.18 (/dev/kvm); see the table above.
const LINUX_6_18_CAPS: ReadonlyArray<[number, number]> = [
  [0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [6, 1], [7, 1], [8, 1], [9, 2], [10, 32764], [11, 1], [12, 1],
  [14, 1], [15, 2], [16, 1], [21, 1], [22, 1], [23, 1], [24, 1], [25, 4096], [26, 1], [30, 1], [31, 32],
  [32, 1], [33, 1], [34, 1], [35, 1], [36, 1], [37, 1], [39, 14], [40, 1], [41, 1], [47, 1], [50, 1],
  [51, 1], [54, 1], [55, 1], [56, 1], [59, 1], [61, 1], [66, 1024], [70, 1], [72, 1], [74, 7], [76, 1],
  [77, 1], [81, 1], [82, 1], [89, 1], [95, 1], [97, 1], [98, 1], [100, 1], [105, 1], [116, 1], [121, 1],
  [122, 1], [127, 1], [128, 4096], [129, 15], [136, 1], [143, 14], [153, 1], [159, 1], [162, 1], [164, 1],
  [168, 3], [173, 1], [182, 1], [183, 1], [184, 1], [185, 1], [187, 1], [188, 1], [189, 1], [190, 1],
  [192, 1048576], [195, 2031619], [197, 1], [200, 1], [201, 4096], [203, 1], [204, 1], [206, 1], [208, 4096],
  [209, 1], [213, 1535], [215, 1], [218, 1], [220, 1], [223, 1048576], [226, 1], [231, 1], [232, 1], [234, 1],
  [235, 1], [237, 1], [238, 1], [244, 3],
];
const LINUX_6_18_VM_CAPS: ReadonlyArray<[number, number]> = [[129, 11]];

function withCaps(over: ReadonlyArray<[number, number]>): Map<number, number> {
  const m = new Map(LINUX_6_18_CAPS);
  for (const [k, v] of over) {
    if (v === 0) m.delete(k);
    else m.set(k, v);
  }
  return m;
}

const GMEM_FLAGS = 0b11n;

export const PROFILES: Readonly<Record<Profile, SimProfile>> = {
  'linux-6.18': {
    name: 'linux-6.18',
    apiVersion: 12,
    caps: new Map(LINUX_6_18_CAPS),
    vmCaps: new Map(LINUX_6_18_VM_CAPS),
    conversion: null,
    gmemFlags: GMEM_FLAGS,
  },
  'rfc-v5': {
    name: 'rfc-v5',
    apiVersion: 12,
    caps: withCaps([[239, 1]]),
    vmCaps: new Map(LINUX_6_18_VM_CAPS),
    conversion: 'rfc-v5',
    gmemFlags: GMEM_FLAGS,
  },
  'inplace-v8': {
    name: 'inplace-v8',
    apiVersion: 12,
    caps: withCaps([[235, 3], [250, 8]]),
    vmCaps: new Map(LINUX_6_18_VM_CAPS),
    conversion: 'inplace-v8',
    gmemFlags: GMEM_FLAGS,
  },
};

/** The limits the kernel applies, measured on Linux 6.18 x86-64 (see lib/sim/slots.ts). */
export const LIMITS = {
  /** KVM_CAP_NR_MEMSLOTS: slot ids 0..32763 in address space 0. */
  userSlots: 32764,
  /** Address spaces (slot >> 16): only 0 here (a non-zero id gives EINVAL). */
  addressSpaces: 1,
  /** KVM_MEM_MAX_NR_PAGES. */
  maxSlotPages: (1n << 31n) - 1n,
  /** A slot must end at or below this gpa (kvm_mmu_max_gfn() + 1 pages). */
  maxGpaEnd: 1n << 52n,
  /** i_size and file offsets (loff_t): below 2^63. */
  maxFileBytes: (1n << 63n) - 1n,
  /** Longest single mmap the simulator grants (a 47-bit address space: 2^46 bytes mapped here, more gave ENOMEM). */
  maxMapBytes: 1n << 46n,
} as const;
