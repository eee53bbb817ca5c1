// In-place conversion v8 (20260618-gmem-inplace-conversion-v8-0-9d2959357853@google.com; `v8-NN`
// is patch NN of 46): KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd. Quotes and the reading behind
// each rule: docs/research/series-rules.md §B.1; the table: docs/profiles.md.
import { ConversionBusyError, kvmError } from '../../errors.js';
import type { ConversionResult } from '../../types.js';
import { P, PRIVATE, SHARED, type ConversionFile, type ConversionModel, type Offset } from './model.js';
import { mainlineFlags } from './none.js';
import { ATTRS2, SeriesConversion } from './series.js';

class InplaceV8 extends SeriesConversion {
  // v8-13/v8-14 kvm_gmem_set_attributes, in its order (every failure EINVAL): flags != 0,
  // reserved != 0 (neither can be given here), !kvm_arch_has_private_mem(f->kvm), attributes
  // other than 0 / PRIVATE (ditto), size 0 or wrapping, not page-aligned, past i_size. The range
  // past i_size is this API's RangeError first, as on the kvm backend.
  #pages(offset: Offset, length: Offset): [number, number] {
    if (!this.file.hasPrivateMem) throw kvmError('EINVAL', 'ioctl', ATTRS2);
    return this.pages(offset, length);
  }

  share(offset: Offset, length: Offset): void {
    const [first, end] = this.#pages(offset, length);
    // v8-15: to shared checks no reference.
    this.states.set(first, end, SHARED);
  }

  unshare(offset: Offset, length: Offset): ConversionResult {
    const [first, end] = this.#pages(offset, length);
    // v8-14: unmap_mapping_pages zaps the host PTEs (a mapping is no reference), then
    // kvm_gmem_is_safe_for_conversion wants folio_ref_count == nr_pages + 1 on every folio; the
    // first that is not gives -EAGAIN with error_offset at it, and nothing is converted.
    // v8-16 __kvm_gmem_set_attributes: but a range that already has the attributes returns 0 at
    // once (kvm_gmem_range_has_attributes), before any reference is looked at. Asked only when a
    // page is held (the outcome is the same; a file without holds skips a look-up).
    const held = this.firstHeld(first, end);
    if (held >= 0) {
      if (this.states.firstNotIn(first, end, PRIVATE) < 0n) return { pending: [] };
      throw new ConversionBusyError(Number(BigInt(held) * P), undefined, ATTRS2);
    }
    this.states.set(first, end, PRIVATE);
    return { pending: [] };
  }
}

export const inplaceV8: ConversionModel = {
  name: 'inplace-v8',
  fileFlags: mainlineFlags,
  attach: (file: ConversionFile) => new InplaceV8(file, mainlineFlags(file.rawFlags)),
};
