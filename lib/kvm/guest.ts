// vm.guest on the real backend: memory as the guest sees it, read and written by a small guest
// program on a vCPU and in a memory slot of the library's own, out of the user's way.
//
// The helper runs in 64-bit mode, set up directly through KVM_SET_SREGS (after KVM_SET_CPUID2,
// done when any vCPU is created). Its 4 MiB region holds code, page tables and a 2 MiB bounce
// buffer the host reaches through its own mmap. The target is reached through a movable window:
// two 2 MiB page-table entries the host points at the target before each chunk (1 GiB pages end
// in KVM_EXIT_SHUTDOWN on this machine), so any gpa a slot covers is reachable, above 4 GiB too.
// Before copying a chunk the program reads one byte of each page and checks an abort flag: a page
// the guest may not map (a private guest_memfd page ends in KVM_EXIT_MMIO here) costs one MMIO exit
// and one io exit, never one exit per byte.
import { constants as bufferConstants } from 'node:buffer';
import { FLAGS, CAPS } from '../constants.js';
import { ClosedError, GuestMemoryFault, argRangeError } from '../errors.js';
import type { GuestAccess, U64, VcpuExit } from '../types.js';
import { bytes, num, rangeEnd, u64 } from '../validate.js';
import { guestPhysLimit } from '../phys-bits.js';
import type { NativeGuestMemfd } from './guest-memfd.js';
import type { NativeMapping } from './mapping.js';
import { KvmVcpu } from './vcpu.js';
import type { KvmVm, NativeVm } from './vm.js';

const MiB = 1n << 20n;
const PAGE = 4096n;
const HELPER_SIZE = 4n * MiB;
const BOUNCE = 2n * MiB; // offset of the bounce buffer in the helper region (and its VA)
const CHUNK = 2n * MiB;
const LARGE = 2n * MiB;
// Offsets in the helper region's first page group.
const FLAG = 0x800; // abort flag, set by the host on an MMIO exit
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD_LOW = 0x3000; // VA 0..1 GiB: the helper region itself
const PD_WIN = 0x4000; // VA 1..2 GiB: the window onto the target
const GDT = 0x5000;
const WINDOW_VA = 1n << 30n;
const PORT = 0x4b47; // 'KG'
const PREFERRED_GPA = 0xf000_0000n; // below 4 GiB: within every guest's physical address width
const MMIO_EXIT_LIMIT = 16;
const PTE_LARGE = 0x83n; // present | writable | 2 MiB page
const PTE_TABLE = 0x03n; // present | writable

const lo = PORT & 0xff;
const hi = PORT >> 8;
// Args: rdx = window VA of the first page to probe, r8 = pages to probe, r9 = VA of the abort flag,
// rsi/rdi = copy source and destination, rcx = length / 8 (rep movsq), r10 = length % 8.
const PROGRAM = Buffer.from([
  0x0f, 0x20, 0xd8, //             0x00 mov rax, cr3
  0x0f, 0x22, 0xd8, //             0x03 mov cr3, rax        ; drop the old window's TLB entries
  0x4d, 0x85, 0xc0, //             0x06 probe: test r8, r8
  0x74, 0x14, //                   0x09 jz copy (0x1f)
  0x8a, 0x02, //                   0x0b mov al, [rdx]       ; touch one byte of the page
  0x41, 0x80, 0x39, 0x00, //       0x0d cmp byte [r9], 0    ; did the host flag a fault?
  0x75, 0x1c, //                   0x11 jne abort (0x2f)
  0x48, 0x81, 0xc2, 0x00, 0x10, 0x00, 0x00, // 0x13 add rdx, 4096
  0x49, 0xff, 0xc8, //             0x1a dec r8
  0xeb, 0xe7, //                   0x1d jmp probe (0x06)
  0xf3, 0x48, 0xa5, //             0x1f copy: rep movsq     ; rcx = length / 8
  0x4c, 0x89, 0xd1, //             0x22 mov rcx, r10        ; r10 = length % 8
  0xf3, 0xa4, //                   0x25 rep movsb
  0xb0, 0x00, //                   0x27 mov al, 0           ; status: done
  0x66, 0xba, lo, hi, //           0x29 mov dx, PORT
  0xee, //                         0x2d out dx, al
  0xf4, //                         0x2e hlt
  0xb0, 0x01, //                   0x2f abort: mov al, 1     ; status: aborted
  0x66, 0xba, lo, hi, //           0x31 mov dx, PORT
  0xee, //                         0x35 out dx, al
  0xf4, //                         0x36 hlt
]);

