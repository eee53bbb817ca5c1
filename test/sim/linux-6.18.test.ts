// The mainline profiles 'linux-6.18' and 'linux-7.3' answer as Debian's 6.18.15 and 7.3.4 with
// kvm_amd did in tools/rig, and part from 'linux-6.18-pvm' (this project's PVM host) where
// docs/profiles.md says why.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Kvm, Profile, Vm } from '../../lib/index.js';
import { guestPhysLimit } from '../../lib/phys-bits.js';
import { profileFor } from '../../lib/probe.js';
import { HOST_DEPENDENT_CAPS, PROFILES } from '../../lib/sim/profiles.js';
import { PAGE, expectKvmError, rejected, sim } from './helpers.js';

const GPA = 0x4000_0000;
const MAINLINE = ['linux-6.18', 'linux-7.3'] as const;

let kvm: Kvm;
let vm: Vm;
afterEach(() => kvm?.close());

function openVm(p: Profile): void {
  kvm = sim(p);
  vm = kvm.createVm();
}

describe.each(MAINLINE)('%s: caps a stock kvm_amd host reports', (p) => {
  beforeEach(() => openVm(p));

  it('MEMORY_ATTRIBUTES is PRIVATE (8) on /dev/kvm and 0 on a type-0 VM; PRE_FAULT_MEMORY follows TDP', () => {
    expect(kvm.checkExtension('MEMORY_ATTRIBUTES')).toBe(8);
    expect(vm.checkExtension('MEMORY_ATTRIBUTES')).toBe(0);
    expect(kvm.checkExtension('PRE_FAULT_MEMORY')).toBe(1);
    expect(kvm.checkExtension('GUEST_MEMFD_FLAGS')).toBe(3);
    expect(kvm.vmTypes()).toEqual([0]);
  });

  it('X2APIC_API (129): 6.18 answers 3 on both fds, 7.3 answers 15 and 11 on a VM', () => {
    expect([kvm.checkExtension(129), vm.checkExtension(129)]).toEqual(p === 'linux-6.18' ? [3, 3] : [15, 11]);
  });

  it('KVM_SET_MEMORY_ATTRIBUTES exists: shared is accepted, PRIVATE is EINVAL (not supported on type 0)', () => {
    vm.setMemoryAttributes(GPA, PAGE, { private: false });
    expectKvmError(
      () => vm.setMemoryAttributes(GPA, PAGE, { private: true }),
      'EINVAL',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
    expectKvmError(
      () => vm.setMemoryAttributes(GPA, 0, { private: false }),
      'EINVAL',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
    expectKvmError(
      () => vm.setMemoryAttributes(GPA + 1, PAGE, { private: false }),
      'EINVAL',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
  });
});

describe.each(MAINLINE)('%s: gmem-only slots (KVM_MEMSLOT_GMEM_ONLY)', (p) => {
  beforeEach(() => openVm(p));

  it('a slot on a MMAP|INIT_SHARED file without userspace memory: the guest reads and writes the file', async () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const m = g.map();
    m.fill(0, 4 * PAGE, 0xaa);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, guestMemfd: g });
    expect((await vm.guest.read(GPA + PAGE, 4)).toString('hex')).toBe('aaaaaaaa');
    await vm.guest.write(GPA + 2 * PAGE, Buffer.alloc(8, 0xff));
    expect(m.read(2 * PAGE, 9).toString('hex')).toBe('ffffffffffffffffaa');
  });

  it('the guest reaches a MMAP-only (host-private) file too, though the host SIGBUSes there', async () => {
    const g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g });
    await vm.guest.write(GPA + PAGE, Buffer.from('hi'));
    expect((await vm.guest.read(GPA + PAGE, 3)).toString('latin1')).toBe('hi\0');
    expect(() => g.map().read(PAGE, 1)).toThrow(expect.objectContaining({ code: 'SIGBUS' }));
  });

  it('the file wins over a userspace mapping of other memory, and a slot offset shifts the view', async () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const other = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    g.map().fill(2 * PAGE, PAGE, 0x21);
    other.map().fill(0, 4 * PAGE, 0x3c);
    vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: GPA,
      size: 2 * PAGE,
      guestMemfd: g,
      guestMemfdOffset: 2 * PAGE,
      userspace: other.map(),
    });
    expect((await vm.guest.read(GPA, 2)).toString('hex')).toBe('2121');
  });

  it('once the file is closed (released), the guest faults there, not private', async () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    const other = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, guestMemfd: g, userspace: other.map() });
    g.close();
    const e = await rejected(vm.guest.read(GPA + PAGE, 4));
    expect([e.name, e.gpa, e.private]).toEqual(['GuestMemoryFault', GPA + PAGE, false]);
  });

  it('a file without MMAP is not gmem-only: the guest uses the userspace memory, and KVM_RUN fails without it', async () => {
    const g = vm.createGuestMemfd({ size: 2 * PAGE });
    const backing = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true });
    backing.map().fill(0, 2 * PAGE, 0x5a);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g, userspace: backing.map() });
    expect((await vm.guest.read(GPA, 2)).toString('hex')).toBe('5a5a');
    vm.setMemoryRegion({
      slot: 1,
      guestPhysAddr: 2 * GPA,
      size: 2 * PAGE,
      guestMemfd: vm.createGuestMemfd({ size: 2 * PAGE }),
    });
    expect((await rejected(vm.guest.read(2 * GPA, 1))).code).toBe('EFAULT');
  });

  it('an access the userspace memory cannot serve fails KVM_RUN with EFAULT (no memory-fault exit)', async () => {
    vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: GPA,
      size: 2 * PAGE,
      guestMemfd: vm.createGuestMemfd({ size: 2 * PAGE }),
    });
    const e = await rejected(vm.guest.read(GPA + PAGE, 4));
    expect([e.name, e.code, e.syscall, e.ioctl]).toEqual(['KvmError', 'EFAULT', 'ioctl', 'KVM_RUN']);
    const priv = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true });
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 2 * GPA, size: 2 * PAGE, userspace: priv.map() });
    expect((await rejected(vm.guest.read(2 * GPA, 1))).code).toBe('EFAULT');
  });

  it('SMM gives a second address space: slot ids 0x10000.. are valid and overlap only their own space', () => {
    const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 2 * PAGE, userspace: g.map() });
    vm.setMemoryRegion({ slot: 0x10000, guestPhysAddr: GPA, size: 2 * PAGE, userspace: g.map() });
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 0x10001, guestPhysAddr: GPA, size: PAGE, userspace: g.map() }),
      'EEXIST',
      'ioctl',
      'KVM_SET_USER_MEMORY_REGION2',
    );
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 0x20000, guestPhysAddr: 4 * GPA, size: PAGE, userspace: g.map() }),
      'EINVAL',
      'ioctl',
      'KVM_SET_USER_MEMORY_REGION2',
    );
  });

  it('a gpa only an address-space-1 slot covers is no memory to the guest (MMIO exit, not private)', async () => {
    vm.setMemoryRegion({ slot: 0x10000, guestPhysAddr: GPA, size: 2 * PAGE });
    const e = await rejected(vm.guest.write(GPA + PAGE + 7, Buffer.alloc(3)));
    expect([e.name, e.gpa, e.private]).toEqual(['GuestMemoryFault', GPA + PAGE, false]);
  });

  it('a slot must end within the host MAXPHYADDR (kvm_mmu_max_gfn with TDP)', () => {
    const g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true });
    const limit = guestPhysLimit();
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 0, guestPhysAddr: limit - BigInt(PAGE), size: 2 * PAGE, userspace: g.map() }),
      'EINVAL',
      'ioctl',
      'KVM_SET_USER_MEMORY_REGION2',
    );
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: limit - 2n * BigInt(PAGE), size: 2 * PAGE, userspace: g.map() });
  });
});

