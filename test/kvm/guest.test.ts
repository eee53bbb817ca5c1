// Guest-side memory on the real kernel: the selftest's shared and private cases, and vm.guest
// (the library's helper guest) at every size, alignment and place a slot can be.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CAPS } from '../../lib/constants.js';
import { ClosedError, GuestMemoryFault, HostAccessError, open } from '../../lib/index.js';
import type { GuestMemfd, Kvm, Mapping, Vm } from '../../lib/index.js';
import { describeKvm, onKernelAndProfile } from '../helpers/kvm.js';
import { realModeGuest } from './vcpu-fixture.js';
import { hostProfile } from '../../lib/probe.js';

const MiB = 1 << 20;
const GiB4 = 0x1_0000_0000;

let kvm: Kvm;
let vm: Vm;
beforeEach(() => {
  kvm = open({ backend: 'kvm' });
  vm = kvm.createVm();
});
afterEach(() => kvm.close());

/** A shared (MMAP | INIT_SHARED) guest_memfd bound at gpa, and the host's mapping of it. */
function sharedSlot(slot: number, gpa: number, size: number): { gmem: GuestMemfd; map: Mapping } {
  const gmem = vm.createGuestMemfd({ size, mmap: true, initShared: true });
  const map = gmem.map();
  vm.setMemoryRegion({ slot, guestPhysAddr: gpa, size, guestMemfd: gmem, userspace: map });
  return { gmem, map };
}

describeKvm('guest and host share a guest_memfd (selftest case)', () => {
  it("the guest reads the host's 0xaa and writes 0xff, which the host sees", () => {
    const g = realModeGuest([
      0xa0,
      0x00,
      0x30, //       mov al, [0x3000]
      0xba,
      0x10,
      0x00, //       mov dx, 0x10
      0xee, //                   out dx, al          ; report what the guest read
      0xc6,
      0x06,
      0x00,
      0x30,
      0xff, // mov byte [0x3000], 0xff
      0xf4, //                   hlt
    ]);
    try {
      g.map.fill(0x3000, 1, 0xaa);
      expect(g.vcpu.runSync()).toMatchObject({ reason: 'io', data: Buffer.from([0xaa]) });
      expect(g.vcpu.runSync()).toEqual({ reason: 'hlt' });
      expect(g.map.read(0x3000, 1)[0]).toBe(0xff);
    } finally {
      g.close();
    }
  });

  // PVM reaches the file only through the slot's userspace memory (none here): an MMIO exit.
  // Mainline serves a gmem-only slot's faults from the file (__kvm_mmu_faultin_pfn), and a type-0
  // VM has no private pages: the guest reads the page (zeros). Measured on the rig's 7.3.
  it('a private file (MMAP, no INIT_SHARED): the host gets SIGBUS; the guest an mmio exit on PVM, the file on mainline', () => {
    const g = realModeGuest([0xa0, 0x00, 0x00, 0xf4], { kvm }); // mov al, [0]  (ds = 0x2000 below); hlt
    const priv = g.vm.createGuestMemfd({ size: 0x10000, mmap: true });
    g.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x20000, size: 0x10000, guestMemfd: priv });
    const m = priv.map();
    expect(() => m.read(0, 1)).toThrow(HostAccessError);
    g.vcpu.setSregs({ ds: { base: 0x20000n, selector: 0x2000 } });
    if (hostProfile() === 'linux-6.18-pvm') {
      expect(g.vcpu.runSync()).toMatchObject({ reason: 'mmio', address: 0x20000, isWrite: false, length: 1 });
    } else {
      g.vcpu.setRegs({ rax: 0xffn });
      expect(g.vcpu.runSync()).toEqual({ reason: 'hlt' });
      expect(g.vcpu.getRegs().rax & 0xffn).toBe(0n);
    }
  });
});

