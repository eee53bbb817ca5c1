// The kernel's guest_memfd selftests, mirrored whole where the public API reaches: each body of
// tools/testing/selftests/kvm/guest_memfd_test.c (torvalds, newer than 6.18) run for every VM type
// the backend offers (KVM_CAP_VM_TYPES) and every flag set that type's KVM_CAP_GUEST_MEMFD_FLAGS
// offers (0, MMAP, MMAP | INIT_SHARED), as __test_guest_memfd() does; and the conversions test's
// `indexing` over all four offsets (x86/guest_memfd_conversions_test.c of in-place v8, v8-31..39).
// The per-type, per-flag-set bodies are all in the creation group (ids create.selftest-*): a
// profile with more VM types differs there, not in the groups its rules share with the kernel.
// Not mirrored here: test_file_read_write needs the fd (the simulator's is -1; the kvm backend's
// port test/kvm/selftest-guest-memfd.test.ts has it); test_collapse, test_mbind and
// test_numa_allocation need madvise/mbind (no API); forked_accesses needs a forked child sharing
// the mapping (no API); the memory-fault exits of private_mem_kvm_exits_test.c are cases-private.ts.
import { attempt, canonical, toJson, withVm, type Case, type Group, type Json } from './case.js';
import type { GuestMemfd, Kvm, Vm } from '../types.js';
import { PAGE, conversion, conversionVmType } from './features.js';

const TOTAL = 4 * PAGE; // gmem_test()'s size
const MMAP = 1;
const INIT_SHARED = 2;

/** __test_guest_memfd's flag sets for one VM: 0, then MMAP and MMAP | INIT_SHARED where offered. */
function flagSets(vm: Vm): number[] {
  const cap = vm.checkExtension('GUEST_MEMFD_FLAGS');
  const sets = [0];
  if (cap & MMAP) sets.push(MMAP);
  if (cap & MMAP && cap & INIT_SHARED) sets.push(MMAP | INIT_SHARED);
  return sets;
}

/** Keys grouped by their value: { [the value as canonical JSON]: keys } (short, like create.sizes-bad). */
function byOutcome(results: [string, Json][]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of results) (out[canonical(v)] ??= []).push(k);
  return out;
}

/** One body per VM type and flag set ("type T, flags F"), grouped by outcome. */
function everyTypeAndFlags(
  id: string,
  group: Group,
  title: string,
  body: (vm: Vm, flags: number) => Promise<unknown>,
): Case {
  return {
    id,
    group,
    title,
    run: async (kvm: Kvm) => {
      const out: [string, Json][] = [];
      for (const type of kvm.vmTypes()) {
        await withVm(
          kvm,
          async (vm) => {
            for (const flags of flagSets(vm)) out.push([`type ${type}, flags ${flags}`, toJson(await body(vm, flags))]);
          },
          type,
        );
      }
      return byOutcome(out);
    },
  };
}

const file = (vm: Vm, flags: number, size = TOTAL) => vm.createGuestMemfd({ size, flags });

/** test_invalid_punch_hole's (offset, length) pairs, each with an unaligned offset or length (guest_memfd_test.c). */
export const INVALID_PUNCHES: readonly (readonly [number, number])[] = [
  [0, 1],
  [0, PAGE - 1],
  [0, PAGE + 1],
  [1, 1],
  [1, PAGE - 1],
  [1, PAGE],
  [1, PAGE + 1],
  [PAGE, 1],
  [PAGE, PAGE - 1],
  [PAGE, PAGE + 1],
];

