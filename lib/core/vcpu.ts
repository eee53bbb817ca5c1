// Vcpu: the closed and one-run-at-a-time checks, argument shaping (registers, segments, CPUID,
// MSRs, pre-fault ranges) and the decoding of exits straight from the port's kvm_run area, so a
// round trip costs no more port calls than the run itself. On the real backend the port is the
// native vCPU: KVM_RUN happens there (runSync on this thread, run() on the vCPU's own thread).
import { CAPS, EXITS, FLAGS, HYPERCALLS } from '../constants.js';
import { cpuidToWords, enableCapArgs, msrEntries, msrIndices, preFaultArgs, wordsToCpuid } from '../cpu-args.js';
import { ClosedError, KvmError, UnsupportedError, argRangeError, argTypeError, kvmError } from '../errors.js';
import type { VcpuLayout, VcpuPort } from '../ports.js';
import { Owned } from './owned.js';
import type {
  CpuidEntry,
  MapGpaRange,
  MsrEntry,
  Regs,
  RegsUpdate,
  Sregs,
  SregsUpdate,
  U64,
  Vcpu as VcpuApi,
  VcpuExit,
} from '../types.js';
import { describe, ensureOpen, num, options, u64 } from '../validate.js';

let L: VcpuLayout;

/**
 * Since when (performance.now(), ms) run() calls that ended on the calling thread have held this
 * thread's event loop, or -1 once it has turned. Each such run settles its Promise at once, and a
 * loop of `await vcpu.run()` (vm.guest is one) runs wholly in microtasks: without this, timers and
 * I/O never got a turn (measured: a vm.guest loop held a 20 ms timer for over 3 s). One clock for
 * every vCPU of the thread, since what it bounds is the loop's hold.
 */
let heldSince = -1;
const loopTurned = (): void => {
  heldSince = -1;
};

/** kvm_regs field order (the struct is 18 u64 words). */
export const REG_NAMES = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
] as const satisfies readonly (keyof Regs)[];

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SEG_FIELDS: Record<string, number> = {
  base: -1,
  limit: 0xffffffff,
  selector: 0xffff,
  type: 0xff,
  present: 1,
  dpl: 3,
  db: 1,
  s: 1,
  l: 1,
  g: 1,
  avl: 1,
  unusable: 1,
};
const SREG_SCALARS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

function busyError(id: number): Error {
  return Object.assign(new Error(`Vcpu ${id} is running: one run at a time per vCPU`), { code: 'ERR_KVM_VCPU_BUSY' });
}

export class Vcpu extends Owned implements VcpuApi {
  #running = false;
  /** The inline window (setRunInline) in ms: how long inline runs may hold the event loop. */
  #inlineMs = 2;
  #view: DataView;
  #bytes: Uint8Array;
  #regs = new BigUint64Array(18);
  /** The reply to an io 'in' / mmio read: copied into kvm_run just before the next run. */
  #reply: { at: number; data: Uint8Array } | null = null;
  /** A hypercall exit whose `ret` goes back into kvm_run before the next run. */
  #hypercall: { ret: bigint } | null = null;
  /** Whether the VM answers KVM_CAP_PRE_FAULT_MEMORY (asked once). */
  #preFault: boolean | undefined;
  readonly id: number;

  constructor(
    readonly port: VcpuPort,
    onClose: (v: Vcpu) => void,
    /** The VM's KVM_CHECK_EXTENSION (a vCPU fd has none of its own). */
    private readonly vmCheckExtension?: (cap: number) => number,
  ) {
    super(onClose);
    this.id = port.id;
    // The field offsets of kvm_run, the same for every vCPU: read once.
    L ??= port.layout;
    const area = port.area();
    this.#view = new DataView(area);
    this.#bytes = new Uint8Array(area);
  }

  #check(): void {
    ensureOpen(this.closed, 'Vcpu');
    if (this.#running) throw busyError(this.id);
  }

