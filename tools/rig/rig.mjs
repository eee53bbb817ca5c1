#!/usr/bin/env node
// The kernel rig: boots a Debian kernel (or one built here from Debian's source) under QEMU's
// software emulation with nested KVM, runs a command inside against this checkout, and brings back
// its stdout, stderr and exit status. Facts it stands on: /work/shared/docs/kernel-rig.md.
//   npm run rig -- [options] <debian-6.12|debian-7.3|custom> <command...>
// Exit status: the command's; 124 on timeout; 125 when the rig itself failed; 2 on bad usage.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CUSTOM_DISABLED,
  GUEST_MODULES,
  KERNELS,
  RigUsageError,
  USAGE,
  commandScript,
  companionPackages,
  configHash,
  enableSymbols,
  guestEnv,
  hostTscKhz,
  initScript,
  missingOptions,
  moduleLoadOrder,
  parseArgs,
  pickNewest,
  qemuArgs,
  rigSources,
} from './lib.mjs';

class RigError extends Error {}
const log = (s) => process.stderr.write(`rig: ${s}\n`);
const t0 = Date.now();
const secs = (t) => ((Date.now() - t) / 1000).toFixed(1);

function cacheRoot() {
  if (process.env.KVM_GMEM_RIG_CACHE) return process.env.KVM_GMEM_RIG_CACHE;
  try {
    fs.mkdirSync('/var/cache/kvm-gmem-rig', { recursive: true });
    fs.accessSync('/var/cache/kvm-gmem-rig', fs.constants.W_OK);
    return '/var/cache/kvm-gmem-rig';
  } catch {
    return path.join(os.homedir(), '.cache', 'kvm-gmem', 'rig');
  }
}

// Every host command is bounded too (apt on a dead mirror, a wedged build): 15 min, builds 75.
/**
 * Runs a host command to its end; throws a RigError naming it when it fails or times out.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ quiet?: boolean, env?: NodeJS.ProcessEnv, cwd?: string, nice?: boolean, timeoutS?: number }} [opts]
 *   quiet: capture the output (and quote its end on failure) instead of inheriting the terminal
 * @returns {string} the command's stdout (empty when not quiet)
 */
function run(cmd, args, { quiet = true, env, cwd, nice = false, timeoutS = 900 } = {}) {
  const r = spawnSync(nice ? 'nice' : cmd, nice ? ['-n', '10', cmd, ...args] : args, {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    env: env ?? process.env,
    cwd,
    stdio: quiet ? 'pipe' : 'inherit',
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
  });
  // spawnSync's error is a system error (ErrnoException): its code tells a timeout apart.
  const error = /** @type {NodeJS.ErrnoException | undefined} */ (r.error);
  if (error?.code === 'ETIMEDOUT')
    throw new RigError(`${cmd} ${args.slice(0, 3).join(' ')}... did not finish in ${timeoutS} s; killed`);
  if (error) throw new RigError(`${cmd}: ${error.message}`);
  if (r.status !== 0)
    throw new RigError(
      `${cmd} ${args.join(' ')} failed (status ${r.status})${quiet ? `:\n${(r.stderr || r.stdout || '').trim().split('\n').slice(-15).join('\n')}` : ''}`,
    );
  return r.stdout ?? '';
}
const have = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;

// Host tools: binary -> Debian package.
const TOOLS = {
  'qemu-system-x86_64': 'qemu-system-x86',
  cpio: 'cpio',
  xz: 'xz-utils',
  zstd: 'zstd',
  depmod: 'kmod',
  'apt-get': 'apt',
  'dpkg-deb': 'dpkg',
};
const BUSYBOX = '/bin/busybox';
const BUILD_TOOLS = {
  gcc: 'build-essential',
  make: 'build-essential',
  bc: 'bc',
  bison: 'bison',
  flex: 'flex',
  'pkg-config': 'pkg-config',
};
const BUILD_FILES = { '/usr/include/libelf.h': 'libelf-dev', '/usr/include/openssl/ssl.h': 'libssl-dev' };

