// The kernel's commit charge for a private writable mapping (mmap_region -> __vm_enough_memory),
// which mmap checks before the file's own mmap handler runs. Its answer depends on the host, as
// the real kernel's does: with the default heuristic (vm.overcommit_memory = 0) one mapping larger
// than RAM + swap is refused with ENOMEM; mode 1 never refuses; mode 2 refuses past CommitLimit.
import { readFileSync } from 'node:fs';
import os from 'node:os';

interface Commit {
  mode: number;
  ramAndSwap: bigint;
  available: bigint;
}

let cached: Commit | undefined;

function readCommit(): Commit {
  let mode = 0;
  const kb: Record<string, bigint> = {};
  try {
    mode = Number(readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim());
    for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) kb[m[1]!] = BigInt(m[2]!) * 1024n;
    }
  } catch {
    // No procfs: the heuristic over the RAM Node reports.
  }
  const ram = kb.MemTotal ?? BigInt(os.totalmem());
  const ramAndSwap = ram + (kb.SwapTotal ?? 0n);
  const available = (kb.CommitLimit ?? ramAndSwap) - (kb.Committed_AS ?? 0n);
  return { mode, ramAndSwap, available };
}

/** Whether a private writable mapping of `bytes` (page-rounded) is refused its commit charge. */
export function privateCommitRefused(bytes: bigint): boolean {
  cached ??= readCommit();
  if (cached.mode === 1) return false;
  if (cached.mode === 2) return bytes > cached.available;
  return bytes > cached.ramAndSwap;
}
