// Differential fuzzing: one seeded sequence of public calls on the real kernel and on the
// simulator's 'linux-6.18' profile side by side, every result compared. A difference is shrunk
// (delta debugging: drop steps while the same call still differs) and reported with its seed.
import { canonical, type Json } from '../conformance/case.js';
import { open } from '../open.js';
import { hostProfile } from '../probe.js';
import { PROFILE_NAMES } from '../sim/profiles.js';
import type { Kvm, Profile } from '../types.js';
import { Side, type Outcome } from './exec.js';
import { Generator, type GenObject, type Kind, type Op } from './ops.js';
import { Rng } from './rng.js';

export { Rng } from './rng.js';
export type { Op } from './ops.js';

export interface Mismatch {
  step: number;
  op: Op;
  kernel: Outcome;
  sim: Outcome;
}

export interface FuzzResult {
  seed: number;
  /** Calls run on both backends (skipped ones not counted). */
  steps: number;
  /** Of those, calls with a bad argument. */
  badInputs: number;
  ms: number;
  mismatch?: Mismatch;
  /** The shortest failing sequence found (when shrinking ran), and how its last call differed. */
  shrunk?: Op[];
  shrunkMismatch?: Mismatch;
  /** How often each call ended how ('ok', or error class:code), to see what the budget covered. */
  outcomes: Record<string, Record<string, number>>;
}

export interface Backends {
  kernel: () => Kvm;
  sim: () => Kvm;
}

/** The profile the fuzzer holds this kernel to: KVM_GMEM_FUZZ_PROFILE, else the one probe expects here. */
export function fuzzProfile(): Profile {
  const env = process.env.KVM_GMEM_FUZZ_PROFILE;
  if (env) {
    if (!(PROFILE_NAMES as readonly string[]).includes(env))
      throw new RangeError(`KVM_GMEM_FUZZ_PROFILE: unknown profile '${env}'`);
    return env as Profile;
  }
  return hostProfile() ?? 'linux-6.18';
}

export const defaultBackends: Backends = {
  kernel: () => open({ backend: 'kvm' }),
  sim: () => open({ backend: 'sim', profile: fuzzProfile() }),
};

function differs(a: Outcome, b: Outcome): boolean {
  return canonical(a as unknown as Json) !== canonical(b as unknown as Json);
}

function genState(side: Side, kinds: Map<number, Kind>, parents: Map<number, number>): GenObject[] {
  const out: GenObject[] = [];
  for (const [id, o] of side.objects) {
    const x = o as Record<string, unknown>;
    const kind = kinds.get(id)!;
    const size = kind === 'g' ? x.size : kind === 'm' ? x.length : 0;
    out.push({ id, kind, closed: x.closed === true, size: BigInt(size as number), parent: parents.get(id) ?? 0 });
  }
  return out;
}

interface Session {
  kernel: Side;
  sim: Side;
  close(): void;
}

function session(b: Backends): Session {
  const k = new Side(b.kernel());
  let s: Side;
  try {
    s = new Side(b.sim());
  } catch (e) {
    k.kvm.close();
    throw e;
  }
  k.other = s;
  s.other = k;
  return {
    kernel: k,
    sim: s,
    close() {
      k.kvm.close();
      s.kvm.close();
    },
  };
}

/** Runs `op` on both sides; the mismatch, if they differ. */
async function step(ses: Session, op: Op): Promise<{ kernel: Outcome; sim: Outcome }> {
  return { kernel: await ses.kernel.run(op), sim: await ses.sim.run(op) };
}

/** Generates and runs `steps` calls from `seed`, stopping at the first difference. */
export async function fuzzSeed(
  seed: number,
  steps: number,
  opts: { backends?: Backends; shrink?: boolean; shrinkMs?: number } = {},
): Promise<FuzzResult> {
  const b = opts.backends ?? defaultBackends;
  const t0 = performance.now();
  const gen = new Generator(new Rng(seed));
  const ses = session(b);
  const ops: Op[] = [];
  const kinds = new Map<number, Kind>();
  const parents = new Map<number, number>();
  let ran = 0;
  let bad = 0;
  let mismatch: Mismatch | undefined;
  const outcomes: Record<string, Record<string, number>> = {};
  try {
    for (let i = 0; i < steps; i++) {
      const objects = genState(ses.kernel, kinds, parents);
      const op = gen.next(i, { objects, kvmClosed: ses.kernel.kvm.closed, step: i, steps });
      ops.push(op);
      const r = await step(ses, op);
      if ('skip' in r.kernel && 'skip' in r.sim) continue;
      ran++;
      if (op.bad) bad++;
      const by = (outcomes[op.call] ??= {});
      const how = outcomeClass(r.kernel);
      by[how] = (by[how] ?? 0) + 1;
      if (differs(r.kernel, r.sim)) {
        mismatch = { step: i, op, ...r };
        break;
      }
      if (op.makes && ses.kernel.objects.has(op.id)) {
        kinds.set(op.id, op.makes);
        if (op.target !== 'kvm') parents.set(op.id, op.target.id);
      }
    }
  } finally {
    ses.close();
  }
  const result: FuzzResult = { seed, steps: ran, badInputs: bad, ms: Math.round(performance.now() - t0), outcomes };
  if (mismatch) {
    result.mismatch = mismatch;
    if (opts.shrink !== false) {
      const s = await shrink(ops.slice(0, mismatch.step + 1), b, opts.shrinkMs ?? 60_000);
      result.shrunk = s.ops;
      result.shrunkMismatch = s.mismatch;
    }
  }
  return result;
}

