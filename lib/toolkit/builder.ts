// The guest builder: a program put into a VM, in real mode or 64-bit mode at CPL 0 or 3, in one
// memory slot of the caller's choosing (its id, gpa and size; guest_memfd or plain userspace
// memory), with its page tables, GDT, IDT, TSS and stacks in the same region. The user's own slots
// are left as they are. Exceptions reach the builder's handler and come back as a decoded report;
// ucalls (guest/kvm-gmem-guest.h) come back as events.
//
// Region (long mode; offsets in layout.ts): tables at 0, exception stubs and stack below 64 KiB,
// page directories from 64 KiB, the program at 1 MiB, the program's stack at the top.
import { ClosedError, UnsupportedError, argRangeError, argTypeError } from '../errors.js';
import type { GuestMemfd, Mapping, Vcpu, VcpuExit, Vm, U64 } from '../types.js';
import { describe, num, u32, u64 } from '../validate.js';
import { RFLAGS0, RFLAGS3, flatSegments, longModeSystem } from '../kvm/guest-program.js';
import { compileGuest } from './compile.js';
import { parseElf, type ElfImage } from './elf.js';
import * as L from './layout.js';
import {
  MAX_STRING,
  UCALL_SIZE,
  cString,
  decodeUcall,
  formatEvent,
  type ExceptionReport,
  type GuestEvent,
} from './ucall.js';

export type GuestProgram =
  /** Machine code loaded at the program address; `entry` is an offset into it (default 0). */
  | { code: Uint8Array; entry?: number }
  /** A static ELF linked for the program address (compileGuest makes one). */
  | { elf: Uint8Array }
  /** C source text, or a C file, compiled with guest/kvm-gmem-guest.h on the include path. */
  | { c: string; cflags?: string[]; cc?: string; filename?: string }
  | { cFile: string; cflags?: string[]; cc?: string };

export interface GuestOptions {
  /** The slot id for the guest's region. */
  slot: number;
  /** Where the region starts (page-aligned). Default 0x40000000 (long mode), 0x10000 (real mode). */
  guestPhysAddr?: U64;
  /** Default 4 MiB (long mode; at least 2 MiB), 64 KiB (real mode; at most 64 KiB). */
  size?: U64;
  /** 'guest_memfd' (default): a guest_memfd slot, reached through the file's own mapping; 'plain': a userspace-only slot. */
  memory?: 'guest_memfd' | 'plain';
  /** Default 'long'. */
  mode?: 'long' | 'real';
  /** Long mode only: default 3 (PVM runs CPL3 natively; CPL0 is emulated at ~1 us per instruction). */
  cpl?: 0 | 3;
  program: GuestProgram;
  /** Guest-physical ranges the page tables map too (whole GiBs, identity); the low 4 GiB always. */
  identityMap?: { gpa: U64; size: U64 }[];
  /** vCPU id (default 0). */
  vcpuId?: number;
  /**
   * The VM whose guest_memfd holds the region (default: vm itself). A VM with private memory
   * (type 1) offers no INIT_SHARED file: pass a type-0 VM of the same /dev/kvm, with memory 'plain'.
   */
  memoryVm?: Vm;
}

export interface RunOptions {
  /** An exit that is not the builder's own: return true to resume the guest (e.g. after answering it). */
  onExit?: (exit: VcpuExit) => boolean | Promise<boolean>;
}

const KEYS = new Set([
  'slot',
  'guestPhysAddr',
  'size',
  'memory',
  'mode',
  'cpl',
  'program',
  'identityMap',
  'vcpuId',
  'memoryVm',
]);
const GiB = 1n << 30n;
const P = 4096n;
const STACK_RESERVE = 0x10000n; // the program may not reach into the last 64 KiB (its stack)

/** Where a region's program is loaded, and the first address it may not reach. */
export function programArea(mode: 'long' | 'real', gpa: bigint, size: bigint): { load: bigint; limit: bigint } {
  return mode === 'long'
    ? { load: gpa + BigInt(L.CODE), limit: gpa + size - STACK_RESERVE }
    : { load: gpa + BigInt(L.REAL_CODE), limit: gpa + size - 0x400n };
}

/**
 * Builds a guest in `vm`: its region in slot `options.slot`, its vCPU ready to run. The simulator
 * has no vCPUs: UnsupportedError there, before any slot is set.
 */
