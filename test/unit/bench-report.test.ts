import { describe, expect, it } from 'vitest';
import * as report from '../../bench/lib/report.mjs';

const {
  applyRatios,
  applyValueGoals,
  formatTable,
  formatValue,
  meetsGoal,
  median,
  missingIds,
  requiredIds,
  scaleLinear,
  skipped,
} = report;

describe('bench report: scaling sampled runs', () => {
  it('scales a sampled time linearly in pages', () => {
    expect(scaleLinear(8e6, 262144, 268435456)).toBe(8e6 * 1024);
  });
  it('leaves an unsampled time as it was', () => {
    expect(scaleLinear(123.5, 512, 512)).toBe(123.5);
  });
  it('refuses to scale from nothing or down to fewer pages', () => {
    expect(() => scaleLinear(1, 0, 10)).toThrow(RangeError);
    expect(() => scaleLinear(1, 10, 5)).toThrow(RangeError);
  });
});

describe('bench report: ratios', () => {
  it('divides the value by its baseline value', () => {
    const out = applyRatios([
      { id: 'convert.extent-map.1tib', value: 2000, unit: 'ns' },
      { id: 'convert.per-page.1tib', value: 8e9, unit: 'ns', baseline: 'convert.extent-map.1tib' },
    ]);
    expect(out[1].ratio).toBe(4e6);
    expect(out[0].ratio).toBeUndefined();
  });
  it('gives no ratio against a skipped or missing baseline', () => {
    const out = applyRatios([
      skipped('c.check-extension', 'ns', 'no /dev/kvm'),
      { id: 'kvm.check-extension', value: 200, unit: 'ns', baseline: 'c.check-extension' },
      { id: 'kvm.x', value: 1, unit: 'ns', baseline: 'nowhere' },
    ]);
    expect(out[1].ratio).toBeUndefined();
    expect(out[2].ratio).toBeUndefined();
    expect(out[0]).toMatchObject({ value: null, skipped: 'no /dev/kvm' });
  });
  it('marks a ratio goal met or missed', () => {
    const out = applyRatios([
      { id: 'c.memcpy-read-gbps', value: 10, unit: 'GB/s' },
      { id: 'mapping.read-gbps', value: 7, unit: 'GB/s', baseline: 'c.memcpy-read-gbps', goal: '>= 0.8' },
      { id: 'mapping.write-gbps', value: 9, unit: 'GB/s', baseline: 'c.memcpy-read-gbps', goal: '>= 0.8' },
    ]);
    expect(out[1].goalMet).toBe(false);
    expect(out[2].goalMet).toBe(true);
  });
  it('refuses to compare figures in different units', () => {
    expect(() =>
      applyRatios([
        { id: 'a', value: 1, unit: 'ns' },
        { id: 'b', value: 1, unit: 'GB/s', baseline: 'a' },
      ]),
    ).toThrow(/cannot compare/);
  });
  it('checks value goals where there is no baseline', () => {
    const [ok, bad] = applyValueGoals([
      { id: 'fragmented.bytes-per-extent', value: 24, unit: 'B', goal: '<= 32' },
      { id: 'fragmented.bytes-per-extent', value: 40, unit: 'B', goal: '<= 32' },
    ]);
    expect(ok.goalMet).toBe(true);
    expect(bad.goalMet).toBe(false);
  });
  it('reads goals with either comparison and rejects others', () => {
    expect(meetsGoal(1.3, '<= 1.3')).toBe(true);
    expect(meetsGoal(99999, '>= 100000')).toBe(false);
    expect(() => meetsGoal(1, '== 1')).toThrow();
  });
});

