// Pure helpers for the kernel-structure comparison (bench/kernel/structures.c): ids, the goals of
// issue 14, and the per-workload tables. No I/O here, so the unit tests can pin every rule down.
import { formatRatio, formatValue, meetsGoal, skipped } from './report.mjs';

export const STRUCTURES = ['extent-map', 'maple', 'maple-merge', 'xarray', 'xarray-multi', 'interval-tree'];
export const STRUCTURE_LABELS = {
  'extent-map': 'extent map (native/extent_map.cc)',
  maple: 'maple tree, mtree_store_range',
  'maple-merge': 'maple tree, widened to merge equal neighbours',
  xarray: 'xarray, xa_store per page (the RFC)',
  'xarray-multi': 'multi-index xarray (xas_split + order store)',
  'interval-tree': 'interval tree (lib/interval_tree.c)',
};
export const WORKLOADS = [
  { key: 'whole-4kib', unit: 'ns', label: 'share + unshare of a whole 4 KiB file' },
  { key: 'whole-2mib', unit: 'ns', label: 'share + unshare of a whole 2 MiB file' },
  { key: 'whole-1gib', unit: 'ns', label: 'share + unshare of a whole 1 GiB file' },
  { key: 'whole-64gib', unit: 'ns', label: 'share + unshare of a whole 64 GiB file' },
  { key: 'whole-1tib', unit: 'ns', label: 'share + unshare of a whole 1 TiB file' },
  { key: 'random-page', unit: 'ns', label: 'one page at a random offset, 10^6 extents' },
  { key: 'ascending-build', unit: 'ns', label: 'ascending build of 10^6 extents, per extent' },
  { key: 'op-2mib-among', unit: 'ns', label: 'one 2 MiB op among 10^6 extents' },
  { key: 'rfc-loop', unit: 'ns', label: "the RFC's loop: a lookup and a store per page, per page" },
  { key: 'bytes-random', unit: 'B', label: 'bytes per extent, random build' },
  { key: 'bytes-ascending', unit: 'B', label: 'bytes per extent, ascending build' },
];

export function structureId(workload, structure) {
  return `structures.${workload}.${structure}`;
}

export function structureIds() {
  return WORKLOADS.flatMap((w) => STRUCTURES.map((s) => structureId(w.key, s)));
}

/** Issue 14's goals for the extent map, as [against, goal] pairs ('value' = on the value itself). */
export function extentMapGoals(workload) {
  if (workload === 'random-page')
    return [
      ['maple', '<= 0.5'],
      ['xarray', '<= 1.2'],
    ];
  if (workload.startsWith('whole-') || workload === 'op-2mib-among') return [['maple', '<= 0.5']];
  if (workload.startsWith('bytes-')) return [['value', '<= 16']];
  return [];
}

/**
 * Results from the benchmark's JSON lines: one per workload and structure (a skip with the reason
 * when a line is missing), each with its ratios to the maple tree and the per-page xarray of the
 * same run and, for the extent map, its goals.
 */
export function structureResults(lines, missingReason = 'no figure in the run') {
  const byKey = new Map();
  for (const l of lines) if (l.workload && l.structure) byKey.set(`${l.workload}/${l.structure}`, l);
  const out = [];
  for (const w of WORKLOADS) {
    for (const s of STRUCTURES) {
      const id = structureId(w.key, s);
      const l = byKey.get(`${w.key}/${s}`);
      if (!l || typeof l.value !== 'number') {
        out.push(skipped(id, w.unit, l?.skipped ?? missingReason));
        continue;
      }
      const r = {
        id,
        value: l.value,
        unit: l.unit ?? w.unit,
        spread: { min: l.min, max: l.max },
        rounds: l.rounds,
        note: l.note,
      };
      if (l.scale > 1) r.scaledFrom = { factor: l.scale };
      out.push(r);
    }
  }
  return applyStructureRatios(out);
}

