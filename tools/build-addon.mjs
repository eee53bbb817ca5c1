#!/usr/bin/env node
// Builds the addon with the node-gyp that npm ships, always against the headers of the Node that
// runs this script, so no build ever downloads anything.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
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

/** Whether `cmd` (a name or a path) is an executable on PATH. */
function onPath(cmd) {
  const dirs = cmd.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return dirs.some((d) => {
    try {
      accessSync(d ? path.join(d, cmd) : cmd, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// node-gyp's own failure without a compiler is a long Python traceback: say in one line what is missing.
const cxx = (process.env.CXX ?? '').split(' ')[0];
/** @type {[string, string[]][]} */
const tools = [
  ['make', ['make']],
  ['a C++ compiler (g++ or $CXX)', cxx ? [cxx] : ['c++', 'g++', 'clang++']],
  ['python3 (node-gyp runs on it)', process.env.PYTHON ? [process.env.PYTHON] : ['python3']],
];
const missing = tools.filter(([, names]) => !names.some(onPath)).map(([what]) => what);
// Exit 3 tells tools/install.mjs that nothing was tried (an installed package then still works, as
// the simulator); any other failure is a build that was tried and failed.
if (missing.length) {
  console.error(
    `kvm-gmem: cannot build the native addon: missing ${missing.join(', ')}. Install them (Debian/Ubuntu: apt-get install build-essential python3), then run \`npm rebuild kvm-gmem\`; until then only the simulator works.`,
  );
  process.exit(3);
}

const nodedir = path.resolve(process.execPath, '../..');
if (!existsSync(path.join(nodedir, 'include/node/node_api.h'))) {
  console.error(`build-addon: no Node headers under ${nodedir}/include/node; install them (they come with Node)`);
  process.exit(1);
}
const args = [findNodeGyp(), 'rebuild', `--nodedir=${nodedir}`, '-j', 'max', ...process.argv.slice(2)];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
