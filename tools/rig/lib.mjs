// The rig's pure parts: argument parsing, kernel names, package choice, module ordering, config
// hashing, shell quoting and the guest's scripts. No I/O here, so test/unit/rig.test.ts covers it.
import { createHash } from 'node:crypto';

export const USAGE = `usage: npm run rig -- [options] <kernel> <command...>
  kernels: debian-6.12, debian-6.18, debian-7.3, custom
  options (before the kernel's name):
    --timeout S     kill QEMU after S seconds of wall time (default 900)
    --mem SIZE      guest memory, QEMU syntax (default 3G)
    --no-install    never run apt-get install; fail naming the missing packages
    --verbose       stream the guest's console (kernel log) to stderr
    --build-only    custom: build (or find cached) the kernel and stop
    --env NAME=VAL  set a variable for the command (repeatable); KVM_GMEM_* and CI pass through
  The command runs inside the guest, chrooted into this machine's root (read-only, with a tmpfs
  overlay on top) with cwd = the current directory; its stdout, stderr and exit status come back.`;

export class RigUsageError extends Error {}

/**
 * What `parseArgs` returns. `kernel` is null only with `help`, which stops the parse.
 * @typedef {object} RigOptions
 * @property {number} timeout seconds of wall time before QEMU is killed
 * @property {string} mem guest memory, QEMU syntax
 * @property {boolean} install whether missing host packages may be installed with apt-get
 * @property {boolean} verbose stream the guest's console
 * @property {boolean} buildOnly custom kernel: build and stop
 * @property {Record<string, string>} env variables for the command (--env)
 * @property {string | null} kernel a key of KERNELS
 * @property {string[]} command the command to run inside the guest
 * @property {boolean} [help] --help was given
 */

/**
 * Splits `[options] <kernel> <command...>`; options stop at the kernel's name or at `--`.
 * @param {string[]} argv
 * @returns {RigOptions}
 */
