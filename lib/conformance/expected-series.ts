// What the two series profiles must answer in the conversion and pins cases (cases-convert.ts,
// cases-pins.ts), where they part ways. Each answer is the rule of docs/profiles.md it tests:
// rfc-v5 (20250117163001.2326672-N-tabba@google.com = `-N-tabba`): gmem_clear_mappable counts a
// mapped page's reference and zaps no PTE (-6-tabba), nothing completes a pending page (-7-tabba);
// inplace-v8 (v8-NN): to-private zaps PTEs and then fails EAGAIN on an extra reference (v8-14),
// and a range that already has the attributes returns 0 without looking (v8-16).
// test/conformance/conformance.test.ts holds each profile to these, exactly.
import type { Json } from './case.js';

const PAGE = 4096;
const ext = (state: string) => (offset: number, length: number) => ({ offset, length, state });
const S = ext('shared');
const V = ext('private');
const W = ext('pending');
const ok = (v: Json) => ({ ok: v });
const pending = (...p: Json[]) => ok({ pending: p });
const sigbus = (offset: number, access: 'read' | 'write') => ({
  error: { class: 'HostAccessError', code: 'SIGBUS', offset, access },
});
const busy = (errorOffset: number) => ({ error: { class: 'ConversionBusyError', code: 'EAGAIN', errorOffset } });
const ALL = 4 * PAGE;
const einval = {
  error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_SET_MEMORY_ATTRIBUTES2' },
};

/** conv.selftest-indexing (the v8 conversions test's `indexing`, pages 0..3): the same answer in both series. */
function indexing(): Json {
  const out: Record<string, Json> = {};
  for (let t = 0; t < 4; t++) {
    const around = [S(0, t * PAGE), V(t * PAGE, PAGE), S((t + 1) * PAGE, (3 - t) * PAGE)].filter((e) => e.length > 0);
    out[`page ${t}`] = {
      toPrivate: pending(),
      whilePrivate: {
        states: around,
        page: sigbus(t * PAGE, 'read'),
        all: ok([0, 1, 2, 3].filter((i) => i !== t).map((i) => 0x10 + i)),
      },
      toShared: ok(null),
      states: [S(0, ALL)],
      bytes: ok('10*4096 11*4096 12*4096 13*4096'),
    };
  }
  return out;
}

