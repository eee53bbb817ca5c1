// Guest-driven conversions on a VM with private memory (type 1, KVM_X86_SW_PROTECTED_VM): a guest
// built by lib/toolkit's builder (machine code assembled here, no C compiler: compiling under the
// rig's TCG takes minutes) asks for conversions with KVM_HC_MAP_GPA_RANGE, which KVM hands to
// userspace as KVM_EXIT_HYPERCALL once KVM_CAP_EXIT_HYPERCALL names it (x86.c
// ____kvm_emulate_hypercall); lib/toolkit's ConversionLoop answers each with
// KVM_SET_MEMORY_ATTRIBUTES, as private_mem_conversions_test.c's handle_exit_hypercall does. The
// guest's reads after each step show which side (guest_memfd or userspace memory) now backs the
// gpa, and the host's mapping shows what it can see. Run by tools/rig/type1.mjs on the rig's custom
// kernel; not supported elsewhere (this PVM host has no type 1, and its hypercalls never exit).
import { readFileSync } from 'node:fs';
import { attempt, toJson, withVm, type Case, type Json } from './case.js';
import { ConversionLoop } from '../toolkit/conversions.js';
import { createGuest, type Guest } from '../toolkit/builder.js';
import type { Kvm, Mapping, Vm, VcpuExit } from '../types.js';
import { PAGE, hostMappable } from './features.js';
import { privateVm } from './cases-private.js';

const group = 'conversion' as const;
/** Two pages with a guest_memfd behind them (slot 10), shared side filled with 0x5a. */
const DATA = 0x1000_0000;
/** One page without guest_memfd (slot 11), filled with 0x3c. */
const PLAIN = 0x1100_0000;
/** The guest reports each step with `out 0x80, al` (al = the step). */
const STEP_PORT = 0x80;
const HC_MAP_GPA_RANGE = 12;
const ENCRYPTED = 0x10; // KVM_MAP_GPA_RANGE_ENCRYPTED
const u64 = (n: number) => BigInt.asUintN(64, BigInt(n));

/** The few x86-64 instructions the guests need (checked against GNU as). */
const asm = {
  /** mov r32, imm32 (zero-extends): eax 0, ecx 1, edx 2, ebx 3. */
  movImm: (reg: number, imm: number) => le32([0xb8 + reg], imm),
  /** vmmcall on AMD, vmcall on Intel: KVM takes the other one only through its emulator. */
  hypercall: (amd: boolean) => [0x0f, 0x01, amd ? 0xd9 : 0xc1],
  /** mov r12, rax */
  saveRax: () => [0x49, 0x89, 0xc4],
  /** mov r13 (or r14), [disp32] */
  load: (reg: 13 | 14, at: number) => le32([0x4c, 0x8b, reg === 13 ? 0x2c : 0x34, 0x25], at),
  /** mov dword [disp32], imm32 */
  store32: (at: number, imm: number) => [...le32([0xc7, 0x04, 0x25], at), ...le32([], imm)],
  /** mov al, step; out 0x80, al */
  step: (n: number) => [0xb0, n, 0xe6, STEP_PORT],
  hlt: () => [0xf4],
};
function le32(prefix: number[], v: number): number[] {
  return [...prefix, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
/** KVM_HC_MAP_GPA_RANGE(gpa, pages, attributes); rax (the result) saved in r12. */
const mapGpaRange = (amd: boolean, gpa: number, pages: number, attributes: number) => [
  ...asm.movImm(0, HC_MAP_GPA_RANGE),
  ...asm.movImm(3, gpa),
  ...asm.movImm(1, pages),
  ...asm.movImm(2, attributes),
  ...asm.hypercall(amd),
  ...asm.saveRax(),
];

/** The hypercall instruction KVM intercepts natively: AMD's vmmcall, else Intel's vmcall. */
function amdHost(): boolean {
  try {
    return /^vendor_id\s*:\s*AuthenticAMD/m.test(readFileSync('/proc/cpuinfo', 'latin1'));
  } catch {
    return false;
  }
}

/** Type 1 with the PRIVATE attribute, KVM_CAP_EXIT_HYPERCALL offering MAP_GPA_RANGE and vCPUs, or why not. */
async function guestConversions(kvm: Kvm): Promise<string | null> {
  const why = await privateVm(kvm);
  if (why) return why;
  const vm = kvm.createVm({ type: 1 });
  try {
    if ((BigInt(vm.checkExtension('EXIT_HYPERCALL')) & (1n << BigInt(HC_MAP_GPA_RANGE))) === 0n)
      return 'not supported here: KVM_CAP_EXIT_HYPERCALL with KVM_HC_MAP_GPA_RANGE on VM type 1';
    return null;
  } finally {
    vm.close();
  }
}

interface Setup {
  vm: Vm;
  guest: Guest;
  /** The host's view of DATA's shared side, and of PLAIN. */
  data: Mapping;
  plain: Mapping;
}

/**
 * A type-1 VM with DATA (guest_memfd + userspace memory) and PLAIN (userspace only) and a CPL0
 * guest running `code` from the builder's slot 1. A type-0 VM's MMAP|INIT_SHARED files are the
 * userspace memory, as in cases-private.ts.
 */
async function withGuest(kvm: Kvm, code: number[], body: (s: Setup) => Promise<unknown>): Promise<unknown> {
  const donor = kvm.createVm();
  try {
    return await withVm(
      kvm,
      async (vm) => {
        const data = donor.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(donor) }).map();
        data.fill(0, 2 * PAGE, 0x5a);
        const plain = donor.createGuestMemfd({ size: PAGE, ...hostMappable(donor) }).map();
        plain.fill(0, PAGE, 0x3c);
        const gmem = vm.createGuestMemfd({ size: 2 * PAGE });
        vm.setMemoryRegion({ slot: 10, guestPhysAddr: DATA, size: 2 * PAGE, userspace: data, guestMemfd: gmem });
        vm.setMemoryRegion({ slot: 11, guestPhysAddr: PLAIN, size: PAGE, userspace: plain });
        // Hypercalls at CPL3 get -KVM_EPERM without an exit: the guest runs at CPL0.
        const guest = await createGuest(vm, {
          slot: 1,
          cpl: 0,
          memory: 'plain',
          memoryVm: donor,
          program: { code: Buffer.from([...code, ...asm.hlt()]) },
        });
        return body({ vm, guest, data, plain });
      },
      1,
    );
  } finally {
    donor.close();
  }
}

