// vm.guest.readInto of 64 MiB into a reused buffer: first time (fresh VM, fresh slot memory) and
// warm, and vm.guest.read (a new Buffer each time) warm, in GB/s, against memcpy of the same 64 MiB from the slot's mapping measured in the same
// run, and against tools/guest-copy-c.c: a C guest copying at CPL3 the same way (2 MiB guest pages,
// as the library's; `4k` beside it with 4 KiB pages), also in the same run, interleaved.
// Usage: node tools/guest-read-speed.mjs [rounds=7]   (run `npm run build:ts` first)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
const firstMade = [];
const freshRead = [];
const warm = [];
const memcpy = [];
// The C baseline, built here into a temporary folder (cc from build-essential).
const cBin = join(mkdtempSync(join(os.tmpdir(), 'guest-copy-c-')), 'guest-copy-c');
try {
  execFileSync('cc', ['-O2', '-o', cBin, new URL('./guest-copy-c.c', import.meta.url).pathname], { stdio: 'inherit' });
} catch (e) {
  console.warn(`no C baseline (${e.message}): ratios against memcpy only`);
}
const c = { first: [], warm: [] };
const c4 = { first: [], warm: [] };
for (let r = 0; r < rounds; r++) {
  const { vm, m } = fresh(kvm);
  let t = process.hrtime.bigint();
  await vm.guest.readInto(GPA, target);
  first.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  // The same on a VM whose helper exists already (made by an 8-byte read of another slot).
  const other = fresh(kvm);
  const g2 = other.vm.createGuestMemfd({ size: 4096, mmap: true, initShared: true });
  other.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x10_0000, size: 4096, guestMemfd: g2, userspace: g2.map() });
  await other.vm.guest.readInto(0x10_0000, new Uint8Array(8));
  t = process.hrtime.bigint();
  await other.vm.guest.readInto(GPA, target);
  firstMade.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  other.vm.close();
  if (target[0] !== 0x3c || target[SIZE - 1] !== 0x3c) throw new Error('vm.guest.readInto returned other bytes than the host wrote');
  for (let i = 0; i < 3; i++) {
    t = process.hrtime.bigint();
    await vm.guest.readInto(GPA, target);
    warm.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  }
  t = process.hrtime.bigint();
  const made = await vm.guest.read(GPA, SIZE);
  freshRead.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  if (made[SIZE - 1] !== 0x3c) throw new Error('vm.guest.read returned other bytes than the host wrote');
  t = process.hrtime.bigint();
  m.readInto(0, target);
  memcpy.push(gbps(SIZE, Number(process.hrtime.bigint() - t)));
  vm.close();
  if (existsSync(cBin)) {
    for (const [into, pages] of [[c, []], [c4, ['4k']]]) {
      const out = JSON.parse(execFileSync(cBin, [String(SIZE), '3', ...pages], { encoding: 'utf8' }));
      into.first.push(out.first);
      into.warm.push(...out.warm);
    }
  }
}
kvm.close();
if (existsSync(cBin)) rmSync(dirname(cBin), { recursive: true });
const line = (name, v, base) => `${name.padEnd(34)} ${median(v).toFixed(2).padStart(6)} GB/s  (${spread(v)}, n=${v.length})${base ? `  ratio ${(median(v) / median(base)).toFixed(2)}` : ''}`;
console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, Linux ${os.release()}, node ${process.version}`);
console.log(line('memcpy from the slot mapping', memcpy));
if (c.warm.length) {
  console.log(line('C CPL3 copy, first 64 MiB', c.first));
  console.log(line('C CPL3 copy, warm', c.warm));
  console.log(line('C CPL3 copy 4 KiB pages, first 64 MiB', c4.first));
  console.log(line('C CPL3 copy 4 KiB pages, warm', c4.warm));
}
console.log(line('vm.guest.readInto, first 64 MiB', first, c.first.length ? c.first : undefined));
console.log(line('  the same, helper made before', firstMade, c.first.length ? c.first : undefined));
console.log(line('vm.guest.readInto, warm', warm, c.warm.length ? c.warm : memcpy));
console.log(line('vm.guest.read (a new Buffer), warm', freshRead, c.warm.length ? c.warm : memcpy));
