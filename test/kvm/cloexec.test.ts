// Every fd the library holds is close-on-exec: a child process must not inherit the VM, its
// vCPUs or the guest's memory (KVM itself hands guest_memfd out without O_CLOEXEC).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';

const O_CLOEXEC = 0o2000000;

function kvmFds(): { target: string; cloexec: boolean }[] {
  const out: { target: string; cloexec: boolean }[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the look
    }
    if (!/kvm/.test(target)) continue;
    const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
    out.push({ target, cloexec: (parseInt(flags, 8) & O_CLOEXEC) !== 0 });
  }
  return out;
}

describeKvm('close-on-exec', () => {
  it('the /dev/kvm, VM, guest_memfd and vCPU fds (vm.guest helper included) are all O_CLOEXEC', async () => {
    const kvm = open({ backend: 'kvm' });
    try {
      const vm = kvm.createVm();
      const gm = vm.createGuestMemfd({ size: 1 << 16, mmap: true, initShared: true });
      const m = gm.map();
      vm.createVcpu(0);
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, size: 1 << 16, guestMemfd: gm, userspace: m });
      await vm.guest.read(0, 8);
      const fds = kvmFds();
      const kinds = new Set(fds.map((f) => f.target.replace(/:\d+$/, '')));
      expect([...kinds].sort()).toEqual([
        '/dev/kvm',
        'anon_inode:[kvm-gmem]',
        'anon_inode:kvm-vcpu',
        'anon_inode:kvm-vm',
      ]);
      expect(fds.filter((f) => !f.cloexec)).toEqual([]);
    } finally {
      kvm.close();
    }
  });
});
