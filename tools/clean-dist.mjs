#!/usr/bin/env node
// Removes what tsc left in dist/ from a source that no longer exists in lib/ (a renamed or deleted
// module keeps its old .js, .d.ts and .map otherwise, and the package would ship them). Runs
// before every tsc of the library (`prepare`, `build`, `build:ts`). Files with a source are kept,
// so an incremental build stays incremental.
import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const OUTPUT = /^(.*?)(\.d\.ts\.map|\.d\.ts|\.js\.map|\.js)$/;

/**
 * Deletes each file under `dist` whose source (`<name>.ts` at the same place under `src`) is gone,
 * and the folders left empty. Returns the removed files, relative to `dist`, sorted.
 * @param {string} dist
 * @param {string} src
 * @returns {string[]}
 */
export function cleanDist(dist, src) {
  /** @type {string[]} */
  const removed = [];
  /** @param {string} rel */
  const walk = (rel) => {
    const dir = path.join(dist, rel);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        walk(r);
        if (readdirSync(path.join(dist, r)).length === 0) rmdirSync(path.join(dist, r));
        continue;
      }
      const m = OUTPUT.exec(e.name);
      if (m && existsSync(path.join(src, rel, `${m[1]}.ts`))) continue;
      rmSync(path.join(dist, r));
      removed.push(r);
    }
  };
  if (existsSync(dist)) walk('');
  return removed.sort();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const removed = cleanDist(path.join(root, 'dist'), path.join(root, 'lib'));
  if (removed.length) console.log(`clean-dist: removed ${removed.length} stale file(s): ${removed.join(', ')}`);
}
