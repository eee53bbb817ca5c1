// The kvm-gmem command as a user meets it: help, unknown commands, probe, and the demo.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmAvailable, kvmSkipReason } from '../helpers/kvm.js';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'dist', 'cli.js');

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('kvm-gmem command', () => {
  beforeAll(() => {
    // dist/ is what `npm install` builds (prepare); compile it when this checkout has none.
    if (!existsSync(cli)) spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
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
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.kvm).toMatchObject({ available: false, path: '/nonexistent/kvm', error: { code: 'ENOENT' } });
    const table = run('probe', '--path', '/nonexistent/kvm');
    expect(table.stdout).toMatch(/unavailable .*ENOENT/);
  });

  it('demo without a usable /dev/kvm says so and still runs the simulator part', () => {
    const r = run('demo', '--path', '/nonexistent/kvm');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('No usable /nonexistent/kvm here');
    expect(r.stdout).toContain('host drops its reference: the pending pages complete to private');
    expect(r.stdout).toMatch(/████████░░░░▒▒░░/);
  });

  it.skipIf(!kvmAvailable)(`demo on real KVM: the guest's message is read by the host and the SIGBUS is caught${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`, () => {
    const r = run('demo');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('vCPU exit: io (port 0x10, out)');
    expect(r.stdout).toContain('host reads gpa 0x2000 through its mapping: "Hello from the guest!"');
    expect(r.stdout).toContain('caught HostAccessError (SIGBUS) at guest_memfd offset 0x1234');
  });
});
