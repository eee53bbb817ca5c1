// The addon's plain checkExtension function (native/kvm.cc CheckExtensionFunction), the hot path
// of kvm.checkExtension: the same answers and errors as the method, a ClosedError once its object
// is closed (even when the function outlives the object), and no crash on bad arguments.
import { expect, it } from 'vitest';
import { native } from '../../lib/native.js';
import { describeKvm } from '../helpers/kvm.js';
import { thrown } from '../helpers/thrown.js';

describeKvm('the plain checkExtension function', () => {
  it('answers as the method does, for every cap number the kernel knows and some it does not', () => {
    const k = new native.NativeKvm('/dev/kvm');
    const vm = k.createVm(0);
    try {
      const fn = k.checkExtensionFunction();
      const vmFn = vm.checkExtensionFunction();
      for (const cap of [0, 1, 7, 233, 238, 244, 300, 4000, 2 ** 32 - 1]) {
        expect(fn(cap)).toBe(k.checkExtension(cap));
        expect(vmFn(cap)).toBe(vm.checkExtension(cap));
      }
    } finally {
      k.close();
    }
  });

  it('refuses bad caps with the method’s typed errors', () => {
    const k = new native.NativeKvm('/dev/kvm');
    try {
      const fn = k.checkExtensionFunction() as (cap: unknown) => number;
      for (const bad of [-1, 1.5, 2 ** 32, NaN, Infinity, '244', null, undefined, {}, 2n ** 40n]) {
        const got = thrown(() => fn(bad));
        const want = thrown(() => (k.checkExtension as (cap: unknown) => number)(bad));
        expect(got, String(bad)).toEqual(want);
        expect(got).toBeInstanceOf(Error);
      }
    } finally {
      k.close();
    }
  });

  it('gives ClosedError after its object closed, also when the function is all that is left', () => {
    const k = new native.NativeKvm('/dev/kvm');
    const fn = k.checkExtensionFunction();
    expect(fn(244)).toBeGreaterThanOrEqual(0);
    k.close();
    const e = thrown(() => fn(244)) as Error & { code?: string };
    expect(e.constructor.name).toBe('ClosedError');
    expect(thrown(() => k.checkExtensionFunction()).constructor.name).toBe('ClosedError');
  });

  it("a VM's function gives ClosedError once the VM closes with its Kvm", () => {
    const k = new native.NativeKvm('/dev/kvm');
    const fn = k.createVm(0).checkExtensionFunction();
    expect(fn(244)).toBeGreaterThanOrEqual(0);
    k.close();
    expect(thrown(() => fn(244)).constructor.name).toBe('ClosedError');
  });
});
