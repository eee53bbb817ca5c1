// The two patch-series profiles, mirroring x86/guest_memfd_conversions_test.c (v8) and the RFC v5
// state machine (kernel-uapi.md §2, §5): what both share, then what each does with held pages.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestMemfd, Kvm, Profile, Vm } from '../../lib/index.js';
import { PAGE, expectCode, expectKvmError, expectSigbus, rejected, sim } from './helpers.js';

const SIZE = 4 * PAGE;
const S = (offset: number, length: number) => ({ offset, length, state: 'shared' });
const V = (offset: number, length: number) => ({ offset, length, state: 'private' });
const W = (offset: number, length: number) => ({ offset, length, state: 'pending' });

describe.each<Profile>(['rfc-v5', 'inplace-v8'])('%s: conversions', (profile) => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = sim(profile);
    vm = kvm.createVm();
    g = vm.createGuestMemfd({ size: SIZE, mmap: true });
  });
  afterEach(() => kvm.close());

  it('reports its profile', () => {
    expect([kvm.backend, kvm.profile]).toEqual(['sim', profile]);
  });

  it('a file starts private without INIT_SHARED and shared with it', () => {
    expect(g.states()).toEqual([V(0, SIZE)]);
    expect(vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true }).states()).toEqual([S(0, SIZE)]);
    expect(vm.createGuestMemfd({ size: SIZE }).states(PAGE, PAGE)).toEqual([V(PAGE, PAGE)]);
  });

  it('private -> shared -> private: host SIGBUS exactly on private pages, guest access always fine', async () => {
    const m = g.map();
    expectSigbus(() => m.read(0, 1), 0);
    g.share(0, SIZE);
    m.fill(0, SIZE, 0x5a);
    g.unshare(PAGE, PAGE);
    expectSigbus(() => m.read(PAGE - 4, 8), PAGE, 'read');
    expectSigbus(() => m.write(PAGE + 10, Buffer.alloc(1)), PAGE + 10, 'write');
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: SIZE, guestMemfd: g });
    expect([...(await vm.guest.read(0x100000 + PAGE, 2))]).toEqual([0x5a, 0x5a]);
    await vm.guest.write(0x100000 + PAGE, Buffer.from([1]));
    g.share(PAGE, PAGE);
    expect([...m.read(PAGE, 2)]).toEqual([1, 0x5a]);
  });

  it('converting one page leaves its neighbours alone', () => {
    g.share(0, SIZE);
    const m = g.map();
    m.fill(0, SIZE, 0xaa);
    expect(g.unshare(PAGE, PAGE)).toEqual({ pending: [] });
    expect(g.states()).toEqual([S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)]);
    expect(m.read(0, PAGE).every((b) => b === 0xaa)).toBe(true);
    expect(m.read(2 * PAGE, 2 * PAGE).every((b) => b === 0xaa)).toBe(true);
  });

  it('conversions before any allocation are recorded', () => {
    g.share(2 * PAGE, PAGE);
    expect(g.states()).toEqual([V(0, 2 * PAGE), S(2 * PAGE, PAGE), V(3 * PAGE, PAGE)]);
    expect(g.stat().blocks).toBe(0);
    expect([...g.map().read(2 * PAGE, 2)]).toEqual([0, 0]);
  });

  it('punching a hole keeps the state; a private page refaults as zero', async () => {
    g.share(0, SIZE);
    g.map().fill(0, SIZE, 0x66);
    g.unshare(0, PAGE);
    g.punchHole(0, 2 * PAGE);
    expect(g.states()).toEqual([V(0, PAGE), S(PAGE, 3 * PAGE)]);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: SIZE, guestMemfd: g });
    expect([...(await vm.guest.read(0, 2))]).toEqual([0, 0]);
    expect([...g.map().read(PAGE, 2)]).toEqual([0, 0]);
    expect([...g.map().read(2 * PAGE, 2)]).toEqual([0x66, 0x66]);
  });

  it('unaligned or empty conversions are EINVAL (KVM_SET_MEMORY_ATTRIBUTES2); past EOF is a RangeError', () => {
    for (const [o, l] of [[100, PAGE], [0, 100], [0, 0]] as const) {
      expectKvmError(() => g.share(o, l), 'EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES2');
      expectKvmError(() => g.unshare(o, l), 'EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES2');
    }
    expectCode(() => g.share(0, SIZE + PAGE), 'RangeError', 'ERR_OUT_OF_RANGE');
    expectCode(() => g.unshare(2n ** 64n - 4096n, 8192), 'RangeError', 'ERR_OUT_OF_RANGE');
    expect(g.states()).toEqual([V(0, SIZE)]);
  });

  it('a view is detached when a page under it turns private', () => {
    g.share(0, SIZE);
    const m = g.map();
    const v = new Uint8Array(m.view());
    v[PAGE] = 9;
    expect(m.read(PAGE, 1)[0]).toBe(9);
    m.write(0, Buffer.from([3]));
    expect(v[0]).toBe(3);
    g.unshare(3 * PAGE, PAGE);
    expect(v.length).toBe(0);
    expect(m.read(PAGE, 1)[0]).toBe(9);
  });

  it('a zero-length hold is a RangeError; hold ranges past EOF are RangeErrors; release is idempotent', () => {
    expectCode(() => g.hold(PAGE, 0), 'RangeError', 'ERR_OUT_OF_RANGE');
    expectCode(() => g.hold(0, 0), 'RangeError', 'ERR_OUT_OF_RANGE');
    expectCode(() => g.hold(SIZE, 1), 'RangeError', 'ERR_OUT_OF_RANGE');
    const h2 = g.hold(PAGE, PAGE);
    expect([h2.offset, h2.length, h2.released]).toEqual([PAGE, PAGE, false]);
    h2.release();
    h2.release();
    expect(h2.released).toBe(true);
    expect(g.unshare(0, SIZE)).toEqual({ pending: [] });
  });

  it('to-shared conversion never looks at holds', () => {
    g.hold(0, SIZE);
    g.share(0, SIZE);
    expect(g.states()).toEqual([S(0, SIZE)]);
  });
});