export async function createGuest(vm: Vm, options: GuestOptions): Promise<Guest> {
  if (typeof options !== 'object' || options === null)
    throw argTypeError(`options must be an object, got ${describe(options)}`);
  for (const k of Object.keys(options))
    if (!KEYS.has(k)) throw argTypeError(`createGuest options have no key ${JSON.stringify(k)}`);
  const mode = options.mode ?? 'long';
  if (mode !== 'long' && mode !== 'real') throw argTypeError(`mode must be 'long' or 'real', got ${describe(mode)}`);
  const cpl = options.cpl ?? (mode === 'long' ? 3 : 0);
  if (cpl !== 0 && cpl !== 3) throw argRangeError(`cpl must be 0 or 3, got ${describe(cpl)}`);
  if (mode === 'real' && cpl !== 0) throw argRangeError('real mode runs at CPL 0 only');
  const memory = options.memory ?? 'guest_memfd';
  if (memory !== 'guest_memfd' && memory !== 'plain')
    throw argTypeError(`memory must be 'guest_memfd' or 'plain', got ${describe(memory)}`);
  const slot = u32('slot', options.slot);
  const gpa = u64('guestPhysAddr', options.guestPhysAddr ?? (mode === 'long' ? 0x4000_0000 : 0x1_0000));
  const size = u64('size', options.size ?? (mode === 'long' ? 0x40_0000 : 0x1_0000));
  if (gpa % P !== 0n || size % P !== 0n)
    throw argRangeError(
      `guestPhysAddr and size must be page-aligned, got 0x${gpa.toString(16)} and 0x${size.toString(16)}`,
    );
  if (mode === 'long' && size < L.MIN_SIZE)
    throw argRangeError(`a long-mode region needs at least ${L.MIN_SIZE} bytes, got ${size}`);
  if (mode === 'real') {
    if (size < L.REAL_MIN_SIZE || size > 0x10000n)
      throw argRangeError(`a real-mode region is ${L.REAL_MIN_SIZE} bytes to 64 KiB, got ${size}`);
    if (gpa + size > 0x100000n)
      throw argRangeError(`a real-mode region must lie below 1 MiB, got 0x${gpa.toString(16)}+0x${size.toString(16)}`);
  }
  const gibs = mode === 'long' ? mappedGibs(gpa, size, options.identityMap) : [];
  const vcpuId = options.vcpuId === undefined ? 0 : u32('vcpuId', options.vcpuId);
  const memoryVm = options.memoryVm ?? vm;
  if (typeof memoryVm !== 'object' || memoryVm === null || typeof memoryVm.createGuestMemfd !== 'function')
    throw argTypeError(`memoryVm must be a Vm, got ${describe(memoryVm)}`);
  if (memoryVm !== vm && memory !== 'plain')
    throw argRangeError("memoryVm needs memory 'plain': a guest_memfd slot must be the VM's own file");
  const area = programArea(mode, gpa, size);
  const image = await loadProgram(options.program, area, mode);

  // The vCPU first: on the simulator this is the UnsupportedError, before any slot is set.
  const vcpu = vm.createVcpu(vcpuId);
  const flags = memoryVm.guestMemfdFlags();
  if (!flags.mmap || !flags.initShared) {
    vcpu.close();
    throw new UnsupportedError(
      'guest-memory',
      `this VM (type ${memoryVm.type}) offers no guest_memfd the host can fill (MMAP and INIT_SHARED): pass memoryVm, a type-0 VM, with memory 'plain'`,
    );
  }
  let file: GuestMemfd | undefined;
  let map: Mapping | undefined;
  let slotSet = false;
  try {
    file = memoryVm.createGuestMemfd({ size, mmap: true, initShared: true });
    map = file.map();
    const guest = new Guest(vm, vcpu, { slot, gpa, size, memory, mode, cpl, file, map, entry: image.entry });
    guest.writeTables(gibs);
    for (const s of image.segments) {
      map.write(num(s.addr - gpa), s.data);
      const bss = s.memSize - BigInt(s.data.length);
      if (bss > 0n) map.fill(num(s.addr - gpa + BigInt(s.data.length)), bss, 0);
    }
    vm.setMemoryRegion(
      memory === 'guest_memfd'
        ? { slot, guestPhysAddr: gpa, size, guestMemfd: file, userspace: map }
        : { slot, guestPhysAddr: gpa, size, userspace: map },
    );
    slotSet = true;
    guest.resetVcpu();
    return guest;
  } catch (e) {
    if (slotSet) vm.deleteMemoryRegion(slot);
    map?.unmap();
    file?.close();
    vcpu.close();
    throw e;
  }
}

