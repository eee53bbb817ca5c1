// C guests: compiled with the system's C compiler into a static, freestanding, non-PIC ELF linked
// at the address the builder loads programs, with the package's guest header on the include path.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedError, argRangeError, argTypeError } from '../errors.js';
import type { U64 } from '../types.js';
import { describe, u64 } from '../validate.js';

/** The folder holding kvm-gmem-guest.h (the package's `guest/`, from lib/toolkit or dist/toolkit). */
export const GUEST_INCLUDE_DIR = fileURLToPath(new URL('../../guest/', import.meta.url));

/** The compiler ran and failed: its diagnostics are in the error. */
export class GuestCompileError extends Error {
  readonly code = 'ERR_GUEST_COMPILE' as const;
  /** The compiler's standard error output. */
  readonly diagnostics: string;
  readonly command: string[];
  readonly exitCode: number | null;
  constructor(command: string[], diagnostics: string, exitCode: number | null) {
    super(`guest compile failed (${command[0]} exited with ${exitCode ?? 'a signal'}):\n${diagnostics.trim()}`);
    this.name = 'GuestCompileError';
    this.diagnostics = diagnostics;
    this.command = command;
    this.exitCode = exitCode;
  }
}

export interface CompileOptions {
  /** Where the program's first byte goes (the builder passes its code address). */
  loadAddress: U64;
  /** Highest address the program may reach (exclusive): the linker refuses a larger program. */
  limit: U64;
  /** The compiler: default $CC, then `cc`, then `gcc`. */
  cc?: string;
  /** More flags, after the library's (e.g. ['-O0', '-DN=4']). */
  cflags?: string[];
  /** The source's file name as __FILE__ shows it (source strings only); default 'guest.c'. */
  filename?: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  notFound: boolean;
}

function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
        notFound: e?.code === 'ENOENT',
      });
    });
  });
}

/** AMD's hypercall instruction is vmmcall (KVM emulates vmcall there, but PVM gives #GP at CPL3). */
function hostIsAmd(): boolean {
  try {
    return /^vendor_id\s*:\s*AuthenticAMD/m.test(readFileSync('/proc/cpuinfo', 'latin1'));
  } catch {
    return false;
  }
}

function linkerScript(load: bigint, limit: bigint): string {
  return [
    'ENTRY(_kg_start)',
    'SECTIONS {',
    `  . = 0x${load.toString(16)};`,
    '  .text : { KEEP(*(.text.kg_entry)) *(.text .text.*) }',
    '  .rodata : { *(.rodata .rodata.*) }',
    '  .data : { *(.data .data.*) }',
    '  .bss : { *(.bss .bss.*) *(COMMON) }',
    `  ASSERT(. <= 0x${limit.toString(16)}, "kvm-gmem: the guest program does not fit below its stack")`,
    '  /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame*) }',
    '}',
    '',
  ].join('\n');
}

/** The flags every guest is built with; `-mcmodel=large` when it lies above 2 GiB. */
export function guestCflags(limit: bigint): string[] {
  return [
    '-ffreestanding',
    '-nostdlib',
    '-static',
    '-fno-pic',
    '-fno-pie',
    '-no-pie',
    '-mno-red-zone',
    '-mgeneral-regs-only',
    '-fno-stack-protector',
    '-fcf-protection=none',
    '-fno-asynchronous-unwind-tables',
    '-fno-tree-loop-distribute-patterns',
    limit > 0x80000000n ? '-mcmodel=large' : '-mcmodel=small',
    '-O2',
    '-g0',
    '-Wall',
    ...(hostIsAmd() ? ['-DKG_VMMCALL'] : []),
    `-I${GUEST_INCLUDE_DIR}`,
    '-Wl,--build-id=none',
    '-Wl,-z,noexecstack',
    '-Wl,-z,norelro',
    '-Wl,--no-warn-rwx-segments',
  ];
}

/**
 * Compiles C guest code (source text, or `{ file }`) into an ELF linked at `loadAddress`.
 * UnsupportedError (feature 'c-compiler') when no compiler runs; GuestCompileError with the
 * compiler's diagnostics when it fails.
 */
export async function compileGuest(source: string | { file: string }, options: CompileOptions): Promise<Buffer> {
  if (
    typeof source !== 'string' &&
    (typeof source !== 'object' || source === null || typeof source.file !== 'string')
  ) {
    throw argTypeError(`source must be C source text or { file: path }, got ${describe(source)}`);
  }
  if (typeof options !== 'object' || options === null)
    throw argTypeError(`options must be an object, got ${describe(options)}`);
  const load = u64('loadAddress', options.loadAddress);
  const limit = u64('limit', options.limit);
  if (limit <= load)
    throw argRangeError(`limit must lie above loadAddress, got 0x${limit.toString(16)} <= 0x${load.toString(16)}`);
  if (options.cc !== undefined && typeof options.cc !== 'string')
    throw argTypeError(`cc must be a string, got ${describe(options.cc)}`);
  const extra = options.cflags ?? [];
  if (!Array.isArray(extra) || extra.some((f) => typeof f !== 'string'))
    throw argTypeError(`cflags must be an array of strings, got ${describe(extra)}`);
  const filename = options.filename ?? 'guest.c';
  if (typeof filename !== 'string' || filename.includes('/') || filename === '')
    throw argTypeError(`filename must be a plain file name, got ${describe(filename)}`);
  const dir = await mkdtemp(path.join(tmpdir(), 'kvm-gmem-guest-'));
  try {
    await writeFile(path.join(dir, 'guest.ld'), linkerScript(load, limit));
    let input: string;
    if (typeof source === 'string') {
      await writeFile(path.join(dir, filename), source);
      input = filename;
    } else {
      input = path.resolve(source.file);
    }
    const candidates =
      options.cc !== undefined ? [options.cc] : [...(process.env.CC ? [process.env.CC] : []), 'cc', 'gcc'];
    const args = [...guestCflags(limit), '-Wl,-T,guest.ld', ...extra, '-o', 'guest.elf', input];
    for (const cc of candidates) {
      const r = await run(cc, args, dir);
      if (r.notFound) continue;
      if (r.code !== 0) throw new GuestCompileError([cc, ...args], r.stderr || r.stdout, r.code);
      return await readFile(path.join(dir, 'guest.elf'));
    }
    throw new UnsupportedError(
      'c-compiler',
      `no C compiler found to build the guest (tried ${candidates.join(', ')}; set $CC or options.cc)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
