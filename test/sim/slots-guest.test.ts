// Memory slots validate as KVM_SET_USER_MEMORY_REGION2 did on the real 6.18 kernel, and vm.guest
// reads and writes through them as the guest would see memory.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestMemfd, Kvm, Mapping, MemoryRegion, Vm } from '../../lib/index.js';
import { PAGE, expectCode, expectKvmError, rejected, sim } from './helpers.js';

const IOCTL = 'KVM_SET_USER_MEMORY_REGION2';
let kvm: Kvm;
let vm: Vm;
let g: GuestMemfd;
let m: Mapping;
beforeEach(() => {
  kvm = sim('linux-6.18-pvm');
  vm = kvm.createVm();
  g = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
  m = vm.createGuestMemfd({ size: 64 * PAGE, mmap: true, initShared: true }).map();
});
afterEach(() => kvm.close());

const einval = (r: MemoryRegion) => expectKvmError(() => vm.setMemoryRegion(r), 'EINVAL', 'ioctl', IOCTL);
const eexist = (r: MemoryRegion) => expectKvmError(() => vm.setMemoryRegion(r), 'EEXIST', 'ioctl', IOCTL);

describe('memory slots (linux-6.18-pvm rules)', () => {
  it('refuses unaligned size, gpa, userspace address and guest_memfd offset with EINVAL', () => {
    einval({ slot: 1, guestPhysAddr: 0, size: 100, userspace: m });
    einval({ slot: 1, guestPhysAddr: 100, size: PAGE, userspace: m });
    einval({ slot: 1, guestPhysAddr: 0, size: PAGE, userspace: m, userspaceOffset: 100 });
    einval({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g, guestMemfdOffset: 100 });
  });

  it('slot ids: 0..32763 in address space 0; 32764 and any other address space are EINVAL', () => {
    vm.setMemoryRegion({ slot: 32763, guestPhysAddr: 0, size: PAGE, userspace: m });
    for (const slot of [32764, 65535, 0x10000, 0x20000])
      einval({ slot, guestPhysAddr: 0x100000, size: PAGE, userspace: m });
  });

  it('READONLY or LOG_DIRTY_PAGES with a guest_memfd are EINVAL', () => {
    einval({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g, readonly: true });
    einval({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g, logDirtyPages: true });
  });

  it('overlapping another slot is EEXIST, checked before the guest_memfd binding', () => {
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE, userspace: m });
    eexist({ slot: 1, guestPhysAddr: 2 * PAGE, size: 4 * PAGE, userspace: m });
    eexist({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g, guestMemfdOffset: 64 * PAGE });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 4 * PAGE, size: PAGE, userspace: m });
  });

  it('guest_memfd ranges: past the file, bound to another slot, or of another VM are EINVAL', () => {
    einval({ slot: 0, guestPhysAddr: 0, size: 8 * PAGE, guestMemfd: g, guestMemfdOffset: 12 * PAGE });
    einval({ slot: 0, guestPhysAddr: 0, size: PAGE, guestMemfd: g, guestMemfdOffset: 16 * PAGE });
    einval({ slot: 0, guestPhysAddr: 0, size: PAGE, guestMemfd: g, guestMemfdOffset: 2n ** 64n - 4096n });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE, guestMemfd: g });
    einval({ slot: 1, guestPhysAddr: 0x200000, size: 4 * PAGE, guestMemfd: g, guestMemfdOffset: 3 * PAGE });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x200000, size: 4 * PAGE, guestMemfd: g, guestMemfdOffset: 4 * PAGE });
    const other = kvm.createVm().createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
    einval({ slot: 2, guestPhysAddr: 0x300000, size: PAGE, guestMemfd: other });
    vm.deleteMemoryRegion(0);
    vm.setMemoryRegion({ slot: 3, guestPhysAddr: 0x400000, size: 4 * PAGE, guestMemfd: g });
  });

  it('guest_memfd slots are immutable: setting one again, even unchanged, is EINVAL', () => {
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE, guestMemfd: g });
    einval({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE, guestMemfd: g });
    einval({ slot: 0, guestPhysAddr: 0x100000, size: 4 * PAGE, guestMemfd: g });
    einval({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE });
  });

  it('userspace slots: same again is a no-op, LOG_DIRTY toggles and moves work; size, address or READONLY changes are EINVAL', () => {
    const r = { slot: 1, guestPhysAddr: 0x100000, size: 4 * PAGE, userspace: m };
    vm.setMemoryRegion(r);
    vm.setMemoryRegion(r);
    vm.setMemoryRegion({ ...r, logDirtyPages: true });
    vm.setMemoryRegion({ ...r, guestPhysAddr: 0x200000 });
    vm.setMemoryRegion({ ...r, guestPhysAddr: 0x202000 });
    einval({ ...r, guestPhysAddr: 0x202000, size: 8 * PAGE });
    einval({ ...r, guestPhysAddr: 0x202000, userspaceOffset: PAGE });
    einval({ ...r, guestPhysAddr: 0x202000, readonly: true });
    einval({ ...r, guestPhysAddr: 0x202000, userspace: g.map(0, 4 * PAGE) });
    vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x300000, size: PAGE, userspace: m });
    eexist({ ...r, guestPhysAddr: 0x2ff000 });
  });

  it('limits: under 2^31 pages, wrap-around EINVAL, the slot must end by 2^52', () => {
    vm.setMemoryRegion({ slot: 3, guestPhysAddr: 2n ** 44n, size: 2n ** 43n - 4096n });
    einval({ slot: 4, guestPhysAddr: 2n ** 46n, size: 2n ** 43n });
    einval({ slot: 4, guestPhysAddr: 2n ** 64n - 4096n, size: 2 * PAGE, userspace: m });
    vm.setMemoryRegion({ slot: 5, guestPhysAddr: 2n ** 52n - 8192n, size: 2 * PAGE });
    einval({ slot: 6, guestPhysAddr: 2n ** 52n, size: PAGE });
    einval({ slot: 6, guestPhysAddr: 2n ** 63n, size: PAGE });
  });

  it('deleting a slot that does not exist (or twice) is EINVAL; a slot without backing is accepted', () => {
    vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0, size: PAGE });
    vm.deleteMemoryRegion(2);
    expectKvmError(() => vm.deleteMemoryRegion(2), 'EINVAL', 'ioctl', IOCTL);
    expectKvmError(() => vm.deleteMemoryRegion(40000), 'EINVAL', 'ioctl', IOCTL);
    einval({ slot: 3, guestPhysAddr: 0, size: 0, userspace: m });
  });
});

