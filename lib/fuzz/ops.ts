// The fuzzer's calls as data, and the generator that picks the next one. A call names its objects
// by the step that made them, so dropping steps (when shrinking a failure) leaves a program that
// still runs: a call on an object that was never made is skipped on both backends.
import type { Rng } from './rng.js';

/** Op kinds left out of the mix (KVM_GMEM_FUZZ_SKIP=guest,...), for kernels where one is known broken. */
const SKIP = new Set((process.env.KVM_GMEM_FUZZ_SKIP ?? '').split(',').filter(Boolean));

export type Kind = 'vm' | 'g' | 'm';

/** An object made by step `id`. */
export interface Ref {
  $ref: Kind;
  id: number;
}
/** The object of step `id` from the other backend (a wrong-backend argument). */
export interface Foreign {
  $foreign: Kind;
  id: number;
}
/** `n` bytes made from `seed` (data for write, a target for readInto). */
export interface BytesArg {
  $bytes: number;
  seed: number;
}

export interface Op {
  id: number;
  target: 'kvm' | Ref;
  /** A public method name, or 'props' (the object's public fields). */
  call: string;
  args: unknown[];
  /** What the call returns when it succeeds, if it is a new object. */
  makes?: Kind;
  /** Set when an argument was replaced by a bad value: which one. */
  bad?: string;
}

/** What the generator may look at: the objects so far, as the kernel side has them. */
export interface GenObject {
  id: number;
  kind: Kind;
  closed: boolean;
  /** File size (g), mapping length (m). */
  size: bigint;
  /** The owning VM's step (g), the file's step (m). */
  parent: number;
}

export interface GenState {
  objects: GenObject[];
  kvmClosed: boolean;
  /** Step index and budget: closing /dev/kvm happens only near the end. */
  step: number;
  steps: number;
}

const P = 4096n;
/** Reads, writes, fills and allocations inside a file stay below this (the kernel really allocates). */
const TOUCH_CAP = 64n * P;
export const LIMITS = { vm: 6, g: 24, m: 24 };

/** Values no syscall can carry, or of the wrong type. */
export const BAD_VALUES: readonly unknown[] = [
  undefined,
  null,
  true,
  'x',
  '4096',
  -1,
  -4096,
  1.5,
  NaN,
  Infinity,
  2 ** 53,
  -(2n ** 3n),
  2n ** 64n,
  {},
  [],
  [4096],
  () => 4096,
  Symbol('bad'),
  new Uint8Array(2),
];

/** A number, or (one time in five) the same value as a bigint; bigints past 2^53 stay bigints. */
function val(rng: Rng, b: bigint): number | bigint {
  if (b > BigInt(Number.MAX_SAFE_INTEGER) || rng.chance(0.2)) return b;
  return Number(b);
}

function pagesBelow(rng: Rng, size: bigint): bigint {
  const pages = size / P;
  return pages > 0n ? rng.bigBelow(pages) * P : 0n;
}

/** An offset into something of `size` bytes: mostly inside and aligned, sometimes at or past the end, unaligned or huge. */
function offsetIn(rng: Rng, size: bigint): bigint {
  switch (rng.weighted({ page: 40, zero: 12, unaligned: 10, end: 8, past: 8, far: 4, top: 3 })) {
    case 'page':
      return pagesBelow(rng, size);
    case 'zero':
      return 0n;
    case 'unaligned':
      return size > 1n ? rng.bigBelow(size) | 1n : 1n;
    case 'end':
      return size;
    case 'past':
      return size + BigInt(rng.range(1, 4)) * P;
    case 'far':
      return rng.pick([1n << 40n, (1n << 52n) - P, 1n << 62n]);
    default:
      return rng.pick([(1n << 63n) - P, 1n << 63n, (1n << 64n) - 1n]);
  }
}

/** A length from `off` within something of `size` bytes; in-range lengths that touch memory stay below TOUCH_CAP. */
function lengthAt(rng: Rng, size: bigint, off: bigint, touches: boolean): bigint {
  const left = size > off ? size - off : 0n;
  let len: bigint;
  switch (rng.weighted({ pages: 35, unaligned: 12, zero: 7, rest: 15, past: 10, huge: 6 })) {
    case 'pages':
      len = BigInt(rng.range(1, 8)) * P;
      break;
    case 'unaligned':
      len = BigInt(rng.range(1, 3 * 4096));
      break;
    case 'zero':
      len = 0n;
      break;
    case 'rest':
      len = left;
      break;
    case 'past':
      len = left + BigInt(rng.range(1, 3)) * P;
      break;
    default:
      len = rng.pick([1n << 50n, 1n << 62n, 1n << 63n, (1n << 64n) - 1n]);
  }
  if (touches && len > TOUCH_CAP && off + len <= size) len = TOUCH_CAP;
  return len;
}

