// hold() on the real kernel: vmsplice of the mapped range into pipes, whose buffers keep a
// reference on every page until release() or the file's close. What a reference does is visible
// here: a page punched out of the file while held is still the old page in the hold.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open, type GuestMemfd, type Kvm } from '../../lib/index.js';
import type { HostHold } from '../../lib/core/hold.js';
import type { KvmHoldPort } from '../../lib/kvm/guest-memfd.js';
import { describeKvm } from '../helpers/kvm.js';
import { openFds } from '../helpers/fds.js';

const PAGE = 4096;

describeKvm('hold() on the kvm backend', () => {
  let kvm: Kvm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    g = kvm.createVm().createGuestMemfd({ size: 1 << 22, mmap: true, initShared: true });
  });
  afterEach(() => kvm.close());

  const peek = (h: unknown, n: number) => ((h as HostHold).port as KvmHoldPort).peek(n);

  it('a held page survives a punch-hole in the hold, while the file reads zero', () => {
    const m = g.map();
    m.fill(0, 2 * PAGE, 0x41);
    const h = g.hold(0, 2 * PAGE);
    g.punchHole(0, 2 * PAGE);
    expect(m.read(0, 4)).toEqual(Buffer.alloc(4));
    expect(peek(h, 4)).toEqual(Buffer.from('AAAA'));
    h.release();
    expect(peek(h, 4)).toBeNull();
  });

  it('a hold keeps one pipe per MiB open until released; closing the file releases it too', () => {
    const fds = openFds();
    const h = g.hold(PAGE, 3 << 20); // pages 1..768: three pipes
    expect(openFds() - fds).toBe(3);
    h.release();
    h.release();
    expect(openFds()).toBe(fds);
    g.hold(0, PAGE);
    expect(openFds()).toBe(fds + 1);
    g.close();
    expect(openFds()).toBe(fds - 1); // the hold's pipe and the file's own fd
  });

  it('a hold reaching a private page takes nothing and says EFAULT; more than 64 MiB is unsupported', () => {
    const priv = kvm.createVm().createGuestMemfd({ size: 1 << 27, mmap: true });
    const fds = openFds();
    expect(() => priv.hold(0, PAGE)).toThrow(expect.objectContaining({ code: 'EFAULT', syscall: 'vmsplice' }));
    expect(openFds()).toBe(fds);
    expect(() => priv.hold(0, (64 << 20) + 1)).toThrow(
      expect.objectContaining({ code: 'ERR_KVM_UNSUPPORTED', feature: 'hold' }),
    );
  });
});
