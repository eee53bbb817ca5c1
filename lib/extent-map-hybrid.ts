// The extent map the simulator uses when the addon is loaded: the TypeScript map (lib/extent-map.ts)
// while it holds few extents, the native B+tree once it holds more. A small map's operations then
// cost no N-API crossing (about 50-90 ns a call on the machines measured, more than the work
// itself): a one-page share or states() on a file with a few runs stays inside JS, while a map
// that fragments keeps the tree's O(log n) edits. Both maps give the same results and errors
// (test/extent-map-ts.test.ts holds all three equal), so the switch is invisible but for
// bytesUsed() and depth(), which describe the structure in use.
import { TsExtentMap } from './extent-map.js';
import type { NativeExtentMap } from './kvm/addon.js';

/** Extents above which a map moves to the native tree (a TypeScript edit moves O(extents) entries). */
export const PROMOTE_AT = 64;

export class HybridExtentMap implements NativeExtentMap {
  #ts: TsExtentMap | null;
  #tree: NativeExtentMap | null = null;
  readonly #make: (pages: number, initial: number) => NativeExtentMap;
  readonly #promoteAt: number;

  /** `make` builds the native map; the arguments are checked by the TypeScript map, as natively. */
  constructor(
    pages: unknown,
    initial: unknown,
    make: (pages: number, initial: number) => NativeExtentMap,
    promoteAt: number = PROMOTE_AT,
  ) {
    this.#ts = new TsExtentMap(pages, initial);
    this.#make = make;
    this.#promoteAt = promoteAt;
  }

  /** Which structure holds the extents now. */
  get backing(): 'ts' | 'native' {
    return this.#ts ? 'ts' : 'native';
  }

  get pages(): number {
    return this.#ts ? this.#ts.pages : this.#tree!.pages;
  }

  // Moves every extent into a native tree; the TypeScript map is dropped.
  #promote(ts: TsExtentMap): void {
    const runs = ts.query(0, ts.pages);
    const tree = this.#make(ts.pages, runs.length > 0 ? runs[2]! : 0);
    for (let i = 3; i < runs.length; i += 3) tree.assign(runs[i]!, runs[i + 1]!, runs[i + 2]!);
    this.#tree = tree;
    this.#ts = null;
  }

  assign(start: number | bigint, end: number | bigint, value: number): void {
    const ts = this.#ts;
    if (!ts) return this.#tree!.assign(start, end, value);
    ts.assign(start, end, value);
    if (ts.extentCount() > this.#promoteAt) this.#promote(ts);
  }

  add(start: number | bigint, end: number | bigint, delta: number): void {
    const ts = this.#ts;
    if (!ts) return this.#tree!.add(start, end, delta);
    ts.add(start, end, delta);
    if (ts.extentCount() > this.#promoteAt) this.#promote(ts);
  }

  resize(pages: number | bigint, fill: number): void {
    const ts = this.#ts;
    if (!ts) return this.#tree!.resize(pages, fill);
    ts.resize(pages, fill);
    if (ts.extentCount() > this.#promoteAt) this.#promote(ts);
  }

  query(start: number | bigint, end: number | bigint): Float64Array {
    return this.#ts ? this.#ts.query(start, end) : this.#tree!.query(start, end);
  }

  queryInto(start: number, end: number, out: Float64Array): number {
    return this.#ts ? this.#ts.queryInto(start, end, out) : this.#tree!.queryInto(start, end, out);
  }

  valueAt(page: number | bigint): number {
    return this.#ts ? this.#ts.valueAt(page) : this.#tree!.valueAt(page);
  }

  findFirst(start: number | bigint, end: number | bigint, value: number, equal: boolean): number {
    return this.#ts ? this.#ts.findFirst(start, end, value, equal) : this.#tree!.findFirst(start, end, value, equal);
  }

  extentCount(): number {
    return this.#ts ? this.#ts.extentCount() : this.#tree!.extentCount();
  }

  bytesUsed(): number {
    return this.#ts ? this.#ts.bytesUsed() : this.#tree!.bytesUsed();
  }

  checkInvariants(): string {
    return this.#ts ? this.#ts.checkInvariants() : this.#tree!.checkInvariants();
  }

  depth(): number {
    return this.#ts ? this.#ts.depth() : this.#tree!.depth();
  }
}
