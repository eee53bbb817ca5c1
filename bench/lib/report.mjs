// Pure helpers of the benchmark report: ids, linear scaling of sampled runs, ratios, goals and the
// printed table. No I/O here, so the unit tests can pin every rule down.

export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;
export const TIB = 1024 * GIB;
export const PAGE = 4096;

/** The conversion sizes, smallest first, with the suffix each id carries. */
export const SIZES = [
  { key: '4kib', bytes: 4 * KIB, label: '4 KiB' },
  { key: '2mib', bytes: 2 * MIB, label: '2 MiB' },
  { key: '1gib', bytes: GIB, label: '1 GiB' },
  { key: '64gib', bytes: 64 * GIB, label: '64 GiB' },
  { key: '1tib', bytes: TIB, label: '1 TiB' },
];

/** Time for `totalPages` pages from a run over `measuredPages` of them, assuming cost linear in pages. */
export function scaleLinear(ns, measuredPages, totalPages) {
  if (!(measuredPages > 0) || !(totalPages >= measuredPages)) {
    throw new RangeError(`cannot scale ${measuredPages} measured pages to ${totalPages}`);
  }
  return (ns * totalPages) / measuredPages;
}

/** A figure that could not be measured: no value, and the reason. */
export function skipped(id, unit, reason, extra = {}) {
  return { id, value: null, unit, skipped: String(reason), ...extra };
}

/**
 * Fills in `ratio` = value / baseline's value for every result naming a measured baseline, and
 * whether its goal is met. Results whose baseline is missing or skipped get no ratio.
 */
export function applyRatios(results) {
  const byId = new Map(results.map((r) => [r.id, r]));
  return results.map((r) => {
    const out = { ...r };
    delete out.ratio;
    delete out.goalMet;
    if (r.baseline === undefined || r.value === null || r.value === undefined) return out;
    const b = byId.get(r.baseline);
    if (!b || b.value === null || b.value === undefined || b.value === 0) return out;
    if (b.unit !== r.unit) throw new Error(`${r.id} (${r.unit}) cannot compare with ${b.id} (${b.unit})`);
    // Rounds that alternated with their baseline's: the median of each round's own ratio, so a slow
    // spell of the shared machine weighs on both figures of the rounds it falls in, not on one
    // side's median only. Otherwise the ratio of the medians.
    const ra = r.roundValues;
    const rb = b.roundValues;
    if (Array.isArray(ra) && Array.isArray(rb) && ra.length === rb.length && ra.length > 0 && rb.every((x) => x > 0)) {
      out.ratio = median(ra.map((x, i) => x / rb[i]));
      out.ratioOfMedians = r.value / b.value;
    } else out.ratio = r.value / b.value;
    if (r.goal) out.goalMet = meetsGoal(out.ratio, r.goal);
    return out;
  });
}

/** Goals are written like '>= 100000' or '<= 1.3' and apply to the ratio (or the value, without a baseline). */
export function meetsGoal(x, goal) {
  const m = /^\s*(<=|>=)\s*([0-9.e+]+)\s*$/.exec(goal);
  if (!m) throw new Error(`bad goal ${goal}`);
  const bound = Number(m[2]);
  return m[1] === '<=' ? x <= bound : x >= bound;
}

/** Value goals (no baseline), e.g. bytes per extent. */
export function applyValueGoals(results) {
  return results.map((r) => {
    // A goal on the value itself, the baseline beside it only for its ratio (guest.read's GB/s).
    if (r.valueGoal && r.value !== null && r.value !== undefined)
      return { ...r, goalMet: meetsGoal(r.value, r.valueGoal) };
    if (r.baseline !== undefined || !r.goal || r.value === null || r.value === undefined) return r;
    return { ...r, goalMet: meetsGoal(r.value, r.goal) };
  });
}

/** Human form of a value in its unit: ns grow into us/ms/s; other units get 3-4 significant digits. */
export function formatValue(value, unit) {
  if (value === null || value === undefined) return 'skipped';
  if (unit === 'ns') {
    /** @type {[number, string][]} */
    const steps = [
      [1e9, 's'],
      [1e6, 'ms'],
      [1e3, 'us'],
    ];
    for (const [f, u] of steps) if (Math.abs(value) >= f * 0.9995) return `${sig(value / f)} ${u}`;
    return `${sig(value)} ns`;
  }
  return `${sig(value)} ${unit}`;
}

export function formatRatio(ratio) {
  if (ratio === undefined || ratio === null) return '';
  if (ratio >= 1000) return `${Math.round(ratio).toLocaleString('en-US')}x`;
  return `${sig(ratio)}x`;
}

function sig(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 999.5) return Math.round(x).toLocaleString('en-US');
  return x.toPrecision(3);
}

