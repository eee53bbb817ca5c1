// hold()'s arguments follow one rule on every backend and profile, before any support check: a
// range inside the file covering at least one byte (hold(0, 0) was accepted by the series
// profiles and refused by the others).
import { describe, expect, it } from 'vitest';
import { open, type Kvm } from '../../lib/index.js';
import { kvmAvailable } from '../helpers/kvm.js';
import { hostMappable } from '../../lib/conformance/features.js';

const PAGE = 4096;
const targets: [string, () => Kvm][] = [
  ...(['rfc-v5', 'inplace-v8', 'linux-6.18'] as const).map((p): [string, () => Kvm] => [
    `sim ${p}`,
    () => open({ backend: 'sim', profile: p }),
  ]),
  ...(kvmAvailable ? [['kvm', () => open({ backend: 'kvm' })] as [string, () => Kvm]] : []),
];

describe.each(targets)('%s: hold() arguments', (_name, make) => {
  it.each([
    [0, 0],
    [PAGE, 0],
    [2 * PAGE, 0],
  ])('hold(%d, %d) is a RangeError', (offset, length) => {
    using kvm = make();
    const vm = kvm.createVm();
    const g = vm.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(vm) });
    expect(() => g.hold(offset, length)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
    );
  });
});
