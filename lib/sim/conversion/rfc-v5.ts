// RFC v5 "KVM: Restricted mapping of guest_memfd at the host and arm64 support", 6.13 base.
// `-N-tabba` below is 20250117163001.2326672-N-tabba@google.com (patch N-1 of 15); quotes and
// the reading behind each rule: docs/research/series-rules.md §A, the table: docs/profiles.md.
//
// The series enables host mapping on arm64 only (-16-tabba selects KVM_GMEM_MAPPABLE in
// arch/arm64/kvm/Kconfig); this models its generic guest_memfd code as if the option were
// selected on an x86 VM (an assumption: the series as posted builds no such kernel).
//
// share/unshare on file offsets stand for the series' kvm_gmem_set_mappable /
// kvm_gmem_clear_mappable (-6-tabba), which take GFN ranges of a VM, walk its memslots and call
// the per-slot variants on file offsets (pgoff = slot->gmem.pgoff + gfn - base_gfn); pKVM's
// hypercall handlers call them downstream. The series has no ioctl.
import { newExtentMap, PENDING, type NativeExtentMap } from '../../state-map.js';
import type { ConversionResult, GuestMemfdFlags } from '../../types.js';
import {
  FileConversion,
  P,
  PRIVATE,
  SHARED,
  type ConversionFile,
  type ConversionModel,
  type GuestWay,
  type MappingRef,
  type Offset,
} from './model.js';
import { attrs2Pages } from './series.js';

/**
 * -11-tabba kvm_gmem_create: GUEST_MEMFD_FLAG_INIT_MAPPABLE (1 << 0) is the only valid flag (bit
 * 1 and up: EINVAL, SimProfile.gmemFlags). -8-tabba kvm_gmem_mmap: every file may be mapped.
 */
function v5Flags(raw: bigint): GuestMemfdFlags {
  return { mmap: true, initShared: (raw & 1n) !== 0n };
}

class RfcV5 extends FileConversion {
  /** Present host PTEs per live mapping, over the file's pages (1 = present). */
  readonly #ptes = new Map<MappingRef, NativeExtentMap>();

  protected initialState(): number {
    // -6-tabba gmem_is_mappable: "r = xa_to_value(xa_load(mappable_offsets, pgoff)); return (r ==
    // KVM_GMEM_ALL_MAPPABLE);" and xa_to_value(NULL) is 0 == ALL (include/linux/xarray.h). With
    // INIT_MAPPABLE __kvm_gmem_create stores ALL for every page (-8/-11-tabba); without it nothing
    // is stored: every file starts host-mappable (the -11-tabba commit message says "private
    // until shared"; its code does not do that).
    return SHARED;
  }

  mmapError(privateMapping: boolean): string | null {
    // -8-tabba kvm_gmem_mmap: not VM_SHARED | VM_MAYSHARE -> EINVAL; no flag gates mmap.
    return privateMapping ? 'EINVAL' : null;
  }

  override hostRefused(first: bigint, end: bigint, via?: MappingRef): bigint {
    // -8-tabba kvm_gmem_fault checks gmem_is_mappable only when a page is faulted in, and
    // -6-tabba gmem_clear_mappable zaps no PTE: a page `via` has present keeps working in any
    // state. A new fault on a page that is not ALL is SIGBUS.
    const ptes = via ? this.#ptes.get(via) : undefined;
    let bad = -1n;
    if (this.statesMade) {
      const runs = this.states.map.query(first, end);
      for (let i = 0; i < runs.length && bad < 0n; i += 3) {
        if (runs[i + 2] === SHARED) continue;
        const at = ptes ? ptes.findFirst(runs[i]!, runs[i + 1]!, 0, true) : runs[i]!;
        if (at >= 0) bad = BigInt(at);
      }
    }
    // The access then faults in every page before the refused one.
    if (via) this.faultedIn(via, first, bad < 0n ? end : bad);
    return bad;
  }

  override faultedIn(via: MappingRef, first: bigint, end: bigint): void {
    if (first >= end) return;
    let ptes = this.#ptes.get(via);
    if (!ptes) this.#ptes.set(via, (ptes = newExtentMap(this.file.pageCount, 0)));
    ptes.assign(first, end, 1);
  }

  override unmapped(via: MappingRef): void {
    // munmap drops the PTEs and the references they held.
    this.#ptes.delete(via);
  }

  override punched(first: bigint, end: bigint): void {
    // Truncation unmaps the range from every mapping (truncate_pagecache_range) and frees the folios.
    for (const ptes of this.#ptes.values()) ptes.assign(first, end, 0);
  }

  guestWay(_page: bigint, viaUserspace: boolean): GuestWay {
    // -15-tabba faultin_pfn / is_private_mem (arm64, the series' only guest fault path): a
    // guest_memfd slot without a userspace address goes to kvm_gmem_get_pfn, which checks no
    // mappability in v5 (v4's -EAGAIN for pages not guest-mappable was dropped); one with a
    // userspace address takes the hva path (../guest.ts: the host's rules through that mapping).
    // -9-tabba's EPERM for pages not ALL is in kvm_read/write_guest_page, KVM's own copies (x86's
    // emulator, MSR writes): neither path here calls them (docs/profiles.md, "Patch 08/15").
    if (viaUserspace) return null;
    return this.file.closed ? 'fault' : 'file';
  }

  /** The stand-in's own range rule: whole pages, non-empty (the series' GFN ranges always are). */
  #pages(offset: Offset, length: Offset): [number, number] {
    return attrs2Pages(offset, length);
  }

  share(offset: Offset, length: Offset): void {
    const [first, end] = this.#pages(offset, length);
    // -7-tabba gmem_set_mappable: a NONE page's folio is restored (its callback cancelled), then
    // every page is stored ALL. Holds are not looked at.
    this.states.set(first, end, SHARED);
  }

  unshare(offset: Offset, length: Offset): ConversionResult {
    const [first, end] = this.#pages(offset, length);
    // -6-tabba gmem_clear_mappable, per page: no folio -> GUEST; "folio_ref_count(folio) >
    // folio_nr_pages(folio) + 1" -> NONE, else GUEST. The extra references modelled: holds, and
    // one per mapping with the page present (a mapped file page holds a folio reference).
    const states = this.states;
    states.set(first, end, PRIVATE);
    let any = false;
    const referenced = (runs: Float64Array) => {
      for (let i = 0; i < runs.length; i += 3) {
        if (runs[i + 2]! === 0) continue;
        states.set(runs[i]!, runs[i + 1]!, PENDING);
        any = true;
      }
    };
    if (this.firstHeld(first, end) >= 0) referenced(this.holds.query(first, end));
    if (this.#ptes.size > 0)
      for (const ptes of this.#ptes.values())
        if (ptes.findFirst(first, end, 0, false) >= 0) referenced(ptes.query(first, end));
    if (!any) return { pending: [] };
    return {
      pending: states.extents(BigInt(first) * P, BigInt(end - first) * P).filter((e) => e.state === 'pending'),
    };
  }

  // release(): the reference goes and a NONE page stays NONE. -7-tabba's final-folio_put callback
  // (kvm_gmem_handle_folio_put via free_typed_folio) runs only once kvm_slot_gmem_register_callback
  // armed it, which "isn't used in this series" (-7-tabba, under the ---): nothing completes a
  // pending page by itself. gmem_clear_mappable again (unshare) finds the references gone: GUEST.
}

export const rfcV5: ConversionModel = {
  name: 'rfc-v5',
  fileFlags: v5Flags,
  attach: (file: ConversionFile) => new RfcV5(file, v5Flags(file.rawFlags)),
};
