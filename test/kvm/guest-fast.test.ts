// vm.guest's native-speed (CPL3) path and readInto: the same answers as the emulated (CPL0) path
// wherever the fast path runs, and the CPL0 path wherever the two would differ (issue 15).
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestMemoryFault, open } from '../../lib/index.js';
import type { Kvm, Vm } from '../../lib/index.js';
import { describeKvm, onKernelAndProfile } from '../helpers/kvm.js';
import { hostProfile } from '../../lib/probe.js';

const GiB = 0x4000_0000;
const PAGE = 4096;

let kvm: Kvm;
let vm: Vm;
afterEach(() => kvm.close());

function shared(slot: number, gpa: number, size: number) {
  const g = vm.createGuestMemfd({ size, mmap: true, initShared: true });
  const m = g.map();
  vm.setMemoryRegion({ slot, guestPhysAddr: gpa, size, guestMemfd: g, userspace: m });
  return { g, m };
}

/** What both backends must agree on: readInto into shared memory, at an offset, over a fault. */
async function readIntoScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  const g = v.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
  const m = g.map();
  m.fill(0, 4 * PAGE, 0x5a);
  v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: 4 * PAGE, guestMemfd: g, userspace: m });
  const p = v.createGuestMemfd({ size: PAGE, mmap: true });
  v.setMemoryRegion({ slot: 1, guestPhysAddr: 0x100000 + 4 * PAGE, size: PAGE, guestMemfd: p });
  const sab = new Uint8Array(new SharedArrayBuffer(64));
  const got = await v.guest.readInto(0x100000 + PAGE - 3, sab.subarray(8, 40));
  await v.guest.write(0x100000 + 2 * PAGE, new Uint8Array(new SharedArrayBuffer(5)).fill(7));
  const fault = await v.guest
    .readInto(0x100000 + 4 * PAGE - 8, new Uint8Array(16))
    .catch((e: unknown) => e as GuestMemoryFault);
  const bad = await v.guest
    .readInto(0, 'x' as unknown as Uint8Array)
    .catch((e: unknown) => (e as { code: string }).code);
  const uncovered = await v.guest
    .readInto(0x900000, new Uint8Array(1))
    .catch((e: unknown) => (e as { code: string }).code);
  const empty = await v.guest.readInto(0x100000, new Uint8Array(0));
  const result = {
    got,
    bytes: [...sab],
    written: [...m.read(2 * PAGE - 1, 7)],
    empty,
    bad,
    uncovered,
    fault: {
      cls: fault?.constructor.name,
      gpa: (fault as GuestMemoryFault).gpa,
      private: (fault as GuestMemoryFault).private,
    },
  };
  v.close();
  const closed = await v.guest
    .readInto(0x100000, new Uint8Array(1))
    .catch((e: unknown) => (e as { code: string }).code);
  return { ...result, closed };
}

/** Hostile buffers: both backends refuse them with the same typed errors, or use only real memory. */
async function hostileScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  const g = v.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
  const m = g.map();
  m.fill(0, 4 * PAGE, 0x77);
  v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: 4 * PAGE, guestMemfd: g, userspace: m });
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: { code?: string; name?: string }) => e.code ?? e.name,
    );
  const proxied = new Proxy(new Uint8Array(8), {});
  const shadowed = new Uint8Array(4);
  Object.defineProperty(shadowed, 'byteLength', { value: 1 << 30 });
  Object.defineProperty(shadowed, 'buffer', { value: new ArrayBuffer(1 << 20) });
  const lookalike = Object.create(Uint8Array.prototype) as Uint8Array;
  const src = new Uint8Array([1, 2, 3, 4]);
  Object.defineProperty(src, 'byteOffset', { value: 2 });
  const r = {
    proxyRead: await code(v.guest.readInto(0x100000, proxied)),
    proxyWrite: await code(v.guest.write(0x100000, proxied)),
    lookalike: await code(v.guest.readInto(0x100000, lookalike)),
    object: await code(v.guest.write(0x100000, { byteLength: 4, buffer: new ArrayBuffer(4) } as unknown as Uint8Array)),
    shadowed: await v.guest.readInto(0x100000, shadowed),
    shadowedBytes: [...shadowed.subarray(0, 4)],
    dataView: await v.guest.readInto(0x100000 + 1, new DataView(new ArrayBuffer(3)) as unknown as Uint8Array),
    write: await code(v.guest.write(0x100000 + 8, src)),
    written: [...m.read(8, 4)],
  };
  v.close();
  return r;
}

