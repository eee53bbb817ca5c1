// vm.guest on the real backend: memory as the guest sees it, read and written by a small guest
// program on a vCPU and in memory slots of the library's own, out of the user's way.
//
// The helper runs in 64-bit mode, set up directly through KVM_SET_SREGS (after KVM_SET_CPUID2,
// done when any vCPU is created). Its region (vm.guest.reserved, laid out in guest-program.ts) is
// one guest_memfd the host reaches through its own mmap, bound as two userspace slots: code, abort
// flag and descriptor tables in a KVM_MEM_READONLY slot, so no vCPU of the user's can change the
// helper's program (a write there is an MMIO exit of that vCPU), then the page tables (which
// nested paging needs writable: guest-program.ts), the arguments and two 2 MiB bounce buffers,
// writable. The host checks the page tables against its own image around every run. A read of several chunks overlaps the guest's copy
// of one chunk with the host's copy of the one before, out of the other bounce buffer.
//
// Each chunk (at most 2 MiB, within one GiB) takes one of two paths:
//   - fast (CPL3, native speed): when every page of the chunk is shown to the guest through a
//     slot's userspace mapping whose file pages are shared (the state mirror), and, for a
//     guest_memfd slot, that mapping is the slot's own file at the slot's offset, so native access
//     (which goes to the file) and the emulator's (which goes to the mapping) see the same bytes.
//     Windows of whole GiBs are mapped; changing one rewrites its page directory and re-adds the
//     read-only slot, since native code runs on KVM's shadow of the tables, which host writes
//     bypass. Any exit but the program's own sends the chunk to the slow path on a fresh vCPU.
//   - slow (CPL0, emulated by PVM): everything else. The target is reached through two 2 MiB
//     entries the host points at it before each chunk (1 GiB pages end in KVM_EXIT_SHUTDOWN on
//     this machine). Before copying, the program reads one byte of each page and checks an abort
//     flag: a page the guest may not map (KVM_EXIT_MMIO here) costs one MMIO exit and one io exit.
import { FLAGS, CAPS } from '../constants.js';
import { guestDetached } from '../args.js';
import { ClosedError, GuestMemoryFault, KvmError } from '../errors.js';
import type { GuestAccessPort, GuestOp } from '../ports.js';
import type { VcpuExit } from '../types.js';
import { num } from '../validate.js';
import { guestPhysLimit } from '../phys-bits.js';
import { mappingFile } from './guest-memfd.js';
import type { NativeGuestMemfd, NativeMapping, NativeVm } from './addon.js';
import { KvmVcpu } from './vcpu.js';
import type { KvmVm } from './vm.js';
import {
  ARGS,
  BOUNCE,
  CHUNK,
  FAST_PD,
  FAST_WINDOWS,
  FLAG,
  GDT,
  GDT_ENTRIES,
  GiB,
  LARGE,
  PAGE,
  PD_LOW,
  PD_WIN,
  PDPT,
  PML4,
  PORT,
  PROG0,
  PROG3,
  PROGRAM0,
  PROGRAM3,
  PTE_LARGE,
  PTE_TABLE,
  REGION_ALIGN,
  REGION_SIZE,
  RFLAGS0,
  RFLAGS3,
  RO_SIZE,
  TABLES,
  TABLES_END,
  TSS,
  WINDOW_VA,
  fastVa,
  flatSegments,
  longModeSystem,
  tssBytes,
  u64le,
} from './guest-program.js';

const PREFERRED_GPA = 0xf000_0000n; // below 4 GiB: within every guest's physical address width
const MMIO_EXIT_LIMIT = 16;
// Each fast-path chunk that ends in another exit costs a vCPU (one left mid-instruction cannot be
// reset): after this many the VM's calls all take the CPL0 path.
const FAST_FAILURE_LIMIT = 8;
const RUN_INLINE_US = 500; // the vCPU default: an exit within it costs no thread handoff
// A retry when a user vCPU disturbed a run: set the abort flag (it cannot: the flag is read-only to
// guests, but the check stays) or changed the page tables while it ran.
const DISTURBED_LIMIT = 3;
const TABLES_SIZE = TABLES_END - TABLES;

