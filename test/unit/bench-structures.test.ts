import { describe, expect, it } from 'vitest';
import * as st from '../../bench/lib/structures.mjs';
import * as svg from '../../bench/lib/svg.mjs';

const { STRUCTURES, WORKLOADS, extentMapGoals, formatStructureTables, structureIds, structureResults } = st;

type Line = {
  workload: string;
  structure: string;
  unit: string;
  value: number | null;
  min?: number;
  max?: number;
  rounds?: number;
  scale?: number;
  skipped?: string;
};
type Result = {
  id: string;
  value: number | null;
  unit: string;
  ratio?: number;
  ratioTo?: Record<string, number>;
  goals?: { against: string; goal: string; met: boolean | null }[];
  goalMet?: boolean;
  skipped?: string;
  scaledFrom?: { factor: number };
  spread?: { min: number; max: number };
};

function line(workload: string, structure: string, value: number, extra: Partial<Line> = {}): Line {
  const unit = workload.startsWith('bytes-') ? 'B' : 'ns';
  return { workload, structure, unit, value, min: value * 0.9, max: value * 1.2, rounds: 7, scale: 1, ...extra };
}

function byId(results: Result[]): Map<string, Result> {
  return new Map(results.map((r) => [r.id, r]));
}

describe('bench structures: ids', () => {
  it('names every workload and structure of issue 14', () => {
    expect(WORKLOADS.map((w: { key: string }) => w.key)).toEqual([
      'whole-4kib',
      'whole-2mib',
      'whole-1gib',
      'whole-64gib',
      'whole-1tib',
      'random-page',
      'ascending-build',
      'op-2mib-among',
      'rfc-loop',
      'bytes-random',
      'bytes-ascending',
    ]);
    expect(STRUCTURES).toEqual(['extent-map', 'maple', 'maple-merge', 'xarray', 'xarray-multi', 'interval-tree']);
    expect(structureIds()).toHaveLength(66);
    expect(structureIds()).toContain('structures.random-page.xarray-multi');
  });

  it('gives every id a result: a missing line becomes a skip with the reason, never a number', () => {
    const out: Result[] = structureResults([line('random-page', 'maple', 300)], 'not run');
    expect(out.map((r) => r.id)).toEqual(structureIds());
    const m = byId(out);
    expect(m.get('structures.random-page.maple')!.value).toBe(300);
    expect(m.get('structures.random-page.extent-map')).toMatchObject({ value: null, skipped: 'not run' });
    expect(m.get('structures.bytes-random.xarray')).toMatchObject({ value: null, unit: 'B' });
  });

  it('keeps the reason a structure gives for a workload it cannot run', () => {
    const out = byId(
      structureResults([{ workload: 'whole-1tib', structure: 'xarray', unit: 'ns', value: null, skipped: 'too big' }]),
    );
    expect(out.get('structures.whole-1tib.xarray')).toMatchObject({ value: null, skipped: 'too big' });
  });
});

describe('bench structures: ratios and goals', () => {
  it('divides by the maple tree and by the per-page xarray of the same run', () => {
    const out = byId(
      structureResults([
        line('random-page', 'extent-map', 100),
        line('random-page', 'maple', 400),
        line('random-page', 'xarray', 50),
      ]),
    );
    const em = out.get('structures.random-page.extent-map')!;
    expect(em.ratio).toBe(0.25);
    expect(em.ratioTo).toEqual({ maple: 0.25, xarray: 2 });
    expect(out.get('structures.random-page.maple')!.ratioTo).toEqual({ xarray: 8 });
    expect(em.spread).toEqual({ min: 90, max: 120 });
  });

  it('checks both random-page goals: met against maple, missed against the xarray', () => {
    const out = byId(
      structureResults([
        line('random-page', 'extent-map', 100),
        line('random-page', 'maple', 400),
        line('random-page', 'xarray', 50),
      ]),
    );
    const em = out.get('structures.random-page.extent-map')!;
    expect(em.goals).toEqual([
      { against: 'maple', goal: '<= 0.5', met: true },
      { against: 'xarray', goal: '<= 1.2', met: false },
    ]);
    expect(em.goalMet).toBe(false);
  });

  it('checks the memory goal on the value itself, and a goal without its baseline is not met', () => {
    const out = byId(
      structureResults([
        line('bytes-random', 'extent-map', 15),
        line('bytes-ascending', 'extent-map', 17),
        line('whole-1tib', 'extent-map', 10),
      ]),
    );
    expect(out.get('structures.bytes-random.extent-map')!.goalMet).toBe(true);
    expect(out.get('structures.bytes-ascending.extent-map')!.goalMet).toBe(false);
    const whole = out.get('structures.whole-1tib.extent-map')!;
    expect(whole.goals).toEqual([{ against: 'maple', goal: '<= 0.5', met: null }]);
    expect(whole.goalMet).toBe(false);
  });

  it('has goals for the whole-range and 2 MiB workloads, none for the others', () => {
    expect(extentMapGoals('whole-64gib')).toEqual([['maple', '<= 0.5']]);
    expect(extentMapGoals('op-2mib-among')).toEqual([['maple', '<= 0.5']]);
    expect(extentMapGoals('rfc-loop')).toEqual([]);
    expect(extentMapGoals('ascending-build')).toEqual([]);
  });

  it('marks a sampled figure with its scale factor', () => {
    const out = byId(structureResults([line('whole-1tib', 'xarray', 1e10, { scale: 1024 })]));
    expect(out.get('structures.whole-1tib.xarray')!.scaledFrom).toEqual({ factor: 1024 });
  });
});

describe('bench structures: tables and plot', () => {
  const lines = WORKLOADS.flatMap((w: { key: string }) =>
    STRUCTURES.map((s: string, i: number) => line(w.key, s, 10 * (i + 1))),
  );
  const results = structureResults(lines);

  it('prints one table per workload with every structure and the goal verdicts', () => {
    const text: string = formatStructureTables(results);
    expect(text.split('\n\n')).toHaveLength(WORKLOADS.length);
    const random = text.split('\n\n').find((b) => b.startsWith('random-page'))!;
    for (const s of STRUCTURES) expect(random).toContain(s);
    expect(random).toMatch(/extent-map .*<= 0\.5x maple, <= 1\.2x xarray: met/);
  });

  it('draws a panel per workload and a bar per measured structure', () => {
    const out: string = svg.structuresChartSvg(results, { subtitle: 'test machine' });
    for (const w of WORKLOADS) expect(out).toContain(`${w.key}:`);
    expect(out.match(/<rect x="\d/g)?.length).toBeGreaterThanOrEqual(WORKLOADS.length * STRUCTURES.length);
    expect(out).toContain('test machine');
    const both: string = svg.benchSvg(results, {});
    expect(both.match(/<svg /g)?.length).toBe(3);
  });
});
