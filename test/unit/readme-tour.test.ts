// The README's API tour "runs as written on the real kernel, or on the simulator where there is no
// /dev/kvm": run its code block against the simulator the fallback gives (open()'s default profile).
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

it("the README's API tour runs on the simulator open() falls back to", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const tour = readme.slice(readme.indexOf('## API tour'));
  const code = /```js\n([\s\S]*?)```/.exec(tour)![1]!;
  expect(code).toContain('open()');
  const entry = pathToFileURL(path.resolve('dist/index.js')).href;
  // The fallback's simulator, as on a machine without /dev/kvm: open() with no backend named.
  const script = code.replace("from 'kvm-gmem'", `from '${entry}'`).replace('open()', "open({ backend: 'sim' })");
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-tour-')), 'tour.mjs');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n')[0]).toBe('hello, guest');
});
