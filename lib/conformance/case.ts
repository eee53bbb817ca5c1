// The conformance case: one behaviour, written once over the public API, whose outcome is plain
// JSON so the kernel's answer and each simulator profile's answer can be compared by value.
import { createHash } from 'node:crypto';
import type { Kvm, Vm } from '../types.js';

export const GROUPS = [
  'creation and flags',
  'mapping and SIGBUS',
  'fallocate',
  'memory slots',
  'guest access',
  'conversion',
  'references/pins',
] as const;
export type Group = (typeof GROUPS)[number];

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** What a thrown error looks like once only its public, comparable fields are kept: { class, code?, ...fields }. */
export type ErrorShape = { [k: string]: Json };

export interface Case {
  id: string;
  group: Group;
  title: string;
  /** null when the case can run here; else why not ('not supported here: <capability>'). */
  requires?: (kvm: Kvm) => Promise<string | null> | string | null;
  /** The observations, made JSON by toJson (bigints, buffers as digests). */
  run: (kvm: Kvm) => Promise<unknown>;
  /** Milliseconds before the case is recorded as hung (default 5000). */
  timeoutMs?: number;
}

export type Status = 'ran' | 'n/s' | 'crashed' | 'timeout';

export interface CaseResult {
  id: string;
  group: Group;
  title: string;
  status: Status;
  /** Present when status is 'ran'. */
  outcome?: Json;
  /** Why it did not run ('n/s'), or what it threw or how long it hung. */
  reason?: string;
  ms: number;
}

const FIELDS: Record<string, string[]> = {
  KvmError: ['errno', 'syscall', 'ioctl'],
  HostAccessError: ['offset', 'access'],
  ConversionBusyError: ['errorOffset'],
  GuestMemoryFault: ['gpa', 'size', 'private'],
  UnsupportedError: ['feature'],
};

/** An error as its class, code and the public fields of that class (never the message). */
export function errorShape(e: unknown): ErrorShape {
  if (!(e instanceof Error)) return { class: 'non-Error', value: String(e) };
  const any = e as unknown as Record<string, unknown>;
  const out: ErrorShape = { class: e.name };
  if (typeof any.code === 'string') out.code = any.code;
  const fields = FIELDS[e.name];
  if (fields) {
    for (const f of fields) if (any[f] !== undefined) out[f] = toJson(any[f]);
  } else if (out.code === undefined) {
    // An error with neither a known class nor a code: the message is all there is to compare.
    out.message = e.message;
  }
  return out;
}

export function toJson(v: unknown): Json {
  if (v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : `${v}n`;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return bytesDigest(v);
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined && typeof x !== 'function') o[k] = toJson(x);
    return o;
  }
  return v as Json;
}

/** Run one call and keep what came of it: { ok: value } or { error: ErrorShape }. */
export async function attempt(fn: () => unknown): Promise<Json> {
  try {
    return { ok: toJson(await fn()) };
  } catch (e) {
    return { error: errorShape(e) };
  }
}

/** Bytes as runs ("aa*4096 00*4096") while that stays short, else a SHA-256 prefix. */
export function bytesDigest(b: Uint8Array): string {
  const runs: string[] = [];
  let i = 0;
  while (i < b.length && runs.length <= 8) {
    let j = i + 1;
    while (j < b.length && b[j] === b[i]) j++;
    runs.push(`${b[i]!.toString(16).padStart(2, '0')}*${j - i}`);
    i = j;
  }
  if (i >= b.length) return runs.join(' ') || 'empty';
  return `sha256:${createHash('sha256').update(b).digest('hex').slice(0, 16)} (${b.length} bytes)`;
}

/** A VM for the body, closed afterwards whatever happens (closing it closes its files and mappings). */
export async function withVm<T>(kvm: Kvm, fn: (vm: Vm) => Promise<T> | T, type?: number): Promise<T> {
  const vm = kvm.createVm(type === undefined ? undefined : { type });
  const mine = caseVms;
  mine?.add(vm);
  try {
    return await fn(vm);
  } finally {
    mine?.delete(vm);
    vm.close();
  }
}

