// Size costs nothing until touched: a 1 TiB file converts its whole range as extents, and stores
// only the pages written.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Kvm, Vm } from '../../lib/index.js';
import type { GuestMemfd } from '../../lib/core/guest-memfd.js';
import type { SimGuestMemfd } from '../../lib/sim/index.js';

const stored = (g: unknown) => ((g as GuestMemfd).port as SimGuestMemfd).storedPages;
import { PAGE, TIB, sim } from './helpers.js';
import { hostMappable } from '../../lib/conformance/features.js';

describe.each(['rfc-v5', 'inplace-v8'] as const)('%s: a 1 TiB guest_memfd', (profile) => {
  let kvm: Kvm;
  let vm: Vm;
  beforeEach(() => {
    kvm = sim(profile);
    vm = kvm.createVm({ type: 1 });
  });
  afterEach(() => kvm.close());

  it('shares and unshares its whole range, and one page in the middle', () => {
    const g = vm.createGuestMemfd({ size: TIB, mmap: true });
    g.share(0, TIB);
    expect(g.states()).toEqual([{ offset: 0, length: TIB, state: 'shared' }]);
    g.unshare(TIB / 2, PAGE);
    expect(g.states()).toEqual([
      { offset: 0, length: TIB / 2, state: 'shared' },
      { offset: TIB / 2, length: PAGE, state: 'private' },
      { offset: TIB / 2 + PAGE, length: TIB / 2 - PAGE, state: 'shared' },
    ]);
    expect(g.unshare(0, TIB)).toEqual({ pending: [] });
    expect(g.states()).toEqual([{ offset: 0, length: TIB, state: 'private' }]);
    expect(stored(g)).toBe(0);
  });

  it('writing 3 pages stores 3 pages; the rest reads zero; punching drops them', () => {
    const g = vm.createGuestMemfd({ size: TIB, ...hostMappable(vm) });
    const m = g.map(TIB - 2 ** 30, 2 ** 30);
    m.write(0, Buffer.alloc(PAGE, 1));
    m.fill(2 ** 29, 10, 2);
    m.write(2 ** 30 - 3, Buffer.from([3, 3, 3]));
    expect(stored(g)).toBe(3);
    m.fill(PAGE * 100, PAGE * 50, 0);
    expect(stored(g)).toBe(3);
    expect([...m.read(2 ** 29 - 1, 3)]).toEqual([0, 2, 2]);
    expect(m.read(PAGE, PAGE).every((b) => b === 0)).toBe(true);
    g.punchHole(0, TIB);
    expect(stored(g)).toBe(0);
    expect([...m.read(2 ** 30 - 3, 3)]).toEqual([0, 0, 0]);
  });

  it('a hold across the whole file pins every page and one release frees them', () => {
    const g = vm.createGuestMemfd({ size: TIB, ...hostMappable(vm) });
    const h = g.hold(0, TIB);
    if (profile === 'rfc-v5') {
      expect(g.unshare(0, TIB).pending).toEqual([{ offset: 0, length: TIB, state: 'pending' }]);
      h.release();
      // Nothing completes a pending page in v5; unsharing again finds no reference left.
      expect(g.states()).toEqual([{ offset: 0, length: TIB, state: 'pending' }]);
      expect(g.unshare(0, TIB)).toEqual({ pending: [] });
      expect(g.states()).toEqual([{ offset: 0, length: TIB, state: 'private' }]);
    } else {
      expect(() => g.unshare(TIB - PAGE, PAGE)).toThrow(
        expect.objectContaining({ code: 'EAGAIN', errorOffset: TIB - PAGE }),
      );
      h.release();
      expect(g.unshare(0, TIB)).toEqual({ pending: [] });
    }
  });
});

describe('sparse storage and views', () => {
  it('a view shares bytes with read/write and punch; unmap detaches it and keeps the data', () => {
    const kvm = sim('linux-6.18');
    const g = kvm.createVm().createGuestMemfd({ size: 8 * PAGE, mmap: true, initShared: true });
    const m = g.map(0, 4 * PAGE);
    const buf = m.view();
    expect(buf.byteLength).toBe(4 * PAGE);
    expect(m.view()).toBe(buf);
    new Uint8Array(buf).fill(7, 0, 2 * PAGE);
    expect([...m.read(PAGE, 2)]).toEqual([7, 7]);
    g.punchHole(0, PAGE);
    expect(new Uint8Array(buf)[0]).toBe(0);
    m.unmap();
    expect(buf.byteLength).toBe(0);
    expect([...g.map().read(PAGE, 1)]).toEqual([7]);
    expect(stored(g)).toBe(1);
    kvm.close();
  });

  it('view of an unaligned-length mapping, or of pages another live view covers, is UnsupportedError', () => {
    const kvm = sim('linux-6.18');
    const g = kvm.createVm().createGuestMemfd({ size: 8 * PAGE, mmap: true, initShared: true });
    expect(() => g.map(0, 100).view()).toThrow(
      expect.objectContaining({ code: 'ERR_KVM_UNSUPPORTED', feature: 'Mapping.view' }),
    );
    g.map(0, 2 * PAGE).view();
    expect(() => g.map(PAGE, PAGE).view()).toThrow(expect.objectContaining({ code: 'ERR_KVM_UNSUPPORTED' }));
    kvm.close();
  });
});
