// The kvm-gmem command as a user meets it: help, unknown commands, probe, and the demo.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmAvailable, kvmSkipReason } from '../helpers/kvm.js';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli.js');

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return runEnv({}, ...args);
}

function runEnv(
  env: Record<string, string | undefined>,
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const merged = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  // No FORCE_COLOR from the test runner unless a test sets it.
  if (!('FORCE_COLOR' in env)) delete merged.FORCE_COLOR;
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: merged });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// `script` gives the command a terminal, so colour can be seen as a user at a terminal sees it.
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
function runTty(env: string, args: string): string {
  // A plain terminal: Node reads CI (set in CI runs) and TERM when it decides whether a TTY has colours.
  const r = spawnSync(
    'script',
    ['-qec', `env -u FORCE_COLOR -u CI TERM=xterm-256color ${env} ${process.execPath} ${cli} ${args}`, '/dev/null'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return r.stdout;
}
const ESC = '\x1b[';

describe('kvm-gmem command', () => {
  beforeAll(() => {
    // dist/ is what `npm install` builds (prepare); compile it so the tests see this checkout's lib/.
    const tsc = spawnSync(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    expect(existsSync(cli)).toBe(true);
  });

  it('bare kvm-gmem prints the help and exits 0', () => {
    const r = run();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: kvm-gmem <command>');
    expect(r.stdout).toContain('probe');
  });

  it('--version and -v print the package version', () => {
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-v']) {
      const r = run(flag);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('an unknown flag is an error with exit 2, at the top and in every command', () => {
    const top = run('--bogus');
    expect(top.status).toBe(2);
    expect(top.stderr).toContain("unknown option '--bogus'");
    for (const [cmd, typo] of [
      ['probe', '--jsno'],
      ['demo', '--bogus'],
      ['check', '--fast'],
      ['bench', '--quik'],
    ] as const) {
      const r = run(cmd, typo);
      expect(r.status, `${cmd} ${typo}`).toBe(2);
      expect(r.stderr).toBe(`kvm-gmem ${cmd}: unknown option '${typo}' (kvm-gmem ${cmd} --help)\n`);
      expect(r.stdout).toBe('');
    }
  });

  it('an option missing its value, a value given to a flag and a stray argument are errors with exit 2', () => {
    const missing = run('probe', '--path');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--path needs a value');
    const swallowed = run('probe', '--path', '--json');
    expect(swallowed.status).toBe(2);
    const valued = run('probe', '--json=yes');
    expect(valued.status).toBe(2);
    expect(valued.stderr).toContain('--json takes no value');
    const stray = run('probe', 'extra');
    expect(stray.status).toBe(2);
    expect(stray.stderr).toContain("unexpected argument 'extra'");
  });

  it('probe exits 1 when the device cannot be used, printing the error code once', () => {
    const r = run('probe', '--path', '/nonexistent/kvm');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/\/nonexistent\/kvm\s+unavailable: ENOENT: No such file or directory/);
    expect(r.stdout.split('ENOENT').length - 1).toBe(1);
  });

  it('check --help lists the groups by short id and the --path and --case options', () => {
    const r = run('check', '--help');
    expect(r.status).toBe(0);
    for (const id of ['create', 'map', 'falloc', 'slot', 'guest', 'conv', 'pins'])
      expect(r.stdout).toMatch(new RegExp(`^  ${id} +\\S`, 'm'));
    expect(r.stdout).toContain('--path FILE');
    expect(r.stdout).toContain('--case ID');
  });

  it('check refuses an unknown group or case with exit 2', () => {
    const g = run('check', '--only', 'slots');
    expect(g.status).toBe(2);
    expect(g.stderr).toContain("unknown group 'slots'; groups: create, map, falloc, slot, guest, conv, pins");
    const c = run('check', '--case', 'nope.nothing');
    expect(c.status).toBe(2);
    expect(c.stderr).toContain("unknown case 'nope.nothing'");
  });

  it('bench in a package without bench/ says it is a development command (exit 2), not a crash', () => {
    // The command as installed: dist/ without the repository's bench/ beside it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-cli-'));
    try {
      cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
      cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
      const r = spawnSync(process.execPath, [path.join(dir, 'dist', 'cli.js'), 'bench'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('a development command');
      expect(r.stderr).not.toMatch(/at .*\(/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists its commands with --help and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const c of ['probe', 'demo', 'check', 'bench']) expect(r.stdout).toContain(c);
  });

  it('gives each command its own --help', () => {
    for (const c of ['probe', 'demo', 'check', 'bench']) {
      const r = run(c, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`usage: kvm-gmem ${c}`);
    }
  });

  it('refuses an unknown command with exit 2 and names the commands', () => {
    const r = run('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain('probe');
  });

  it('probe --json prints the report, and a missing device is a readable report, not a crash', () => {
    const r = run('probe', '--json', '--path', '/nonexistent/kvm');
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.kvm).toMatchObject({ available: false, path: '/nonexistent/kvm', error: { code: 'ENOENT' } });
    const table = run('probe', '--path', '/nonexistent/kvm');
    expect(table.stdout).toMatch(/unavailable: ENOENT/);
  });

  it('demo without a usable /dev/kvm says so and still runs the simulator part', () => {
    const r = run('demo', '--path', '/nonexistent/kvm');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('No usable /nonexistent/kvm here');
    expect(r.stdout).toContain('host read of pending page 12 through its live mapping: 0x5a');
    expect(r.stdout).toContain('unshare 12..13 again: no reference left, so private');
    expect(r.stdout).toMatch(/████████░░░░▒▒░░/);
  });

  it.skipIf(!kvmAvailable)(
    `demo on real KVM: the guest's message is read by the host and the SIGBUS is caught${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`,
    () => {
      const r = run('demo');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('vCPU exit: io (port 0x10, out)');
      expect(r.stdout).toContain('host reads gpa 0x2000 through its mapping: "Hello from the guest!"');
      expect(r.stdout).toContain('caught HostAccessError (SIGBUS) at guest_memfd offset 0x1234');
    },
  );

  it.skipIf(!kvmAvailable)(
    `check on this kernel: short ids, --case, colour only on a terminal, no \\r${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`,
    () => {
      const only = run('check', '--only', 'falloc');
      expect(only.status).toBe(0);
      expect(only.stdout).toContain('[fallocate]');
      expect(only.stdout).not.toContain('[creation and flags]');
      const one = run('check', '--case', 'create.flags-none', '--case', 'falloc.aligned');
      expect(one.stdout.match(/^(create|falloc)\.\S+/gm)).toEqual(['create.flags-none', 'falloc.aligned']);
      const all = run('check');
      expect(all.stdout).not.toContain(ESC);
      expect(all.stdout + all.stderr).not.toContain('\r');
      // Each n/s reason once, however many cases it applies to.
      const nsRows = all.stdout.split('\n').filter((l) => /\bn\/s\s+n\/s\s+n\/s\s+\[\d+\]$/.test(l));
      const notes = all.stdout.match(/^ {2}\[\d+\] .*/gm) ?? [];
      expect(nsRows.length).toBeGreaterThan(notes.length);
      expect(new Set(notes).size).toBe(notes.length);
      for (const n of notes) expect(all.stdout.split(n.slice(n.indexOf('] ') + 2)).length - 1).toBe(1);
      const forced = runEnv({ FORCE_COLOR: '1' }, 'check', '--only', 'falloc');
      expect(forced.stdout).toContain(`${ESC}32m✓`);
    },
  );

  it.skipIf(!kvmAvailable || !hasScript)(
    `check colours a terminal's output and NO_COLOR turns it off${kvmAvailable && hasScript ? '' : ' [skipped: needs /dev/kvm and script(1)]'}`,
    () => {
      expect(runTty('', 'check --only falloc')).toContain(`${ESC}32m✓`);
      const off = runTty('NO_COLOR=1', 'check --only falloc');
      expect(off).toContain('✓');
      expect(off).not.toContain(ESC);
    },
  );

  it.skipIf(!kvmAvailable)(
    `check --json gives each kernel outcome once and the profiles' values only where they differ${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`,
    () => {
      const r = run('check', '--json');
      expect(r.status).toBe(0);
      const report = JSON.parse(r.stdout);
      // 313 KB before: the whole kernel result repeated in every cell and every difference.
      // 124 KB with the selftest mirrors (97 cases); each kernel outcome once keeps it well below that.
      expect(r.stdout.length).toBeLessThan(160_000);
      for (const row of report.rows)
        for (const mark of Object.values(row.cells)) expect(['match', 'differ', 'n/s', 'error']).toContain(mark);
      const reasons = report.verdict.notSupported.map((x: { reason: string }) => x.reason);
      expect(new Set(reasons).size).toBe(reasons.length);
      expect(report.verdict.notSupported.flatMap((x: { cases: string[] }) => x.cases).length).toBe(
        report.rows.filter((x: { kernel: { status: string } }) => x.kernel.status === 'n/s').length,
      );
      const d = report.verdict.differences['rfc-v5'].find((x: { details?: unknown }) => x.details);
      expect(d.details[0]).toHaveProperty('path');
      expect(d).not.toHaveProperty('kernel');
    },
  );
});
