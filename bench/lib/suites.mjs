// What the benchmark measures, as steps the runner shows progress for. Each step pushes results
// (or skips with the reason) into ctx.results; nothing here invents a figure.
import { median, PAGE, SIZES, scaleLinear, skipped } from './report.mjs';
import { runJsonLines, timeAsyncOp, timeOp } from './harness.mjs';

const GMEM_FLAGS_CAP = 244; // KVM_CAP_GUEST_MEMFD_FLAGS, the cap the C baseline asks for too
const COPY_BYTES = 64 * 1024 * 1024;

function reason(e) {
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? e}`;
}

// ---- conversions: extent map (public API, simulator) against per-page loops (C++) ----

export function convertSteps(ctx) {
  const steps = SIZES.map((s) => ({ label: `convert.extent-map.${s.key}`, run: () => extentMapConvert(ctx, s) }));
  steps.push({ label: 'convert.per-page.* and floor (C++ radix tree / byte array)', run: () => perPageConvert(ctx) });
  return steps;
}

let simVm;
function simGuestMemfd(ctx, size) {
  if (!simVm) simVm = ctx.lib.open({ backend: 'sim', profile: 'rfc-v5' }).createVm();
  return simVm.createGuestMemfd({ size, mmap: true, initShared: true });
}

async function extentMapConvert(ctx, s) {
  const id = `convert.extent-map.${s.key}`;
  let gm;
  try {
    if (!simVm) warmUp(simGuestMemfd(ctx, 2 * PAGE));
    gm = simGuestMemfd(ctx, s.bytes);
  } catch (e) {
    ctx.results.push(skipped(id, 'ns', `simulator (rfc-v5) unavailable: ${reason(e)}`));
    return;
  }
  try {
    const size = s.bytes;
    const ns = await timeOp(id, () => {
      gm.share(0, size);
      gm.unshare(0, size);
    }, { batch: 50, time: ctx.quick ? 150 : 600 });
    // The timed calls must have done the conversion they claim.
    const st = gm.states(0, size);
    const ok = st.length === 1 && st[0].state === 'private' && st[0].length === size;
    ctx.results.push({
      id,
      value: ns,
      unit: 'ns',
      note: ok ? 'gm.share + gm.unshare of the whole file, simulator rfc-v5, from JS' : `unexpected states after unshare: ${JSON.stringify(st)}`,
    });
  } catch (e) {
    ctx.results.push(skipped(id, 'ns', reason(e)));
  } finally {
    gm.close();
  }
}

// Lets the JIT settle on the conversion path before the first size is timed.
function warmUp(gm) {
  for (let i = 0; i < 20_000; i++) {
    gm.share(0, PAGE * (1 + (i & 1)));
    gm.unshare(0, PAGE * (1 + (i & 1)));
  }
  gm.close();
}

function perPageConvert(ctx) {
  const exe = ctx.bin.per_page;
  const ids = SIZES.flatMap((s) => [`convert.per-page.${s.key}`, `convert.per-page-floor.${s.key}`]);
  if (!exe) {
    for (const id of ids) ctx.results.push(skipped(id, 'ns', `per_page baseline did not compile: ${ctx.binErrors.per_page}`));
    return;
  }
  // Full runs measure 64 GiB whole and 1 TiB on a 64 GiB window; quick runs use a 1 GiB window.
  const samplePages = ctx.quick ? 2 ** 18 : 2 ** 24;
  const args = [...SIZES.map((s) => String(s.bytes)), '--sample-pages', String(samplePages), '--floor-sample-pages', String(2 ** 26), '--reps', ctx.quick ? '3' : '7'];
  let lines;
  try {
    lines = runJsonLines(exe, args);
  } catch (e) {
    for (const id of ids) ctx.results.push(skipped(id, 'ns', reason(e)));
    return;
  }
  for (const l of lines) {
    const s = SIZES.find((x) => x.bytes === l.bytes);
    const floor = l.kind === 'floor';
    const id = `convert.${floor ? 'per-page-floor' : 'per-page'}.${s.key}`;
    const r = {
      id,
      value: scaleLinear(l.ns, l.measuredPages, l.pages),
      unit: 'ns',
      baseline: `convert.extent-map.${s.key}`,
      note: floor
        ? 'one byte store per page into a flat array (share then unshare), C++ -O2'
        : 'xa_store-like locked store per page into a 64-way radix tree (share then unshare), C++ -O2, steady state',
    };
    if (l.measuredPages < l.pages) {
      r.scaledFrom = { pages: l.measuredPages, bytes: l.measuredPages * PAGE, ns: l.ns, factor: l.pages / l.measuredPages };
      r.note += `; measured on ${formatBytes(l.measuredPages * PAGE)}${floor ? '' : ' at the top of the range (full tree height)'} and scaled linearly x${l.pages / l.measuredPages}`;
    }
    if (s.key === '1tib' && !floor) r.goal = '>= 100000';
    ctx.results.push(r);
  }
}

function formatBytes(b) {
  for (const [f, u] of [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']]) if (b >= f) return `${b / f} ${u}`;
  return `${b} B`;
}

// ---- fragmentation: 1,000,000 alternating extents in the native ExtentMap ----

export function fragmentedSteps(ctx) {
  return [
    { label: 'fragmented.random-page-op (native ExtentMap from JS)', run: () => fragmented(ctx) },
    { label: 'fragmented.random-page-op.cxx (extent map micro bench)', run: () => fragmentedCxx(ctx) },
  ];
}

const EXTENTS = 1_000_000;

async function fragmented(ctx) {
  let map;
  try {
    map = new ctx.native.ExtentMap(EXTENTS, 0);
    for (let p = 1; p < EXTENTS; p += 2) map.assign(p, p + 1, 1);
    if (map.extentCount() !== EXTENTS) throw new Error(`expected ${EXTENTS} extents, got ${map.extentCount()}`);
  } catch (e) {
    ctx.results.push(skipped('fragmented.random-page-op', 'ns', `native ExtentMap unavailable: ${reason(e)}`));
    ctx.results.push(skipped('fragmented.bytes-per-extent', 'B', `native ExtentMap unavailable: ${reason(e)}`));
    return;
  }
  ctx.results.push({
    id: 'fragmented.bytes-per-extent',
    value: map.bytesUsed() / map.extentCount(),
    unit: 'B',
    goal: '<= 32',
    note: `bytesUsed() / extentCount() with ${map.extentCount().toLocaleString('en-US')} extents`,
  });
  // Each sample flips K random pages to the other state, then flips them back in another random
  // order: 2K random one-page conversions, and the map is back to 1,000,000 extents.
  const K = 1000;
  let seed = 0x9e3779b9;
  const rnd = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % EXTENTS);
  const pools = Array.from({ length: 16 }, () => {
    const fwd = Uint32Array.from({ length: K }, rnd);
    const back = Uint32Array.from(fwd).reverse();
    for (let i = back.length - 1; i > 0; i--) {
      const j = rnd() % (i + 1);
      [back[i], back[j]] = [back[j], back[i]];
    }
    return { fwd, back };
  });
  let n = 0;
  const ns = await timeOp('fragmented.random-page-op', () => {
    const { fwd, back } = pools[n++ & 15];
    for (let i = 0; i < K; i++) {
      const p = fwd[i];
      map.assign(p, p + 1, 1 - (p & 1));
    }
    for (let i = 0; i < K; i++) {
      const p = back[i];
      map.assign(p, p + 1, p & 1);
    }
  }, { time: ctx.quick ? 300 : 1500, iterations: 20 });
  const count = map.extentCount();
  ctx.results.push({
    id: 'fragmented.random-page-op',
    value: ns / (2 * K),
    unit: 'ns',
    note: `median over samples of ${2 * K} random one-page assign() calls on ${EXTENTS.toLocaleString('en-US')} alternating extents (map holds ${count.toLocaleString('en-US')} after), native ExtentMap from JS`,
  });
}

function fragmentedCxx(ctx) {
  const id = 'fragmented.random-page-op.cxx';
  const exe = ctx.bin.extent_map_micro;
  if (!exe) {
    const why = ctx.binErrors.extent_map_micro ? `did not compile: ${ctx.binErrors.extent_map_micro}` : 'bench/extent_map_micro.cc is not there';
    ctx.results.push(skipped(id, 'ns', why, { baseline: 'fragmented.random-page-op' }));
    return;
  }
  try {
    const lines = runJsonLines(exe, []);
    const hit = lines.find((l) => /random/.test(l.id ?? l.name ?? '') && typeof (l.ns ?? l.medianNs ?? l.value) === 'number');
    if (!hit) throw new Error(`no random-op figure in its output: ${JSON.stringify(lines).slice(0, 200)}`);
    ctx.results.push({ id, value: hit.ns ?? hit.medianNs ?? hit.value, unit: 'ns', note: 'bench/extent_map_micro.cc (C++, no N-API)' });
  } catch (e) {
    ctx.results.push(skipped(id, 'ns', reason(e)));
  }
}

// ---- the real kernel: ioctl, KVM_RUN loop and guest_memfd copies, JS against C ----

export function kvmSteps(ctx) {
  return [
    { label: 'kvm.check-extension / c.check-extension', run: () => checkExtension(ctx) },
    { label: 'kvm.io-exit-roundtrip / c.io-exit-roundtrip', run: () => ioExit(ctx) },
    { label: 'mapping.read/write-gbps / c.memcpy-*-gbps', run: () => copies(ctx) },
    { label: 'guest.read-gbps', run: () => guestRead(ctx) },
  ];
}

function skipAll(ctx, specs, why) {
  for (const [id, unit, baseline] of specs) ctx.results.push(skipped(id, unit, why, baseline ? { baseline } : {}));
}

/** Runs one C measurement or records the skip; returns its lines or null. */
function runC(ctx, ids, args) {
  if (!ctx.bin.kvm_c) {
    skipAll(ctx, ids, `kvm_c baseline did not compile: ${ctx.binErrors.kvm_c}`);
    return null;
  }
  try {
    return runJsonLines(ctx.bin.kvm_c, args);
  } catch (e) {
    skipAll(ctx, ids, reason(e));
    return null;
  }
}

let kvmSystem;
function realKvm(ctx) {
  kvmSystem ??= ctx.lib.open({ backend: 'kvm' });
  return kvmSystem;
}

async function checkExtension(ctx) {
  const js = ['kvm.check-extension', 'ns', 'c.check-extension'];
  const c = ['c.check-extension', 'ns'];
  if (ctx.kvmReason) return skipAll(ctx, [js, c], ctx.kvmReason);
  const calls = ctx.quick ? 100_000 : 1_000_000;
  const lines = runC(ctx, [c], ['check', String(calls), ctx.quick ? '3' : '7']);
  if (lines) ctx.results.push({ id: 'c.check-extension', value: lines[0].ns, unit: 'ns', note: `ioctl(/dev/kvm, KVM_CHECK_EXTENSION, ${GMEM_FLAGS_CAP}) in C, median of batches of ${calls}` });
  try {
    const kvm = realKvm(ctx);
    const ns = await timeOp('kvm.check-extension', () => kvm.checkExtension(GMEM_FLAGS_CAP), { batch: 1000, time: ctx.quick ? 300 : 1500 });
    ctx.results.push({ id: js[0], value: ns, unit: 'ns', baseline: js[2], goal: '<= 1.3', note: `kvm.checkExtension(${GMEM_FLAGS_CAP}) on the system fd` });
  } catch (e) {
    skipAll(ctx, [js], reason(e));
  }
}

// Real mode at gpa 0: `out 0x10, al` then a jump back to it, so every KVM_RUN is one io exit.
const OUT_LOOP = Uint8Array.from([0xe6, 0x10, 0xeb, 0xfc]);

async function ioExit(ctx) {
  const js = ['kvm.io-exit-roundtrip', 'ns', 'c.io-exit-roundtrip'];
  const jsSync = ['kvm.io-exit-roundtrip-sync', 'ns', 'c.io-exit-roundtrip'];
  const c = ['c.io-exit-roundtrip', 'ns'];
  if (ctx.kvmReason) return skipAll(ctx, [js, jsSync, c], ctx.kvmReason);
  const runs = ctx.quick ? 20_000 : 100_000;
  const lines = runC(ctx, [c], ['ioexit', String(runs), ctx.quick ? '3' : '7']);
  if (lines) ctx.results.push({ id: 'c.io-exit-roundtrip', value: lines[0].ns, unit: 'ns', note: `KVM_RUN loop in C, guest doing out 0x10 in a loop, median of batches of ${runs}` });
  let vm;
  try {
    vm = realKvm(ctx).createVm();
    const gm = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const m = gm.map();
    m.write(0, OUT_LOOP);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gm, userspace: m });
    const vcpu = vm.createVcpu(0);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ cs: { ...sregs.cs, base: 0n, selector: 0 } });
    vcpu.setRegs({ rip: 0n, rflags: 2n });
    const first = await vcpu.run();
    if (first.reason !== 'io' || first.port !== 0x10) throw new Error(`guest did not exit on io: ${JSON.stringify(first)}`);
    const opts = { batch: 200, time: ctx.quick ? 400 : 2000 };
    const ns = await timeAsyncOp(js[0], () => vcpu.run(), opts);
    ctx.results.push({ id: js[0], value: ns, unit: 'ns', baseline: js[2], goal: '<= 1.3', note: 'await vcpu.run() per io exit (guest doing out in a loop)' });
    const nsSync = await timeOp(jsSync[0], () => vcpu.runSync(), opts);
    ctx.results.push({ id: jsSync[0], value: nsSync, unit: 'ns', baseline: jsSync[2], goal: '<= 1.3', note: 'vcpu.runSync() per io exit' });
  } catch (e) {
    const why = `vCPU path unavailable: ${reason(e)}`;
    for (const spec of [js, jsSync]) if (!ctx.results.some((r) => r.id === spec[0])) skipAll(ctx, [spec], why);
  } finally {
    vm?.close();
  }
}

async function copies(ctx) {
  const rd = ['mapping.read-gbps', 'GB/s', 'c.memcpy-read-gbps'];
  const wr = ['mapping.write-gbps', 'GB/s', 'c.memcpy-write-gbps'];
  const cr = ['c.memcpy-read-gbps', 'GB/s'];
  const cw = ['c.memcpy-write-gbps', 'GB/s'];
  if (ctx.kvmReason) return skipAll(ctx, [rd, wr, cr, cw], ctx.kvmReason);
  const reps = ctx.quick ? '5' : '21';
  const lines = runC(ctx, [cr, cw], ['memcpy', String(COPY_BYTES), reps]);
  if (lines) {
    for (const l of lines) ctx.results.push({ id: l.id, value: l.gbps, unit: 'GB/s', note: `memcpy of 64 MiB ${l.id.includes('read') ? 'from' : 'to'} a MMAP|INIT_SHARED guest_memfd mmap in C, median of ${reps}` });
  }
  let vm;
  try {
    vm = realKvm(ctx).createVm();
    const gm = vm.createGuestMemfd({ size: COPY_BYTES, mmap: true, initShared: true });
    const m = gm.map();
    m.fill(0, COPY_BYTES, 0xa5); // faults every page in before timing, as the C side does
    const buf = Buffer.alloc(COPY_BYTES, 0x5a);
    const opts = { time: ctx.quick ? 300 : 1500, iterations: ctx.quick ? 5 : 21, warmupTime: 0 };
    const nsRead = await timeOp(rd[0], () => m.readInto(0, buf), opts);
    ctx.results.push({ id: rd[0], value: COPY_BYTES / nsRead, unit: 'GB/s', baseline: rd[2], goal: '>= 0.8', note: 'mapping.readInto(0, 64 MiB Buffer), guarded copy' });
    const nsWrite = await timeOp(wr[0], () => m.write(0, buf), opts);
    ctx.results.push({ id: wr[0], value: COPY_BYTES / nsWrite, unit: 'GB/s', baseline: wr[2], goal: '>= 0.8', note: 'mapping.write(0, 64 MiB Buffer), guarded copy' });
  } catch (e) {
    for (const spec of [rd, wr]) if (!ctx.results.some((r) => r.id === spec[0])) skipAll(ctx, [spec], reason(e));
  } finally {
    vm?.close();
  }
}

async function guestRead(ctx) {
  const id = 'guest.read-gbps';
  if (ctx.kvmReason) return skipAll(ctx, [[id, 'GB/s']], ctx.kvmReason);
  let vm;
  try {
    vm = realKvm(ctx).createVm();
    const gm = vm.createGuestMemfd({ size: COPY_BYTES, mmap: true, initShared: true });
    const m = gm.map();
    m.fill(0, COPY_BYTES, 0x3c);
    // Above the low memory vm.guest's own program may use.
    const gpa = 0x40000000;
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: gpa, size: COPY_BYTES, guestMemfd: gm, userspace: m });
    const check = await vm.guest.read(gpa, 4096);
    if (check.length !== 4096 || check[0] !== 0x3c || check[4095] !== 0x3c) throw new Error('vm.guest.read returned other bytes than the host wrote');
    const samples = [];
    for (let i = 0; i < (ctx.quick ? 2 : 5); i++) {
      const t0 = process.hrtime.bigint();
      const b = await vm.guest.read(gpa, COPY_BYTES);
      samples.push(Number(process.hrtime.bigint() - t0));
      if (b.length !== COPY_BYTES) throw new Error(`vm.guest.read gave ${b.length} bytes`);
    }
    ctx.results.push({ id, value: COPY_BYTES / median(samples), unit: 'GB/s', note: `await vm.guest.read(gpa, 64 MiB) (a guest_memfd slot, read by the built-in guest program), median of ${samples.length}` });
  } catch (e) {
    skipAll(ctx, [[id, 'GB/s']], `vm.guest.read unavailable: ${reason(e)}`);
  } finally {
    vm?.close();
  }
}