function ensurePackages(o, custom) {
  const missing = new Set();
  for (const [bin, pkg] of Object.entries(TOOLS)) if (!have(bin)) missing.add(pkg);
  // busybox-static: the initramfs needs a static busybox (the dynamic one needs the host's libc).
  const bb = spawnSync('file', ['-L', BUSYBOX], { encoding: 'utf8' });
  if (!fs.existsSync(BUSYBOX) || (bb.status === 0 && !/static/.test(bb.stdout))) missing.add('busybox-static');
  if (custom) {
    for (const [bin, pkg] of Object.entries(BUILD_TOOLS)) if (!have(bin)) missing.add(pkg);
    for (const [f, pkg] of Object.entries(BUILD_FILES)) if (!fs.existsSync(f)) missing.add(pkg);
  }
  if (missing.size === 0) return;
  const list = [...missing].sort();
  if (!o.install)
    throw new RigError(
      `missing packages: ${list.join(' ')} (install them: apt-get install ${list.join(' ')}, or drop --no-install)`,
    );
  log(`installing ${list.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    run('apt-get', ['install', '-y', '--no-install-recommends', ...list], { env });
  } catch {
    run('apt-get', ['update'], { env });
    run('apt-get', ['install', '-y', '--no-install-recommends', ...list], { env });
  }
}

// apt through a rig-private configuration: the host's Debian sources plus trixie-backports and sid,
// with lists and caches under the rig's cache, so the host's apt state is never changed.
function aptPrivate(cache) {
  const dir = path.join(cache, 'apt');
  for (const d of ['lists/partial', 'archives/partial', 'cache', 'etc'])
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  let host = '';
  for (const f of [
    '/etc/apt/sources.list',
    ...listDir('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f)),
  ]) {
    if (/\.(list|sources)$/.test(f) || f === '/etc/apt/sources.list') host += (safeRead(f) ?? '') + '\n\n';
  }
  const sources = rigSources(host);
  const srcFile = path.join(dir, 'etc', 'sources.list');
  if (safeRead(srcFile) !== sources) {
    fs.writeFileSync(srcFile, sources);
    fs.rmSync(path.join(dir, 'stamp'), { force: true });
  }
  const opts = [
    '-o',
    `Dir::Etc::SourceList=${srcFile}`,
    '-o',
    'Dir::Etc::SourceParts=/nonexistent',
    '-o',
    `Dir::State::Lists=${dir}/lists`,
    '-o',
    `Dir::Cache=${dir}/cache`,
    '-o',
    `Dir::Cache::Archives=${dir}/archives`,
    '-o',
    'APT::Get::List-Cleanup=0',
    '-o',
    'Acquire::Languages=none',
  ];
  const stamp = path.join(dir, 'stamp');
  const age = fs.existsSync(stamp) ? Date.now() - fs.statSync(stamp).mtimeMs : Infinity;
  const update = () => {
    const t = Date.now();
    run('apt-get', [...opts, 'update']);
    fs.writeFileSync(stamp, new Date().toISOString() + '\n');
    log(`apt lists (host sources + trixie-backports + sid) fetched in ${secs(t)} s`);
  };
  if (age > 24 * 3600e3) update();
  return {
    opts,
    update,
    names: () =>
      run('apt-cache', [...opts, 'pkgnames', 'linux-'])
        .split('\n')
        .filter(Boolean),
    show: (pkg) => run('apt-cache', [...opts, 'show', '--no-all-versions', pkg]),
    download: (pkgs, into) => run('apt-get', [...opts, 'download', ...pkgs], { cwd: into }),
  };
}

function listDir(d) {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}
function safeRead(f) {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return null;
  }
}
const field = (stanza, name) => (new RegExp(`^${name}: (.*)$`, 'm').exec(stanza) ?? [])[1] ?? '';

/** Fetches a package set and unpacks it (dpkg -x) into `into`; cached by the exact package versions. */
function fetchUnpack(apt, pkgs, into) {
  if (fs.existsSync(path.join(into, '.done'))) return;
  const debs = path.join(path.dirname(into), 'debs');
  fs.mkdirSync(debs, { recursive: true });
  const t = Date.now();
  apt.download(pkgs, debs);
  fs.rmSync(into, { recursive: true, force: true });
  fs.mkdirSync(into, { recursive: true });
  for (const f of listDir(debs).filter((f) => f.endsWith('.deb'))) run('dpkg-deb', ['-x', path.join(debs, f), into]);
  fs.writeFileSync(path.join(into, '.done'), pkgs.join('\n') + '\n');
  fs.rmSync(debs, { recursive: true, force: true });
  log(`fetched and unpacked ${pkgs.join(' ')} in ${secs(t)} s`);
}

function resolveImage(apt, spec) {
  let image = pickNewest(apt.names(), spec.image);
  if (!image) {
    apt.update();
    image = pickNewest(apt.names(), spec.image);
  }
  if (!image)
    throw new RigError(
      `no package matching ${spec.image} in the rig's apt sources (${path.join(apt.opts[1].split('=')[1])})`,
    );
  return [image, ...companionPackages(image, field(apt.show(image), 'Depends'))];
}