export const seriesExpectations: Record<'rfc-v5' | 'inplace-v8', Record<string, Json>> = {
  'rfc-v5': {
    // The file-offset stand-in for kvm_slot_gmem_*_mappable has no VM check (the series' GFN form
    // would find no private slot on such a VM and do nothing).
    'conv.vm-without-private-memory': { unshare: pending(), share: ok(null), unaligned: einval, states: [S(0, ALL)] },
    // The README's headline: the host keeps its live PTE, the page is NONE (pending), a new fault SIGBUSes.
    'conv.unshare-mapped': {
      unshare: pending(W(PAGE, PAGE)),
      states: [S(0, PAGE), W(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
      liveRead: ok('3c*4'),
      liveWrite: ok(null),
      newMapping: sigbus(PAGE, 'read'),
      afterUnmap: pending(),
      final: [S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
    },
    // Both start host-mappable (an empty xarray reads ALL); 6.18's INIT_SHARED bit is EINVAL (-11-tabba).
    'conv.initial-states': {
      initShared: {
        error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' },
      },
      mmapOnly: ok([S(0, ALL)]),
      noFlags: ok([S(0, ALL)]),
      subrange: ok([S(PAGE, PAGE)]),
    },
    // The cases fill through a mapping they keep: those pages stay referenced, so pending.
    'conv.unshare-one-page': {
      unshare: pending(W(PAGE, PAGE)),
      states: [S(0, PAGE), W(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
      neighbour: ok('aa*4096'),
      page: ok('aa*1'),
      next: ok('aa*8192'),
    },
    'conv.round-trip-keeps-data': {
      unshare: pending(W(0, ALL)),
      share: ok(null),
      states: [S(0, ALL)],
      bytes: ok('5a*16384'),
    },
    // Punch leaves the state (no change to mappable_offsets in the series) and unmaps the page.
    'conv.punch-keeps-state': {
      punch: ok(null),
      states: [W(0, 2 * PAGE), S(2 * PAGE, 2 * PAGE)],
      bytes: ok('00*4096 66*4096'),
    },
    'pins.unshare-held': {
      unshare: pending(W(2 * PAGE, PAGE)),
      states: [V(0, 2 * PAGE), W(2 * PAGE, PAGE), V(3 * PAGE, PAGE)],
    },
    // Releasing completes nothing; unsharing again does (gmem_clear_mappable finds no reference).
    'pins.release-completes': {
      unshare: pending(W(PAGE, 2 * PAGE)),
      released: true,
      states: [V(0, PAGE), W(PAGE, 2 * PAGE), V(3 * PAGE, PAGE)],
      retry: pending(),
      final: [V(0, ALL)],
    },
    'pins.two-holds': {
      first: pending(W(0, 2 * PAGE)),
      oneLeft: { states: [W(0, 2 * PAGE), V(2 * PAGE, 2 * PAGE)], unshare: pending(W(PAGE, PAGE)) },
      bothReleased: [W(0, 2 * PAGE), V(2 * PAGE, 2 * PAGE)],
      last: pending(),
    },
    'pins.share-cancels': {
      unshare: pending(W(0, PAGE)),
      share: ok(null),
      states: [S(0, PAGE), V(PAGE, 3 * PAGE)],
      afterRelease: [S(0, PAGE), V(PAGE, 3 * PAGE)],
    },
    'pins.host-access-held': { unshare: pending(W(PAGE, PAGE)), read: sigbus(PAGE + 1, 'read'), other: ok('99*4') },
    // v5's guest fault path (-15-tabba) checks no mappability: the guest reads a pending page.
    'pins.guest-pending': { unshare: pending(W(PAGE, PAGE)), read: ok('00*8'), after: ok('00*8') },
    'conv.selftest-indexing': indexing(),
  },
  'inplace-v8': {
    // v8-13 kvm_gmem_set_attributes: !kvm_arch_has_private_mem -> EINVAL, before the range checks.
    'conv.vm-without-private-memory': { unshare: einval, share: einval, unaligned: einval, states: [S(0, ALL)] },
    'conv.unshare-mapped': {
      unshare: pending(),
      states: [S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
      liveRead: sigbus(PAGE, 'read'),
      liveWrite: sigbus(PAGE, 'write'),
      newMapping: sigbus(PAGE, 'read'),
      afterUnmap: pending(),
      final: [S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
    },
    'conv.initial-states': {
      initShared: ok([S(0, ALL)]),
      mmapOnly: ok([V(0, ALL)]),
      noFlags: ok([V(0, ALL)]),
      subrange: ok([V(PAGE, PAGE)]),
    },
    'conv.unshare-one-page': {
      unshare: pending(),
      states: [S(0, PAGE), V(PAGE, PAGE), S(2 * PAGE, 2 * PAGE)],
      neighbour: ok('aa*4096'),
      page: sigbus(PAGE + 100, 'read'),
      next: ok('aa*8192'),
    },
    'conv.round-trip-keeps-data': { unshare: pending(), share: ok(null), states: [S(0, ALL)], bytes: ok('5a*16384') },
    'conv.punch-keeps-state': {
      punch: ok(null),
      states: [V(0, 2 * PAGE), S(2 * PAGE, 2 * PAGE)],
      bytes: ok('00*4096 66*4096'),
    },
    'pins.unshare-held': { unshare: busy(2 * PAGE), states: [S(0, ALL)] },
    'pins.release-completes': {
      unshare: busy(PAGE),
      released: true,
      states: [S(0, ALL)],
      retry: pending(),
      final: [V(0, ALL)],
    },
    'pins.two-holds': {
      first: busy(0),
      oneLeft: { states: [S(0, ALL)], unshare: busy(PAGE) },
      bothReleased: [S(0, ALL)],
      last: pending(),
    },
    'pins.share-cancels': { unshare: busy(0), share: ok(null), states: [S(0, ALL)], afterRelease: [S(0, ALL)] },
    'pins.share-ignores-holds': { share: ok(null), states: [S(0, ALL)] },
    'pins.host-access-held': { unshare: busy(PAGE), read: ok('99*1'), other: ok('99*4') },
    'pins.guest-pending': { unshare: busy(PAGE), read: ok('00*8'), after: ok('00*8') },
    'conv.selftest-indexing': indexing(),
  },
};
