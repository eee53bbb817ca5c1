// Real-kernel tests run only where /dev/kvm opens; elsewhere they skip and say why.
import { openSync, closeSync } from 'node:fs';
import { describe } from 'vitest';
import { open } from '../../lib/index.js';
import type { Kvm } from '../../lib/index.js';
import { hostProfile } from '../../lib/probe.js';

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

/**
 * A scenario run on the real kernel, then on the simulator profile verified for it (the host's;
 * 'linux-6.18' where none is): each kernel is held to its own model's answer.
 */
export async function onKernelAndProfile<T>(kvm: Kvm, scenario: (k: Kvm) => Promise<T>): Promise<{ got: T; want: T }> {
  const sim = open({ backend: 'sim', profile: hostProfile() ?? 'linux-6.18' });
  try {
    return { got: await scenario(kvm), want: await scenario(sim) };
  } finally {
    sim.close();
  }
}
