// creation and flags: what KVM_CREATE_GUEST_MEMFD and KVM_CREATE_VM accept, and the capabilities.
import { attempt, canonical, withVm, type Case, type Json } from './case.js';
import { PAGE, hostMappable } from './features.js';

const group = 'creation and flags' as const;
const TIB = 2 ** 40;

/** Caps kernel-uapi.md lists, read from /dev/kvm. */
const CAP_NAMES = [
  'USER_MEMORY2',
  'MEMORY_FAULT_INFO',
  'MEMORY_ATTRIBUTES',
  'GUEST_MEMFD',
  'VM_TYPES',
  'PRE_FAULT_MEMORY',
  'GUEST_MEMFD_FLAGS',
];

/** Observations grouped by their value: { '{"ok":...}': [keys...] } reads better than 62 rows. */
function byOutcome(pairs: [string | number, Json][]): Record<string, (string | number)[]> {
  const out: Record<string, (string | number)[]> = {};
  for (const [k, v] of pairs) (out[canonical(v)] ??= []).push(k);
  return out;
}

export const createCases: Case[] = [
  {
    id: 'create.api-and-caps',
    group,
    title: 'API version and the guest_memfd capabilities of /dev/kvm',
    async run(kvm) {
      const caps: { [k: string]: Json } = {};
      for (const n of CAP_NAMES) caps[n] = await attempt(() => kvm.checkExtension(n));
      return { apiVersion: kvm.apiVersion, caps };
    },
  },
  {
    id: 'create.flags-cap-on-vm',
    group,
    title: 'a type-0 VM reports the guest_memfd flags it accepts',
    run: (kvm) => withVm(kvm, (vm) => ({ cap: vm.checkExtension('GUEST_MEMFD_FLAGS'), flags: vm.guestMemfdFlags() })),
  },
  {
    id: 'create.vm-types',
    group,
    title: 'VM types listed, and KVM_CREATE_VM of each type 0..5',
    async run(kvm) {
      const created: [number, Json][] = [];
      for (let t = 0; t <= 5; t++) {
        created.push([t, await attempt(() => kvm.createVm({ type: t }).close())]);
      }
      return { vmTypes: kvm.vmTypes(), create: byOutcome(created) };
    },
  },
  ...(
    [
      ['create.flags-none', 'a file with no flags is created', {}],
      ['create.flag-mmap', 'GUEST_MEMFD_FLAG_MMAP alone is accepted', { mmap: true }],
      ['create.flag-mmap-init-shared', 'MMAP | INIT_SHARED is accepted', { mmap: true, initShared: true }],
      ['create.flag-init-shared-alone', 'INIT_SHARED without MMAP', { initShared: true }],
    ] as const
  ).map(([id, title, flags]): Case => ({
    id,
    group,
    title,
    run: (kvm) =>
      withVm(kvm, async (vm) =>
        attempt(() => {
          const g = vm.createGuestMemfd({ size: 2 * PAGE, ...flags });
          return { size: g.size, flags: g.flags, rawFlags: g.rawFlags };
        }),
      ),
  })),
  {
    id: 'create.flag-bits-unknown',
    group,
    title: 'every flag bit from 2 to 63 is refused',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const seen: [number, Json][] = [];
        for (let bit = 2; bit < 64; bit++) {
          seen.push([bit, await attempt(() => vm.createGuestMemfd({ size: PAGE, flags: 1n << BigInt(bit) }).close())]);
        }
        return byOutcome(seen);
      }),
  },
  {
    id: 'create.sizes-bad',
    group,
    title: 'size 0 and sizes that are not page multiples are refused',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const seen: [number, Json][] = [];
        for (const size of [0, 1, 100, PAGE - 1, PAGE + 1, 3 * PAGE - 512]) {
          seen.push([size, await attempt(() => vm.createGuestMemfd({ size, mmap: true }).close())]);
        }
        return byOutcome(seen);
      }),
  },
  {
    id: 'create.size-1tib',
    group,
    title: 'a 1 TiB file is created (memory is allocated lazily) and reports its size',
    run: (kvm) =>
      withVm(kvm, async (vm) =>
        attempt(() => {
          const g = vm.createGuestMemfd({ size: TIB, ...hostMappable(vm) });
          const st = g.stat();
          return { size: g.size, statSize: st.size, blocks: st.blocks };
        }),
      ),
  },
  {
    id: 'create.size-negative-as-loff',
    group,
    title: 'sizes of 2^63 and above (negative as loff_t) are refused',
    run: (kvm) =>
      withVm(kvm, async (vm) => ({
        pow63: await attempt(() => vm.createGuestMemfd({ size: 1n << 63n }).close()),
        max: await attempt(() => vm.createGuestMemfd({ size: (1n << 64n) - BigInt(PAGE) }).close()),
      })),
  },
  {
    id: 'create.distinct-files',
    group,
    title: 'two files are distinct inodes with their own size and a page-sized block',
    run: (kvm) =>
      withVm(kvm, (vm) => {
        const a = vm.createGuestMemfd({ size: PAGE });
        const b = vm.createGuestMemfd({ size: 4 * PAGE });
        const sa = a.stat();
        const sb = b.stat();
        return {
          distinct: sa.ino !== sb.ino,
          sizes: [sa.size, sb.size],
          blksize: [sa.blksize, sb.blksize],
          blocks: [sa.blocks, sb.blocks],
        };
      }),
  },
  {
    id: 'create.after-vm-close',
    group,
    title: 'a closed VM refuses new files, and its files are closed with it',
    async run(kvm) {
      const vm = kvm.createVm();
      const g = vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) });
      vm.close();
      return {
        create: await attempt(() => vm.createGuestMemfd({ size: PAGE })),
        fileClosed: g.closed,
        fileUse: await attempt(() => g.map()),
        closeAgain: await attempt(() => vm.close()),
      };
    },
  },
  {
    id: 'create.private-vm-type',
    group,
    title: 'a VM with private memory (type 1, SW_PROTECTED): the flags it offers and which files it accepts',
    requires: (kvm) =>
      kvm.vmTypes().includes(1)
        ? null
        : 'not supported here: VM type 1 (KVM_X86_SW_PROTECTED_VM, KVM_CAP_VM_TYPES bit 1)',
    run: (kvm) =>
      withVm(
        kvm,
        async (vm) => ({
          type: vm.type,
          flags: vm.guestMemfdFlags(),
          mmap: await attempt(() => vm.createGuestMemfd({ size: PAGE, mmap: true }).flags),
          initShared: await attempt(() => vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true }).flags),
          attributes: await attempt(() => vm.setMemoryAttributes(0, PAGE, { private: true })),
        }),
        1,
      ),
  },
];