describeKvm('vm.guest on the real backend', () => {
  it('reads and writes 1 byte, a page, and unaligned ranges as the host sees them', async () => {
    const { map } = sharedSlot(0, 0, 2 * MiB);
    const data = randomBytes(2 * MiB);
    map.write(0, data);
    for (const [at, len] of [
      [0, 1],
      [4095, 1],
      [4096, 4096],
      [123, 4097],
      [4095, 2],
      [MiB - 7, 70_001],
      [0, 2 * MiB],
    ] as const) {
      expect((await vm.guest.read(at, len)).equals(data.subarray(at, at + len))).toBe(true);
    }
    await vm.guest.write(4093, Buffer.from('unaligned!'));
    expect(map.read(4093, 10).toString()).toBe('unaligned!');
    await vm.guest.write(7, Uint8Array.of(0x42));
    expect(map.read(6, 3)).toEqual(Buffer.from([data[6]!, 0x42, data[8]!]));
    expect((await vm.guest.read(0, 0)).length).toBe(0);
  });

  it('moves 64 MiB both ways in chunks, starting and ending off page boundaries', async () => {
    const size = 66 * MiB;
    const { map } = sharedSlot(0, 0, size);
    const data = randomBytes(64 * MiB);
    await vm.guest.write(MiB + 5, data);
    expect(map.read(MiB + 5, data.length).equals(data)).toBe(true);
    expect(map.read(MiB, 5)).toEqual(Buffer.alloc(5));
    const back = await vm.guest.read(MiB + 5, data.length);
    expect(back.equals(data)).toBe(true);
  }, 300_000); // at CPL0 (e.g. a slot the fast path may not use) the helper moves about 6 MB/s

  it('a range across two adjacent slots (two files) reads and writes as one', async () => {
    const a = sharedSlot(0, 0x100000, 0x10000);
    const b = sharedSlot(1, 0x110000, 0x10000);
    a.map.fill(0, 0x10000, 0x11);
    b.map.fill(0, 0x10000, 0x22);
    const r = await vm.guest.read(0x10fffe, 4);
    expect(r).toEqual(Buffer.from([0x11, 0x11, 0x22, 0x22]));
    await vm.guest.write(0x10ffff, Buffer.from([1, 2]));
    expect(a.map.read(0xffff, 1)[0]).toBe(1);
    expect(b.map.read(0, 1)[0]).toBe(2);
  });

  it('reaches a slot above 4 GiB', async () => {
    const gpa = GiB4 + 40 * MiB;
    const { map } = sharedSlot(3, gpa, 4 * MiB);
    await vm.guest.write(gpa + 3 * MiB - 3, Buffer.from('above 4G'));
    expect(map.read(3 * MiB - 3, 8).toString()).toBe('above 4G');
    map.write(100, Buffer.from('host'));
    expect((await vm.guest.read(gpa + 100, 4)).toString()).toBe('host');
  });

  // PVM: a fault naming the private page, after the shared pages before it; mainline serves the
  // file (the test above). Each kernel is held to its profile's answer, and PVM to the values.
  it("a private page: as this kernel's profile says (on PVM a GuestMemoryFault naming its gpa, after the shared pages)", async () => {
    const scenario = async (k: Kvm) => {
      const v = k.createVm();
      try {
        const g = v.createGuestMemfd({ size: 0x4000, mmap: true, initShared: true });
        const map = g.map();
        v.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: 0x4000, guestMemfd: g, userspace: map });
        const priv = v.createGuestMemfd({ size: 0x4000, mmap: true });
        v.setMemoryRegion({ slot: 1, guestPhysAddr: 0x104000, size: 0x4000, guestMemfd: priv });
        map.fill(0, 0x4000, 0x5a);
        const shape = (e: unknown) => {
          const f = e as GuestMemoryFault;
          return e instanceof GuestMemoryFault
            ? { code: f.code, gpa: f.gpa, size: f.size, private: f.private }
            : String(e);
        };
        const read = await v.guest.read(0x103ff0, 0x20).then((b) => [...b], shape);
        const write = await v.guest.write(0x105123, Buffer.from([1])).then(() => 'ok', shape);
        // The helper is still usable afterwards.
        const after = [...(await v.guest.read(0x100000, 2))];
        return { read, write, after };
      } finally {
        v.close();
      }
    };
    const { got, want } = await onKernelAndProfile(kvm, scenario);
    expect(got).toEqual(want);
    if (hostProfile() === 'linux-6.18-pvm') {
      expect(got).toEqual({
        read: { code: 'KVM_EXIT_MEMORY_FAULT', gpa: 0x104000, size: 4096, private: true },
        write: { code: 'KVM_EXIT_MEMORY_FAULT', gpa: 0x105000, size: 4096, private: true },
        after: [0x5a, 0x5a],
      });
    }
  });

  it('a write to a read-only slot is a GuestMemoryFault (not private); reads work', async () => {
    const gmem = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
    const map = gmem.map();
    map.fill(0, 0x10000, 0x61);
    vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x200000, size: 0x10000, userspace: map, readonly: true });
    expect(await vm.guest.read(0x200010, 2)).toEqual(Buffer.from('aa'));
    await expect(vm.guest.write(0x200010, Buffer.from('b'))).rejects.toMatchObject({
      gpa: 0x200000,
      private: false,
      code: 'KVM_EXIT_MEMORY_FAULT',
    });
    expect(map.read(0x10, 1).toString()).toBe('a');
  });

  it('a gpa no slot covers is a RangeError naming the first uncovered gpa', async () => {
    sharedSlot(0, 0, 0x10000);
    sharedSlot(1, 0x20000, 0x10000);
    await expect(vm.guest.read(0x30000, 1)).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      message: expect.stringContaining('0x30000'),
    });
    await expect(vm.guest.read(0xfff0, 0x20)).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      message: expect.stringContaining('0x10000'),
    });
    await expect(vm.guest.write(0x1fff0, Buffer.alloc(0x20))).rejects.toBeInstanceOf(RangeError);
    await expect(kvm.createVm().guest.read(0, 1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  it('the helper steps aside when the user takes its gpa or its slot id', async () => {
    sharedSlot(0, 0, 0x10000);
    await vm.guest.write(0, Buffer.from('x')); // the helper now exists
    const top = vm.checkExtension(CAPS.NR_MEMSLOTS!) - 1;
    const high = sharedSlot(top, 0xf000_0000, 8 * MiB); // its preferred gpa and slot id
    await vm.guest.write(0xf000_0000 + 5, Buffer.from('mine'));
    expect(high.map.read(5, 4).toString()).toBe('mine');
    expect((await vm.guest.read(0, 1)).toString()).toBe('x');
  });

  it('concurrent calls are serialized and each sees the memory as left by the previous', async () => {
    const { map } = sharedSlot(0, 0, 0x10000);
    const ops = [];
    for (let i = 0; i < 20; i++) ops.push(vm.guest.write(i * 3, Buffer.from([i, i, i])));
    const reads = Array.from({ length: 5 }, () => vm.guest.read(0, 60));
    await Promise.all(ops);
    const expected = Buffer.from(Array.from({ length: 60 }, (_, j) => Math.floor(j / 3)));
    for (const r of await Promise.all(reads)) expect(r.equals(expected)).toBe(true);
    expect(map.read(0, 60).equals(expected)).toBe(true);
  });

  it('orders calls as its simulator profile does (lib/core/guest-access.ts queues both)', async () => {
    const scenario = async (k: Kvm) => {
      const v = k.createVm();
      try {
        const g = v.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
        const map = g.map();
        v.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: g, userspace: map });
        v.setMemoryRegion({ slot: 1, guestPhysAddr: 0x100000, size: 0x10000, userspace: map, readonly: true });
        // The access runs after the code that made the call.
        const w = v.guest.write(0, Buffer.from('guest'));
        map.write(0, Buffer.from('host!'));
        await w;
        const afterCall = map.read(0, 5).toString();
        const first = v.guest.read(0, 1);
        map.write(0, Buffer.of(1));
        const second = v.guest.read(0, 1);
        map.write(0, Buffer.of(2));
        const interleaved = [...(await first), ...(await second)];
        // One at a time in call order, a rejected access too; bad arguments at once.
        const settled: string[] = [];
        const track = (name: string, p: Promise<unknown>) =>
          p.then(
            () => settled.push(name),
            (e: Error) => settled.push(`${name}: ${e.name}`),
          );
        await Promise.all([
          track('write a', v.guest.write(0, Buffer.from('a'))),
          track('read-only write', v.guest.write(0x100000, Buffer.from('x'))),
          track('write b', v.guest.write(0, Buffer.from('b'))),
          track('read', v.guest.read(0, 1)),
          track('bad', v.guest.read(-1, 1)),
        ]);
        const last = map.read(0, 1).toString();
        // Checked again at its turn: a slot deleted (a target detached) while the call waited.
        const turn = (p: Promise<unknown>) =>
          p.then(
            () => 'resolved',
            (e: Error) => `${e.name}: ${e.message}`,
          );
        const ahead = v.guest.read(0, 1);
        const gone = turn(v.guest.read(0x100000, 1));
        v.deleteMemoryRegion(1);
        const ab = new ArrayBuffer(8);
        const moved = turn(v.guest.readInto(0, new Uint8Array(ab)));
        structuredClone(ab, { transfer: [ab] });
        await ahead;
        const atTurn = [await gone, await moved];
        const pending = v.guest.read(0, 1);
        v.close();
        const closed = await pending.then(
          () => 'read',
          (e: Error) => e.name,
        );
        return { afterCall, interleaved, settled, last, atTurn, closed };
      } finally {
        v.close();
      }
    };
    const { got, want } = await onKernelAndProfile(kvm, scenario);
    expect(got).toEqual(want);
    expect(got).toEqual({
      afterCall: 'guest',
      interleaved: [2, 2],
      settled: ['bad: RangeError', 'write a', 'read-only write: GuestMemoryFault', 'write b', 'read'],
      last: 'b',
      atTurn: [
        'RangeError: gpa 0x100000 is not in any memory slot (range 0x100000+1)',
        'RangeError: the buffer given to vm.guest.readInto was detached or resized during the call',
      ],
      closed: 'ClosedError',
    });
  });

  it('bad arguments are refused before any guest runs; a closed VM gives ClosedError', async () => {
    sharedSlot(0, 0, 0x10000);
    const type = { code: 'ERR_INVALID_ARG_TYPE' };
    const range = { code: 'ERR_OUT_OF_RANGE' };
    await expect(vm.guest.read('0' as unknown as number, 1)).rejects.toMatchObject(type);
    await expect(vm.guest.read(0, null as unknown as number)).rejects.toMatchObject(type);
    await expect(vm.guest.read(-1, 1)).rejects.toMatchObject(range);
    await expect(vm.guest.read(0, -1)).rejects.toMatchObject(range);
    await expect(vm.guest.read(0.5, 1)).rejects.toMatchObject(range);
    await expect(vm.guest.read((1n << 64n) - 1n, 2)).rejects.toMatchObject(range);
    await expect(vm.guest.write(0, 'text' as unknown as Uint8Array)).rejects.toMatchObject(type);
    await expect(vm.guest.write(-5, Buffer.alloc(1))).rejects.toMatchObject(range);
    const guest = vm.guest;
    vm.close();
    await expect(guest.read(0, 1)).rejects.toBeInstanceOf(ClosedError);
    await expect(guest.write(0, Buffer.alloc(1))).rejects.toBeInstanceOf(ClosedError);
  });

  it('closing the VM during a large transfer rejects it cleanly', async () => {
    sharedSlot(0, 0, 32 * MiB);
    const p = vm.guest.read(0, 32 * MiB);
    await new Promise((r) => setImmediate(r));
    vm.close();
    await expect(p).rejects.toBeInstanceOf(ClosedError);
  });
});
