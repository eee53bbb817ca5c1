#!/usr/bin/env node
// Builds bench/kernel/structures.c against the kernel's own lib/xarray.c, lib/maple_tree.c and
// lib/interval_tree.c, in userspace, through tools/testing/radix-tree's shims (tools/testing/shared:
// linux.c's kmem_cache, the rcupdate/spinlock headers, liburcu), -O2 and no debug options.
// The sources come from Debian's linux-source-6.12 package at run time: only the files the build
// needs are extracted, into a cache outside the repo (KVM_GMEM_CACHE, else ~/.cache/kvm-gmem).
//
//   node bench/kernel/build.mjs      builds (installing the packages when root) and prints the binary's path
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export const PACKAGE = 'linux-source-6.12';
export const TARBALL = `/usr/src/${PACKAGE}.tar.xz`;
export const APT_COMMAND = `apt-get install -y ${PACKAGE} liburcu-dev`;

// What the harness build reads, relative to the tarball's top directory.
const MEMBERS = [
  'tools/testing/radix-tree/*',
  'tools/testing/shared/*',
  'tools/include/*',
  'tools/arch/x86/include/*',
  'tools/lib/slab.c',
  'tools/lib/find_bit.c',
  'tools/lib/bitmap.c',
  'tools/lib/hweight.c',
  'tools/lib/vsprintf.c',
  'tools/lib/rbtree.c',
  'lib/xarray.c',
  'lib/maple_tree.c',
  'lib/interval_tree.c',
  'lib/radix-tree.c',
  'lib/radix-tree.h',
  'include/linux/*',
  'include/uapi/*',
  'include/asm-generic/*',
  'include/vdso/*',
];

// The objects: the three kernel files (each through a one-line wrapper), the harness's shims.
const WRAPPERS = {
  'k_xarray.c': '#include "shared.h"\n#include "lib/xarray.c"\n',
  // maple_node_cache is static in maple_tree.c; the benchmark reads its size through this.
  'k_maple.c':
    '#include "shared.h"\n#include <stdlib.h>\n#include <time.h>\n#include "linux/init.h"\n#include "lib/maple_tree.c"\n' +
    'unsigned long kbench_maple_node_bytes(void) { return kmem_cache_get_alloc(maple_node_cache); }\n',
  'k_interval_tree.c': '#include "lib/interval_tree.c"\n',
};
const HARNESS_C = [
  'tools/testing/shared/linux.c',
  'tools/lib/slab.c',
  'tools/lib/find_bit.c',
  'tools/lib/bitmap.c',
  'tools/lib/hweight.c',
  'tools/lib/vsprintf.c',
  'tools/lib/rbtree.c',
];
const CFLAGS = ['-O2', '-D_LGPL_SOURCE', '-fno-strict-aliasing'];

function cacheRoot() {
  if (process.env.KVM_GMEM_CACHE) return process.env.KVM_GMEM_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'kvm-gmem');
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    const msg = (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-6).join(' | ');
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}... failed: ${msg}`);
  }
  return r.stdout;
}

function packageVersion() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', PACKAGE], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  const st = statSync(TARBALL);
  return `unknown-${st.size}-${Math.round(st.mtimeMs)}`;
}

/** Installs the packages when they are missing and we are root; otherwise says what to run. */
function ensurePackages(log) {
  const urcu = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'liburcu-dev'], { encoding: 'utf8' });
  const missing = !existsSync(TARBALL) || !/install ok installed/.test(urcu.stdout ?? '');
  if (!missing) return;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(`${TARBALL} or liburcu-dev is missing; as root run: ${APT_COMMAND}`);
  }
  log(`installing ${PACKAGE} and liburcu-dev (${APT_COMMAND})`);
  const apt = (/** @type {string[]} */ args) =>
    spawnSync('apt-get', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  let r = apt(['install', '-y', PACKAGE, 'liburcu-dev']);
  // A fresh machine's package lists may be empty or stale: refresh them once and ask again.
  if (r.status !== 0) {
    log('apt-get install failed; running apt-get update and trying again');
    apt(['update']);
    r = apt(['install', '-y', PACKAGE, 'liburcu-dev']);
  }
  if (r.status !== 0 || !existsSync(TARBALL)) {
    throw new Error(
      `${APT_COMMAND} failed, also after apt-get update: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`,
    );
  }
}

function extract(srcDir, log) {
  if (existsSync(path.join(srcDir, '.complete'))) return;
  log(`extracting the harness and three lib/ files from ${TARBALL} into ${srcDir}`);
  const tmp = `${srcDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const top = run('sh', ['-c', `tar -tJf ${TARBALL} | head -1`])
    .trim()
    .split('/')[0];
  run('tar', ['-xJf', TARBALL, '-C', tmp, '--strip-components=1', '--wildcards', ...MEMBERS.map((m) => `${top}/${m}`)]);
  writeFileSync(path.join(tmp, '.complete'), `${top}\n`);
  rmSync(srcDir, { recursive: true, force: true });
  renameSync(tmp, srcDir);
}

