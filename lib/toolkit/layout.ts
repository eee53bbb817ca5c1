// The guest builder's region: where its tables, exception stubs, program and stack sit, and the
// bytes of each. The region is identity-mapped (VA = GPA), so the addresses the tables hold are
// the region's gpa plus these offsets. Descriptor and page-table encodings that vm.guest's helper
// already runs on this host are imported from its layout (lib/kvm/guest-program.ts).
import {
  GDT_ENTRIES,
  GDT_LIMIT,
  GiB,
  LARGE,
  PTE_LARGE,
  PTE_TABLE,
  SEL,
  TSS_LIMIT,
  tssBytes,
} from '../kvm/guest-program.js';

export { SEL, LARGE, GiB };

// Offsets in the region. The page directories come last among the tables: one per GiB mapped.
export const PML4 = 0x0000;
export const PDPT = 0x1000; // up to 4 PDPTs (for regions above 512 GiB a second PML4 entry)
export const GDT = 0x5000;
export const IDT = 0x6000; // 64-bit gates (16 bytes each) or the real-mode IVT (4 bytes each)
export const TSS = 0x7000; // 0x68 bytes, then the I/O bitmap (every port allowed) and its closing 0xff
export const STUBS = 0xa000; // 32 exception stubs of STUB_SIZE bytes, then the common handler
export const STUB_SIZE = 16;
export const COMMON = STUBS + 32 * STUB_SIZE;
export const IST_TOP = 0x10000; // the exception stack (IST1; also RSP0 for a fault at CPL3): 0xc000..0x10000
export const PD = 0x10000; // page directories, one 4 KiB page per GiB identity-mapped
export const MAX_GIBS = 64;
export const CODE = 0x100000; // the program is loaded here (1 MiB into the region)
export const MIN_SIZE = 0x200000n; // tables, program and stack: at least one 2 MiB page

// Real mode: the region must lie below 1 MiB and the program in the same 64 KiB as its stack.
export const REAL_IVT = 0x0000; // 32 entries, 4 bytes each
export const REAL_STUBS = 0x0100; // 32 stubs of 8 bytes, then the common handler
export const REAL_STUB_SIZE = 8;
export const REAL_CODE = 0x1000;
export const REAL_MIN_SIZE = 0x2000n;

/** Ports the builder's guest code uses: the exception report and the ucall channel. */
export const EXCEPTION_PORT = 0x4b45; // 'KE'
export const UCALL_PORT = 0x4b55; // 'KU'

/** Vectors for which the CPU pushes an error code (Intel SDM vol. 3, table 6-1). */
export const ERROR_CODE_VECTORS = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export const VECTOR_NAMES = [
  'DE',
  'DB',
  'NMI',
  'BP',
  'OF',
  'BR',
  'UD',
  'NM',
  'DF',
  'CSO',
  'TS',
  'NP',
  'SS',
  'GP',
  'PF',
  'RESERVED15',
  'MF',
  'AC',
  'MC',
  'XM',
  'VE',
  'CP',
  'RESERVED22',
  'RESERVED23',
  'RESERVED24',
  'RESERVED25',
  'RESERVED26',
  'RESERVED27',
  'HV',
  'VC',
  'SX',
  'RESERVED31',
] as const;

function u64le(values: bigint[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64LE(v, i * 8));
  return b;
}

/**
 * Identity page tables for the GiBs in `gibs` (each a GiB's first address), 2 MiB pages (1 GiB
 * pages end in KVM_EXIT_SHUTDOWN on the PVM host: kernel-uapi.md §1). User-accessible, so the same
 * tables serve CPL 0 and 3. Returns [offset in the region, bytes] pieces.
 */
export function pageTables(base: bigint, gibs: bigint[]): [number, Buffer][] {
  if (gibs.length > MAX_GIBS)
    throw new RangeError(`at most ${MAX_GIBS} GiB can be identity-mapped, got ${gibs.length}`);
  const out: [number, Buffer][] = [];
  const pml4 = new Array<bigint>(512).fill(0n);
  const pdpts = new Map<number, bigint[]>(); // PML4 index -> its PDPT entries
  gibs.forEach((gib, i) => {
    const pd = PD + i * 0x1000;
    const pdes: bigint[] = [];
    for (let j = 0n; j < 512n; j++) pdes.push((gib + j * LARGE) | PTE_LARGE);
    out.push([pd, u64le(pdes)]);
    const l4 = Number(gib >> 39n);
    let pdpt = pdpts.get(l4);
    if (!pdpt) {
      if (pdpts.size === 4) throw new RangeError('the identity map may span at most four 512 GiB ranges');
      pdpt = new Array<bigint>(512).fill(0n);
      pdpts.set(l4, pdpt);
      pml4[l4] = (base + BigInt(PDPT + (pdpts.size - 1) * 0x1000)) | PTE_TABLE;
    }
    pdpt[Number((gib >> 30n) & 511n)] = (base + BigInt(pd)) | PTE_TABLE;
  });
  out.push([PML4, u64le(pml4)]);
  [...pdpts.values()].forEach((p, i) => out.push([PDPT + i * 0x1000, u64le(p)]));
  return out;
}

