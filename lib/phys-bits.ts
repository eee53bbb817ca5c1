// The guest's physical address width. KVM gives a guest the host's MAXPHYADDR (CPUID 0x80000008),
// which /proc/cpuinfo shows as "address sizes : N bits physical". A memory slot may lie above it
// (the kernel accepts slots up to 2^52), but no guest can address those bytes. 52 bits, the
// architectural maximum, where the file cannot be read.
import { readFileSync } from 'node:fs';

let limit: bigint | undefined;

/** The first guest physical address no guest on this host can reach. */
export function guestPhysLimit(): bigint {
  if (limit === undefined) {
    let bits = 52;
    try {
      const m = /address sizes\s*:\s*(\d+) bits physical/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
      if (m) bits = Number(m[1]);
    } catch {
      // not Linux, or no procfs
    }
    limit = 1n << BigInt(bits);
  }
  return limit;
}
