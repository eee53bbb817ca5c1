// conversion: share/unshare in place, the states they leave, and what host and guest may then touch.
// Where the backend has no conversion mechanism the cases below the first two are 'not supported'.
import { attempt, withVm, type Case } from './case.js';
import type { GuestMemfd, Vm } from '../types.js';
import { PAGE, conversion, conversionVmType, guestAccess, hostMappable } from './features.js';

const group = 'conversion' as const;
const SIZE = 4 * PAGE;

/** A VM of the conversion type and a 4-page MMAP file, all private until shared. */
function converting(id: string, title: string, body: (g: GuestMemfd, vm: Vm) => Promise<unknown>): Case {
  return {
    id,
    group,
    title,
    requires: conversion,
    run: (kvm) => withVm(kvm, (vm) => body(vm.createGuestMemfd({ size: SIZE, mmap: true }), vm), conversionVmType(kvm)),
  };
}

export const convertCases: Case[] = [
  {
    id: 'conv.initial-states',
    group,
    title: 'INIT_SHARED files start shared, other files private',
    run: (kvm) =>
      withVm(kvm, async (vm) => ({
        initShared: await attempt(() => vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true }).states()),
        mmapOnly: await attempt(() => vm.createGuestMemfd({ size: SIZE, mmap: true }).states()),
        noFlags: await attempt(() => vm.createGuestMemfd({ size: SIZE }).states()),
        subrange: await attempt(() => vm.createGuestMemfd({ size: SIZE, mmap: true }).states(PAGE, PAGE)),
      })),
  },
  {
    id: 'conv.available',
    group,
    title: 'share and unshare of one page either convert or say conversion is unsupported',
    run: (kvm) =>
      withVm(
        kvm,
        async (vm) => {
          const g = vm.createGuestMemfd({ size: SIZE, mmap: true });
          return { share: await attempt(() => g.share(0, PAGE)), unshare: await attempt(() => g.unshare(0, PAGE)) };
        },
        conversionVmType(kvm),
      ),
  },
  {
    id: 'conv.vm-without-private-memory',
    group,
    title: 'share and unshare on a file of a VM without private memory (type 0)',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: SIZE, ...hostMappable(vm) });
        return {
          unshare: await attempt(() => g.unshare(0, PAGE)),
          share: await attempt(() => g.share(0, PAGE)),
          unaligned: await attempt(() => g.unshare(100, PAGE)),
          states: g.states(),
        };
      }),
  },
  converting('conv.share-private', 'sharing pages of a private file lets the host touch exactly those', async (g) => {
    const m = g.map();
    return {
      share: await attempt(() => g.share(PAGE, 2 * PAGE)),
      states: g.states(),
      inside: await attempt(() => m.read(PAGE, 2 * PAGE)),
      before: await attempt(() => m.read(PAGE - 8, 16)),
      after: await attempt(() => m.write(3 * PAGE, Buffer.alloc(1))),
    };
  }),
  converting('conv.unshare-one-page', 'unsharing one page leaves its neighbours shared and SIGBUS on it', async (g) => {
    g.share(0, SIZE);
    const m = g.map();
    m.fill(0, SIZE, 0xaa);
    return {
      unshare: await attempt(() => g.unshare(PAGE, PAGE)),
      states: g.states(),
      neighbour: await attempt(() => m.read(0, PAGE)),
      page: await attempt(() => m.read(PAGE + 100, 1)),
      next: await attempt(() => m.read(2 * PAGE, 2 * PAGE)),
    };
  }),
  converting(
    'conv.unshare-mapped',
    'unshare while the host has the pages mapped and touched: what the live mapping and a new one see',
    async (g) => {
      g.share(0, SIZE);
      const m = g.map();
      m.fill(0, SIZE, 0x3c);
      const unshare = await attempt(() => g.unshare(PAGE, PAGE));
      return {
        unshare,
        states: g.states(),
        liveRead: await attempt(() => m.read(PAGE, 4)),
        liveWrite: await attempt(() => m.write(PAGE, Buffer.from([1]))),
        newMapping: await attempt(() => g.map().read(PAGE, 4)),
        afterUnmap: await attempt(() => {
          m.unmap();
          return g.unshare(PAGE, PAGE);
        }),
        final: g.states(),
      };
    },
  ),
  converting(
    'conv.round-trip-keeps-data',
    'private and back to shared keeps the bytes (conversion is in place)',
    async (g) => {
      g.share(0, SIZE);
      const m = g.map();
      m.fill(0, SIZE, 0x5a);
      return {
        unshare: await attempt(() => g.unshare(0, SIZE)),
        share: await attempt(() => g.share(0, SIZE)),
        states: g.states(),
        bytes: await attempt(() => m.read(0, SIZE)),
      };
    },
  ),
  converting(
    'conv.punch-keeps-state',
    'punching a private page keeps it private, and it comes back as zero',
    async (g) => {
      g.share(0, SIZE);
      const m = g.map();
      m.fill(0, SIZE, 0x66);
      g.unshare(0, 2 * PAGE);
      const punch = await attempt(() => g.punchHole(0, PAGE));
      const states = g.states();
      g.share(0, 2 * PAGE);
      return { punch, states, bytes: await attempt(() => m.read(0, 2 * PAGE)) };
    },
  ),
  converting('conv.unallocated', 'conversions of pages never allocated are recorded', async (g) => ({
    share: await attempt(() => g.share(2 * PAGE, 2 * PAGE)),
    unshare: await attempt(() => g.unshare(3 * PAGE, PAGE)),
    states: g.states(),
    blocks: g.stat().blocks,
  })),
  converting(
    'conv.bad-ranges',
    'unaligned or empty conversions are refused; ranges past EOF are RangeErrors',
    async (g) => ({
      shareUnaligned: await attempt(() => g.share(100, PAGE)),
      unshareUnaligned: await attempt(() => g.unshare(0, PAGE + 1)),
      shareEmpty: await attempt(() => g.share(0, 0)),
      beyond: await attempt(() => g.share(0, 2 * SIZE)),
      states: g.states(),
    }),
  ),
  converting('conv.view-detached', 'unsharing a page under a view detaches the view', async (g) => {
    g.share(0, SIZE);
    const m = g.map();
    const v = await attempt(() => m.view().byteLength);
    let view: ArrayBuffer | undefined;
    try {
      view = m.view();
    } catch {
      // reported through v above
    }
    g.unshare(2 * PAGE, PAGE);
    return { before: v, after: view ? view.byteLength : null };
  }),
  {
    id: 'conv.guest-private-ok',
    group,
    title: 'the guest still reads a page the host gave up (private is guest-mappable)',
    requires: async (kvm) => (await conversion(kvm)) ?? (await guestAccess(kvm)),
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(
        kvm,
        async (vm) => {
          const g = vm.createGuestMemfd({ size: SIZE, mmap: true });
          g.share(0, SIZE);
          g.map().fill(0, SIZE, 0x42);
          g.unshare(0, SIZE);
          vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x4000_0000, size: SIZE, guestMemfd: g });
          return { read: await attempt(() => vm.guest.read(0x4000_0000 + PAGE, 8)) };
        },
        conversionVmType(kvm),
      ),
  },
];