function fileSize(rng: Rng): bigint {
  switch (rng.weighted({ small: 70, tib: 6, huge: 3, unaligned: 8, zero: 4, bad: 4 })) {
    case 'small':
      return BigInt(rng.range(1, 16)) * P;
    case 'tib':
      return 1n << 40n;
    case 'huge':
      return 1n << 62n;
    case 'unaligned':
      return BigInt(rng.range(1, 5 * 4096)) | 1n;
    case 'zero':
      return 0n;
    default:
      return rng.pick([1n << 63n, (1n << 64n) - P]);
  }
}

export class Generator {
  constructor(private readonly rng: Rng) {}

  #pick(st: GenState, kind: Kind, where?: (o: GenObject) => boolean): GenObject | undefined {
    const all = st.objects.filter((o) => o.kind === kind && (!where || where(o)));
    const open = all.filter((o) => !o.closed);
    // Mostly open objects; now and then a closed one (use after close).
    const from = open.length > 0 && (this.rng.chance(0.92) || open.length === all.length) ? open : all;
    return from.length ? this.rng.pick(from) : undefined;
  }

  next(id: number, st: GenState): Op {
    const rng = this.rng;
    const count = (k: Kind) => st.objects.filter((o) => o.kind === k && !o.closed).length;
    const ref = (o: GenObject): Ref => ({ $ref: o.kind, id: o.id });
    const op = (target: Op['target'], call: string, args: unknown[], makes?: Kind): Op => ({
      id,
      target,
      call,
      args,
      ...(makes ? { makes } : {}),
    });

    if (!st.kvmClosed && st.step > st.steps * 0.97 && rng.chance(0.05)) return op('kvm', 'close', []);
    // Past a limit, close something instead of making more (the kernel's objects are real).
    for (const k of ['m', 'g', 'vm'] as const) {
      if (count(k) >= LIMITS[k]) {
        const o = this.#pick(st, k, (x) => !x.closed)!;
        return op(ref(o), k === 'm' ? 'unmap' : 'close', []);
      }
    }
    const vm = this.#pick(st, 'vm');
    const g = this.#pick(st, 'g');
    const m = this.#pick(st, 'm');
    // Calls on a closed object are tried too, but mostly the objects are open.
    const on = (x: GenObject | undefined, w: number) => (x === undefined ? 0 : x.closed ? w * 0.08 : w);
    const choice = rng.weighted({
      createVm: vm && !vm.closed ? 3 : 50,
      kvmCheck: 1,
      vmCheck: on(vm, 1),
      flags: on(vm, 1),
      createGmem: on(vm, 12),
      setRegion: on(vm, 10),
      deleteRegion: on(vm, 4),
      attributes: on(vm, 1),
      guest: SKIP.has('guest') ? 0 : on(vm, 3),
      closeVm: on(vm, 1),
      map: on(g, 10),
      allocate: on(g, 5),
      punch: on(g, 6),
      states: on(g, 2),
      stat: on(g, 2),
      convert: on(g, 2),
      closeG: on(g, 1.5),
      read: on(m, 10),
      readInto: on(m, 3),
      write: on(m, 8),
      fill: on(m, 6),
      unmap: on(m, 3),
      props: 2,
    });
    let o: Op;
    switch (choice) {
      case 'createVm':
        o = op('kvm', 'createVm', rng.chance(0.7) ? [] : [{ type: rng.pick([0, 0, 1, 2, 5, 99]) }], 'vm');
        break;
      case 'kvmCheck':
        o = op('kvm', 'checkExtension', [
          rng.chance(0.9) ? rng.int(300) : rng.pick(['GUEST_MEMFD', 'GUEST_MEMFD_FLAGS', 'NOPE']),
        ]);
        break;
      case 'vmCheck':
        o = op(ref(vm!), 'checkExtension', [rng.int(300)]);
        break;
      case 'flags':
        o = op(ref(vm!), 'guestMemfdFlags', []);
        break;
      case 'createGmem': {
        const opts: Record<string, unknown> = { size: val(rng, fileSize(rng)) };
        if (rng.chance(0.8)) opts.mmap = rng.chance(0.85);
        if (rng.chance(0.6)) opts.initShared = rng.chance(0.8);
        if (rng.chance(0.1)) opts.flags = val(rng, rng.pick([0n, 1n, 2n, 3n, 4n, 8n, 1n << 31n, 1n << 63n]));
        o = op(ref(vm!), 'createGuestMemfd', [opts], 'g');
        break;
      }
      case 'setRegion':
        o = op(ref(vm!), 'setMemoryRegion', [this.#region(st, vm!)]);
        break;
      case 'deleteRegion':
        o = op(ref(vm!), 'deleteMemoryRegion', [this.#slot()]);
        break;
      case 'attributes':
        o = op(ref(vm!), 'setMemoryAttributes', [
          val(rng, pagesBelow(rng, 64n * P)),
          val(rng, BigInt(rng.range(0, 4)) * P),
          { private: rng.chance(0.5) },
        ]);
        break;
      case 'guest': {
        // Guest access as the guest sees it, mostly where the slots are (gpa 0..32 pages).
        const gpa = rng.chance(0.85)
          ? BigInt(rng.int(36 * 4096))
          : rng.pick([1n << 32n, (1n << 52n) - P, (1n << 64n) - 1n]);
        const len = rng.weighted({ small: 70, zero: 5, pages: 20, huge: 5 });
        const n =
          len === 'small'
            ? BigInt(rng.range(1, 64))
            : len === 'zero'
              ? 0n
              : len === 'pages'
                ? BigInt(rng.range(1, 3)) * P
                : 1n << 40n;
        o = rng.chance(0.5)
          ? op(ref(vm!), 'guest.read', [val(rng, gpa), val(rng, n)])
          : op(ref(vm!), 'guest.write', [
              val(rng, gpa),
              { $bytes: Number(n > 3n * P ? 3n * P : n), seed: rng.int(2 ** 31) } satisfies BytesArg,
            ]);
        break;
      }
      case 'closeVm':
        o = op(ref(vm!), 'close', []);
        break;
      case 'map': {
        const off = offsetIn(rng, g!.size);
        const args: unknown[] = [val(rng, off)];
        if (rng.chance(0.75)) args.push(val(rng, lengthAt(rng, g!.size, off, false)));
        if (rng.chance(0.08)) {
          if (args.length === 1) args.push(undefined);
          args.push({ private: true });
        }
        o = op(ref(g!), 'map', args, 'm');
        break;
      }
      case 'allocate':
      case 'punch': {
        const off = offsetIn(rng, g!.size);
        const len = lengthAt(rng, g!.size, off, true);
        o = op(ref(g!), choice === 'allocate' ? 'allocate' : 'punchHole', [val(rng, off), val(rng, len)]);
        break;
      }
      case 'states': {
        const off = offsetIn(rng, g!.size);
        o = op(
          ref(g!),
          'states',
          rng.chance(0.3)
            ? []
            : rng.chance(0.3)
              ? [val(rng, off)]
              : [val(rng, off), val(rng, lengthAt(rng, g!.size, off, false))],
        );
        break;
      }
      case 'stat':
        o = op(ref(g!), 'stat', []);
        break;
      case 'convert': {
        const off = offsetIn(rng, g!.size);
        o = op(ref(g!), rng.pick(['share', 'unshare', 'hold']), [
          val(rng, off),
          val(rng, lengthAt(rng, g!.size, off, false)),
        ]);
        break;
      }
      case 'closeG':
        o = op(ref(g!), 'close', []);
        break;
      case 'read':
      case 'fill': {
        const off = offsetIn(rng, m!.size);
        // Now and then a read larger than any Buffer (refused before any allocation).
        const len = choice === 'read' && rng.chance(0.04) ? 1n << 33n : lengthAt(rng, m!.size, off, true);
        o =
          choice === 'read'
            ? op(ref(m!), 'read', [val(rng, off), val(rng, len)])
            : op(ref(m!), 'fill', [val(rng, off), val(rng, len), rng.int(256)]);
        break;
      }
      case 'readInto':
      case 'write': {
        const off = offsetIn(rng, m!.size);
        let len = lengthAt(rng, m!.size, off, true);
        if (len > TOUCH_CAP) len = TOUCH_CAP;
        const data: BytesArg = { $bytes: Number(len), seed: rng.int(2 ** 31) };
        o = op(ref(m!), choice, [val(rng, off), data]);
        break;
      }
      case 'unmap':
        o = op(ref(m!), rng.chance(0.7) ? 'unmap' : 'close', []);
        break;
      default: {
        const any = this.#pick(st, rng.pick(['vm', 'g', 'm'] as const));
        o = op(any ? ref(any) : 'kvm', 'props', []);
      }
    }
    if (o.call !== 'props' && o.call !== 'close' && o.call !== 'unmap' && rng.chance(0.09)) this.#spoil(o, st);
    return o;
  }

  #slot(): number {
    const rng = this.rng;
    return rng.chance(0.9) ? rng.int(6) : rng.pick([32763, 32764, 65536, 2 ** 32 - 1]);
  }

  #region(st: GenState, vm: GenObject): Record<string, unknown> {
    const rng = this.rng;
    const r: Record<string, unknown> = { slot: this.#slot() };
    const gpa = rng.weighted({ low: 80, unaligned: 6, top: 6, wrap: 3 });
    r.guestPhysAddr = val(
      rng,
      gpa === 'low'
        ? BigInt(rng.int(32)) * P
        : gpa === 'unaligned'
          ? BigInt(rng.range(1, 4095))
          : gpa === 'top'
            ? rng.pick([(1n << 52n) - 4n * P, (1n << 52n) - P, 1n << 52n])
            : (1n << 64n) - P,
    );
    const size = rng.weighted({ pages: 75, zero: 6, unaligned: 6, gib: 5, tooBig: 4 });
    r.size = val(
      rng,
      size === 'pages'
        ? BigInt(rng.range(1, 8)) * P
        : size === 'zero'
          ? 0n
          : size === 'unaligned'
            ? BigInt(rng.range(1, 8 * 4096)) | 1n
            : size === 'gib'
              ? 1n << 30n
              : 1n << 43n,
    );
    // A file of this VM mostly; sometimes another VM's, a closed one, or none.
    if (rng.chance(0.75)) {
      const any = rng.chance(0.05);
      const g = this.#pick(st, 'g', (o) => any || (o.parent === vm.id && !o.closed));
      if (g) {
        r.guestMemfd = { $ref: 'g', id: g.id } satisfies Ref;
        if (rng.chance(0.5))
          r.guestMemfdOffset = val(rng, rng.chance(0.85) ? pagesBelow(rng, g.size) : offsetIn(rng, g.size));
      }
    }
    if (rng.chance(0.7)) {
      const any = rng.chance(0.05);
      const m = this.#pick(st, 'm', (o) => any || !o.closed);
      if (m) {
        r.userspace = { $ref: 'm', id: m.id } satisfies Ref;
        if (rng.chance(0.3))
          r.userspaceOffset = val(rng, rng.chance(0.7) ? pagesBelow(rng, m.size) : offsetIn(rng, m.size));
      }
    }
    if (rng.chance(0.08)) r.readonly = true;
    // Dirty logging allocates a bitmap per page: only on small slots.
    if (rng.chance(0.05) && size === 'pages') r.logDirtyPages = true;
    return r;
  }

  /** Replace one argument (or one field of an options argument) by a bad value or a wrong-backend object. */
  #spoil(o: Op, st: GenState): void {
    const rng = this.rng;
    const objs = st.objects.filter((x) => x.kind !== 'vm');
    const bad =
      objs.length && rng.chance(0.15)
        ? (() => {
            const x = rng.pick(objs);
            return { $foreign: x.kind, id: x.id } satisfies Foreign;
          })()
        : rng.pick(BAD_VALUES);
    const n = Math.max(o.args.length, 1);
    const i = rng.int(n + (rng.chance(0.1) ? 1 : 0));
    const a = o.args[i];
    if (
      a !== null &&
      typeof a === 'object' &&
      !('$ref' in a) &&
      !('$bytes' in a) &&
      !Array.isArray(a) &&
      rng.chance(0.8)
    ) {
      const keys = Object.keys(a);
      const key =
        keys.length && rng.chance(0.85)
          ? rng.pick(keys)
          : rng.pick(['size', 'slot', 'guestMemfd', 'userspace', 'private', 'type']);
      o.args[i] = { ...(a as object), [key]: bad };
      o.bad = `arg ${i}.${key}`;
    } else {
      o.args[i] = bad;
      o.bad = `arg ${i}`;
    }
  }
}
