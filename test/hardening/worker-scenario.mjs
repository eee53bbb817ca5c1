// Runs in a worker thread (the library bundled, see test/fixtures/lib-bundle.ts): makes every
// kind of object, posts 'ready', then does what workerData.mode asks while they are all open:
//   idle    - nothing more: the worker ends when its event loop empties, objects still open
//   exit    - process.exit(0) from inside the worker
//   run     - a vCPU run() of a guest spinning on `jmp $` (EB FE) is in flight
//   runsync - the worker's own thread blocked in runSync() on that spinning guest
//   copy    - a tight loop of guarded copies (half of them fault on private pages)
//   guest   - vm.guest reads and writes in flight (the library's own vCPU program)
// workerData.end: 'stay' (the parent terminates us), 'exit' (process.exit once busy).
import { parentPort as maybePort, workerData } from 'node:worker_threads';

/** In a worker, never null. */
const parentPort = /** @type {import('node:worker_threads').MessagePort} */ (maybePort);

const { open } = await import(workerData.lib);
const PAGE = 4096;
const kvm = open({ backend: 'kvm' });
const vm = kvm.createVm();
const shared = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
const priv = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
const sm = shared.map();
const pm = priv.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * PAGE, guestMemfd: shared, userspace: sm });
sm.write(0x1000, Buffer.from([0xeb, 0xfe])); // jmp $
const vcpu = vm.createVcpu(0);
vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 2n });
// Objects of a second VM, dropped without close(): the finalizers or the cleanup hook close them.
kvm.createVm().createGuestMemfd({ size: PAGE, mmap: true, initShared: true }).map();

const mode = workerData.mode;
const busy = () => {
  parentPort.postMessage('busy');
  if (workerData.end === 'exit') setTimeout(() => process.exit(0), 20);
};
parentPort.postMessage('ready');

if (mode === 'exit') {
  process.exit(0);
} else if (mode === 'run') {
  vcpu.setRunInline(0);
  const p = vcpu.run();
  p.catch(() => {});
  busy();
} else if (mode === 'runsync') {
  busy();
  // Never returns on its own: only the runSync watch can notice the terminate.
  setTimeout(() => vcpu.runSync(), 5);
} else if (mode === 'guest') {
  const buf = Buffer.alloc(8 * PAGE, 0x5a);
  const loop = async () => {
    for (;;) {
      await vm.guest.write(0x2000, buf);
      await vm.guest.read(0x2000, 8 * PAGE);
    }
  };
  loop().catch(() => {});
  busy();
} else if (mode === 'copy') {
  busy();
  // Yield once so the parent gets 'busy', then copy without yielding: terminate() lands mid-loop.
  setTimeout(() => {
    const deadline = Date.now() + (workerData.end === 'exit' ? 50 : 60_000);
    let i = 0;
    while (Date.now() < deadline) {
      try {
        (i & 1 ? pm : sm).read((i * 97) % (4 * PAGE - 64), 64);
        sm.fill(0x3000, PAGE, i & 0xff);
      } catch {
        // private pages: HostAccessError, as expected
      }
      i++;
    }
    process.exit(0);
  }, 5);
}
