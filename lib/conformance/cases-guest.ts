// guest access: memory as the guest sees it through guest_memfd slots (vm.guest).
import { attempt, withVm, type Case } from './case.js';
import { PAGE, guestAccess, hostMappable } from './features.js';
import type { Kvm } from '../types.js';

const group = 'guest access' as const;
const GPA = 0x4000_0000;

// The host fills a shared file, the guest reads a page of it and writes into another, and the
// host reads that back; with or without the file's mapping as the slot's userspace memory.
function sharedRoundTrip(kvm: Kvm, withUserspace: boolean): Promise<unknown> {
  return withVm(kvm, async (vm) => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
    const m = g.map();
    m.fill(0, 4 * PAGE, 0xaa);
    vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: GPA,
      size: 4 * PAGE,
      guestMemfd: g,
      ...(withUserspace ? { userspace: m } : {}),
    });
    const seen = await attempt(() => vm.guest.read(GPA + PAGE, 16));
    const wrote = await attempt(() => vm.guest.write(GPA + 2 * PAGE + 8, Buffer.alloc(24, 0xff)));
    return { seen, wrote, host: await attempt(() => m.read(2 * PAGE, PAGE)) };
  });
}

export const guestCases: Case[] = [
  {
    id: 'guest.shared-round-trip',
    group,
    title:
      'a guest_memfd slot set without userspace memory: 6.18 gives the guest no memory there (MMIO), the series use the file in place',
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) => sharedRoundTrip(kvm, false),
  },
  {
    id: 'guest.shared-round-trip-userspace',
    group,
    title:
      "with the file's own mapping as the slot's userspace memory, guest and host see each other's writes (the selftest's setup)",
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) => sharedRoundTrip(kvm, true),
  },
  {
    id: 'guest.slot-offset',
    group,
    title: 'a slot at guest_memfd offset 2 pages shows the guest the file from there',
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
        const m = g.map();
        m.fill(2 * PAGE, PAGE, 0x21);
        m.fill(3 * PAGE, PAGE, 0x31);
        vm.setMemoryRegion({ slot: 3, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g, guestMemfdOffset: 2 * PAGE });
        return { bytes: await attempt(() => vm.guest.read(GPA + PAGE - 4, 8)) };
      }),
  },
  {
    id: 'guest.private-file-faults',
    group,
    title: 'guest access to a private guest_memfd page is a memory fault at its gpa',
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, guestMemfd: g });
        return {
          read: await attempt(() => vm.guest.read(GPA + PAGE + 8, 8)),
          write: await attempt(() => vm.guest.write(GPA + 3 * PAGE, Buffer.alloc(4, 1))),
        };
      }),
  },
  {
    id: 'guest.uncovered-gpa',
    group,
    title: 'a guest address outside every slot is refused',
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, guestMemfd: g });
        return {
          below: await attempt(() => vm.guest.read(GPA - PAGE, 8)),
          above: await attempt(() => vm.guest.write(GPA + 4 * PAGE, Buffer.alloc(8))),
          straddling: await attempt(() => vm.guest.read(GPA + 4 * PAGE - 4, 8)),
        };
      }),
  },
  {
    id: 'guest.across-slots',
    group,
    title: 'an access spanning two adjacent slots reads both files',
    requires: guestAccess,
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const a = vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) });
        const b = vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) });
        a.map().fill(0, PAGE, 0x0a);
        b.map().fill(0, PAGE, 0x0b);
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: PAGE, guestMemfd: a });
        vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA + PAGE, size: PAGE, guestMemfd: b });
        return { bytes: await attempt(() => vm.guest.read(GPA + PAGE - 8, 16)) };
      }),
  },
];
