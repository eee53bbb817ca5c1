// The demo behind `npm start`: a guest on real KVM writing into guest_memfd memory the host then
// reads, a private page's SIGBUS caught, then the RFC v5 states in the simulator, step by step.
import { HostAccessError } from './errors.js';
import { open } from './open.js';
import type { Extent, GuestMemfd, Kvm } from './types.js';

const PAGE = 4096;
const MESSAGE = 'Hello from the guest!';

// Real-mode guest at 0x1000: copy the message (stored right after the code, at 0x1020) to
// 0x2000, report through port 0x10, halt.
function guestProgram(): Buffer {
  const code = Buffer.alloc(0x20 + MESSAGE.length);
  Buffer.from([
    0xbe,
    0x20,
    0x10, //  mov si, 0x1020
    0xbf,
    0x00,
    0x20, //  mov di, 0x2000
    0xb9,
    MESSAGE.length,
    0x00, //  mov cx, len
    0xfc, //              cld
    0xf3,
    0xa4, //        rep movsb
    0xb0,
    0x01, //        mov al, 1
    0xe6,
    0x10, //        out 0x10, al
    0xf4, //              hlt
  ]).copy(code);
  code.write(MESSAGE, 0x20, 'latin1');
  return code;
}

const BAR: Record<Extent['state'], string> = { shared: '█', private: '░', pending: '▒' };

/** The extent map as a one-line bar: a character per page, by state. */
export function bar(gm: GuestMemfd): string {
  return gm
    .states()
    .map((e) => BAR[e.state].repeat(Math.max(1, Math.round(e.length / PAGE))))
    .join('');
}

function describeExtents(gm: GuestMemfd): string {
  return gm
    .states()
    .map((e) => `${e.state} ${e.offset / PAGE}..${(e.offset + e.length) / PAGE - 1}`)
    .join(', ');
}

async function realKernelPart(kvm: Kvm): Promise<void> {
  console.log('\n1. A guest writes into guest_memfd memory; the host reads it through its own mmap');
  const vm = kvm.createVm();
  try {
    const gm = vm.createGuestMemfd({ size: 1 << 20, mmap: true, initShared: true });
    const map = gm.map();
    map.write(0x1000, guestProgram());
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 1 << 20, guestMemfd: gm, userspace: map });
    const cpu = vm.createVcpu(0);
    const sregs = cpu.getSregs();
    cpu.setSregs({
      cs: { ...sregs.cs, base: 0n, selector: 0 },
      ds: { ...sregs.ds, base: 0n, selector: 0 },
      es: { ...sregs.es, base: 0n, selector: 0 },
    });
    cpu.setRegs({ rip: 0x1000n, rflags: 2n });
    const first = await cpu.run();
    console.log(
      `   vCPU exit: ${first.reason}${first.reason === 'io' ? ` (port 0x${first.port.toString(16)}, ${first.direction})` : ''}`,
    );
    const second = await cpu.run();
    console.log(`   vCPU exit: ${second.reason}`);
    console.log(
      `   host reads gpa 0x2000 through its mapping: "${map.read(0x2000, MESSAGE.length).toString('latin1')}"`,
    );

    console.log('\n2. A private guest_memfd (MMAP without INIT_SHARED): the host touches it');
    const priv = vm.createGuestMemfd({ size: 64 * 1024, mmap: true });
    const pmap = priv.map();
    try {
      pmap.read(0x1234, 16);
      console.log('   unexpected: the read succeeded');
    } catch (e) {
      if (!(e instanceof HostAccessError)) throw e;
      console.log(
        `   caught ${e.name} (${e.code}) at guest_memfd offset 0x${e.offset.toString(16)}; Node is still running`,
      );
    }
  } finally {
    vm.close();
  }
}

function simulatorPart(): void {
  console.log('\n3. The RFC v5 states in the simulator (█ shared, ░ private, ▒ pending), 32 pages');
  const sim = open({ backend: 'sim', profile: 'rfc-v5' });
  try {
    const vm = sim.createVm({ type: 1 });
    const gm = vm.createGuestMemfd({ size: 32 * PAGE, flags: 1 });
    const step = (what: string) => console.log(`   ${bar(gm)}  ${what}`);
    step('created with INIT_MAPPABLE (v5 files start host-mappable either way)');
    const map = gm.map();
    map.fill(12 * PAGE, 2 * PAGE, 0x5a);
    const r = gm.unshare(8 * PAGE, 16 * PAGE);
    step(
      `unshare pages 8..23 while the host has 12..13 mapped (pending: ${r.pending.map((e) => `${e.offset / PAGE}..${(e.offset + e.length) / PAGE - 1}`).join(', ')})`,
    );
    const pad = ' '.repeat(32);
    console.log(
      `   ${pad}  host read of pending page 12 through its live mapping: 0x${map.read(12 * PAGE, 1)[0]!.toString(16)} (v5 zaps no PTE)`,
    );
    try {
      gm.map().read(12 * PAGE, 1);
    } catch (e) {
      if (!(e instanceof HostAccessError)) throw e;
      console.log(`   ${pad}  the same page through a new mapping: ${e.code} at offset 0x${e.offset.toString(16)}`);
    }
    map.unmap();
    step('host unmaps: the pages stay pending (v5 never arms its folio_put callback)');
    gm.unshare(12 * PAGE, 2 * PAGE);
    step('unshare 12..13 again: no reference left, so private');
    gm.share(16 * PAGE, 4 * PAGE);
    step('share pages 16..19');
    console.log(`   extents: ${describeExtents(gm)}`);
  } finally {
    sim.close();
  }
}

export async function runDemo(opts: { path?: string } = {}): Promise<number> {
  const path = opts.path ?? '/dev/kvm';
  let kvm: Kvm | undefined;
  try {
    kvm = open({ backend: 'kvm', path });
  } catch (e) {
    console.log(
      `No usable ${path} here (${(e as Error).message}): skipping the real-kernel part, running the simulator part.`,
    );
  }
  if (kvm) {
    console.log(
      `Real KVM: API version ${kvm.apiVersion}, guest_memfd flags ${kvm.checkExtension('GUEST_MEMFD_FLAGS')}`,
    );
    try {
      await realKernelPart(kvm);
    } finally {
      kvm.close();
    }
  }
  simulatorPart();
  return 0;
}
