// memory slots: KVM_SET_USER_MEMORY_REGION2 with a guest_memfd, and what the kernel refuses.
import { attempt, withVm, type Case } from './case.js';
import type { GuestMemfd, MemoryRegion, Vm } from '../types.js';
import { PAGE, hostMappable } from './features.js';

const group = 'memory slots' as const;
const MIB = 1 << 20;

/** A VM with one 16-page shared file, for slot cases to bind. */
function withFile(id: string, title: string, body: (vm: Vm, g: GuestMemfd) => Promise<unknown>): Case {
  return {
    id,
    group,
    title,
    run: (kvm) => withVm(kvm, (vm) => body(vm, vm.createGuestMemfd({ size: 16 * PAGE, ...hostMappable(vm) }))),
  };
}

const set = (vm: Vm, r: MemoryRegion) => attempt(() => vm.setMemoryRegion(r));

export const slotCases: Case[] = [
  withFile('slot.bind', 'a guest_memfd slot is set, deleted and set again', async (vm, g) => ({
    set: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 16 * PAGE, guestMemfd: g }),
    del: await attempt(() => vm.deleteMemoryRegion(0)),
    again: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 16 * PAGE, guestMemfd: g }),
  })),
  withFile('slot.overlap', 'a slot overlapping another slot’s guest addresses is refused', async (vm, g) => {
    const h = vm.createGuestMemfd({ size: 16 * PAGE, ...hostMappable(vm) });
    return {
      first: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 8 * PAGE, guestMemfd: g }),
      overlapping: await set(vm, { slot: 1, guestPhysAddr: MIB + 4 * PAGE, size: 8 * PAGE, guestMemfd: h }),
      adjacent: await set(vm, { slot: 1, guestPhysAddr: MIB + 8 * PAGE, size: 8 * PAGE, guestMemfd: h }),
    };
  }),
  withFile('slot.same-file-range-twice', 'two slots may not bind the same guest_memfd pages', async (vm, g) => ({
    first: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 8 * PAGE, guestMemfd: g }),
    sameRange: await set(vm, {
      slot: 1,
      guestPhysAddr: 2 * MIB,
      size: 8 * PAGE,
      guestMemfd: g,
      guestMemfdOffset: 4 * PAGE,
    }),
    otherRange: await set(vm, {
      slot: 1,
      guestPhysAddr: 2 * MIB,
      size: 8 * PAGE,
      guestMemfd: g,
      guestMemfdOffset: 8 * PAGE,
    }),
  })),
  withFile('slot.alignment', 'unaligned guest address, size or guest_memfd offset is refused', async (vm, g) => ({
    gpa: await set(vm, { slot: 0, guestPhysAddr: MIB + 512, size: PAGE, guestMemfd: g }),
    size: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE + 1, guestMemfd: g }),
    gmemOffset: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE, guestMemfd: g, guestMemfdOffset: 100 }),
  })),
  withFile('slot.beyond-file', 'a slot reaching past the end of its guest_memfd is refused', async (vm, g) => ({
    tooLong: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 32 * PAGE, guestMemfd: g }),
    offsetPlusSize: await set(vm, {
      slot: 0,
      guestPhysAddr: MIB,
      size: 8 * PAGE,
      guestMemfd: g,
      guestMemfdOffset: 12 * PAGE,
    }),
    offsetBeyond: await set(vm, {
      slot: 0,
      guestPhysAddr: MIB,
      size: PAGE,
      guestMemfd: g,
      guestMemfdOffset: 64 * PAGE,
    }),
    huge: await set(vm, {
      slot: 0,
      guestPhysAddr: MIB,
      size: PAGE,
      guestMemfd: g,
      guestMemfdOffset: (1n << 64n) - BigInt(PAGE),
    }),
    exact: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 4 * PAGE, guestMemfd: g, guestMemfdOffset: 12 * PAGE }),
  })),
  withFile(
    'slot.flags-with-gmem',
    'READONLY or LOG_DIRTY_PAGES together with a guest_memfd is refused',
    async (vm, g) => ({
      readonly: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE, guestMemfd: g, readonly: true }),
      logDirty: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE, guestMemfd: g, logDirtyPages: true }),
    }),
  ),
  withFile('slot.address-overflow', 'a slot whose guest range wraps past 2^64 is refused', async (vm, g) => ({
    wrap: await set(vm, { slot: 0, guestPhysAddr: (1n << 64n) - BigInt(PAGE), size: 2 * PAGE, guestMemfd: g }),
  })),
  withFile('slot.ids', 'slot ids past the per-VM limit are refused', async (vm, g) => ({
    s32763: await set(vm, { slot: 32763, guestPhysAddr: MIB, size: PAGE, guestMemfd: g }),
    s32764: await set(vm, { slot: 32764, guestPhysAddr: 2 * MIB, size: PAGE, guestMemfd: g, guestMemfdOffset: PAGE }),
    s40000: await set(vm, {
      slot: 40000,
      guestPhysAddr: 3 * MIB,
      size: PAGE,
      guestMemfd: g,
      guestMemfdOffset: 2 * PAGE,
    }),
  })),
  withFile('slot.delete-missing', 'deleting a slot that was never set', async (vm) => ({
    del: await attempt(() => vm.deleteMemoryRegion(5)),
    sizeZero: await attempt(() => vm.setMemoryRegion({ slot: 6, guestPhysAddr: MIB, size: 0 })),
  })),
  withFile(
    'slot.move-gmem',
    'a guest_memfd slot is immutable: moving, resizing, dropping the file, even re-setting it unchanged is refused',
    async (vm, g) => {
      const first = await set(vm, { slot: 0, guestPhysAddr: MIB, size: 8 * PAGE, guestMemfd: g });
      return {
        first,
        move: await set(vm, { slot: 0, guestPhysAddr: 2 * MIB, size: 8 * PAGE, guestMemfd: g }),
        resize: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 4 * PAGE, guestMemfd: g }),
        dropFile: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 8 * PAGE, userspace: g.map(0, 8 * PAGE) }),
        same: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 8 * PAGE, guestMemfd: g }),
      };
    },
  ),
  withFile('slot.file-without-mmap', 'a guest_memfd without MMAP can back a slot', async (vm) => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE });
    return { set: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 4 * PAGE, guestMemfd: g }) };
  }),
  withFile('slot.closed-file', 'a closed guest_memfd cannot back a slot', async (vm, g) => {
    g.close();
    return { set: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE, guestMemfd: g }) };
  }),
  withFile('slot.memory-attributes', 'KVM_SET_MEMORY_ATTRIBUTES on a VM without private memory', async (vm, g) => {
    await set(vm, { slot: 0, guestPhysAddr: MIB, size: 16 * PAGE, guestMemfd: g });
    return {
      cap: vm.checkExtension('MEMORY_ATTRIBUTES'),
      toPrivate: await attempt(() => vm.setMemoryAttributes(MIB, PAGE, { private: true })),
      toShared: await attempt(() => vm.setMemoryAttributes(MIB, PAGE, { private: false })),
    };
  }),
  withFile(
    'slot.gmem-offset-wraps',
    'a guest_memfd offset whose sum with the size reaches 2^63 passes the end-of-file check (a signed sum in kvm_gmem_bind)',
    async (vm, g) => {
      const top = 1n << 63n;
      const P = BigInt(PAGE);
      return {
        sumIsTop: await set(vm, { slot: 0, guestPhysAddr: MIB, size: PAGE, guestMemfd: g, guestMemfdOffset: top - P }),
        sameRangeAgain: await set(vm, {
          slot: 1,
          guestPhysAddr: 2 * MIB,
          size: PAGE,
          guestMemfd: g,
          guestMemfdOffset: top - P,
        }),
        sumBelowTop: await set(vm, {
          slot: 2,
          guestPhysAddr: 3 * MIB,
          size: PAGE,
          guestMemfd: g,
          guestMemfdOffset: top - 2n * P,
        }),
        offsetIsTop: await set(vm, {
          slot: 3,
          guestPhysAddr: 4 * MIB,
          size: PAGE,
          guestMemfd: g,
          guestMemfdOffset: top,
        }),
        overlapsFirst: await set(vm, {
          slot: 4,
          guestPhysAddr: 5 * MIB,
          size: 4 * PAGE,
          guestMemfd: g,
          guestMemfdOffset: top - 2n * P,
        }),
        wrapsFurther: await set(vm, {
          slot: 5,
          guestPhysAddr: 6 * MIB,
          size: 4 * PAGE,
          guestMemfd: vm.createGuestMemfd({ size: PAGE }),
          guestMemfdOffset: top - 2n * P,
        }),
      };
    },
  ),
  withFile(
    'slot.userspace-past-mapping',
    'a slot longer than the rest of its userspace mapping is a RangeError before any syscall',
    async (vm, g) => {
      const m = g.map(0, 2 * PAGE);
      return {
        exact: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 2 * PAGE, userspace: m }),
        pastEnd: await set(vm, { slot: 1, guestPhysAddr: 2 * MIB, size: 4 * PAGE, userspace: m }),
        fromOffset: await set(vm, {
          slot: 2,
          guestPhysAddr: 3 * MIB,
          size: 2 * PAGE,
          userspace: m,
          userspaceOffset: PAGE,
        }),
        withFile: await set(vm, {
          slot: 3,
          guestPhysAddr: 4 * MIB,
          size: 8 * PAGE,
          guestMemfd: g,
          guestMemfdOffset: 8 * PAGE,
          userspace: m,
        }),
        unalignedTail: await set(vm, { slot: 4, guestPhysAddr: 5 * MIB, size: PAGE, userspace: g.map(0, 100) }),
      };
    },
  ),
  withFile(
    'slot.userspace-offset-without-mapping',
    'a userspaceOffset without a userspace mapping is ignored (the slot has no userspace address)',
    async (vm) => ({
      set: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 2 * PAGE, userspaceOffset: 12035 }),
      again: await set(vm, { slot: 0, guestPhysAddr: MIB, size: 2 * PAGE }),
    }),
  ),
  withFile(
    'slot.guest-helper-invisible',
    'after vm.guest ran, deleting or reusing the top slot id behaves as on a VM where it never ran',
    async (vm, g) => {
      const m = g.map();
      await set(vm, { slot: 0, guestPhysAddr: MIB, size: 16 * PAGE, userspace: m });
      const top = vm.checkExtension('NR_MEMSLOTS') - 1;
      const write = await attempt(() => vm.guest.write(MIB, Buffer.from('kvm-gmem')));
      return {
        write,
        deleteTop: await attempt(() => vm.deleteMemoryRegion(top)),
        setTop: await set(vm, { slot: top, guestPhysAddr: 2 * MIB, size: PAGE, userspace: m }),
        read: await attempt(() => vm.guest.read(MIB, 8)),
      };
    },
  ),
  withFile(
    'slot.above-phys-width',
    'a slot above the guest physical address width is accepted, but guest access there faults',
    async (vm, g) => {
      const m = g.map(0, 4 * PAGE);
      const gpa = 2 ** 51 - 4 * PAGE;
      return {
        set: await set(vm, { slot: 0, guestPhysAddr: gpa, size: 4 * PAGE, userspace: m }),
        write: await attempt(() => vm.guest.write(gpa, Buffer.from('x'))),
        read: await attempt(() => vm.guest.read(gpa + PAGE, 1)),
      };
    },
  ),
  withFile(
    'slot.readonly-write-past-slot',
    'a guest write into a read-only slot that runs past the slot is refused whole as uncovered (RangeError), not a fault',
    async (vm, g) => {
      const m = g.map();
      await set(vm, { slot: 0, guestPhysAddr: MIB, size: 2 * PAGE, userspace: m, readonly: true });
      return {
        pastSlot: await attempt(() => vm.guest.write(MIB + PAGE, Buffer.alloc(2 * PAGE))),
        inside: await attempt(() => vm.guest.write(MIB + PAGE, Buffer.alloc(16))),
      };
    },
  ),
  withFile(
    'slot.guest-after-file-closed',
    'closing the guest_memfd of a slot keeps the slot: the guest still reads through its userspace memory',
    async (vm) => {
      const h = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
      const other = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
      const m = other.map();
      m.fill(0, 4 * PAGE, 0x3c);
      await set(vm, { slot: 0, guestPhysAddr: MIB, size: 4 * PAGE, guestMemfd: h, userspace: m });
      h.close();
      return {
        read: await attempt(() => vm.guest.read(MIB + PAGE, 4)),
        del: await attempt(() => vm.deleteMemoryRegion(0)),
      };
    },
  ),
];
