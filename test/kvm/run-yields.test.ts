// On the real kernel: loops of awaited runs whose exits all come back inline still let the event
// loop turn (test/unit/run-yields.test.ts pins the rule on a fake port). A vm.guest loop on this
// host held a 20 ms timer for over 3 s before: its worker could not even process.exit().
import { afterEach, expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import type { Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

const PAGE = 4096;
// Real mode at gpa 0: `out 0x10, al` then a jump back to it, so every run is one io exit.
const OUT_LOOP = Uint8Array.from([0xe6, 0x10, 0xeb, 0xfc]);
// Liveness, not speed: a loop that never yields runs into this bound; one that yields stops at
// the timer, tens of milliseconds in.
const GIVE_UP_MS = 5000;

/** Runs `step` in a loop until a 20 ms timer fires or GIVE_UP_MS passes; whether the timer fired. */
async function timerFires(step: () => Promise<unknown>): Promise<boolean> {
  let fired = false;
  const t = setTimeout(() => (fired = true), 20);
  const start = Date.now();
  while (!fired && Date.now() - start < GIVE_UP_MS) await step();
  clearTimeout(t);
  return fired;
}

describeKvm('awaited runs and the event loop', () => {
  let vm: Vm | undefined;
  afterEach(() => vm?.close());

  it('a loop of vm.guest writes and reads lets a timer run', async () => {
    vm = open({ backend: 'kvm' }).createVm();
    const gm = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * PAGE, guestMemfd: gm, userspace: gm.map() });
    const buf = Buffer.alloc(8 * PAGE, 0x5a);
    const v = vm;
    expect(
      await timerFires(async () => {
        await v.guest.write(0x2000, buf);
        expect((await v.guest.read(0x2000, 8 * PAGE)).equals(buf)).toBe(true);
      }),
    ).toBe(true);
  });

  it('a loop of vcpu.run() on a guest doing out in a loop lets a timer run', async () => {
    vm = open({ backend: 'kvm' }).createVm();
    const gm = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
    const m = gm.map();
    m.write(0, OUT_LOOP);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * PAGE, guestMemfd: gm, userspace: m });
    const vcpu = vm.createVcpu(0);
    vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
    vcpu.setRegs({ rip: 0n, rflags: 2n });
    expect(
      await timerFires(async () => {
        expect((await vcpu.run()).reason).toBe('io');
      }),
    ).toBe(true);
  });
});
