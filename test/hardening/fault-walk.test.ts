// Every syscall of every public call, failed in turn: for a call that issues n ioctls (or mmaps,
// or fallocates), the walk fails the 1st, then the 2nd, ... until the call runs clean. Each
// failure must come back as the KvmError api.md names (code, errno, syscall, ioctl), leave no fd
// or guest_memfd mapping behind, and leave the objects usable: the same call then succeeds.
// Runs where the addon has the test-only hooks (npm run test:asan, CI).
import { appendFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { native } from '../../lib/native.js';
import { KvmError, constants, open } from '../../lib/index.js';
import type { GuestMemfd, Kvm, Mapping, Vcpu, Vm } from '../../lib/types.js';
import { kvmAvailable, kvmSkipReason } from '../helpers/kvm.js';
import { openFds } from '../helpers/fds.js';
import { readFileSync } from 'node:fs';

type Kind = 'ioctl' | 'mmap' | 'fallocate' | 'open';
interface Hooks {
  failNext(kind: Kind, errno: number, request?: number, skip?: number): void;
  fired(kind: Kind): number;
  clear(): void;
}
const hooks: Hooks | undefined = native.testHooks;
const reason = !hooks
  ? 'this addon build has no fault hooks (npm run test:asan builds them)'
  : !kvmAvailable
    ? `/dev/kvm unusable: ${kvmSkipReason}`
    : null;
if (reason) console.warn(`[kvm-gmem tests] skipping the fault walk: ${reason}`);

const EIO = 5;
const gmemMaps = () =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('kvm-gmem')).length;
const totalFired = () => (['ioctl', 'mmap', 'fallocate', 'open'] as const).reduce((n, k) => n + hooks!.fired(k), 0);

interface World {
  kvm: Kvm;
  vm: Vm;
  g: GuestMemfd;
  m: Mapping;
  vcpu: Vcpu;
}

/** A VM with a shared file, its mapping in slot 0, and a vCPU: what the calls act on. */
function world(): World {
  const kvm = open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd({ size: 16 * 4096, mmap: true, initShared: true });
  const m = g.map();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * 4096, guestMemfd: g, userspace: m });
  const vcpu = vm.createVcpu(0);
  return { kvm, vm, g, m, vcpu };
}

const e2s = (e: unknown) => (e instanceof KvmError ? `${e.code} ${e.ioctl ?? e.syscall}` : String(e));

/** The sequence with consecutive repeats of one name collapsed (a call retried after E2BIG). */
function withoutRetries(names: string[], retried: string): string[] {
  return names.filter((n, i) => !(n === retried && names[i - 1] === retried));
}

/** createVcpu's ioctls on this host, as the walk observed them (its retries included). */
let createVcpuIoctls: string[] = [];

/** Which syscall each walk step failed, by the name the error gave it. */
const seen = new Map<string, Set<string>>();

/**
 * Fails the k-th syscall of `kind` made by `call`, for k = 0, 1, ... until the call makes no more
 * of them. Returns the names (ioctl name, or the syscall) of the failed steps in order.
 */
async function walk(
  label: string,
  kind: Kind,
  call: (w: World) => unknown,
  mayKeep = { fds: 0, maps: 0 },
): Promise<string[]> {
  const names: string[] = [];
  for (let k = 0; k < 64; k++) {
    const fds0 = openFds();
    const maps0 = gmemMaps();
    const w = world();
    const fdsBefore = openFds();
    const mapsBefore = gmemMaps();
    const fired0 = hooks!.fired(kind);
    hooks!.failNext(kind, EIO, 0, k);
    let err: unknown;
    try {
      await call(w);
    } catch (e) {
      err = e;
    }
    hooks!.clear();
    const fired = hooks!.fired(kind) > fired0;
    if (!fired) {
      // The call made only k syscalls of this kind: it ran clean.
      expect(err, `${label}: failed with nothing injected`).toBeUndefined();
      w.kvm.close();
      expect({ fds: openFds(), maps: gmemMaps() }).toEqual({ fds: fds0, maps: maps0 });
      break;
    }
    const where = `${label}, ${kind} #${k + 1}`;
    expect(err, `${where}: the injected failure was swallowed`).toBeInstanceOf(KvmError);
    const e = err as KvmError;
    expect({ code: e.code, errno: e.errno }, where).toEqual({ code: 'EIO', errno: -EIO });
    expect(e.syscall, where).toBe(kind);
    if (kind === 'ioctl') expect(e.ioctl, where).toMatch(/^KVM_[A-Z0-9_]+$/);
    names.push(e.ioctl ?? e.syscall);
    // No half-made object: nothing the call opened or mapped is left (beyond state it keeps by
    // design once made whole, such as vm.guest's helper: up to `mayKeep`).
    const extra = { fds: openFds() - fdsBefore, maps: gmemMaps() - mapsBefore };
    expect(
      extra.fds >= 0 && extra.fds <= mayKeep.fds && extra.maps >= 0 && extra.maps <= mayKeep.maps,
      `${where}: left ${JSON.stringify(extra)} open`,
    ).toBe(true);
    // The objects are consistent: the same call now works.
    try {
      await call(w);
    } catch (e) {
      throw new Error(`${where} (${e2s(err)}): the call then failed: ${(e as Error).message}`, { cause: e });
    }
    w.kvm.close();
    expect({ fds: openFds(), maps: gmemMaps() }, `${where}: leaked after close`).toEqual({ fds: fds0, maps: maps0 });
  }
  const s = seen.get(label) ?? new Set();
  names.forEach((n) => s.add(n));
  seen.set(label, s);
  return names;
}