/** A small deterministic generator, so a failing layout can be replayed from its seed. */
function rng(seed: number): (n: number) => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/**
 * Seven slots of every kind the fast path must tell apart, with contents of their own, then 30
 * reads, readIntos and writes at random places: what each gives (bytes, or the error) and the host's
 * view of each file at the end.
 */
async function layoutScenario(k: Kvm, seed: number): Promise<unknown> {
  const r = rng(seed);
  const v = k.createVm();
  const SLOT = 0x20000;
  const base = 0x4000_0000 - 3 * SLOT; // across a GiB boundary
  const maps: { read(o: number, n: number): Buffer }[] = [];
  const file = (shared: boolean, fill: number) => {
    const g = v.createGuestMemfd({ size: SLOT, mmap: true, initShared: shared });
    const m = g.map();
    if (shared) m.fill(0, SLOT, fill);
    if (shared) maps.push(m);
    return { g, m };
  };
  const kinds = ['own', 'other', 'none', 'userspace', 'private-userspace', 'private-own', 'readonly'];
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[r(kinds.length)]!;
    const gpa = base + i * SLOT;
    const region = { slot: i, guestPhysAddr: gpa, size: SLOT };
    if (kind === 'own') {
      const f = file(true, 0x10 + i);
      v.setMemoryRegion({ ...region, guestMemfd: f.g, userspace: f.m });
    }
    if (kind === 'other') {
      const a = file(true, 0x20 + i);
      const b = file(true, 0x30 + i);
      v.setMemoryRegion({ ...region, guestMemfd: a.g, userspace: b.m });
    }
    if (kind === 'none') {
      const f = file(true, 0x40 + i);
      v.setMemoryRegion({ ...region, guestMemfd: f.g });
    }
    if (kind === 'userspace') {
      const f = file(true, 0x50 + i);
      v.setMemoryRegion({ ...region, userspace: f.m });
    }
    if (kind === 'private-userspace') {
      const f = file(false, 0);
      v.setMemoryRegion({ ...region, userspace: f.m });
    }
    if (kind === 'private-own') {
      const f = file(false, 0);
      v.setMemoryRegion({ ...region, guestMemfd: f.g, userspace: f.m });
    }
    if (kind === 'readonly') {
      const f = file(true, 0x60 + i);
      v.setMemoryRegion({ ...region, userspace: f.m, readonly: true });
    }
  }
  const out: unknown[] = [];
  const outcome = (e: unknown) =>
    e instanceof GuestMemoryFault ? { fault: e.gpa, private: e.private } : { error: (e as { code?: string }).code };
  for (let i = 0; i < 30; i++) {
    const at = base + r(kinds.length * SLOT + 0x1000);
    const len = 1 + r(r(2) ? 16 : 3 * SLOT);
    const op = r(3);
    if (op === 0) out.push(await v.guest.read(at, len).then((b) => b.toString('hex'), outcome));
    if (op === 1) {
      const t = new Uint8Array(new SharedArrayBuffer(len));
      out.push(await v.guest.readInto(at, t).then((n) => [n, Buffer.from(t).toString('hex')], outcome));
    }
    if (op === 2) out.push(await v.guest.write(at, Buffer.alloc(len, 0x80 + i)).then(() => 'ok', outcome));
  }
  out.push(maps.map((m) => m.read(0, SLOT).toString('hex')));
  v.close();
  return out;
}

