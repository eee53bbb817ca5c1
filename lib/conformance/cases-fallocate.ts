// fallocate: allocate and punch, aligned and not, at and past EOF, and lengths that overflow.
import { attempt, withVm, type Case } from './case.js';
import type { GuestMemfd } from '../types.js';
import { PAGE, hostMappable } from './features.js';

const group = 'fallocate' as const;
const SIZE = 4 * PAGE;

function onFile(title: string, id: string, body: (g: GuestMemfd) => Promise<unknown>): Case {
  return {
    id,
    group,
    title,
    run: (kvm) => withVm(kvm, (vm) => body(vm.createGuestMemfd({ size: SIZE, ...hostMappable(vm) }))),
  };
}

export const fallocateCases: Case[] = [
  onFile('allocating aligned ranges, the whole file included, works', 'falloc.aligned', async (g) => ({
    first: await attempt(() => g.allocate(0, PAGE)),
    whole: await attempt(() => g.allocate(0, SIZE)),
    last: await attempt(() => g.allocate(SIZE - PAGE, PAGE)),
  })),
  onFile('allocating with an unaligned offset or length fails', 'falloc.unaligned', async (g) => ({
    offset: await attempt(() => g.allocate(1, PAGE)),
    length: await attempt(() => g.allocate(0, PAGE - 1)),
    both: await attempt(() => g.allocate(PAGE / 2, PAGE / 2)),
  })),
  onFile('allocating at or after EOF, or across it, fails', 'falloc.allocate-eof', async (g) => ({
    atEof: await attempt(() => g.allocate(SIZE, PAGE)),
    pastEof: await attempt(() => g.allocate(SIZE + 4 * PAGE, PAGE)),
    acrossEof: await attempt(() => g.allocate(SIZE - PAGE, 2 * PAGE)),
  })),
  onFile('punching at or after EOF works', 'falloc.punch-eof', async (g) => ({
    atEof: await attempt(() => g.punchHole(SIZE, PAGE)),
    pastEof: await attempt(() => g.punchHole(SIZE + 4 * PAGE, PAGE)),
    acrossEof: await attempt(() => g.punchHole(SIZE - PAGE, 2 * PAGE)),
  })),
  onFile('ten unaligned punches each fail', 'falloc.punch-unaligned', async (g) => {
    const seen = [];
    for (let i = 1; i <= 10; i++) seen.push(await attempt(() => g.punchHole(i * 37, PAGE)));
    return seen;
  }),
  onFile('a zero length is refused for allocate and punch', 'falloc.zero-length', async (g) => ({
    allocate: await attempt(() => g.allocate(0, 0)),
    punch: await attempt(() => g.punchHole(0, 0)),
  })),
  onFile('offset + length beyond the largest file offset is refused', 'falloc.overflow', async (g) => ({
    allocate: await attempt(() => g.allocate(1n << 62n, 1n << 62n)),
    punch: await attempt(() => g.punchHole(1n << 62n, 1n << 62n)),
    allocateMax: await attempt(() => g.allocate((1n << 63n) - BigInt(PAGE), BigInt(PAGE))),
  })),
  onFile('offsets of 2^63 and above are RangeErrors before any syscall', 'falloc.range', async (g) => ({
    allocate: await attempt(() => g.allocate(1n << 63n, PAGE)),
    punch: await attempt(() => g.punchHole(0, 1n << 63n)),
    negative: await attempt(() => g.allocate(-PAGE, PAGE)),
  })),
  onFile('punching a hole that was never allocated works and reads zero', 'falloc.punch-unallocated', async (g) => {
    const m = g.map();
    return { punch: await attempt(() => g.punchHole(PAGE, 2 * PAGE)), bytes: await attempt(() => m.read(0, SIZE)) };
  }),
  onFile('allocate does not change contents already written', 'falloc.allocate-keeps-data', async (g) => {
    const m = g.map();
    m.fill(0, PAGE, 0x77);
    return { allocate: await attempt(() => g.allocate(0, SIZE)), bytes: await attempt(() => m.read(0, 2 * PAGE)) };
  }),
  {
    id: 'falloc.1tib-far-end',
    group,
    title: 'allocating and punching the last page of a 1 TiB file works',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const size = 2 ** 40;
        const g = vm.createGuestMemfd({ size, ...hostMappable(vm) });
        const m = g.map(size - PAGE, PAGE);
        return {
          allocate: await attempt(() => g.allocate(size - PAGE, PAGE)),
          write: await attempt(() => m.fill(0, PAGE, 0xee)),
          before: await attempt(() => m.read(0, PAGE)),
          punch: await attempt(() => g.punchHole(size - PAGE, PAGE)),
          after: await attempt(() => m.read(0, PAGE)),
        };
      }),
  },
];
