// Run as `node --expose-gc finalizer-child.mjs <bundled lib> <rounds>`: makes Kvm, Vm, files,
// mappings, slots and vCPUs (some of which ran on their own thread), drops them all without
// close(), collects, and prints fd/thread/mapping counts before, during and after as JSON.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
/** Exposed by --expose-gc. */
const gc = /** @type {() => void} */ (globalThis.gc);

const [lib, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const { open } = await import(lib);
const PAGE = 4096;
const counts = () => ({
  fds: readdirSync('/proc/self/fd').length,
  threads: readdirSync('/proc/self/task').length,
  maps: readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('kvm-gmem')).length,
});

async function round(i) {
  const kvm = open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
  const m = g.map();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 16 * PAGE, guestMemfd: g, userspace: m });
  m.write(0x1000, Buffer.from([0xf4])); // hlt
  const v = vm.createVcpu(0);
  v.setSregs({ cs: { base: 0n, selector: 0 } });
  v.setRegs({ rip: 0x1000n, rflags: 2n });
  // Every other round the run goes to the vCPU's own thread, which the finalizer must stop.
  if (i % 2) v.setRunInline(0);
  const exit = await v.run();
  if (exit.reason !== 'hlt') throw new Error(`unexpected exit ${JSON.stringify(exit)}`);
  vm.createVcpu(1);
  vm.createGuestMemfd({ size: PAGE }); // a file without MMAP, never mapped
}

// Warm up once (addon, signal handlers, the kick signal) so the baseline counts what stays.
await round(1);
for (let i = 0; i < 10; i++) {
  gc();
  await sleep(10);
}
const before = counts();
for (let i = 0; i < rounds; i++) await round(i);
const during = counts();
for (let i = 0; i < 20; i++) {
  gc();
  await sleep(20);
}
const after = counts();
process.stdout.write(JSON.stringify({ before, during, after }) + '\n');
