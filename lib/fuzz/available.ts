// Whether the real kernel can be opened: the fuzzer compares against it, so without it there is
// nothing to fuzz (the reason is returned so callers can say why they skipped).
import { openSync, closeSync } from 'node:fs';

export function kvmAvailable(path = '/dev/kvm'): string | null {
  try {
    closeSync(openSync(path, 'r+'));
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