/** The decoded hypercall exit's fields the kernel sets (args[3..5] are not written by KVM). */
function hypercallSeen(exit: VcpuExit): Json {
  if (exit.reason !== 'hypercall') return toJson({ reason: exit.reason });
  return toJson({
    nr: exit.nr,
    args: exit.args.slice(0, 3),
    longMode: exit.longMode,
    mapGpaRange: exit.mapGpaRange,
  });
}

/**
 * Runs the guest to its next step report through the loop; the step and the registers named
 * (the guest's results: r12 the hypercall's, r13/r14 its reads), or the exit that stopped it. A
 * memory fault seen more than 3 times in a row stops the run (a loop answering it by a conversion
 * that changes nothing would spin).
 */
async function toStep(
  guest: Guest,
  onExit: (exit: VcpuExit) => Promise<boolean>,
  regs: ('r12' | 'r13' | 'r14')[] = [],
): Promise<Json> {
  let faults = 0;
  const ev = await guest.run({
    onExit: async (exit) => {
      if (exit.reason === 'memory_fault' && ++faults > 3) return false;
      return onExit(exit);
    },
  });
  if (ev.kind !== 'exit') return toJson({ event: ev.kind });
  const exit = ev.exit;
  if (exit.reason === 'io' && exit.port === STEP_PORT) {
    const r = guest.vcpu.getRegs();
    return toJson({ step: exit.data[0], ...Object.fromEntries(regs.map((k) => [k, r[k]])) });
  }
  return toJson({ exit, ...(faults > 1 ? { faultsInARow: faults } : {}) });
}

export const privateGuestCases: Case[] = [
  {
    id: 'conv.guest-map-gpa-range',
    group,
    title:
      'type 1: a CPL0 guest asks for private, shared, a refused and a misaligned range with KVM_HC_MAP_GPA_RANGE; ConversionLoop answers the exits with VM attributes',
    requires: guestConversions,
    timeoutMs: 60_000,
    run: (kvm) => {
      const amd = amdHost();
      const code = [
        // 1: DATA's two pages private; read the first (now the guest_memfd's), write it, read it again.
        ...mapGpaRange(amd, DATA, 2, ENCRYPTED),
        ...asm.load(13, DATA),
        ...asm.store32(DATA, 0x77777777),
        ...asm.load(14, DATA),
        ...asm.step(1),
        // 2: shared again: the userspace bytes are back; the guest's write lands there.
        ...mapGpaRange(amd, DATA, 2, 0),
        ...asm.load(13, DATA),
        ...asm.store32(DATA, 0x66666666),
        ...asm.step(2),
        // 3: the host refuses (onRequest gives false): -EPERM, the page stays shared.
        ...mapGpaRange(amd, DATA + PAGE, 1, ENCRYPTED),
        ...asm.load(13, DATA + PAGE),
        ...asm.step(3),
        // 4: a misaligned gpa: KVM answers -KVM_EINVAL itself, with no exit.
        ...mapGpaRange(amd, DATA + 8, 1, ENCRYPTED),
        ...asm.step(4),
      ];
      return withGuest(kvm, code, async ({ vm, guest, data }) => {
        const exits: Json[] = [];
        // The mechanism is the loop's own choice: what the kernel has.
        const loop = new ConversionLoop(kvm, vm, {
          onRequest: (r) => {
            exits.push(hypercallSeen(r.exit));
            return r.gpa !== DATA + PAGE;
          },
        });
        const onExit = (exit: VcpuExit) => loop.handle(exit);
        const steps: Record<string, Json> = {};
        const regs = [['r12', 'r13', 'r14'], ['r12', 'r13'], ['r12', 'r13'], ['r12']] as const;
        for (const [i, names] of regs.entries()) {
          steps[`step${i + 1}`] = await toStep(guest, onExit, [...names]);
          steps[`host${i + 1}`] = await attempt(() => data.read(0, 2 * PAGE));
        }
        return {
          mechanism: loop.mechanism,
          ...steps,
          exits,
          log: loop.log.map((r) =>
            toJson({ source: r.source, gpa: r.gpa, size: r.size, private: r.private, outcome: r.outcome, ret: r.ret }),
          ),
          end: await toStep(guest, onExit),
        };
      });
    },
  },
  {
    id: 'conv.guest-memory-fault',
    group,
    title:
      'type 1: the guest reads a gpa it made private in a slot without guest_memfd: KVM_EXIT_MEMORY_FAULT (PRIVATE), which ConversionLoop hands back; made shared by the host, the read retries and sees the userspace bytes',
    requires: guestConversions,
    timeoutMs: 60_000,
    run: (kvm) => {
      const amd = amdHost();
      const code = [...mapGpaRange(amd, PLAIN, 1, ENCRYPTED), ...asm.load(13, PLAIN), ...asm.step(1)];
      return withGuest(kvm, code, async ({ vm, guest, plain }) => {
        const loop = new ConversionLoop(kvm, vm, { mechanism: 'vm-attributes' });
        const onExit = (exit: VcpuExit) => loop.handle(exit);
        const fault = await toStep(guest, onExit);
        const rip = guest.vcpu.getRegs().rip - BigInt(guest.entry);
        const toShared = await attempt(() => vm.setMemoryAttributes(PLAIN, PAGE, { private: false }));
        return {
          fault,
          /** Where the guest stopped: the load, six instructions (26 bytes) in; it runs again from there. */
          rip,
          toShared,
          step1: await toStep(guest, onExit, ['r12', 'r13']),
          host: await attempt(() => plain.read(0, 8)),
          log: loop.log.map((r) => toJson({ source: r.source, gpa: r.gpa, private: r.private, outcome: r.outcome })),
        };
      });
    },
  },
];

