#!/usr/bin/env node
// The cost of one KVM_EXIT_IO round trip (KVM_RUN -> guest `out` -> back), in the same process on
// the same vCPU, as ratios to vcpu.runSync() (one KVM_RUN per N-API call; `npm run bench` has the
// C baseline, bench/baselines/kvm_c.c ioexit, in a process of its own): `await vcpu.run()` as
// shipped (KVM_RUN starts on the JS thread and moves to the vCPU's own thread only past a 2 ms
// window), and `await vcpu.run()` after setRunInline(0) (every run on the vCPU
// thread: futex wake there, threadsafe-function completion back). Many short rounds, interleaved,
// so load from other processes hits every variant alike; the median and the best round are shown.
// Needs /dev/kvm and the compiled package (`npx tsc -p tsconfig.json`).
// Usage: node bench/io-exit.mjs [rounds] [iterations per round]
import { open } from 'kvm-gmem';

const ROUNDS = Number(process.argv[2] ?? 30);
const N = Number(process.argv[3] ?? 2000);
const kvm = open({ backend: 'kvm' });
const vm = kvm.createVm();
const gmem = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
const map = gmem.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gmem, userspace: map });
// Real mode at 0x1000: an endless OUT loop, so every KVM_RUN is exactly one io exit.
map.write(
  0x1000,
  Buffer.from([
    0xba,
    0x10,
    0x00, // mov dx, 0x10
    0xee, //             l: out dx, al
    0xeb,
    0xfd, //       jmp l
  ]),
);
const vcpu = vm.createVcpu(0);
vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 2n });

const us = (t0) => Number(process.hrtime.bigint() - t0) / N / 1000;
const variants = {
  'vcpu.runSync()': () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (vcpu.runSync().reason !== 'io') throw new Error('unexpected exit');
    return us(t0);
  },
  'await vcpu.run() (default)': async () => {
    vcpu.setRunInline(2000);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if ((await vcpu.run()).reason !== 'io') throw new Error('unexpected exit');
    return us(t0);
  },
  'await vcpu.run() (setRunInline(0))': async () => {
    vcpu.setRunInline(0);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if ((await vcpu.run()).reason !== 'io') throw new Error('unexpected exit');
    return us(t0);
  },
};
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, /** @type {number[]} */ ([])]));
for (const f of Object.values(variants)) await f(); // warm-up
for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(variants)) results[k].push(await f());
kvm.close();

const sorted = (a) => [...a].sort((x, y) => x - y);
const median = (a) => sorted(a)[Math.floor(a.length / 2)];
const best = (a) => sorted(a)[0];
const [cName] = Object.keys(variants); // vcpu.runSync(), the baseline
const cMed = median(results[cName]);
const cBest = best(results[cName]);
console.log(
  `io-exit round trip: ${ROUNDS} interleaved rounds x ${N} exits; load average ${(await import('node:os')).loadavg()[0].toFixed(2)}`,
);
console.log(
  `${''.padEnd(38)} ${'median'.padStart(9)} ${'vs sync'.padStart(7)} ${'best'.padStart(9)} ${'vs sync'.padStart(7)}`,
);
for (const [k, v] of Object.entries(results)) {
  const m = median(v);
  const b = best(v);
  console.log(
    `${k.padEnd(38)} ${m.toFixed(2).padStart(6)} us ${(m / cMed).toFixed(2).padStart(6)}x ${b.toFixed(2).padStart(6)} us ${(b / cBest).toFixed(2).padStart(6)}x`,
  );
}
