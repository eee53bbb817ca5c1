// The real kernel: one ioctl, the KVM_RUN loop and guest_memfd copies, JS against C doing the same.
// C and JS rounds alternate so a busy neighbour slows both sides alike; each side's figure is the
// median of its rounds.
import { createRequire } from 'node:module';
import { median, skipped } from './report.mjs';
import { runJsonLines, timeAsyncOp, timeOp } from './harness.mjs';
import { reason } from './suites.mjs';

// At least 7 alternating rounds per comparison (issue 15): medians, with the spread reported.
const ROUNDS = 7;
const GMEM_FLAGS_CAP = 244; // KVM_CAP_GUEST_MEMFD_FLAGS, the cap the C baseline asks for too
const COPY_BYTES = 64 * 1024 * 1024;
// Real mode at gpa 0: `out 0x10, al` then a jump back to it, so every KVM_RUN is one io exit.
const OUT_LOOP = Uint8Array.from([0xe6, 0x10, 0xeb, 0xfc]);

export function kvmSteps(ctx) {
  return [
    { label: 'kvm.check-extension vs c.check-extension', run: () => checkExtension(ctx) },
    { label: 'kvm.io-exit-roundtrip vs c.io-exit-roundtrip', run: () => ioExit(ctx) },
    { label: 'mapping.read/write-gbps vs c.memcpy-*-gbps', run: () => copies(ctx) },
    { label: 'guest.read-gbps', run: () => guestRead(ctx) },
  ];
}

/**
 * Runs each side `rounds` times, alternating; a side returns { id: value }. Gives per id the median,
 * the round count, or the first error of that side.
 */
async function alternate(rounds, sides) {
  const out = sides.map(() => ({ values: {}, error: null }));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < sides.length; i++) {
      if (out[i].error) continue;
      try {
        for (const [id, v] of Object.entries(await sides[i]())) (out[i].values[id] ??= []).push(v);
      } catch (e) {
        out[i].error = e;
      }
    }
  }
  return out.map((o) => ({
    error: o.error,
    value: Object.fromEntries(Object.entries(o.values).map(([id, vs]) => [id, median(vs)])),
    spread: Object.fromEntries(
      Object.entries(o.values).map(([id, vs]) => [
        id,
        { min: Math.min(...vs), max: Math.max(...vs), rounds: vs.length },
      ]),
    ),
    rounds: o.values,
  }));
}

/** Pushes a measured figure or, when its side failed, the skip with the reason. */
function record(ctx, side, spec, why = '') {
  const v = side.value[spec.id];
  if (side.error || v === undefined) {
    ctx.results.push(
      skipped(spec.id, spec.unit, `${why}${reason(side.error)}`, spec.baseline ? { baseline: spec.baseline } : {}),
    );
  } else {
    ctx.results.push({ ...spec, value: v, spread: side.spread?.[spec.id], roundValues: side.rounds?.[spec.id] });
  }
}

function cSide(ctx, args, pick) {
  return () => {
    if (!ctx.bin.kvm_c) throw new Error(`kvm_c baseline did not compile: ${ctx.binErrors.kvm_c}`);
    return pick(runJsonLines(ctx.bin.kvm_c, args));
  };
}

function skipAll(ctx, specs, why) {
  for (const s of specs) ctx.results.push(skipped(s.id, s.unit, why, s.baseline ? { baseline: s.baseline } : {}));
}

let kvmSystem;
function realKvm(ctx) {
  kvmSystem ??= ctx.lib.open({ backend: 'kvm' });
  return kvmSystem;
}

/**
 * @typedef {{ open(path: string): number, call(x: number): number, check(cap: number): number, loop(n: number, cap: number): number,
 *   ioGuest(): number, ioRun(): number, ioLoop(n: number): number }} NapiFloor
 */
/** @type {{ floor?: NapiFloor, floorError: unknown } | undefined} */
let napiFloorLoaded;
/** bench/baselines/napi_check.c, loaded once: the floor of any N-API binding of these ioctls. */
function napiFloor(ctx) {
  if (napiFloorLoaded) return napiFloorLoaded;
  try {
    if (!ctx.bin['napi_check.node'])
      throw new Error(`napi_check.c did not compile: ${ctx.binErrors['napi_check.node']}`);
    /** @type {NapiFloor} */
    const loaded = createRequire(import.meta.url)(ctx.bin['napi_check.node']);
    if (loaded.open('/dev/kvm') < 0) throw new Error('napi_check: open /dev/kvm failed');
    loaded.ioGuest();
    napiFloorLoaded = { floor: loaded, floorError: null };
  } catch (e) {
    napiFloorLoaded = { floorError: e };
  }
  return napiFloorLoaded;
}

