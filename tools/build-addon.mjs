#!/usr/bin/env node
// Builds the addon with the node-gyp that npm ships, always against the headers of the Node that
// runs this script, so no build ever downloads anything.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function findNodeGyp() {
  // npm tells lifecycle scripts where its node-gyp is.
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return process.env.npm_config_node_gyp;
  }
  const npmCli = process.env.npm_execpath;
  const candidates = [];
  if (npmCli) candidates.push(path.resolve(path.dirname(npmCli), '../node_modules/node-gyp/bin/node-gyp.js'));
  candidates.push(path.resolve(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    throw new Error('node-gyp not found: it ships with npm; reinstall npm or set npm_config_node_gyp');
  }
}

const nodedir = path.resolve(process.execPath, '../..');
if (!existsSync(path.join(nodedir, 'include/node/node_api.h'))) {
  console.error(`build-addon: no Node headers under ${nodedir}/include/node; install them (they come with Node)`);
  process.exit(1);
}
const args = [findNodeGyp(), 'rebuild', `--nodedir=${nodedir}`, '-j', 'max', ...process.argv.slice(2)];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