/** Replays a fixed sequence on fresh backends; the first difference, if any. */
export async function replay(ops: readonly Op[], b: Backends = defaultBackends): Promise<Mismatch | undefined> {
  const ses = session(b);
  try {
    for (let i = 0; i < ops.length; i++) {
      const r = await step(ses, ops[i]!);
      if (differs(r.kernel, r.sim)) return { step: i, op: ops[i]!, ...r };
    }
    return undefined;
  } finally {
    ses.close();
  }
}

function outcomeClass(o: Outcome): string {
  if ('skip' in o) return 'skip';
  if ('ok' in o) return 'ok';
  const e = o.error as Record<string, Json>;
  return `${String(e.class)}:${String(e.code)}`;
}

/** The same kind of failure: the same call, failing the same way on each side. */
function signature(m: Mismatch): string {
  return `${m.op.call}|${outcomeClass(m.kernel)}|${outcomeClass(m.sim)}`;
}

/**
 * Delta debugging (ddmin) over the steps before the failing one: drop chunks, then single steps,
 * while a replay still fails the same way. Bounded in time; returns the shortest sequence found.
 */
export async function shrink(ops: Op[], b: Backends, budgetMs: number): Promise<{ ops: Op[]; mismatch?: Mismatch }> {
  const deadline = performance.now() + budgetMs;
  const first = await replay(ops, b);
  if (!first) return { ops };
  const want = signature(first);
  let last: Mismatch = first;
  const fails = async (cand: Op[]): Promise<Op[] | undefined> => {
    const m = await replay(cand, b);
    if (!m || signature(m) !== want) return undefined;
    last = m;
    return cand.slice(0, m.step + 1);
  };
  let cur = ops.slice(0, first.step + 1);
  let n = 2;
  while (cur.length > 1 && performance.now() < deadline) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length && performance.now() < deadline; start += chunk) {
      // Keep the failing call itself (the last one).
      const end = Math.min(start + chunk, cur.length - 1);
      if (start >= end) continue;
      const cand = await fails([...cur.slice(0, start), ...cur.slice(end)]);
      if (cand) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk <= 1) break;
      n = Math.min(n * 2, cur.length);
    }
  }
  return { ops: cur, mismatch: last };
}

function fmtValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'symbol' || typeof v === 'function') return String(v).split('\n')[0]!;
  if (v instanceof Uint8Array) return `new Uint8Array(${v.length})`;
  if (v === undefined) return 'undefined';
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('$ref' in o) return `${String(o.$ref)}${String(o.id)}`;
    if ('$foreign' in o) return `otherBackend.${String(o.$foreign)}${String(o.id)}`;
    if ('$bytes' in o) return `bytes(${String(o.$bytes)}, seed ${String(o.seed)})`;
    if (Array.isArray(v)) return `[${v.map(fmtValue).join(', ')}]`;
    return `{ ${Object.entries(o)
      .map(([k, x]) => `${k}: ${fmtValue(x)}`)
      .join(', ')} }`;
  }
  return String(v);
}

/** One call as a line of pseudo-JavaScript: `g3 = vm1.createGuestMemfd({ size: 8192 })`. */
export function formatOp(op: Op): string {
  const target = op.target === 'kvm' ? 'kvm' : fmtValue(op.target);
  const call = `${target}.${op.call}(${op.args.map(fmtValue).join(', ')})`;
  return `${op.makes ? `${op.makes}${op.id} = ` : ''}${call}${op.bad ? `   // bad ${op.bad}` : ''}`;
}

export function formatOutcome(o: Outcome): string {
  return canonical(o as unknown as Json);
}

/** A failure as text: seed, the shrunk sequence, and what each side answered to its last call. */
export function report(r: FuzzResult): string {
  if (!r.mismatch) return `seed ${r.seed}: ${r.steps} steps agree`;
  const seq = r.shrunk ?? [r.mismatch.op];
  const last = r.shrunkMismatch ?? r.mismatch;
  return [
    `seed ${r.seed}: the kernel and the simulator (${fuzzProfile()}) differ at step ${r.mismatch.step}: ${formatOp(r.mismatch.op)}`,
    `shortest failing sequence (${seq.length} calls; reproduce with: node tools/fuzz.mjs --seed ${r.seed} --steps ${r.mismatch.step + 1}):`,
    ...seq.map((op) => `  ${formatOp(op)}`),
    `  kernel: ${formatOutcome(last.kernel)}`,
    `  sim:    ${formatOutcome(last.sim)}`,
  ].join('\n');
}
