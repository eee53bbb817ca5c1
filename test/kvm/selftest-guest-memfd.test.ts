// A port of the kernel's tools/testing/selftests/kvm/guest_memfd_test.c through the public API:
// one test per behaviour, run for every VM type and guest_memfd flag set this kernel supports.
// (The guest case, 0xaa then 0xff through a vCPU, lives with the vCPU tests.)
import { readSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type GuestMemfd, type Kvm, type Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { INVALID_PUNCHES } from '../../lib/conformance/cases-selftest.js';
import { PAGE, expectKvmError, expectSigbus, supported, thrown, type FlagSet } from '../fixtures/kvm-cases.js';

const TOTAL = 4 * PAGE; // the selftest's gmem_test() size

describeKvm('guest_memfd selftest port', () => {
  for (const vmType of supported.vmTypes) {
    describe(`VM type ${vmType}`, () => {
      let kvm: Kvm;
      let vm: Vm;
      beforeAll(() => {
        kvm = open({ backend: 'kvm' });
        vm = kvm.createVm({ type: vmType });
      });
      afterAll(() => kvm.close());

      it('each supported flag bit creates a file and every other bit of the 64 gives EINVAL', () => {
        const valid = BigInt(vm.checkExtension('GUEST_MEMFD_FLAGS'));
        expect(valid).toBe(BigInt(supported.mask));
        let accepted = 0n;
        for (let bit = 0n; bit < 64n; bit++) {
          const flag = 1n << bit;
          if (flag & valid) {
            const g = vm.createGuestMemfd({ size: PAGE, flags: flag });
            expect(g.rawFlags).toBe(flag);
            expect(g.stat().size).toBe(PAGE);
            g.close();
            accepted |= flag;
          } else {
            expectKvmError(
              () => vm.createGuestMemfd({ size: PAGE, flags: flag }),
              'EINVAL',
              'ioctl',
              'KVM_CREATE_GUEST_MEMFD',
            );
          }
        }
        expect(accepted).toBe(valid);
      });

      for (const fs of supported.flagSets) flagSetSuite(() => vm, fs);
    });
  }
});

function flagSetSuite(getVm: () => Vm, fs: FlagSet): void {
  describe(`flags ${fs.label}`, () => {
    const create = (size: number | bigint = TOTAL): GuestMemfd =>
      getVm().createGuestMemfd({ size, mmap: fs.mmap, initShared: fs.initShared });

    it('multiple files are distinct inodes, each with its own st_size', () => {
      const a = create(PAGE);
      expect(a.stat().size).toBe(PAGE);
      const b = create(2 * PAGE);
      expect(b.stat().size).toBe(2 * PAGE);
      expect(a.stat().size).toBe(PAGE);
      expect(a.stat().ino).not.toBe(b.stat().ino);
      expect(a.fd).not.toBe(b.fd);
      b.close();
      a.close();
    });

    it('sizes 1 to page size - 1 give EINVAL', () => {
      for (let size = 1; size < PAGE; size++) {
        expectKvmError(() => create(size), 'EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD');
      }
    });

    it('read, write, pread and pwrite on the fd fail', () => {
      using g = create();
      const buf = Buffer.alloc(64);
      // read/write have no file operation (EINVAL); positioned I/O is refused outright (ESPIPE).
      expect(thrown(() => readSync(g.fd, buf, 0, 64, null)).code).toBe('EINVAL');
      expect(thrown(() => writeSync(g.fd, buf, 0, 64, null)).code).toBe('EINVAL');
      expect(thrown(() => readSync(g.fd, buf, 0, 64, 0)).code).toBe('ESPIPE');
      expect(thrown(() => writeSync(g.fd, buf, 0, 64, 0)).code).toBe('ESPIPE');
    });

    if (!fs.mmap) {
      it('mmap fails with ENODEV without the MMAP flag', () => {
        using g = create();
        expectKvmError(() => g.map(0, PAGE), 'ENODEV', 'mmap');
        expectKvmError(() => g.map(0, TOTAL), 'ENODEV', 'mmap');
      });
    }

    if (fs.mmap && fs.initShared) {
      it('filled memory reads back; PUNCH_HOLE of page 0 reads back zero and leaves the rest', () => {
        using g = create();
        using m = g.map(0, TOTAL);
        m.fill(0, TOTAL, 0xaa);
        expect(m.read(0, TOTAL).every((b) => b === 0xaa)).toBe(true);
        g.punchHole(0, PAGE);
        expect(m.read(0, PAGE).every((b) => b === 0)).toBe(true);
        expect(m.read(PAGE, TOTAL - PAGE).every((b) => b === 0xaa)).toBe(true);
        m.fill(0, PAGE, 0xaa);
        expect(m.read(0, TOTAL).every((b) => b === 0xaa)).toBe(true);
      });

      it('a mapping four times the file: access beyond i_size is SIGBUS, inside is fine', () => {
        using g = create();
        using m = g.map(0, 4 * TOTAL);
        // Unlike a raw memset, the guarded fill touches nothing when any page faults.
        expectSigbus(() => m.fill(0, 4 * TOTAL, 0xaa), TOTAL);
        expectSigbus(() => m.read(TOTAL, 1), TOTAL);
        m.fill(0, TOTAL, 0xaa);
        expect(m.read(0, TOTAL).every((b) => b === 0xaa)).toBe(true);
        expectSigbus(() => m.read(TOTAL, 1), TOTAL);
      });
    }

    if (fs.mmap && !fs.initShared) {
      it('without INIT_SHARED every host access is SIGBUS', () => {
        using g = create();
        using m = g.map(0, TOTAL);
        expectSigbus(() => m.fill(0, TOTAL, 0xaa), 0);
        for (let off = 0; off < TOTAL; off += PAGE) {
          expectSigbus(() => m.read(off, 1), off);
          expectSigbus(() => m.write(off + PAGE - 1, Uint8Array.of(1)), off + PAGE - 1);
        }
      });
    }

    if (fs.mmap) {
      it('MAP_PRIVATE (copy-on-write) fails with EINVAL', () => {
        using g = create();
        expectKvmError(() => g.map(0, TOTAL, { private: true }), 'EINVAL', 'mmap');
      });
    }

    it('st_size is the size asked for and st_blksize the page size', () => {
      using g = create();
      const st = g.stat();
      expect(st.size).toBe(TOTAL);
      expect(st.blksize).toBe(PAGE);
    });

    it('fallocate: aligned works, unaligned fails, allocating at or past EOF fails, punching there works', () => {
      using g = create();
      g.allocate(0, TOTAL);
      expectKvmError(() => g.punchHole(PAGE - 1, PAGE), 'EINVAL', 'fallocate');
      expectKvmError(() => g.allocate(TOTAL, PAGE), 'EINVAL', 'fallocate');
      expectKvmError(() => g.allocate(TOTAL + PAGE, PAGE), 'EINVAL', 'fallocate');
      g.punchHole(TOTAL, PAGE);
      g.punchHole(TOTAL + PAGE, PAGE);
      expectKvmError(() => g.punchHole(PAGE, PAGE - 1), 'EINVAL', 'fallocate');
      g.punchHole(PAGE, PAGE);
      g.allocate(PAGE, PAGE);
    });

    it('ten unaligned punches give EINVAL', () => {
      using g = create();
      expect(INVALID_PUNCHES).toHaveLength(10);
      for (const [off, len] of INVALID_PUNCHES) expectKvmError(() => g.punchHole(off, len), 'EINVAL', 'fallocate');
    });
  });
}
