// The two patch-series profiles, mirroring x86/guest_memfd_conversions_test.c (v8) and the RFC v5
// patches (docs/profiles.md): what both share, then what each does with held pages and mappings.
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
    vm = kvm.createVm({ type: 1 });
    g = vm.createGuestMemfd({ size: SIZE, mmap: true });
    // Both start from an all-private file: v5 files start host-mappable (see below), so unshare it.
    if (profile === 'rfc-v5') g.unshare(0, SIZE);
  });
  afterEach(() => kvm.close());

  it('reports its profile', () => {
    expect([kvm.backend, kvm.profile]).toEqual(['sim', profile]);
  });

  it('private -> shared -> private: host SIGBUS on private pages a mapping never touched, guest access always fine', async () => {
    const m = g.map();
    expectSigbus(() => m.read(0, 1), 0);
    g.share(0, SIZE);
    const w = g.map();
    w.fill(0, SIZE, 0x5a);
    w.unmap();
    g.unshare(PAGE, PAGE);
    const r = g.map();
    expectSigbus(() => r.read(PAGE - 4, 8), PAGE, 'read');
    expectSigbus(() => r.write(PAGE + 10, Buffer.alloc(1)), PAGE + 10, 'write');
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: SIZE, guestMemfd: g });
    expect([...(await vm.guest.read(0x100000 + PAGE, 2))]).toEqual([0x5a, 0x5a]);
    await vm.guest.write(0x100000 + PAGE, Buffer.from([1]));
    g.share(PAGE, PAGE);
    expect([...r.read(PAGE, 2)]).toEqual([1, 0x5a]);
  });

  it('converting one page leaves its neighbours alone', () => {
    g.share(0, SIZE);
    const w = g.map();
    w.fill(0, SIZE, 0xaa);
    w.unmap();
    expect(g.unshare(PAGE, PAGE)).toEqual({ pending: [] });
    expect(g.states()).toEqual([S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)]);
    const m = g.map();
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
    const w = g.map();
    w.fill(0, SIZE, 0x66);
    w.unmap();
    g.unshare(0, PAGE);
    g.punchHole(0, 2 * PAGE);
    expect(g.states()).toEqual([V(0, PAGE), S(PAGE, 3 * PAGE)]);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: SIZE, guestMemfd: g });
    expect([...(await vm.guest.read(0, 2))]).toEqual([0, 0]);
    expect([...g.map().read(PAGE, 2)]).toEqual([0, 0]);
    expect([...g.map().read(2 * PAGE, 2)]).toEqual([0x66, 0x66]);
  });

  it('unaligned or empty conversions are EINVAL (KVM_SET_MEMORY_ATTRIBUTES2); past EOF is a RangeError', () => {
    for (const [o, l] of [
      [100, PAGE],
      [0, 100],
      [0, 0],
    ] as const) {
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
    g = kvm.createVm({ type: 1 }).createGuestMemfd({ size: SIZE, mmap: true, initShared: true });
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

  it('a file starts private without INIT_SHARED and shared with it (v8-01 kvm_gmem_init_inode)', () => {
    const vm = kvm.createVm({ type: 1 });
    expect(vm.createGuestMemfd({ size: SIZE, mmap: true }).states()).toEqual([V(0, SIZE)]);
    expect(vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true }).states()).toEqual([S(0, SIZE)]);
    expect(vm.createGuestMemfd({ size: SIZE }).states(PAGE, PAGE)).toEqual([V(PAGE, PAGE)]);
  });

  it('lists VM types 0 and 1; GUEST_MEMFD_MEMORY_ATTRIBUTES (250) answers PRIVATE on /dev/kvm and type 1, 0 on type 0 (v8-17)', () => {
    expect(kvm.vmTypes()).toEqual([0, 1]);
    expect(kvm.createVm({ type: 1 }).type).toBe(1);
    expect(kvm.checkExtension(250)).toBe(8);
    expect(kvm.createVm({ type: 1 }).checkExtension(250)).toBe(8);
    expect(kvm.createVm().checkExtension(250)).toBe(0);
    expect(kvm.checkExtension('GUEST_MEMFD_MAPPABLE')).toBe(0);
    // v8-10: no VM-level attributes while in-place conversion is on.
    expect([
      kvm.checkExtension('MEMORY_ATTRIBUTES'),
      kvm.createVm({ type: 1 }).checkExtension('MEMORY_ATTRIBUTES'),
    ]).toEqual([0, 0]);
  });

  it('a VM without private memory refuses every conversion with EINVAL, before the range rules (v8-13)', () => {
    const t0 = kvm.createVm().createGuestMemfd({ size: SIZE, mmap: true, initShared: true });
    for (const [o, l] of [
      [0, PAGE],
      [100, PAGE],
      [0, 0],
    ] as const) {
      expectKvmError(() => t0.share(o, l), 'EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES2');
      expectKvmError(() => t0.unshare(o, l), 'EINVAL', 'ioctl', 'KVM_SET_MEMORY_ATTRIBUTES2');
    }
    expect(t0.states()).toEqual([S(0, SIZE)]);
  });

  it('INIT_SHARED is offered and accepted on a VM with private memory (v8-25)', () => {
    const vm = kvm.createVm({ type: 1 });
    expect(vm.guestMemfdFlags()).toEqual({ mmap: true, initShared: true });
    expect(vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true }).states()).toEqual([S(0, PAGE)]);
  });

  it('a range that is already private converts with no reference check, held or not (v8-16)', () => {
    g.unshare(0, 2 * PAGE);
    const h = g.hold(0, PAGE);
    expect(g.unshare(0, 2 * PAGE)).toEqual({ pending: [] });
    expect(g.unshare(0, PAGE)).toEqual({ pending: [] });
    expect(expectCode(() => g.unshare(0, 3 * PAGE), 'ConversionBusyError', 'EAGAIN').errorOffset).toBe(0);
    h.release();
    expect(g.states()).toEqual([V(0, 2 * PAGE), S(2 * PAGE, 2 * PAGE)]);
  });

  it('to private zaps the host PTEs: a live mapping faults at once, and a mapping is no reference (v8-14)', () => {
    const m = g.map();
    m.fill(0, SIZE, 0x11);
    expect(g.unshare(PAGE, PAGE)).toEqual({ pending: [] });
    expectSigbus(() => m.read(PAGE, 1), PAGE, 'read');
    expect(m.read(0, 1)[0]).toBe(0x11);
  });
});

