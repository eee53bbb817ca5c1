// A process whose main thread never loads kvm-gmem (see addon-lifetime.test.ts). The main thread
// only starts workers, one after another; each imports the library, runs a vCPU (inline, then on
// its own thread, interrupted by kick()), makes a guarded read of a private page, and ends. The
// last one then touches a private page through view(). One JSON line per worker on stdout,
// printed by the main thread when the worker ends.
//   node addon-lifetime-child.mjs <bundled lib> <workers>
import { isMainThread, parentPort as maybePort, Worker, workerData } from 'node:worker_threads';

/** In a worker, never null. */
const parentPort = /** @type {import('node:worker_threads').MessagePort} */ (maybePort);

const PAGE = 4096;

if (isMainThread) {
  const [lib, count] = process.argv.slice(2);
  const n = Number(count);
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => {
      // What the worker reported, step by step: one line when it ends.
      const seen = { worker: i };
      let printed = false;
      const out = () => {
        if (!printed) process.stdout.write(JSON.stringify(seen) + '\n');
        printed = true;
      };
      const last = i === n - 1;
      const w = new Worker(new URL(import.meta.url), { workerData: { lib } });
      // A run the kick cannot end (no kick signal) spins forever, and so would process.exit()
      // joining its thread: report it and go at once.
      const hung = setTimeout(() => {
        seen.hung = true;
        out();
        process.kill(process.pid, 'SIGKILL');
      }, 10_000);
      w.on('message', (m) => {
        if (m !== 'done') return Object.assign(seen, m);
        out();
        // The line is out: now the last worker may take the process down.
        w.postMessage(last ? 'touch' : 'end');
      });
      w.on('error', (e) => (seen.error = `${e.name}: ${e.message}`));
      w.on('exit', () => {
        clearTimeout(hung);
        out();
        resolve(undefined);
      });
    });
  }
} else {
  const { open, HostAccessError } = await import(workerData.lib);
  const kvm = open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const shared = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
  const sm = shared.map();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * PAGE, guestMemfd: shared, userspace: sm });
  sm.write(0x1000, Buffer.from([0xf4])); // hlt
  sm.write(0x2000, Buffer.from([0xeb, 0xfe])); // jmp $
  const vcpu = vm.createVcpu(0);
  vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
  const step = async (name, fn) => {
    let value;
    try {
      value = await fn();
    } catch (e) {
      value = `${e.name}: ${e.message}`;
    }
    parentPort.postMessage({ [name]: value });
  };
  // Inline: KVM_RUN on this thread under a timer that sends the kick signal.
  await step('inline', async () => {
    vcpu.setRegs({ rip: 0x1000n, rflags: 2n });
    return (await vcpu.run()).reason;
  });
  // On the vCPU thread, spinning until kick() signals that thread.
  await step('kicked', async () => {
    vcpu.setRegs({ rip: 0x2000n, rflags: 2n });
    vcpu.setRunInline(0);
    const p = vcpu.run();
    await new Promise((r) => setTimeout(r, 20));
    vcpu.kick();
    return (await p).reason;
  });
  const priv = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
  const pm = priv.map();
  await step('guarded', () => {
    try {
      pm.read(PAGE, 16);
      return 'read a private page';
    } catch (e) {
      return e instanceof HostAccessError ? `HostAccessError@${e.offset}` : `${e.name}: ${e.message}`;
    }
  });
  parentPort.postMessage('done');
  parentPort.once('message', (m) => {
    // view() refuses a known-private range: the addon's own view, to touch one outside any guard.
    if (m === 'touch') new Uint8Array(pm.port.view())[PAGE] = 1;
    kvm.close();
    parentPort.close();
  });
}
