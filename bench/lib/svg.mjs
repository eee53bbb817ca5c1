// The benchmark's picture, as hand-written SVG text: conversion time against range size, log-log,
// one line per design (extent map, per-page radix-tree loop, per-page byte-store floor).
import { SIZES, formatRatio, formatValue } from './report.mjs';
import { STRUCTURES, WORKLOADS, structureId } from './structures.mjs';

export const SERIES = [
  {
    prefix: 'convert.per-page.',
    label: 'per-page loop (64-way radix tree, one store per page, C++)',
    color: '#d62728',
    dash: '',
  },
  {
    prefix: 'convert.per-page-floor.',
    label: 'per-page floor (one byte store per page, flat array, C++)',
    color: '#7f7f7f',
    dash: '6 4',
  },
  {
    prefix: 'convert.extent-map.',
    label: 'extent map (public API, simulator rfc-v5, from JS)',
    color: '#1f77b4',
    dash: '',
  },
];

export function escapeXml(s) {
  return String(s).replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

/** Tick label for a time in ns at a power of ten. */
export function timeTickLabel(ns) {
  /** @type {[number, string][]} */
  const units = [
    [1e9, 's'],
    [1e6, 'ms'],
    [1e3, 'µs'],
    [1, 'ns'],
  ];
  for (const [f, u] of units) if (ns >= f) return `${Math.round(ns / f)} ${u}`;
  return `${ns} ns`;
}

/** The points of one series: [{ size, ns, scaled }] for the sizes that were measured. */
export function seriesPoints(results, prefix) {
  const byId = new Map(results.map((r) => [r.id, r]));
  const pts = [];
  for (const s of SIZES) {
    const r = byId.get(prefix + s.key);
    if (!r || typeof r.value !== 'number' || !(r.value > 0)) continue;
    pts.push({ size: s.bytes, key: s.key, label: s.label, ns: r.value, scaled: r.scaledFrom !== undefined });
  }
  return pts;
}

/**
 * The chart. `opts.subtitle` names the machine; the headline (per-page / extent map at 1 TiB) is
 * written on the chart when both were measured.
 */
export function conversionChartSvg(results, opts = {}) {
  const W = opts.width ?? 880;
  const H = opts.height ?? 560;
  const m = { left: 84, right: 28, top: 70, bottom: 150 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const series = SERIES.map((s) => ({ ...s, pts: seriesPoints(results, s.prefix) }));
  const all = series.flatMap((s) => s.pts.map((p) => p.ns));

  // Half a doubling of room on each side keeps the end points off the frame.
  const xMin = Math.log2(SIZES[0].bytes) - 0.6;
  const xMax = Math.log2(SIZES[SIZES.length - 1].bytes) + 0.6;
  // A little headroom so no point sits on the frame.
  const lo = all.length ? Math.floor(Math.log10(Math.min(...all)) - 0.15) : 0;
  const hi = all.length ? Math.ceil(Math.log10(Math.max(...all)) + 0.15) : 9;
  const yMin = lo;
  const yMax = hi > lo ? hi : lo + 1;
  const X = (bytes) => m.left + ((Math.log2(bytes) - xMin) / (xMax - xMin)) * pw;
  const Y = (ns) => m.top + ph - ((Math.log10(ns) - yMin) / (yMax - yMin)) * ph;
  const f = (v) => v.toFixed(1);

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(opts.title ?? 'Share + unshare of a whole guest_memfd range: time against range size')}</text>`,
  );
  if (opts.subtitle)
    out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#444">${escapeXml(opts.subtitle)}</text>`);

  // Grid and y ticks: one per decade.
  for (let d = yMin; d <= yMax; d++) {
    const y = f(Y(10 ** d));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(
      `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(timeTickLabel(10 ** d))}</text>`,
    );
  }
  for (const s of SIZES) {
    const x = f(X(s.bytes));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${escapeXml(s.label)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 40}" text-anchor="middle" font-weight="bold">range size (bytes, log scale; 4 KiB pages)</text>`,
  );
  out.push(
    `<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-weight="bold">time for one share + one unshare (log scale)</text>`,
  );

  for (const s of series) {
    if (s.pts.length === 0) continue;
    const pts = s.pts.map((p) => `${f(X(p.size))},${f(Y(p.ns))}`).join(' ');
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts}"/>`,
    );
    for (const p of s.pts) {
      const fill = p.scaled ? '#ffffff' : s.color;
      out.push(
        `<circle cx="${f(X(p.size))}" cy="${f(Y(p.ns))}" r="4.5" fill="${fill}" stroke="${s.color}" stroke-width="2"><title>${escapeXml(`${s.label}, ${p.label}: ${p.ns} ns${p.scaled ? ' (sampled, scaled linearly)' : ''}`)}</title></circle>`,
      );
    }
  }

  // The headline sits in the empty upper left (the per-page line climbs to the right); the arrow
  // marks the gap it measures at 1 TiB.
  const headline = results.find((r) => r.id === 'convert.per-page.1tib');
  const floor = results.find((r) => r.id === 'convert.per-page-floor.1tib');
  const em = results.find((r) => r.id === 'convert.extent-map.1tib');
  if (headline && typeof headline.ratio === 'number' && em && typeof em.value === 'number') {
    const x = X(SIZES[SIZES.length - 1].bytes) + 14;
    out.push(
      `<defs><marker id="a" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>`,
    );
    out.push(
      `<line x1="${f(x)}" y1="${f(Y(headline.value) + 6)}" x2="${f(x)}" y2="${f(Y(em.value) - 6)}" stroke="#000" stroke-width="1" marker-start="url(#a)" marker-end="url(#a)"/>`,
    );
    const tx = m.left + 14;
    out.push(
      `<text x="${tx}" y="${m.top + 22}" font-weight="bold" font-size="14">at 1 TiB: per-page loop / extent map = ${escapeXml(formatRatio(headline.ratio))}</text>`,
    );
    if (floor && typeof floor.ratio === 'number') {
      out.push(
        `<text x="${tx}" y="${m.top + 42}">per-page floor / extent map = ${escapeXml(formatRatio(floor.ratio))}</text>`,
      );
    }
  }

  // Legend below the plot, so no line is hidden behind it.
  let ly = m.top + ph + 62;
  for (const s of series) {
    out.push(
      `<line x1="${m.left}" y1="${ly}" x2="${m.left + 34}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    out.push(`<circle cx="${m.left + 17}" cy="${ly}" r="4" fill="${s.color}"/>`);
    out.push(
      `<text x="${m.left + 44}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}${s.pts.length ? '' : ' (not measured)'}</text>`,
    );
    ly += 20;
  }
  out.push(`<circle cx="${m.left + 17}" cy="${ly}" r="4" fill="#ffffff" stroke="#333" stroke-width="2"/>`);
  out.push(
    `<text x="${m.left + 44}" y="${ly}" dominant-baseline="middle">hollow point: measured on a sample of the range and scaled linearly (see latest.json scaledFrom)</text>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

const STRUCTURE_COLORS = {
  'extent-map': '#1f77b4',
  maple: '#ff7f0e',
  'maple-merge': '#ffbb78',
  xarray: '#d62728',
  'xarray-multi': '#ff9896',
  'interval-tree': '#2ca02c',
};

/**
 * One small panel per workload of the kernel-structure comparison: a bar per structure on a log
 * scale, its median written beside it; hollow bars were sampled and scaled.
 */
export function structuresChartSvg(results, opts = {}) {
  const byId = new Map(results.map((r) => [r.id, r]));
  const cols = 2;
  const pw = 440;
  const ph = 176;
  const top = 56;
  const W = cols * pw + 20;
  const H = top + Math.ceil(WORKLOADS.length / cols) * ph + 10;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title ?? 'Kernel structures against the extent map (C, one process, median of interleaved rounds; log scale)')}</text>`,
  );
  if (opts.subtitle)
    out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(opts.subtitle)}</text>`);
  WORKLOADS.forEach((w, i) => {
    const x0 = 10 + (i % cols) * pw;
    const y0 = top + Math.floor(i / cols) * ph;
    const rows = STRUCTURES.map((s) => ({ s, r: byId.get(structureId(w.key, s)) }));
    const vals = rows.map((x) => x.r?.value).filter((v) => typeof v === 'number' && v > 0);
    const lo = vals.length ? Math.floor(Math.log10(Math.min(...vals))) - 0.3 : 0;
    const hi = vals.length ? Math.log10(Math.max(...vals)) + 0.05 : 1;
    const barX = x0 + 96;
    const barW = pw - 96 - 80;
    out.push(`<text x="${x0}" y="${y0 + 14}" font-weight="bold">${escapeXml(`${w.key}: ${w.label}`)}</text>`);
    rows.forEach(({ s, r }, j) => {
      const y = y0 + 24 + j * 23;
      out.push(`<text x="${barX - 6}" y="${y + 10}" text-anchor="end">${escapeXml(s)}</text>`);
      if (!r || typeof r.value !== 'number' || !(r.value > 0)) {
        out.push(
          `<text x="${barX}" y="${y + 10}" fill="#888">${escapeXml(r?.skipped ? 'not measured (see latest.json)' : 'no figure')}</text>`,
        );
        return;
      }
      const len = Math.max(2, ((Math.log10(r.value) - lo) / (hi - lo)) * barW);
      const c = STRUCTURE_COLORS[s];
      const fill = r.scaledFrom ? '#ffffff' : c;
      out.push(
        `<rect x="${barX}" y="${y}" width="${len.toFixed(1)}" height="15" fill="${fill}" stroke="${c}" stroke-width="1.5"><title>${escapeXml(`${s}: ${r.value} ${r.unit}${r.scaledFrom ? ' (sampled, scaled)' : ''}`)}</title></rect>`,
      );
      const ratio = r.ratioTo?.maple !== undefined ? ` (${formatRatio(r.ratioTo.maple)} maple)` : '';
      out.push(
        `<text x="${(barX + len + 4).toFixed(1)}" y="${y + 11}">${escapeXml(formatValue(r.value, r.unit) + (s === 'extent-map' ? ratio : ''))}</text>`,
      );
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The run's picture: the conversion chart above the kernel-structure panels, in one SVG. */
export function benchSvg(results, opts = {}) {
  const a = conversionChartSvg(results, opts);
  const b = structuresChartSvg(results, opts);
  const size = (svg) => {
    const m = /width="(\d+)" height="(\d+)"/.exec(svg);
    if (!m) throw new Error('an SVG without width and height');
    return { w: Number(m[1]), h: Number(m[2]) };
  };
  const sa = size(a);
  const sb = size(b);
  const W = Math.max(sa.w, sb.w);
  const nest = (svg, y) => svg.replace('<svg xmlns="http://www.w3.org/2000/svg" ', `<svg x="0" y="${y}" `);
  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${sa.h + sb.h}" viewBox="0 0 ${W} ${sa.h + sb.h}">`,
      nest(a, 0).trimEnd(),
      nest(b, sa.h).trimEnd(),
      '</svg>',
    ].join('\n') + '\n'
  );
}
