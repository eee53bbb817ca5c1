// In-place conversion v8 (20260618-gmem-inplace-conversion-v8-0-9d2959357853@google.com):
// KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd; a to-private conversion of a page with extra
// references fails with EAGAIN at that page and converts nothing.
import { ConversionBusyError } from '../../errors.js';
import type { ConversionResult } from '../../types.js';
import { P, PRIVATE, SHARED, type ConversionFile, type ConversionModel } from './model.js';
import { mainlineFlags } from './none.js';
import { ATTRS2, SeriesConversion } from './series.js';

class InplaceV8 extends SeriesConversion {
  share(offset: bigint, length: bigint): void {
    const [first, end] = this.pages(offset, length);
    this.states.set(first, end, SHARED);
  }

  unshare(offset: bigint, length: bigint): ConversionResult {
    const [first, end] = this.pages(offset, length);
    const held = this.firstHeld(first, end);
    if (held >= 0) throw new ConversionBusyError(Number(BigInt(held) * P), undefined, ATTRS2);
    this.states.set(first, end, PRIVATE);
    return { pending: [] };
  }
}

export const inplaceV8: ConversionModel = {
  name: 'inplace-v8',
  fileFlags: mainlineFlags,
  attach: (file: ConversionFile) => new InplaceV8(file, mainlineFlags(file.rawFlags)),
};
