// Honest defaults and clear errors (issue 17): no option is ignored, open() never swaps in the
// simulator unannounced, and errors say what was asked.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConversionBusyError, HostAccessError, KvmError, open, type Kvm } from '../../lib/index.js';
import { kvmAvailable, kvmSkipReason } from '../helpers/kvm.js';
import { thrown } from '../helpers/thrown.js';

const PAGE = 4096;
const root = path.resolve(__dirname, '../..');
// The simulator profile with the kernel's own uAPI (rfc-v5 has the series' 6.13 flags).
const backends: [string, () => Kvm][] = [['sim', () => open({ backend: 'sim', profile: 'linux-6.18' })]];
if (kvmAvailable) backends.push(['kvm', () => open({ backend: 'kvm' })]);

describe.each(backends)('unknown option keys (%s)', (_name, make) => {
  it('createGuestMemfd({ initshared: true }) is a TypeError naming the key, not a private file', () => {
    using kvm = make();
    using vm = kvm.createVm();
    const e = thrown(() => vm.createGuestMemfd({ size: PAGE, mmap: true, initshared: true } as never));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(e.message).toContain('"initshared"');
  });

  it('every options object refuses an unknown key: createVm, map, setMemoryRegion, setMemoryAttributes, open', () => {
    using kvm = make();
    using vm = kvm.createVm();
    using gm = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    const cases: [() => unknown, string][] = [
      [() => kvm.createVm({ typ: 0 } as never), '"typ"'],
      [() => gm.map(0, PAGE, { privat: true } as never), '"privat"'],
      [
        () => vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: PAGE, guestMemfd: gm, readOnly: true } as never),
        '"readOnly"',
      ],
      [() => vm.setMemoryAttributes(0, PAGE, { privat: true } as never), '"privat"'],
      [() => open({ backend: 'sim', profle: 'rfc-v5' } as never), '"profle"'],
    ];
    for (const [fn, key] of cases) {
      const e = thrown(fn);
      expect(e, key).toBeInstanceOf(TypeError);
      expect(e.message).toContain(key);
    }
  });

  it('a getter is read once: the size checked is the size used', () => {
    using kvm = make();
    using vm = kvm.createVm();
    let reads = 0;
    const opts = {
      get size() {
        reads++;
        return reads === 1 ? PAGE : 1;
      },
    };
    using gm = vm.createGuestMemfd(opts as never);
    expect(reads).toBe(1);
    expect(gm.size).toBe(PAGE);
  });

  it('a Proxy sees one ownKeys and one get per known key, and an extra key it reports is refused', () => {
    using kvm = make();
    using vm = kvm.createVm();
    const gets: string[] = [];
    let ownKeys = 0;
    const target = { size: PAGE, mmap: true };
    const handler: ProxyHandler<typeof target> = {
      ownKeys: (t) => {
        ownKeys++;
        return Reflect.ownKeys(t);
      },
      get: (t, k, r) => {
        gets.push(String(k));
        return Reflect.get(t, k, r);
      },
    };
    using gm = vm.createGuestMemfd(new Proxy(target, handler) as never);
    expect(gm.flags).toEqual({ mmap: true, initShared: false });
    expect(ownKeys).toBe(1);
    expect(gets.sort()).toEqual(['flags', 'initShared', 'mmap', 'size']);
    const sneaky = new Proxy(target, {
      ownKeys: () => ['size', 'mmap', 'sneaky'],
      getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }),
    });
    expect(thrown(() => vm.createGuestMemfd(sneaky as never)).message).toContain('"sneaky"');
  });

  it('KvmError messages carry the arguments, the same on both backends', () => {
    using kvm = make();
    using vm = kvm.createVm();
    const e = thrown(() => vm.createGuestMemfd({ size: 1000 }));
    expect(e).toBeInstanceOf(KvmError);
    expect(e.message).toBe('EINVAL: Invalid argument, ioctl KVM_CREATE_GUEST_MEMFD (size 1000, flags 0x0)');
    expect(thrown(() => kvm.createVm({ type: 77 })).message).toBe(
      'EINVAL: Invalid argument, ioctl KVM_CREATE_VM (type 77)',
    );
  });

  it('view() of a range the library knows is not shared is refused with HostAccessError', () => {
    using kvm = make();
    using vm = kvm.createVm();
    using gm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
    using m = gm.map(PAGE, 2 * PAGE);
    const e = thrown(() => m.view());
    expect(e).toBeInstanceOf(HostAccessError);
    expect(e).toMatchObject({ code: 'SIGBUS', offset: PAGE });
  });
});