/** The printed table: one row per result; ratios say what they divide. */
export function formatTable(results) {
  const rows = [['id', 'value', 'baseline', 'ratio', 'goal', 'note']];
  for (const r of results) {
    const goal = r.goal ? `${r.goal}${r.goalMet === undefined ? '' : r.goalMet ? ' met' : ' MISSED'}` : '';
    const note = r.skipped ? `skipped: ${r.skipped}` : (r.note ?? '');
    const valueGoal = r.valueGoal
      ? `${r.valueGoal} ${r.unit}${r.goalMet === undefined ? '' : r.goalMet ? ' met' : ' MISSED'}`
      : '';
    rows.push([r.id, formatValue(r.value, r.unit), r.baseline ?? '', formatRatio(r.ratio), goal || valueGoal, note]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => (c === 5 ? 0 : row[c].length))));
  const line = (row) =>
    row
      .map((cell, c) => (c === 5 ? cell : c === 1 || c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(rows[0]), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}

/** Every id a run must produce (with a value or a skip reason), in report order. */
export function requiredIds() {
  const ids = [];
  for (const s of SIZES) ids.push(`convert.extent-map.${s.key}`, `convert.per-page.${s.key}`);
  ids.push('convert.per-page-floor.1tib');
  ids.push('fragmented.random-page-op', 'fragmented.bytes-per-extent', 'sim.page-op', 'sim.states-page');
  ids.push('kvm.check-extension', 'c.check-extension', 'napi.check-extension', 'c.check-extension-in-node');
  ids.push('napi.call');
  ids.push('kvm.io-exit-roundtrip', 'c.io-exit-roundtrip', 'napi.io-exit-roundtrip', 'c.io-exit-roundtrip-in-node');
  ids.push('mapping.read-gbps', 'mapping.write-gbps', 'c.memcpy-read-gbps', 'c.memcpy-write-gbps');
  ids.push('c.probe-memcpy-read-gbps', 'c.probe-memcpy-write-gbps');
  ids.push('guest.read-gbps', 'guest.read-first-gbps', 'c.guest-copy-gbps', 'c.guest-copy-first-gbps');
  return ids;
}

/** Every id a run reports, required or not, in the order the table shows them. */
export function reportOrder() {
  const ids = [];
  for (const s of SIZES)
    ids.push(`convert.extent-map.${s.key}`, `convert.per-page.${s.key}`, `convert.per-page-floor.${s.key}`);
  ids.push(
    'js.napi-floor',
    'fragmented.random-page-op',
    'fragmented.random-page-op.cxx',
    'fragmented.bytes-per-extent',
  );
  ids.push('sim.page-op', 'sim.states-page');
  ids.push('kvm.check-extension', 'c.check-extension', 'napi.check-extension', 'c.check-extension-in-node');
  ids.push('napi.call');
  ids.push('kvm.io-exit-roundtrip', 'kvm.io-exit-roundtrip-sync', 'c.io-exit-roundtrip');
  ids.push('napi.io-exit-roundtrip', 'c.io-exit-roundtrip-in-node');
  ids.push('mapping.read-gbps', 'c.memcpy-read-gbps', 'c.probe-memcpy-read-gbps');
  ids.push('mapping.write-gbps', 'c.memcpy-write-gbps', 'c.probe-memcpy-write-gbps');
  ids.push('guest.read-gbps', 'c.guest-copy-gbps', 'guest.read-first-gbps', 'c.guest-copy-first-gbps');
  return ids;
}

/** Results sorted into report order; ids not listed keep their relative order at the end. */
export function sortForReport(results) {
  const order = new Map(reportOrder().map((id, i) => [id, i]));
  const rank = (id) => order.get(id) ?? order.size;
  return results
    .map((r, i) => [r, i])
    .sort((a, b) => rank(a[0].id) - rank(b[0].id) || a[1] - b[1])
    .map(([r]) => r);
}

/** Ids required but absent from the results (a bug in the runner, never acceptable in a report). */
export function missingIds(results) {
  const have = new Set(results.map((r) => r.id));
  return requiredIds().filter((id) => !have.has(id));
}

/** Median of a list of numbers. */
export function median(xs) {
  if (xs.length === 0) throw new RangeError('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** The ids of the speed goals the README's goals table shows, in its order. */
export const GOAL_IDS = [
  'guest.read-gbps',
  'guest.read-first-gbps',
  'kvm.check-extension',
  'napi.check-extension',
  'c.check-extension-in-node',
  'kvm.io-exit-roundtrip',
  'kvm.io-exit-roundtrip-sync',
  'napi.io-exit-roundtrip',
  'c.io-exit-roundtrip-in-node',
  'sim.page-op',
  'sim.states-page',
  'mapping.read-gbps',
  'mapping.write-gbps',
];

/**
 * The README's goals table (Markdown) from a run's results: each goal with its value, the
 * baseline measured in the same run, their ratio and whether the goal held. A ratio goal is on
 * the ratio, a value goal on the value (the ratio then only shows the distance to the baseline).
 */
export function goalsMarkdown(results) {
  const byId = new Map(results.map((r) => [r.id, r]));
  // A skip reason may hold compiler output: no cell may end the row early.
  const cell = (/** @type {string} */ s) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
  const rows = ['| figure | value | baseline (same run) | ratio | goal | |', '|---|---|---|---|---|---|'];
  for (const id of GOAL_IDS) {
    const r = byId.get(id);
    if (!r) throw new Error(`goalsMarkdown: no result ${id}`);
    const base = r.baseline ? byId.get(r.baseline) : undefined;
    const baseCell = base ? `\`${base.id}\` ${formatValue(base.value, base.unit)}` : (r.baseline ?? '');
    const goal = r.valueGoal ? `${r.valueGoal} ${r.unit}` : r.goal ? `ratio ${r.goal}` : '';
    const verdict = r.skipped
      ? cell(`skipped: ${r.skipped}`)
      : r.goalMet === undefined
        ? ''
        : r.goalMet
          ? 'met'
          : '**missed**';
    const spread = r.spread ? ` (${formatValue(r.spread.min, r.unit)} – ${formatValue(r.spread.max, r.unit)})` : '';
    rows.push(
      `| \`${id}\` | ${formatValue(r.value, r.unit)}${spread} | ${baseCell} | ${formatRatio(r.ratio)} | ${goal.replace('<=', '≤').replace('>=', '≥')} | ${verdict} |`,
    );
  }
  return rows.join('\n').replace(/ us\b/g, ' µs');
}