describe('vm.guest through the slots', () => {
  it('a shared guest_memfd slot: the guest reads the host bytes and the host sees guest writes', async () => {
    const hm = g.map();
    vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: 0x100000,
      size: 4 * PAGE,
      guestMemfd: g,
      guestMemfdOffset: 2 * PAGE,
      userspace: hm,
      userspaceOffset: 2 * PAGE,
    });
    hm.fill(2 * PAGE, PAGE, 0xaa);
    expect(await vm.guest.read(0x100000, 4)).toEqual(Buffer.from([0xaa, 0xaa, 0xaa, 0xaa]));
    await vm.guest.write(0x100000 + 8, Buffer.alloc(24, 0xff));
    expect([...hm.read(2 * PAGE + 6, 4)]).toEqual([0xaa, 0xaa, 0xff, 0xff]);
  });

  it('a guest_memfd slot without userspace memory gives the guest nothing there, as on 6.18 (MMIO exit)', async () => {
    g.map().fill(0, PAGE, 0xaa);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: 4 * PAGE, guestMemfd: g });
    const e = await rejected(vm.guest.read(0x100000 + 8, 4));
    expect([e.name, e.gpa, e.size, e.private]).toEqual(['GuestMemoryFault', 0x100000, 4096, false]);
  });

  it('a private file (MMAP only) faults at the first gpa with size 4096, private', async () => {
    const p = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x40000000, size: 4 * PAGE, guestMemfd: p, userspace: p.map() });
    const e = await rejected(vm.guest.read(0x40000000 + 8, 8));
    expect([e.name, e.code, e.gpa, e.size, e.private]).toEqual([
      'GuestMemoryFault',
      'KVM_EXIT_MEMORY_FAULT',
      0x40000000,
      4096,
      true,
    ]);
  });

  it('a guest_memfd without MMAP: the guest uses the slot userspace memory, not the file', async () => {
    const n = vm.createGuestMemfd({ size: 4 * PAGE });
    vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: 0,
      size: 2 * PAGE,
      guestMemfd: n,
      userspace: m,
      userspaceOffset: 8 * PAGE,
    });
    m.fill(8 * PAGE, 2 * PAGE, 0x31);
    expect([...(await vm.guest.read(PAGE, 2))]).toEqual([0x31, 0x31]);
    await vm.guest.write(0, Buffer.from([7]));
    expect(m.read(8 * PAGE, 1)[0]).toBe(7);
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x10000, size: PAGE, guestMemfd: n, guestMemfdOffset: 2 * PAGE });
    // No userspace memory behind this slot: a fault, on a page of a file that is private.
    expect((await rejected(vm.guest.read(0x10000, 1))).private).toBe(true);
  });

  it('a readonly slot refuses guest writes (private: false) and allows reads', async () => {
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: PAGE, userspace: m, readonly: true });
    m.fill(0, 1, 5);
    expect((await vm.guest.read(0, 1))[0]).toBe(5);
    const e = await rejected(vm.guest.write(0, Buffer.from([1])));
    expect([e.name, e.gpa, e.private]).toEqual(['GuestMemoryFault', 0, false]);
    expect(m.read(0, 1)[0]).toBe(5);
  });

  it('an access spanning two adjacent slots reads both', async () => {
    const h = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    g.map().fill(PAGE - 8, 8, 0x0a);
    h.map().fill(0, 8, 0x0b);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: PAGE, guestMemfd: g, userspace: g.map() });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: PAGE, size: PAGE, guestMemfd: h, userspace: h.map() });
    expect([...(await vm.guest.read(PAGE - 2, 4))]).toEqual([0x0a, 0x0a, 0x0b, 0x0b]);
  });

  it('a gpa range not covered by slots is a RangeError naming the first uncovered gpa, and writes nothing', async () => {
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: PAGE, guestMemfd: g });
    const e = await rejected(vm.guest.write(PAGE - 2, Buffer.alloc(4, 9)));
    expect([e.name, e.code]).toEqual(['RangeError', 'ERR_OUT_OF_RANGE']);
    expect(e.message).toContain('0x1000');
    expect([...g.map().read(PAGE - 2, 2)]).toEqual([0, 0]);
    expect((await rejected(vm.guest.read(0x5000, 1))).message).toContain('0x5000');
  });

  it('bad guest arguments are TypeError/RangeError; a closed VM rejects with ClosedError', async () => {
    expect((await rejected(vm.guest.read('0' as never, 1))).code).toBe('ERR_INVALID_ARG_TYPE');
    expect((await rejected(vm.guest.read(-1, 1))).code).toBe('ERR_OUT_OF_RANGE');
    expect((await rejected(vm.guest.read(2n ** 64n - 1n, 2))).code).toBe('ERR_OUT_OF_RANGE');
    expect((await rejected(vm.guest.write(0, 'abc' as never))).code).toBe('ERR_INVALID_ARG_TYPE');
    const guest = vm.guest;
    vm.close();
    expect((await rejected(guest.read(0, 1))).code).toBe('ERR_KVM_CLOSED');
    expectCode(() => vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: PAGE }), 'ClosedError', 'ERR_KVM_CLOSED');
  });
});