export const selftestCases: Case[] = [
  everyTypeAndFlags(
    'create.selftest-multiple',
    'creation and flags',
    'test_create_guest_memfd_multiple: files of 1 and 2 pages, each its own inode',
    async (vm, flags) => {
      const r = await attempt(() => {
        const a = file(vm, flags, PAGE);
        const b = file(vm, flags, 2 * PAGE);
        return { sizes: [a.stat().size, b.stat().size], distinct: a.stat().ino !== b.stat().ino };
      });
      return r;
    },
  ),
  everyTypeAndFlags(
    'create.selftest-invalid-sizes',
    'creation and flags',
    'test_create_guest_memfd_invalid_sizes: every size 1..page-1 fails',
    async (vm, flags) => {
      const codes: Record<string, number> = {};
      for (let size = 1; size < PAGE; size++) {
        const r = await attempt(() => vm.createGuestMemfd({ size, flags }));
        const key = 'error' in (r as object) ? String((r as { error: { code: string } }).error.code) : 'ok';
        codes[key] = (codes[key] ?? 0) + 1;
      }
      return codes;
    },
  ),
  everyTypeAndFlags(
    'create.selftest-file-size',
    'creation and flags',
    'test_file_size: st_size and st_blksize',
    async (vm, flags) =>
      attempt(() => {
        const st = file(vm, flags).stat();
        return { size: st.size, blksize: st.blksize };
      }),
  ),
  everyTypeAndFlags(
    'create.selftest-fallocate',
    'creation and flags',
    'test_fallocate: aligned, unaligned, at and past EOF',
    async (vm, flags) => {
      const g = file(vm, flags);
      return {
        whole: await attempt(() => g.allocate(0, TOTAL)),
        offset: await attempt(() => g.allocate(PAGE - 1, PAGE)),
        length: await attempt(() => g.allocate(0, PAGE - 1)),
        atEof: await attempt(() => g.allocate(TOTAL, PAGE)),
        pastEof: await attempt(() => g.allocate(TOTAL + PAGE, PAGE)),
        punchAtEof: await attempt(() => g.punchHole(TOTAL, PAGE)),
        punchPastEof: await attempt(() => g.punchHole(TOTAL + PAGE, PAGE)),
        punchLength: await attempt(() => g.punchHole(PAGE, PAGE - 1)),
        punch: await attempt(() => g.punchHole(PAGE, PAGE)),
      };
    },
  ),
  everyTypeAndFlags(
    'create.selftest-invalid-punch',
    'creation and flags',
    'test_invalid_punch_hole: the ten unaligned (offset, length) pairs',
    async (vm, flags) => {
      const g = file(vm, flags);
      const out: [string, Json][] = [];
      for (const [o, l] of INVALID_PUNCHES) {
        out.push([`${o},${l}`, await attempt(() => g.punchHole(o, l))]);
      }
      return byOutcome(out);
    },
  ),
  everyTypeAndFlags(
    'create.selftest-mmap',
    'creation and flags',
    'test_mmap_supported / _not_supported / _cow, test_fault_private, test_fault_overflow',
    async (vm, flags) => {
      const g = file(vm, flags);
      const map = await attempt(() => g.map(0, PAGE).unmap());
      const cow = await attempt(() => g.map(0, TOTAL, { private: true }));
      if ('error' in (map as object)) return { map, whole: await attempt(() => g.map()), cow };
      const m = g.map();
      const supported = {
        fill: await attempt(() => m.fill(0, TOTAL, 0xaa)),
        punch: await attempt(() => g.punchHole(0, PAGE)),
        read: await attempt(() => m.read(0, TOTAL)),
        refill: await attempt(() => m.fill(0, PAGE, 0xaa)),
      };
      // test_fault_overflow: a mapping past EOF faults at EOF.
      const over = g.map(0, 4 * TOTAL);
      return {
        map,
        cow,
        supported,
        overflow: await attempt(() => over.read(TOTAL, 1)),
        inFile: await attempt(() => over.read(TOTAL - 1, 1)),
      };
    },
  ),
  {
    id: 'conv.selftest-indexing',
    group: 'conversion',
    title: 'indexing: each of four pages in turn converted private among shared neighbours, then back',
    requires: conversion,
    run: async (kvm) => {
      const out: Record<string, Json> = {};
      for (let test = 0; test < 4; test++) {
        out[`page ${test}`] = toJson(
          await withVm(
            kvm,
            async (vm) => {
              const g: GuestMemfd = vm.createGuestMemfd({ size: TOTAL, mmap: true });
              g.share(0, TOTAL);
              // Written highest index first, as the selftest does; its mapping then goes (v5 counts it).
              const w = g.map();
              for (let i = 3; i >= 0; i--) w.fill(i * PAGE, PAGE, 0x10 + i);
              w.unmap();
              const toPrivate = await attempt(() => g.unshare(test * PAGE, PAGE));
              const m = g.map();
              const whilePrivate = {
                states: g.states(),
                page: await attempt(() => m.read(test * PAGE, 1)),
                all: await attempt(() => [0, 1, 2, 3].filter((i) => i !== test).map((i) => m.read(i * PAGE, 1)[0]!)),
              };
              const toShared = await attempt(() => g.share(test * PAGE, PAGE));
              return {
                toPrivate,
                whilePrivate,
                toShared,
                states: g.states(),
                bytes: await attempt(() => m.read(0, TOTAL)),
              };
            },
            conversionVmType(kvm),
          ),
        );
      }
      return out;
    },
  },
];
