// vm.guest's helper guest: the layout of its region, its two programs and the descriptor and page
// tables they run under. The region is mapped at VA 0 by its own page tables, so an offset in it
// is also the address the programs use.
//
// Two programs. At CPL0 PVM emulates every instruction (about 1.25 us per qword of `rep movsq`),
// but its emulator reads guest memory the way the slot's userspace memory shows it, and a page
// the guest may not map ends in an MMIO exit: the probe-then-copy program runs there. At CPL3 the
// guest runs natively (a copy at GB/s), and a guest_memfd page is reached through the file
// whatever its state: the plain copy program runs there, only over ranges checked beforehand.

import type { Sregs } from '../types.js';

const MiB = 1n << 20n;
export const GiB = 1n << 30n;
export const PAGE = 4096n;
export const LARGE = 2n * MiB;
export const CHUNK = 2n * MiB;

// Read-only part: [0, RO_SIZE): code, abort flag, GDT and TSS, which no guest may change.
export const FLAG = 0x800; // abort flag of the CPL0 program, set by the host on an MMIO exit: read-only to the guest
export const PROG0 = 0x000;
export const PROG3 = 0x100;
export const GDT = 0x1000;
export const TSS = 0x2000; // 0x68 bytes, then an I/O bitmap of every port
const IO_BITMAP_BYTES = 0x2000;
export const TSS_LIMIT = 0x68 + IO_BITMAP_BYTES; // the bitmap and its closing 0xff byte
export const RO_SIZE = 0x5000n;
// Writable part: [RO_SIZE, REGION_SIZE). The page tables first, [TABLES, TABLES_END): they cannot be
// read-only to the guest. With nested paging the walk of a guest's own page tables counts as a write
// at the nested level (AMD NPT; Intel EPT with accessed/dirty flags), so tables in a
// KVM_MEM_READONLY slot make every access a nested fault that KVM answers by emulating the
// instruction, and KVM's emulator reaches a slot only through its userspace address: a gmem-only
// slot's pages became MMIO exits. Measured on the rig (Debian 7.3.4, kvm_amd under QEMU TCG): a
// read of a gmem-only slot faulted with the tables read-only and returned the file's bytes with them
// writable. PVM's shadow paging (this host) walks them as reads, so it never showed. The host keeps
// its own image of them and checks it around every run (guest.ts): a user vCPU's write there is
// undone before the helper runs, and a run that ends with them changed is thrown away.
export const TABLES = 0x5000;
export const PML4 = 0x5000;
export const PDPT = 0x6000;
export const PD_LOW = 0x7000; // VA 0..1 GiB: the region itself
export const PD_WIN = 0x8000; // VA 1..2 GiB: the CPL0 program's window, two 2 MiB pages
export const FAST_PD = 0x9000; // one page directory per CPL3 window
export const FAST_WINDOWS = 7;
export const TABLES_END = FAST_PD + FAST_WINDOWS * 0x1000;
export const ARGS = 0x10100; // the CPL3 program's arguments: source, destination, length / 8, length % 8
export const BOUNCE = 0x11000n; // two bounce buffers of CHUNK bytes: the host empties one while the guest fills the other
export const REGION_SIZE = BOUNCE + 2n * CHUNK;
export const REGION_ALIGN = LARGE; // PD_LOW maps the region with 2 MiB pages

export const WINDOW_VA = 1n << 30n;
/** The VA of CPL3 window w: a whole GiB of guest-physical memory, 2 MiB pages. */
export const fastVa = (w: number): bigint => (2n + BigInt(w)) * GiB;

export const PORT = 0x4b47; // 'KG'

// User-accessible (the CPL3 program needs them; the CPL0 one has no SMEP/SMAP to mind), and
// accessed/dirty preset, so a walk never needs to write them.
export const PTE_LARGE = 0xe7n; // present | writable | user | accessed | dirty | 2 MiB page
export const PTE_TABLE = 0x27n; // present | writable | user | accessed

// GDT: 0x08/0x10 code and data at DPL 0, 0x18 the TSS (two entries), 0x2b/0x33 code and data at DPL 3.
export const SEL = { code0: 0x08, data0: 0x10, tss: 0x18, code3: 0x2b, data3: 0x33 } as const;
export const GDT_LIMIT = 7 * 8 - 1;
const tssLow = BigInt(TSS_LIMIT & 0xffff) | (BigInt(TSS) << 16n) | (0x8bn << 40n); // present, busy 64-bit TSS
export const GDT_ENTRIES = [
  0n,
  0x00af9b000000ffffn, // present, DPL 0, execute/read, long mode (accessed preset)
  0x00cf93000000ffffn, // present, DPL 0, read/write, 4 GiB
  tssLow,
  0n, // TSS base bits 32..63
  0x00affb000000ffffn, // as 0x08 at DPL 3
  0x00cff3000000ffffn, // as 0x10 at DPL 3
];
/** The TSS: I/O map base at 0x66; the bitmap (zero: every port allowed) ends with 0xff. */
export function tssBytes(): Buffer {
  const b = Buffer.alloc(TSS_LIMIT + 1);
  b.writeUInt16LE(0x68, 0x66);
  b[TSS_LIMIT] = 0xff;
  return b;
}
/** Flat 4 GiB segments for 64-bit code at `cpl`, with the selectors of GDT_ENTRIES (SEL). */
export function flatSegments(cpl: 0 | 3): Pick<Sregs, 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss'> {
  const seg = { base: 0n, limit: 0xffffffff, present: 1, dpl: cpl, s: 1, g: 1, avl: 0, unusable: 0 };
  const data = { ...seg, selector: cpl === 3 ? SEL.data3 : SEL.data0, type: 3, db: 1, l: 0 };
  const cs = { ...seg, selector: cpl === 3 ? SEL.code3 : SEL.code0, type: 11, db: 0, l: 1 };
  return { cs, ds: data, es: data, fs: data, gs: data, ss: data };
}

