// Capability numbers the patch series claimed that mainline gave to other capabilities later.
// checkExtension takes both names; probe and capName never show a mainline number under a series
// name alone (issue 13). Mainline numbers: include/uapi/linux/kvm.h as imported in QEMU's header
// update 20250715033141.517457-3-xiaoyao.li@intel.com (240-242) and issue 13 (239).
export interface SeriesCap {
  readonly cap: number;
  /** The series' name (without KVM_CAP_). */
  readonly series: string;
  readonly by: string;
  /** Mainline's name for the number, or null where mainline has none. */
  readonly mainline: string | null;
}

export const SERIES_CAPS: readonly SeriesCap[] = [
  {
    cap: 239,
    series: 'GUEST_MEMFD_MAPPABLE',
    by: 'RFC v5 (20250117163001.2326672-10-tabba@google.com)',
    mainline: 'ARM_WRITABLE_IMP_ID_REGS',
  },
  // The number moved across the in-place series' revisions (246, 248, 249, 250); v8-17 has 250. A
  // post-v8 state has 251, and there 250 is KVM_CAP_ARM_PMU_V3_STRICT of its newer base (linux-cc
  // 0ab685b29ab6); that number is not known to be mainline's, so no profile answers 251 and 250
  // keeps no mainline reading (docs/research/series-rules.md §B.4).
  { cap: 250, series: 'GUEST_MEMFD_MEMORY_ATTRIBUTES', by: 'in-place conversion v8 (v8-17)', mainline: null },
];

/** Mainline capabilities whose numbers a series also used, by name. */
export const MAINLINE_COLLIDING: Readonly<Record<string, number>> = {
  ARM_WRITABLE_IMP_ID_REGS: 239,
  ARM_EL2: 240,
  ARM_EL2_E2H0: 241,
  RISCV_MP_STATE_RESET: 242,
};

/** Numbers by every name above (series and mainline). */
export const EXTRA_CAP_NAMES: Readonly<Record<string, number>> = {
  ...MAINLINE_COLLIDING,
  ...Object.fromEntries(SERIES_CAPS.map((c) => [c.series, c.cap])),
};

/** The number's readings: "GUEST_MEMFD_MAPPABLE (RFC v5 ...) / ARM_WRITABLE_IMP_ID_REGS (mainline)". */
export function seriesCapLabel(cap: number): string | undefined {
  const s = SERIES_CAPS.find((c) => c.cap === cap);
  if (!s) return undefined;
  return `${s.series} (${s.by})${s.mainline ? ` / ${s.mainline} (mainline)` : ''}`;
}
