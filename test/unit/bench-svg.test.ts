import { describe, expect, it } from 'vitest';
import { conversionChartSvg, escapeXml, seriesPoints, timeTickLabel } from '../../bench/lib/svg.mjs';
import { applyRatios } from '../../bench/lib/report.mjs';

const sizes = ['4kib', '2mib', '1gib', '64gib', '1tib'];

function fullResults() {
  const rs: Record<string, unknown>[] = [];
  sizes.forEach((k, i) => {
    rs.push({ id: `convert.extent-map.${k}`, value: 1000, unit: 'ns' });
    rs.push({
      id: `convert.per-page.${k}`,
      value: 10 * 10 ** (2 * i),
      unit: 'ns',
      baseline: `convert.extent-map.${k}`,
      ...(i >= 3 ? { scaledFrom: { pages: 262144 } } : {}),
    });
    rs.push({ id: `convert.per-page-floor.${k}`, value: 5 * 10 ** i, unit: 'ns', baseline: `convert.extent-map.${k}` });
  });
  return applyRatios(rs);
}

function polylines(svg: string): Array<Array<[number, number]>> {
  return [...svg.matchAll(/<polyline[^>]*points="([^"]+)"/g)].map((m) =>
    m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]),
  );
}

describe('bench chart (SVG)', () => {
  it('is one well-formed svg element with labelled axes and a legend entry per design', () => {
    const svg = conversionChartSvg(fullResults(), { subtitle: 'AMD EPYC <test>' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('range size (bytes, log scale');
    expect(svg).toContain('time for one share + one unshare (log scale)');
    expect(svg).toContain('extent map (public API');
    expect(svg).toContain('per-page loop (64-way radix tree');
    expect(svg).toContain('per-page floor (one byte store');
    expect(svg).toContain('AMD EPYC &lt;test&gt;');
    for (const label of ['4 KiB', '2 MiB', '1 GiB', '64 GiB', '1 TiB']) expect(svg).toContain(`>${label}</text>`);
  });

  it('draws three lines whose x grows with the size and whose y falls as time grows (log-log)', () => {
    const lines = polylines(conversionChartSvg(fullResults()));
    expect(lines).toHaveLength(3);
    const perPage = lines[0]!;
    expect(perPage).toHaveLength(5);
    for (let i = 1; i < perPage.length; i++) {
      expect(perPage[i]![0]).toBeGreaterThan(perPage[i - 1]![0]);
      expect(perPage[i]![1]).toBeLessThan(perPage[i - 1]![1]);
    }
    // 100x per step on a log axis: equal vertical steps.
    const dy = perPage.slice(1).map((p, i) => perPage[i]![1] - p[1]);
    for (const d of dy) expect(d).toBeCloseTo(dy[0]!, 0);
    // A constant time is a horizontal line.
    const em = lines[2]!;
    expect(new Set(em.map((p) => p[1])).size).toBe(1);
  });

  it('marks sampled-and-scaled points hollow', () => {
    const svg = conversionChartSvg(fullResults());
    const hollow = [...svg.matchAll(/<circle[^>]*fill="#ffffff" stroke="#d62728"/g)];
    expect(hollow).toHaveLength(2);
  });

  it('writes the 1 TiB headline ratio on the chart', () => {
    expect(conversionChartSvg(fullResults())).toContain('per-page loop / extent map = 1,000,000x');
  });

  it('leaves skipped figures out and says a design was not measured', () => {
    const rs = fullResults().filter((r: { id: string }) => !r.id.startsWith('convert.extent-map.'));
    rs.push({ id: 'convert.extent-map.1tib', value: null, unit: 'ns', skipped: 'no simulator' });
    const svg = conversionChartSvg(rs);
    expect(polylines(svg)).toHaveLength(2);
    expect(svg).toContain('(not measured)');
    expect(svg).not.toContain('per-page loop / extent map =');
    expect(seriesPoints(rs, 'convert.extent-map.')).toEqual([]);
  });

  it('labels decades in the unit a reader expects', () => {
    expect(timeTickLabel(1)).toBe('1 ns');
    expect(timeTickLabel(100)).toBe('100 ns');
    expect(timeTickLabel(1e4)).toBe('10 µs');
    expect(timeTickLabel(1e8)).toBe('100 ms');
    expect(timeTickLabel(1e10)).toBe('10 s');
  });

  it('escapes text that would break the markup', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&#39;');
  });
});
