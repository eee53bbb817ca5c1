// Private memory on a VM with it (type 1, KVM_X86_SW_PROTECTED_VM): VM-level attributes
// (KVM_SET_MEMORY_ATTRIBUTES) flip a gpa range between the slot's userspace memory (shared) and
// its guest_memfd (private); an access the slot cannot serve privately is KVM_EXIT_MEMORY_FAULT
// with KVM_MEMORY_EXIT_FLAG_PRIVATE, as tools/testing/selftests/kvm/x86/private_mem_kvm_exits_test.c
// checks. Runs where type 1 exists (tools/rig's custom kernel); not supported elsewhere.
import { attempt, withVm, type Case } from './case.js';
import type { Kvm, Mapping, Vm } from '../types.js';
import { PAGE, hostMappable } from './features.js';

const group = 'conversion' as const;
const GPA = 0x4000_0000;

/** VM type 1 with the PRIVATE attribute, or why not. */
export async function privateVm(kvm: Kvm): Promise<string | null> {
  const missing = 'not supported here: VM type 1 with KVM_SET_MEMORY_ATTRIBUTES PRIVATE (KVM_X86_SW_PROTECTED_VM)';
  if (!kvm.vmTypes().includes(1)) return missing;
  const vm = kvm.createVm({ type: 1 });
  try {
    return (vm.checkExtension('MEMORY_ATTRIBUTES') & 8) !== 0 ? null : missing;
  } finally {
    vm.close();
  }
}

/**
 * Shared memory for a type-1 VM's slots: a type-0 VM's MMAP|INIT_SHARED guest_memfd, mapped, is
 * ordinary host memory to the kernel (a type-1 VM's own files cannot be INIT_SHARED).
 */
function sharedMemory(kvm: Kvm, pages: number, fill: number): { m: Mapping; donor: Vm } {
  const donor = kvm.createVm();
  const m = donor.createGuestMemfd({ size: pages * PAGE, ...hostMappable(donor) }).map();
  m.fill(0, pages * PAGE, fill);
  return { m, donor };
}

async function private1(kvm: Kvm, body: (vm: Vm, m: Mapping) => Promise<unknown>): Promise<unknown> {
  const { m, donor } = sharedMemory(kvm, 4, 0x5a);
  try {
    return await withVm(kvm, (vm) => body(vm, m), 1);
  } finally {
    donor.close();
  }
}

const read = (vm: Vm, gpa: number, n: number) => attempt(() => vm.guest.read(gpa, n));

