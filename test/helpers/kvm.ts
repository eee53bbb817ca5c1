// Real-kernel tests run only where /dev/kvm opens; elsewhere they skip and say why.
import { openSync, closeSync } from 'node:fs';
import { describe } from 'vitest';

function check(): string | null {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export const kvmSkipReason: string | null = check();
export const kvmAvailable = kvmSkipReason === null;

if (!kvmAvailable) {
  console.warn(`[kvm-gmem tests] skipping real-kernel tests: /dev/kvm is not usable here (${kvmSkipReason})`);
}

/** describe() that runs only with a usable /dev/kvm, printing the reason when it skips. */
export function describeKvm(name: string, fn: () => void): void {
  describe.skipIf(!kvmAvailable)(`${name}${kvmAvailable ? '' : ` [skipped: /dev/kvm unusable: ${kvmSkipReason}]`}`, fn);
}
