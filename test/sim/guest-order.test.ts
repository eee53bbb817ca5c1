// vm.guest's order on the simulator, as on the real backend (lib/core/guest-access.ts queues both):
// a call checks its arguments at once, then its access waits for the earlier ones and for the code
// that made the call, so host writes that follow a call synchronously land before it runs.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError } from '../../lib/index.js';
import type { Kvm, Mapping, Profile, Vm } from '../../lib/index.js';
import { PROFILE_NAMES } from '../../lib/sim/profiles.js';
import { PAGE, rejected, sim } from './helpers.js';

describe.each(PROFILE_NAMES)('vm.guest call order (%s)', (profile: Profile) => {
  let kvm: Kvm;
  let vm: Vm;
  let m: Mapping;
  beforeEach(() => {
    kvm = sim(profile);
    vm = kvm.createVm();
    // A file the host maps and whose pages start shared (rfc-v5: INIT_MAPPABLE, reported as mmap).
    m = vm.createGuestMemfd({ size: 4 * PAGE, ...vm.guestMemfdFlags() }).map();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 4 * PAGE, userspace: m });
  });
  afterEach(() => kvm.close());

  it('an access runs after the code that made the call: a host write right after it lands first', async () => {
    const w = vm.guest.write(0, Buffer.from('guest'));
    m.write(0, Buffer.from('host!'));
    await w;
    expect(m.read(0, 5).toString()).toBe('guest');
  });

  it('reads queued between host writes all see the memory as the synchronous code left it', async () => {
    const first = vm.guest.read(0, 1);
    m.write(0, Buffer.of(1));
    const second = vm.guest.read(0, 1);
    m.write(0, Buffer.of(2));
    expect([...(await first), ...(await second)]).toEqual([2, 2]);
  });

  it('accesses take effect in call order, each after the previous settled (a rejected one too)', async () => {
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>) =>
      p.then(
        () => settled.push(name),
        (e: Error) => settled.push(`${name}: ${e.name}`),
      );
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x100000, size: PAGE, userspace: m, readonly: true });
    const all = [
      track('write a', vm.guest.write(0, Buffer.from('a'))),
      track('read-only write', vm.guest.write(0x100000, Buffer.from('x'))),
      track('write b', vm.guest.write(0, Buffer.from('b'))),
      track('read', vm.guest.read(0, 1)),
    ];
    // Bad arguments are refused at once, queued behind nothing.
    const bad = track('bad', vm.guest.read(-1, 1));
    await Promise.all([...all, bad]);
    expect(settled).toEqual(['bad: RangeError', 'write a', 'read-only write: GuestMemoryFault', 'write b', 'read']);
    expect(m.read(0, 1).toString()).toBe('b');
  });

  it('a call made before the VM closes, whose access had not run yet, rejects with ClosedError', async () => {
    const r = vm.guest.read(0, 1);
    vm.close();
    expect(await rejected(r)).toBeInstanceOf(ClosedError);
  });

  it("a slot deleted before a call's turn: the coverage RangeError at its turn", async () => {
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x100000, size: PAGE, userspace: m });
    const first = vm.guest.read(0, 1);
    const r = vm.guest.read(0x100000, 1);
    vm.deleteMemoryRegion(1);
    await first;
    const e = await rejected(r);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/gpa 0x100000 is not in any memory slot/);
  });

  it("a target detached before the call's turn: the detached RangeError, nothing read", async () => {
    const ab = new ArrayBuffer(8);
    const r = vm.guest.readInto(0, new Uint8Array(ab));
    structuredClone(ab, { transfer: [ab] });
    const e = await rejected(r);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/detached or resized/);
  });
});

describe('vm.guest failures nobody awaits', () => {
  it('are unhandled rejections (the queue does not swallow them)', () => {
    const script = `
      import { open } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      const kvm = open({ backend: 'sim', profile: 'linux-6.18' });
      const vm = kvm.createVm();
      const m = vm.createGuestMemfd({ size: 4096, mmap: true, initShared: true }).map();
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 4096, userspace: m, readonly: true });
      process.on('unhandledRejection', (e) => { console.log('unhandled ' + e.name); process.exit(0); });
      vm.guest.write(0, Buffer.from('x'));
      setTimeout(() => { console.log('none'); process.exit(0); }, 500);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toBe('unhandled GuestMemoryFault');
  });
});
