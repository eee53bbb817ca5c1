// The toolkit's parts that need no /dev/kvm: the ELF loader, the ucall decoder, the page tables,
// and compileGuest's errors (a C compiler is enough for those).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GuestCompileError, UnsupportedError, compileGuest, parseElf } from '../../lib/index.js';
import { pageTables } from '../../lib/toolkit/layout.js';
import { decodeUcall } from '../../lib/toolkit/ucall.js';

const hasCc = (() => {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('toolkit parts', () => {
  it('parseElf refuses what is not a loadable x86-64 ELF64', () => {
    expect(() => parseElf(Buffer.from('hello'))).toThrow(TypeError);
    const elf = Buffer.alloc(64);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(183, 18); // aarch64
    expect(() => parseElf(elf)).toThrow(/x86-64/);
    elf.writeUInt16LE(62, 18);
    expect(() => parseElf(elf)).toThrow(/no loadable segment/);
  });

  it('decodeUcall: sync, assert with values, done; an unknown command is an Error', async () => {
    const s = Buffer.alloc(64);
    s.writeBigUInt64LE(2n, 0);
    s.writeBigUInt64LE(17n, 8);
    s.writeBigUInt64LE(0x1000n, 16);
    s.writeBigUInt64LE(0x2000n, 24);
    [4n, 5n, 1n].forEach((v, i) => s.writeBigUInt64LE(v, 32 + 8 * i));
    const strings = async (a: bigint) => (a === 0x1000n ? 'g.c' : 'a == b');
    expect(await decodeUcall(s, strings)).toEqual({
      kind: 'assert',
      file: 'g.c',
      line: 17,
      expr: 'a == b',
      values: [4n, 5n],
    });
    s.writeBigUInt64LE(1n, 0);
    expect(await decodeUcall(s, strings)).toEqual({ kind: 'sync', value: 4n, args: [4n, 5n, 1n, 0n] });
    s.writeBigUInt64LE(9n, 0);
    await expect(decodeUcall(s, strings)).rejects.toThrow(/unknown command 9/);
  });

  it('page tables map each GiB asked for with 2 MiB pages, through the right PML4 and PDPT slots', () => {
    const base = 0x4000_0000n;
    const pieces = new Map(pageTables(base, [0n, 1n << 30n, 600n << 30n]));
    const pd1 = pieces.get(0x11000)!;
    expect(pd1.readBigUInt64LE(8)).toBe((1n << 30n) + 0x200000n + 0xe7n);
    const pml4 = pieces.get(0)!;
    expect(pml4.readBigUInt64LE(0)).toBe(base + 0x1000n + 0x27n);
    expect(pml4.readBigUInt64LE(8)).toBe(base + 0x2000n + 0x27n); // 600 GiB is in the second 512 GiB
    expect(pieces.get(0x2000)!.readBigUInt64LE(8 * (600 - 512))).toBe(base + 0x12000n + 0x27n);
  });

  it('compileGuest: no compiler is UnsupportedError; bad options are typed errors', async () => {
    const opts = { loadAddress: 0x100000n, limit: 0x200000n };
    await expect(compileGuest('void guest_main(void) {}', { ...opts, cc: '/nonexistent/cc' })).rejects.toBeInstanceOf(
      UnsupportedError,
    );
    await expect(compileGuest(42 as never, opts)).rejects.toThrow(TypeError);
    await expect(compileGuest('x', { loadAddress: 0x200000n, limit: 0x100000n })).rejects.toThrow(RangeError);
    await expect(compileGuest('x', { ...opts, filename: '../x.c' })).rejects.toThrow(TypeError);
  });

  it.skipIf(!hasCc)(
    '(needs cc on PATH) compileGuest: an ELF linked at the load address; a failure carries the diagnostics; too big is refused',
    async () => {
      const src = '#include <kvm-gmem-guest.h>\nvoid guest_main(void) { GUEST_SYNC(1); }';
      const img = parseElf(await compileGuest(src, { loadAddress: 0x100000n, limit: 0x200000n }));
      expect(img.entry).toBe(0x100000n);
      expect(img.segments.every((s) => s.addr >= 0x100000n && s.addr + s.memSize <= 0x200000n)).toBe(true);
      const err = await compileGuest('int guest_main(void) { return nope; }', {
        loadAddress: 0x100000n,
        limit: 0x200000n,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestCompileError);
      expect((err as GuestCompileError).diagnostics).toMatch(/nope/);
      const big =
        '#include <kvm-gmem-guest.h>\nstatic char b[0x200000];\nvoid guest_main(void) { GUEST_SYNC((uint64_t)b); }';
      await expect(compileGuest(big, { loadAddress: 0x100000n, limit: 0x200000n })).rejects.toThrow(/does not fit/);
    },
  );
});