describe('6.18 and 7.3 part where the binding code changed', () => {
  it('the same file range bound twice: EINVAL on 6.18 (kvm_gmem_bind), EEXIST on 7.3 (kvm_gmem_commit_memory_region)', () => {
    for (const [p, code] of [
      ['linux-6.18', 'EINVAL'],
      ['linux-7.3', 'EEXIST'],
      ['linux-6.18-pvm', 'EINVAL'],
    ] as const) {
      openVm(p);
      const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true, initShared: true });
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 2 * PAGE, guestMemfd: g });
      expectKvmError(
        () =>
          vm.setMemoryRegion({ slot: 1, guestPhysAddr: 2 * GPA, size: PAGE, guestMemfd: g, guestMemfdOffset: PAGE }),
        code,
        'ioctl',
        'KVM_SET_USER_MEMORY_REGION2',
      );
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: 2 * GPA, size: PAGE, guestMemfd: g, guestMemfdOffset: 2 * PAGE });
      kvm.close();
    }
  });

  it('an offset whose sum with the size reaches 2^63 passes on 6.18 (loff_t wraps), not on 7.3 (uoff_t)', () => {
    const top = 1n << 63n;
    for (const [p, passes] of [
      ['linux-6.18', true],
      ['linux-7.3', false],
    ] as const) {
      openVm(p);
      const g = vm.createGuestMemfd({ size: PAGE });
      const set = () =>
        vm.setMemoryRegion({
          slot: 0,
          guestPhysAddr: GPA,
          size: PAGE,
          guestMemfd: g,
          guestMemfdOffset: top - BigInt(PAGE),
        });
      if (passes) set();
      else expectKvmError(set, 'EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2');
      kvm.close();
    }
  });
});