/** Fills ratioTo.{maple,xarray} and the extent map's goals; `ratio` is the one to the maple tree. */
export function applyStructureRatios(results) {
  const byId = new Map(results.map((r) => [r.id, r]));
  return results.map((r) => {
    const m = /^structures\.([^.]+)\.(.+)$/.exec(r.id);
    if (!m || typeof r.value !== 'number') return r;
    const [, workload, structure] = m;
    const out = { ...r, ratioTo: {} };
    for (const base of ['maple', 'xarray']) {
      const b = byId.get(structureId(workload, base));
      if (base !== structure && b && typeof b.value === 'number' && b.value > 0) out.ratioTo[base] = r.value / b.value;
    }
    if (structure !== 'maple') out.baseline = structureId(workload, 'maple');
    if (out.ratioTo.maple !== undefined) out.ratio = out.ratioTo.maple;
    if (structure === 'extent-map') {
      const goals = extentMapGoals(workload).map(([against, goal]) => {
        const x = against === 'value' ? r.value : out.ratioTo[against];
        return { against, goal, met: x === undefined ? null : meetsGoal(x, goal) };
      });
      if (goals.length) {
        out.goals = goals;
        out.goalText = goals
          .map((g) => (g.against === 'value' ? `${g.goal} ${r.unit}` : `${g.goal}x ${g.against}`))
          .join(', ');
        out.goalMet = goals.every((g) => g.met === true);
      }
    }
    return out;
  });
}

/** One table per workload, structures side by side, with ratios to maple and to the per-page xarray. */
export function formatStructureTables(results) {
  const byId = new Map(results.map((r) => [r.id, r]));
  const blocks = [];
  for (const w of WORKLOADS) {
    const rows = [['structure', 'median', 'spread (min-max)', 'x maple', 'x xarray', 'goal / note']];
    for (const s of STRUCTURES) {
      const r = byId.get(structureId(w.key, s));
      if (!r) continue;
      const spread = r.spread ? `${formatValue(r.spread.min, r.unit)} - ${formatValue(r.spread.max, r.unit)}` : '';
      const goal = r.goalText ? `${r.goalText}: ${r.goalMet ? 'met' : 'MISSED'}` : '';
      const note = r.skipped ? `skipped: ${r.skipped}` : r.scaledFrom ? `sampled, scaled x${r.scaledFrom.factor}` : '';
      rows.push([
        s,
        formatValue(r.value, r.unit),
        spread,
        formatRatio(r.ratioTo?.maple),
        formatRatio(r.ratioTo?.xarray),
        [goal, note].filter(Boolean).join('; '),
      ]);
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
    const line = (row) =>
      row
        .map((cell, c) => (c === 5 ? cell : c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
        .join('  ')
        .trimEnd();
    blocks.push([`${w.key}: ${w.label}`, line(rows[0]), ...rows.slice(1).map(line)].join('\n'));
  }
  return blocks.join('\n\n');
}

/** The README's tables (Markdown), one per workload, from a run's results: the same figures as formatStructureTables. */
export function structuresMarkdown(results) {
  const byId = new Map(results.map((r) => [r.id, r]));
  const ratio = (/** @type {number | undefined} */ x) => formatRatio(x).replace(/x$/, '×');
  const blocks = [];
  for (const w of WORKLOADS) {
    const rows = [
      `**${w.key}**: ${w.label}`,
      '',
      '| structure | median | spread (min–max) | ÷ maple | ÷ xarray |',
      '|---|---|---|---|---|',
    ];
    for (const s of STRUCTURES) {
      const r = byId.get(structureId(w.key, s));
      if (!r) continue;
      const name = s === 'extent-map' ? `**${s}**` : s;
      const spread = r.spread
        ? `${formatValue(r.spread.min, r.unit)} – ${formatValue(r.spread.max, r.unit)}`.replace(/ us\b/g, ' µs')
        : '';
      const value = r.skipped ? 'skipped' : formatValue(r.value, r.unit).replace(/ us$/, ' µs');
      rows.push(`| ${name} | ${value} | ${spread} | ${ratio(r.ratioTo?.maple)} | ${ratio(r.ratioTo?.xarray)} |`);
    }
    blocks.push(rows.join('\n'));
  }
  return blocks.join('\n\n');
}