describe('vm.guest.readInto on the simulator', () => {
  it('refuses hostile buffers with typed errors and reads only through the real view', async () => {
    const k = open({ backend: 'sim', profile: 'linux-6.18' });
    expect(await hostileScenario(k)).toEqual({
      proxyRead: 'ERR_INVALID_ARG_TYPE',
      proxyWrite: 'ERR_INVALID_ARG_TYPE',
      lookalike: 'ERR_INVALID_ARG_TYPE',
      object: 'ERR_INVALID_ARG_TYPE',
      shadowed: 4,
      shadowedBytes: [0x77, 0x77, 0x77, 0x77],
      dataView: 3,
      write: 'ok',
      written: [1, 2, 3, 4],
    });
    k.close();
  });

  beforeEach(() => {
    // This host's profile: a private guest_memfd page faults for the guest (mainline serves it).
    kvm = open({ backend: 'sim', profile: 'linux-6.18-pvm' });
  });
  it('fills a SharedArrayBuffer view, resolves to its length, and faults like read', async () => {
    const r = (await readIntoScenario(kvm)) as { got: number; bytes: number[]; fault: unknown; written: number[] };
    expect(r.got).toBe(32);
    expect(r.bytes).toEqual([...new Array(8).fill(0), ...new Array(32).fill(0x5a), ...new Array(24).fill(0)]);
    expect(r.written).toEqual([0x5a, 7, 7, 7, 7, 7, 0x5a]);
    expect(r.fault).toEqual({ cls: 'GuestMemoryFault', gpa: 0x104000, private: true });
    expect(r).toMatchObject({
      empty: 0,
      bad: 'ERR_INVALID_ARG_TYPE',
      uncovered: 'ERR_OUT_OF_RANGE',
      closed: 'ERR_KVM_CLOSED',
    });
  });
});

const outcome = (p: Promise<Buffer>) =>
  p.then(
    (b) => [...b],
    (e: { name?: string; code?: string; gpa?: number; private?: boolean }) =>
      e.name === 'GuestMemoryFault' ? { code: e.code, gpa: e.gpa, private: e.private } : `${e.name}: ${e.code}`,
  );

/** Bytes both backends can make alike: a fixed pseudo-random stream. */
function stream(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function otherFileScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  try {
    const a = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const b = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    a.map().fill(0, 0x10000, 0xaa);
    const bm = b.map();
    bm.fill(0, 0x10000, 0xbb);
    v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: 0x10000, guestMemfd: a, userspace: bm });
    const other = await outcome(v.guest.read(0x100000, 4));
    // At an offset into the same file, too: the slot's file offset and the mapping's differ.
    const c = v.createGuestMemfd({ size: 0x20000, mmap: true, initShared: true });
    const cm = c.map();
    cm.fill(0, 0x10000, 0x01);
    cm.fill(0x10000, 0x10000, 0x02);
    v.setMemoryRegion({
      slot: 1,
      guestPhysAddr: 0x200000,
      size: 0x10000,
      guestMemfd: c,
      guestMemfdOffset: 0x10000,
      userspace: cm,
    });
    return { other, offset: await outcome(v.guest.read(0x200000, 2)) };
  } finally {
    v.close();
  }
}

async function privateOwnMappingScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  try {
    const p = v.createGuestMemfd({ size: 0x10000, mmap: true });
    v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x200000, size: 0x10000, guestMemfd: p, userspace: p.map() });
    const read = await outcome(v.guest.read(0x200000, 2));
    const write = await outcome(v.guest.write(0x201000, Buffer.from([1])).then(() => Buffer.alloc(0)));
    return { read, write };
  } finally {
    v.close();
  }
}

async function mixedScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  try {
    const MiB = 0x100000;
    const base = 0x1000_0000;
    const slot = (n: number, gpa: number, size: number) => {
      const g = v.createGuestMemfd({ size, mmap: true, initShared: true });
      const m = g.map();
      v.setMemoryRegion({ slot: n, guestPhysAddr: gpa, size, guestMemfd: g, userspace: m });
      return m;
    };
    const one = slot(0, base, 3 * MiB);
    // The emulated path on PVM: a guest_memfd slot over another file's memory (both hold the same
    // bytes, so gmem-only mainline, which reads the slot's own file, agrees).
    const a = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const b = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const bm = b.map();
    v.setMemoryRegion({ slot: 1, guestPhysAddr: base + 3 * MiB, size: 0x10000, guestMemfd: a, userspace: bm });
    const two = slot(2, base + 3 * MiB + 0x10000, 5 * MiB);
    const priv = v.createGuestMemfd({ size: 0x10000, mmap: true });
    v.setMemoryRegion({ slot: 3, guestPhysAddr: base + 8 * MiB + 0x10000, size: 0x10000, guestMemfd: priv });
    const [d1, d2, d3] = [stream(1, 3 * MiB), stream(2, 0x10000), stream(3, 5 * MiB)];
    one.write(0, d1);
    bm.write(0, d2);
    a.map().write(0, d2);
    two.write(0, d3);
    const all = Buffer.concat([d1, d2, d3]);
    const target = new Uint8Array(all.length - 7);
    const n = await v.guest.readInto(base + 7, target);
    const into = n === target.length && Buffer.from(target).equals(all.subarray(7));
    const fault = await v.guest.read(base + 5, all.length + 0x100).then(
      (x) => ({ class: 'Buffer', tail: [...x.subarray(all.length - 5)] }),
      (e: { name: string; gpa?: number; private?: boolean }) => ({ class: e.name, gpa: e.gpa, private: e.private }),
    );
    // The helper carries on.
    const after = (await v.guest.read(base + 3 * MiB + 0x10000, 4)).equals(d3.subarray(0, 4));
    return { into, fault, after };
  } finally {
    v.close();
  }
}

