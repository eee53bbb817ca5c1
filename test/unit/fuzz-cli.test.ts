// tools/fuzz.mjs as a command: --help prints its usage and exits 0, bad options exit 2 saying why.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const tool = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tools/fuzz.mjs');
const run = (...args: string[]) => spawnSync(process.execPath, [tool, ...args], { encoding: 'utf8' });

it('--help and -h print the usage, exit 0', () => {
  for (const flag of ['--help', '-h']) {
    const r = run(flag);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: node tools\/fuzz\.mjs/);
    expect(r.stdout).toContain('--seeds N');
  }
});

it('an unknown option or a non-numeric count exits 2 with the reason', () => {
  const unknown = run('--bogus');
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toContain("Unknown option '--bogus'");
  const nan = run('--steps', 'many');
  expect(nan.status).toBe(2);
  expect(nan.stderr).toContain('--steps must be a non-negative integer');
});