/**
 * 64-bit mode with PAE paging straight away: the busy TSS at `tss` as TR, the GDT of GDT_ENTRIES
 * at `gdt`, the IDT given, CR0 PG|PE (and AM, WP, NE, ET, MP), CR4 PAE, EFER LMA|LME, and `cr3`.
 */
export function longModeSystem(o: {
  tss: bigint;
  gdt: bigint;
  idt: { base: bigint; limit: number };
  cr3: bigint;
}): Pick<Sregs, 'tr' | 'gdt' | 'idt' | 'cr0' | 'cr3' | 'cr4' | 'efer'> {
  return {
    tr: {
      base: o.tss,
      limit: TSS_LIMIT,
      selector: SEL.tss,
      type: 11,
      present: 1,
      dpl: 0,
      db: 0,
      s: 0,
      l: 0,
      g: 0,
      avl: 0,
      unusable: 0,
    },
    gdt: { base: o.gdt, limit: GDT_LIMIT },
    idt: o.idt,
    cr0: 0x80050033n, // PG | AM | WP | NE | ET | MP | PE
    cr3: o.cr3,
    cr4: 0x20n, // PAE
    efer: 0x500n, // LMA | LME
  };
}

// rflags: bit 1, and IOPL 3 so `out` needs no privilege (PVM checks the bitmap as well).
export const RFLAGS0 = 2n;
export const RFLAGS3 = 0x3002n;

const lo = PORT & 0xff;
const hi = PORT >> 8;
// CPL0. Args: rdx = window VA of the first page to probe, r8 = pages to probe, r9 = VA of the
// abort flag, rsi/rdi = copy source and destination, rcx = length / 8, r10 = length % 8.
// Status in al: 0 done, 1 aborted.
export const PROGRAM0 = Buffer.from([
  0x0f,
  0x20,
  0xd8, //             0x00 mov rax, cr3
  0x0f,
  0x22,
  0xd8, //             0x03 mov cr3, rax        ; drop the old window's TLB entries
  0x4d,
  0x85,
  0xc0, //             0x06 probe: test r8, r8
  0x74,
  0x14, //                   0x09 jz copy (0x1f)
  0x8a,
  0x02, //                   0x0b mov al, [rdx]       ; touch one byte of the page
  0x41,
  0x80,
  0x39,
  0x00, //       0x0d cmp byte [r9], 0    ; did the host flag a fault?
  0x75,
  0x1c, //                   0x11 jne abort (0x2f)
  0x48,
  0x81,
  0xc2,
  0x00,
  0x10,
  0x00,
  0x00, // 0x13 add rdx, 4096
  0x49,
  0xff,
  0xc8, //             0x1a dec r8
  0xeb,
  0xe7, //                   0x1d jmp probe (0x06)
  0xf3,
  0x48,
  0xa5, //             0x1f copy: rep movsq
  0x4c,
  0x89,
  0xd1, //             0x22 mov rcx, r10
  0xf3,
  0xa4, //                   0x25 rep movsb
  0xb0,
  0x00, //                   0x27 mov al, 0           ; status: done
  0x66,
  0xba,
  lo,
  hi, //           0x29 mov dx, PORT
  0xee, //                         0x2d out dx, al
  0xf4, //                         0x2e hlt
  0xb0,
  0x01, //                   0x2f abort: mov al, 1     ; status: aborted
  0x66,
  0xba,
  lo,
  hi, //           0x31 mov dx, PORT
  0xee, //                         0x35 out dx, al
  0xf4, //                         0x36 hlt
]);
// CPL3. Args in memory at ARGS (no KVM_SET_REGS per chunk: the host writes them and resumes the
// vCPU after its `out`). No mov cr3 (privileged) and no hlt: after reporting it loops to the top.
const args = [ARGS & 0xff, (ARGS >> 8) & 0xff, (ARGS >> 16) & 0xff, ARGS >>> 24];
const arg = (i: number) => {
  const a = ARGS + 8 * i;
  return [a & 0xff, (a >> 8) & 0xff, (a >> 16) & 0xff, a >>> 24];
};
export const PROGRAM3 = Buffer.from([
  0x48,
  0x8b,
  0x34,
  0x25,
  ...args, // 0x00 start: mov rsi, [ARGS]
  0x48,
  0x8b,
  0x3c,
  0x25,
  ...arg(1), // 0x08 mov rdi, [ARGS + 8]
  0x48,
  0x8b,
  0x0c,
  0x25,
  ...arg(2), // 0x10 mov rcx, [ARGS + 16]
  0x4c,
  0x8b,
  0x14,
  0x25,
  ...arg(3), // 0x18 mov r10, [ARGS + 24]
  0xf3,
  0x48,
  0xa5, //             0x20 rep movsq
  0x4c,
  0x89,
  0xd1, //             0x23 mov rcx, r10
  0xf3,
  0xa4, //                   0x26 rep movsb
  0xb0,
  0x00, //                   0x28 mov al, 0           ; status: done
  0x66,
  0xba,
  lo,
  hi, //           0x2a mov dx, PORT
  0xee, //                         0x2e out dx, al
  0xeb,
  0xcf, //                   0x2f jmp start (0x00)
]);

export function u64le(values: bigint[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64LE(v, i * 8));
  return b;
}