async function unmappedScenario(k: Kvm): Promise<unknown> {
  const v = k.createVm();
  try {
    const g = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const m = g.map();
    v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x400000, size: 0x10000, guestMemfd: g, userspace: m });
    m.fill(0, 0x10000, 0x33);
    const before = await outcome(v.guest.read(0x400000, 2));
    m.unmap();
    const after = await v.guest.read(0x400000, 2).then(
      (x) => [...x],
      (e: Error) => e.name,
    );
    return { before, after };
  } finally {
    v.close();
  }
}

describeKvm('vm.guest fast path on the real backend', () => {
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
  });

  it("readInto gives what this kernel's simulator profile gives", async () => {
    const { got, want } = await onKernelAndProfile(kvm, readIntoScenario);
    expect(got).toEqual(want);
  });

  it('hostile buffers get what the simulator gives them', async () => {
    const { got, want } = await onKernelAndProfile(kvm, hostileScenario);
    expect(got).toEqual(want);
  });

  it('a target detached or shrunk during readInto is a RangeError, not a crash', async () => {
    shared(0, 0x1000_0000, 8 * 0x100000);
    const buf = new ArrayBuffer(8 * 0x100000);
    const p = vm.guest.readInto(0x1000_0000, new Uint8Array(buf));
    structuredClone(buf, { transfer: [buf] });
    await expect(p).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('detached') });
    const rab = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer & { resize(n: number): void })(
      4 * 0x100000,
      { maxByteLength: 4 * 0x100000 },
    );
    const q = vm.guest.readInto(0x1000_0000, new Uint8Array(rab));
    rab.resize(0x1000);
    await expect(q).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    const src = new ArrayBuffer(3 * 0x100000);
    const w = vm.guest.write(0x1000_0000, new Uint8Array(src));
    structuredClone(src, { transfer: [src] });
    await expect(w).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect((await vm.guest.read(0x1000_0000, 2)).length).toBe(2); // the helper carries on
  });

  it("random layouts of every slot kind: each access gives what this kernel's simulator profile gives", async () => {
    const sim = open({ backend: 'sim', profile: hostProfile() ?? 'linux-6.18' });
    try {
      for (let seed = 1; seed <= 12; seed++) {
        const [got, want] = (await Promise.all([layoutScenario(kvm, seed), layoutScenario(sim, seed)])) as [
          unknown[],
          unknown[],
        ];
        // The first access that differs, shortened, with its seed.
        const i = got.findIndex((g, j) => JSON.stringify(g) !== JSON.stringify(want[j]));
        const short = (x: unknown) => {
          if (i !== 30) return JSON.stringify(x)?.slice(0, 300);
          const [g, w] = [got[30] as string[], want[30] as string[]];
          const m = g.findIndex((h, j) => h !== w[j]);
          if (m < 0) return 'same';
          const o = [...g[m]!].findIndex((c, j) => c !== w[m]![j]);
          return `map ${m} hex offset ${o}: ${x === got[i] ? g[m]!.slice(o - 8, o + 40) : w[m]!.slice(o - 8, o + 40)}`;
        };
        expect({ seed, access: i, got: short(got[i]) }).toEqual({ seed, access: -1, got: short(want[i]) });
      }
    } finally {
      sim.close();
    }
  }, 120_000);

  // Where PVM and mainline differ (a guest_memfd slot is gmem-only on mainline, served from its file
  // whatever its userspace memory; PVM reaches it through that memory), the answer is the host
  // profile's, and on this PVM host also the value measured here.
  it("a guest_memfd slot whose userspace memory is another file: as this kernel's profile says", async () => {
    const { got, want } = await onKernelAndProfile(kvm, otherFileScenario);
    expect(got).toEqual(want);
    if (hostProfile() === 'linux-6.18-pvm')
      expect(got).toEqual({ other: [0xbb, 0xbb, 0xbb, 0xbb], offset: [0x01, 0x01] });
    if (hostProfile() === 'linux-7.3' || hostProfile() === 'linux-6.18')
      expect(got).toEqual({ other: [0xaa, 0xaa, 0xaa, 0xaa], offset: [0x02, 0x02] });
  });

  it("a private page behind the slot's own mapping: a fault on PVM, not a silent native read; as the profile says", async () => {
    const { got, want } = await onKernelAndProfile(kvm, privateOwnMappingScenario);
    expect(got).toEqual(want);
    if (hostProfile() === 'linux-6.18-pvm') {
      expect(got).toEqual({
        read: { code: 'KVM_EXIT_MEMORY_FAULT', gpa: 0x200000, private: true },
        write: { code: 'KVM_EXIT_MEMORY_FAULT', gpa: 0x201000, private: true },
      });
    }
  });
  it('reads and writes slots in more GiBs than it has windows, in turn, each as the host sees it', async () => {
    const maps = [];
    for (let i = 0; i < 10; i++) {
      // The same offset in each GiB: a window repointed without KVM dropping its shadow shows the old GiB.
      const { m } = shared(i, (i + 1) * GiB, 0x10000);
      m.fill(0, 0x10000, 0x10 + i);
      maps.push(m);
    }
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 10; i++) {
        const at = (i + 1) * GiB;
        expect([...(await vm.guest.read(at + 100 * round, 3))]).toEqual([0x10 + i, 0x10 + i, 0x10 + i]);
        await vm.guest.write(at + 0x8000 + round, Buffer.from([0xe0 + i]));
        expect(maps[i]!.read(0x8000 + round, 1)[0]).toBe(0xe0 + i);
      }
    }
  });

  it('a range across a GiB boundary, into a reused SharedArrayBuffer, both ways', async () => {
    const { m } = shared(0, 2 * GiB - 3 * 0x100000, 6 * 0x100000);
    const data = randomBytes(5 * 0x100000);
    m.write(0x80000, data);
    const target = new Uint8Array(new SharedArrayBuffer(data.length));
    for (let i = 0; i < 2; i++) {
      expect(await vm.guest.readInto(2 * GiB - 3 * 0x100000 + 0x80000, target)).toBe(data.length);
      expect(Buffer.from(target).equals(data)).toBe(true);
    }
    const back = new Uint8Array(new SharedArrayBuffer(data.length));
    back.set(randomBytes(data.length));
    await vm.guest.write(2 * GiB - 3 * 0x100000 + 0x80001, back);
    expect(m.read(0x80001, back.length).equals(Buffer.from(back))).toBe(true);
    expect(m.read(0x80000, 1)[0]).toBe(data[0]);
  });

  it('a read of many chunks mixing fast and emulated slots, then a fault, in address order', async () => {
    const { got, want } = await onKernelAndProfile(kvm, mixedScenario);
    expect(got).toEqual(want);
    expect(got).toMatchObject({ into: true, after: true });
    // PVM: the private file's slot faults; mainline serves it (a type-0 VM has no private pages).
    if (hostProfile() === 'linux-6.18-pvm')
      expect(got).toMatchObject({ fault: { class: 'GuestMemoryFault', gpa: 0x1000_0000 + 0x810000 } });
  });

  it("an unmapped userspace mapping after fast reads of it: as this kernel's profile says", async () => {
    const { got, want } = await onKernelAndProfile(kvm, unmappedScenario);
    expect(got).toEqual(want);
    if (hostProfile() === 'linux-6.18-pvm') expect(got).toEqual({ before: [0x33, 0x33], after: 'GuestMemoryFault' });
  });
});
