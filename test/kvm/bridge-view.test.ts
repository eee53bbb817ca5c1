// Mapping.view(): zero-copy in both directions, and detached (length 0, no access to freed
// memory) the moment the mapping goes away, however it goes away.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { HostAccessError, open, type GuestMemfd, type Kvm, type Mapping, type Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE, thrown } from '../fixtures/kvm-cases.js';

describeKvm('Mapping.view()', () => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  let m: Mapping;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
    g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    m = g.map(PAGE, 2 * PAGE);
  });
  afterEach(() => kvm.close());

  it('is an ArrayBuffer over exactly the mapping', () => {
    const ab = m.view();
    expect(ab).toBeInstanceOf(ArrayBuffer);
    expect(ab.byteLength).toBe(2 * PAGE);
  });

  it('is zero-copy: a write through the view is seen by read(), and a write() is seen in the view', () => {
    const u8 = new Uint8Array(m.view());
    u8[0] = 0x42;
    u8[2 * PAGE - 1] = 0x43;
    expect(m.read(0, 1)[0]).toBe(0x42);
    expect(m.read(2 * PAGE - 1, 1)[0]).toBe(0x43);
    m.write(100, Uint8Array.of(7, 8, 9));
    m.fill(PAGE, 4, 0xee);
    expect([...u8.subarray(100, 103)]).toEqual([7, 8, 9]);
    expect([...u8.subarray(PAGE, PAGE + 4)]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });

  it('sees the same file memory as another mapping of the same range', () => {
    using other = g.map(0, 4 * PAGE);
    new Uint8Array(m.view())[5] = 0x99;
    expect(other.read(PAGE + 5, 1)[0]).toBe(0x99);
    expect(new Uint8Array(other.view())[PAGE + 5]).toBe(0x99);
  });

  it('sees a punched hole as zeros at once', () => {
    const u8 = new Uint8Array(m.view());
    u8.fill(0x55);
    g.punchHole(PAGE, PAGE);
    expect(u8[0]).toBe(0);
    expect(u8[PAGE]).toBe(0x55);
  });

  const closers: [string, () => void][] = [
    ['unmap()', () => m.unmap()],
    ['close() of the mapping', () => m.close()],
    ['its GuestMemfd closing', () => g.close()],
    ['its Vm closing', () => vm.close()],
    ['its Kvm closing', () => kvm.close()],
  ];
  for (const [how, close] of closers) {
    it(`every view is detached after ${how}: byteLength 0, reads undefined, writes go nowhere`, () => {
      const a = m.view();
      const b = m.view();
      const u8 = new Uint8Array(a);
      const dv = new DataView(b);
      u8[0] = 1;
      close();
      expect(a.byteLength).toBe(0);
      expect(b.byteLength).toBe(0);
      expect((a as ArrayBuffer & { detached?: boolean }).detached ?? true).toBe(true);
      expect(u8.length).toBe(0);
      expect(u8[0]).toBeUndefined();
      u8[0] = 2; // a write to a detached buffer is dropped, never reaches unmapped memory
      expect(u8[0]).toBeUndefined();
      expect(() => dv.getUint8(0)).toThrow(TypeError);
      expect(thrown(() => m.view()).code).toBe('ERR_KVM_CLOSED');
    });
  }

  it('views of one mapping are not detached by unmapping another mapping of the same file', () => {
    const other = g.map(PAGE, 2 * PAGE);
    const v = m.view();
    other.unmap();
    expect(v.byteLength).toBe(2 * PAGE);
    new Uint8Array(v)[0] = 3;
    expect(m.read(0, 1)[0]).toBe(3);
  });

  it('views made and dropped many times do not pile up or break detaching', () => {
    for (let i = 0; i < 2000; i++) new Uint8Array(m.view())[i % (2 * PAGE)] = i & 0xff;
    const last = m.view();
    m.unmap();
    expect(last.byteLength).toBe(0);
  });

  it('view() of a range known to be private is refused with HostAccessError at its first private page', () => {
    // Before, view() returned a buffer whose first touch killed the process (SIGBUS outside any guard).
    using p = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
    using pm = p.map(PAGE, 2 * PAGE);
    const e = thrown(() => pm.view());
    expect(e).toBeInstanceOf(HostAccessError);
    expect(e).toMatchObject({ code: 'SIGBUS', offset: PAGE, access: 'read' });
    expect(thrown(() => pm.read(0, 1)).code).toBe('SIGBUS');
    using s = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    using sm = s.map();
    expect(sm.view().byteLength).toBe(PAGE);
  });
});
