// A minimal ELF64 loader for guest programs: the PT_LOAD segments and the entry point, nothing else
// (no relocations: guests are linked static, non-PIC, at the address the builder loads them).
import { argRangeError, argTypeError } from '../errors.js';

export interface ElfSegment {
  /** Guest address of the segment (p_paddr; the builder's map is the identity, so also p_vaddr). */
  addr: bigint;
  data: Buffer;
  /** Bytes in memory: data then zeros (.bss). */
  memSize: bigint;
}

export interface ElfImage {
  entry: bigint;
  segments: ElfSegment[];
}

const PT_LOAD = 1;
const EM_X86_64 = 62;

export function parseElf(bytes: Uint8Array): ElfImage {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46)
    throw argTypeError('program.elf is not an ELF file (no \\x7fELF magic)');
  if (b[4] !== 2 || b[5] !== 1) throw argTypeError('program.elf must be a little-endian ELF64 file');
  const machine = b.readUInt16LE(18);
  if (machine !== EM_X86_64) throw argTypeError(`program.elf must be for x86-64 (e_machine 62), got ${machine}`);
  const entry = b.readBigUInt64LE(24);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  if (phoff + phnum * phentsize > b.length)
    throw argRangeError('program.elf: the program headers lie past the end of the file');
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const h = phoff + i * phentsize;
    if (b.readUInt32LE(h) !== PT_LOAD) continue;
    const offset = Number(b.readBigUInt64LE(h + 8));
    const addr = b.readBigUInt64LE(h + 24); // p_paddr
    const fileSize = Number(b.readBigUInt64LE(h + 32));
    const memSize = b.readBigUInt64LE(h + 40);
    if (offset + fileSize > b.length) throw argRangeError(`program.elf: segment ${i} lies past the end of the file`);
    if (BigInt(fileSize) > memSize)
      throw argRangeError(`program.elf: segment ${i} has more file bytes than memory bytes`);
    if (memSize === 0n) continue;
    segments.push({ addr, data: b.subarray(offset, offset + fileSize), memSize });
  }
  if (segments.length === 0) throw argRangeError('program.elf has no loadable segment');
  return { entry, segments };
}
