// Memory slots through KVM_SET_USER_MEMORY_REGION2: guest_memfd slots, plain userspace slots over a
// mapping, and the address range a slot points at staying reserved while the slot exists.
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open, type GuestMemfd, type Kvm, type Vm } from '../../lib/index.js';
import type { Vm as CoreVm } from '../../lib/core/vm.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE, expectKvmError, thrown } from '../fixtures/kvm-cases.js';

const REGION2 = 'KVM_SET_USER_MEMORY_REGION2';
const GPA = 0x100000;

function mapsLines(): Set<string> {
  return new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean));
}
/** New guest_memfd mappings (other new lines are the allocator's: ASan's maps more as it goes). */
function newLines(before: Set<string>): string[] {
  return [...mapsLines()].filter((l) => !before.has(l) && l.includes('kvm-gmem'));
}
/** The [start, end) of a /proc/self/maps line. */
function rangeOf(line: string): string {
  return line.split(' ')[0]!;
}
function linesAt(range: string): string[] {
  return [...mapsLines()].filter((l) => rangeOf(l) === range);
}

describeKvm('memory slots', () => {
  let kvm: Kvm;
  let vm: Vm;
  let g: GuestMemfd;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
    g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
  });
  afterEach(() => kvm.close());

  it('a guest_memfd slot is set, recorded, and deleted', () => {
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g, guestMemfdOffset: 2 * PAGE });
    const s = (vm as CoreVm).slots.get(1);
    expect(s?.size).toBe(BigInt(2 * PAGE));
    expect(s?.guestMemfdOffset).toBe(BigInt(2 * PAGE));
    vm.deleteMemoryRegion(1);
    expect((vm as CoreVm).slots.has(1)).toBe(false);
    // Deleted for real: the same range can be set again under another slot.
    vm.setMemoryRegion({ slot: 2, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g });
  });

  it('a plain userspace slot over a mapping of a MMAP|INIT_SHARED guest_memfd is set and deleted', () => {
    using m = g.map();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
    vm.setMemoryRegion({ slot: 3, guestPhysAddr: GPA + 0x100000, size: PAGE, userspace: m, userspaceOffset: 3 * PAGE });
    vm.deleteMemoryRegion(0);
    vm.deleteMemoryRegion(3);
    expect((vm as CoreVm).slots.size).toBe(0);
  });

  it('a guest_memfd slot may also carry a userspace mapping (the shared half)', () => {
    using m = g.map();
    vm.setMemoryRegion({ slot: 4, guestPhysAddr: GPA, size: 4 * PAGE, guestMemfd: g, userspace: m });
    vm.deleteMemoryRegion(4);
  });

  it('overlapping an existing slot gives EEXIST', () => {
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g });
    expectKvmError(
      () =>
        vm.setMemoryRegion({
          slot: 2,
          guestPhysAddr: GPA + PAGE,
          size: 2 * PAGE,
          guestMemfd: g,
          guestMemfdOffset: 2 * PAGE,
        }),
      'EEXIST',
      'ioctl',
      REGION2,
    );
  });

  it('an unaligned address, size or offset gives EINVAL', () => {
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA + 1, size: PAGE, guestMemfd: g }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: PAGE + 1, guestMemfd: g }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: PAGE, guestMemfd: g, guestMemfdOffset: 1 }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
    using m = g.map();
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: PAGE, userspace: m, userspaceOffset: 1 }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
    expect((vm as CoreVm).slots.size).toBe(0);
  });

  it('deleting a slot that was never set gives EINVAL', () => {
    expectKvmError(() => vm.deleteMemoryRegion(9), 'EINVAL', 'ioctl', REGION2);
  });

  it('readonly with a guest_memfd gives EINVAL', () => {
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: PAGE, guestMemfd: g, readonly: true }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
  });

  it('a guest_memfd slot reaching past the end of the file gives EINVAL', () => {
    expectKvmError(
      () =>
        vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g, guestMemfdOffset: 3 * PAGE }),
      'EINVAL',
      'ioctl',
      REGION2,
    );
  });

  it('unmapping a mapping that backs a slot leaves its range reserved (PROT_NONE) until the slot is deleted', () => {
    const before = mapsLines();
    const m = g.map();
    const added = newLines(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/ rw-s .*kvm-gmem/);
    const range = rangeOf(added[0]!);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
    m.unmap();
    expect(m.closed).toBe(true);
    expect(thrown(() => m.read(0, 1)).code).toBe('ERR_KVM_CLOSED');
    const held = linesAt(range);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatch(/ ---p /);
    expect(held[0]).not.toContain('kvm-gmem');
    vm.deleteMemoryRegion(0);
    expect(linesAt(range)).toEqual([]);
  });

  it('with two slots over one mapping the range stays reserved until the last is deleted', () => {
    const before = mapsLines();
    const m = g.map();
    const range = rangeOf(newLines(before)[0]!);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: PAGE, userspace: m });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 2 * GPA, size: PAGE, userspace: m, userspaceOffset: PAGE });
    m.unmap();
    vm.deleteMemoryRegion(0);
    expect(linesAt(range)).toHaveLength(1);
    vm.deleteMemoryRegion(1);
    expect(linesAt(range)).toEqual([]);
  });

  it('closing the Vm releases a reserved range too', () => {
    const before = mapsLines();
    const m = g.map();
    const range = rangeOf(newLines(before)[0]!);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
    m.unmap();
    expect(linesAt(range)).toHaveLength(1);
    vm.close();
    expect(linesAt(range)).toEqual([]);
  });

  it('re-pointing a slot at size 0 (deletion through setMemoryRegion) releases the reservation', () => {
    const before = mapsLines();
    const m = g.map();
    const range = rangeOf(newLines(before)[0]!);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
    m.unmap();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 0 });
    expect(linesAt(range)).toEqual([]);
    expect((vm as CoreVm).slots.has(0)).toBe(false);
  });
});