/** What the kernel must answer (x86.c ____kvm_emulate_hypercall and complete_hypercall_exit, mmu.c). */
export function privateGuestExpectations(): Record<string, unknown> {
  const hc = (gpa: number, pages: number, attributes: number) => ({
    nr: HC_MAP_GPA_RANGE,
    args: [gpa, pages, attributes],
    longMode: true, // CS.L at CPL0: KVM_EXIT_HYPERCALL_LONG_MODE
    mapGpaRange: {
      gpa,
      pages,
      size: pages * PAGE,
      private: attributes === ENCRYPTED,
      pageSize: PAGE,
      attributes,
    },
  });
  const rec = (gpa: number, pages: number, priv: boolean, outcome: string, ret: bigint) => ({
    source: 'hypercall',
    gpa,
    size: pages * PAGE,
    private: priv,
    outcome,
    ret: toJson(ret),
  });
  const five = 0x5a5a5a5a5a5a5a5an;
  return {
    'conv.guest-map-gpa-range': {
      mechanism: 'vm-attributes',
      // Private: the gpa is served from the guest_memfd (fresh: zeros); the host's bytes stay.
      step1: { step: 1, r12: 0, r13: 0, r14: 0x77777777 },
      host1: { ok: '5a*8192' },
      // Shared: the userspace bytes again, and the guest's write is the host's to see.
      step2: { step: 2, r12: 0, r13: toJson(five) },
      host2: { ok: '66*4 5a*8188' },
      // The hook's false is -EPERM (1) for the guest; nothing converted.
      step3: { step: 3, r12: toJson(u64(-1)), r13: toJson(five) },
      host3: { ok: '66*4 5a*8188' },
      // !PAGE_ALIGNED(gpa): -KVM_EINVAL (22) without an exit.
      step4: { step: 4, r12: toJson(u64(-22)) },
      host4: { ok: '66*4 5a*8188' },
      exits: [hc(DATA, 2, ENCRYPTED), hc(DATA, 2, 0), hc(DATA + PAGE, 1, ENCRYPTED)],
      log: [
        rec(DATA, 2, true, 'converted', 0n),
        rec(DATA, 2, false, 'converted', 0n),
        rec(DATA + PAGE, 1, true, 'refused', u64(-1)),
      ],
      end: { exit: { reason: 'hlt' } },
    },
    // On type 1 the fault's PRIVATE flag is the gpa's attribute (mmu.c kvm_mmu_page_fault sets
    // PFERR_PRIVATE_ACCESS from kvm_mem_is_private); the slot has no guest_memfd
    // (kvm_mmu_faultin_pfn_gmem): converting to private changes nothing, so the loop hands it back.
    'conv.guest-memory-fault': {
      fault: { exit: { reason: 'memory_fault', gpa: PLAIN, size: PAGE, private: true, flags: 8 } },
      rip: 26,
      toShared: { ok: null },
      step1: { step: 1, r12: 0, r13: toJson(0x3c3c3c3c3c3c3c3cn) },
      host: { ok: '3c*8' },
      log: [{ source: 'hypercall', gpa: PLAIN, private: true, outcome: 'converted' }],
    },
  };
}