describe('bench report: ids and table', () => {
  it('requires every id the issue names', () => {
    const ids = requiredIds();
    for (const size of ['4kib', '2mib', '1gib', '64gib', '1tib']) {
      expect(ids).toContain(`convert.extent-map.${size}`);
      expect(ids).toContain(`convert.per-page.${size}`);
    }
    expect(ids).toContain('convert.per-page-floor.1tib');
    expect(ids).toContain('guest.read-gbps');
    expect(ids).toContain('c.memcpy-write-gbps');
  });
  it('names the ids a result list lacks', () => {
    const all = requiredIds().map((id: string) => ({ id, value: 1, unit: 'ns' }));
    expect(missingIds(all)).toEqual([]);
    expect(missingIds(all.filter((r: { id: string }) => r.id !== 'guest.read-gbps'))).toEqual(['guest.read-gbps']);
  });
  it('writes times in the unit that keeps them readable', () => {
    expect(formatValue(512, 'ns')).toBe('512 ns');
    expect(formatValue(2500, 'ns')).toBe('2.50 us');
    expect(formatValue(8.2e9, 'ns')).toBe('8.20 s');
    expect(formatValue(null, 'ns')).toBe('skipped');
    expect(formatValue(5.65, 'GB/s')).toBe('5.65 GB/s');
    expect(formatValue(9.9996e9, 'ns')).toBe('10.0 s');
    expect(formatValue(999.7, 'ns')).toBe('1.00 us');
  });
  it('prints one row per result with its ratio and skip reason', () => {
    const rows = applyRatios([
      { id: 'convert.extent-map.1tib', value: 2000, unit: 'ns' },
      { id: 'convert.per-page.1tib', value: 8e9, unit: 'ns', baseline: 'convert.extent-map.1tib', goal: '>= 100000' },
      skipped('guest.read-gbps', 'GB/s', 'no vCPU'),
    ]);
    const lines = formatTable(rows).split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[3]).toMatch(/convert\.per-page\.1tib\s+8\.00 s\s+convert\.extent-map\.1tib\s+4,000,000x\s+>= 100000/);
    expect(lines[4]).toMatch(/guest\.read-gbps\s+skipped.*skipped: no vCPU/);
  });
  it('takes the median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('bench report: order', () => {
  it("puts each size's three designs together and unknown ids last", () => {
    const { sortForReport } = report;
    const ids = sortForReport([
      { id: 'zzz.extra' },
      { id: 'convert.per-page-floor.1gib' },
      { id: 'convert.extent-map.1gib' },
      { id: 'convert.per-page.1gib' },
      { id: 'convert.extent-map.4kib' },
    ]).map((r: { id: string }) => r.id);
    expect(ids).toEqual([
      'convert.extent-map.4kib',
      'convert.extent-map.1gib',
      'convert.per-page.1gib',
      'convert.per-page-floor.1gib',
      'zzz.extra',
    ]);
  });
});

describe('bench report: paired rounds', () => {
  it('the ratio is the median of per-round ratios when both sides alternated', () => {
    // A slow spell in round 3 hits both sides: the paired ratio ignores it, the ratio of medians does not.
    const js = { id: 'js', unit: 'ns', value: 11, baseline: 'c', goal: '<= 1.2', roundValues: [11, 11, 30, 11, 11] };
    const c = { id: 'c', unit: 'ns', value: 10, roundValues: [10, 10, 27, 10, 10] };
    const [r] = report.applyRatios([js, c]);
    expect(r.ratio).toBeCloseTo(1.1);
    expect(r.ratioOfMedians).toBeCloseTo(1.1);
    const skew = report.applyRatios([
      { ...js, value: 12, roundValues: [9, 12, 13, 12, 30] },
      { ...c, value: 10, roundValues: [8, 10, 12, 11, 27] },
    ])[0];
    expect(skew.ratio).toBeCloseTo(median([9 / 8, 12 / 10, 13 / 12, 12 / 11, 30 / 27]));
    expect(skew.ratioOfMedians).toBeCloseTo(1.2);
  });

  it('falls back to the ratio of the values without paired rounds', () => {
    const [r] = report.applyRatios([
      { id: 'js', unit: 'ns', value: 12, baseline: 'c' },
      { id: 'c', unit: 'ns', value: 10, roundValues: [10, 10] },
    ]);
    expect(r.ratio).toBeCloseTo(1.2);
    expect(r.ratioOfMedians).toBeUndefined();
  });
});
