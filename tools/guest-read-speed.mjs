// vm.guest.readInto of 64 MiB into a reused buffer: first time (fresh VM, fresh slot memory) and
// warm, in GB/s, against memcpy of the same 64 MiB from the slot's mapping measured in the same
// run (and, when tools/guest-copy-c is built, a C guest copying at CPL3 the same way).
// Usage: node tools/guest-read-speed.mjs [rounds=7]   (run `npm run build:ts` first)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { open } from '../dist/index.js';

const SIZE = 64 << 20;
const GPA = 0x1_0000_0000;
const rounds = Number(process.argv[2] ?? 7);
const gbps = (bytes, ns) => bytes / ns;
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const spread = (v) => `${Math.min(...v).toFixed(2)}..${Math.max(...v).toFixed(2)}`;

function fresh(kvm) {
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd({ size: SIZE, mmap: true, initShared: true });
  const m = g.map();
  m.fill(0, SIZE, 0x3c);
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: GPA, size: SIZE, guestMemfd: g, userspace: m });
  return { vm, m };
}

const kvm = open({ backend: 'kvm' });
const target = Buffer.alloc(SIZE);
target.fill(1);
const first = [];
const warm = [];
const memcpy = [];
const cBin = new URL('./guest-copy-c', import.meta.url).pathname;
const c = { first: [], warm: [] };
for (let r = 0; r < rounds; r++) {
  const { vm, m } = fresh(kvm);
  let t = process.hrtime.bigint();
  await vm.guest.readInto(GPA, target);
  first.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  if (target[0] !== 0x3c || target[SIZE - 1] !== 0x3c) throw new Error('vm.guest.readInto returned other bytes than the host wrote');
  for (let i = 0; i < 3; i++) {
    t = process.hrtime.bigint();
    await vm.guest.readInto(GPA, target);
    warm.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  }
  t = process.hrtime.bigint();
  m.readInto(0, target);
  memcpy.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  vm.close();
  if (existsSync(cBin)) {
    const out = JSON.parse(execFileSync(cBin, [String(SIZE), '3'], { encoding: 'utf8' }));
    c.first.push(out.first);
    c.warm.push(...out.warm);
  }
}
kvm.close();
const line = (name, v, base) => `${name.padEnd(34)} ${median(v).toFixed(2).padStart(6)} GB/s  (${spread(v)}, n=${v.length})${base ? `  ratio ${(median(v) / median(base)).toFixed(2)}` : ''}`;
console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, Linux ${os.release()}, node ${process.version}`);
console.log(line('memcpy from the slot mapping', memcpy));
if (c.warm.length) {
  console.log(line('C CPL3 copy, first 64 MiB', c.first));
  console.log(line('C CPL3 copy, warm', c.warm));
}
console.log(line('vm.guest.readInto, first 64 MiB', first, c.first.length ? c.first : undefined));
console.log(line('vm.guest.readInto, warm', warm, c.warm.length ? c.warm : memcpy));
