#!/usr/bin/env node
// c-guest: guest code in C, as the kernel selftests write it. The system's C compiler builds it
// (freestanding, static, linked where the builder loads it), the builder puts it into a VM at CPL3
// with its page tables, GDT, IDT and TSS, and the guest talks back through GUEST_SYNC/GUEST_ASSERT/
// GUEST_DONE (guest/kvm-gmem-guest.h).
//   node examples/c-guest.mjs          (needs /dev/kvm and a C compiler)
import { GuestCompileError, UnsupportedError, createGuest, formatEvent, open } from 'kvm-gmem';

const guestCode = String.raw`
#include <kvm-gmem-guest.h>

#define PAGES 16
static uint8_t buf[PAGES * 4096];

void guest_main(void)
{
	for (uint64_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	GUEST_SYNC((uint64_t)buf);		/* the host checks the pattern */
	GUEST_ASSERT(buf[4096] == (uint8_t)(4096 * 31 + 7));
	GUEST_SYNC(sizeof(buf));
	GUEST_DONE();
}
`;

const kvm = open({ backend: 'kvm' });
const vm = kvm.createVm();
let guest;
try {
  // The guest's memory: slot 1 at 1 GiB, a guest_memfd the host maps (the host's own slots stay free).
  guest = await createGuest(vm, { slot: 1, guestPhysAddr: 0x4000_0000, cpl: 3, program: { c: guestCode } });
} catch (e) {
  if (e instanceof UnsupportedError || e instanceof GuestCompileError) {
    console.log(`cannot build the guest here: ${e.message}`);
    kvm.close();
    process.exit(e instanceof UnsupportedError ? 0 : 1);
  }
  throw e;
}
console.log(
  `guest at gpa 0x${guest.region.gpa.toString(16)} (slot ${guest.region.slot}), entry 0x${guest.entry.toString(16)}, CPL${guest.cpl}`,
);

let bufAt;
for (;;) {
  const ev = await guest.run();
  console.log(`guest: ${formatEvent(ev)}`);
  if (ev.kind === 'sync' && bufAt === undefined) {
    bufAt = ev.value;
    const bytes = guest.read(bufAt, 16 * 4096);
    const bad = bytes.findIndex((b, i) => b !== ((i * 31 + 7) & 0xff));
    if (bad >= 0) throw new Error(`pattern wrong at byte ${bad}: ${bytes[bad]}`);
    console.log(
      `host: ${bytes.length} bytes at gpa 0x${bufAt.toString(16)} hold the pattern (${bytes.subarray(0, 8).toString('hex')}...)`,
    );
  } else if (ev.kind === 'sync') {
    if (ev.value !== 16n * 4096n) throw new Error(`unexpected sync ${ev.value}`);
  } else if (ev.kind === 'done') {
    break;
  } else {
    throw new Error(`guest stopped: ${formatEvent(ev)}`);
  }
}
guest.close();
kvm.close();
console.log('ok');
