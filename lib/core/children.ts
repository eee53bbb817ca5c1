// The open children of an object, held weakly: a child the user dropped without close() must stay
// collectable so its native finalizer closes the fd (the child holds its owner, never the reverse).
export class Children<T extends object> {
  #refs = new Set<WeakRef<T>>();
  #byChild = new WeakMap<T, WeakRef<T>>();
  #gone = new FinalizationRegistry<WeakRef<T>>((r) => this.#refs.delete(r));

  add(child: T): void {
    const r = new WeakRef(child);
    this.#refs.add(r);
    this.#byChild.set(child, r);
    this.#gone.register(child, r, r);
  }

  delete(child: T): void {
    const r = this.#byChild.get(child);
    if (!r) return;
    this.#refs.delete(r);
    this.#byChild.delete(child);
    this.#gone.unregister(r);
  }

  /** The children still alive; the set is emptied. */
  drain(): T[] {
    const out: T[] = [];
    for (const r of this.#refs) {
      const c = r.deref();
      if (c) {
        out.push(c);
        this.#byChild.delete(c);
      }
      this.#gone.unregister(r);
    }
    this.#refs.clear();
    return out;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const r of this.#refs) {
      const c = r.deref();
      if (c) yield c;
    }
  }

  get size(): number {
    return this.#refs.size;
  }
}
