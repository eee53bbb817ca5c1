// Counting what the process holds, to show nothing leaks.
import { readdirSync, readFileSync } from 'node:fs';

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function mapsLines(): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').length;
}

/** Lines of /proc/self/maps that map a guest_memfd (other lines move with the allocators). */
export function gmemMaps(): string[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('[kvm-gmem]'));
}

/** Lines of /proc/self/maps covering exactly this address range ("start-end"). */
export function mapsAt(range: string): string[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[0] === range);
}
