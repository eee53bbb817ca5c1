// The conversion rules of a guest_memfd, one strategy per kernel model (ConversionModel), so the
// file itself (../guest-memfd.ts) only delegates. Each strategy is stateless; the per-file state
// (conversion states, host references) lives in the FileConversion it attaches to each file.
// docs/profiles.md lists every rule with its source; the sources are also next to each rule.
import { PRIVATE, SHARED, StateMap, newExtentMap, type NativeExtentMap } from '../../state-map.js';
import type { ConversionResult, Extent, GuestMemfdFlags } from '../../types.js';
import type { Offset } from '../../ports.js';
import { PAGE_SIZE } from '../../validate.js';

export const P = BigInt(PAGE_SIZE);

export type { Offset };

/** Whether a byte range is whole pages and not empty (what the conversion calls accept). */
export function wholePages(offset: Offset, length: Offset): boolean {
  if (typeof offset === 'number' && typeof length === 'number')
    return length !== 0 && offset % PAGE_SIZE === 0 && length % PAGE_SIZE === 0;
  const l = BigInt(length);
  return l !== 0n && BigInt(offset) % P === 0n && l % P === 0n;
}

/** The page number of a page-aligned byte offset (a number: a file has fewer than 2^53 pages). */
export function pageOf(offset: Offset): number {
  return typeof offset === 'number' ? offset / PAGE_SIZE : Number(offset / P);
}

export type ConversionName = 'none' | 'rfc-v5' | 'inplace-v8';

/** What a strategy sees of its file. */
export interface ConversionFile {
  /** The raw KVM_CREATE_GUEST_MEMFD flags. */
  readonly rawFlags: bigint;
  readonly pageCount: bigint;
  readonly closed: boolean;
  /** kvm_arch_has_private_mem() of the VM that created the file. */
  readonly hasPrivateMem: boolean;
}

/** A live host mapping of the file, as the strategy sees it (identity only). */
export type MappingRef = object;

/** How the guest reaches one page of the file through a guest_memfd slot. */
export type GuestWay =
  /** From the file, in place. */
  | 'file'
  /** A memory fault on this page (private when the page is not shared). */
  | 'fault'
  /** Not the strategy's decision: the kernel's rules without conversion apply (../guest.ts). */
  | null;

export interface ConversionModel {
  readonly name: ConversionName;
  /** What the raw KVM_CREATE_GUEST_MEMFD flags mean for this kernel. */
  fileFlags(raw: bigint): GuestMemfdFlags;
  attach(file: ConversionFile): FileConversion;
}

/** One file's conversion state and the rules that act on it. */
export abstract class FileConversion {
  #states: StateMap | undefined;
  #holds: NativeExtentMap | undefined;

  constructor(
    protected readonly file: ConversionFile,
    readonly flags: GuestMemfdFlags,
  ) {}

  /** The state every page starts in. */
  protected abstract initialState(): number;

  /** Conversion states (made on first use; a file without conversions keeps its initial state). */
  get states(): StateMap {
    if (!this.#states) this.#states = new StateMap(this.file.pageCount, this.initialState());
    return this.#states;
  }

  /** Whether any state was looked at or set (else every page is in its initial state). */
  protected get statesMade(): boolean {
    return this.#states !== undefined;
  }

  /** Host references per page (hold()). */
  protected get holds(): NativeExtentMap {
    if (!this.#holds) this.#holds = newExtentMap(this.file.pageCount, 0);
    return this.#holds;
  }

  /** First page in [first, end) with a host reference, or -1. */
  protected firstHeld(first: number | bigint, end: number | bigint): number {
    return this.#holds ? this.#holds.findFirst(first, end, 0, false) : -1;
  }

  /** The errno guest_memfd's mmap handler gives (after the VFS checks), or null when it maps. */
  abstract mmapError(privateMapping: boolean): string | null;

  /** First page in [first, end) (inside the file) the host may not touch through `via`, or -1n. */
  hostRefused(first: bigint, end: bigint, _via?: MappingRef): bigint {
    if (!this.#states && this.initialState() === SHARED) return -1n;
    return this.states.firstNotIn(first, end, SHARED);
  }

  /** The host touched pages [first, end) through `via` (their PTEs are now present). */
  faultedIn(_via: MappingRef, _first: bigint, _end: bigint): void {}

  /** `via` was unmapped. */
  unmapped(_via: MappingRef): void {}

  /** Pages [first, end) were punched out of the file. */
  punched(_first: bigint, _end: bigint): void {}

  /** How the guest reaches page `page` through a guest_memfd slot (`viaUserspace`: the slot has a userspace address). */
  abstract guestWay(page: bigint, viaUserspace: boolean): GuestWay;

  /** The page's state is not shared (a guest fault there is `private`). */
  isPrivate(page: bigint): boolean {
    return this.states.map.valueAt(page) !== SHARED;
  }

  /** To shared; offsets were checked to lie in the file. */
  abstract share(offset: Offset, length: Offset): void;

  /** To private; offsets were checked to lie in the file. */
  abstract unshare(offset: Offset, length: Offset): ConversionResult;

  extents(offset: Offset, length: Offset): Extent[] {
    return this.states.extents(offset, length);
  }

  /** A host reference on pages [first, end) (throws where the kernel would refuse to take one). */
  hold(first: bigint, end: bigint): void {
    this.holds.add(first, end, 1);
  }

  release(first: bigint, end: bigint): void {
    this.holds.add(first, end, -1);
  }
}

export { PRIVATE, SHARED };