  getRegs(): Regs {
    this.#check();
    this.port.getRegs(this.#regs);
    const out = {} as Regs;
    for (let i = 0; i < REG_NAMES.length; i++) out[REG_NAMES[i]!] = this.#regs[i]!;
    return out;
  }

  /** Sets the named registers; the others keep their values. */
  setRegs(regs: RegsUpdate): void {
    this.#check();
    const r = options<Record<string, unknown>>('regs', regs, true);
    for (const k of Object.keys(r)) {
      if (!(REG_NAMES as readonly string[]).includes(k))
        throw argTypeError(`regs has no register named ${JSON.stringify(k)}`);
    }
    const values = REG_NAMES.map((n) => (r[n] === undefined ? undefined : u64(`regs.${n}`, r[n])));
    this.port.getRegs(this.#regs);
    values.forEach((v, i) => {
      if (v !== undefined) this.#regs[i] = v;
    });
    this.port.setRegs(this.#regs);
  }

  getSregs(): Sregs {
    this.#check();
    return this.port.getSregs();
  }

  /** Sets the given fields (a segment may be partial too); the others keep their values. */
  setSregs(sregs: SregsUpdate): void {
    this.#check();
    // Each field is read once, into a plain copy: a getter cannot hand the port a value
    // other than the one checked here.
    const s = options<Record<string, unknown>>('sregs', sregs, true);
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) {
      if ((SEGMENTS as readonly string[]).includes(k)) {
        const seg = options<Record<string, unknown>>(`sregs.${k}`, v, true);
        const out: Record<string, bigint> = {};
        for (const [f, x] of Object.entries(seg)) {
          const max = SEG_FIELDS[f];
          if (max === undefined) throw argTypeError(`sregs.${k} has no field ${JSON.stringify(f)}`);
          out[f] = checkField(`sregs.${k}.${f}`, x, max);
        }
        clean[k] = out;
      } else if (k === 'gdt' || k === 'idt') {
        const t = options<Record<string, unknown>>(`sregs.${k}`, v, true);
        const out: Record<string, bigint> = {};
        for (const [f, x] of Object.entries(t)) {
          if (f !== 'base' && f !== 'limit') throw argTypeError(`sregs.${k} has no field ${JSON.stringify(f)}`);
          out[f] = checkField(`sregs.${k}.${f}`, x, f === 'base' ? -1 : 0xffff);
        }
        clean[k] = out;
      } else if ((SREG_SCALARS as readonly string[]).includes(k)) {
        clean[k] = u64(`sregs.${k}`, v);
      } else {
        throw argTypeError(`sregs has no field ${JSON.stringify(k)}`);
      }
    }
    this.#check();
    this.port.setSregs(clean as Partial<Sregs>);
  }

  /** KVM_RUN on this thread (blocks it until the vCPU exits). */
  runSync(): VcpuExit {
    this.#check();
    this.#flushReply();
    return this.#decode(this.port.runSync());
  }

  /** KVM_RUN on the vCPU's own thread; the event loop keeps going. */
  run(): Promise<VcpuExit> {
    try {
      this.#check();
    } catch (e) {
      return Promise.reject(e);
    }
    this.#flushReply();
    let r: number | Promise<number>;
    try {
      r = this.port.run();
    } catch (e) {
      return Promise.reject(e);
    }
    if (typeof r === 'number') {
      const exit = this.#decode(r);
      const now = performance.now();
      if (heldSince < 0) {
        heldSince = now;
        setImmediate(loopTurned).unref();
      } else if (now - heldSince >= this.#inlineMs) {
        return this.#nextTurn(exit);
      }
      return Promise.resolve(exit);
    }
    this.#running = true;
    return r.then(
      (code) => {
        this.#running = false;
        return this.#decode(code);
      },
      (e: unknown) => {
        this.#running = false;
        throw e;
      },
    );
  }

  /**
   * An exit that came back inline after the window had passed since the event loop last turned:
   * it is handed over on the loop's next check phase, so timers and I/O run first. The vCPU stays
   * busy until then, and a close before then rejects it with ClosedError, as during a run on the
   * vCPU's own thread.
   */
  #nextTurn(exit: VcpuExit): Promise<VcpuExit> {
    this.#running = true;
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        this.#running = false;
        loopTurned();
        if (this.closed) reject(new ClosedError('Vcpu'));
        else resolve(exit);
      });
    });
  }

  /** Makes the run in flight (or else the next one) return `{ reason: 'intr' }` promptly. */
  kick(): void {
    ensureOpen(this.closed, 'Vcpu');
    this.port.kick();
  }

  /**
   * How long run() may keep KVM_RUN on the calling thread (under a one-shot timer) before the run
   * moves to the vCPU's own thread: quick exits cost what runSync() costs, and the event loop is
   * held for at most the window (at least a tenth of it is left for each run, since one timer
   * arming covers many runs). Runs that keep ending inline hold it no longer either: once the
   * window has passed since the loop last turned, the next exit is handed over on a later turn.
   * Default 2000 us (each window costs one timer arming: at 500 us that was 0.24 us per io exit on
   * PVM); 0 sends every run() to the vCPU thread.
   */
  setRunInline(micros: number): void {
    ensureOpen(this.closed, 'Vcpu');
    if (typeof micros !== 'number') throw argTypeError(`micros must be a number, got ${describe(micros)}`);
    if (!Number.isInteger(micros) || micros < 0 || micros > 10_000_000)
      throw argRangeError(`micros must be an integer from 0 to 10000000, got ${micros}`);
    this.port.setRunInline(micros * 1000);
    this.#inlineMs = micros / 1000;
  }

  #flushReply(): void {
    const h = this.#hypercall;
    if (h !== null) {
      this.#hypercall = null;
      this.#view.setBigUint64(L.hypercallRet, BigInt.asUintN(64, BigInt(h.ret)), true);
    }
    const r = this.#reply;
    if (r === null) return;
    this.#reply = null;
    this.#bytes.set(r.data, r.at);
  }

  // A copy of exit data (the area is rewritten by the next run). Most exits carry a few bytes,
  // where a plain loop beats creating a subarray to copy from.
  #copyOut(at: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    if (n <= 16) {
      const b = this.#bytes;
      for (let i = 0; i < n; i++) out[i] = b[at + i]!;
    } else {
      out.set(this.#bytes.subarray(at, at + n));
    }
    return out;
  }

  #decode(code: number): VcpuExit {
    if (this.closed) throw new ClosedError('Vcpu');
    const v = this.#view;
    switch (code) {
      case EXITS.IO: {
        const size = v.getUint8(L.ioSize);
        const count = v.getUint32(L.ioCount, true);
        // data_offset is a u64, but always within the mmapped area: its low word is the value.
        const at = v.getUint32(L.ioDataOffset, true);
        const port = v.getUint16(L.ioPort, true);
        if (v.getUint8(L.ioDirection) === L.ioIn) {
          const data = Buffer.alloc(size * count);
          this.#reply = { at, data };
          return { reason: 'io', port, direction: 'in', size, count, data };
        }
        return { reason: 'io', port, direction: 'out', size, count, data: this.#copyOut(at, size * count) };
      }
      case EXITS.MMIO: {
        const length = v.getUint32(L.mmioLen, true);
        const address = num(v.getBigUint64(L.mmioPhysAddr, true));
        if (v.getUint8(L.mmioIsWrite) !== 0) {
          return { reason: 'mmio', address, length, isWrite: true, data: this.#copyOut(L.mmioData, length) };
        }
        const data = Buffer.alloc(length);
        this.#reply = { at: L.mmioData, data };
        return { reason: 'mmio', address, length, isWrite: false, data };
      }
      case EXITS.HLT:
        return { reason: 'hlt' };
      case EXITS.SHUTDOWN:
        return { reason: 'shutdown' };
      case EXITS.INTR:
        return { reason: 'intr' };
      case EXITS.HYPERCALL: {
        const nr = num(v.getBigUint64(L.hypercallNr, true));
        const args: bigint[] = [];
        for (let i = 0; i < 6; i++) args.push(v.getBigUint64(L.hypercallArgs + 8 * i, true));
        const exit: Extract<VcpuExit, { reason: 'hypercall' }> = {
          reason: 'hypercall',
          nr,
          args,
          longMode: v.getUint32(L.hypercallLongMode, true) !== 0,
          ret: 0n,
        };
        if (nr === HC_MAP_GPA_RANGE) exit.mapGpaRange = mapGpaRange(args);
        this.#hypercall = exit;
        return exit;
      }
      case EXITS.MEMORY_FAULT: {
        const flags = v.getBigUint64(L.memoryFaultFlags, true);
        return {
          reason: 'memory_fault',
          gpa: num(v.getBigUint64(L.memoryFaultGpa, true)),
          size: num(v.getBigUint64(L.memoryFaultSize, true)),
          private: (flags & BigInt(L.memoryFaultFlagPrivate)) !== 0n,
          flags: Number(flags),
        };
      }
      case EXITS.FAIL_ENTRY:
        return {
          reason: 'fail_entry',
          hardwareEntryFailureReason: v.getBigUint64(L.failEntryReason, true),
          cpu: v.getUint32(L.failEntryCpu, true),
        };
      case EXITS.INTERNAL_ERROR: {
        const n = Math.min(v.getUint32(L.internalNdata, true), 16);
        const data: bigint[] = [];
        for (let i = 0; i < n; i++) data.push(v.getBigUint64(L.internalData + 8 * i, true));
        return { reason: 'internal_error', suberror: v.getUint32(L.internalSuberror, true), data };
      }
      default:
        return { reason: 'unknown', exitReason: code, hardwareExitReason: v.getBigUint64(L.hwExitReason, true) };
    }
  }

  enableCap(cap: number | string, args?: readonly U64[], flags?: number): number {
    this.#check();
    const a = enableCapArgs(cap, args, flags);
    return this.port.enableCap(a.cap, a.flags, a.args);
  }

  getCpuid(): CpuidEntry[] {
    this.#check();
    return wordsToCpuid(this.port.getCpuid());
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    this.#check();
    const words = cpuidToWords(entries);
    this.#check();
    this.port.setCpuid(words);
  }

  getMsrs(indices: readonly number[]): bigint[] {
    this.#check();
    const idx = msrIndices(indices);
    const values = new BigUint64Array(idx.length);
    this.#check();
    const done = this.port.getMsrs(idx, values);
    if (done < idx.length) throw msrRefused('KVM_GET_MSRS', idx[done]!, done, idx.length);
    return [...values];
  }

  setMsrs(entries: readonly MsrEntry[]): void {
    this.#check();
    const { indices, values } = msrEntries(entries);
    this.#check();
    const done = this.port.setMsrs(indices, values);
    if (done < indices.length) throw msrRefused('KVM_SET_MSRS', indices[done]!, done, indices.length);
  }

  preFaultMemory(gpa: U64, size: U64): void {
    this.#check();
    let { gpa: at, size: left } = preFaultArgs(gpa, size);
    this.#preFault ??= this.#vmAnswers(CAPS.PRE_FAULT_MEMORY!);
    if (!this.#preFault) {
      throw new UnsupportedError(
        'preFaultMemory',
        'KVM_PRE_FAULT_MEMORY is not supported here (KVM_CAP_PRE_FAULT_MEMORY is 0: it needs two-dimensional paging)',
      );
    }
    // Each ioctl does at least one page or fails; it moves gpa on and size down as it goes.
    const started = at;
    do {
      let r: BigUint64Array;
      try {
        r = this.port.preFaultMemory(at, left);
      } catch (e) {
        if (e instanceof KvmError && at !== started) Object.assign(e, { remaining: { gpa: num(at), size: num(left) } });
        throw e;
      }
      at = r[0]!;
      left = r[1]!;
    } while (left > 0n);
  }

  #vmAnswers(cap: number): boolean {
    return (this.vmCheckExtension?.(cap) ?? 0) !== 0;
  }

  protected teardown(): void {
    this.#reply = null;
    this.#hypercall = null;
    this.port.close();
  }
}

