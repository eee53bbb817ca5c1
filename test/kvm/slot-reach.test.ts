// A memory slot must never give the guest host memory the library did not hand it: the native
// layer refuses a slot longer than its mapping from its own record of the mapping, whatever the
// JS object claims, and a slot without userspace memory points at an inaccessible reservation,
// not at address 0 (where node's own binary is mapped).
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { GuestMemoryFault, open, type GuestMemfd, type Kvm, type Mapping, type Vm } from '../../lib/index.js';
import type { Vm as CoreVm } from '../../lib/core/vm.js';
import type { Mapping as CoreMapping } from '../../lib/core/mapping.js';
import type { NativeMapping } from '../../lib/kvm/addon.js';
import type { KvmVmPort } from '../../lib/kvm/vm.js';
import { describeKvm } from '../helpers/kvm.js';

const PAGE = 4096;
const BIG = 1 << 28;
const GPA = 0x1000_0000;

/** The lowest address of node's executable in this process (0x400000 for a non-PIE node). */
function nodeBase(): bigint {
  const line = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .find((l) => l.endsWith(process.execPath));
  return BigInt('0x' + line!.split('-')[0]);
}

describeKvm('a slot reaches only memory the library mapped for it', () => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  let m: Mapping;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
    g = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    m = g.map();
  });
  afterEach(() => kvm.close());

  it('a shadowed mapping.length does not let a slot past the mapping', () => {
    Object.defineProperty(m, 'length', { value: BIG });
    expect(m.length).toBe(BIG);
    expect(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: BIG, userspace: m })).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }),
    );
    expect((vm as CoreVm).slots.size).toBe(0);
  });

  it('a Proxy claiming a longer mapping is refused', () => {
    const liar = new Proxy(m, { get: (t, k) => (k === 'length' ? BIG : Reflect.get(t, k, t)) });
    expect(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: BIG, userspace: liar })).toThrow(RangeError);
  });

  it('the native call itself refuses a slot longer than the rest of its mapping', () => {
    const native = ((vm as CoreVm).port as KvmVmPort).native;
    const nm = (m as CoreMapping).port as NativeMapping;
    expect(() => native.setUserMemoryRegion2({ slot: 1, guestPhysAddr: GPA, size: BIG, userspace: nm })).toThrow(
      RangeError,
    );
    // One page past the mapping's last page, and the mapping's whole page from an offset.
    expect(() => native.setUserMemoryRegion2({ slot: 1, guestPhysAddr: GPA, size: 2 * PAGE, userspace: nm })).toThrow(
      RangeError,
    );
    expect(() =>
      native.setUserMemoryRegion2({ slot: 1, guestPhysAddr: GPA, size: PAGE, userspace: nm, userspaceOffset: PAGE }),
    ).toThrow(RangeError);
    // Exactly the mapping works.
    native.setUserMemoryRegion2({ slot: 1, guestPhysAddr: GPA, size: PAGE, userspace: nm });
  });

  it('a slot without userspace memory does not show the guest what the process maps at low addresses', async () => {
    const base = nodeBase();
    expect(base < BigInt(BIG)).toBe(true); // else this host's node is PIE and the check says nothing
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: BIG });
    const err = await vm.guest.read(BigInt(GPA) + base, 16).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestMemoryFault);
  });

  it('such a slot keeps one address: set again unchanged is a no-op, a move keeps it, delete frees it', () => {
    // The kernel refuses a changed userspace address (EINVAL), so the second and third calls pass
    // only if the slot got the same reservation; VmSize shows the 4 GiB of it going at delete.
    const vmSize = () => Number(/VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const size = 4 * 2 ** 30;
    const before = vmSize();
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size });
    expect(vmSize() - before).toBeGreaterThanOrEqual(size);
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size, logDirtyPages: true });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 2 ** 40, size });
    expect(vmSize() - before).toBeLessThan(size + 2 ** 28);
    vm.deleteMemoryRegion(1);
    expect(vmSize() - before).toBeLessThan(2 ** 28);
  });
});
