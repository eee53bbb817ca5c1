// The caller's side of a copy: any ArrayBufferView is ordinary memory, a SharedArrayBuffer's too,
// and when that memory is what faults (a view() of another mapping whose page is private), the
// error names the guest_memfd behind it and says it was the caller's buffer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostAccessError, open, type GuestMemfd, type Kvm, type Mapping } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

// view() refuses a range it knows is private; the addon's own view gets a buffer over private pages
// (as a range turned private by the guest would give) to see which side a fault is blamed on.
function rawView(m: Mapping): ArrayBuffer {
  return (m as unknown as { port: { view(): ArrayBuffer } }).port.view();
}

const PAGE = 4096;

for (const backend of ['kvm', 'sim'] as const) {
  const describeOn = backend === 'kvm' ? describeKvm : describe;
  describeOn(`${backend}: copies with a SharedArrayBuffer`, () => {
    let kvm: Kvm;
    let m: Mapping;
    beforeEach(() => {
      // linux-6.18: the simulator profile with the kernel's uAPI (rfc-v5 has the series' 6.13 flags).
      kvm = open(backend === 'sim' ? { backend, profile: 'linux-6.18' } : { backend });
      m = kvm
        .createVm()
        .createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true })
        .map();
    });
    afterEach(() => kvm.close());

    it('write and readInto take a Uint8Array over a SharedArrayBuffer', () => {
      const shared = new Uint8Array(new SharedArrayBuffer(PAGE + 100), 100, PAGE);
      shared.fill(0x5a);
      m.write(PAGE, shared);
      const back = new Uint8Array(new SharedArrayBuffer(PAGE));
      expect(m.readInto(PAGE, back)).toBe(PAGE);
      expect(back.every((b) => b === 0x5a)).toBe(true);
      expect(m.read(PAGE - 1, 2)).toEqual(Buffer.from([0, 0x5a]));
    });

    it('a DataView over a SharedArrayBuffer is written too', () => {
      const dv = new DataView(new SharedArrayBuffer(8));
      dv.setUint32(0, 0xdeadbeef, true);
      m.write(0, dv);
      expect(m.read(0, 4).readUInt32LE(0)).toBe(0xdeadbeef);
    });
  });
}

describeKvm("a fault in the caller's buffer is blamed on that buffer", () => {
  let kvm: Kvm;
  let shared: Mapping;
  let priv: GuestMemfd;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    const vm = kvm.createVm();
    shared = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true }).map();
    // MMAP without INIT_SHARED: every page private, so every touch through a view faults.
    priv = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
  });
  afterEach(() => kvm.close());

  it('readInto a view of a private page: side buffer, the offset in that guest_memfd', () => {
    const view = new Uint8Array(rawView(priv.map(PAGE, 3 * PAGE)));
    const err = (() => {
      try {
        shared.readInto(0, view.subarray(PAGE + 10, PAGE + 10 + 64));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HostAccessError);
    // The target starts at byte PAGE + 10 of a mapping at file offset PAGE.
    expect(err).toMatchObject({ side: 'buffer', access: 'write', offset: 2 * PAGE + 10, bufferOffset: 0 });
  });

  it('write from a view of a private page: side buffer, read access', () => {
    const view = new Uint8Array(rawView(priv.map()));
    let err: unknown;
    try {
      shared.write(0, view.subarray(3 * PAGE, 3 * PAGE + 16));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'HostAccessError', side: 'buffer', access: 'read', offset: 3 * PAGE });
    // The mapping the call was made on is untouched and usable.
    expect(shared.read(0, 4)).toEqual(Buffer.alloc(4));
  });

  it('a fault in the mapping itself still says side mapping', () => {
    const m = priv.map();
    expect(() => m.read(PAGE, 1)).toThrow(expect.objectContaining({ side: 'mapping', offset: PAGE }));
  });
});