interface Helper {
  slot: number;
  gpa: bigint;
  gmem: NativeGuestMemfd;
  map: NativeMapping;
  vcpu: KvmVcpu;
  /** Set when the memory is a type-0 VM's file: this VM (type 1) offers no INIT_SHARED. */
  donor?: NativeVm;
}

function u64le(values: bigint[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64LE(v, i * 8));
  return b;
}

export class KvmGuestAccess implements GuestAccess {
  #helper: Helper | undefined;
  #vcpuBroken = false;
  #nextVcpuId: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(readonly vm: KvmVm) {}

  read(gpa: U64, length: U64): Promise<Buffer> {
    try {
      const start = u64('gpa', gpa);
      const len = u64('length', length);
      if (len > BigInt(bufferConstants.MAX_LENGTH)) throw argRangeError(`length ${len} is larger than a Buffer can be`);
      this.#check(start, len, false);
      const out = Buffer.alloc(Number(len));
      return this.#serial(() => this.#transfer(start, out, false)).then(() => out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  write(gpa: U64, data: ArrayBufferView): Promise<void> {
    try {
      const start = u64('gpa', gpa);
      const src = bytes('data', data);
      const readonlyAt = this.#check(start, BigInt(src.byteLength), true);
      // A copy, so the caller may reuse its buffer as soon as write() returns.
      const copy = Buffer.from(src);
      if (readonlyAt === undefined) return this.#serial(() => this.#transfer(start, copy, true));
      // The pages before the read-only slot are written in order (and may fault first); then the
      // read-only page faults, as a guest writing in address order would see it.
      return this.#serial(async () => {
        if (readonlyAt > start) await this.#transfer(start, copy.subarray(0, Number(readonlyAt - start)), true);
        throw new GuestMemoryFault({
          gpa: num(readonlyAt & ~(PAGE - 1n)),
          size: Number(PAGE),
          private: false,
          message: `guest write to a read-only slot at gpa 0x${readonlyAt.toString(16)}`,
        });
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Before the user sets a slot: move the helper out of the way if the new slot would collide. */
  makeRoom(slot: number, gpa: bigint, size: bigint): void {
    const h = this.#helper;
    if (!h) return;
    // A delete (size 0) of the helper's slot id must find no slot there, as on a VM without a helper.
    if (slot !== h.slot && (size === 0n || gpa + size <= h.gpa || h.gpa + HELPER_SIZE <= gpa)) return;
    this.vm.native.setUserMemoryRegion2(h.slot, 0, 0, 0, null, 0, null, 0);
    this.#place(h, { slot, gpa, size });
  }

  markClosed(): void {
    this.#closed = true;
    this.#helper?.vcpu.markClosed();
    this.#helper?.donor?.close();
    this.#helper = undefined;
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(op, op);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  // The user's slots must cover [gpa, gpa + len); writes must not land in a read-only slot.
  /** Closed and coverage checks; for a write, where its first read-only slot starts (if any). */
  #check(gpa: bigint, len: bigint, write: boolean): bigint | undefined {
    if (this.#closed || this.vm.closed) throw new ClosedError('Vm');
    const end = rangeEnd(gpa, len);
    const slots = [...this.vm.slots.values()].sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
    // Coverage of the whole range first (RangeError), as the simulator orders it (found by the
    // differential fuzzer); a read-only slot only faults when the write reaches it.
    const runs: [typeof slots[number], bigint][] = [];
    let at = gpa;
    while (at < end) {
      const s = slots.find((x) => x.guestPhysAddr <= at && at < x.guestPhysAddr + x.size);
      if (!s) {
        throw argRangeError(`gpa 0x${at.toString(16)} is not in any memory slot (range 0x${gpa.toString(16)}+${len})`);
      }
      runs.push([s, at]);
      at = s.guestPhysAddr + s.size;
    }
    if (!write) return undefined;
    return runs.find(([s]) => (s.flags & FLAGS.KVM_MEM_READONLY!) !== 0)?.[1];
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

  async #transfer(gpa: bigint, buf: Buffer, write: boolean): Promise<void> {
    let done = 0n;
    const total = BigInt(buf.length);
    while (done < total) {
      if (this.#closed || this.vm.closed) throw new ClosedError('Vm');
      const h = this.#ensureHelper();
      const at = gpa + done;
      // Past the guest's physical address width the helper's page tables would triple-fault:
      // a fault at that page instead, as the simulator reports it (found by the differential fuzzer).
      const limit = guestPhysLimit();
      if (at >= limit) throw new GuestMemoryFault({ gpa: num(at & ~(PAGE - 1n)), size: Number(PAGE), private: false });
      const base = at & ~(LARGE - 1n);
      let n = total - done < CHUNK ? total - done : CHUNK;
      if (at + n > limit) n = limit - at;
      const slice = buf.subarray(Number(done), Number(done + n));
      h.map.write(PD_WIN, u64le([base | PTE_LARGE, (base + LARGE) | PTE_LARGE]));
      h.map.write(FLAG, Buffer.of(0));
      if (write) h.map.write(Number(BOUNCE), slice);
      const firstPage = at & ~(PAGE - 1n);
      const pages = ((at + n - 1n) & ~(PAGE - 1n)) - firstPage + PAGE;
      const winAt = WINDOW_VA + (at - base);
      h.vcpu.setRegs({
        rip: 0n, rflags: 2n,
        rdx: WINDOW_VA + (firstPage - base), r8: pages / PAGE, r9: BigInt(FLAG),
        rsi: write ? BOUNCE : winAt, rdi: write ? winAt : BOUNCE, rcx: n >> 3n, r10: n & 7n,
      });
      await this.#runChunk(h);
      if (!write) h.map.readInto(Number(BOUNCE), slice);
      done += n;
    }
  }

  async #runChunk(h: Helper): Promise<void> {
    let fault: { gpa: number; size: number; private: boolean } | undefined;
    let mmioExits = 0;
    for (;;) {
      let e: VcpuExit;
      try {
        e = await h.vcpu.run();
      } catch (err) {
        this.#vcpuBroken = true;
        throw err;
      }
      if (e.reason === 'io' && e.port === PORT && e.direction === 'out') {
        if (e.data[0] === 0 && !fault) return;
        const f = fault ?? { gpa: 0, size: Number(PAGE), private: false };
        throw new GuestMemoryFault({ ...f, message: `guest access to gpa 0x${f.gpa.toString(16)} faulted (the guest may not map this page${f.private ? ': private guest_memfd memory' : ''})` });
      }
      if (e.reason === 'mmio') {
        // The guest touched a page without memory behind it for the guest: stop at the next check.
        const page = BigInt(e.address) & ~(PAGE - 1n);
        fault ??= { gpa: num(page), size: Number(PAGE), private: this.#isPrivate(page) };
        h.map.write(FLAG, Buffer.of(1));
        if (++mmioExits > MMIO_EXIT_LIMIT) {
          this.#vcpuBroken = true;
          throw new GuestMemoryFault({ ...fault, message: `guest access to gpa 0x${fault.gpa.toString(16)} faulted (MMIO exit during the copy)` });
        }
        continue;
      }
      if (e.reason === 'memory_fault') {
        throw new GuestMemoryFault({ gpa: e.gpa, size: e.size, private: e.private });
      }
      if (e.reason === 'intr') continue;
      this.#vcpuBroken = true;
      throw new Error(`vm.guest: the helper vCPU stopped unexpectedly (exit ${JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))})`);
    }
  }

  #ensureHelper(): Helper {
    const h = this.#helper;
    if (h && !this.#vcpuBroken) return h;
    if (h) {
      // A vCPU left mid-instruction cannot be reset through KVM; a fresh one (new id) replaces it.
      h.vcpu.markClosed();
      h.vcpu = this.#newVcpu();
      this.#vcpuBroken = false;
      this.#setupVcpu(h);
      return h;
    }
    const native = this.vm.native;
    // A VM with private memory (type 1) offers no INIT_SHARED (kvm_gmem_get_supported_flags): the
    // helper's memory is then a type-0 VM's shared file, set as plain userspace memory.
    const shared = BigInt(FLAGS.GUEST_MEMFD_FLAG_MMAP! | FLAGS.GUEST_MEMFD_FLAG_INIT_SHARED!);
    const donor = (BigInt(this.vm.checkExtension(CAPS.GUEST_MEMFD_FLAGS!)) & shared) === shared ? undefined : this.vm.makeDonor();
    const gmem = (donor ?? native).createGuestMemfd(HELPER_SIZE, shared);
    let map: NativeMapping | undefined;
    let helper: Helper | undefined;
    try {
      map = gmem.map(0, HELPER_SIZE, false);
      map.write(0, PROGRAM);
      helper = { slot: -1, gpa: 0n, gmem, map, vcpu: undefined as unknown as KvmVcpu, donor };
      helper.vcpu = this.#newVcpu();
      this.#place(helper);
      this.#helper = helper;
      return helper;
    } catch (e) {
      // Undo whatever was made before the failure: the slot, the vCPU's fd, then the file.
      if (helper && helper.slot >= 0) {
        try {
          native.setUserMemoryRegion2(helper.slot, 0, 0, 0, null, 0, null, 0);
        } catch {
          // the VM closes the slot with it
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
    this.#nextVcpuId ??= Math.max(this.vm.checkExtension(CAPS.MAX_VCPU_ID!), this.vm.checkExtension(CAPS.MAX_VCPUS!), 1) - 1;
    for (;;) {
      const id = this.#nextVcpuId--;
      try {
        return new KvmVcpu(this.vm.native.createVcpu(id), () => {});
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST' || id === 0) throw e;
      }
    }
  }

  // Picks a slot id and a gpa clear of the user's slots (and of `avoid`), binds the region there
  // and writes the page tables, whose entries hold physical addresses.
  #place(h: Helper, avoid?: { slot: number; gpa: bigint; size: bigint }): void {
    const used = [...this.vm.slots.values()].map((s) => ({ slot: s.slot, gpa: s.guestPhysAddr, size: s.size }));
    if (avoid) used.push(avoid);
    const overlaps = (g: bigint) => used.some((s) => g < s.gpa + s.size && s.gpa < g + HELPER_SIZE);
    const align = (g: bigint) => (g + HELPER_SIZE - 1n) & ~(HELPER_SIZE - 1n);
    const candidates = [PREFERRED_GPA, ...used.map((s) => align(s.gpa + s.size)).sort((a, b) => (a < b ? -1 : 1))];
    const gpa = candidates.find((g) => !overlaps(g))!;
    let slot = this.vm.checkExtension(CAPS.NR_MEMSLOTS!) - 1;
    while (used.some((s) => s.slot === slot)) slot--;
    if (h.donor) this.vm.native.setUserMemoryRegion2(slot, 0, gpa, HELPER_SIZE, h.map, 0, null, 0);
    else this.vm.native.setUserMemoryRegion2(slot, FLAGS.KVM_MEM_GUEST_MEMFD!, gpa, HELPER_SIZE, h.map, 0, h.gmem, 0);
    h.slot = slot;
    h.gpa = gpa;
    h.map.write(PML4, u64le([(gpa + BigInt(PDPT)) | PTE_TABLE]));
    h.map.write(PDPT, u64le([(gpa + BigInt(PD_LOW)) | PTE_TABLE, (gpa + BigInt(PD_WIN)) | PTE_TABLE]));
    h.map.write(PD_LOW, u64le([gpa | PTE_LARGE, (gpa + BOUNCE) | PTE_LARGE]));
    this.#setupVcpu(h);
  }

  // 64-bit mode straight away: paging on, EFER.LME|LMA, a long-mode code segment, flat data.
  #setupVcpu(h: Helper): void {
    const seg = { base: 0n, limit: 0xffffffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };
    const data = { ...seg, selector: 16, type: 3, db: 1, l: 0 };
    h.vcpu.setSregs({
      cs: { ...seg, selector: 8, type: 11, db: 0, l: 1 },
      ds: data, es: data, fs: data, gs: data, ss: data,
      tr: { base: 0n, limit: 0x67, selector: 24, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 },
      gdt: { base: BigInt(GDT), limit: 0x1f },
      idt: { base: 0n, limit: 0 },
      cr0: 0x80050033n, // PG | AM | WP | NE | ET | MP | PE
      cr3: h.gpa + BigInt(PML4),
      cr4: 0x20n, // PAE
      efer: 0x500n, // LMA | LME
    });
  }
}