/** The GDT: vm.guest's helper's code and data descriptors, with a TSS descriptor for this region. */
export function gdtBytes(base: bigint): Buffer {
  const tss = base + BigInt(TSS);
  const low =
    BigInt(TSS_LIMIT & 0xffff) |
    ((tss & 0xffffffn) << 16n) |
    (0x8bn << 40n) | // present, busy 64-bit TSS
    (BigInt((TSS_LIMIT >> 16) & 0xf) << 48n) |
    (((tss >> 24n) & 0xffn) << 56n);
  const entries = [...GDT_ENTRIES];
  entries[SEL.tss / 8] = low;
  entries[SEL.tss / 8 + 1] = tss >> 32n;
  return u64le(entries);
}

/** The TSS: RSP0 and IST1 both at the exception stack; the I/O bitmap lets `out` through at CPL3. */
export function tss(base: bigint): Buffer {
  const b = tssBytes();
  b.writeBigUInt64LE(base + BigInt(IST_TOP), 0x04); // rsp0
  b.writeBigUInt64LE(base + BigInt(IST_TOP), 0x24); // ist1
  return b;
}
export { GDT_LIMIT, TSS_LIMIT };

/** 32 interrupt gates (DPL 3, so `int3` at CPL3 reports vector 3), each to its stub on IST1. */
export function idtBytes(base: bigint): Buffer {
  const b = Buffer.alloc(32 * 16);
  for (let v = 0; v < 32; v++) {
    const at = base + BigInt(STUBS + v * STUB_SIZE);
    b.writeUInt16LE(Number(at & 0xffffn), v * 16);
    b.writeUInt16LE(SEL.code0, v * 16 + 2);
    b[v * 16 + 4] = 1; // IST1
    b[v * 16 + 5] = 0xee; // present, DPL 3, 64-bit interrupt gate
    b.writeUInt16LE(Number((at >> 16n) & 0xffffn), v * 16 + 6);
    b.writeUInt32LE(Number(at >> 32n), v * 16 + 8);
  }
  return b;
}

const lo = EXCEPTION_PORT & 0xff;
const hi = EXCEPTION_PORT >> 8;

/**
 * Each stub pushes a zero error code where the CPU pushes none, then its vector, and jumps to the
 * common handler, which saves rax and rdx and reports through EXCEPTION_PORT (then halts). The
 * host reads the frame from the top of the exception stack: rdx, rax, vector, error code, rip,
 * cs, rflags, rsp, ss.
 */
export function stubBytes(): Buffer {
  const b = Buffer.alloc(32 * STUB_SIZE + 16, 0xcc);
  for (let v = 0; v < 32; v++) {
    const at = v * STUB_SIZE;
    const code = ERROR_CODE_VECTORS.has(v) ? [0x6a, v] : [0x6a, 0x00, 0x6a, v]; // push 0; push v
    const rel = COMMON - (STUBS + at + code.length + 5);
    const jmp = Buffer.alloc(5);
    jmp[0] = 0xe9; // jmp rel32
    jmp.writeInt32LE(rel, 1);
    Buffer.from([...code, ...jmp]).copy(b, at);
  }
  Buffer.from([
    0x50, //                 push rax
    0x52, //                 push rdx
    0x66,
    0xba,
    lo,
    hi, //   mov dx, EXCEPTION_PORT
    0xee, //                 out dx, al
    0xf4, //                 hlt
    0xeb,
    0xfd, //           jmp hlt
  ]).copy(b, 32 * STUB_SIZE);
  return b;
}
/** Bytes of the frame the common handler leaves below IST_TOP: nine qwords. */
export const FRAME_BYTES = 9 * 8;

/** Real mode: IVT entries (segment:offset) to 8-byte stubs, which push the vector and report. */
export function realIvtBytes(base: bigint): Buffer {
  const b = Buffer.alloc(32 * 4);
  const seg = Number((base + BigInt(REAL_STUBS)) >> 4n);
  for (let v = 0; v < 32; v++) {
    b.writeUInt16LE(v * REAL_STUB_SIZE, v * 4);
    b.writeUInt16LE(seg, v * 4 + 2);
  }
  return b;
}

/** Real mode stubs: push the vector, jump to the common handler (push ax, dx; out; hlt). */
export function realStubBytes(): Buffer {
  const common = 32 * REAL_STUB_SIZE;
  const b = Buffer.alloc(common + 16, 0xcc);
  for (let v = 0; v < 32; v++) {
    const at = v * REAL_STUB_SIZE;
    const rel = common - (at + 5);
    b[at] = 0x6a; // push imm8
    b[at + 1] = v;
    b[at + 2] = 0xe9; // jmp rel16
    b.writeInt16LE(rel, at + 3);
  }
  Buffer.from([0x50, 0x52, 0xba, lo, hi, 0xee, 0xf4, 0xeb, 0xfd]).copy(b, common);
  return b;
}
/** Real mode frame at ss:sp when the handler reports: dx, ax, vector, ip, cs, flags (16 bits each). */
export const REAL_FRAME_BYTES = 6 * 2;
