#!/usr/bin/env node
// `npm run lint` and `npm run format`: ESLint (eslint.config.mjs) and Prettier (.prettierrc.json)
// over the TypeScript and JavaScript, clang-format (.clang-format) over the C++, and tsc over the
// tests, benchmarks, tools and examples (tsconfig.check.json, tsconfig.js.json; tsconfig.json
// covers lib/ when it builds). clang-format comes from Debian's package: when it is missing and
// this runs as root it is installed with apt-get, as tools/rig installs its tools.
//   node tools/lint.mjs [--fix] [--no-install] [--only eslint,prettier,clang-format,tsc] [PATH...]
// --fix (npm run format) rewrites files with Prettier, clang-format and eslint --fix instead of
// checking them. PATHs limit the Prettier, ESLint and clang-format steps to those files or folders.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  options: { fix: { type: 'boolean' }, 'no-install': { type: 'boolean' }, only: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const STEPS = ['eslint', 'prettier', 'clang-format', 'tsc'];
const only = values.only ? values.only.split(',') : STEPS;
for (const s of only) {
  if (!STEPS.includes(s)) {
    console.error(`lint: unknown step '${s}' (steps: ${STEPS.join(', ')})`);
    process.exit(2);
  }
}
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const CXX_DIRS = ['native', 'bench', 'guest'];
const CXX_EXT = /\.(cc|cpp|c|h|hpp)$/;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, cmd)));
}

/** clang-format, installed from Debian's package when missing (root only, unless --no-install). */
function clangFormat() {
  if (onPath('clang-format')) return 'clang-format';
  const how = 'apt-get install -y --no-install-recommends clang-format';
  if (values['no-install'] || process.getuid?.() !== 0 || !onPath('apt-get')) {
    throw new Error(`clang-format is missing: install it (${how})`);
  }
  console.error('lint: installing clang-format with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'clang-format'], { stdio: ['ignore', 2, 2], env })
      .status;
  // A fresh machine's package lists may be missing or stale: update once and try again.
  if (
    install() !== 0 &&
    (spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env }).status !== 0 || install() !== 0)
  ) {
    throw new Error(`apt-get could not install clang-format (${how})`);
  }
  return 'clang-format';
}

/** The C++ sources under the given paths (default: native/, bench/, guest/). */
function cxxFiles(paths) {
  const out = [];
  const walk = (p) => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p)) if (e !== 'node_modules' && !e.startsWith('build')) walk(path.join(p, e));
    } else if (CXX_EXT.test(p)) {
      out.push(path.relative(root, p));
    }
  };
  for (const p of paths.length ? paths : CXX_DIRS) walk(path.resolve(root, p));
  return out.sort();
}

const failed = [];
const step = (name, fn) => {
  if (!only.includes(name)) return;
  console.error(`== ${name}`);
  let status;
  try {
    status = fn();
  } catch (e) {
    console.error(`lint: ${e.message}`);
    status = 1;
  }
  if (status !== 0) failed.push(name);
};

const targets = positionals.length ? positionals : ['.'];
step('eslint', () => run(bin('eslint'), [...(values.fix ? ['--fix'] : []), '--max-warnings', '0', ...targets]));
step('prettier', () => run(bin('prettier'), [values.fix ? '--write' : '--check', '--log-level', 'warn', ...targets]));
step('clang-format', () => {
  const files = cxxFiles(positionals);
  if (files.length === 0) return 0;
  return run(clangFormat(), [...(values.fix ? ['-i'] : ['--dry-run', '--Werror']), ...files]);
});
step('tsc', () => {
  if (values.fix) return 0;
  return run(bin('tsc'), ['-p', 'tsconfig.check.json']) || run(bin('tsc'), ['-p', 'tsconfig.js.json']);
});

if (failed.length) {
  console.error(`lint: ${failed.join(', ')} failed`);
  process.exit(1);
}
console.error(values.fix ? 'format: done' : 'lint: clean');
