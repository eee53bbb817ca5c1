// The kernel numbers, as the addon exports them from native/uapi.h (never retyped here).
import { native } from './native.js';
import { argRangeError, argTypeError } from './errors.js';
import { describe, u32 } from './validate.js';

interface NativeConstants {
  caps: Record<string, number>;
  ioctls: Record<string, number>;
  vmTypes: Record<string, number>;
  flags: Record<string, number>;
  exits: Record<string, number>;
  /** KVM_HC_* hypercall numbers (KVM_HC_MAP_GPA_RANGE). */
  hypercalls: Record<string, number>;
  PAGE_SIZE: number;
}

export const constants: NativeConstants = native.constants;
export const CAPS = constants.caps;
export const FLAGS = constants.flags;

const capNames = new Map<number, string>(Object.entries(CAPS).map(([k, v]) => [v, k]));

/** A capability by number or by name ('GUEST_MEMFD_FLAGS' or 'KVM_CAP_GUEST_MEMFD_FLAGS'). */
export function capNumber(cap: unknown): number {
  if (typeof cap === 'string') {
    const name = cap.startsWith('KVM_CAP_') ? cap.slice(8) : cap;
    const n = CAPS[name];
    if (n === undefined) throw argRangeError(`unknown capability name ${JSON.stringify(cap)}; known: ${Object.keys(CAPS).join(', ')}`);
    return n;
  }
  if (typeof cap !== 'number' && typeof cap !== 'bigint') throw argTypeError(`cap must be a number or a name, got ${describe(cap)}`);
  return u32('cap', cap);
}

export function capName(n: number): string | undefined {
  return capNames.get(n);
}

/** Bits of a mask as the list of their indices. */
export function bitsOf(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 31; i++) if (mask & (1 << i)) out.push(i);
  return out;
}
