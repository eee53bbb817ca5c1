// The 'linux-6.18-pvm' profile answers as this project's PVM host (Linux 6.18, kvm_pvm) did when measured (lib/sim/profiles.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestMemfd, Kvm, Vm } from '../../lib/index.js';
import { PAGE, expectCode, expectKvmError, expectSigbus, sim } from './helpers.js';

let kvm: Kvm;
let vm: Vm;
beforeEach(() => {
  kvm = sim('linux-6.18-pvm');
  vm = kvm.createVm();
});
afterEach(() => kvm.close());

describe('linux-6.18-pvm: system and VM', () => {
  it('reports the backend, profile and API version 12', () => {
    expect([kvm.backend, kvm.profile, kvm.apiVersion]).toEqual(['sim', 'linux-6.18-pvm', 12]);
  });

  it('answers the measured capability values, 0 for unknown caps', () => {
    expect(kvm.checkExtension('GUEST_MEMFD_FLAGS')).toBe(3);
    expect(kvm.checkExtension('KVM_CAP_NR_MEMSLOTS')).toBe(32764);
    expect(kvm.checkExtension(234)).toBe(1);
    expect(kvm.checkExtension('MEMORY_ATTRIBUTES')).toBe(0);
    expect(kvm.checkExtension('GUEST_MEMFD_MAPPABLE')).toBe(0);
    expect(kvm.checkExtension(5000)).toBe(0);
    expect(kvm.checkExtension(0xffffffff)).toBe(0);
  });

  it('answers on the VM fd where it differs from /dev/kvm (cap 129: 15 vs 11)', () => {
    expect(kvm.checkExtension(129)).toBe(15);
    expect(vm.checkExtension(129)).toBe(11);
    expect(vm.checkExtension('GUEST_MEMFD_FLAGS')).toBe(3);
    expect(vm.guestMemfdFlags()).toEqual({ mmap: true, initShared: true });
  });

  it('has only VM type 0; types 1..5 and beyond give EINVAL from KVM_CREATE_VM', () => {
    expect(kvm.vmTypes()).toEqual([0]);
    for (const type of [1, 2, 3, 4, 5, 6, 0xffffffff])
      expectKvmError(() => kvm.createVm({ type }), 'EINVAL', 'ioctl', 'KVM_CREATE_VM');
    expect(kvm.createVm({ type: 0 }).type).toBe(0);
  });

  it('has no vCPUs and no VM-level memory attributes', () => {
    expect(expectCode(() => vm.createVcpu(0), 'UnsupportedError', 'ERR_KVM_UNSUPPORTED').feature).toBe('vcpu');
    expectKvmError(
      () => vm.setMemoryAttributes(0, PAGE, { private: true }),
      'ENOTTY',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
    expectKvmError(
      () => vm.setMemoryAttributes(0, 0, { private: false }),
      'ENOTTY',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
  });
});

describe('linux-6.18-pvm: KVM_CREATE_GUEST_MEMFD', () => {
  it('accepts flag bits 0 and 1 and refuses every other bit with EINVAL', () => {
    for (const flags of [0n, 1n, 2n, 3n]) expect(vm.createGuestMemfd({ size: PAGE, flags }).rawFlags).toBe(flags);
    for (let b = 2n; b < 64n; b++)
      expectKvmError(
        () => vm.createGuestMemfd({ size: PAGE, flags: 1n << b }),
        'EINVAL',
        'ioctl',
        'KVM_CREATE_GUEST_MEMFD',
      );
  });

  it('refuses sizes 0, unaligned and >= 2^63 with EINVAL; accepts 1 TiB and 2^63 - 4096', () => {
    for (const size of [0, 1, 4095, 4097, 2n ** 63n, 2n ** 64n - 4096n]) {
      expectKvmError(() => vm.createGuestMemfd({ size }), 'EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD');
    }
    expect(vm.createGuestMemfd({ size: 2 ** 40 }).size).toBe(2 ** 40);
    expect(vm.createGuestMemfd({ size: 2n ** 63n - 4096n }).size).toBe(2n ** 63n - 4096n);
  });

  it('stat: size, blksize 4096, blocks 0 even after writes, a 0600 regular file, distinct inodes', () => {
    const a = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const b = vm.createGuestMemfd({ size: 8 * PAGE });
    a.map().fill(0, 4 * PAGE, 1);
    a.allocate(0, 4 * PAGE);
    const sa = a.stat();
    expect([sa.size, sa.blksize, sa.blocks, sa.mode]).toEqual([4 * PAGE, 4096, 0, 0o100600]);
    expect(b.stat().size).toBe(8 * PAGE);
    expect(b.stat().ino).not.toBe(sa.ino);
  });
});

describe('linux-6.18-pvm: mmap', () => {
  it('gives ENODEV without the MMAP flag (also with INIT_SHARED alone or MAP_PRIVATE)', () => {
    for (const g of [
      vm.createGuestMemfd({ size: 4 * PAGE }),
      vm.createGuestMemfd({ size: 4 * PAGE, initShared: true }),
    ]) {
      expectKvmError(() => g.map(), 'ENODEV', 'mmap');
      expectKvmError(() => g.map(0, PAGE, { private: true }), 'ENODEV', 'mmap');
    }
  });

  it('checks alignment and length before the MMAP flag (EINVAL), and refuses MAP_PRIVATE with EINVAL', () => {
    const none = vm.createGuestMemfd({ size: 4 * PAGE });
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    for (const f of [none, g]) {
      expectKvmError(() => f.map(100, PAGE), 'EINVAL', 'mmap');
      expectKvmError(() => f.map(0, 0), 'EINVAL', 'mmap');
    }
    expectKvmError(() => g.map(0, PAGE, { private: true }), 'EINVAL', 'mmap');
  });

  it('refuses a mapping too large for the address space (ENOMEM) or past the largest file (EOVERFLOW)', () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    expectKvmError(() => g.map(0, 2 ** 47), 'ENOMEM', 'mmap');
    expectKvmError(() => g.map(2n ** 63n - 4096n, PAGE), 'EOVERFLOW', 'mmap');
    expect(g.map(2n ** 62n, PAGE).length).toBe(PAGE);
    expect(g.map(0, 100).length).toBe(100);
  });

  it('MMAP without INIT_SHARED: every host access is SIGBUS at its first byte', () => {
    const m = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
    expectSigbus(() => m.read(100, 10), 100, 'read');
    expectSigbus(() => m.write(5000, Buffer.alloc(10)), 5000, 'write');
    expectSigbus(() => m.fill(8191, 10, 3), 8191, 'write');
    expectSigbus(() => m.readInto(3 * PAGE + 5, new Uint8Array(4)), 3 * PAGE + 5, 'read');
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
    expectSigbus(() => g.map(2 * PAGE, 2 * PAGE).read(10, 1), 2 * PAGE + 10);
  });

  it('a mapping 4x the file: inside fine, the first byte past i_size SIGBUS', () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const m = g.map(0, 16 * PAGE);
    m.fill(0, 4 * PAGE, 7);
    expect([...m.read(4 * PAGE - 2, 2)]).toEqual([7, 7]);
    expectSigbus(() => m.read(4 * PAGE - 4, 8), 4 * PAGE, 'read');
    expectSigbus(() => m.write(20000, Buffer.alloc(10)), 20000, 'write');
    expectSigbus(() => g.map(8 * PAGE, PAGE).read(0, 1), 8 * PAGE);
  });

  it('shared file: write, read back, punch page 0 reads zero and the rest is intact', () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const m = g.map();
    m.fill(0, 4 * PAGE, 0xaa);
    g.punchHole(0, PAGE);
    const back = m.read(0, 4 * PAGE);
    expect(back.subarray(0, PAGE).every((b) => b === 0)).toBe(true);
    expect(back.subarray(PAGE).every((b) => b === 0xaa)).toBe(true);
    expect(g.map().read(2 * PAGE, 4)).toEqual(Buffer.from([0xaa, 0xaa, 0xaa, 0xaa]));
  });
});