export function parseArgs(argv) {
  /** @type {RigOptions} */
  const o = {
    timeout: 900,
    mem: '3G',
    install: true,
    verbose: false,
    buildOnly: false,
    env: {},
    kernel: null,
    command: [],
  };
  let i = 0;
  const value = (name) => {
    if (i + 1 >= argv.length) throw new RigUsageError(`${name} needs a value`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    if (a === '--timeout') {
      const s = value(a);
      if (!/^[0-9]+$/.test(s) || Number(s) < 1 || Number(s) > 86400)
        throw new RigUsageError(`--timeout: a whole number of seconds in 1..86400, not '${s}'`);
      o.timeout = Number(s);
    } else if (a === '--mem') {
      const s = value(a);
      if (!/^[1-9][0-9]*[MG]$/.test(s)) throw new RigUsageError(`--mem: a size like 2048M or 3G, not '${s}'`);
      o.mem = s;
    } else if (a === '--env') {
      const s = value(a);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(s);
      if (!m) throw new RigUsageError(`--env: NAME=VALUE, not '${s}'`);
      o.env[m[1]] = m[2];
    } else if (a === '--no-install') o.install = false;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--build-only') o.buildOnly = true;
    else if (a === '--help' || a === '-h') {
      o.help = true;
      return o;
    } else throw new RigUsageError(`unknown option '${a}'`);
  }
  if (i >= argv.length) throw new RigUsageError('no kernel named');
  const kernel = argv[i++];
  if (!(kernel in KERNELS))
    throw new RigUsageError(`unknown kernel '${kernel}' (known: ${Object.keys(KERNELS).join(', ')})`);
  o.kernel = kernel;
  o.command = argv.slice(i);
  if (o.command.length === 0 && !o.buildOnly) throw new RigUsageError(`no command to run inside ${o.kernel}`);
  if (o.buildOnly && o.kernel !== 'custom') throw new RigUsageError('--build-only is for the custom kernel');
  return o;
}

// Modules the guest loads from a Debian image, by name; their dependencies come from modules.dep.
// kvm_amd runs the nested guests; 9p and virtio carry the host's root; overlay makes it writable.
export const GUEST_MODULES = ['kvm_amd', 'virtio_pci', '9pnet_virtio', '9p', 'overlay'];

/**
 * Kernels by name. `image` picks the newest package whose name matches; `extra` names the packages
 * of the same ABI it needs besides (7.x splits the image into binary and modules).
 */
export const KERNELS = {
  'debian-6.12': {
    what: "Debian bookworm's 6.12 (guest_memfd without the MMAP flag)",
    image: /^linux-image-6\.12\.[0-9]+\+deb12-amd64$/,
  },
  'debian-6.18': {
    what: "Debian's 6.18 from sid (mainline 6.18's guest_memfd: MMAP, INIT_SHARED, gmem-only slots)",
    image: /^linux-image-6\.18\.[0-9]+\+deb1[0-9]-amd64$/,
  },
  'debian-7.3': {
    what: "Debian's 7.3 from trixie-backports (guest_memfd with MMAP and INIT_SHARED)",
    image: /^linux-image-7\.3\.[0-9]+\+deb1[0-9]-amd64$/,
  },
  custom: {
    what: "a small kernel built from Debian's linux-source-7.3 with KVM_SW_PROTECTED_VM (VM type 1)",
    source: 'linux-source-7.3',
  },
};

/** Compares dotted version strings numerically, part by part ('6.12.9' < '6.12.10'). */
export function compareVersions(a, b) {
  const pa = a.split(/[.+~-]/),
    pb = b.split(/[.+~-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '',
      y = pb[i] ?? '';
    const nx = /^[0-9]+$/.test(x),
      ny = /^[0-9]+$/.test(y);
    const c = nx && ny ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

/** The newest package name matching `re`, or null. */
export function pickNewest(names, re) {
  const hits = names.filter((n) => re.test(n));
  hits.sort((a, b) => compareVersions(a.replace(/^linux-image-/, ''), b.replace(/^linux-image-/, '')));
  return hits.length ? hits[hits.length - 1] : null;
}

/** From an image package's Depends line, the kernel packages of the same ABI to fetch with it. */
export function companionPackages(image, depends) {
  const abi = image.replace(/^linux-image-/, '');
  const out = [];
  for (const alt of depends.split(',')) {
    const name = alt.trim().split(/\s|\|/)[0];
    if (new RegExp(`^linux-(binary|modules|image-unsigned)-${abi.replace(/[.+]/g, '\\$&')}$`).test(name))
      out.push(name);
  }
  return out;
}

/**
 * The load order for `wanted` from a modules.dep text: dependencies first, each module once.
 * Returns the paths as modules.dep writes them; built-in modules (in modules.builtin) are dropped.
 * Throws naming a wanted module that is neither a module nor built in.
 */
export function moduleLoadOrder(depText, builtinText, wanted) {
  const key = (p) =>
    p
      .replace(/^.*\//, '')
      .replace(/\.ko(\.[a-z]+)?$/, '')
      .replace(/-/g, '_');
  const deps = new Map();
  for (const line of depText.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line.trim());
    if (m) deps.set(key(m[1]), { path: m[1], deps: m[2].split(/\s+/).filter(Boolean).map(key) });
  }
  const builtin = new Set(builtinText.split('\n').filter(Boolean).map(key));
  const order = [],
    seen = new Set();
  const visit = (name, chain) => {
    if (seen.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const d = deps.get(name);
    if (!d) {
      if (builtin.has(name)) {
        seen.add(name);
        return;
      }
      throw new Error(`module '${name}' is neither in modules.dep nor built in`);
    }
    for (const x of d.deps) visit(x, [...chain, name]);
    seen.add(name);
    order.push(d.path);
  };
  for (const w of wanted) visit(key(w), []);
  return order;
}

// tinyconfig plus these, for the custom kernel (kernel-rig.md's measured list, plus OVERLAY_FS for
// the writable root). 'A|B': either symbol (7.x renamed PROC_SYSCTL to SYSCTL). Changing the list
// changes the config hash, which rebuilds the kernel.
export const CUSTOM_OPTIONS = [
  '64BIT',
  'SMP',
  'PRINTK',
  'BUG',
  'MULTIUSER',
  'FUTEX',
  'EPOLL',
  'SIGNALFD',
  'TIMERFD',
  'EVENTFD',
  'SHMEM',
  'AIO',
  'IO_URING',
  'ADVISE_SYSCALLS',
  'MEMBARRIER',
  'FILE_LOCKING',
  'POSIX_TIMERS',
  'HIGH_RES_TIMERS',
  'TTY',
  'SERIAL_8250',
  'SERIAL_8250_CONSOLE',
  'BLK_DEV_INITRD',
  'RD_GZIP',
  'BINFMT_ELF',
  'BINFMT_SCRIPT',
  'DEVTMPFS',
  'PROC_FS',
  'PROC_SYSCTL|SYSCTL',
  'SYSFS',
  'TMPFS',
  'UNIX98_PTYS',
  'NET',
  'UNIX',
  'INET',
  'PCI',
  'VIRTIO_MENU',
  'VIRTIO',
  'VIRTIO_PCI',
  'NET_9P',
  'NET_9P_VIRTIO',
  'NETWORK_FILESYSTEMS',
  '9P_FS',
  'OVERLAY_FS',
  'CPU_SUP_AMD',
  'CPU_SUP_INTEL',
  'X86_MPPARSE',
  'HYPERVISOR_GUEST',
  'PARAVIRT',
  'KVM_GUEST',
  'EXPERT',
  'VIRTUALIZATION',
  'KVM',
  'KVM_AMD',
  'KVM_INTEL',
  'KVM_SW_PROTECTED_VM',
  'TRANSPARENT_HUGEPAGE',
  'DEBUG_INFO_NONE',
];
export const CUSTOM_DISABLED = ['MODULES'];

/** What decides the custom kernel's contents: the source package's version and the option lists. */
export function configHash({ sourceVersion, enable = CUSTOM_OPTIONS, disable = CUSTOM_DISABLED }) {
  const text = JSON.stringify({
    v: 1,
    sourceVersion,
    enable: [...new Set(enable)].sort(),
    disable: [...new Set(disable)].sort(),
  });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Every symbol to pass to scripts/config --enable (both sides of an 'A|B'). */
export const enableSymbols = (want = CUSTOM_OPTIONS) => want.flatMap((o) => o.split('|'));

/** Options of `want` that a .config text does not set to y (`# CONFIG_X is not set` counts as missing). */
export function missingOptions(configText, want = CUSTOM_OPTIONS) {
  const set = new Set();
  for (const line of configText.split('\n')) {
    const m = /^CONFIG_([A-Za-z0-9_]+)=y$/.exec(line);
    if (m) set.add(m[1]);
  }
  return want.filter((o) => !o.split('|').some((x) => set.has(x)));
}

/** One word for sh: left bare when it holds only safe characters, else in single quotes. */
export function shellQuote(word) {
  const s = String(word);
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script the guest runs in the chroot: environment, cwd, then the command, its status kept. */
export function commandScript({ cwd, argv, env }) {
  const lines = ['#!/bin/sh', '# written by tools/rig: runs inside the guest, in the chroot'];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad environment name '${k}'`);
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`cd ${shellQuote(cwd)} || exit 126`);
  lines.push(`exec ${argv.map(shellQuote).join(' ')}`);
  return lines.join('\n') + '\n';
}

/** The environment the command sees: a plain PATH and HOME, CI and KVM_GMEM_* from the host, then --env. */
export function guestEnv(hostEnv, extra) {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    TERM: 'dumb',
    LANG: 'C.UTF-8',
    KVM_GMEM_RIG: '1',
    // The guest has no network: npm's once-a-day update check would wait on it.
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  for (const [k, v] of Object.entries(hostEnv)) if (/^(KVM_GMEM_|CI$)/.test(k) && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

// Where the job directory appears in the guest's chroot (/run is a fresh tmpfs there).
export const GUEST_JOB = '/run/rig-job';

/** The initramfs's /init (busybox sh): modules, the host's root as an overlay, the chroot, the result. */
export function initScript({ modules }) {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "rig-init: $*" > /dev/console; }
for m in ${modules.map((m) => shellQuote('/lib/modules/' + m.replace(/\.(xz|zst|gz)$/, ''))).join(' ')}; do
  insmod "$m" || say "insmod $m failed"
done
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose host0 /lower || say "mounting the host's root failed"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot; then
  say "overlay failed: the root stays read-only"
  mount --bind /lower /newroot
fi
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t tmpfs run /newroot/run
mkdir -p /newroot${GUEST_JOB}
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none job /newroot${GUEST_JOB} || say "mounting the job directory failed"
if [ -e /dev/kvm ]; then say "/dev/kvm present"; else say "/dev/kvm absent"; fi
say "running the command"
chroot /newroot /bin/sh ${GUEST_JOB}/cmd.sh > /newroot${GUEST_JOB}/stdout 2> /newroot${GUEST_JOB}/stderr < /dev/null
echo $? > /newroot${GUEST_JOB}/status
sync
umount /newroot${GUEST_JOB}
say "done"
reboot -f
`;
}

/**
 * The host's TSC rate in kHz, for the custom kernel's `tsc_early_khz=`, or null when the host does
 * not say it. The custom kernel has no HPET and no ACPI PM timer, so it can only calibrate its TSC
 * against the PIT, and under TCG that failed in 4 of 36 boots on fc-v1098 (measured: "tsc: Unable
 * to calibrate against PIT", then "Marking TSC unstable due to could not calculate TSC khz"). With
 * tsc_khz 0, kvm_guest_time_update (arch/x86/kvm/x86.c) asks for KVM_REQ_CLOCK_UPDATE again and
 * returns 1 on every entry, so KVM_RUN never enters the guest and spins until a signal: the
 * type-1 cases and the example hung. TCG's guest TSC is the host's (QEMU's rdtsc helper counts
 * host ticks; the boots that calibrated found 2596.06-2596.17 MHz on a 2596.118 MHz host), and
 * x86 Linux prints its TSC rate as bogomips = loops_per_jiffy / (500000 / HZ) with loops_per_jiffy
 * = tsc_khz * 1000 / HZ (show_cpuinfo in arch/x86/kernel/cpu/proc.c, get_loops_per_jiffy in
 * arch/x86/kernel/tsc.c), so tsc_khz = bogomips * 500. Only a constant TSC is taken.
 */
export function hostTscKhz(cpuinfo) {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  const bogomips = /^bogomips\s*:\s*([0-9]+\.[0-9]+)\s*$/m.exec(cpuinfo)?.[1];
  if (!flags.includes('constant_tsc') || bogomips === undefined) return null;
  const khz = Math.round(Number(bogomips) * 500);
  return khz > 0 ? khz : null;
}

/** QEMU's arguments: TCG with an emulated AMD CPU that has SVM, one vCPU (kernel-rig.md: -smp 2 oopsed). */
export function qemuArgs({ kernel, initrd, mem, job, append = '' }) {
  return [
    '-accel',
    'tcg,thread=single',
    '-cpu',
    'EPYC,+svm',
    '-smp',
    '1',
    '-m',
    mem,
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-kernel',
    kernel,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet loglevel=4 ${append}`.trim(),
    '-virtfs',
    'local,path=/,mount_tag=host0,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${job},mount_tag=job,security_model=none,multidevs=remap`,
  ];
}

/** The apt sources the rig adds: every Debian URI of the host's, with trixie-backports and sid. */
export function rigSources(hostSourcesText) {
  const uris = new Set(),
    lines = [];
  const add = (uri, suite, comps) => {
    const l = `deb ${uri} ${suite} ${comps}`;
    if (!lines.includes(l)) lines.push(l);
  };
  // One-line format.
  for (const line of hostSourcesText.split('\n')) {
    const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line);
    if (m && /debian/.test(m[1])) {
      add(m[1], m[2], 'main');
      if (/^(bookworm|trixie|sid)/.test(m[2]) && !/security/.test(m[1])) uris.add(m[1]);
    }
  }
  // deb822 format: stanzas separated by blank lines.
  for (const stanza of hostSourcesText.split(/\n\s*\n/)) {
    const f = {};
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) f[m[1].toLowerCase()] = m[2].trim();
    }
    if (!f.uris || !f.suites || !/(^|\s)deb(\s|$)/.test(f.types ?? 'deb')) continue;
    for (const uri of f.uris.split(/\s+/)) {
      if (!/debian/.test(uri)) continue;
      for (const suite of f.suites.split(/\s+/)) {
        add(uri, suite, 'main');
        if (!/security/.test(uri)) uris.add(uri);
      }
    }
  }
  if (uris.size === 0) throw new Error('no Debian archive URI among the host apt sources');
  const uri = [...uris][0];
  add(uri, 'trixie-backports', 'main');
  add(uri, 'sid', 'main');
  return lines.join('\n') + '\n';
}
