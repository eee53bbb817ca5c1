// What the two series profiles share today: the 6.18 flags, and share/unshare on file offsets
// with KVM_SET_MEMORY_ATTRIBUTES2's range rules.
import { kvmError } from '../../errors.js';
import { PENDING } from '../../state-map.js';
import { FileConversion, PRIVATE, SHARED, pageOf, wholePages, type GuestWay, type Offset } from './model.js';

export const ATTRS2 = 'KVM_SET_MEMORY_ATTRIBUTES2';

/**
 * The page range [first, end) of a conversion's byte range: page-aligned and non-empty, else
 * EINVAL, as KVM_SET_MEMORY_ATTRIBUTES2 (and rfc-v5's stand-in for the series' GFN ranges).
 */
export function attrs2Pages(offset: Offset, length: Offset): [number, number] {
  if (!wholePages(offset, length)) throw kvmError('EINVAL', 'ioctl', ATTRS2);
  const first = pageOf(offset);
  return [first, first + pageOf(length)];
}

export abstract class SeriesConversion extends FileConversion {
  protected initialState(): number {
    return this.flags.initShared ? SHARED : PRIVATE;
  }

  mmapError(privateMapping: boolean): string | null {
    if (!this.flags.mmap) return 'ENODEV';
    return privateMapping ? 'EINVAL' : null;
  }

  guestWay(page: bigint): GuestWay {
    if (this.file.closed) return 'fault';
    // A file with MMAP: its pages in place. Without: shared pages through the userspace memory.
    if (!this.flags.mmap && !this.isPrivate(page)) return null;
    if (this.statesMade && this.states.map.valueAt(page) === PENDING) return 'fault';
    return 'file';
  }

  /** The conversion call's own checks: page-aligned and non-empty, as KVM_SET_MEMORY_ATTRIBUTES2. */
  protected pages(offset: Offset, length: Offset): [number, number] {
    return attrs2Pages(offset, length);
  }
}