interface Helper {
  /** The read-only slot (code and tables) and the writable one (flag and bounce buffer). */
  slots: [number, number];
  gpa: bigint;
  gmem: NativeGuestMemfd;
  map: NativeMapping;
  /** The bounce buffer through a zero-copy view of the helper's mapping (never converted). */
  bounce: Uint8Array | undefined;
  vcpu: KvmVcpu;
  /** Set when the memory is a type-0 VM's file: this VM (type 1) offers no INIT_SHARED. */
  donor?: NativeVm;
  /** The privilege level the vCPU's segments are set for. */
  cpl: 0 | 3;
  /** The next KVM_RUN starts the CPL3 program at its top (it reads its arguments then). */
  atTop: boolean;
  /** The GiB (its first gpa) each CPL3 window shows, and when each was last used. */
  windows: (bigint | undefined)[];
  used: number[];
  tick: number;
  /** Bumped whenever the region moves: a run that spans a move has its result thrown away. */
  gen: number;
  /** What the page tables must hold, [TABLES, TABLES_END): the host's own copy, checked around each run. */
  tables: Buffer;
  tableView: Uint8Array | undefined;
  /** How many times the current call found the tables changed. */
  disturbed: number;
}

/** A call's buffer, and its length when the call was made. */
type Target = { buf: Uint8Array; write: boolean; length: bigint };
type Inflight = { h: Helper; at: bigint; n: bigint; slice: Uint8Array; bounce: 0 | 1; run: Promise<boolean> };

/** The real backend's vm.guest port: the core's GuestAccess queues its accesses (one at a time). */
export class KvmGuestAccess implements GuestAccessPort {
  #helper: Helper | undefined;
  #vcpuBroken = false;
  #fastFailures = 0;
  /** The helper vCPU while a run of it is in flight (on its own thread). */
  #running: KvmVcpu | undefined;
  #nextVcpuId: number | undefined;
  #closed = false;

  constructor(readonly vm: KvmVm) {}

  /** The guest-physical range the helper occupies, once it exists. */
  get reserved(): { gpa: number; size: number } | null {
    const h = this.#helper;
    return h ? { gpa: num(h.gpa), size: Number(REGION_SIZE) } : null;
  }

  // The core checked the arguments and the slots' coverage (lib/core/guest-access.ts).
  read(gpa: bigint, length: bigint): GuestOp<Buffer> {
    // Every byte is written before the Buffer is handed out; on a rejection it is dropped.
    const out = Buffer.allocUnsafeSlow(Number(length));
    return async () => {
      await this.#transfer(gpa, { buf: out, write: false, length });
      return out;
    };
  }

  readInto(gpa: bigint, target: Uint8Array): GuestOp<number> {
    const len = target.byteLength;
    return async () => {
      await this.#transfer(gpa, { buf: target, write: false, length: BigInt(len) });
      return len;
    };
  }

  write(start: bigint, src: Uint8Array): GuestOp<void> {
    // No copy: data is read while the call is pending (api.md), so large writes cost no Buffer.
    const len = BigInt(src.byteLength);
    const readonlyAt = this.#readonlyAt(start, start + len);
    if (readonlyAt === undefined) return () => this.#transfer(start, { buf: src, write: true, length: len });
    // The pages before the read-only slot are written in order (and may fault first); then the
    // read-only page faults, as a guest writing in address order would see it.
    return async () => {
      const head = src.byteLength === Number(len) ? src.subarray(0, Number(readonlyAt - start)) : new Uint8Array(0);
      if (readonlyAt > start) await this.#transfer(start, { buf: head, write: true, length: readonlyAt - start });
      throw new GuestMemoryFault({
        gpa: num(readonlyAt & ~(PAGE - 1n)),
        size: Number(PAGE),
        private: false,
        message: `guest write to a read-only slot at gpa 0x${readonlyAt.toString(16)}`,
      });
    };
  }

