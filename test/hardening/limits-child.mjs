// Run in a child process under a resource limit (see limits.test.ts); prints one JSON line.
//   node limits-child.mjs <bundled lib> nofile    (under prlimit --nofile=64:64)
//   node limits-child.mjs <bundled lib> populate <bytes>   (inside a small memory cgroup)
//   node limits-child.mjs <bundled lib> as        (under prlimit --as)
import { readdirSync } from 'node:fs';

const [lib, mode, arg] = process.argv.slice(2);
const { open, KvmError } = await import(lib);
const PAGE = 4096;
const fds = () => readdirSync('/proc/self/fd').length;

function shape(e) {
  return {
    class: e?.constructor?.name,
    typed: e instanceof KvmError,
    code: e?.code,
    errno: e?.errno,
    syscall: e?.syscall,
    ioctl: e?.ioctl,
  };
}
function attempt(fn) {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    return shape(e);
  }
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

if (mode === 'nofile') {
  const kvm = open({ backend: 'kvm' });
  const base = fds();
  const vms = [];
  let first;
  // VMs and files until the table is full: each VM holds one fd, each file one more.
  for (let i = 0; i < 200 && !first; i++) {
    try {
      const vm = kvm.createVm();
      vms.push(vm);
      vm.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    } catch (e) {
      first = shape(e);
    }
  }
  // (Counting /proc/self/fd needs an fd too: not while the table is full.)
  // With the table full, every kind of creation fails typed; the objects already made still work.
  const vm = vms[0];
  const after = {
    createVm: attempt(() => kvm.createVm()),
    createGuestMemfd: attempt(() => vm.createGuestMemfd({ size: PAGE })),
    createVcpu: attempt(() => vm.createVcpu(0)),
    openKvm: attempt(() => open({ backend: 'kvm' })),
    autoFallsBack: (() => {
      try {
        const k = open();
        const b = k.backend;
        k.close();
        return b;
      } catch (e) {
        return shape(e);
      }
    })(),
  };
  // Everything closes, and then the fds are there to make new objects that work.
  let works;
  try {
    for (const v of vms) v.close();
    const v = kvm.createVm();
    const g = v.createGuestMemfd({ size: PAGE, mmap: true, initShared: true });
    const mm = g.map();
    mm.fill(0, PAGE, 7);
    works = mm.read(0, 1)[0] === 7;
    v.close();
  } catch (e) {
    works = shape(e);
  }
  kvm.close();
  out({ base, made: vms.length, first, after, works, end: fds() });
} else if (mode === 'populate') {
  const bytes = Number(arg);
  const kvm = open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd({ size: bytes, mmap: true, initShared: true });
  out({ phase: 'allocating', bytes });
  const r = attempt(() => g.allocate(0, bytes));
  const punched = r.ok ? attempt(() => g.punchHole(0, bytes)) : null;
  kvm.close();
  out({ phase: 'done', allocate: r, punched });
} else if (mode === 'as') {
  const kvm = open({ backend: 'kvm' });
  const vm = kvm.createVm();
  const g = vm.createGuestMemfd({ size: 2 ** 40, mmap: true, initShared: true });
  const big = attempt(() => g.map(0, 2 ** 40));
  let small;
  try {
    const m = g.map(0, 16 * PAGE);
    m.fill(0, 16 * PAGE, 1);
    small = { ok: m.read(16 * PAGE - 1, 1)[0] === 1 };
  } catch (e) {
    small = shape(e);
  }
  kvm.close();
  out({ big, small });
}