describe('open()', () => {
  it('a path given explicitly is never swapped for the simulator: ENOENT with the path, as Node reports it', () => {
    const e = thrown(() => open({ path: '/nonexistent/kvm' }));
    expect(e).toBeInstanceOf(KvmError);
    expect(e).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/kvm' });
    expect(e.message).toBe("ENOENT: No such file or directory, open '/nonexistent/kvm'");
  });

  it('a profile means the simulator, with backend auto too; options that cannot apply are RangeErrors', () => {
    using k = open({ profile: 'inplace-v8' });
    expect([k.backend, k.profile, k.fallbackReason]).toEqual(['sim', 'inplace-v8', null]);
    for (const o of [
      { backend: 'sim', path: '/dev/kvm' },
      { backend: 'kvm', profile: 'rfc-v5' },
      { path: '/dev/kvm', profile: 'rfc-v5' },
    ] as const) {
      const e = thrown(() => open(o as never));
      expect(e, JSON.stringify(o)).toBeInstanceOf(RangeError);
      expect(e.message).toContain('got');
    }
  });

  it.skipIf(!kvmAvailable)(
    `backend auto on a KVM host is the kernel, with no fallback reason${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`,
    () => {
      using k = open();
      expect([k.backend, k.fallbackReason]).toEqual(['kvm', null]);
    },
  );

  // The fallback cases need a host where /dev/kvm is missing or refused: made in a child process.
  const script = `import('${path.join(root, 'dist', 'index.js')}').then(({ open }) => {
    try { const k = open(); console.log(JSON.stringify({ backend: k.backend, reason: k.fallbackReason })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, path: e.path, name: e.name })); } });`;
  const built =
    spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: root,
    }).status === 0;
  const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

  it.skipIf(!built || !canUnshare)(
    `without /dev/kvm backend auto falls back to the simulator and says why${canUnshare ? '' : ' [skipped: needs root and unshare(1)]'}`,
    () => {
      // A mount namespace whose /dev lacks kvm (the rest of /dev as it was).
      const sh = `mkdir -p /tmp/kg-dev && mount -t tmpfs none /tmp/kg-dev && for f in null zero urandom random; do touch /tmp/kg-dev/$f && mount --bind /dev/$f /tmp/kg-dev/$f; done && mount --move /tmp/kg-dev /dev && exec "${process.execPath}" -e "$0"`;
      const r = spawnSync('unshare', ['-m', 'sh', '-c', sh, script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.backend).toBe('sim');
      expect(out.reason).toMatch(/^ENOENT: No such file or directory, open '\/dev\/kvm'/);
    },
  );

  it.skipIf(!built || process.getuid?.() !== 0)(
    'a /dev/kvm this user may not open (EACCES) is an error, not the simulator',
    () => {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', uid: 65534, gid: 65534 });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ code: 'EACCES', path: '/dev/kvm', name: 'KvmError' });
    },
  );
});

describe('error classes', () => {
  it('ConversionBusyError is a KvmError (EAGAIN, -11, ioctl): one instanceof catches kernel errors', () => {
    const e = new ConversionBusyError(8192, undefined, 'KVM_SET_MEMORY_ATTRIBUTES2');
    expect(e).toBeInstanceOf(KvmError);
    expect(e).toMatchObject({
      name: 'ConversionBusyError',
      code: 'EAGAIN',
      errno: -11,
      syscall: 'ioctl',
      ioctl: 'KVM_SET_MEMORY_ATTRIBUTES2',
      errorOffset: 8192,
    });
  });

  it('range errors say what they got', () => {
    using k = open({ backend: 'sim' });
    using vm = k.createVm();
    expect(thrown(() => vm.createGuestMemfd({ size: -1 })).message).toContain('got -1');
    expect(thrown(() => vm.createGuestMemfd({ size: 2n ** 64n })).message).toContain(`got ${2n ** 64n}`);
  });
});

describe.skipIf(!kvmAvailable)(
  `error messages, kernel and simulator alike${kvmAvailable ? '' : ` [skipped: ${kvmSkipReason}]`}`,
  () => {
    it("each failing call's message names the call and its arguments, the same text on both backends", () => {
      const messages = (kvm: Kvm): string[] => {
        using vm = kvm.createVm();
        using plain = vm.createGuestMemfd({ size: 4 * PAGE });
        using mappable = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
        const calls: (() => unknown)[] = [
          () => vm.createGuestMemfd({ size: 1000 }),
          () => kvm.createVm({ type: 77 }),
          () => mappable.map(1, PAGE),
          () => plain.map(0, PAGE),
          () => mappable.allocate(0, 1),
          () => mappable.punchHole(PAGE, 0),
        ];
        return calls.map((c) => thrown(c).message);
      };
      using real = open({ backend: 'kvm' });
      using sim = open({ backend: 'sim', profile: 'linux-6.18' });
      const k = messages(real);
      expect(k).toEqual([
        'EINVAL: Invalid argument, ioctl KVM_CREATE_GUEST_MEMFD (size 1000, flags 0x0)',
        'EINVAL: Invalid argument, ioctl KVM_CREATE_VM (type 77)',
        'EINVAL: Invalid argument, mmap (offset 1, length 4096)',
        'ENODEV: No such device, mmap (offset 0, length 4096)',
        'EINVAL: Invalid argument, fallocate (allocate, offset 0, length 1)',
        'EINVAL: Invalid argument, fallocate (punch hole, offset 4096, length 0)',
      ]);
      expect(messages(sim)).toEqual(k);
    });
  },
);
