// Argument shaping for the vCPU configuration calls (enableCap, CPUID, MSRs, pre-faulting): the
// public values turned into the words the ioctls take, and back, checked once before any syscall.
import { capNumber } from './args.js';
import { argRangeError, argTypeError } from './errors.js';
import type { CpuidEntry, MsrEntry, U64 } from './types.js';
import { describe, options, u32, u64 } from './validate.js';

/** The fields of struct kvm_cpuid_entry2, in order; three padding words follow. */
const CPUID_FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;
const CPUID_WORDS = 10;

/** A list argument as an array, read once (a Proxy or getter sees each element read one time). */
function list(name: string, v: unknown, max: number): unknown[] {
  if (!Array.isArray(v)) throw argTypeError(`${name} must be an array, got ${describe(v)}`);
  const n = v.length;
  if (n > max) throw argRangeError(`${name} may hold at most ${max} entries, got ${n}`);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(v[i]);
  return out;
}

/** enableCap(cap, args, flags) -> KVM_ENABLE_CAP's cap, flags and four argument words. */
export function enableCapArgs(
  cap: unknown,
  args: unknown,
  flags: unknown,
): { cap: number; flags: number; args: BigUint64Array } {
  const c = capNumber(cap);
  const words = new BigUint64Array(4);
  if (args !== undefined) list('args', args, 4).forEach((a, i) => (words[i] = u64(`args[${i}]`, a)));
  return { cap: c, flags: flags === undefined ? 0 : u32('flags', flags), args: words };
}

export function cpuidToWords(entries: unknown): Uint32Array {
  const items = list('entries', entries, 1 << 16);
  const words = new Uint32Array(items.length * CPUID_WORDS);
  items.forEach((e, i) => {
    const o = options<Record<string, unknown>>(`entries[${i}]`, e, true);
    for (const k of Object.keys(o)) {
      if (!(CPUID_FIELDS as readonly string[]).includes(k))
        throw argTypeError(`entries[${i}] has no field ${JSON.stringify(k)}`);
    }
    CPUID_FIELDS.forEach((f, j) => {
      const v = o[f];
      words[i * CPUID_WORDS + j] = v === undefined ? 0 : u32(`entries[${i}].${f}`, v);
    });
  });
  return words;
}

export function wordsToCpuid(words: Uint32Array): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  for (let i = 0; i + CPUID_WORDS <= words.length; i += CPUID_WORDS) {
    out.push({
      function: words[i]!,
      index: words[i + 1]!,
      flags: words[i + 2]!,
      eax: words[i + 3]!,
      ebx: words[i + 4]!,
      ecx: words[i + 5]!,
      edx: words[i + 6]!,
    });
  }
  return out;
}

export function msrIndices(indices: unknown): Uint32Array {
  const items = list('indices', indices, 1 << 16);
  return Uint32Array.from(items, (x, i) => u32(`indices[${i}]`, x));
}

export function msrEntries(entries: unknown): { indices: Uint32Array; values: BigUint64Array } {
  const items = list('entries', entries, 1 << 16);
  const indices = new Uint32Array(items.length);
  const values = new BigUint64Array(items.length);
  items.forEach((e, i) => {
    const o = options<MsrEntry>(`entries[${i}]`, e, true);
    for (const k of Object.keys(o)) {
      if (k !== 'index' && k !== 'value') throw argTypeError(`entries[${i}] has no field ${JSON.stringify(k)}`);
    }
    indices[i] = u32(`entries[${i}].index`, o.index);
    values[i] = u64(`entries[${i}].value`, o.value);
  });
  return { indices, values };
}

/** preFaultMemory's range; alignment, size 0 and overflow are the kernel's to judge (EINVAL). */
export function preFaultArgs(gpa: U64, size: U64): { gpa: bigint; size: bigint } {
  return { gpa: u64('gpa', gpa), size: u64('size', size) };
}
