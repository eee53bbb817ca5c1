// vCPU lifetimes: no fd (or thread) left behind, and a worker that exits with a run in flight
// neither hangs nor takes the process down.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { realModeGuest } from './vcpu-fixture.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const addon = process.env.KVM_GMEM_ADDON ?? path.join(root, 'build/Release/kvm_gmem.node');

const fdCount = () => readdirSync('/proc/self/fd').length;
const threadCount = () => readdirSync('/proc/self/task').length;

// The worker uses the raw addon (no TypeScript loader there): a VM whose vCPU spins forever.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const a = require(workerData.addon);
const kvm = new a.NativeKvm('/dev/kvm');
const vm = kvm.createVm(0);
const g = vm.createGuestMemfd(0x10000, 3);
const m = g.map(0, 0x10000, false);
vm.setUserMemoryRegion2({ slot: 0, flags: 4, size: 0x10000, userspace: m, guestMemfd: g });
m.write(0x1000, Buffer.from([0xeb, 0xfe]));        // jmp $
const v = vm.createVcpu(0);
v.setSregs({ cs: { base: 0n, selector: 0 } });
const regs = new BigUint64Array(18); v.getRegs(regs); regs[16] = 0x1000n; regs[17] = 2n; v.setRegs(regs);
v.setRunInline(0);
const p = v.run();
parentPort.postMessage(typeof p.then === 'function' ? 'pending' : 'done');
if (workerData.exit) setTimeout(() => process.exit(0), 5);
`;

function runWorker(exit: boolean): Promise<{ msg: unknown; code: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { addon, exit } });
    let msg: unknown;
    w.on('message', (m) => {
      msg = m;
      if (!exit) setTimeout(() => void w.terminate(), 5);
    });
    w.on('error', reject);
    w.on('exit', (code) => resolve({ msg, code }));
  });
}

describeKvm('vcpu lifetime', () => {
  it('100 VMs with vCPUs (some run on their thread) leave no fd and no thread behind', async () => {
    const kvm = open({ backend: 'kvm' });
    // Warm-up: the first run sets up process-wide state (signal handler) once.
    const w = realModeGuest([0xf4], { kvm });
    await w.vcpu.run();
    w.vm.close();
    const fds = fdCount();
    const threads = threadCount();
    for (let i = 0; i < 100; i++) {
      const g = realModeGuest([0xba, 0x10, 0x00, 0xee, 0xf4], { kvm });
      g.vm.createVcpu(1);
      if (i % 10 === 0) {
        g.vcpu.setRunInline(0);
        expect(await g.vcpu.run()).toMatchObject({ reason: 'io' });
      } else {
        expect(g.vcpu.runSync()).toMatchObject({ reason: 'io' });
      }
      g.vm.close();
    }
    // Threadsafe functions finish closing on the next loop turns.
    await new Promise((r) => setTimeout(r, 20));
    expect(fdCount()).toBe(fds);
    expect(threadCount()).toBe(threads);
    kvm.close();
  });

  it('terminating a worker with a run in flight ends it cleanly', async () => {
    const r = await runWorker(false);
    expect(r.msg).toBe('pending');
    expect(r.code).toBe(1); // terminate()'s exit code
  });

  it('a worker calling process.exit with a run in flight ends it cleanly', async () => {
    const r = await runWorker(true);
    expect(r.msg).toBe('pending');
    expect(r.code).toBe(0);
  });
});
