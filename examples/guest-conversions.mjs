#!/usr/bin/env node
// guest-conversions: the guest asks for its memory to be made private, writes it, asks for it to
// be shared again and writes it again, as tools/testing/selftests/kvm/x86/private_mem_conversions_test.c
// does; a VMM loop (ConversionLoop) answers each KVM_HC_MAP_GPA_RANGE by converting the range, and
// the host checks what it can see at each step.
//   node examples/guest-conversions.mjs   (a kernel that converts: VM type 1 with
//   KVM_SET_MEMORY_ATTRIBUTES, as in the rig, or guest_memfd in-place conversion; it says why it
//   skips elsewhere)
// gcc under the rig's software emulation takes minutes: compile on the host first, then run the ELF:
//   node examples/guest-conversions.mjs --write-elf /tmp/gc.elf
//   npm run rig -- custom node examples/guest-conversions.mjs --elf /tmp/gc.elf
import { readFileSync, writeFileSync } from 'node:fs';
import { ConversionLoop, HostAccessError, compileGuest, createGuest, formatEvent, open, programArea } from 'kvm-gmem';

const DATA = 0x1000_0000; // the converted range: 16 pages at 256 MiB
const PAGES = 16;
const SIZE = PAGES * 4096;

const guestCode = String.raw`
#include <kvm-gmem-guest.h>
#define DATA ${DATA}ULL
#define SIZE ${SIZE}ULL
static void fill(uint8_t v) { for (uint64_t i = 0; i < SIZE; i++) ((volatile uint8_t *)DATA)[i] = v; }
void guest_main(void)
{
	GUEST_ASSERT(*(volatile uint8_t *)DATA == 0xaa);	/* the host's shared bytes */
	GUEST_ASSERT_EQ(kvm_map_gpa_range(DATA, SIZE, true), 0);
	fill(0x55);
	GUEST_SYNC(1);						/* private: the host must not see 0x55 */
	GUEST_ASSERT_EQ(kvm_map_gpa_range(DATA, SIZE, false), 0);
	fill(0x66);
	GUEST_SYNC(2);						/* shared again: the host sees 0x66 */
	GUEST_DONE();
}
`;

// The builder's default long-mode region (0x40000000, 4 MiB) is where the ELF is linked to run.
const area = programArea('long', 0x4000_0000n, 0x40_0000n);
const flag = (name) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const writeElf = flag('--write-elf');
if (writeElf) {
  writeFileSync(writeElf, await compileGuest(guestCode, { loadAddress: area.load, limit: area.limit }));
  console.log(`wrote ${writeElf}`);
  process.exit(0);
}
const elf = flag('--elf');
const program = elf ? { elf: readFileSync(elf) } : { c: guestCode };

const kvm = open({ backend: 'kvm' });
/** @type {(why: string) => never} */
const skip = (why) => {
  console.log(`skipped: ${why}`);
  kvm.close();
  process.exit(0);
};

// VM attributes need a VM with private memory (type 1, KVM_X86_SW_PROTECTED_VM); the in-place
// series converts the guest_memfd itself (its v8 only on VMs with private memory, too).
const inPlace = kvm.profile === 'attributes2' || kvm.profile === 'gmem-convert';
const type = kvm.vmTypes().includes(1) ? 1 : 0;
if (!inPlace && !(kvm.profile === 'vm-attributes' && type === 1)) {
  skip(
    `no conversion here: kvm.profile is ${kvm.profile} and VM types are [${kvm.vmTypes()}]` +
      (kvm.vmTypes().includes(1) ? '' : ' (no type 1)') +
      '. On the PVM host KVM_SET_MEMORY_ATTRIBUTES is ENOTTY and a MAP_GPA_RANGE hypercall at CPL0 never exits to userspace.',
  );
}
const vm = kvm.createVm({ type });
// A VM with private memory offers no INIT_SHARED file: the builder's memory and, with VM
// attributes, the shared side of the data come from a type-0 VM's file.
const flags = vm.guestMemfdFlags();
const donor = flags.initShared ? vm : kvm.createVm();
const gm = vm.createGuestMemfd({ size: SIZE, mmap: inPlace, initShared: inPlace && flags.initShared });
if (inPlace && !flags.initShared) gm.share(0, SIZE);
const shared = (inPlace ? gm : donor.createGuestMemfd({ size: SIZE, mmap: true, initShared: true })).map();
vm.setMemoryRegion({ slot: 10, guestPhysAddr: DATA, size: SIZE, guestMemfd: gm, userspace: shared });
let loop;
try {
  loop = new ConversionLoop(kvm, vm, {
    regions: [{ guestPhysAddr: DATA, size: SIZE, guestMemfd: gm }],
    onRequest: (r) =>
      console.log(`vmm: ${r.source} asks for 0x${r.gpa.toString(16)}+${r.size} ${r.private ? 'private' : 'shared'}`),
  });
} catch (e) {
  skip(e.message);
}
shared.fill(0, SIZE, 0xaa);

// Hypercalls come from CPL0 (KVM answers -KVM_EPERM at CPL3).
const guest = await createGuest(vm, {
  slot: 1,
  cpl: 0,
  program,
  ...(donor !== vm ? { memoryVm: donor, memory: 'plain' } : {}),
});

const hostSees = () => {
  try {
    return shared.read(0, SIZE);
  } catch (e) {
    if (e instanceof HostAccessError) return null; // in place: a private page is SIGBUS for the host
    throw e;
  }
};
for (;;) {
  const ev = await guest.run({ onExit: (exit) => loop.handle(exit) });
  console.log(`guest: ${formatEvent(ev)}`);
  if (ev.kind === 'done') break;
  if (ev.kind !== 'sync') throw new Error(`guest stopped: ${formatEvent(ev)}`);
  const bytes = hostSees();
  if (ev.value === 1n) {
    if (bytes && bytes.includes(0x55)) throw new Error("the host sees the guest's private writes");
    console.log(
      `host: private memory ${bytes ? 'leaves the shared copy as it was (0xaa)' : 'is not readable (SIGBUS)'}`,
    );
  } else {
    if (!bytes || !bytes.every((b) => b === 0x66)) throw new Error("the host does not see the guest's shared writes");
    console.log("host: sees the guest's shared writes (0x66)");
  }
}
console.log(`conversions: ${loop.log.map((r) => `${r.private ? 'private' : 'shared'} ${r.outcome}`).join(', ')}`);
guest.close();
kvm.close();
console.log('ok');