/**
 * The VMs withVm opened for the case running now (cases run one at a time). A case that times out
 * has them closed: closing kicks a vCPU out of KVM_RUN, so a hung run stops instead of spinning on
 * through the cases after it (on the rig's one-CPU guest it slowed all of them).
 */
let caseVms: Set<Vm> | undefined;

/** Key order does not matter: objects compare by their sorted keys. */
export function canonical(v: Json | undefined): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
    .join(',')}}`;
}

export function sameOutcome(a: Json | undefined, b: Json | undefined): boolean {
  return canonical(a) === canonical(b);
}

function describeThrown(e: unknown): string {
  const s = errorShape(e);
  return `${String(s.class)}${s.code ? ` ${String(s.code)}` : ''}: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * The guest_memfd flag a case needed and this kernel does not offer, when that is why it threw: an
 * EINVAL from KVM_CREATE_GUEST_MEMFD on a kernel whose KVM_CAP_GUEST_MEMFD_FLAGS lacks MMAP or
 * INIT_SHARED (Debian's 6.12, before GUEST_MEMFD_FLAG_MMAP: measured on the rig). Cases that mean
 * to test such an EINVAL catch it themselves; this is for the many that only need an mmap-able file.
 */
function unofferedFlag(kvm: Kvm, e: unknown): string | null {
  const err = e as { name?: unknown; code?: unknown; ioctl?: unknown };
  if (
    !(e instanceof Error) ||
    err.name !== 'KvmError' ||
    err.code !== 'EINVAL' ||
    err.ioctl !== 'KVM_CREATE_GUEST_MEMFD'
  )
    return null;
  let offered: { mmap: boolean; initShared: boolean };
  try {
    const vm = kvm.createVm();
    try {
      offered = vm.guestMemfdFlags();
    } finally {
      vm.close();
    }
  } catch {
    return null;
  }
  if (!offered.mmap) return 'GUEST_MEMFD_FLAG_MMAP';
  if (!offered.initShared) return 'GUEST_MEMFD_FLAG_INIT_SHARED';
  return null;
}

/**
 * Runs one case with a time limit. A case that throws (outside attempt()) or hangs is recorded,
 * never rethrown, so the cases after it still run.
 */
export async function runCase(kvm: Kvm, c: Case, defaultTimeoutMs = 5000): Promise<CaseResult> {
  const base = { id: c.id, group: c.group, title: c.title };
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const limit = c.timeoutMs ?? defaultTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const vms = new Set<Vm>();
  caseVms = vms;
  const hung = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limit);
  });
  try {
    const body = (async (): Promise<CaseResult> => {
      const missing = c.requires ? await c.requires(kvm) : null;
      if (missing !== null) return { ...base, status: 'n/s', reason: missing, ms: ms() };
      const outcome = await c.run(kvm);
      return { ...base, status: 'ran', outcome: toJson(outcome), ms: ms() };
    })().catch((e: unknown): CaseResult => {
      const flag = unofferedFlag(kvm, e);
      if (flag)
        return {
          ...base,
          status: 'n/s',
          reason: `not supported here: ${flag} (KVM_CREATE_GUEST_MEMFD said EINVAL; the kernel does not offer it)`,
          ms: ms(),
        };
      return { ...base, status: 'crashed', reason: describeThrown(e), ms: ms() };
    });
    const r = await Promise.race([body, hung]);
    if (r === 'timeout') {
      for (const vm of vms) vm.close();
      return { ...base, status: 'timeout', reason: `no result after ${limit} ms`, ms: ms() };
    }
    return r;
  } finally {
    clearTimeout(timer);
    if (caseVms === vms) caseVms = undefined;
  }
}

export interface RunOptions {
  timeoutMs?: number;
  onResult?: (r: CaseResult) => void;
}

/** Runs the cases one after another (they share one kernel; order keeps them independent of timing). */
export async function runCases(kvm: Kvm, cases: readonly Case[], opts: RunOptions = {}): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(kvm, c, opts.timeoutMs);
    opts.onResult?.(r);
    out.push(r);
  }
  return out;
}