describe('linux-6.18-pvm: fallocate', () => {
  let g: GuestMemfd;
  beforeEach(() => {
    g = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
  });

  it('allocates aligned ranges inside the file; punches anywhere aligned, also past EOF', () => {
    g.allocate(0, PAGE);
    g.allocate(0, 16 * PAGE);
    g.punchHole(0, PAGE);
    g.punchHole(16 * PAGE, PAGE);
    g.punchHole(64 * PAGE, PAGE);
    g.punchHole(15 * PAGE, 2 * PAGE);
    g.punchHole(0, 2n ** 62n);
    expect(g.stat().blocks).toBe(0);
  });

  it('EINVAL for unaligned or empty ranges, and for allocating at, after or across EOF', () => {
    for (const [o, l] of [
      [100, PAGE],
      [0, 100],
      [0, 0],
      [16 * PAGE, PAGE],
      [32 * PAGE, PAGE],
      [15 * PAGE, 2 * PAGE],
      [0, 2n ** 62n],
    ] as const) {
      expectKvmError(() => g.allocate(o, l), 'EINVAL', 'fallocate');
    }
    for (const [o, l] of [
      [100, PAGE],
      [0, 100],
      [0, 0],
      [64 * PAGE + 1, PAGE],
    ] as const) {
      expectKvmError(() => g.punchHole(o, l), 'EINVAL', 'fallocate');
    }
    for (let i = 0; i < 10; i++) expectKvmError(() => g.punchHole(i * 513 + 1, PAGE - 7 * i), 'EINVAL', 'fallocate');
  });

  it('EFBIG when offset + length passes the largest file, before the alignment check', () => {
    expectKvmError(() => g.allocate(2n ** 63n - 4096n, 2 * PAGE), 'EFBIG', 'fallocate');
    expectKvmError(() => g.punchHole(2n ** 63n - 4096n, 2 * PAGE), 'EFBIG', 'fallocate');
    expectKvmError(() => g.allocate(2n ** 63n - 4095n, 2 * PAGE), 'EFBIG', 'fallocate');
  });
});

describe('linux-6.18-pvm: no conversion', () => {
  it('share/unshare are UnsupportedError (in-place conversion); hold takes shared pages, as vmsplice does', () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    expect(expectCode(() => g.share(0, PAGE), 'UnsupportedError', 'ERR_KVM_UNSUPPORTED').feature).toBe(
      'in-place conversion',
    );
    expect(expectCode(() => g.unshare(0, PAGE), 'UnsupportedError', 'ERR_KVM_UNSUPPORTED').feature).toBe(
      'in-place conversion',
    );
    g.hold(0, PAGE).release();
    expect(
      expectCode(() => vm.createGuestMemfd({ size: PAGE, mmap: true }).hold(0, PAGE), 'KvmError', 'EFAULT').syscall,
    ).toBe('vmsplice');
    expect(expectCode(() => vm.createGuestMemfd({ size: PAGE }).hold(0, PAGE), 'KvmError', 'ENODEV').syscall).toBe(
      'mmap',
    );
    expect(g.states()).toEqual([{ offset: 0, length: 4 * PAGE, state: 'shared' }]);
    expect(vm.createGuestMemfd({ size: PAGE, mmap: true }).states()).toEqual([
      { offset: 0, length: PAGE, state: 'private' },
    ]);
  });
});
