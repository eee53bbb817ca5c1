// Every failing syscall leaves the objects as they were: no half-made object, no leaked fd or
// mapping, the error typed as api.md says. The failures are forced by the test-only hooks,
// compiled into the sanitizer build that `npm run test:asan` (and CI) runs.
import { appendFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../lib/native.js';
import { KvmError, open } from '../../lib/index.js';
import type { Kvm } from '../../lib/types.js';
import { kvmAvailable, kvmSkipReason } from '../helpers/kvm.js';
import { gmemMaps, mapsAt, openFds } from '../helpers/fds.js';

interface Hooks {
  failNext(kind: 'ioctl' | 'mmap' | 'fallocate' | 'open', errno: number, request?: number, skip?: number): void;
  fired(kind: string): number;
  clear(): void;
}
const hooks: Hooks | undefined = native.testHooks;
const ioctls: Record<string, number> = native.constants.ioctls;
const reason = !hooks
  ? 'this addon build has no fault hooks (npm run test:asan builds them)'
  : !kvmAvailable
    ? `/dev/kvm unusable: ${kvmSkipReason}`
    : null;
if (reason) console.warn(`[kvm-gmem tests] skipping fault injection: ${reason}`);

const ENOMEM = 12;
const EIO = 5;
const EACCES = 13;
const EMFILE = 24;
const ENOENT = 2;

let injected = 0;
function arm(kind: 'ioctl' | 'mmap' | 'fallocate' | 'open', errno: number, ioctl?: string): void {
  hooks!.failNext(kind, errno, ioctl ? ioctls[ioctl] : 0);
  injected++;
}

describe.skipIf(reason !== null)(`fault injection${reason ? ` [skipped: ${reason}]` : ''}`, () => {
  afterEach(() => hooks!.clear());

  function withKvm(fn: (kvm: Kvm) => void): void {
    const kvm = open({ backend: 'kvm' });
    try {
      fn(kvm);
    } finally {
      kvm.close();
    }
  }

  it('a failed open of /dev/kvm is a KvmError; auto falls back to the simulator on ENOENT only, saying why', () => {
    const fds = openFds();
    arm('open', EACCES);
    expect(() => open({ backend: 'kvm' })).toThrow(
      expect.objectContaining({ code: 'EACCES', errno: -EACCES, syscall: 'open' }),
    );
    // A device that exists but cannot be opened is an error, never a silent simulator.
    arm('open', EACCES);
    expect(() => open()).toThrow(expect.objectContaining({ code: 'EACCES' }));
    arm('open', ENOENT);
    const k = open();
    expect(k.backend).toBe('sim');
    expect(k.fallbackReason).toMatch(/ENOENT/);
    k.close();
    expect(openFds()).toBe(fds);
  });

  it('a failed KVM_CREATE_VM leaves no VM behind and the Kvm usable', () => {
    withKvm((kvm) => {
      const fds = openFds();
      arm('ioctl', ENOMEM, 'KVM_CREATE_VM');
      const err = (() => {
        try {
          kvm.createVm();
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(KvmError);
      expect(err).toMatchObject({ code: 'ENOMEM', errno: -ENOMEM, syscall: 'ioctl', ioctl: 'KVM_CREATE_VM' });
      expect(openFds()).toBe(fds);
      const vm = kvm.createVm();
      expect(vm.closed).toBe(false);
      vm.close();
      expect(openFds()).toBe(fds);
    });
  });

  it('a failed KVM_CREATE_GUEST_MEMFD leaves no file behind and the VM usable', () => {
    withKvm((kvm) => {
      const vm = kvm.createVm();
      const fds = openFds();
      arm('ioctl', ENOMEM, 'KVM_CREATE_GUEST_MEMFD');
      expect(() => vm.createGuestMemfd({ size: 4096, mmap: true })).toThrow(
        expect.objectContaining({ code: 'ENOMEM', ioctl: 'KVM_CREATE_GUEST_MEMFD' }),
      );
      expect(openFds()).toBe(fds);
      const gm = vm.createGuestMemfd({ size: 4096, mmap: true });
      expect(gm.fd).toBeGreaterThan(2);
      vm.close();
    });
  });

  it('a failed mmap leaves no mapping and the file mappable', () => {
    withKvm((kvm) => {
      const vm = kvm.createVm();
      const gm = vm.createGuestMemfd({ size: 1 << 20, mmap: true, initShared: true });
      const maps = gmemMaps();
      arm('mmap', ENOMEM);
      expect(() => gm.map()).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'mmap' }));
      expect(gmemMaps()).toEqual(maps);
      const m = gm.map();
      m.fill(0, 4096, 7);
      expect(m.read(0, 1)[0]).toBe(7);
      vm.close();
    });
  });

  it('a failed fallocate changes nothing: the data stays', () => {
    withKvm((kvm) => {
      const vm = kvm.createVm();
      const gm = vm.createGuestMemfd({ size: 1 << 16, mmap: true, initShared: true });
      const m = gm.map();
      m.fill(0, 4096, 0x5a);
      arm('fallocate', EIO);
      expect(() => gm.punchHole(0, 4096)).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'fallocate' }));
      expect(m.read(0, 4)).toEqual(Buffer.from([0x5a, 0x5a, 0x5a, 0x5a]));
      arm('fallocate', ENOMEM);
      expect(() => gm.allocate(0, 4096)).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'fallocate' }));
      gm.punchHole(0, 4096);
      expect(m.read(0, 4)).toEqual(Buffer.alloc(4));
      vm.close();
    });
  });

  it('a failed KVM_SET_USER_MEMORY_REGION2 records no slot and keeps no mapping reserved', () => {
    withKvm((kvm) => {
      const vm = kvm.createVm();
      const gm = vm.createGuestMemfd({ size: 1 << 20, mmap: true, initShared: true });
      const m = gm.map();
      arm('ioctl', ENOMEM, 'KVM_SET_USER_MEMORY_REGION2');
      expect(() =>
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 1 << 20, guestMemfd: gm, userspace: m }),
      ).toThrow(expect.objectContaining({ code: 'ENOMEM', ioctl: 'KVM_SET_USER_MEMORY_REGION2' }));
      // The slot does not exist: deleting it is the kernel's EINVAL, and the same slot can be set.
      expect(() => vm.deleteMemoryRegion(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      // The failed slot must not have reserved the mapping's range: unmapping frees it at once.
      const before = new Set(gmemMaps());
      const m2 = gm.map(0, 4096);
      const range = gmemMaps()
        .find((l) => !before.has(l))!
        .split(' ')[0]!;
      arm('ioctl', ENOMEM, 'KVM_SET_USER_MEMORY_REGION2');
      expect(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: 1 << 20, size: 4096, userspace: m2 })).toThrow(
        expect.objectContaining({ code: 'ENOMEM' }),
      );
      m2.unmap();
      expect(mapsAt(range)).toEqual([]);
      m.unmap();
      vm.close();
    });
  });

  it('failures of every ioctl the API issues come back typed, with their names', () => {
    withKvm((kvm) => {
      const cases: [string, () => unknown][] = [
        ['KVM_CHECK_EXTENSION', () => kvm.checkExtension('GUEST_MEMFD')],
        ['KVM_GET_API_VERSION', () => open({ backend: 'kvm' })],
      ];
      for (const [ioctl, call] of cases) {
        const fds = openFds();
        arm('ioctl', EMFILE, ioctl);
        expect(call).toThrow(expect.objectContaining({ code: 'EMFILE', errno: -EMFILE, ioctl }));
        expect(openFds()).toBe(fds);
      }
    });
  });

  it('a failed KVM_RUN is a typed error from runSync() and run(), and the vCPU runs after it', async () => {
    const kvm = open({ backend: 'kvm' });
    try {
      const vm = kvm.createVm();
      const gm = vm.createGuestMemfd({ size: 1 << 16, mmap: true, initShared: true });
      const m = gm.map();
      m.write(0x1000, Buffer.from([0xf4, 0xf4])); // hlt; hlt
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 1 << 16, guestMemfd: gm, userspace: m });
      const cpu = vm.createVcpu(0);
      cpu.setSregs({ cs: { base: 0n, selector: 0 } });
      cpu.setRegs({ rip: 0x1000n, rflags: 2n });
      arm('ioctl', EIO, 'KVM_RUN');
      expect(() => cpu.runSync()).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'ioctl', ioctl: 'KVM_RUN' }));
      arm('ioctl', EIO, 'KVM_RUN');
      await expect(cpu.run()).rejects.toMatchObject({ code: 'EIO', ioctl: 'KVM_RUN' });
      expect((await cpu.run()).reason).toBe('hlt');
      vm.close();
    } finally {
      kvm.close();
    }
  });

  it('counts the faults it injected', () => {
    expect(injected).toBeGreaterThanOrEqual(10);
    console.log(`[kvm-gmem] fault injection: ${injected} faults injected`);
    if (process.env.KVM_GMEM_COUNTS)
      appendFileSync(process.env.KVM_GMEM_COUNTS, JSON.stringify({ faults: injected }) + '\n');
  });
});
