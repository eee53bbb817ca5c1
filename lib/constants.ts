// The kernel numbers from native/uapi.h, as tools/gen-constants.mjs generated them from the addon's
// build: the one place TypeScript holds them (every other module reads them from here, never
// retyping a number), the same with or without the addon loaded.
import { UAPI } from './uapi-constants.js';
import type { NativeConstants } from './kvm/addon.js';

export const constants: NativeConstants = UAPI;
export const CAPS = constants.caps;
export const FLAGS = constants.flags;
export const EXITS = constants.exits;
export const HYPERCALLS = constants.hypercalls;
export const PAGE_SIZE = constants.PAGE_SIZE;

/** Bits of a mask as the list of their indices. */
export function bitsOf(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 31; i++) if (mask & (1 << i)) out.push(i);
  return out;
}
