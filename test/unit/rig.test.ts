// The rig's pure parts (tools/rig/lib.mjs): arguments, kernel package choice, module order,
// config hashing, shell quoting and the scripts it writes for the guest.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import * as rig from '../../tools/rig/lib.mjs';

const {
  CUSTOM_OPTIONS,
  KERNELS,
  RigUsageError,
  commandScript,
  companionPackages,
  compareVersions,
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
  shellQuote,
} = rig;

describe('rig: arguments', () => {
  it('takes options, then the kernel, then the command verbatim (its own options included)', () => {
    const o = parseArgs(['--timeout', '60', '--mem', '2G', 'debian-7.3', 'npx', 'kvm-gmem', 'check', '--json']);
    expect([o.timeout, o.mem, o.kernel, o.command]).toEqual([
      60,
      '2G',
      'debian-7.3',
      ['npx', 'kvm-gmem', 'check', '--json'],
    ]);
    expect(parseArgs(['custom', '--timeout', '5']).command).toEqual(['--timeout', '5']);
    expect(parseArgs(['--', 'debian-6.12', 'true']).kernel).toBe('debian-6.12');
    expect(parseArgs(['--env', 'A=b c', '--env', 'E=', 'custom', 'x']).env).toEqual({ A: 'b c', E: '' });
  });

  it('defaults: 900 s, 3G, installs, quiet', () => {
    expect(parseArgs(['debian-7.3', 'true'])).toMatchObject({ timeout: 900, mem: '3G', install: true, verbose: false });
  });

  it('refuses what it cannot run, naming the problem', () => {
    const bad: [string[], RegExp][] = [
      [[], /no kernel named/],
      [['debian-9.9', 'true'], /unknown kernel 'debian-9.9' \(known: debian-6.12, debian-6.18, debian-7.3, custom\)/],
      [['debian-7.3'], /no command/],
      [['--timeout', '0', 'custom', 'x'], /--timeout/],
      [['--timeout', '1.5', 'custom', 'x'], /--timeout/],
      [['--timeout'], /needs a value/],
      [['--mem', '2T', 'custom', 'x'], /--mem/],
      [['--env', '1A=b', 'custom', 'x'], /--env/],
      [['--frobnicate', 'custom', 'x'], /unknown option '--frobnicate'/],
      [['--build-only', 'debian-7.3'], /for the custom kernel/],
    ];
    for (const [argv, re] of bad) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(RigUsageError);
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(re);
    }
    expect(parseArgs(['--build-only', 'custom']).command).toEqual([]);
  });
});

describe('rig: kernel packages', () => {
  it('orders versions numerically and picks the newest image of a series', () => {
    expect(compareVersions('6.12.9', '6.12.10')).toBe(-1);
    expect(compareVersions('7.3.4+deb13', '7.3.4+deb13')).toBe(0);
    const names = [
      'linux-image-6.12.9+deb12-amd64',
      'linux-image-6.12.117+deb12-amd64',
      'linux-image-6.12.117+deb12-amd64-dbg',
      'linux-image-6.12-amd64',
      'linux-image-6.12.115+deb12-cloud-amd64',
    ];
    expect(pickNewest(names, KERNELS['debian-6.12'].image)).toBe('linux-image-6.12.117+deb12-amd64');
    expect(
      pickNewest(['linux-image-7.3.4+deb13-amd64', 'linux-image-7.3.4+deb13-rt-amd64'], KERNELS['debian-7.3'].image),
    ).toBe('linux-image-7.3.4+deb13-amd64');
    expect(pickNewest(names, KERNELS['debian-7.3'].image)).toBeNull();
  });

  it('fetches the binary and modules packages of the same ABI with a 7.x image', () => {
    const dep =
      'dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)';
    expect(companionPackages('linux-image-7.3.4+deb13-amd64', dep)).toEqual([
      'linux-binary-7.3.4+deb13-amd64',
      'linux-modules-7.3.4+deb13-amd64',
    ]);
    expect(
      companionPackages(
        'linux-image-6.12.117+deb12-amd64',
        'kmod, initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool',
      ),
    ).toEqual([]);
  });

  it('adds trixie-backports and sid with the URI of the host Debian sources, one-line or deb822', () => {
    const deb822 =
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n';
    expect(rigSources(deb822).split('\n').filter(Boolean)).toEqual([
      'deb http://mirror.example/debian bookworm main',
      'deb http://mirror.example/debian bookworm-updates main',
      'deb http://mirror.example/debian-security bookworm-security main',
      'deb http://mirror.example/debian trixie-backports main',
      'deb http://mirror.example/debian sid main',
    ]);
    expect(rigSources('deb [arch=amd64] http://m/debian bookworm main contrib\n')).toContain(
      'deb http://m/debian sid main',
    );
    expect(() => rigSources('deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n')).toThrow(
      /no Debian archive URI/,
    );
  });
});

