// What native/uapi.h itself says, read as text: every `#define NAME value` with a literal value and
// every `static_assert(X == 0x..., "KVM_NAME")` ioctl number, each placed where the addon exports it
// (constants.caps.NAME for KVM_CAP_NAME, ...). tools/gen-constants.mjs and
// test/unit/constants.test.ts check the generated lib/uapi-constants.ts against it.
import { readFileSync } from 'node:fs';

/** Defines uapi.h carries for its own use that the addon does not export. */
export const NOT_EXPORTED = new Set(['KVMIO', 'KVM_MAP_GPA_RANGE_PAGE_SZ_4K']);

/** A literal the header uses: 231, 0xAE, (1ULL << 3), (1 << 4). */
function literal(text) {
  const t = text
    .trim()
    .replace(/^\((.*)\)$/, '$1')
    .trim();
  const shift = /^(\d+)[UL]*\s*<<\s*(\d+)$/.exec(t);
  if (shift) return Number(shift[1]) * 2 ** Number(shift[2]);
  const num = /^(0x[0-9a-fA-F]+|\d+)[UL]*$/.exec(t);
  if (num) return Number(num[1]);
  return undefined;
}

/** [group, key] of a uapi.h name in the addon's constants object. */
export function placeOf(name) {
  if (name.startsWith('KVM_CAP_')) return ['caps', name.slice('KVM_CAP_'.length)];
  const vm = /^KVM_X86_(\w+)_VM$/.exec(name);
  if (vm) return ['vmTypes', vm[1]];
  if (name.startsWith('KVM_EXIT_')) return ['exits', name.slice('KVM_EXIT_'.length)];
  if (name.startsWith('KVM_HC_')) return ['hypercalls', name];
  return ['flags', name];
}

/** Every value uapi.h states: [{ name, group, key, value }]. */
export function uapiValues(file) {
  const text = readFileSync(file, 'utf8');
  const out = [];
  for (const m of text.matchAll(/^#define\s+(\w+)\s+(.+)$/gm)) {
    const value = literal(m[2]);
    if (value === undefined || NOT_EXPORTED.has(m[1])) continue;
    const [group, key] = placeOf(m[1]);
    out.push({ name: m[1], group, key, value });
  }
  for (const m of text.matchAll(/static_assert\(\w+ == (0x[0-9a-fA-F]+), "(KVM_\w+)"\);/g)) {
    out.push({ name: m[2], group: 'ioctls', key: m[2], value: Number(m[1]) });
  }
  return out;
}

/** Where `constants` disagrees with uapi.h, one line each (empty when they agree). */
export function disagreements(constants, file) {
  const out = [];
  for (const { name, group, key, value } of uapiValues(file)) {
    const have = constants[group]?.[key];
    if (have !== value) out.push(`${name}: uapi.h says ${value}, constants.${group}.${key} is ${have}`);
  }
  return out;
}
