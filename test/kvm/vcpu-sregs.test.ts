// KVM_SET_SREGS from the public call and from the native one: every field set reaches the kernel
// (a round trip of each), and a script's getter that closes the vCPU mid-call gives ClosedError.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ClosedError, open, type Kvm, type Sregs, type Vcpu } from '../../lib/index.js';
import type { Vcpu as CoreVcpu } from '../../lib/core/vcpu.js';
import { describeKvm } from '../helpers/kvm.js';

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

describeKvm('vcpu sregs', () => {
  let kvm: Kvm;
  let vcpu: Vcpu;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vcpu = kvm.createVm().createVcpu(0);
  });
  afterEach(() => kvm.close());

  it('every field set comes back from getSregs', () => {
    const want: Sregs = structuredClone(vcpu.getSregs());
    SEGMENTS.forEach((name, i) => {
      Object.assign(want[name], { base: BigInt(0x10000 * (i + 1)), limit: 0xffff + i + 1, selector: 0x10 * (i + 1) });
    });
    for (const name of ['ds', 'es', 'fs', 'gs'] as const)
      Object.assign(want[name], { type: 1, dpl: 1, db: 1, g: 1, avl: 1 });
    Object.assign(want, {
      gdt: { base: 0x5000n, limit: 0x7f },
      idt: { base: 0x6000n, limit: 0xfff },
      cr2: 0x1234000n,
      cr3: 0x9000n,
      cr4: 0x20n,
      cr8: 5n,
      efer: 1n,
      apicBase: 0xfee00800n,
    });
    vcpu.setSregs(want);
    expect(vcpu.getSregs()).toEqual(want);
  });

  it('a partial set changes only what it names, down to one field of one segment', () => {
    const before = vcpu.getSregs();
    vcpu.setSregs({ idt: { limit: 0x123 }, fs: { base: 0x7000n } });
    const after = vcpu.getSregs();
    expect(after.idt).toEqual({ base: before.idt.base, limit: 0x123 });
    expect(after.fs).toEqual({ ...before.fs, base: 0x7000n });
    expect({ ...after, idt: before.idt, fs: before.fs }).toEqual(before);
  });

  it('a getter that closes the vCPU during setSregs gives ClosedError, not EBADF', () => {
    const hostile = {
      get cr8() {
        vcpu.close();
        return 1n;
      },
    };
    expect(() => vcpu.setSregs(hostile)).toThrow(ClosedError);
  });

  it('the native call re-checks after reading its argument: ClosedError', () => {
    const native = (vcpu as CoreVcpu).port;
    const hostile = {
      get cr8() {
        native.close();
        return 1n;
      },
    };
    expect(() => native.setSregs(hostile)).toThrow(ClosedError);
  });

  it('a getter is read once: the value checked is the value set', () => {
    let reads = 0;
    const twoFaced = {
      get cr8() {
        reads++;
        return reads === 1 ? 3n : 2n ** 70n;
      },
    };
    vcpu.setSregs(twoFaced);
    expect(reads).toBe(1);
    expect(vcpu.getSregs().cr8).toBe(3n);
  });
});
