#!/usr/bin/env node
// The cost of one KVM_EXIT_IO round trip (KVM_RUN -> guest `out` -> back), three ways, in the same
// process on the same vCPU: a C loop in the addon, vcpu.runSync(), and `await vcpu.run()` (with
// its default inline window, and always on the vCPU thread). Needs /dev/kvm and the compiled package
// (`npx tsc -p tsconfig.json`). run() keeps KVM_RUN on the JS thread for up to 500 us, then hands
// it to the vCPU's own thread (woken by a futex, completing through a threadsafe function); the
// second run() figure forces that handoff every time. Usage: node bench/io-exit.mjs [iterations]
import { open } from 'kvm-gmem';

const N = Number(process.argv[2] ?? 20000);
const kvm = open({ backend: 'kvm' });
const vm = kvm.createVm();
const gmem = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
const map = gmem.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gmem, userspace: map });
// Real mode at 0x1000: an endless OUT loop, so every KVM_RUN is exactly one io exit.
map.write(0x1000, Buffer.from([
  0xba, 0x10, 0x00, // mov dx, 0x10
  0xee,             // l: out dx, al
  0xeb, 0xfd,       // jmp l
]));
const vcpu = vm.createVcpu(0);
vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 2n });

const perOp = (ns) => ns / N / 1000;
async function timeAsync() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = await vcpu.run();
    if (e.reason !== 'io') throw new Error(`unexpected exit ${e.reason}`);
  }
  return perOp(Number(process.hrtime.bigint() - t0));
}
function timeSync() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = vcpu.runSync();
    if (e.reason !== 'io') throw new Error(`unexpected exit ${e.reason}`);
  }
  return perOp(Number(process.hrtime.bigint() - t0));
}
const timeC = () => perOp(vcpu.native.benchRunLoop(N));

// Warm up every path, then interleave rounds so drift hits all alike; report medians.
timeC(); timeSync(); await timeAsync();
const rounds = { c: [], sync: [], run: [], runAsync: [] };
for (let r = 0; r < 5; r++) {
  rounds.c.push(timeC());
  rounds.sync.push(timeSync());
  vcpu.setRunInline(500);
  rounds.run.push(await timeAsync());
  vcpu.setRunInline(0);
  rounds.runAsync.push(await timeAsync());
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const c = median(rounds.c);
const row = (name, us) => console.log(`${name.padEnd(50)} ${us.toFixed(2).padStart(7)} us   ${(us / c).toFixed(2)}x C`);
console.log(`io-exit round trip, ${N} iterations x 5 rounds (median), vCPU thread + JS thread on this host`);
row('C loop (KVM_RUN in the addon)', c);
row('vcpu.runSync()', median(rounds.sync));
row('await vcpu.run() (default: inline window 500 us)', median(rounds.run));
row('await vcpu.run() (setRunInline(0): vCPU thread)', median(rounds.runAsync));
kvm.close();
