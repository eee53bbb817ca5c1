// The closed state and the close cascade every core object shares, written once. close() is
// idempotent and is what [Symbol.dispose] calls: it marks the object closed, lets it tear down
// (its children first, then its port), and tells its owner. markClosed() is the owner closing it:
// the same teardown, without telling the owner, which is already dropping its children.
export abstract class Owned {
  #closed = false;

  constructor(private readonly onClose?: (self: never) => void) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Frees what this object holds: its children, then its port. Runs once, whoever closes. */
  protected abstract teardown(): void;

  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.teardown();
  }

  close(): void {
    if (this.#closed) return;
    this.markClosed();
    (this.onClose as ((self: this) => void) | undefined)?.(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