/**
 * A call's two N-API floor figures (napi.<id> and c.<id>-in-node against `baseline`): its plain
 * N-API function from JS, and the same call looped in C inside this process. `side` is their round
 * for alternate(), `record` files what it measured.
 * @param {any} ctx
 * @param {string} baseline
 * @param {{ id: string, call: string, batch: number, once(f: NapiFloor): unknown, loop(f: NapiFloor, n: number): unknown }} how
 */
function floorFigures(ctx, baseline, how) {
  const { id, call, batch, once, loop } = how;
  const napi = {
    id: `napi.${id}`,
    unit: 'ns',
    baseline,
    note: `a plain N-API function doing only ${call} (no checks; napi_check.c), from JS, the median batch of ${batch}: the floor of any binding`,
  };
  const inNode = {
    id: `c.${id}-in-node`,
    unit: 'ns',
    baseline,
    note: `${call} looped in C inside the Node process (napi_check.c), the median batch of ${batch}`,
  };
  return {
    specs: [napi, inNode],
    /** @param {{ time: number }} opts */
    side: async (opts) => {
      const { floor: f, floorError } = napiFloor(ctx);
      if (!f) throw floorError;
      return {
        [napi.id]: await timeOp(napi.id, () => once(f), { ...opts, batch }),
        [inNode.id]: (await timeOp(inNode.id, () => loop(f, batch), { ...opts, batch: 1 })) / batch,
      };
    },
    record: (side) => {
      record(ctx, side, napi, 'N-API floor unavailable: ');
      record(ctx, side, inNode, 'N-API floor unavailable: ');
    },
  };
}

async function checkExtension(ctx) {
  const calls = ctx.quick ? 100_000 : 500_000;
  const c = {
    id: 'c.check-extension',
    unit: 'ns',
    note: `ioctl(/dev/kvm fd, KVM_CHECK_EXTENSION, ${GMEM_FLAGS_CAP}) in C with an idle thread (shared fd table, as in Node), the median batch of 1000 over ${calls} x 3 calls`,
  };
  const js = {
    id: 'kvm.check-extension',
    unit: 'ns',
    baseline: c.id,
    goal: '<= 1.1',
    note: `kvm.checkExtension(${GMEM_FLAGS_CAP}) on the system fd, median of batches of 1000`,
  };
  const floor = floorFigures(ctx, c.id, {
    id: 'check-extension',
    call: 'the ioctl',
    batch: 1000,
    once: (f) => f.check(GMEM_FLAGS_CAP),
    loop: (f, n) => f.loop(n, GMEM_FLAGS_CAP),
  });
  const crossing = {
    id: 'napi.call',
    unit: 'ns',
    baseline: c.id,
    note: 'napi.check-extension without the ioctl (one number in, one out): the N-API crossing alone, against the ioctl in C',
  };
  if (ctx.kvmReason) return skipAll(ctx, [js, c, ...floor.specs, crossing], ctx.kvmReason);
  const opts = { batch: 1000, time: ctx.quick ? 150 : 600 };
  const [cs, jss, ns, crossings] = await alternate(ROUNDS, [
    cSide(ctx, ['check', String(calls), '3'], (l) => ({ [c.id]: l[0].ns })),
    async () => {
      const kvm = realKvm(ctx);
      return {
        [js.id]: await timeOp(js.id, () => kvm.checkExtension(GMEM_FLAGS_CAP), {
          batch: 1000,
          time: ctx.quick ? 150 : 600,
        }),
      };
    },
    () => floor.side(opts),
    async () => {
      const { floor: f, floorError } = napiFloor(ctx);
      if (!f) throw floorError;
      return { [crossing.id]: await timeOp(crossing.id, () => f.call(GMEM_FLAGS_CAP), opts) };
    },
  ]);
  record(ctx, jss, js);
  record(ctx, cs, c);
  floor.record(ns);
  record(ctx, crossings, crossing, 'N-API floor unavailable: ');
}

