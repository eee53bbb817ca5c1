// No conversion (mainline 6.18 / 7.3 and the PVM host): the file's flags fix its pages for its
// lifetime. share/unshare are unsupported; a hold is what the kvm backend takes on such a kernel.
import { UnsupportedError, kvmError } from '../../errors.js';
import type { ConversionResult, GuestMemfdFlags } from '../../types.js';
import { FileConversion, PRIVATE, SHARED, type ConversionFile, type ConversionModel, type GuestWay } from './model.js';

/** native/page_hold.h: PageHolds::kMaxPages. */
const MAX_HOLD_PAGES = 16384n;

/** 6.18 uAPI: GUEST_MEMFD_FLAG_MMAP (1 << 0), GUEST_MEMFD_FLAG_INIT_SHARED (1 << 1). */
export function mainlineFlags(raw: bigint): GuestMemfdFlags {
  return { mmap: (raw & 1n) !== 0n, initShared: (raw & 2n) !== 0n };
}

class NoConversion extends FileConversion {
  protected initialState(): number {
    // 6.18 kvm_gmem_fault_user_mapping: without INIT_SHARED every host fault is SIGBUS.
    return this.flags.initShared ? SHARED : PRIVATE;
  }

  mmapError(privateMapping: boolean): string | null {
    // 6.18 kvm_gmem_mmap: no MMAP flag -> ENODEV; not VM_SHARED | VM_MAYSHARE -> EINVAL.
    if (!this.flags.mmap) return 'ENODEV';
    return privateMapping ? 'EINVAL' : null;
  }

  guestWay(): GuestWay {
    return null;
  }

  share(): void {
    throw unsupported();
  }

  unshare(): ConversionResult {
    throw unsupported();
  }

  override hold(first: bigint, end: bigint): void {
    // As the kvm backend takes a hold on this kernel (lib/kvm/guest-memfd.ts): mmap of the
    // range (ENODEV without MMAP), then vmsplice, which refuses a page the host may not map.
    if (end - first > MAX_HOLD_PAGES)
      throw new UnsupportedError(
        'hold',
        'a hold on the kvm backend covers at most 64 MiB (its pipe buffers are quota-limited)',
      );
    if (!this.flags.mmap) throw kvmError('ENODEV', 'mmap');
    if (this.hostRefused(first, end) >= 0n) throw kvmError('EFAULT', 'vmsplice');
    super.hold(first, end);
  }
}

function unsupported(): UnsupportedError {
  return new UnsupportedError(
    'in-place conversion',
    "in-place conversion is not supported by this kernel (the simulator's linux-6.18 profile has no KVM_SET_MEMORY_ATTRIBUTES2 or KVM_GMEM_CONVERT_*)",
  );
}

export const none: ConversionModel = {
  name: 'none',
  fileFlags: mainlineFlags,
  attach: (file: ConversionFile) => new NoConversion(file, mainlineFlags(file.rawFlags)),
};
