// What a backend offers, found by trying it (never by trusting a profile name), cached per Kvm.
import type { Kvm, Vm } from '../types.js';

export const PAGE = 4096;

const cache = new WeakMap<Kvm, Map<string, Promise<string | null>>>();

function once(kvm: Kvm, key: string, probe: () => Promise<string | null>): Promise<string | null> {
  let m = cache.get(kvm);
  if (!m) cache.set(kvm, (m = new Map()));
  let p = m.get(key);
  if (!p) m.set(key, (p = probe()));
  return p;
}

function isUnsupported(e: unknown): boolean {
  return e instanceof Error && e.name === 'UnsupportedError';
}

/** The VM type conversion cases use: one with private memory when the backend offers it. */
export function conversionVmType(kvm: Kvm): number {
  return kvm.vmTypes().includes(1) ? 1 : 0;
}

/**
 * In-place conversion (share/unshare). On the real backend the mechanism is what kvm.profile
 * found (kernel-uapi.md §3); on the simulator, a share of one page either works or says unsupported.
 */
export function conversion(kvm: Kvm): Promise<string | null> {
  return once(kvm, 'conversion', async () => {
    const missing =
      'not supported here: in-place conversion (KVM_SET_MEMORY_ATTRIBUTES2 / KVM_GMEM_CONVERT_* on guest_memfd)';
    if (kvm.backend === 'kvm') {
      return kvm.profile === 'attributes2' || kvm.profile === 'gmem-convert' ? null : missing;
    }
    const vm = kvm.createVm({ type: conversionVmType(kvm) });
    try {
      const g = vm.createGuestMemfd({ size: PAGE, mmap: true });
      g.share(0, PAGE);
      return null;
    } catch (e) {
      return isUnsupported(e) ? missing : null;
    } finally {
      vm.close();
    }
  });
}

/** Host references (GuestMemfd.hold), which the pins cases need. */
export function holds(kvm: Kvm): Promise<string | null> {
  return once(kvm, 'hold', async () => {
    const vm = kvm.createVm({ type: conversionVmType(kvm) });
    try {
      const g = vm.createGuestMemfd({ size: PAGE, mmap: true });
      g.hold(0, PAGE).release();
      return null;
    } catch (e) {
      return isUnsupported(e) ? `not supported here: hold (host page references): ${(e as Error).message}` : null;
    } finally {
      vm.close();
    }
  });
}

/** Guest access (vm.guest), which runs a vCPU on the real backend. */
export function guestAccess(kvm: Kvm): Promise<string | null> {
  return once(kvm, 'guest', async () => {
    const vm = kvm.createVm();
    try {
      await vm.guest.read(0, 1);
      return null;
    } catch (e) {
      return isUnsupported(e) ? `not supported here: guest access (vm.guest): ${(e as Error).message}` : null;
    } finally {
      vm.close();
    }
  });
}

/** Both conversion and holds; the first missing one is the reason. */
export async function conversionAndHolds(kvm: Kvm): Promise<string | null> {
  return (await conversion(kvm)) ?? (await holds(kvm));
}

/**
 * createGuestMemfd options for a file the host may map and touch from the start: MMAP |
 * INIT_SHARED where the VM's KVM_CAP_GUEST_MEMFD_FLAGS offers INIT_SHARED (6.18 uAPI); on a kernel
 * without that cap, bit 0 alone, which is RFC v5's GUEST_MEMFD_FLAG_INIT_MAPPABLE (6.13 base,
 * 20250117163001.2326672-11-tabba@google.com) and fails with EINVAL where it means nothing.
 */
export function hostMappable(vm: Vm): { mmap: true; initShared?: true } {
  return (vm.checkExtension('GUEST_MEMFD_FLAGS') & 2) !== 0 ? { mmap: true, initShared: true } : { mmap: true };
}