  /**
   * One KVM_RUN of the helper, its page tables checked on both sides: changed before it (a user
   * vCPU wrote them), they are put back first; changed when it ends, its exit says nothing of the
   * target ('disturbed'), they are put back, and the vCPU is set up afresh. Only a vCPU left in the
   * middle of an instruction (an MMIO or memory-fault exit) is replaced: each one replaced stays in
   * KVM until the VM closes, and on PVM each keeps shadow pages of the VM's small pool (KVM_RUN
   * then failed with ENOSPC, from make_mmu_pages_available, for every later run: measured here).
   */
  async #run(h: Helper): Promise<VcpuExit | 'disturbed'> {
    if (this.#guardTables(h)) h.disturbed++;
    const v = h.vcpu;
    const gen = h.gen;
    this.#running = v;
    let e: VcpuExit;
    try {
      e = await v.run();
    } catch (err) {
      // A run that failed with the tables changed under it, or in a call that found them changed
      // before (PVM then gave ENOSPC from KVM_RUN for a while, even on a new vCPU), failed because of
      // them: the call is retried or refused as disturbed, not failed with a misleading errno.
      if (!this.#closed && !this.vm.closed && h.gen === gen && (this.#guardTables(h) || h.disturbed > 0)) {
        this.#setupVcpu(h); // a failed KVM_RUN did not enter the guest: the vCPU is between instructions
        return 'disturbed';
      }
      throw err;
    } finally {
      if (this.#running === v) this.#running = undefined;
    }
    if (h.gen === gen && this.#guardTables(h)) {
      h.disturbed++;
      // A shutdown (triple fault), hlt, io or intr exit leaves it between instructions: new
      // registers make it as good as new (as a VMM resets a vCPU after KVM_EXIT_SHUTDOWN).
      if (e.reason === 'mmio' || e.reason === 'memory_fault') this.#vcpuBroken = true;
      else this.#setupVcpu(h);
      return 'disturbed';
    }
    return e;
  }

  /** Writes page-table bytes at region offset `at`, and into the host's image of them. */
  #writeTables(h: Helper, at: number, bytes: Buffer): void {
    h.map.write(at, bytes);
    bytes.copy(h.tables, at - TABLES);
  }

