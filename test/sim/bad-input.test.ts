// Bad input to every public call of the simulator, in every profile: the table both backends run
// (test/fixtures/bad-input.ts: wrong types are TypeError, values no syscall could carry RangeError,
// both before any effect, what the kernel judges its errno, any call on a closed object or a child
// of one ClosedError), and the rows where the profiles answer differently from this host's kernel.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Profile } from '../../lib/index.js';
import { cases, expectBadInput, failure, kernel, makeCtx, TOTAL, type Case, type Ctx } from '../fixtures/bad-input.js';
import { PAGE, sim } from './helpers.js';

const rows: Case[] = [
  ...cases,
  {
    name: 'kvm.createVm with type 7',
    run: (c) => c.kvm.createVm({ type: 7 }),
    want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_VM'),
  },
];

describe.each<Profile>(['linux-6.18', 'rfc-v5', 'inplace-v8'])('%s: bad input', (profile) => {
  let c: Ctx;
  beforeEach(() => {
    c = makeCtx(sim(profile));
  });
  afterEach(() => c.kvm.close());

  // RFC v5 maps every guest_memfd (kvm_gmem_mmap has no flag check): no file lacks MMAP there.
  const mine = rows.filter((x) => profile !== 'rfc-v5' || x.name !== 'gm.map of a file without MMAP');
  it.each(mine.map((x) => [x.name, x] as const))('%s', async (_name, x) => {
    expectBadInput(await failure(() => x.run(c)), x.want);
    // A bad call leaves what is open working.
    if (!c.m.closed) expect(c.m.read(0, 1).length).toBe(1);
  });

  it('close() and [Symbol.dispose] twice are harmless; closing a Vm closes its children, not the Kvm', () => {
    c.vm.close();
    expect([c.vm.closed, c.gm.closed, c.plain.closed, c.m.closed, c.kvm.closed]).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
    for (const o of [c.m, c.gm, c.plain, c.vm, c.kvm]) {
      o.close();
      o[Symbol.dispose]();
      expect(o.closed).toBe(true);
    }
    expect(c.gm.fd).toBe(-1);
    expect(c.m.length).toBe(TOTAL);
  });

  it('a hold released after its file closed is a no-op', () => {
    const h = c.gm.hold(0, PAGE);
    c.gm.close();
    h.release();
    expect(h.released).toBe(true);
  });
});