describe('rig: modules', () => {
  const dep = [
    'kernel/arch/x86/kvm/kvm-amd.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz kernel/drivers/crypto/ccp/ccp.ko.xz',
    'kernel/arch/x86/kvm/kvm.ko.xz: kernel/virt/lib/irqbypass.ko.xz',
    'kernel/virt/lib/irqbypass.ko.xz:',
    'kernel/drivers/crypto/ccp/ccp.ko.xz:',
    'kernel/fs/9p/9p.ko.xz: kernel/fs/netfs/netfs.ko.xz kernel/net/9p/9pnet.ko.xz',
    'kernel/fs/netfs/netfs.ko.xz:',
    'kernel/net/9p/9pnet.ko.xz:',
    'kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz',
    'kernel/fs/overlayfs/overlay.ko.xz:',
  ].join('\n');

  it('loads dependencies first, each once, skipping built-ins', () => {
    const order = moduleLoadOrder(dep, 'kernel/drivers/virtio/virtio_pci.ko\n', [
      'kvm_amd',
      'virtio_pci',
      '9pnet_virtio',
      '9p',
      'overlay',
    ]);
    expect(order.map((p: string) => p.replace(/^.*\//, ''))).toEqual([
      'irqbypass.ko.xz',
      'kvm.ko.xz',
      'ccp.ko.xz',
      'kvm-amd.ko.xz',
      '9pnet.ko.xz',
      '9pnet_virtio.ko.xz',
      'netfs.ko.xz',
      '9p.ko.xz',
      'overlay.ko.xz',
    ]);
  });

  it('names a module that is neither a module nor built in', () => {
    expect(() => moduleLoadOrder(dep, '', ['virtio_pci'])).toThrow(/'virtio_pci' is neither/);
    expect(() => moduleLoadOrder('a.ko: b.ko\nb.ko: a.ko\n', '', ['a'])).toThrow(/cycle: a -> b -> a/);
  });
});

describe('rig: the custom kernel config', () => {
  it('hashes the source version and the option sets, not their order', () => {
    const a = configHash({ sourceVersion: 'linux-source-7.3=7.3.4-1~bpo13+1' });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(
      configHash({ sourceVersion: 'linux-source-7.3=7.3.4-1~bpo13+1', enable: [...CUSTOM_OPTIONS].reverse() }),
    ).toBe(a);
    expect(configHash({ sourceVersion: 'linux-source-7.3=7.3.4-2~bpo13+1' })).not.toBe(a);
    expect(
      configHash({
        sourceVersion: 'linux-source-7.3=7.3.4-1~bpo13+1',
        enable: CUSTOM_OPTIONS.filter((o: string) => o !== 'KVM_SW_PROTECTED_VM'),
      }),
    ).not.toBe(a);
    expect(configHash({ sourceVersion: 'linux-source-7.3=7.3.4-1~bpo13+1', disable: [] })).not.toBe(a);
  });

  it('asks for VM type 1 and finds options olddefconfig dropped, either name of a renamed one counting', () => {
    expect(CUSTOM_OPTIONS).toContain('KVM_SW_PROTECTED_VM');
    expect(enableSymbols()).toEqual(expect.arrayContaining(['PROC_SYSCTL', 'SYSCTL']));
    const config =
      CUSTOM_OPTIONS.filter((o: string) => o !== 'KVM_SW_PROTECTED_VM' && !o.includes('|'))
        .map((o: string) => `CONFIG_${o}=y`)
        .join('\n') + '\nCONFIG_SYSCTL=y\n# CONFIG_KVM_SW_PROTECTED_VM is not set\nCONFIG_KVM_AMD=m\n';
    expect(missingOptions(config)).toEqual(['KVM_SW_PROTECTED_VM']);
    expect(missingOptions('CONFIG_KVM_AMD=m\n', ['KVM_AMD'])).toEqual(['KVM_AMD']);
  });
});

describe('rig: quoting and the guest scripts', () => {
  const sh = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' });

  it('quotes words so sh gives them back unchanged', () => {
    const words = ['plain', '', "it's", 'a b', '$HOME', '`id`', '"q"', 'back\\slash', 'new\nline', '*', '--json', 'é'];
    const r = sh(`printf '%s\\0' ${words.map(shellQuote).join(' ')}`);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
    expect(shellQuote('npx')).toBe('npx');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('the command script sets the environment, enters the checkout and execs the command', () => {
    const s = commandScript({
      cwd: '/work/wt/my rig',
      argv: ['node', '-e', 'console.log(process.env.X, process.cwd())'],
      env: { X: "a'b" },
    });
    expect(s).toContain("cd '/work/wt/my rig' || exit 126");
    const r = spawnSync('sh', ['-c', s.replace("cd '/work/wt/my rig'", 'cd /')], { encoding: 'utf8' });
    expect(r.stdout).toBe("a'b /\n");
    expect(() => commandScript({ cwd: '/', argv: ['true'], env: { 'A-B': '1' } })).toThrow(/bad environment name/);
  });

  it('passes CI and KVM_GMEM_* through, nothing else from the host', () => {
    const env = guestEnv({ CI: '1', KVM_GMEM_COUNTS: '/tmp/c', SECRET: 'x', PATH: '/host' }, { EXTRA: 'y' });
    expect(env).toMatchObject({ CI: '1', KVM_GMEM_COUNTS: '/tmp/c', EXTRA: 'y', KVM_GMEM_RIG: '1' });
    expect(env.SECRET).toBeUndefined();
    expect(env.PATH).not.toBe('/host');
  });

  it('init loads the modules without their compression suffix, chroots, keeps the status and reboots', () => {
    const s = initScript({ modules: ['kvm.ko.xz', 'kvm-amd.ko.zst', 'overlay.ko'] });
    expect(s).toContain('/lib/modules/kvm.ko /lib/modules/kvm-amd.ko /lib/modules/overlay.ko');
    expect(s).toMatch(/chroot \/newroot \/bin\/sh \/run\/rig-job\/cmd\.sh/);
    expect(s).toContain('echo $? > /newroot/run/rig-job/status');
    expect(s.trimEnd().endsWith('reboot -f')).toBe(true);
    expect(sh(`sh -n <<'EOF'\n${s}\nEOF`).status).toBe(0);
  });

  it("the custom kernel's TSC rate is the host's, from bogomips (tsc_khz / 500), and only a constant TSC", () => {
    const cpu = (flags: string, bogomips: string) =>
      `processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.118\nflags\t\t: fpu ${flags} tsc\nbogomips\t: ${bogomips}\n`;
    // This host (2 cores, Firecracker on AMD EPYC): "tsc: Detected 2596.118 MHz processor".
    expect(hostTscKhz(cpu('constant_tsc nonstop_tsc', '5192.23') + cpu('constant_tsc', '5192.23'))).toBe(2596115);
    expect(hostTscKhz(cpu('nonstop_tsc', '5192.23'))).toBeNull();
    expect(hostTscKhz(cpu('constant_tsc', '0.00'))).toBeNull();
    expect(hostTscKhz('processor\t: 0\nflags\t\t: constant_tsc\n')).toBeNull();
    expect(hostTscKhz('')).toBeNull();
  });

  it('QEMU runs TCG with an SVM-capable EPYC on one vCPU, the host root read-only', () => {
    const a = qemuArgs({ kernel: '/k', initrd: '/i', mem: '2G', job: '/j' });
    expect(a.slice(0, 6)).toEqual(['-accel', 'tcg,thread=single', '-cpu', 'EPYC,+svm', '-smp', '1']);
    expect(a).toContain('-no-reboot');
    expect(a).toContain('local,path=/,mount_tag=host0,security_model=none,readonly=on,multidevs=remap');
    expect(a).toContain('local,path=/j,mount_tag=job,security_model=none,multidevs=remap');
    expect(a[a.indexOf('-append') + 1]).toMatch(/console=ttyS0 panic=-1/);
    const b = qemuArgs({ kernel: '/k', initrd: '/i', mem: '2G', job: '/j', append: 'tsc_early_khz=2596115' });
    expect(b[b.indexOf('-append') + 1]).toMatch(/ tsc_early_khz=2596115$/);
  });
});