  /** True (after putting them back) when the page tables differ from the host's image. */
  #guardTables(h: Helper): boolean {
    if (h.tableView === undefined || h.tableView.byteLength === 0) {
      try {
        h.tableView = new Uint8Array(h.map.view(), TABLES, TABLES_SIZE);
      } catch {
        h.tableView = undefined; // a runtime without external ArrayBuffers: the mapping's own copies
      }
    }
    const now = h.tableView ?? h.map.read(TABLES, TABLES_SIZE);
    if (h.tables.equals(now)) return false;
    h.map.write(TABLES, h.tables);
    // The helper's vCPU may have cached the changed entries (KVM's shadow of them on PVM, the TLB
    // elsewhere): a slot re-added drops both.
    this.#rebindTables(h);
    return true;
  }

  /**
   * Re-adds the writable slot, which holds the page tables. Native code runs on KVM's shadow of
   * them (PVM) or on cached translations, which the host's writes bypass; a slot re-added drops
   * every shadow page and translation of its memory (no `mov cr3` at CPL3, no rewrite in place). If
   * either call fails a missing slot is set again before the helper runs next (#ensureHelper), so it
   * never runs without its tables (found by the fault walk).
   */
  #rebindTables(h: Helper): void {
    const rw = h.slots[1];
    if (rw < 0) return;
    this.vm.native.setUserMemoryRegion2({ slot: rw });
    h.slots = [h.slots[0], -1];
    this.#bindWritable(h, rw, h.gpa);
  }

  /** Binds the writable part of the region (tables, arguments, bounce buffers) as slot `rw` at `gpa + RO_SIZE`. */
  #bindWritable(h: Helper, rw: number, gpa: bigint): void {
    this.vm.native.setUserMemoryRegion2({
      slot: rw,
      guestPhysAddr: gpa + RO_SIZE,
      size: REGION_SIZE - RO_SIZE,
      userspace: h.map,
      userspaceOffset: RO_SIZE,
    });
    h.slots = [h.slots[0], rw];
  }

  /** Before the user sets a slot: move the helper out of the way if the new slot would collide. */
  makeRoom(slot: number, gpa: bigint, size: bigint): void {
    const h = this.#helper;
    if (!h) return;
    // A delete (size 0) of a helper's slot id must find no slot there, as on a VM without a helper.
    if (!h.slots.includes(slot) && (size === 0n || gpa + size <= h.gpa || h.gpa + REGION_SIZE <= gpa)) return;
    this.#unbind(h);
    this.#place(h, { slot, gpa, size });
  }

  markClosed(): void {
    this.#closed = true;
    this.#helper?.vcpu.markClosed();
    this.#helper?.donor?.close();
    this.#helper = undefined;
  }

  #sortedSlots() {
    return [...this.vm.slots.values()].sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
  }

  /** Where a write to [gpa, end) first reaches a read-only slot, if it does: the write faults there. */
  #readonlyAt(gpa: bigint, end: bigint): bigint | undefined {
    const slots = this.#sortedSlots();
    for (let at = gpa; at < end;) {
      const s = slots.find((x) => x.guestPhysAddr <= at && at < x.guestPhysAddr + x.size);
      if (!s) return undefined; // not when the call was made (the core checked coverage)
      if ((s.flags & FLAGS.KVM_MEM_READONLY!) !== 0) return at;
      at = s.guestPhysAddr + s.size;
    }
    return undefined;
  }

  // Whether the guest_memfd page behind a gpa is private (as far as this process knows its states).
  #isPrivate(gpa: bigint): boolean {
    for (const s of this.vm.slots.values()) {
      if (gpa < s.guestPhysAddr || gpa >= s.guestPhysAddr + s.size) continue;
      if (!s.guestMemfd || s.guestMemfd.closed) return false;
      const [extent] = s.guestMemfd.states(s.guestMemfdOffset + (gpa - s.guestPhysAddr), 1);
      return extent !== undefined && extent.state !== 'shared';
    }
    return false;
  }

  /**
   * Whether native (CPL3) access to [gpa, gpa + n) sees what the emulated (CPL0) one sees: each
   * page through a slot's open userspace mapping, of a file whose pages there are shared, and for a
   * guest_memfd slot that same file at the slot's own offset. Only type-0 VMs: no private attributes.
   */
  #fastPathSees(gpa: bigint, n: bigint): boolean {
    if (this.vm.type !== 0 || this.#fastFailures >= FAST_FAILURE_LIMIT) return false;
    const end = gpa + n;
    const slots = this.#sortedSlots();
    for (let at = gpa; at < end;) {
      const s = slots.find((x) => x.guestPhysAddr <= at && at < x.guestPhysAddr + x.size);
      if (!s) return false;
      const to = s.guestPhysAddr + s.size < end ? s.guestPhysAddr + s.size : end;
      const m = s.userspace;
      const file = m && !m.closed ? mappingFile.get(m) : undefined;
      if (!m || !file || file.closed) return false;
      const first = (at - s.guestPhysAddr) & ~(PAGE - 1n);
      const last = (to - s.guestPhysAddr + PAGE - 1n) & ~(PAGE - 1n);
      if (s.userspaceOffset + last > BigInt(m.length)) return false;
      const fileAt = BigInt(m.offset) + s.userspaceOffset + first;
      if (s.guestMemfd && (s.guestMemfd !== file || s.guestMemfdOffset + first !== fileAt)) return false;
      if (fileAt + (last - first) > BigInt(file.size)) return false;
      if (file.states(fileAt, last - first).some((e) => e.state !== 'shared')) return false;
      at = to;
    }
    return true;
  }

  async #transfer(gpa: bigint, t: Target): Promise<void> {
    const total = t.length;
    if (this.#helper) this.#helper.disturbed = 0;
    // A read of several chunks overlaps the guest's copy of one with the host's of the previous,
    // so the vCPU runs on its own thread then; a short access stays on this one (no handoff). Only
    // where a window shows the GiB already: a first read there is mostly shadow page faults, and
    // measured about 15% slower overlapped (0.25-0.27 against 0.28-0.32 GB/s, 3 runs of 9).
    const gib = gpa & ~(GiB - 1n);
    const overlap = !t.write && total > CHUNK && this.#helper !== undefined && this.#helper.windows.includes(gib);
    if (this.#helper && !this.#vcpuBroken && !overlap) this.#helper.vcpu.setRunInline(RUN_INLINE_US);
    let inflight: Inflight | undefined;
    try {
      await this.#chunks(gpa, t, total, overlap, (f) => {
        inflight = f;
      });
    } finally {
      // Never leave a run going: the next call would find the vCPU busy.
      if (inflight) await inflight.run.catch(() => false);
    }
  }

  /** A fast read's copy in flight: its chunk, its bounce buffer and whether the guest's copy worked. */
  async #finish(f: Inflight): Promise<void> {
    if (await f.run) this.#fromBounce(f.h, f.slice, f.bounce);
    else await this.#slowChunk(this.#ensureHelper(), f.at, f.n, f.slice, false);
  }

  async #chunks(
    gpa: bigint,
    t: Target,
    total: bigint,
    overlap: boolean,
    track: (f: Inflight | undefined) => void,
  ): Promise<void> {
    let done = 0n;
    let prev: Inflight | undefined;
    let which: 0 | 1 = 0;
    while (done < total) {
      if (this.#closed || this.vm.closed) throw new ClosedError('Vm');
      // Not the vCPU yet: the previous chunk's run may still be in flight on it.
      this.#ensureRegion();
      const at = gpa + done;
      // Past the guest's physical address width the helper's page tables would triple-fault:
      // a fault at that page instead, as the simulator reports it (found by the differential fuzzer).
      const limit = guestPhysLimit();
      if (at >= limit) throw new GuestMemoryFault({ gpa: num(at & ~(PAGE - 1n)), size: Number(PAGE), private: false });
      const gibEnd = (at & ~(GiB - 1n)) + GiB;
      let n = total - done < CHUNK ? total - done : CHUNK;
      if (at + n > gibEnd) n = gibEnd - at;
      if (at + n > limit) n = limit - at;
      this.#sameSize(t, total);
      const slice = t.buf.subarray(Number(done), Number(done + n));
      const fast = this.#fastPathSees(at, n);
      if (overlap && fast) {
        // The previous guest copy must be over before this one starts on the same vCPU.
        if (prev && !(await prev.run)) {
          track(undefined);
          await this.#slowChunk(this.#ensureHelper(), prev.at, prev.n, prev.slice, false);
          prev = undefined;
        }
        const cur: Inflight = { h: this.#ensureHelper(), at, n, slice, bounce: which, run: Promise.resolve(false) };
        cur.h.vcpu.setRunInline(0); // a vCPU made since the call began starts with the default
        cur.run = this.#fastChunk(cur.h, at, n, slice, false, which);
        track(cur);
        if (prev) this.#fromBounce(prev.h, prev.slice, prev.bounce);
        prev = cur;
        which = which === 0 ? 1 : 0;
      } else {
        if (prev) {
          track(undefined);
          await this.#finish(prev);
          prev = undefined;
        }
        const h = this.#ensureHelper();
        if (fast && (await this.#fastChunk(h, at, n, slice, t.write, 0))) {
          if (!t.write) this.#fromBounce(h, slice, 0);
        } else {
          await this.#slowChunk(this.#ensureHelper(), at, n, slice, t.write);
        }
      }
      done += n;
    }
    if (prev) {
      track(undefined);
      await this.#finish(prev);
    }
  }

  // A target or source detached or shrunk under the call (transferred, or a resizable buffer).
  #sameSize(t: Target, total: bigint): void {
    if (BigInt(t.buf.byteLength) !== total) throw guestDetached(t.write ? 'write' : 'readInto');
  }

  #bounce(h: Helper, which: 0 | 1): Uint8Array | undefined {
    if (h.bounce === undefined || h.bounce.byteLength === 0) {
      try {
        h.bounce = new Uint8Array(h.map.view(), Number(BOUNCE), Number(2n * CHUNK));
      } catch {
        h.bounce = undefined; // a runtime without external ArrayBuffers: the mapping's own copies
      }
    }
    return h.bounce?.subarray(which * Number(CHUNK), (which + 1) * Number(CHUNK));
  }

  #toBounce(h: Helper, src: Uint8Array): void {
    if (src.byteLength === 0) throw guestDetached('write'); // every chunk has a byte at least
    const b = this.#bounce(h, 0);
    if (b) b.set(src);
    else h.map.write(Number(BOUNCE), Buffer.from(src));
  }

  #fromBounce(h: Helper, dst: Uint8Array, which: 0 | 1): void {
    if (dst.byteLength === 0) throw guestDetached('readInto');
    const b = this.#bounce(h, which);
    if (b) dst.set(b.subarray(0, dst.byteLength));
    else dst.set(h.map.read(Number(BOUNCE + BigInt(which) * CHUNK), dst.byteLength));
  }

  /**
   * The CPL3 copy (a read into bounce buffer `which`, left there); false when it could not finish
   * (then the vCPU is replaced).
   */
  async #fastChunk(
    h: Helper,
    at: bigint,
    n: bigint,
    slice: Uint8Array,
    write: boolean,
    which: 0 | 1,
  ): Promise<boolean> {
    const bounce = BOUNCE + BigInt(which) * CHUNK;
    const gen = h.gen;
    const gib = at & ~(GiB - 1n);
    const va = fastVa(this.#window(h, gib)) + (at - gib);
    if (h.cpl !== 3) this.#setCpl(h, 3);
    if (write) this.#toBounce(h, slice);
    h.map.write(ARGS, u64le([write ? bounce : va, write ? va : bounce, n >> 3n, n & 7n]));
    if (!h.atTop) {
      h.vcpu.setRegs({ rip: BigInt(PROG3), rflags: RFLAGS3 });
      h.atTop = true;
    }
    for (;;) {
      let e: VcpuExit | 'disturbed';
      try {
        e = await this.#run(h);
      } catch (err) {
        if (this.#closed || this.vm.closed) throw new ClosedError('Vm');
        if (h.gen !== gen) return false;
        this.#vcpuBroken = true;
        // A failed KVM_RUN is the caller's to see (the fault walk), not a reason to go slow.
        if (err instanceof KvmError) throw err;
        this.#fastFailures++;
        return false;
      }
      // The region moved under the run (a slot the user set): redo the chunk on a fresh vCPU.
      if (h.gen !== gen) {
        h.atTop = false;
        return false;
      }
      // The tables changed under the run: its result is worthless; the CPL0 path redoes the chunk.
      if (e === 'disturbed') {
        h.atTop = false;
        return false;
      }
      if (e.reason === 'intr') continue;
      if (e.reason === 'io' && e.port === PORT && e.direction === 'out' && e.data[0] === 0) break;
      // An MMIO exit, a memory fault or anything else: the CPL0 path finds out what it is.
      this.#vcpuBroken = true;
      this.#fastFailures++;
      h.atTop = false;
      return false;
    }
    return true;
  }

  /** The CPL3 window showing the GiB at gpa `gib`, made (or repointed) when none does. */
  #window(h: Helper, gib: bigint): number {
    let w = h.windows.indexOf(gib);
    if (w < 0) {
      w = h.windows.indexOf(undefined);
      if (w < 0) w = h.used.indexOf(Math.min(...h.used));
      const limit = guestPhysLimit();
      const pdes: bigint[] = [];
      for (let i = 0n; i < 512n; i++) pdes.push(gib + i * LARGE < limit ? (gib + i * LARGE) | PTE_LARGE : 0n);
      const pd = FAST_PD + w * 0x1000;
      this.#writeTables(h, pd, u64le(pdes));
      this.#writeTables(h, PDPT + 8 * (2 + w), u64le([(h.gpa + BigInt(pd)) | PTE_TABLE]));
      try {
        this.#rebindTables(h);
      } catch (e) {
        h.windows.fill(undefined);
        throw e;
      }
      h.windows[w] = gib;
    }
    h.used[w] = ++h.tick;
    return w;
  }

  /** The CPL0 probe and copy, which sees and reports every fault. */
  async #slowChunk(h: Helper, at: bigint, n: bigint, slice: Uint8Array, write: boolean): Promise<void> {
    if (h.cpl !== 0) this.#setCpl(h, 0);
    h.atTop = false;
    const base = at & ~(LARGE - 1n);
    this.#writeTables(h, PD_WIN, u64le([base | PTE_LARGE, (base + LARGE) | PTE_LARGE]));
    const firstPage = at & ~(PAGE - 1n);
    const pages = ((at + n - 1n) & ~(PAGE - 1n)) - firstPage + PAGE;
    const winAt = WINDOW_VA + (at - base);
    for (let attempt = 0; ; attempt++) {
      if (attempt === DISTURBED_LIMIT) {
        throw new Error(
          `vm.guest: the helper was disturbed ${attempt} times by writes to its abort flag or page tables in 0x${h.gpa.toString(16)}+0x${REGION_SIZE.toString(16)} (a vCPU is writing vm.guest.reserved)`,
        );
      }
      if (attempt > 0) {
        h = this.#ensureHelper(); // a disturbed run may have left its vCPU broken
        if (h.cpl !== 0) this.#setCpl(h, 0);
      }
      h.map.write(FLAG, Buffer.of(0));
      if (write) this.#toBounce(h, slice);
      h.vcpu.setRegs({
        rip: BigInt(PROG0),
        rflags: RFLAGS0,
        rdx: WINDOW_VA + (firstPage - base),
        r8: pages / PAGE,
        r9: BigInt(FLAG),
        rsi: write ? BOUNCE : winAt,
        rdi: write ? winAt : BOUNCE,
        rcx: n >> 3n,
        r10: n & 7n,
      });
      let r: 'done' | 'again' | 'moved';
      try {
        r = await this.#runSlow(h);
      } catch (e) {
        // The probe stops the whole chunk at its first bad page: the bytes before it are still
        // copied (in order, as a guest's copy would), then the fault is reported.
        const bad = e instanceof GuestMemoryFault ? BigInt(e.gpa) : at;
        if (bad > at && bad < at + n)
          await this.#slowChunk(this.#ensureHelper(), at, bad - at, slice.subarray(0, Number(bad - at)), write);
        throw e;
      }
      if (r === 'moved') return this.#slowChunk(this.#ensureHelper(), at, n, slice, write);
      if (r === 'done') break;
    }
    if (!write) this.#fromBounce(h, slice, 0);
  }

  /**
   * Runs the CPL0 program once: done, again (a forged abort) or moved (the region moved under the
   * run: its exits say nothing of the target).
   */
  async #runSlow(h: Helper): Promise<'done' | 'again' | 'moved'> {
    let fault: { gpa: number; size: number; private: boolean } | undefined;
    let mmioExits = 0;
    const gen = h.gen;
    for (;;) {
      let e: VcpuExit | 'disturbed';
      try {
        e = await this.#run(h);
      } catch (err) {
        this.#vcpuBroken = true;
        if (h.gen !== gen && !this.#closed && !this.vm.closed) return 'moved';
        throw err;
      }
      if (h.gen !== gen) return 'moved';
      if (e === 'disturbed') return 'again';
      if (e.reason === 'io' && e.port === PORT && e.direction === 'out') {
        if (e.data[0] === 0 && !fault) return 'done';
        // Aborted on a flag the host did not set: another vCPU wrote it. Not a fault; run again.
        if (!fault) return 'again';
        const f = fault;
        throw new GuestMemoryFault({
          ...f,
          message: `guest access to gpa 0x${f.gpa.toString(16)} faulted (the guest may not map this page${f.private ? ': private guest_memfd memory' : ''})`,
        });
      }
      if (e.reason === 'mmio') {
        // The guest touched a page without memory behind it for the guest: stop at the next check.
        const page = BigInt(e.address) & ~(PAGE - 1n);
        fault ??= { gpa: num(page), size: Number(PAGE), private: this.#isPrivate(page) };
        h.map.write(FLAG, Buffer.of(1));
        if (++mmioExits > MMIO_EXIT_LIMIT) {
          this.#vcpuBroken = true;
          throw new GuestMemoryFault({
            ...fault,
            message: `guest access to gpa 0x${fault.gpa.toString(16)} faulted (MMIO exit during the copy)`,
          });
        }
        continue;
      }
      if (e.reason === 'memory_fault') {
        throw new GuestMemoryFault({ gpa: e.gpa, size: e.size, private: e.private });
      }
      if (e.reason === 'intr') continue;
      this.#vcpuBroken = true;
      throw new Error(
        `vm.guest: the helper vCPU stopped unexpectedly (exit ${JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))})`,
      );
    }
  }

  /** The helper's region and slots (made on first use), without touching its vCPU. */
  #ensureRegion(): void {
    if (!this.#helper) this.#ensureHelper();
  }

  #ensureHelper(): Helper {
    const h = this.#helper;
    if (h && h.slots.some((x) => x < 0)) {
      // A failed slot call left the region half bound: bind it whole again.
      this.#unbind(h);
      this.#place(h);
    }
    if (h && !this.#vcpuBroken) return h;
    if (h) {
      // A vCPU left mid-instruction cannot be reset through KVM; a fresh one (new id) replaces it
      // (KVM keeps the old one until the VM goes; its fd is closed now).
      h.vcpu.close();
      h.vcpu = this.#newVcpu();
      this.#vcpuBroken = false;
      this.#setupVcpu(h);
      return h;
    }
    const native = this.vm.native;
    // A VM with private memory (type 1) offers no INIT_SHARED (kvm_gmem_get_supported_flags): the
    // helper's memory is then a type-0 VM's shared file (its slots are plain userspace slots anyway).
    const shared = BigInt(FLAGS.GUEST_MEMFD_FLAG_MMAP! | FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!);
    const donor =
      (BigInt(this.vm.checkExtension(CAPS.GUEST_MEMFD_FLAGS!)) & shared) === shared ? undefined : this.vm.makeDonor();
    const gmem = (donor ?? native).createGuestMemfd(REGION_SIZE, shared);
    let map: NativeMapping | undefined;
    let helper: Helper | undefined;
    try {
      map = gmem.map(0, REGION_SIZE, false);
      map.write(PROG0, PROGRAM0);
      map.write(PROG3, PROGRAM3);
      map.write(GDT, u64le(GDT_ENTRIES));
      map.write(TSS, tssBytes());
      helper = {
        slots: [-1, -1],
        gpa: 0n,
        gmem,
        map,
        bounce: undefined,
        vcpu: undefined as unknown as KvmVcpu,
        donor,
        cpl: 0,
        atTop: false,
        windows: new Array<bigint | undefined>(FAST_WINDOWS).fill(undefined),
        used: new Array<number>(FAST_WINDOWS).fill(0),
        tick: 0,
        gen: 0,
        tables: Buffer.alloc(TABLES_SIZE),
        tableView: undefined,
        disturbed: 0,
      };
      helper.vcpu = this.#newVcpu();
      this.#place(helper);
      this.#helper = helper;
      return helper;
    } catch (e) {
      // Undo whatever was made before the failure: the slots, the vCPU's fd, then the file.
      if (helper) {
        try {
          this.#unbind(helper);
        } catch {
          // the VM closes the slots with it
        }
      }
      helper?.vcpu?.close();
      gmem.close();
      donor?.close();
      throw e;
    }
  }

  #newVcpu(): KvmVcpu {
    // An id users are unlikely to pick: the top of the range, walking down past any in use.
    this.#nextVcpuId ??=
      Math.max(this.vm.checkExtension(CAPS.MAX_VCPU_ID!), this.vm.checkExtension(CAPS.MAX_VCPUS!), 1) - 1;
    for (;;) {
      const id = this.#nextVcpuId--;
      try {
        return new KvmVcpu(this.vm.native.createVcpu(id), () => {});
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST' || id === 0) throw e;
      }
    }
  }

  #unbind(h: Helper): void {
    for (const slot of h.slots) if (slot >= 0) this.vm.native.setUserMemoryRegion2({ slot });
    h.slots = [-1, -1];
  }

  // Picks two slot ids and a gpa clear of the user's slots (and of `avoid`), binds the region there
  // and writes the page tables, whose entries hold physical addresses.
  #place(h: Helper, avoid?: { slot: number; gpa: bigint; size: bigint }): void {
    const used = [...this.vm.slots.values()].map((s) => ({ slot: s.slot, gpa: s.guestPhysAddr, size: s.size }));
    if (avoid) used.push(avoid);
    const overlaps = (g: bigint) => used.some((s) => g < s.gpa + s.size && s.gpa < g + REGION_SIZE);
    const align = (g: bigint) => (g + REGION_ALIGN - 1n) & ~(REGION_ALIGN - 1n);
    const candidates = [PREFERRED_GPA, ...used.map((s) => align(s.gpa + s.size)).sort((a, b) => (a < b ? -1 : 1))];
    const gpa = candidates.find((g) => !overlaps(g))!;
    const ids: number[] = [];
    for (let slot = this.vm.checkExtension(CAPS.NR_MEMSLOTS!) - 1; ids.length < 2; slot--) {
      if (!used.some((s) => s.slot === slot)) ids.push(slot);
    }
    const [ro, rw] = ids as [number, number];
    // The tables first (their entries hold physical addresses), then the slots, the one holding the
    // tables last: KVM keeps no shadow of the tables as they were.
    this.#writeTables(h, PML4, u64le([(gpa + BigInt(PDPT)) | PTE_TABLE]));
    this.#writeTables(
      h,
      PDPT,
      u64le([
        (gpa + BigInt(PD_LOW)) | PTE_TABLE,
        (gpa + BigInt(PD_WIN)) | PTE_TABLE,
        ...new Array<bigint>(FAST_WINDOWS).fill(0n),
      ]),
    );
    const lows: bigint[] = [];
    for (let at = 0n; at < REGION_SIZE; at += LARGE) lows.push((gpa + at) | PTE_LARGE);
    this.#writeTables(h, PD_LOW, u64le(lows));
    h.windows.fill(undefined);
    h.used.fill(0);
    // Userspace slots over the helper's own mapping: KVM refuses KVM_MEM_READONLY on a guest_memfd slot.
    this.vm.native.setUserMemoryRegion2({
      slot: ro,
      flags: FLAGS.KVM_MEM_READONLY!,
      guestPhysAddr: gpa,
      size: RO_SIZE,
      userspace: h.map,
    });
    h.slots = [ro, -1];
    this.#bindWritable(h, rw, gpa);
    h.gpa = gpa;
    h.gen++;
    if (this.#running === h.vcpu) {
      // Mid-run (a slot set while a call awaits): stop it; the chunk is redone on a fresh vCPU.
      this.#vcpuBroken = true;
      h.vcpu.kick();
    } else {
      this.#setupVcpu(h);
    }
  }

  #setCpl(h: Helper, cpl: 0 | 3): void {
    h.vcpu.setSregs(flatSegments(cpl));
    h.cpl = cpl;
    h.atTop = false;
  }

  // 64-bit mode straight away: paging on, EFER.LME|LMA, a long-mode code segment, flat data, and
  // a TSS whose I/O bitmap lets the CPL3 program's `out` through.
  #setupVcpu(h: Helper): void {
    h.vcpu.setSregs(
      longModeSystem({ tss: BigInt(TSS), gdt: BigInt(GDT), idt: { base: 0n, limit: 0 }, cr3: h.gpa + BigInt(PML4) }),
    );
    this.#setCpl(h, 0);
  }
}
