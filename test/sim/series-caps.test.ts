// Capability numbers of the series that mainline reused: both names work, and nothing shows a
// mainline number under a series name alone (lib/series-caps.ts).
import { describe, expect, it } from 'vitest';
import { probe } from '../../lib/index.js';
import { capName, capNumber } from '../../lib/args.js';
import { sim } from './helpers.js';

describe('series capability names', () => {
  it('checkExtension takes the series names and the mainline names of the same numbers', () => {
    expect([
      capNumber('GUEST_MEMFD_MAPPABLE'),
      capNumber('ARM_WRITABLE_IMP_ID_REGS'),
      capNumber('KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES'),
    ]).toEqual([239, 239, 250]);
    expect([capNumber('ARM_EL2'), capNumber('ARM_EL2_E2H0'), capNumber('RISCV_MP_STATE_RESET')]).toEqual([
      240, 241, 242,
    ]);
    using kvm = sim('inplace-v8');
    expect(kvm.checkExtension('GUEST_MEMFD_MEMORY_ATTRIBUTES')).toBe(8);
  });

  it('capName gives both readings of a reused number', () => {
    expect(capName(239)).toMatch(/^GUEST_MEMFD_MAPPABLE \(RFC v5 .*\) \/ ARM_WRITABLE_IMP_ID_REGS \(mainline\)$/);
    expect(capName(250)).toMatch(/^GUEST_MEMFD_MEMORY_ATTRIBUTES \(in-place conversion v8/);
    expect(capName(244)).toBe('GUEST_MEMFD_FLAGS');
  });

  it('probe reports 239 under its mainline name only', () => {
    const r = probe();
    expect(Object.keys(r.capabilities)).not.toContain('GUEST_MEMFD_MAPPABLE');
    if (r.kvm.available) expect(r.capabilities).toHaveProperty('ARM_WRITABLE_IMP_ID_REGS');
  });
});
