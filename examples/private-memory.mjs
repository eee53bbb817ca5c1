#!/usr/bin/env node
// private-memory: a guest_memfd with MMAP but not INIT_SHARED is all private. On Linux 6.18 in a
// type-0 VM the host's touch gives SIGBUS (HostAccessError here, the process lives on), and the
// guest's access ends in an MMIO exit at that gpa (GuestMemoryFault through vm.guest).
//   node examples/private-memory.mjs       (`--sim [profile]` runs it on the simulator;
//                                           profile 'linux-6.18' models this kernel)
import { open, GuestMemoryFault, HostAccessError, UnsupportedError } from 'kvm-gmem';

const simAt = process.argv.indexOf('--sim');
const profile = /** @type {import('kvm-gmem').Profile} */ (process.argv[simAt + 1] ?? 'linux-6.18');
const kvm = open(simAt >= 0 ? { backend: 'sim', profile } : {});
console.log(`backend: ${kvm.backend}${kvm.backend === 'sim' ? ` (profile ${kvm.profile})` : ''}`);
const vm = kvm.createVm();
const GPA = 0x20000; // below 1 MiB, so the real-mode vCPU below can reach it too
const priv = vm.createGuestMemfd({ size: 0x10000, mmap: true });
vm.setMemoryRegion({ slot: 1, guestPhysAddr: GPA, size: 0x10000, guestMemfd: priv });
console.log('states:', JSON.stringify(priv.states()));

const map = priv.map();
try {
  map.read(0x1000, 1);
  console.log('host read: allowed');
} catch (e) {
  if (!(e instanceof HostAccessError)) throw e;
  console.log(`host read: ${e.code} at offset ${e.offset} (${e.message})`);
}

try {
  const b = await vm.guest.read(GPA + 0x1234, 4);
  console.log(`guest read: allowed, got ${b.toString('hex')}`);
} catch (e) {
  if (!(e instanceof GuestMemoryFault)) throw e;
  console.log(`guest read: ${e.code} at gpa 0x${e.gpa.toString(16)} (private: ${e.private})`);
}

// The same access from a vCPU of our own: on this kernel, an MMIO exit at the private gpa.
let vcpu;
try {
  vcpu = vm.createVcpu(0);
} catch (e) {
  if (!(e instanceof UnsupportedError)) throw e;
  console.log(`no raw vCPU part: ${e.message} (vCPUs need the real kernel, /dev/kvm).`);
  kvm.close();
  process.exit(0);
}
const code = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
const mem = code.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: code, userspace: mem });
mem.write(0x1000, Buffer.from([0xa0, 0x00, 0x00, 0xf4])); // mov al, [ds:0]; hlt  (ds points at the private slot)
vcpu.setSregs({ cs: { base: 0n, selector: 0 }, ds: { base: BigInt(GPA), selector: GPA >> 4 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 0x2n });
const exit = await vcpu.run();
console.log(
  `vCPU read of gpa 0x${GPA.toString(16)}: exit ${exit.reason}${exit.reason === 'mmio' ? ` at 0x${exit.address.toString(16)}` : ''}`,
);
kvm.close();
