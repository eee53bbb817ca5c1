// references/pins: host references (hold) and what a to-private conversion does with held pages:
// pending until release (rfc-v5), or EAGAIN at the first held page converting nothing (in-place v8).
import { attempt, withVm, type Case } from './case.js';
import type { GuestMemfd, Vm } from '../types.js';
import { PAGE, conversion, conversionAndHolds, conversionVmType, guestAccess, hostMappable } from './features.js';

const group = 'references/pins' as const;
const SIZE = 4 * PAGE;

/** A 4-page file of the conversion VM type, shared and filled with 0x99, not mapped. */
function pinned(id: string, title: string, body: (g: GuestMemfd, vm: Vm) => Promise<unknown>): Case {
  return {
    id,
    group,
    title,
    requires: conversionAndHolds,
    run: (kvm) =>
      withVm(
        kvm,
        (vm) => {
          const g = vm.createGuestMemfd({ size: SIZE, mmap: true });
          g.share(0, SIZE);
          // Unmapped again, so the holds are the only references (a mapped page is one too: rfc-v5).
          const m = g.map();
          m.fill(0, SIZE, 0x99);
          m.unmap();
          return body(g, vm);
        },
        conversionVmType(kvm),
      ),
  };
}

export const pinCases: Case[] = [
  {
    id: 'pins.hold-without-conversion',
    group,
    title: 'without conversion a hold references shared pages; a private page or a file without mmap is refused',
    requires: async (kvm) =>
      (await conversion(kvm)) === null ? 'not applicable: this backend converts (the other pins cases apply)' : null,
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: SIZE, ...hostMappable(vm) });
        const priv = vm.createGuestMemfd({ size: SIZE, mmap: true });
        const unmappable = vm.createGuestMemfd({ size: SIZE });
        return {
          hold: await attempt(() => g.hold(0, PAGE).release()),
          whole: await attempt(() => g.hold(0, SIZE).release()),
          beyond: await attempt(() => g.hold(SIZE, PAGE)),
          private: await attempt(() => priv.hold(PAGE, PAGE)),
          noMmap: await attempt(() => unmappable.hold(0, PAGE)),
        };
      }),
  },
  pinned('pins.unshare-held', 'unshare of a range with a held page', async (g) => {
    const h = g.hold(2 * PAGE, PAGE);
    const r = await attempt(() => g.unshare(0, SIZE));
    const states = g.states();
    h.release();
    return { unshare: r, states };
  }),
  pinned('pins.release-completes', 'releasing the last hold after an unshare', async (g) => {
    const h = g.hold(PAGE, 2 * PAGE);
    const unshare = await attempt(() => g.unshare(0, SIZE));
    h.release();
    return {
      unshare,
      released: h.released,
      states: g.states(),
      retry: await attempt(() => g.unshare(0, SIZE)),
      final: g.states(),
    };
  }),
  pinned('pins.two-holds', 'a page held twice stays held until both are released', async (g) => {
    const a = g.hold(PAGE, PAGE);
    const b = g.hold(0, 2 * PAGE);
    const first = await attempt(() => g.unshare(0, SIZE));
    a.release();
    const oneLeft = { states: g.states(), unshare: await attempt(() => g.unshare(PAGE, PAGE)) };
    b.release();
    return { first, oneLeft, bothReleased: g.states(), last: await attempt(() => g.unshare(0, SIZE)) };
  }),
  pinned('pins.share-cancels', 'sharing a held page after unshare leaves it shared, also after release', async (g) => {
    const h = g.hold(0, PAGE);
    const unshare = await attempt(() => g.unshare(0, SIZE));
    const share = await attempt(() => g.share(0, PAGE));
    const states = g.states();
    h.release();
    return { unshare, share, states, afterRelease: g.states() };
  }),
  pinned('pins.share-ignores-holds', 'to-shared conversion does not look at holds', async (g) => {
    g.unshare(0, SIZE);
    const h = g.hold(PAGE, PAGE);
    const share = await attempt(() => g.share(0, SIZE));
    h.release();
    return { share, states: g.states() };
  }),
  pinned('pins.host-access-held', 'the host may not touch a held page once unshare was asked', async (g) => {
    const h = g.hold(PAGE, PAGE);
    const m = g.map();
    const unshare = await attempt(() => g.unshare(PAGE, PAGE));
    const read = await attempt(() => m.read(PAGE + 1, 1));
    h.release();
    return { unshare, read, other: await attempt(() => m.read(0, 4)) };
  }),
  pinned('pins.hold-api', 'hold ranges: beyond EOF is a RangeError; release is idempotent', async (g) => {
    const h = g.hold(PAGE, PAGE);
    return {
      shape: { offset: h.offset, length: h.length, released: h.released },
      beyond: await attempt(() => g.hold(SIZE - PAGE, 2 * PAGE)),
      release: await attempt(() => h.release()),
      again: await attempt(() => h.release()),
      released: h.released,
    };
  }),
  {
    id: 'pins.guest-pending',
    group,
    title: 'the guest faults on a page left pending by a held unshare',
    requires: async (kvm) => (await conversionAndHolds(kvm)) ?? (await guestAccess(kvm)),
    timeoutMs: 15_000,
    run: (kvm) =>
      withVm(
        kvm,
        async (vm) => {
          const g = vm.createGuestMemfd({ size: SIZE, mmap: true });
          g.share(0, SIZE);
          vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x4000_0000, size: SIZE, guestMemfd: g });
          const h = g.hold(PAGE, PAGE);
          const unshare = await attempt(() => g.unshare(0, SIZE));
          const read = await attempt(() => vm.guest.read(0x4000_0000 + PAGE, 8));
          h.release();
          return { unshare, read, after: await attempt(() => vm.guest.read(0x4000_0000 + PAGE, 8)) };
        },
        conversionVmType(kvm),
      ),
  },
];
