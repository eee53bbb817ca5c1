// A C guest in the style of tools/testing/selftests/kvm: guest code in a string, ucalls back to
// the host, expectations on the JS side. Runs at CPL3, which PVM runs natively.
import { expect, it } from 'vitest';
import { createGuest, open } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

const guestCode = String.raw`
#include <kvm-gmem-guest.h>
static uint8_t buf[4096];
void guest_main(void) {
	for (int i = 0; i < 4096; i++) buf[i] = (uint8_t)(i ^ 0x5a);
	GUEST_SYNC((uint64_t)buf);
	GUEST_ASSERT(buf[7] == (7 ^ 0x5a));
	GUEST_SYNC(0x1234);
	GUEST_ASSERT(buf[0] == 0);
}`;

describeKvm('a C guest', () => {
  it('writes a pattern, syncs twice, then reports the failed assert with file, line and expression', async () => {
    using kvm = open({ backend: 'kvm' });
    using vm = kvm.createVm();
    using guest = await createGuest(vm, { slot: 1, guestPhysAddr: 0x4000_0000, program: { c: guestCode } });
    const first = await guest.run();
    expect(first.kind).toBe('sync');
    const pattern = guest.read((first as { value: bigint }).value, 4096);
    expect(pattern.every((b, i) => b === ((i ^ 0x5a) & 0xff))).toBe(true);
    expect(await guest.run()).toMatchObject({ kind: 'sync', value: 0x1234n });
    const line = guestCode.split('\n').findIndex((l) => l.includes('buf[0] == 0')) + 1;
    expect(await guest.run()).toEqual({ kind: 'assert', file: 'guest.c', line, expr: 'buf[0] == 0' });
  });
});
