// `using` on every object, whichever symbol the caller's realm disposes with. Node 20 defines
// Symbol.dispose as the registered Symbol.for('nodejs.dispose'); a vm context (vitest's vmThreads
// pool) has no Symbol.dispose, so a class method keyed [Symbol.dispose] evaluated there is named
// "undefined", and esbuild's `using` helper looks for Symbol.for('Symbol.dispose') instead.
// Each class gets its dispose method under all three keys.
import { HostHold } from './core/hold.js';
import { Owned } from './core/owned.js';
import { Guest } from './toolkit/builder.js';

export const DISPOSE_KEYS: readonly symbol[] = [
  ...((Symbol as { dispose?: symbol }).dispose ? [(Symbol as { dispose?: symbol }).dispose!] : []),
  Symbol.for('nodejs.dispose'),
  Symbol.for('Symbol.dispose'),
];

/** Every class with a dispose method, and the method it calls (test/unit/vm-dispose.test.ts checks the list is whole). */
export const DISPOSABLE: [{ prototype: object; name: string }, string][] = [
  // Kvm, Vm, GuestMemfd, Mapping and Vcpu inherit theirs (lib/core/owned.ts).
  [Owned, 'close'],
  [HostHold, 'release'],
  [Guest, 'close'],
];

for (const [cls, method] of DISPOSABLE) {
  const proto = cls.prototype as Record<string | symbol, unknown>;
  const dispose = function (this: Record<string, () => void>): void {
    this[method]!();
  };
  for (const key of DISPOSE_KEYS) {
    if (typeof proto[key] !== 'function')
      Object.defineProperty(proto, key, { value: dispose, writable: true, configurable: true });
  }
}
