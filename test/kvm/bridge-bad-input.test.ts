// Bad input for every public call of the real backend: the shared table (test/fixtures/bad-input.ts)
// and the rows where this kernel answers differently from a simulated profile.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open, probe } from '../../lib/index.js';
import { cases, expectBadInput, failure, kernel, makeCtx, TOTAL, type Case, type Ctx } from '../fixtures/bad-input.js';
import { describeKvm } from '../helpers/kvm.js';
import { thrown } from '../helpers/thrown.js';

const rows: Case[] = [
  ...cases,
  // Type 1 (SW_PROTECTED) is not on this host (the inplace-v8 profile offers it).
  {
    name: 'kvm.createVm with an unsupported type (1)',
    run: (c) => c.kvm.createVm({ type: 1 }),
    want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_VM'),
  },
];

describeKvm('bad input to the real backend', () => {
  let c: Ctx;
  beforeEach(() => {
    c = makeCtx(open({ backend: 'kvm' }));
  });
  afterEach(() => c.kvm.close());

  it.each(rows.map((x) => [x.name, x] as const))('%s', async (_name, x) => {
    expectBadInput(await failure(() => x.run(c)), x.want);
    // The objects left open still work: no bad call broke them.
    if (!c.m.closed) expect(c.m.read(0, 1).length).toBe(1);
  });

  it('close() and [Symbol.dispose] twice are harmless on every object', () => {
    for (const o of [c.m, c.gm, c.plain, c.vm, c.kvm]) {
      o.close();
      o.close();
      o[Symbol.dispose]();
      expect(o.closed).toBe(true);
    }
    c.m.unmap();
    expect(c.gm.fd).toBe(-1);
  });

  it('closing a Vm marks every child closed, and the Kvm stays usable', () => {
    c.vm.close();
    expect([c.vm.closed, c.gm.closed, c.plain.closed, c.m.closed]).toEqual([true, true, true, true]);
    expect(c.kvm.closed).toBe(false);
    expect(c.kvm.createVm().checkExtension('GUEST_MEMFD')).toBe(1);
  });

  it('a mapping outlives nothing: closing its file closes it, the file can be remapped only while open', () => {
    c.gm.close();
    expect(c.m.closed).toBe(true);
    expect(c.m.length).toBe(TOTAL);
    expect(thrown(() => c.gm.map()).code).toBe('ERR_KVM_CLOSED');
  });

  it('probe() never throws, whatever its path argument', () => {
    for (const p of ['/nonexistent', '', '/dev/null', '/proc/self/fd', 42, null, {}, Symbol('p')]) {
      const r = probe(p as string);
      expect(r.kvm.available).toBe(false);
      expect(typeof r.kvm.error?.code).toBe('string');
      JSON.stringify(r);
    }
  });
});