const HC_MAP_GPA_RANGE = HYPERCALLS.KVM_HC_MAP_GPA_RANGE!;
const PAGE_SIZES = [4096, 2097152, 1073741824] as const;

/** KVM_HC_MAP_GPA_RANGE(gpa, npages, attributes), as the guest passed it. */
function mapGpaRange(args: bigint[]): MapGpaRange {
  const attributes = Number(args[2]! & 0xffffffffn);
  const pageSize = PAGE_SIZES[attributes & 0xf] ?? 4096;
  const pages = num(args[1]!);
  return {
    gpa: num(args[0]!),
    pages,
    size: num(args[1]! * BigInt(pageSize)),
    private: (attributes & FLAGS.KVM_MAP_GPA_RANGE_ENCRYPTED!) !== 0,
    pageSize,
    attributes,
  };
}

/** KVM_GET/SET_MSRS processed fewer entries than given: the kernel refused the next one. */
function msrRefused(ioctl: string, index: number, done: number, total: number): KvmError {
  const e = kvmError(
    'EINVAL',
    'ioctl',
    ioctl,
    `MSR 0x${index.toString(16)} was refused (${done} of ${total} processed)`,
  );
  return Object.assign(e, { index, processed: done });
}

function checkField(name: string, v: unknown, max: number): bigint {
  const b = u64(name, v);
  if (max >= 0 && b > BigInt(max)) throw argRangeError(`${name} must be at most ${max}, got ${b}`);
  return b;
}
