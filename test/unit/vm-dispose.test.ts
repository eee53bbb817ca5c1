// `using` under vitest's vmThreads pool (issue 17): runs a consumer-style vitest project whose
// test file lives in a vm context, where Node 20 has no Symbol.dispose.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { DISPOSABLE } from '../../lib/dispose.js';

const root = path.resolve(__dirname, '../..');

it('a vmThreads test file disposes kvm-gmem objects with `using`', () => {
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/vm-threads/vitest.config.ts'],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined },
    },
  );
  expect(r.status, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/Tests\s+1 passed/);
});

it('every class of lib/ with a [Symbol.dispose] method is in the list that adds the other keys', () => {
  const files = readdirSync(path.join(root, 'lib'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  );
  const found: string[] = [];
  for (const f of files) {
    const text = readFileSync(path.join(root, 'lib', f), 'utf8');
    for (const m of text.matchAll(/class (\w+)[^{]*\{([\s\S]*?)\n\}/g))
      if (m[2]!.includes('[Symbol.dispose]()')) found.push(m[1]!);
  }
  expect(found.sort()).toEqual(DISPOSABLE.map(([c]) => c.name).sort());
});