describe("rfc-v5: the series' uAPI and initial state", () => {
  let kvm: Kvm;
  beforeEach(() => {
    kvm = sim('rfc-v5');
  });
  afterEach(() => kvm.close());

  it('GUEST_MEMFD_MAPPABLE (239) answers 1 on /dev/kvm and on a VM with private memory, 0 on a type-0 VM; no GUEST_MEMFD_FLAGS', () => {
    expect(kvm.vmTypes()).toEqual([0, 1]);
    expect(kvm.checkExtension('GUEST_MEMFD_MAPPABLE')).toBe(1);
    expect(kvm.createVm().checkExtension(239)).toBe(0);
    expect(kvm.createVm({ type: 1 }).checkExtension(239)).toBe(1);
    expect(kvm.checkExtension('GUEST_MEMFD_FLAGS')).toBe(0);
    expect(kvm.createVm({ type: 1 }).guestMemfdFlags()).toEqual({ mmap: false, initShared: false });
  });

  it("INIT_MAPPABLE is bit 0 and the only flag: bit 1 (6.18's INIT_SHARED) and up are EINVAL", () => {
    const vm = kvm.createVm({ type: 1 });
    expect(vm.createGuestMemfd({ size: PAGE, flags: 1 }).flags).toEqual({ mmap: true, initShared: true });
    expect(vm.createGuestMemfd({ size: PAGE }).flags).toEqual({ mmap: true, initShared: false });
    for (const flags of [2, 3, 4, 1n << 63n]) {
      expectKvmError(() => vm.createGuestMemfd({ size: PAGE, flags }), 'EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD');
    }
    expectKvmError(
      () => vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true }),
      'EINVAL',
      'ioctl',
      'KVM_CREATE_GUEST_MEMFD',
    );
  });

  it('every file starts host-mappable (an empty xarray reads ALL), with or without INIT_MAPPABLE, and may be mapped', () => {
    const vm = kvm.createVm({ type: 1 });
    for (const g of [vm.createGuestMemfd({ size: SIZE, flags: 1 }), vm.createGuestMemfd({ size: SIZE })]) {
      expect(g.states()).toEqual([S(0, SIZE)]);
      const m = g.map();
      m.write(PAGE, Buffer.from([7]));
      expect(m.read(PAGE, 1)[0]).toBe(7);
      expectKvmError(() => g.map(0, PAGE, { private: true }), 'EINVAL', 'mmap');
    }
  });
});

