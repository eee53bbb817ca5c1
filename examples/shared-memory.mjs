#!/usr/bin/env node
// shared-memory: guest and host exchange data through one guest_memfd (MMAP | INIT_SHARED, the
// Linux 6.18 selftest's case). The host writes through its mmap, the guest uppercases the text in
// place, the host reads the result back; then the same through vm.guest, the guest's own view.
//   node examples/shared-memory.mjs        (`--sim` runs the vm.guest part on the simulator)
import { open, UnsupportedError } from 'kvm-gmem';

const kvm = open(process.argv.includes('--sim') ? { backend: 'sim' } : {});
console.log(`backend: ${kvm.backend}`);
const vm = kvm.createVm();
const gmem = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
const mem = gmem.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gmem, userspace: mem });

// 1. The host's mapping and the guest's view (vm.guest) are the same pages.
mem.write(0x2000, Buffer.from('written by the host\0'));
console.log(`vm.guest.read sees:  ${JSON.stringify((await vm.guest.read(0x2000, 19)).toString())}`);
await vm.guest.write(0x2100, Buffer.from('written as the guest'));
console.log(`the mapping sees:    ${JSON.stringify(mem.read(0x2100, 20).toString())}`);

// 2. A guest program changes the memory and the host sees it.
let vcpu;
try {
  vcpu = vm.createVcpu(0);
} catch (e) {
  if (!(e instanceof UnsupportedError)) throw e;
  console.log(`skipping the guest program: ${e.message} (vCPUs need the real kernel, /dev/kvm).`);
  kvm.close();
  process.exit(0);
}
mem.write(
  0x1000,
  Buffer.from([
    0xbe,
    0x00,
    0x20, // 0x00 mov si, 0x2000
    0x8a,
    0x04, //       0x03 loop: mov al, [si]
    0x84,
    0xc0, //       0x05 test al, al
    0x74,
    0x0f, //       0x07 jz done (0x18)
    0x3c,
    0x61, //       0x09 cmp al, 'a'
    0x72,
    0x06, //       0x0b jb store (0x13)
    0x3c,
    0x7a, //       0x0d cmp al, 'z'
    0x77,
    0x02, //       0x0f ja store (0x13)
    0x2c,
    0x20, //       0x11 sub al, 0x20           ; to upper case
    0x88,
    0x04, //       0x13 store: mov [si], al
    0x46, //             0x15 inc si
    0xeb,
    0xeb, //       0x16 jmp loop (0x03)
    0xf4, //             0x18 done: hlt
  ]),
);
vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 0x2n });
const exit = await vcpu.run();
console.log(`guest exit: ${exit.reason}`);
console.log(`the host now reads:  ${JSON.stringify(mem.read(0x2000, 19).toString())}`);
kvm.close();
