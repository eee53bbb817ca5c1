// No leaks: hundreds of VMs, files and mappings opened and closed every way a user can, then
// /proc/self/fd and /proc/self/maps counted against where they started. Objects dropped
// without close() are left to the finalizers, in a child process that can force GC.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { open, probe } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE } from '../fixtures/kvm-cases.js';
import { fixture, libBundle } from '../fixtures/lib-bundle.js';

const N = 300;
const fds = () => readdirSync('/proc/self/fd').length;
const maps = () => readFileSync('/proc/self/maps', 'utf8').split('\n').length;
/** The anonymous PROT_NONE ranges: where a slot's reservation would linger. */
const reservedRanges = (): [number, number][] =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => / ---p 00000000 00:00 0\s*$/.test(l))
    .map(
      (l) =>
        l
          .split(' ')[0]!
          .split('-')
          .map((x) => parseInt(x, 16)) as [number, number],
    );
const isReserved = (addr: number) => reservedRanges().some(([a, b]) => a <= addr && addr < b);
const gmemStarts = () =>
  new Set(
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes('kvm-gmem'))
      .map((l) => parseInt(l.split('-')[0]!, 16)),
  );
const gmemMaps = () =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('kvm-gmem')).length;

/**
 * Runs body, then checks that fds and guest_memfd mappings are back where they were. The total
 * of /proc/self/maps lines moves with V8's own heap and code space by some dozens, so it is held
 * to less than one line per two rounds: a leak of even one mapping per round is N lines.
 */
function expectNoLeak(body: () => void): void {
  const before = { fds: fds(), gmem: gmemMaps() };
  const mapsBefore = maps();
  body();
  expect({ fds: fds(), gmem: gmemMaps() }).toEqual(before);
  expect(maps() - mapsBefore).toBeLessThan(N / 2);
}

describeKvm('no leaks', () => {
  beforeAll(() => {
    // Load the addon, install the SIGBUS handler, warm V8 before the first count.
    using k = open({ backend: 'kvm' });
    using g = k.createVm().createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    g.map().unmap();
  });

  it(`${N} rounds of Kvm, Vm, two files and two mappings, each closed explicitly`, () => {
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        const kvm = open({ backend: 'kvm' });
        const vm = kvm.createVm();
        const a = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true });
        const b = vm.createGuestMemfd({ size: PAGE });
        const m1 = a.map();
        const m2 = a.map(PAGE, PAGE);
        m1.fill(0, 2 * PAGE, i & 0xff);
        m2.unmap();
        m1.unmap();
        b.close();
        a.close();
        vm.close();
        kvm.close();
      }
    });
  });

  it(`${N} rounds with \`using\``, () => {
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        using kvm = open({ backend: 'kvm' });
        using vm = kvm.createVm();
        using g = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
        using m = g.map();
        m.write(0, Uint8Array.of(i & 0xff));
      }
    });
  });

  it(`${N} VMs with files and mappings where only the Vm is closed`, () => {
    using kvm = open({ backend: 'kvm' });
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        const vm = kvm.createVm();
        vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true }).map().fill(0, PAGE, 1);
        vm.createGuestMemfd({ size: PAGE }).allocate(0, PAGE);
        vm.close();
      }
    });
  });

  it(`${N} rounds where only the Kvm is closed`, () => {
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        const kvm = open({ backend: 'kvm' });
        const vm = kvm.createVm();
        vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true }).map();
        kvm.createVm().createGuestMemfd({ size: PAGE });
        kvm.close();
      }
    });
  });

  it(`${N} slots set over mappings that are unmapped, then deleted`, () => {
    using kvm = open({ backend: 'kvm' });
    using vm = kvm.createVm();
    using g = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    const starts: number[] = [];
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        const before = gmemStarts();
        const m = g.map();
        starts.push(...[...gmemStarts()].filter((a) => !before.has(a)));
        vm.setMemoryRegion({ slot: i, guestPhysAddr: 0x100000 + i * PAGE, size: PAGE, userspace: m });
        m.unmap();
      }
      expect(starts).toHaveLength(N);
      expect(starts.filter(isReserved)).toHaveLength(N); // held while the slots exist
      for (let i = 0; i < N; i++) vm.deleteMemoryRegion(i);
    });
    expect(starts.filter(isReserved)).toEqual([]);
  });

  it('failed calls leave nothing behind: bad sizes, flags, mmaps, slots, non-KVM paths, probes', () => {
    using kvm = open({ backend: 'kvm' });
    using vm = kvm.createVm();
    using plain = vm.createGuestMemfd({ size: PAGE });
    expectNoLeak(() => {
      for (let i = 0; i < N; i++) {
        expect(() => vm.createGuestMemfd({ size: 1 })).toThrow();
        expect(() => vm.createGuestMemfd({ size: PAGE, flags: 4 })).toThrow();
        expect(() => plain.map()).toThrow();
        expect(() => kvm.createVm({ type: 3 })).toThrow();
        expect(() => open({ backend: 'kvm', path: '/dev/null' })).toThrow();
        expect(() => open({ backend: 'kvm', path: '/nonexistent' })).toThrow();
        expect(() => vm.setMemoryRegion({ slot: 0, guestPhysAddr: 1, size: PAGE, guestMemfd: plain })).toThrow();
      }
      for (let i = 0; i < 20; i++) {
        probe('/dev/null');
        probe('/nonexistent');
        probe();
      }
    });
  });

  const child = (mode: 'all' | 'keep-kvm' | 'slot') => {
    const { module, env } = libBundle();
    const r = spawnSync(process.execPath, ['--expose-gc', fixture('finalizer-child.mjs'), module, mode, String(N)], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return JSON.parse(r.stdout) as Record<'before' | 'during' | 'after', { fds: number; maps: number }>;
  };

  it('objects dropped without close() are closed by finalizers (whole trees dropped)', () => {
    const r = child('all');
    expect(r.during.fds).toBeGreaterThanOrEqual(r.before.fds + 3 * N); // they were really open
    expect(r.during.maps).toBe(r.before.maps + N);
    expect(r.after).toEqual(r.before);
  });

  it('objects dropped without close() under a Kvm that stays open are closed by finalizers', () => {
    const r = child('keep-kvm');
    expect(r.during.fds).toBeGreaterThanOrEqual(r.before.fds + 2 * N);
    expect(r.after).toEqual(r.before);
  });

  it('VMs dropped without close() while a memory slot points into their mapping are finalized too', () => {
    const r = child('slot');
    expect(r.during.fds).toBeGreaterThanOrEqual(r.before.fds + 3 * N);
    expect(r.after).toEqual(r.before);
  });
});