describe('rfc-v5: unshare with the host still holding the page', () => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = sim('rfc-v5');
    vm = kvm.createVm({ type: 1 });
    g = vm.createGuestMemfd({ size: SIZE, flags: 1 });
  });
  afterEach(() => kvm.close());

  it('a page the host mapped and touched goes pending, and its present PTE keeps working; a new fault is SIGBUS', () => {
    const m = g.map();
    m.fill(PAGE, PAGE, 0x77);
    expect(g.unshare(0, SIZE)).toEqual({ pending: [W(PAGE, PAGE)] });
    expect(g.states()).toEqual([V(0, PAGE), W(PAGE, PAGE), V(2 * PAGE, 2 * PAGE)]);
    expect(m.read(PAGE, 2)[0]).toBe(0x77);
    m.write(PAGE, Buffer.from([0x78]));
    expectSigbus(() => m.read(0, 1), 0);
    expectSigbus(() => g.map().read(PAGE, 1), PAGE);
  });

  it('unmapping drops the references, and nothing completes the page: it stays pending until unshared again', () => {
    const m = g.map();
    m.read(PAGE, 1);
    g.unshare(PAGE, PAGE);
    m.unmap();
    expect(g.states(PAGE, PAGE)).toEqual([W(PAGE, PAGE)]);
    expect(g.unshare(PAGE, PAGE)).toEqual({ pending: [] });
    expect(g.states(PAGE, PAGE)).toEqual([V(PAGE, PAGE)]);
  });

  it('a hold is a reference: its page goes pending and stays so after the release; share cancels', () => {
    const h = g.hold(2 * PAGE, PAGE);
    expect(g.unshare(0, SIZE)).toEqual({ pending: [W(2 * PAGE, PAGE)] });
    h.release();
    expect(g.states()).toEqual([V(0, 2 * PAGE), W(2 * PAGE, PAGE), V(3 * PAGE, PAGE)]);
    g.share(2 * PAGE, PAGE);
    expect(g.states()).toEqual([V(0, 2 * PAGE), S(2 * PAGE, PAGE), V(3 * PAGE, PAGE)]);
    expect(g.unshare(0, SIZE)).toEqual({ pending: [] });
  });

  it('a punch hole unmaps the range: the old mapping faults on a pending page, and unshare then finds no folio', () => {
    const m = g.map();
    m.fill(0, 2 * PAGE, 0x55);
    g.unshare(0, 2 * PAGE);
    g.punchHole(0, PAGE);
    expectSigbus(() => m.read(0, 1), 0);
    expect([...m.read(PAGE, 1)]).toEqual([0x55]);
    expect(g.unshare(0, 2 * PAGE)).toEqual({ pending: [W(PAGE, PAGE)] });
    expect(g.states()).toEqual([V(0, PAGE), W(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)]);
  });

  it('the guest reaches the file in every state through a slot without a userspace address (no mappability check)', async () => {
    g.map().fill(0, SIZE, 0x99);
    g.unshare(0, SIZE);
    expect(g.states()).toEqual([W(0, SIZE)]);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x40000000, size: SIZE, guestMemfd: g });
    expect([...(await vm.guest.read(0x40000000 + PAGE, 2))]).toEqual([0x99, 0x99]);
    await vm.guest.write(0x40000000 + PAGE, Buffer.from([1]));
    g.share(0, SIZE);
    expect(g.map().read(PAGE, 1)[0]).toBe(1);
  });

  it("a slot with a userspace address takes the hva path: the host's rules through that mapping", async () => {
    const u = g.map();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: SIZE, guestMemfd: g, userspace: u });
    await vm.guest.write(0, Buffer.from([0x22]));
    g.unshare(0, SIZE);
    expect(g.states()).toEqual([W(0, PAGE), V(PAGE, 3 * PAGE)]);
    expect([...(await vm.guest.read(0, 1))]).toEqual([0x22]);
    const e = await rejected(vm.guest.read(PAGE, 1));
    expect([e.name, e.gpa, e.private]).toEqual(['GuestMemoryFault', PAGE, true]);
  });
});