function mappedGibs(gpa: bigint, size: bigint, extra: unknown): bigint[] {
  const set = new Set<bigint>();
  for (let g = 0n; g < 4n * GiB; g += GiB) set.add(g);
  const add = (at: bigint, n: bigint) => {
    for (let g = at & ~(GiB - 1n); g < at + n; g += GiB) set.add(g);
  };
  add(gpa, size);
  if (extra !== undefined) {
    if (!Array.isArray(extra))
      throw argTypeError(`identityMap must be an array of { gpa, size }, got ${describe(extra)}`);
    extra.forEach((r: { gpa: U64; size: U64 }, i) =>
      add(u64(`identityMap[${i}].gpa`, r?.gpa), u64(`identityMap[${i}].size`, r?.size)),
    );
  }
  if (set.size > L.MAX_GIBS)
    throw argRangeError(`the identity map may cover at most ${L.MAX_GIBS} GiB, got ${set.size}`);
  return [...set].sort((a, b) => (a < b ? -1 : 1));
}

async function loadProgram(
  program: unknown,
  area: { load: bigint; limit: bigint },
  mode: 'long' | 'real',
): Promise<ElfImage> {
  if (typeof program !== 'object' || program === null)
    throw argTypeError(`program must be { code }, { elf }, { c } or { cFile }, got ${describe(program)}`);
  const p = program as Record<string, unknown>;
  let image: ElfImage;
  if (p.code !== undefined) {
    if (!(p.code instanceof Uint8Array))
      throw argTypeError(`program.code must be a Uint8Array, got ${describe(p.code)}`);
    const entry = p.entry === undefined ? 0 : u32('program.entry', p.entry);
    if (entry >= p.code.byteLength && p.code.byteLength > 0)
      throw argRangeError(`program.entry must lie in the code (${p.code.byteLength} bytes), got ${entry}`);
    image = {
      entry: area.load + BigInt(entry),
      segments: [{ addr: area.load, data: Buffer.from(p.code), memSize: BigInt(p.code.byteLength) }],
    };
  } else {
    if (mode === 'real') throw argTypeError('real mode takes program.code only (C and ELF guests are 64-bit)');
    let elf: Uint8Array;
    if (p.elf !== undefined) {
      if (!(p.elf instanceof Uint8Array))
        throw argTypeError(`program.elf must be a Uint8Array, got ${describe(p.elf)}`);
      elf = p.elf;
    } else if (p.c !== undefined || p.cFile !== undefined) {
      if (p.c !== undefined && typeof p.c !== 'string')
        throw argTypeError(`program.c must be a string, got ${describe(p.c)}`);
      if (p.cFile !== undefined && typeof p.cFile !== 'string')
        throw argTypeError(`program.cFile must be a string, got ${describe(p.cFile)}`);
      elf = await compileGuest(p.c !== undefined ? (p.c as string) : { file: p.cFile as string }, {
        loadAddress: area.load,
        limit: area.limit,
        cc: p.cc as string | undefined,
        cflags: p.cflags as string[] | undefined,
        filename: p.filename as string | undefined,
      });
    } else {
      throw argTypeError('program must have one of code, elf, c or cFile');
    }
    image = parseElf(elf);
  }
  for (const s of image.segments) {
    if (s.addr < area.load || s.addr + s.memSize > area.limit) {
      throw argRangeError(
        `the program's segment at 0x${s.addr.toString(16)} (+0x${s.memSize.toString(16)}) lies outside its area 0x${area.load.toString(16)}..0x${area.limit.toString(16)}`,
      );
    }
  }
  if (image.entry < area.load || image.entry >= area.limit)
    throw argRangeError(`the program's entry 0x${image.entry.toString(16)} lies outside its area`);
  return image;
}

interface Region {
  slot: number;
  gpa: bigint;
  size: bigint;
  memory: 'guest_memfd' | 'plain';
  mode: 'long' | 'real';
  cpl: 0 | 3;
  file: GuestMemfd;
  map: Mapping;
  entry: bigint;
}

export class Guest implements Disposable {
  #r: Region;
  #closed = false;
  /** The last terminal event (done, assert, exception): later runs return it again. */
  #final: GuestEvent | undefined;