export const privateCases: Case[] = [
  {
    id: 'conv.vm-attributes-round-trip',
    group,
    title:
      'type 1: setMemoryAttributes to private and back; the guest faults (PRIVATE) while private, and sees the userspace memory again after',
    requires: privateVm,
    timeoutMs: 30_000,
    run: (kvm) =>
      private1(kvm, async (vm, m) => {
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
        const shared = await read(vm, GPA + PAGE, 4);
        const toPrivate = await attempt(() => vm.setMemoryAttributes(GPA + PAGE, PAGE, { private: true }));
        const whilePrivate = await read(vm, GPA + PAGE, 4);
        const neighbour = await read(vm, GPA, 4);
        const toShared = await attempt(() => vm.setMemoryAttributes(GPA + PAGE, PAGE, { private: false }));
        return {
          cap: vm.checkExtension('MEMORY_ATTRIBUTES'),
          shared,
          toPrivate,
          whilePrivate,
          neighbour,
          toShared,
          sharedAgain: await read(vm, GPA + PAGE, 4),
          unaligned: await attempt(() => vm.setMemoryAttributes(GPA + 100, PAGE, { private: true })),
          empty: await attempt(() => vm.setMemoryAttributes(GPA, 0, { private: true })),
        };
      }),
  },
  {
    id: 'conv.vm-private-no-gmem-slot-faults',
    group,
    title:
      'type 1: a private gpa in a slot without guest_memfd is a memory fault with the PRIVATE flag, reads and writes (memslot_not_private)',
    requires: privateVm,
    timeoutMs: 30_000,
    run: (kvm) =>
      private1(kvm, async (vm, m) => {
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m });
        const toPrivate = await attempt(() => vm.setMemoryAttributes(GPA + 2 * PAGE, 2 * PAGE, { private: true }));
        return {
          toPrivate,
          read: await read(vm, GPA + 2 * PAGE + 8, 4),
          write: await attempt(() => vm.guest.write(GPA + 3 * PAGE, Buffer.alloc(1))),
          spanning: await read(vm, GPA + 2 * PAGE - 4, 8),
          host: await attempt(() => m.read(2 * PAGE, 4)),
        };
      }),
  },
  {
    id: 'conv.vm-private-gmem-slot',
    group,
    title:
      'type 1: a slot with guest_memfd serves a private gpa from the file and a shared one from userspace memory; each keeps its bytes across conversions',
    requires: privateVm,
    timeoutMs: 30_000,
    run: (kvm) =>
      private1(kvm, async (vm, m) => {
        const gmem = vm.createGuestMemfd({ size: 4 * PAGE });
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: 4 * PAGE, userspace: m, guestMemfd: gmem });
        const shared = await read(vm, GPA + PAGE, 4);
        const toPrivate = await attempt(() => vm.setMemoryAttributes(GPA + PAGE, PAGE, { private: true }));
        const fresh = await read(vm, GPA + PAGE, 4);
        const write = await attempt(() => vm.guest.write(GPA + PAGE, Buffer.alloc(4, 0x77)));
        const privateNow = await read(vm, GPA + PAGE, 4);
        const host = await attempt(() => m.read(PAGE, 4));
        await attempt(() => vm.setMemoryAttributes(GPA + PAGE, PAGE, { private: false }));
        const sharedAgain = await read(vm, GPA + PAGE, 4);
        await attempt(() => vm.setMemoryAttributes(GPA + PAGE, PAGE, { private: true }));
        return {
          shared,
          toPrivate,
          fresh,
          write,
          privateNow,
          host,
          sharedAgain,
          privateAgain: await read(vm, GPA + PAGE, 4),
        };
      }),
  },
];

/** What the kernel must answer in the cases above (private_mem_kvm_exits_test.c, kvm_vm_ioctl_set_mem_attributes). */
export function privateExpectations(): Record<string, unknown> {
  const fault = (gpa: number) => ({
    error: { class: 'GuestMemoryFault', code: 'KVM_EXIT_MEMORY_FAULT', gpa, size: PAGE, private: true },
  });
  const einval = {
    error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_SET_MEMORY_ATTRIBUTES' },
  };
  return {
    'conv.vm-attributes-round-trip': {
      cap: 8,
      shared: { ok: '5a*4' },
      toPrivate: { ok: null },
      whilePrivate: fault(GPA + PAGE),
      neighbour: { ok: '5a*4' },
      toShared: { ok: null },
      sharedAgain: { ok: '5a*4' },
      unaligned: einval,
      empty: einval,
    },
    // kvm_mem_is_private picks the file or the userspace memory per gpa (__kvm_mmu_faultin_pfn);
    // KVM_SET_MEMORY_ATTRIBUTES changes no page of either, so each keeps what was written to it.
    'conv.vm-private-gmem-slot': {
      shared: { ok: '5a*4' },
      toPrivate: { ok: null },
      fresh: { ok: '00*4' },
      write: { ok: null },
      privateNow: { ok: '77*4' },
      host: { ok: '5a*4' },
      sharedAgain: { ok: '5a*4' },
      privateAgain: { ok: '77*4' },
    },
    'conv.vm-private-no-gmem-slot-faults': {
      toPrivate: { ok: null },
      read: fault(GPA + 2 * PAGE),
      write: fault(GPA + 3 * PAGE),
      spanning: fault(GPA + 2 * PAGE),
      host: { ok: '5a*4' },
    },
  };
}
