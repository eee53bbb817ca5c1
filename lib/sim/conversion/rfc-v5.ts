// RFC v5 "KVM: Restricted mapping of guest_memfd at the host and arm64 support"
// (20250117163001.2326672-{1..16}-tabba@google.com): three mappability states per page.
import { PENDING } from '../../state-map.js';
import type { ConversionResult } from '../../types.js';
import { P, PRIVATE, SHARED, type ConversionFile, type ConversionModel } from './model.js';
import { mainlineFlags } from './none.js';
import { SeriesConversion } from './series.js';

class RfcV5 extends SeriesConversion {
  share(offset: bigint, length: bigint): void {
    const [first, end] = this.pages(offset, length);
    // Shared cancels a pending to-private conversion and never checks holds.
    this.states.set(first, end, SHARED);
  }

  unshare(offset: bigint, length: bigint): ConversionResult {
    const [first, end] = this.pages(offset, length);
    const held = this.firstHeld(first, end);
    const states = this.states;
    states.set(first, end, PRIVATE);
    if (held < 0) return { pending: [] };
    // Held pages wait (pending) until their last hold goes.
    const runs = this.holds.query(BigInt(held), end);
    for (let i = 0; i < runs.length; i += 3) {
      if (runs[i + 2]! > 0) states.set(BigInt(runs[i]!), BigInt(runs[i + 1]!), PENDING);
    }
    return { pending: states.extents(first * P, (end - first) * P).filter((e) => e.state === 'pending') };
  }

  override release(first: bigint, end: bigint): void {
    super.release(first, end);
    if (!this.statesMade) return;
    // A pending page whose last hold went completes its conversion (kvm_gmem_handle_folio_put).
    const states = this.states;
    const pending = states.map.query(first, end);
    for (let i = 0; i < pending.length; i += 3) {
      if (pending[i + 2] !== PENDING) continue;
      const counts = this.holds.query(pending[i]!, pending[i + 1]!);
      for (let j = 0; j < counts.length; j += 3) {
        if (counts[j + 2] === 0) states.set(BigInt(counts[j]!), BigInt(counts[j + 1]!), PRIVATE);
      }
    }
  }
}

export const rfcV5: ConversionModel = {
  name: 'rfc-v5',
  fileFlags: mainlineFlags,
  attach: (file: ConversionFile) => new RfcV5(file, mainlineFlags(file.rawFlags)),
};