async function ioExit(ctx) {
  const runs = ctx.quick ? 10_000 : 40_000;
  const c = {
    id: 'c.io-exit-roundtrip',
    unit: 'ns',
    note: `KVM_RUN loop in C with an idle thread, guest doing out 0x10 in a loop, the median batch of 200 over ${runs} x 3 runs`,
  };
  const js = {
    id: 'kvm.io-exit-roundtrip',
    unit: 'ns',
    baseline: c.id,
    goal: '<= 1.1',
    note: 'await vcpu.run() per io exit, same guest',
  };
  const jsSync = {
    id: 'kvm.io-exit-roundtrip-sync',
    unit: 'ns',
    baseline: c.id,
    goal: '<= 1.1',
    note: 'vcpu.runSync() per io exit, same guest',
  };
  const floor = floorFigures(ctx, c.id, {
    id: 'io-exit-roundtrip',
    call: 'KVM_RUN on the same kind of guest',
    batch: 200,
    once: (f) => f.ioRun(),
    loop: (f, n) => f.ioLoop(n),
  });
  if (ctx.kvmReason) return skipAll(ctx, [js, jsSync, c, ...floor.specs], ctx.kvmReason);
  let vm;
  let vcpu;
  let setupError = null;
  try {
    vm = realKvm(ctx).createVm();
    const gm = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const m = gm.map();
    m.write(0, OUT_LOOP);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gm, userspace: m });
    vcpu = vm.createVcpu(0);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ cs: { ...sregs.cs, base: 0n, selector: 0 } });
    vcpu.setRegs({ rip: 0n, rflags: 2n });
    const first = await vcpu.run();
    if (first.reason !== 'io' || first.port !== 0x10)
      throw new Error(`the guest did not exit on io: ${JSON.stringify(first)}`);
  } catch (e) {
    setupError = e;
  }
  const opts = { batch: 200, time: ctx.quick ? 200 : 800 };
  const [cs, jss, syncs, ns] = await alternate(ROUNDS, [
    cSide(ctx, ['ioexit', String(runs), '3'], (l) => ({ [c.id]: l[0].ns })),
    async () => {
      if (setupError) throw setupError;
      return { [js.id]: await timeAsyncOp(js.id, () => vcpu.run(), opts) };
    },
    async () => {
      if (setupError) throw setupError;
      return { [jsSync.id]: await timeOp(jsSync.id, () => vcpu.runSync(), opts) };
    },
    () => floor.side(opts),
  ]);
  vm?.close();
  record(ctx, jss, js, 'vCPU path unavailable: ');
  record(ctx, syncs, jsSync, 'vCPU path unavailable: ');
  record(ctx, cs, c);
  floor.record(ns);
}

async function copies(ctx) {
  const reps = ctx.quick ? 5 : 11;
  const cr = {
    id: 'c.memcpy-read-gbps',
    unit: 'GB/s',
    note: 'memcpy of 64 MiB from a MMAP|INIT_SHARED guest_memfd mmap to a buffer, in C',
  };
  const cw = {
    id: 'c.memcpy-write-gbps',
    unit: 'GB/s',
    note: 'memcpy of 64 MiB from a buffer to a MMAP|INIT_SHARED guest_memfd mmap, in C',
  };
  const rd = {
    id: 'mapping.read-gbps',
    unit: 'GB/s',
    baseline: cr.id,
    goal: '>= 0.9',
    note: 'mapping.readInto(0, 64 MiB Buffer): the SIGBUS-guarded copy',
  };
  const wr = {
    id: 'mapping.write-gbps',
    unit: 'GB/s',
    baseline: cw.id,
    goal: '>= 0.9',
    note: 'mapping.write(0, 64 MiB Buffer): the SIGBUS-guarded copy',
  };
  const pr = {
    id: 'c.probe-memcpy-read-gbps',
    unit: 'GB/s',
    baseline: cr.id,
    note: 'c.memcpy-read-gbps after one read per page, as the SIGBUS guard probes before it copies (so a failed copy moves no byte)',
  };
  const pw = {
    id: 'c.probe-memcpy-write-gbps',
    unit: 'GB/s',
    baseline: cw.id,
    note: 'c.memcpy-write-gbps after one read per page, as the SIGBUS guard probes before it copies (so a failed write moves no byte)',
  };
  if (ctx.kvmReason) return skipAll(ctx, [rd, wr, cr, cw, pr, pw], ctx.kvmReason);
  let vm;
  let m;
  let buf;
  let setupError = null;
  try {
    vm = realKvm(ctx).createVm();
    const gm = vm.createGuestMemfd({ size: COPY_BYTES, mmap: true, initShared: true });
    m = gm.map();
    m.fill(0, COPY_BYTES, 0xa5); // faults every page in before timing, as the C side does
    buf = Buffer.alloc(COPY_BYTES, 0x5a);
  } catch (e) {
    setupError = e;
  }
  const opts = { time: 0, iterations: reps, warmupTime: 0, warmupIterations: 1 };
  const [cs, jss] = await alternate(ROUNDS, [
    cSide(ctx, ['memcpy', String(COPY_BYTES), String(reps)], (l) => Object.fromEntries(l.map((x) => [x.id, x.gbps]))),
    async () => {
      if (setupError) throw setupError;
      const r = COPY_BYTES / (await timeOp(rd.id, () => m.readInto(0, buf), opts));
      const w = COPY_BYTES / (await timeOp(wr.id, () => m.write(0, buf), opts));
      return { [rd.id]: r, [wr.id]: w };
    },
  ]);
  vm?.close();
  for (const spec of [rd, wr]) record(ctx, jss, spec);
  for (const spec of [cr, cw, pr, pw]) record(ctx, cs, spec);
}