describe('the PVM profile stays what this host measured', () => {
  it('linux-6.18-pvm: no attributes ioctl, no pre-fault, and a gmem slot without userspace memory faults', async () => {
    openVm('linux-6.18-pvm');
    expect([kvm.checkExtension('MEMORY_ATTRIBUTES'), kvm.checkExtension('PRE_FAULT_MEMORY')]).toEqual([0, 0]);
    expectKvmError(
      () => vm.setMemoryAttributes(GPA, PAGE, { private: false }),
      'ENOTTY',
      'ioctl',
      'KVM_SET_MEMORY_ATTRIBUTES',
    );
    const g = vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: PAGE, guestMemfd: g });
    expect((await rejected(vm.guest.read(GPA, 1))).name).toBe('GuestMemoryFault');
    expectKvmError(
      () => vm.setMemoryRegion({ slot: 0x10000, guestPhysAddr: 2 * GPA, size: PAGE, userspace: g.map() }),
      'EINVAL',
      'ioctl',
      'KVM_SET_USER_MEMORY_REGION2',
    );
  });

  it('host-dependent caps are named: vCPU count, nesting, paging mode, vendor quirks', () => {
    expect([...HOST_DEPENDENT_CAPS].sort((a, b) => a - b)).toEqual([9, 143, 157, 185, 213, 236]);
    for (const c of HOST_DEPENDENT_CAPS) {
      expect(PROFILES['linux-6.18'].caps.get(c) ?? 0, `cap ${c}`).not.toBe(PROFILES['linux-6.18-pvm'].caps.get(c) ?? 0);
    }
  });
});

describe('probe picks the profile verified on a kernel like this one', () => {
  it('PVM by /sys/module/kvm_pvm, mainline by version, null where nothing was verified', () => {
    expect(profileFor({ pvm: true, release: '6.18.44-fc-v669' })).toBe('linux-6.18-pvm');
    expect(profileFor({ pvm: false, release: '6.18.15+deb13-amd64' })).toBe('linux-6.18');
    expect(profileFor({ pvm: false, release: '7.3.4+deb13-amd64' })).toBe('linux-7.3');
    expect(profileFor({ pvm: false, release: '6.12.117+deb12-amd64' })).toBeNull();
    expect(profileFor({ pvm: true, release: '7.3.4' })).toBeNull();
    expect(profileFor({ pvm: false, release: 'garbage' })).toBeNull();
  });
});