describe('inplace-v8: elevated references', () => {
  let kvm: Kvm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = sim('inplace-v8');
    g = kvm.createVm().createGuestMemfd({ size: SIZE, mmap: true, initShared: true });
  });
  afterEach(() => kvm.close());

  it('unshare of a range with a held page fails EAGAIN at that page and converts nothing', () => {
    const h = g.hold(2 * PAGE + 100, 10);
    const e = expectCode(() => g.unshare(0, SIZE), 'ConversionBusyError', 'EAGAIN');
    expect([e.errorOffset, e.errno, e.ioctl]).toEqual([2 * PAGE, -11, 'KVM_SET_MEMORY_ATTRIBUTES2']);
    expect(g.states()).toEqual([S(0, SIZE)]);
    expect(g.unshare(0, 2 * PAGE)).toEqual({ pending: [] });
    expect(expectCode(() => g.unshare(PAGE, 3 * PAGE), 'ConversionBusyError', 'EAGAIN').errorOffset).toBe(2 * PAGE);
    h.release();
    expect(g.unshare(0, SIZE)).toEqual({ pending: [] });
    expect(g.states()).toEqual([V(0, SIZE)]);
  });

  it('a page held twice fails until both holds are released', () => {
    const a = g.hold(PAGE, PAGE);
    const b = g.hold(0, 2 * PAGE);
    a.release();
    expect(expectCode(() => g.unshare(PAGE, PAGE), 'ConversionBusyError', 'EAGAIN').errorOffset).toBe(PAGE);
    b.release();
    g.unshare(PAGE, PAGE);
    expect(g.states()).toEqual([S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)]);
  });

  it('lists VM types 0 and 1 and reports the attributes2 capability', () => {
    expect(kvm.vmTypes()).toEqual([0, 1]);
    expect(kvm.createVm({ type: 1 }).type).toBe(1);
    expect(kvm.checkExtension(250)).toBe(8);
    expect(kvm.checkExtension('GUEST_MEMFD_MAPPABLE')).toBe(0);
  });
});

describe('rfc-v5: pending until the last hold goes', () => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = sim('rfc-v5');
    vm = kvm.createVm();
    g = vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true });
  });
  afterEach(() => kvm.close());

  it('unshare of a held page leaves it pending and returns the pending parts', () => {
    g.hold(PAGE, 2 * PAGE);
    expect(g.unshare(0, SIZE)).toEqual({ pending: [W(PAGE, 2 * PAGE)] });
    expect(g.states()).toEqual([V(0, PAGE), W(PAGE, 2 * PAGE), V(3 * PAGE, PAGE)]);
  });

  it('releasing the last hold completes the conversion to private', () => {
    const a = g.hold(PAGE, PAGE);
    const b = g.hold(0, 2 * PAGE);
    expect(g.unshare(0, SIZE).pending).toEqual([W(0, 2 * PAGE)]);
    b.release();
    expect(g.states()).toEqual([V(0, PAGE), W(PAGE, PAGE), V(2 * PAGE, 2 * PAGE)]);
    a.release();
    expect(g.states()).toEqual([V(0, SIZE)]);
  });

  it('share of a pending page cancels it: shared, and still shared after the release', () => {
    const h = g.hold(0, PAGE);
    g.unshare(0, SIZE);
    g.share(0, PAGE);
    expect(g.states()).toEqual([S(0, PAGE), V(PAGE, 3 * PAGE)]);
    h.release();
    expect(g.states()).toEqual([S(0, PAGE), V(PAGE, 3 * PAGE)]);
  });

  it('a pending page: host SIGBUS, guest GuestMemoryFault; private neighbours stay guest-readable', async () => {
    g.map().fill(0, SIZE, 0x99);
    const h = g.hold(PAGE, PAGE);
    g.unshare(0, 2 * PAGE);
    expectSigbus(() => g.map().read(PAGE + 1, 1), PAGE + 1);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x40000000, size: SIZE, guestMemfd: g });
    const e = await rejected(vm.guest.read(0x40000000 + PAGE, 8));
    expect([e.name, e.gpa, e.size, e.private]).toEqual(['GuestMemoryFault', 0x40000000 + PAGE, 4096, true]);
    expect([...(await vm.guest.read(0x40000000, 2))]).toEqual([0x99, 0x99]);
    h.release();
    expect([...(await vm.guest.read(0x40000000 + PAGE, 2))]).toEqual([0x99, 0x99]);
  });

  it('reports the series capability GUEST_MEMFD_MAPPABLE (239) = 1', () => {
    expect(kvm.checkExtension('GUEST_MEMFD_MAPPABLE')).toBe(1);
    expect(kvm.vmTypes()).toEqual([0]);
  });

  it('a guest_memfd without MMAP: shared pages come from userspace memory, private ones from the file', async () => {
    const n = vm.createGuestMemfd({ size: 2 * PAGE, initShared: true });
    const u = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true }).map();
    u.fill(0, 2 * PAGE, 0x11);
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0, size: 2 * PAGE, guestMemfd: n, userspace: u });
    n.unshare(PAGE, PAGE);
    await vm.guest.write(PAGE, Buffer.from([0x22]));
    expect([...(await vm.guest.read(PAGE - 1, 2))]).toEqual([0x11, 0x22]);
    expect(u.read(PAGE, 1)[0]).toBe(0x11);
  });
});