describe.skipIf(reason !== null)(
  `fault walk over every syscall of every call${reason ? ` [skipped: ${reason}]` : ''}`,
  () => {
    const firedAtStart = hooks ? totalFired() : 0;
    afterEach(() => hooks!.clear());
    afterAll(() => {
      const n = totalFired() - firedAtStart;
      console.log(`[kvm-gmem] fault walk: ${n} faults injected over ${seen.size} public calls`);
      if (process.env.KVM_GMEM_COUNTS)
        appendFileSync(process.env.KVM_GMEM_COUNTS, JSON.stringify({ faults: n }) + '\n');
    });

    it('opening /dev/kvm: open, then KVM_GET_API_VERSION', async () => {
      expect(await walk('open', 'open', () => open({ backend: 'kvm' }).close())).toEqual(['open']);
      expect(await walk('open', 'ioctl', () => open({ backend: 'kvm' }).close())).toEqual(['KVM_GET_API_VERSION']);
    });

    it('Kvm and Vm queries and creation', async () => {
      expect(await walk('kvm.checkExtension', 'ioctl', (w) => w.kvm.checkExtension('GUEST_MEMFD'))).toEqual([
        'KVM_CHECK_EXTENSION',
      ]);
      expect(await walk('kvm.vmTypes', 'ioctl', (w) => w.kvm.vmTypes())).toEqual(['KVM_CHECK_EXTENSION']);
      expect(await walk('kvm.createVm', 'ioctl', (w) => w.kvm.createVm())).toEqual(['KVM_CREATE_VM']);
      expect(await walk('vm.checkExtension', 'ioctl', (w) => w.vm.checkExtension(1))).toEqual(['KVM_CHECK_EXTENSION']);
      expect(await walk('vm.guestMemfdFlags', 'ioctl', (w) => w.vm.guestMemfdFlags())).toEqual(['KVM_CHECK_EXTENSION']);
      expect(await walk('vm.createGuestMemfd', 'ioctl', (w) => w.vm.createGuestMemfd({ size: 4096 }))).toEqual([
        'KVM_CREATE_GUEST_MEMFD',
      ]);
    });

    it('memory slots: set and delete', async () => {
      const set = (w: World) => w.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 1 << 20, size: 4096, userspace: w.m });
      expect(await walk('vm.setMemoryRegion', 'ioctl', set)).toEqual(['KVM_SET_USER_MEMORY_REGION2']);
      // Without userspace memory the slot first gets an inaccessible reservation of its own.
      const bare = (w: World) => w.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 1 << 20, size: 4096 });
      expect(await walk('vm.setMemoryRegion without userspace', 'mmap', bare)).toEqual(['mmap']);
      expect(await walk('vm.setMemoryRegion without userspace', 'ioctl', bare)).toEqual([
        'KVM_SET_USER_MEMORY_REGION2',
      ]);
      expect(await walk('vm.deleteMemoryRegion', 'ioctl', (w) => w.vm.deleteMemoryRegion(0))).toEqual([
        'KVM_SET_USER_MEMORY_REGION2',
      ]);
    });

    it('vCPU creation: KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VCPU, CPUID; registers', async () => {
      // A new id each time: KVM cannot delete a vCPU, so one whose set-up failed keeps its id (below).
      let id = 1;
      const create = await walk('vm.createVcpu', 'ioctl', (w) => w.vm.createVcpu(id++));
      createVcpuIoctls = create;
      // How many KVM_GET_SUPPORTED_CPUID calls it takes depends on the host CPU: the first buffer
      // may be too small (E2BIG), and each retry is a syscall the walk fails in turn too.
      expect(withoutRetries(create, 'KVM_GET_SUPPORTED_CPUID')).toEqual([
        'KVM_GET_VCPU_MMAP_SIZE',
        'KVM_CREATE_VCPU',
        'KVM_GET_SUPPORTED_CPUID',
        'KVM_SET_CPUID2',
      ]);
      expect(await walk('vcpu.getRegs', 'ioctl', (w) => w.vcpu.getRegs())).toEqual(['KVM_GET_REGS']);
      expect(await walk('vcpu.setRegs', 'ioctl', (w) => w.vcpu.setRegs({ rax: 1n }))).toEqual([
        'KVM_GET_REGS',
        'KVM_SET_REGS',
      ]);
      expect(await walk('vcpu.getSregs', 'ioctl', (w) => w.vcpu.getSregs())).toEqual(['KVM_GET_SREGS']);
      expect(await walk('vcpu.setSregs', 'ioctl', (w) => w.vcpu.setSregs({ cr8: 0n }))).toEqual([
        'KVM_GET_SREGS',
        'KVM_SET_SREGS',
      ]);
    });

    it('a vCPU whose set-up failed after KVM_CREATE_VCPU closes its fd but keeps its id in the kernel (EEXIST)', () => {
      const w = world();
      const fds = openFds();
      // The last ioctl of createVcpu is KVM_SET_CPUID2, however many CPUID queries come before it.
      const last = createVcpuIoctls.length - 1;
      expect(createVcpuIoctls[last]).toBe('KVM_SET_CPUID2');
      hooks!.failNext('ioctl', EIO, 0, last);
      expect(() => w.vm.createVcpu(5)).toThrow(expect.objectContaining({ code: 'EIO', ioctl: 'KVM_SET_CPUID2' }));
      expect(openFds()).toBe(fds);
      expect(() => w.vm.createVcpu(5)).toThrow(expect.objectContaining({ code: 'EEXIST', ioctl: 'KVM_CREATE_VCPU' }));
      expect(w.vm.createVcpu(6).id).toBe(6);
      w.kvm.close();
    });

    it('a host whose first CPUID query is too small (E2BIG) still creates vCPUs: the query is retried', () => {
      const w = world();
      const E2BIG = 7;
      const fired = hooks!.fired('ioctl');
      hooks!.failNext('ioctl', E2BIG, constants.ioctls.KVM_GET_SUPPORTED_CPUID!, 0);
      expect(w.vm.createVcpu(7).id).toBe(7);
      expect(hooks!.fired('ioctl')).toBe(fired + 1);
      expect(withoutRetries(['A', 'CPUID', 'CPUID', 'CPUID', 'B'], 'CPUID')).toEqual(['A', 'CPUID', 'B']);
      w.kvm.close();
    });

    it('mmap and fallocate', async () => {
      expect(await walk('g.map', 'mmap', (w) => w.g.map(0, 4096))).toEqual(['mmap']);
      expect(await walk('g.allocate', 'fallocate', (w) => w.g.allocate(0, 4096))).toEqual(['fallocate']);
      expect(await walk('g.punchHole', 'fallocate', (w) => w.g.punchHole(0, 4096))).toEqual(['fallocate']);
    });

    it('vm.guest: every syscall of setting up and running the guest helper', async () => {
      const rw = async (w: World) => {
        await w.vm.guest.write(0x2000, Buffer.from('hello'));
        expect((await w.vm.guest.read(0x2000, 5)).toString()).toBe('hello');
      };
      // Once made whole, the helper (its file, mapping and vCPU) stays until the VM closes.
      const helper = { fds: 2, maps: 1 };
      const ioctls = await walk('vm.guest', 'ioctl', rw, helper);
      console.log(`[kvm-gmem] vm.guest write+read issue ${ioctls.length} ioctls: ${ioctls.join(' ')}`);
      expect(ioctls).toEqual(
        expect.arrayContaining([
          'KVM_CREATE_GUEST_MEMFD',
          'KVM_SET_USER_MEMORY_REGION2',
          'KVM_CREATE_VCPU',
          'KVM_SET_SREGS',
        ]),
      );
      expect(await walk('vm.guest', 'mmap', rw, helper)).toEqual(['mmap']);
    });
  },
);
