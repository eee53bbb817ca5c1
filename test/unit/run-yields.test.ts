// run() whose exits keep coming back inline (on the calling thread) must still let the event loop
// turn: once the inline window has passed since it last turned, the next exit is handed over on a
// later turn. A fake port stands for the vCPU so the case needs no /dev/kvm and no timing bound:
// each of its runs takes 100 us of wall time, so 200 of them hold the loop for at least 20 ms,
// 10 times the default window (2 ms).
import { describe, expect, it } from 'vitest';
import { EXITS } from '../../lib/constants.js';
import { Vcpu } from '../../lib/core/vcpu.js';
import type { VcpuLayout, VcpuPort } from '../../lib/ports.js';

const spin = (us: number): void => {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
};

function fakeVcpu(runUs = 100): { vcpu: Vcpu; runs: () => number } {
  let runs = 0;
  const port = {
    id: 0,
    fd: -1,
    layout: {} as VcpuLayout,
    area: () => new ArrayBuffer(4096),
    run: () => {
      spin(runUs);
      runs++;
      return EXITS.HLT!;
    },
    runSync: () => {
      runs++;
      return EXITS.HLT!;
    },
    setRunInline: () => {},
    close: () => {},
  } as unknown as VcpuPort;
  return { vcpu: new Vcpu(port, () => {}), runs: () => runs };
}

describe('run() and the event loop', () => {
  it('a loop of await run() with inline exits lets a timer run', async () => {
    const { vcpu } = fakeVcpu();
    let fired = false;
    setTimeout(() => (fired = true), 0);
    let n = 0;
    while (!fired && n < 200) {
      expect(await vcpu.run()).toEqual({ reason: 'hlt' });
      n++;
    }
    expect(fired).toBe(true);
  });

  it('an exit handed over on a later turn keeps the vCPU busy until then, and is the exit that came back', async () => {
    const { vcpu, runs } = fakeVcpu();
    // Past the default window (2 ms): the second run's exit waits for the loop's next turn.
    let p: Promise<unknown> = vcpu.run();
    await p;
    spin(2100);
    p = vcpu.run();
    expect(runs()).toBe(2);
    expect(() => vcpu.runSync()).toThrow(expect.objectContaining({ code: 'ERR_KVM_VCPU_BUSY' }));
    expect(await p).toEqual({ reason: 'hlt' });
    expect(vcpu.runSync()).toEqual({ reason: 'hlt' });
  });

  it('the default window is 2 ms: an exit 0.6 ms into the hold still comes back in this turn', async () => {
    const { vcpu } = fakeVcpu();
    await vcpu.run();
    spin(600);
    const p = vcpu.run();
    expect(vcpu.runSync()).toEqual({ reason: 'hlt' }); // not busy: the exit was not deferred
    expect(await p).toEqual({ reason: 'hlt' });
  });

  it('a close before the exit is handed over rejects the run with ClosedError', async () => {
    const { vcpu } = fakeVcpu();
    await vcpu.run();
    spin(2100);
    const p = vcpu.run();
    vcpu.close();
    await expect(p).rejects.toMatchObject({ name: 'ClosedError' });
  });

  it('setRunInline sets the window that bounds the hold', async () => {
    const { vcpu } = fakeVcpu(100);
    vcpu.setRunInline(10_000_000); // 10 s: 100 runs of 100 us all come back in this turn
    let fired = false;
    setTimeout(() => (fired = true), 0);
    for (let i = 0; i < 100; i++) await vcpu.run();
    expect(fired).toBe(false);
    vcpu.setRunInline(500);
    let n = 0;
    while (!fired && n < 200) {
      await vcpu.run();
      n++;
    }
    expect(fired).toBe(true);
  });
});