  constructor(
    readonly vm: Vm,
    readonly vcpu: Vcpu,
    region: Region,
  ) {
    this.#r = region;
  }

  /** The region: its slot, where it lies, its guest_memfd (also behind a 'plain' slot) and mapping. */
  get region(): {
    slot: number;
    gpa: number;
    size: number;
    memory: 'guest_memfd' | 'plain';
    guestMemfd: GuestMemfd;
    mapping: Mapping;
  } {
    const r = this.#r;
    return { slot: r.slot, gpa: num(r.gpa), size: num(r.size), memory: r.memory, guestMemfd: r.file, mapping: r.map };
  }
  get mode(): 'long' | 'real' {
    return this.#r.mode;
  }
  get cpl(): 0 | 3 {
    return this.#r.cpl;
  }
  /** Where the program starts (gpa; in real mode too). */
  get entry(): number {
    return num(this.#r.entry);
  }
  get closed(): boolean {
    return this.#closed;
  }

  /** The tables (called once, before the slot exists: PVM's shadow tables must never see a rewrite). */
  writeTables(gibs: bigint[]): void {
    const { map, gpa, mode } = this.#r;
    if (mode === 'real') {
      map.write(L.REAL_IVT, L.realIvtBytes(gpa));
      map.write(L.REAL_STUBS, L.realStubBytes());
      return;
    }
    for (const [at, bytes] of L.pageTables(gpa, gibs)) map.write(at, bytes);
    map.write(L.GDT, L.gdtBytes(gpa));
    map.write(L.IDT, L.idtBytes(gpa));
    map.write(L.TSS, L.tss(gpa));
    map.write(L.STUBS, L.stubBytes());
  }

  /** Registers and segments as at the start: rip at the entry, rsp at the top of the region. */
  resetVcpu(): void {
    const { gpa, size, mode, cpl, entry } = this.#r;
    if (mode === 'real') {
      const seg = Number(gpa >> 4n);
      const s = (type: number) => ({
        base: gpa,
        selector: seg,
        limit: 0xffff,
        type,
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
      });
      this.vcpu.setSregs({
        cs: s(11),
        ds: s(3),
        es: s(3),
        fs: s(3),
        gs: s(3),
        ss: s(3),
        idt: { base: gpa + BigInt(L.REAL_IVT), limit: 32 * 4 - 1 },
      });
      this.vcpu.setRegs({ rip: entry - gpa, rsp: size - 2n, rflags: 2n });
      return;
    }
    this.vcpu.setSregs({
      ...flatSegments(cpl),
      ...longModeSystem({
        tss: gpa + BigInt(L.TSS),
        gdt: gpa + BigInt(L.GDT),
        idt: { base: gpa + BigInt(L.IDT), limit: 32 * 16 - 1 },
        cr3: gpa + BigInt(L.PML4),
      }),
    });
    this.vcpu.setRegs({ rip: entry, rsp: gpa + size, rflags: cpl === 3 ? RFLAGS3 : RFLAGS0 });
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('Guest');
  }

  /** Host-side bytes of the region (through its mapping): gpa must lie in it. */
  read(gpa: U64, length: U64): Buffer {
    this.#check();
    const [at, n] = this.#inRegion(gpa, length);
    return this.#r.map.read(at, n);
  }

  write(gpa: U64, data: Uint8Array): void {
    this.#check();
    if (!(data instanceof Uint8Array)) throw argTypeError(`data must be a Uint8Array, got ${describe(data)}`);
    const [at] = this.#inRegion(gpa, data.byteLength);
    this.#r.map.write(at, data);
  }

  #inRegion(gpa: U64, length: U64): [number, number] {
    const g = u64('gpa', gpa);
    const n = u64('length', length);
    const { gpa: base, size } = this.#r;
    if (g < base || g + n > base + size)
      throw argRangeError(
        `gpa 0x${g.toString(16)}+${n} is not in the guest's region 0x${base.toString(16)}+0x${size.toString(16)}`,
      );
    return [num(g - base), num(n)];
  }

