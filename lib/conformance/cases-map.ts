// mapping and SIGBUS: mmap of a guest_memfd, what the host may touch, and what it reads back.
import { attempt, withVm, type Case } from './case.js';
import { PAGE, hostMappable } from './features.js';

const group = 'mapping and SIGBUS' as const;

export const mapCases: Case[] = [
  {
    id: 'map.without-mmap-flag',
    group,
    title: 'mmap of a file created without MMAP fails (flags 0 and INIT_SHARED alone)',
    run: (kvm) =>
      withVm(kvm, async (vm) => ({
        none: await attempt(() => vm.createGuestMemfd({ size: PAGE }).map()),
        initSharedOnly: await attempt(() => vm.createGuestMemfd({ size: PAGE, initShared: true }).map()),
      })),
  },
  {
    id: 'map.private',
    group,
    title: 'MAP_PRIVATE of a guest_memfd is refused',
    run: (kvm) =>
      withVm(kvm, (vm) =>
        attempt(() => vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) }).map(0, PAGE, { private: true })),
      ),
  },
  {
    id: 'map.unaligned-offset',
    group,
    title: 'a mapping at an offset that is not a page multiple is refused',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(vm) });
        return {
          off100: await attempt(() => g.map(100, PAGE)),
          offPageMinus1: await attempt(() => g.map(PAGE - 1, PAGE)),
        };
      }),
  },
  {
    id: 'map.zero-length',
    group,
    title: 'a mapping of length 0 is refused',
    run: (kvm) =>
      withVm(kvm, (vm) => attempt(() => vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) }).map(0, 0))),
  },
  {
    id: 'map.fresh-reads-zero',
    group,
    title: 'a fresh shared file reads as zero',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const m = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) }).map();
        return { length: m.length, offset: m.offset, bytes: await attempt(() => m.read(0, 4 * PAGE)) };
      }),
  },
  {
    id: 'map.write-read-back',
    group,
    title: 'bytes written through one mapping read back through it and through a second mapping',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
        const a = g.map();
        const b = g.map(PAGE, 2 * PAGE);
        a.fill(0, 4 * PAGE, 0xaa);
        a.write(PAGE + 10, Buffer.from('guest_memfd'));
        b.fill(PAGE, 16, 0x55);
        return {
          a: await attempt(() => a.read(0, 4 * PAGE)),
          b: await attempt(() => b.read(0, 2 * PAGE)),
          text: await attempt(() => a.read(PAGE + 10, 11).toString('latin1')),
        };
      }),
  },
  {
    id: 'map.punch-hole-zeroes',
    group,
    title: 'punching page 0 reads back zero there and leaves the rest intact',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, ...hostMappable(vm) });
        const m = g.map();
        m.fill(0, 4 * PAGE, 0xaa);
        return { punch: await attempt(() => g.punchHole(0, PAGE)), bytes: await attempt(() => m.read(0, 4 * PAGE)) };
      }),
  },
  {
    id: 'map.private-file-sigbus',
    group,
    title: 'with MMAP but not INIT_SHARED every host access gives SIGBUS at the first byte touched',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 4 * PAGE, mmap: true });
        const m = g.map();
        return {
          read0: await attempt(() => m.read(0, 16)),
          write: await attempt(() => m.write(PAGE + 10, Buffer.alloc(8, 1))),
          fill: await attempt(() => m.fill(3 * PAGE + 4095, 1, 7)),
          offsetMapping: await attempt(() => g.map(2 * PAGE, PAGE).read(100, 1)),
        };
      }),
  },
  {
    id: 'map.beyond-eof-sigbus',
    group,
    title: 'a mapping 4x the file: inside the file works, beyond EOF SIGBUS at the exact offset',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(vm) });
        const m = g.map(0, 8 * PAGE);
        return {
          inside: await attempt(() => m.fill(0, 2 * PAGE, 0x11)),
          insideRead: await attempt(() => m.read(0, 2 * PAGE)),
          atEof: await attempt(() => m.read(2 * PAGE, 1)),
          spanning: await attempt(() => m.read(2 * PAGE - 100, 300)),
          writeFar: await attempt(() => m.write(7 * PAGE + 5, Buffer.alloc(3))),
        };
      }),
  },
  {
    id: 'map.offset-beyond-file',
    group,
    title: 'a mapping that starts past EOF is made, and its first touch SIGBUS',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(vm) });
        let m: ReturnType<typeof g.map> | undefined;
        const made = await attempt(() => {
          m = g.map(4 * PAGE, PAGE);
          return { offset: m.offset, length: m.length };
        });
        return { made, read: m ? await attempt(() => m!.read(0, 1)) : null };
      }),
  },
  {
    id: 'map.offset-mapping-sees-file',
    group,
    title: 'a mapping at offset 1 page sees what a whole-file mapping wrote there',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: 3 * PAGE, ...hostMappable(vm) });
        const whole = g.map();
        whole.fill(PAGE, PAGE, 0x3c);
        whole.fill(2 * PAGE, PAGE, 0xc3);
        const part = g.map(PAGE, PAGE);
        return { offset: part.offset, bytes: await attempt(() => part.read(0, PAGE)) };
      }),
  },
  {
    id: 'map.range-outside-mapping',
    group,
    title: 'reads and writes outside the mapping are RangeErrors, before any access',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const m = vm.createGuestMemfd({ size: 2 * PAGE, ...hostMappable(vm) }).map(0, PAGE);
        return {
          read: await attempt(() => m.read(PAGE - 1, 2)),
          write: await attempt(() => m.write(PAGE, Buffer.alloc(1))),
          fill: await attempt(() => m.fill(0, PAGE + 1, 0)),
          negative: await attempt(() => m.read(-1, 1)),
        };
      }),
  },
  {
    id: 'map.after-unmap',
    group,
    title: 'an unmapped mapping refuses access with ClosedError; unmap is idempotent',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const m = vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) }).map();
        m.unmap();
        return { closed: m.closed, read: await attempt(() => m.read(0, 1)), again: await attempt(() => m.unmap()) };
      }),
  },
  {
    id: 'map.file-closed',
    group,
    title: 'closing the file closes its mappings',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const g = vm.createGuestMemfd({ size: PAGE, ...hostMappable(vm) });
        const m = g.map();
        g.close();
        return { closed: m.closed, read: await attempt(() => m.read(0, 1)), map: await attempt(() => g.map()) };
      }),
  },
  {
    id: 'map.private-over-ram',
    group,
    title: 'a MAP_PRIVATE mapping larger than RAM + swap is ENOMEM (the commit charge) before the file refuses it',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const huge = 2 ** 40;
        const plain = vm.createGuestMemfd({ size: huge });
        const mappable = vm.createGuestMemfd({ size: huge, ...hostMappable(vm) });
        return {
          hugeNoMmap: await attempt(() => plain.map(0, huge, { private: true })),
          hugeMmap: await attempt(() => mappable.map(0, huge, { private: true })),
          smallNoMmap: await attempt(() => plain.map(0, PAGE, { private: true })),
          smallMmap: await attempt(() => mappable.map(0, PAGE, { private: true })),
        };
      }),
  },
  {
    id: 'map.read-past-buffer-closed',
    group,
    title: 'a read longer than any Buffer is RangeError on an open mapping, ClosedError on an unmapped one',
    run: (kvm) =>
      withVm(kvm, async (vm) => {
        const m = vm.createGuestMemfd({ size: 2 ** 40, ...hostMappable(vm) }).map();
        const open = await attempt(() => m.read(0, 2 ** 33));
        m.unmap();
        return {
          open,
          unmapped: await attempt(() => m.read(0, 2 ** 33)),
          badOffset: await attempt(() => m.read('0' as never, 2 ** 33)),
        };
      }),
  },
];
