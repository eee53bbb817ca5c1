#!/usr/bin/env node
// hello-guest: a hand-assembled real-mode program says hello through port 0x3f8 (one io exit per
// character), asks the host for a byte with `in`, stores it, and halts.
//   node examples/hello-guest.mjs          (needs /dev/kvm; `--sim` shows what the simulator says)
import { open, UnsupportedError } from 'kvm-gmem';

const kvm = open(process.argv.includes('--sim') ? { backend: 'sim' } : {});
console.log(`backend: ${kvm.backend}`);
const vm = kvm.createVm();

let vcpu;
try {
  vcpu = vm.createVcpu(0);
} catch (e) {
  if (!(e instanceof UnsupportedError)) throw e;
  console.log(`cannot run a guest here: ${e.message}.`);
  console.log('vCPUs need the real kernel (/dev/kvm); the simulator models guest memory, not a CPU.');
  kvm.close();
  process.exit(0);
}

// 64 KiB of guest memory at gpa 0: a guest_memfd the host can map (MMAP | INIT_SHARED).
const gmem = vm.createGuestMemfd({ size: 0x10000, mmap: true, initShared: true });
const mem = gmem.map();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 0x10000, guestMemfd: gmem, userspace: mem });

const program = [
  0xbe,
  0x13,
  0x10, // 0x1000 mov si, msg (0x1013)
  0xba,
  0xf8,
  0x03, // 0x1003 mov dx, 0x3f8
  0xac, //             0x1006 next: lodsb              ; al = [si++]
  0x84,
  0xc0, //       0x1007 test al, al
  0x74,
  0x03, //       0x1009 jz done (0x100e)
  0xee, //             0x100b out dx, al               ; io exit: one character
  0xeb,
  0xf8, //       0x100c jmp next (0x1006)
  0xec, //             0x100e done: in al, dx          ; io exit: the host supplies al
  0xa2,
  0x00,
  0x30, // 0x100f mov [0x3000], al
  0xf4, //             0x1012 hlt                      ; hlt exit
  ...Buffer.from('Hello from the guest!\n\0'), // 0x1013 msg
];
mem.write(0x1000, Buffer.from(program));

// Real mode, code segment at 0, execution starting at 0x1000.
vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
vcpu.setRegs({ rip: 0x1000n, rflags: 0x2n });

let text = '';
for (;;) {
  const exit = await vcpu.run();
  if (exit.reason === 'io' && exit.direction === 'out') {
    text += exit.data.toString('latin1');
  } else if (exit.reason === 'io' && exit.direction === 'in') {
    exit.data[0] = 42; // the reply: written into the vCPU before the next run
  } else if (exit.reason === 'hlt') {
    break;
  } else {
    throw new Error(`unexpected exit: ${JSON.stringify(exit)}`);
  }
}
process.stdout.write(`guest said: ${text}`);
console.log(`guest stored the host's byte: ${mem.read(0x3000, 1)[0]}`);
console.log(`guest halted at rip 0x${vcpu.getRegs().rip.toString(16)}`);
kvm.close();
