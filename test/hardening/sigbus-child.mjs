// Runs in a child process (see sigbus-guard.test.ts): SIGBUS sent from outside (kill -BUS, by
// another process) and SIGBUS handlers installed by others, around the guarded copies. Prints
// one JSON line per step as it goes, so a step that kills or hangs shows where.
//   node sigbus-child.mjs <bundled lib> external      kill -BUS with no other handler
//   node sigbus-child.mjs <bundled lib> handled       kill -BUS, again and again, during copies, with a JS listener
//   node sigbus-child.mjs <bundled lib> replaced      process.on('SIGBUS') after the first map()
//   node sigbus-child.mjs <bundled lib> worker        the same listener, then guarded copies in a worker
import { spawn, spawnSync } from 'node:child_process';
import { isMainThread, parentPort as maybePort, Worker } from 'node:worker_threads';

/** In a worker, never null. */
const parentPort = /** @type {import('node:worker_threads').MessagePort} */ (maybePort);

const [lib, mode] = isMainThread ? process.argv.slice(2) : [process.argv[2], 'in-worker'];
const { open, HostAccessError } = await import(lib);
const PAGE = 4096;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Another process sends the signal: si_code SI_USER, as from a shell's kill.
const killBus = () => spawnSync('kill', ['-BUS', String(process.pid)]);

const kvm = open({ backend: 'kvm' });
const vm = kvm.createVm();
function guardedRead(m) {
  try {
    m.read(PAGE, 16);
    return 'read a private page';
  } catch (e) {
    return e instanceof HostAccessError ? `HostAccessError@${e.offset}` : `${e.name}: ${e.message}`;
  }
}

let received = 0;
const listener = () => received++;

if (mode === 'external') {
  const pm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
  out({ guarded: guardedRead(pm) });
  killBus();
  await sleep(300);
  // Not reached when SIGBUS has its default action.
  out({ alive: true });
  out({ guarded: guardedRead(pm) });
} else if (mode === 'handled') {
  process.on('SIGBUS', listener);
  const SIZE = 4 << 20;
  const sm = vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true }).map();
  const pm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
  const buf = Buffer.alloc(SIZE);
  const SENT = 20;
  // Spaced so that no two are pending at once; the copies keep this thread inside the guard
  // nearly all the time, so most signals land during a copy.
  const killer = spawn('sh', ['-c', `for i in $(seq ${SENT}); do kill -BUS ${process.pid}; sleep 0.02; done`]);
  let done = false;
  killer.on('exit', () => (done = true));
  killer.on('error', () => (done = true));
  let copies = 0;
  const wrong = [];
  while (!done) {
    const until = Date.now() + 5;
    while (Date.now() < until) {
      try {
        sm.readInto(0, buf);
        copies++;
      } catch (e) {
        wrong.push(`${e.name}: ${e.message}`);
      }
    }
    await sleep(0);
  }
  await sleep(100);
  out({ copies: copies > 0, wrong, received: received > 0, guarded: guardedRead(pm) });
} else if (mode === 'replaced') {
  const pm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
  out({ step: 'first', guarded: guardedRead(pm) });
  // libuv's sigaction replaces the guard's handler and keeps no chain to it.
  process.on('SIGBUS', listener);
  out({ step: 'listener', guarded: guardedRead(pm) });
  killBus();
  await sleep(100);
  out({ step: 'kill', received, guarded: guardedRead(pm) });
  // The last listener gone, libuv puts back SIG_DFL.
  process.off('SIGBUS', listener);
  out({ step: 'off', guarded: guardedRead(pm) });
  killBus();
  await sleep(300);
  out({ step: 'alive' });
} else if (mode === 'worker') {
  const pm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
  out({ step: 'main', guarded: guardedRead(pm) });
  process.on('SIGBUS', listener);
  // The worker's own load of the addon is the same library: its copies must re-assert the guard.
  const w = new Worker(new URL(import.meta.url), { argv: [lib] });
  const m = await new Promise((resolve) => {
    w.on('message', resolve);
    w.on('error', (e) => resolve(`${e.name}: ${e.message}`));
  });
  out({ step: 'worker', guarded: m });
  await new Promise((r) => w.on('exit', r));
  out({ step: 'main again', guarded: guardedRead(pm) });
  process.off('SIGBUS', listener);
} else if (mode === 'in-worker') {
  const pm = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true }).map();
  parentPort.postMessage(guardedRead(pm));
}
kvm.close();