/** A Debian kernel: vmlinuz and the modules the guest needs, in load order, decompressed. */
function debianKernel(cache, apt, name) {
  const pkgs = resolveImage(apt, KERNELS[name]);
  const dir = path.join(cache, 'kernels', pkgs[0]);
  fetchUnpack(apt, pkgs, path.join(dir, 'root'));
  const root = path.join(dir, 'root');
  // 6.x images keep boot/vmlinuz-REL and /lib/modules; 7.x ones usr/lib/modules/REL/vmlinuz.
  /** @type {{ kernel: string, release: string } | null} */
  let found = null;
  const boot = listDir(path.join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (boot) found = { kernel: path.join(root, 'boot', boot), release: boot.slice('vmlinuz-'.length) };
  const modBase = fs.existsSync(path.join(root, 'lib', 'modules'))
    ? path.join(root, 'lib', 'modules')
    : path.join(root, 'usr', 'lib', 'modules');
  for (const rel of listDir(path.join(root, 'usr', 'lib', 'modules'))) {
    if (!found && fs.existsSync(path.join(root, 'usr', 'lib', 'modules', rel, 'vmlinuz')))
      found = { kernel: path.join(root, 'usr', 'lib', 'modules', rel, 'vmlinuz'), release: rel };
  }
  if (!found) throw new RigError(`${pkgs.join(' ')} hold no vmlinuz (looked in boot/ and usr/lib/modules/*/)`);
  const { kernel, release } = found;
  const modDir = path.join(modBase, release);
  // Debian generates modules.dep at install time (depmod in postinst); dpkg -x does not run it.
  if (!fs.existsSync(path.join(modDir, 'modules.dep'))) {
    if (!fs.existsSync(path.join(root, 'lib'))) fs.symlinkSync('usr/lib', path.join(root, 'lib'));
    run('depmod', ['-b', root, release]);
  }
  const dep = safeRead(path.join(modDir, 'modules.dep'));
  if (dep === null) throw new RigError(`no modules.dep for ${release} in ${modDir} after depmod`);
  const builtin = safeRead(path.join(modDir, 'modules.builtin'));
  if (builtin === null)
    log(`${release} ships no modules.builtin: a wanted module outside modules.dep is taken as built in`);
  const order = moduleLoadOrder(dep, builtin ?? GUEST_MODULES.join('\n'), GUEST_MODULES);
  return { kernel, release, modules: order.map((m) => path.join(modDir, m)), label: pkgs[0] };
}

/** The custom kernel: built once per config hash from linux-source-*, in the rig's cache. */
function customKernel(cache, apt, o) {
  const spec = KERNELS.custom;
  const stanza = apt.show(spec.source);
  const version = field(stanza, 'Version');
  if (!version) throw new RigError(`${spec.source} is not in the rig's apt sources`);
  const hash = configHash({ sourceVersion: `${spec.source}=${version}` });
  const out = path.join(cache, 'custom', hash);
  const image = path.join(out, 'bzImage');
  if (fs.existsSync(image))
    return { kernel: image, modules: [], label: `custom ${spec.source} ${version} config ${hash}` };
  const srcRoot = path.join(cache, 'src', `${spec.source}_${version}`);
  fetchUnpack(apt, [spec.source], path.join(srcRoot, 'pkg'));
  const tree = path.join(srcRoot, 'tree');
  if (!fs.existsSync(path.join(tree, 'Makefile'))) {
    const tarball = listDir(path.join(srcRoot, 'pkg', 'usr', 'src')).find((f) =>
      /^linux-source-.*\.tar\.(xz|gz|bz2|zst)$/.test(f),
    );
    if (!tarball) throw new RigError(`${spec.source} holds no usr/src/linux-source-*.tar.*`);
    const t = Date.now();
    fs.rmSync(tree, { recursive: true, force: true });
    fs.mkdirSync(tree, { recursive: true });
    run('tar', ['-xf', path.join(srcRoot, 'pkg', 'usr', 'src', tarball), '-C', tree, '--strip-components=1']);
    log(`unpacked ${tarball} in ${secs(t)} s`);
  }
  const t = Date.now();
  log(`building the custom kernel (config ${hash}) in ${tree}: about 11 minutes with make -j2 when nothing is cached`);
  const jobs = String(Math.max(1, Math.min(os.cpus().length, 2)));
  run('make', ['-C', tree, 'tinyconfig'], { nice: true });
  run(path.join(tree, 'scripts', 'config'), [
    '--file',
    path.join(tree, '.config'),
    ...enableSymbols().flatMap((x) => ['--enable', x]),
    ...CUSTOM_DISABLED.flatMap((x) => ['--disable', x]),
  ]);
  run('make', ['-C', tree, 'olddefconfig'], { nice: true });
  const miss = missingOptions(fs.readFileSync(path.join(tree, '.config'), 'utf8'));
  if (miss.length)
    throw new RigError(
      `the custom config lacks ${miss.map((m) => 'CONFIG_' + m).join(' ')} after olddefconfig (a dependency is off)`,
    );
  run('make', ['-C', tree, `-j${jobs}`, 'bzImage'], { nice: true, quiet: !o.verbose, timeoutS: 4500 });
  fs.mkdirSync(out, { recursive: true });
  fs.copyFileSync(path.join(tree, 'arch', 'x86', 'boot', 'bzImage'), image + '.tmp');
  fs.copyFileSync(path.join(tree, '.config'), path.join(out, 'config'));
  fs.renameSync(image + '.tmp', image);
  log(`built the custom kernel in ${secs(t)} s: ${image}`);
  return { kernel: image, modules: [], label: `custom ${spec.source} ${version} config ${hash}` };
}

/** The initramfs: static busybox, /init, the modules decompressed (busybox insmod reads plain .ko). */
function initramfs(cache, k) {
  const init = initScript({ modules: k.modules.map((m) => path.basename(m)) });
  const bb = fs.readFileSync(BUSYBOX);
  const h = createHash('sha256').update(init).update(bb).update(k.modules.join('\n')).digest('hex').slice(0, 16);
  const file = path.join(cache, 'initramfs', `${h}.cpio.gz`);
  if (fs.existsSync(file)) return file;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-rig-initrd-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules', 'run', 'tmp'])
      fs.mkdirSync(path.join(work, d), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(work, 'bin', 'busybox'));
    fs.chmodSync(path.join(work, 'bin', 'busybox'), 0o755);
    fs.writeFileSync(path.join(work, 'init'), init, { mode: 0o755 });
    for (const m of k.modules) {
      const base = path.basename(m);
      const dst = path.join(work, 'lib', 'modules', base.replace(/\.(xz|zst|gz)$/, ''));
      const tool = { xz: 'xz', zst: 'zstd', gz: 'gzip' }[(/\.(xz|zst|gz)$/.exec(base) ?? [])[1]];
      if (tool) {
        const d = spawnSync(tool, ['-dc', m], { maxBuffer: 256 << 20 });
        if (d.status !== 0) throw new RigError(`${tool} -dc ${m} failed: ${d.stderr}`);
        fs.writeFileSync(dst, d.stdout);
      } else fs.copyFileSync(m, dst);
      if (fs.statSync(dst).size === 0) throw new RigError(`decompressing ${m} gave nothing`);
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const r = spawnSync('sh', ['-c', 'find . -print0 | cpio --null -o -H newc --quiet | gzip -1'], {
      cwd: work,
      maxBuffer: 512 << 20,
    });
    if (r.status !== 0) throw new RigError(`cpio failed: ${r.stderr}`);
    fs.writeFileSync(file + '.tmp', r.stdout);
    fs.renameSync(file + '.tmp', file);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return file;
}

/** Boots, runs, and streams the command's output back as the guest writes it. */
function boot(o, k, initrd, append) {
  const job = fs.mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-rig-job-'));
  const cwd = process.env.INIT_CWD || process.cwd();
  fs.writeFileSync(
    path.join(job, 'cmd.sh'),
    commandScript({ cwd, argv: o.command, env: guestEnv(process.env, o.env) }),
    { mode: 0o755 },
  );
  for (const f of ['stdout', 'stderr']) fs.writeFileSync(path.join(job, f), '');
  const consoleLog = path.join(job, 'console.log');
  const consoleFd = fs.openSync(consoleLog, 'w');
  const qemu = spawn('qemu-system-x86_64', qemuArgs({ kernel: k.kernel, initrd, mem: o.mem, job, append }), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tBoot = Date.now();
  let tCommand = null;
  let consoleText = '';
  const onConsole = (buf) => {
    fs.writeSync(consoleFd, buf);
    if (o.verbose) process.stderr.write(buf);
    consoleText = (consoleText + buf.toString('latin1')).slice(-65536);
    if (tCommand === null && consoleText.includes('rig-init: running the command')) tCommand = Date.now();
  };
  qemu.stdout.on('data', onConsole);
  qemu.stderr.on('data', onConsole);
  // Forward what the command wrote so far (9p with cache=none writes through to the host file).
  const offsets = { stdout: 0, stderr: 0 };
  /** @type {Array<['stdout' | 'stderr', NodeJS.WriteStream]>} */
  const sinks = [
    ['stdout', process.stdout],
    ['stderr', process.stderr],
  ];
  const pump = () => {
    for (const [f, sink] of sinks) {
      let fd;
      try {
        fd = fs.openSync(path.join(job, f), 'r');
      } catch {
        continue;
      }
      try {
        const size = fs.fstatSync(fd).size;
        if (size > offsets[f]) {
          const b = Buffer.alloc(size - offsets[f]);
          fs.readSync(fd, b, 0, b.length, offsets[f]);
          offsets[f] = size;
          sink.write(b);
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  };
  const timer = setInterval(pump, 250);
  let timedOut = false;
  const kill = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGTERM');
    setTimeout(() => qemu.kill('SIGKILL'), 3000).unref();
  }, o.timeout * 1000);
  const onSignal = (sig) => {
    qemu.kill('SIGKILL');
    log(`${sig}: QEMU killed`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return new Promise((resolve) => {
    qemu.on('error', (e) => {
      clearInterval(timer);
      clearTimeout(kill);
      resolve({ error: `qemu: ${e.message}` });
    });
    qemu.on('exit', (code, signal) => {
      clearInterval(timer);
      clearTimeout(kill);
      pump();
      fs.closeSync(consoleFd);
      const status = safeRead(path.join(job, 'status'));
      const r = {
        job,
        consoleLog,
        consoleText,
        code,
        signal,
        timedOut,
        bootSecs: tCommand ? (tCommand - tBoot) / 1000 : null,
        totalSecs: (Date.now() - tBoot) / 1000,
      };
      r.status = status !== null && /^[0-9]+\s*$/.test(status) ? Number(status) : null;
      resolve(r);
    });
  });
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof RigUsageError) {
      process.stderr.write(`rig: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (process.getuid?.() !== 0) log('not root: apt-get install and the cache under /var/cache may fail');
  const cache = cacheRoot();
  fs.mkdirSync(cache, { recursive: true });
  ensurePackages(o, o.kernel === 'custom');
  const apt = aptPrivate(cache);
  const k = o.kernel === 'custom' ? customKernel(cache, apt, o) : debianKernel(cache, apt, o.kernel);
  if (o.buildOnly) {
    log(`kernel ready: ${k.kernel}`);
    return 0;
  }
  const initrd = initramfs(cache, k);
  // The custom kernel is told the TSC rate it cannot calibrate (hostTscKhz in lib.mjs says why).
  let append = '';
  if (o.kernel === 'custom') {
    const khz = hostTscKhz(safeRead('/proc/cpuinfo') ?? '');
    if (khz !== null) append = `tsc_early_khz=${khz}`;
    else log('the host shows no constant TSC rate: the kernel calibrates its own, which can fail under TCG');
  }
  log(`booting ${k.label} under QEMU TCG (timeout ${o.timeout} s)${append ? `, ${append}` : ''}`);
  const r = await boot(o, k, initrd, append);
  if (r.error) throw new RigError(r.error);
  const tail = () => r.consoleText.split('\n').slice(-25).join('\n');
  if (r.timedOut) {
    log(
      `timeout: QEMU killed after ${o.timeout} s; the guest's console is kept in ${r.consoleLog}; its end:\n${tail()}`,
    );
    return 124;
  }
  if (r.status === null) {
    log(
      `the guest ended without the command's exit status (QEMU ${r.signal ?? 'status ' + r.code}); console kept in ${r.consoleLog}; its end:\n${tail()}`,
    );
    return 125;
  }
  for (const m of r.consoleText.matchAll(/rig-init: (insmod .* failed|.*failed.*|\/dev\/kvm absent)/g))
    log(`guest: ${m[1]}`);
  log(
    `${o.kernel}: exit status ${r.status}; boot ${r.bootSecs?.toFixed(1) ?? '?'} s, whole run ${r.totalSecs.toFixed(1)} s (rig total ${secs(t0)} s)`,
  );
  fs.rmSync(r.job, { recursive: true, force: true });
  return r.status;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof RigError) log(e.message);
    else log(`internal error: ${e.stack ?? e}`);
    process.exit(125);
  },
);
