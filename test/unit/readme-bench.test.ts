// The README's goals table is the committed run's, as bench/goals-table.mjs prints it: a figure in
// the README can only change with bench/results/latest.json.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as report from '../../bench/lib/report.mjs';
import * as structures from '../../bench/lib/structures.mjs';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const results = JSON.parse(readFileSync(new URL('bench/results/latest.json', root), 'utf8')).results;

describe("the README's benchmark figures", () => {
  it('show the goals table of bench/results/latest.json, verbatim', () => {
    expect(readme).toContain(report.goalsMarkdown(results));
  });

  it('show the structures tables of bench/results/latest.json, verbatim', () => {
    expect(readme).toContain(structures.structuresMarkdown(results));
  });

  it('the goals table has a row per goal with its verdict', () => {
    const table = report.goalsMarkdown(results).split('\n');
    expect(table.length).toBe(2 + report.GOAL_IDS.length);
    const row = table.find((l: string) => l.startsWith('| `sim.page-op`'));
    expect(row).toMatch(/\| (met|\*\*missed\*\*) \|$/);
  });

  it('a skip reason with pipes and newlines (compiler output) stays inside its cell', () => {
    const skipped = report.GOAL_IDS.map((id: string) => ({ id, unit: 'ns', value: null, skipped: 'cc: a | b\nc' }));
    for (const row of report.goalsMarkdown(skipped).split('\n').slice(2)) {
      expect(row.split(/(?<!\\)\|/).length, row).toBe(8);
      expect(row).toContain('skipped: cc: a \\| b c');
    }
  });
});
