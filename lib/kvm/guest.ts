// vm.guest on the real backend (being built: see issue 6).
import { UnsupportedError } from '../errors.js';
import type { GuestAccess, U64 } from '../types.js';
import type { KvmVm } from './vm.js';

export class KvmGuestAccess implements GuestAccess {
  constructor(readonly vm: KvmVm) {}
  async read(_gpa: U64, _length: U64): Promise<Buffer> {
    throw new UnsupportedError('vm.guest');
  }
  async write(_gpa: U64, _data: ArrayBufferView): Promise<void> {
    throw new UnsupportedError('vm.guest');
  }
  markClosed(): void {}
}