async function guestRead(ctx) {
  const warm = { id: 'guest.read-gbps', unit: 'GB/s', baseline: 'c.guest-copy-gbps', valueGoal: '>= 2', note: '' };
  const first = {
    id: 'guest.read-first-gbps',
    unit: 'GB/s',
    baseline: 'c.guest-copy-first-gbps',
    valueGoal: '>= 0.5',
    note: '',
  };
  const cWarm = {
    id: 'c.guest-copy-gbps',
    unit: 'GB/s',
    note: 'a C guest at CPL3 copying the same 64 MiB into its own buffer (2 MiB guest pages, as vm.guest), warm',
  };
  const cFirst = {
    id: 'c.guest-copy-first-gbps',
    unit: 'GB/s',
    note: 'the same C guest, its first copy of freshly written memory',
  };
  if (ctx.kvmReason) return skipAll(ctx, [warm, first, cWarm, cFirst], ctx.kvmReason);
  // Above the low memory vm.guest's own program may use.
  const gpa = 0x40000000;
  const target = new Uint8Array(COPY_BYTES);
  const jsSide = async () => {
    const vm = realKvm(ctx).createVm();
    try {
      const gm = vm.createGuestMemfd({ size: COPY_BYTES, mmap: true, initShared: true });
      const m = gm.map();
      m.fill(0, COPY_BYTES, 0x3c);
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: gpa, size: COPY_BYTES, guestMemfd: gm, userspace: m });
      // The helper guest is made by a small read first, so the timed first read is of the data only.
      if ((await vm.guest.read(gpa, 8))[7] !== 0x3c)
        throw new Error('vm.guest.read returned other bytes than the host wrote');
      let t = process.hrtime.bigint();
      await vm.guest.readInto(gpa + 8, target.subarray(0, COPY_BYTES - 8));
      const firstGbps = (COPY_BYTES - 8) / Number(process.hrtime.bigint() - t);
      if (target[0] !== 0x3c || target[COPY_BYTES - 9] !== 0x3c)
        throw new Error('vm.guest.readInto returned other bytes than the host wrote');
      const warms = [];
      for (let i = 0; i < 3; i++) {
        t = process.hrtime.bigint();
        await vm.guest.readInto(gpa, target);
        warms.push(COPY_BYTES / Number(process.hrtime.bigint() - t));
      }
      return { [warm.id]: median(warms), [first.id]: firstGbps };
    } finally {
      vm.close();
    }
  };
  const cSideGuest = () => {
    if (!ctx.bin.guest_copy_c) throw new Error(`guest_copy_c baseline did not compile: ${ctx.binErrors.guest_copy_c}`);
    const [out] = runJsonLines(ctx.bin.guest_copy_c, [String(COPY_BYTES), '3']);
    return { [cWarm.id]: median(out.warm), [cFirst.id]: out.first };
  };
  const [js, c] = await alternate(ROUNDS, [jsSide, cSideGuest]);
  warm.note = `await vm.guest.readInto(gpa, a reused 64 MiB Uint8Array) of a guest_memfd slot, warm (median of 3 per round); ${ROUNDS} rounds alternating with the C guest`;
  first.note = 'the first vm.guest.readInto of 64 MiB just written by the host, on a VM whose helper guest exists';
  record(ctx, js, warm, 'vm.guest unavailable: ');
  record(ctx, js, first, 'vm.guest unavailable: ');
  record(ctx, c, cWarm);
  record(ctx, c, cFirst);
}
