// Runs the fuzzer's calls on one backend and reduces each result to comparable JSON: values,
// bytes as digests, errors as class + code + public fields (errno, syscall, ioctl, offset...),
// with the conformance suite's own reducers (lib/conformance/case.ts) for bytes and errors.
import { bytesDigest, errorShape, toJson, type Json } from '../conformance/case.js';
import type { Kvm } from '../types.js';
import type { BytesArg, Foreign, Kind, Op, Ref } from './ops.js';
import { Rng } from './rng.js';

export type Outcome = { skip: true } | { ok: Json } | { error: Json };

const isRef = (v: unknown): v is Ref => typeof v === 'object' && v !== null && '$ref' in v;
const isForeign = (v: unknown): v is Foreign => typeof v === 'object' && v !== null && '$foreign' in v;
const isBytes = (v: unknown): v is BytesArg => typeof v === 'object' && v !== null && '$bytes' in v;

const MISSING = Symbol('missing');

export function bytesOf(b: BytesArg): Uint8Array {
  const out = new Uint8Array(b.$bytes);
  const rng = new Rng(b.seed);
  for (let i = 0; i < out.length; i += 4) {
    const x = rng.int(2 ** 32);
    for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return out;
}

/** A returned value as JSON: objects of the API by their public fields, bytes as digests. */
export function normalize(v: unknown): Json {
  // A bigint stays apart from the number of the same value (toJson would merge them).
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return { bytes: bytesDigest(v) };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.punchHole === 'function') return { guestMemfd: props('g', o) };
    if (typeof o.unmap === 'function') return { mapping: props('m', o) };
    if (typeof o.createGuestMemfd === 'function') return { vm: props('vm', o) };
    if (typeof o.release === 'function') return { hold: { offset: normalize(o.offset), length: normalize(o.length) } };
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(o)) if (typeof x !== 'function') out[k] = normalize(x);
    return out;
  }
  return typeof v === 'symbol' || typeof v === 'function' ? String(v) : toJson(v);
}

/** The public fields both backends share (never fd: the simulator has none). */
export function props(kind: Kind | 'kvm', o: Record<string, unknown>): Json {
  switch (kind) {
    case 'kvm':
      return { apiVersion: normalize(o.apiVersion), closed: normalize(o.closed) };
    case 'vm':
      return { type: normalize(o.type), closed: normalize(o.closed) };
    case 'g':
      return {
        size: normalize(o.size),
        flags: normalize(o.flags),
        rawFlags: normalize(o.rawFlags),
        closed: normalize(o.closed),
      };
    case 'm':
      return { offset: normalize(o.offset), length: normalize(o.length), closed: normalize(o.closed) };
  }
}

function statShape(v: unknown): Json {
  // ino and dev name this machine's inode, not behaviour.
  const s = v as Record<string, unknown>;
  return {
    size: normalize(s.size),
    blksize: normalize(s.blksize),
    blocks: normalize(s.blocks),
    mode: normalize(s.mode),
  };
}

/** One backend's objects, by the step that made them. */
export class Side {
  readonly objects = new Map<number, unknown>();
  other: Side | undefined;

  constructor(readonly kvm: Kvm) {}

  #resolve(v: unknown): unknown {
    if (isRef(v)) return this.objects.has(v.id) ? this.objects.get(v.id) : MISSING;
    if (isForeign(v)) return this.other?.objects.get(v.id) ?? { size: 4096 };
    if (isBytes(v)) return bytesOf(v);
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const r = this.#resolve(x);
        if (r === MISSING) return MISSING;
        out[k] = r;
      }
      return out;
    }
    return v;
  }

  /** Runs one call (awaiting it when it returns a promise); a call naming an object never made is skipped. */
  async run(op: Op): Promise<Outcome> {
    const target = op.target === 'kvm' ? this.kvm : this.#resolve(op.target);
    if (target === MISSING) return { skip: true };
    const args = op.args.map((a) => this.#resolve(a));
    if (args.includes(MISSING)) return { skip: true };
    const t = target as Record<string, (...a: unknown[]) => unknown>;
    const kind = op.target === 'kvm' ? 'kvm' : op.target.$ref;
    try {
      if (op.call === 'props') return { ok: props(kind, t) };
      // 'guest.read' and the like: a method of a property (vm.guest).
      const [a, b] = op.call.split('.') as [string, string | undefined];
      const self = b === undefined ? t : (t[a] as unknown as Record<string, (...x: unknown[]) => unknown>);
      const r = await self[b ?? a]!(...args);
      if (op.makes) this.objects.set(op.id, r);
      if (op.call === 'stat') return { ok: statShape(r) };
      if (op.call === 'readInto') return { ok: { count: normalize(r), bytes: bytesDigest(args[1] as Uint8Array) } };
      return { ok: normalize(r) };
    } catch (e) {
      return { error: errorShape(e) };
    }
  }
}
