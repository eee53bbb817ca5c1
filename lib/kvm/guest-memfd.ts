// The guest_memfd port on the real backend: mmap, fallocate and fstat on the file, conversion
// through whichever ioctl this kernel has (found once with a size-0 probe), and holds taken as a
// process can (the range mapped and vmspliced into pipes the native side keeps by id).
import { UnsupportedError } from '../errors.js';
import type { Mapping } from '../core/mapping.js';
import type { GuestMemfd } from '../core/guest-memfd.js';
import type { GmemPort, HoldPort, MapPort, Offset } from '../ports.js';
import type { ConversionResult, FileStat } from '../types.js';
import type { NativeConversion, NativeGuestMemfd } from './addon.js';

/** A hold's pipes, by id; a file already closed released them, and the id is then a no-op. */
export class KvmHoldPort implements HoldPort {
  constructor(
    readonly native: NativeGuestMemfd,
    readonly id: number,
  ) {}
  release(): void {
    this.native.releaseHold(this.id);
  }
  /** Test aid: bytes the hold's first page still carries. */
  peek(bytes: number): Buffer | null {
    return this.native.peekHold(this.id, bytes);
  }
}

/** The file behind a mapping (vm.guest asks which file a slot's userspace memory shows). */
export const mappingFile = { get: (m: Mapping): GuestMemfd | undefined => m.file as GuestMemfd };

export class KvmGmemPort implements GmemPort {
  readonly backend = 'kvm' as const;
  #mechanism: NativeConversion | null | undefined;

  constructor(readonly native: NativeGuestMemfd) {}

  get fd(): number {
    return this.native.fd;
  }

  map(offset: bigint, length: bigint, priv: boolean): MapPort {
    // The native mapping is the port: its copies run under the SIGBUS guard.
    return this.native.map(offset, length, priv);
  }

  fallocate(mode: 'allocate' | 'punch', offset: bigint, length: bigint): void {
    this.native.fallocate(mode, offset, length);
  }

  convert(to: 'shared' | 'private', offset: Offset, length: Offset): ConversionResult {
    if (this.#mechanism === undefined) this.#mechanism = this.native.probeConversion();
    if (this.#mechanism === null) {
      throw new UnsupportedError(
        'in-place conversion',
        'in-place conversion is not supported by this kernel (no KVM_SET_MEMORY_ATTRIBUTES2 or KVM_GMEM_CONVERT_* on guest_memfd)',
      );
    }
    this.native.convert(this.#mechanism, to === 'private', offset, length);
    return { pending: [] };
  }

  stat(): FileStat {
    return this.native.stat();
  }

  /** A private page is KvmError EFAULT (vmsplice refuses what the host may not map). */
  hold(offset: bigint, length: bigint): KvmHoldPort {
    return new KvmHoldPort(this.native, this.native.hold(offset, length));
  }

  close(): void {
    this.native.close();
  }
}