  /**
   * Runs the guest until something the caller should see: a ucall (sync, assert, done), an
   * exception report, or another exit ({ kind: 'exit' }) that `onExit` did not take.
   */
  async run(options: RunOptions = {}): Promise<GuestEvent> {
    this.#check();
    if (this.#final) return this.#final;
    const onExit = options.onExit;
    if (onExit !== undefined && typeof onExit !== 'function')
      throw argTypeError(`onExit must be a function, got ${describe(onExit)}`);
    for (;;) {
      const exit = await this.vcpu.run();
      if (exit.reason === 'io' && exit.direction === 'out' && exit.port === L.UCALL_PORT && this.#r.mode === 'long') {
        const ev = await this.#ucall(exit.size === 4 ? exit.data.readUInt32LE(0) : 0xffffffff);
        if (ev.kind !== 'sync') this.#final = ev;
        return ev;
      }
      if (exit.reason === 'io' && exit.direction === 'out' && exit.port === L.EXCEPTION_PORT) {
        const ev = this.#exception();
        this.#final = ev;
        return ev;
      }
      if (onExit && (await onExit(exit))) continue;
      return { kind: 'exit', exit };
    }
  }

  /** Runs until done; each sync goes to `onSync`. An assert or exception rejects with its report. */
  async runToDone(
    onSync: (value: bigint, args: bigint[]) => void | Promise<void> = () => {},
    options: RunOptions = {},
  ): Promise<void> {
    for (;;) {
      const ev = await this.run(options);
      if (ev.kind === 'done') return;
      if (ev.kind === 'sync') {
        await onSync(ev.value, ev.args);
        continue;
      }
      throw Object.assign(new Error(`guest stopped: ${formatEvent(ev)}`), { code: 'ERR_GUEST_STOPPED', event: ev });
    }
  }

  /** The ucall struct at the address the guest gave: eax when below 4 GiB, else rdi. */
  async #ucall(eax: number): Promise<GuestEvent> {
    const at = eax !== 0xffffffff ? BigInt(eax) : this.vcpu.getRegs().rdi;
    const struct = await this.#guestBytes(at, UCALL_SIZE);
    return decodeUcall(struct, async (addr) => {
      const { gpa, size } = this.#r;
      // Strings are the guest's own (in its region); read up to the region's end.
      const n = addr >= gpa && addr < gpa + size ? Math.min(MAX_STRING, num(gpa + size - addr)) : MAX_STRING;
      return cString(await this.#guestBytes(addr, n));
    });
  }

  /** Bytes at a guest address: the region through its mapping, else vm.guest (identity-mapped). */
  async #guestBytes(addr: bigint, n: number): Promise<Buffer> {
    const { gpa, size, map } = this.#r;
    if (addr >= gpa && addr + BigInt(n) <= gpa + size) return map.read(num(addr - gpa), n);
    return this.vm.guest.read(addr, n);
  }

  #exception(): ExceptionReport {
    const { map, mode, gpa } = this.#r;
    if (mode === 'real') {
      const regs = this.vcpu.getRegs();
      const ss = this.vcpu.getSregs().ss;
      const at = num(ss.base + (regs.rsp & 0xffffn) - gpa);
      const f = map.read(at, L.REAL_FRAME_BYTES);
      const w = (i: number) => f.readUInt16LE(i * 2);
      const vector = w(2);
      return {
        kind: 'exception',
        vector,
        name: L.VECTOR_NAMES[vector] ?? `VECTOR${vector}`,
        errorCode: 0,
        rip: BigInt(w(3)),
        cs: w(4),
        rflags: BigInt(w(5)),
        rsp: (regs.rsp & 0xffffn) + BigInt(L.REAL_FRAME_BYTES),
        ss: Number(ss.selector),
        regs: { rax: BigInt(w(1)), rdx: BigInt(w(0)) },
      };
    }
    const f = map.read(L.IST_TOP - L.FRAME_BYTES, L.FRAME_BYTES);
    const q = (i: number) => f.readBigUInt64LE(i * 8);
    const vector = Number(q(2));
    const report: ExceptionReport = {
      kind: 'exception',
      vector,
      name: L.VECTOR_NAMES[vector] ?? `VECTOR${vector}`,
      errorCode: Number(q(3)),
      rip: q(4),
      cs: Number(q(5)),
      rflags: q(6),
      rsp: q(7),
      ss: Number(q(8)),
      regs: { rax: q(1), rdx: q(0) },
    };
    if (vector === 14) report.cr2 = this.vcpu.getSregs().cr2;
    return report;
  }

  /** Deletes the guest's slot and closes its vCPU, mapping and file (the VM and other slots stay). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.vm.closed) {
      this.vm.deleteMemoryRegion(this.#r.slot);
      this.vcpu.close();
      this.#r.map.unmap();
      this.#r.file.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
