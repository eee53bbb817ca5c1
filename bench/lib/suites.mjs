// What the benchmark measures, as steps the runner shows progress for. Each step pushes results
// (or skips with the reason) into ctx.results; nothing here invents a figure.
import { PAGE, SIZES, scaleLinear, skipped } from './report.mjs';
import { runJsonLines, timeOp } from './harness.mjs';

export function reason(e) {
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? e}`;
}

// ---- conversions: extent map (public API, simulator) against per-page loops (C++) ----

export function convertSteps(ctx) {
  /** @type {{ label: string, run: () => unknown }[]} */
  const steps = SIZES.map((s) => ({ label: `convert.extent-map.${s.key}`, run: () => extentMapConvert(ctx, s) }));
  steps.push({ label: 'convert.per-page.* and floor (C++ radix tree / byte array)', run: () => perPageConvert(ctx) });
  return steps;
}

let simVm;
function simGuestMemfd(ctx, size) {
  if (!simVm) simVm = ctx.lib.open({ backend: 'sim', profile: 'rfc-v5' }).createVm();
  // rfc-v5's uAPI: flag bit 0 is INIT_MAPPABLE, its only flag (every v5 file starts shared anyway).
  return simVm.createGuestMemfd({ size, flags: 1 });
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
    const ns = await timeOp(
      id,
      () => {
        gm.share(0, size);
        gm.unshare(0, size);
      },
      { batch: 50, time: ctx.quick ? 150 : 600 },
    );
    // The timed calls must have done the conversion they claim.
    const st = gm.states(0, size);
    const ok = st.length === 1 && st[0].state === 'private' && st[0].length === size;
    ctx.results.push({
      id,
      value: ns,
      unit: 'ns',
      note: ok
        ? 'gm.share + gm.unshare of the whole file, simulator rfc-v5, from JS'
        : `unexpected states after unshare: ${JSON.stringify(st)}`,
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
    for (const id of ids)
      ctx.results.push(skipped(id, 'ns', `per_page baseline did not compile: ${ctx.binErrors.per_page}`));
    return;
  }
  // Full runs measure 64 GiB whole and 1 TiB on a 64 GiB window; quick runs use a 1 GiB window.
  const samplePages = ctx.quick ? 2 ** 18 : 2 ** 24;
  const args = [
    ...SIZES.map((s) => String(s.bytes)),
    '--sample-pages',
    String(samplePages),
    '--floor-sample-pages',
    String(2 ** 26),
    '--reps',
    '7',
  ];
  let lines;
  try {
    lines = runJsonLines(exe, args);
  } catch (e) {
    for (const id of ids) ctx.results.push(skipped(id, 'ns', reason(e)));
    return;
  }
  for (const l of lines) {
    const s = SIZES.find((x) => x.bytes === l.bytes);
    if (!s) throw new Error(`per-page result for an unknown size: ${l.bytes} bytes`);
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
      r.scaledFrom = {
        pages: l.measuredPages,
        bytes: l.measuredPages * PAGE,
        ns: l.ns,
        factor: l.pages / l.measuredPages,
      };
      r.note += `; measured on ${formatBytes(l.measuredPages * PAGE)}${floor ? '' : ' at the top of the range (full tree height)'} and scaled linearly x${l.pages / l.measuredPages}`;
    }
    if (s.key === '1tib' && !floor) r.goal = '>= 100000';
    ctx.results.push(r);
  }
}

function formatBytes(b) {
  /** @type {[number, string][]} */
  const units = [
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [f, u] of units) if (b >= f) return `${b / f} ${u}`;
  return `${b} B`;
}

// ---- fragmentation: 1,000,000 alternating extents in the native ExtentMap ----

export function fragmentedSteps(ctx) {
  return [
    { label: 'fragmented.random-page-op (native ExtentMap from JS)', run: () => fragmented(ctx) },
    { label: 'fragmented.random-page-op.cxx (extent map micro bench)', run: () => fragmentedCxx(ctx) },
    { label: 'sim.page-op and sim.states-page (public API on the simulator)', run: () => simHotCalls(ctx) },
  ];
}

// ---- the simulator's hot calls from JS: one-page conversions and states() ----

async function simHotCalls(ctx) {
  const kvm = ctx.lib.open({ backend: 'sim', profile: 'rfc-v5' });
  try {
    const g = kvm.createVm().createGuestMemfd({ size: 1 << 30, flags: 1 });
    let i = 0;
    // Each sample alternates unshare and share of one page among 1024, so the map stays small.
    const op = await timeOp(
      'sim.page-op',
      () => {
        const o = (i++ & 1023) * PAGE;
        g.unshare(o, PAGE);
        g.share(o, PAGE);
      },
      { batch: 500, time: ctx.quick ? 300 : 1500, iterations: 20 },
    );
    ctx.results.push({
      id: 'sim.page-op',
      value: op / 2,
      unit: 'ns',
      baseline: 'js.napi-floor',
      valueGoal: '<= 100',
      note: "one-page gm.share or gm.unshare on the simulator ('rfc-v5', a 1 GiB file), public API from JS",
    });
    g.unshare(0, PAGE);
    const st = await timeOp('sim.states-page', () => g.states(0, PAGE), {
      batch: 1000,
      time: ctx.quick ? 300 : 1500,
      iterations: 20,
    });
    ctx.results.push({
      id: 'sim.states-page',
      value: st,
      unit: 'ns',
      baseline: 'js.napi-floor',
      valueGoal: '<= 200',
      note: 'gm.states(0, 4096) on the simulator, public API from JS',
    });
  } catch (e) {
    for (const id of ['sim.page-op', 'sim.states-page']) ctx.results.push(skipped(id, 'ns', reason(e)));
  } finally {
    kvm.close();
  }
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
  const rnd = () => (seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % EXTENTS;
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
  const ns = await timeOp(
    'fragmented.random-page-op',
    () => {
      const { fwd, back } = pools[n++ & 15];
      for (let i = 0; i < K; i++) {
        const p = fwd[i];
        map.assign(p, p + 1, 1 - (p & 1));
      }
      for (let i = 0; i < K; i++) {
        const p = back[i];
        map.assign(p, p + 1, p & 1);
      }
    },
    { time: ctx.quick ? 300 : 1500, iterations: 20 },
  );
  const count = map.extentCount();
  // The N-API floor: a raw binding call that does no work, measured in this run.
  const floor = await timeOp('js.napi-floor', () => map.extentCount(), {
    batch: 1000,
    time: ctx.quick ? 200 : 800,
    iterations: 20,
  });
  ctx.results.push({
    id: 'js.napi-floor',
    value: floor,
    unit: 'ns',
    note: 'one ExtentMap.extentCount() call from JS: the cost of crossing N-API with no work behind it',
  });
  ctx.results.push({
    id: 'fragmented.random-page-op',
    value: ns / (2 * K),
    unit: 'ns',
    baseline: 'js.napi-floor',
    note: `median over samples of ${2 * K} random one-page assign() calls on ${EXTENTS.toLocaleString('en-US')} alternating extents (map holds ${count.toLocaleString('en-US')} after), native ExtentMap from JS`,
  });
}

function fragmentedCxx(ctx) {
  const id = 'fragmented.random-page-op.cxx';
  const exe = ctx.bin.extent_map_micro;
  if (!exe) {
    const why = ctx.binErrors.extent_map_micro
      ? `did not compile: ${ctx.binErrors.extent_map_micro}`
      : 'bench/extent_map_micro.cc is not there';
    ctx.results.push(skipped(id, 'ns', why, { baseline: 'fragmented.random-page-op' }));
    return;
  }
  try {
    const lines = runJsonLines(exe, []);
    const hit = lines.find(
      (l) => /random/.test(l.id ?? l.name ?? '') && typeof (l.ns ?? l.medianNs ?? l.value) === 'number',
    );
    if (!hit) throw new Error(`no random-op figure in its output: ${JSON.stringify(lines).slice(0, 200)}`);
    ctx.results.push({
      id,
      value: hit.ns ?? hit.medianNs ?? hit.value,
      unit: 'ns',
      note: 'bench/extent_map_micro.cc (C++, no N-API)',
    });
  } catch (e) {
    ctx.results.push(skipped(id, 'ns', reason(e)));
  }
}
