// The conformance suite: every case, in group order. vitest and `kvm-gmem check` run these same cases.
import { GROUPS, type Case, type Group } from './case.js';
import { convertCases } from './cases-convert.js';
import { createCases } from './cases-create.js';
import { fallocateCases } from './cases-fallocate.js';
import { guestCases } from './cases-guest.js';
import { mapCases } from './cases-map.js';
import { pinCases } from './cases-pins.js';
import { privateCases } from './cases-private.js';
import { selftestCases } from './cases-selftest.js';
import { slotCases } from './cases-slots.js';

export * from './case.js';
export * from './matrix.js';
export { privateCases, privateExpectations, privateVm } from './cases-private.js';
export { privateGuestCases, privateGuestExpectations } from './cases-private-guest.js';

export const cases: readonly Case[] = [
  ...createCases,
  ...mapCases,
  ...fallocateCases,
  ...slotCases,
  ...guestCases,
  ...convertCases,
  ...privateCases,
  ...pinCases,
  ...selftestCases,
];

/** The cases of some groups (all when none are named). */
export function casesOf(groups?: readonly Group[]): Case[] {
  return cases.filter((c) => !groups || groups.length === 0 || groups.includes(c.group));
}

export function isGroup(s: string): s is Group {
  return (GROUPS as readonly string[]).includes(s);
}
