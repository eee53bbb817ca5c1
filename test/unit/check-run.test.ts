// `kvm-gmem check` on this machine: its kernel must match the simulator profile probe expects
// here exactly ('linux-6.18-pvm' on the PVM hosts; 'linux-6.18' / 'linux-7.3' in tools/rig).
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { check, runCheck } from '../../lib/check.js';
import { hostProfile } from '../../lib/probe.js';
import { describeKvm } from '../helpers/kvm.js';

const expected = hostProfile() ?? 'no verified profile for this kernel';

describeKvm('kvm-gmem check on this host', () => {
  it(`reports that this kernel matches '${expected}' with zero differences, in under a minute`, async () => {
    const r = await check();
    expect(r.host.profile).toBe(expected);
    const diffs = r.verdict.differences[expected]!.map(
      (d) => `${d.id} at ${d.where.join(',')}: kernel ${JSON.stringify(d.kernel)} vs ${JSON.stringify(d.profile)}`,
    );
    expect(diffs).toEqual([]);
    expect(r.verdict.verdict).toBe(expected);
    expect(r.verdict.matches).toEqual([expected]);
    expect(r.verdict.kernelErrors).toEqual([]);
    expect(r.verdict.compared).toBeGreaterThan(30);
    expect(Object.values(r.profiles).every((p) => p.available)).toBe(true);
    expect(r.ms).toBeLessThan(60_000);
  });

  it('--only narrows the run to one group, where every profile models fallocate alike', async () => {
    const r = await check({ only: ['fallocate'] });
    expect(new Set(r.rows.map((x) => x.group))).toEqual(new Set(['fallocate']));
    expect(r.verdict.matches).toEqual(['rfc-v5', 'inplace-v8', 'linux-6.18', 'linux-7.3', 'linux-6.18-pvm']);
    const conv = await check({ only: ['conversion'] });
    expect(conv.verdict.matches).toEqual(['linux-6.18', 'linux-7.3', 'linux-6.18-pvm']);
  });

  it('exits 2 naming the reason when /dev/kvm cannot be used, and 2 on an unknown group', async () => {
    const errors: string[] = [];
    const orig = console.error;
    console.error = (s: string) => errors.push(s);
    try {
      expect(await runCheck(['--path', '/dev/kvm-does-not-exist'])).toBe(2);
      expect(await runCheck(['--only', 'nonsense'])).toBe(2);
    } finally {
      console.error = orig;
    }
    expect(errors[0]).toMatch(/no usable \/dev\/kvm-does-not-exist: ENOENT/);
    expect(errors[1]).toMatch(/unknown group 'nonsense'; groups: create, map/);
  });

  it('the built command prints the same verdict as JSON (node dist/cli.js check --json)', () => {
    const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
      encoding: 'utf8',
    });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    const run = spawnSync(process.execPath, ['dist/cli.js', 'check', '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.verdict.verdict).toBe(expected);
    expect(report.verdict.differences[expected]).toEqual([]);
    expect(report.rows.length).toBeGreaterThanOrEqual(40);
    // The kernel's states() are this process's mirror (docs/api.md): the report says so.
    expect(report.notes).toEqual([
      expect.stringMatching(/^the kernel's states\(\) are a mirror: no ioctl reads conversion states back/),
    ]);
  });
});