function sourcesHash() {
  const h = createHash('sha256');
  for (const f of [
    'bench/kernel/structures.c',
    'bench/kernel/extent_map_c.cc',
    'native/extent_map.cc',
    'native/extent_map.h',
    'bench/kernel/build.mjs',
  ]) {
    h.update(f).update(readFileSync(path.join(root, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Returns { exe, srcDir, version } or throws with the reason (missing package, compiler error).
 * `log` gets one line per slow step.
 */
/** @param {{ log?: (line: string) => void }} [options] */
export function buildStructuresBench({ log = () => {} } = {}) {
  ensurePackages(log);
  const version = packageVersion();
  const cache = path.join(cacheRoot(), 'kernel-src');
  const srcDir = path.join(cache, `${PACKAGE}_${version}`);
  mkdirSync(cache, { recursive: true });
  extract(srcDir, log);
  const buildDir = path.join(cache, `build-${version}-${sourcesHash()}`);
  const exe = path.join(buildDir, 'structures');
  if (existsSync(exe)) return { exe, srcDir, version };

  log(`compiling lib/xarray.c, lib/maple_tree.c, lib/interval_tree.c and the harness (-O2) in ${buildDir}`);
  const tmp = `${buildDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'gen', 'generated'), { recursive: true });
  mkdirSync(path.join(tmp, 'ovl', 'linux'), { recursive: true });
  // The harness's generated headers. 64 slots per xarray node, as the kernel on 64-bit machines
  // (XA_CHUNK_SHIFT is 6 unless CONFIG_BASE_SMALL); the harness defaults to 3 to stress its tests.
  writeFileSync(path.join(tmp, 'gen', 'generated', 'map-shift.h'), '#define XA_CHUNK_SHIFT 6\n');
  writeFileSync(path.join(tmp, 'gen', 'generated', 'bit-length.h'), '#define CONFIG_64BIT 1\n');
  copyFileSync(path.join(srcDir, 'tools/testing/shared/autoconf.h'), path.join(tmp, 'gen', 'generated', 'autoconf.h'));
  // tools/include has interval_tree_generic.h but not the kernel's interval_tree.h.
  copyFileSync(path.join(srcDir, 'include/linux/interval_tree.h'), path.join(tmp, 'ovl', 'linux', 'interval_tree.h'));
  // As the harness's shared.mk does: radix-tree.c with its statics made visible to the shims.
  const rt = readFileSync(path.join(srcDir, 'lib/radix-tree.c'), 'utf8')
    .replace(/^static /gm, '')
    .replace(/__always_inline /g, '')
    .replace(/inline /g, '');
  writeFileSync(path.join(tmp, 'radix-tree.c'), rt);
  for (const [name, text] of Object.entries(WRAPPERS)) writeFileSync(path.join(tmp, name), text);

  const inc = ['gen', 'tools/testing/shared', 'tools/testing/radix-tree', 'tools/include'].map((d) =>
    d === 'gen' ? path.join(tmp, d) : path.join(srcDir, d),
  );
  const incFlags = [
    ...inc.flatMap((d) => ['-I', d]),
    '-I',
    path.join(tmp, 'ovl'),
    '-I',
    path.join(srcDir, 'lib'),
    '-I',
    srcDir,
  ];
  const objs = [];
  const cc = (src, obj, extra = ['-w']) => {
    run('nice', ['-n', '10', 'gcc', ...CFLAGS, ...extra, ...incFlags, '-c', src, '-o', obj], { cwd: tmp });
    objs.push(obj);
  };
  for (const name of Object.keys(WRAPPERS)) cc(path.join(tmp, name), path.join(tmp, name.replace(/\.c$/, '.o')));
  cc(path.join(tmp, 'radix-tree.c'), path.join(tmp, 'radix-tree.o'));
  for (const f of HARNESS_C) cc(path.join(srcDir, f), path.join(tmp, path.basename(f, '.c') + '-h.o'));
  cc(path.join(here, 'structures.c'), path.join(tmp, 'structures.o'), [
    '-Wall',
    '-Wextra',
    '-Wno-unused-parameter',
    '-Wno-sign-compare',
    '-Wno-missing-field-initializers',
  ]);
  for (const f of [path.join(here, 'extent_map_c.cc'), path.join(root, 'native', 'extent_map.cc')]) {
    const obj = path.join(tmp, path.basename(f, '.cc') + '-cxx.o');
    run('nice', ['-n', '10', 'g++', '-std=c++17', '-O2', '-Wall', '-Wextra', '-c', f, '-o', obj]);
    objs.push(obj);
  }
  run('g++', ['-o', path.join(tmp, 'structures'), ...objs, '-lurcu', '-lpthread']);
  rmSync(buildDir, { recursive: true, force: true });
  renameSync(tmp, buildDir);
  return { exe, srcDir, version };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const r = buildStructuresBench({ log: (m) => process.stderr.write(`kernel bench: ${m}\n`) });
    process.stdout.write(`${r.exe}\n`);
  } catch (e) {
    process.stderr.write(`kernel bench: ${e.message}\n`);
    process.exit(1);
  }
}
