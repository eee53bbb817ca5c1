// The ucall channel (as the kernel selftests' ucall: the guest fills a struct and hands its address
// to the host with one port write) and the events the host decodes from it and from the builder's
// exception handler. The struct's layout is fixed in guest/kvm-gmem-guest.h:
//   struct kg_ucall { u64 cmd; u64 line; const char *file; const char *expr; u64 args[4]; };
import type { VcpuExit } from '../types.js';

export const UCALL_SIZE = 8 * 8;
export const UCALL = { SYNC: 1, ASSERT: 2, DONE: 3 } as const;
/** A string the guest points at is read up to this many bytes (or its NUL). */
export const MAX_STRING = 1024;

export interface ExceptionReport {
  kind: 'exception';
  vector: number;
  /** The mnemonic: 'UD', 'GP', 'PF', ... */
  name: string;
  /** 0 for vectors without one. */
  errorCode: number;
  rip: bigint;
  cs: number;
  rflags: bigint;
  rsp: bigint;
  ss: number;
  /** Page faults: the faulting address. */
  cr2?: bigint;
  /** The general registers when the exception hit (rax and rdx as saved by the handler). */
  regs: { rax: bigint; rdx: bigint };
}

export type GuestEvent =
  | { kind: 'sync'; value: bigint; args: bigint[] }
  | { kind: 'assert'; file: string; line: number; expr: string; values?: [bigint, bigint] }
  | { kind: 'done' }
  | ExceptionReport
  | { kind: 'exit'; exit: VcpuExit };

/** A guest's ucall struct, as bytes, and a reader for the strings it points at. */
export async function decodeUcall(struct: Buffer, readString: (addr: bigint) => Promise<string>): Promise<GuestEvent> {
  const cmd = struct.readBigUInt64LE(0);
  const args = [0, 1, 2, 3].map((i) => struct.readBigUInt64LE(32 + 8 * i));
  switch (Number(cmd)) {
    case UCALL.SYNC:
      return { kind: 'sync', value: args[0]!, args };
    case UCALL.ASSERT: {
      const ev: GuestEvent = {
        kind: 'assert',
        file: await readString(struct.readBigUInt64LE(16)),
        line: Number(struct.readBigUInt64LE(8)),
        expr: await readString(struct.readBigUInt64LE(24)),
      };
      // args[2] = 1: GUEST_ASSERT_EQ, its two values in args[0..1].
      if (args[2] === 1n) ev.values = [args[0]!, args[1]!];
      return ev;
    }
    case UCALL.DONE:
      return { kind: 'done' };
    default:
      throw new Error(`guest ucall with unknown command ${cmd} (struct ${struct.toString('hex')})`);
  }
}

/** The text of a NUL-terminated string's bytes. */
export function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** A one-line description of an event, for messages. */
export function formatEvent(ev: GuestEvent): string {
  switch (ev.kind) {
    case 'sync':
      return `sync ${ev.value}`;
    case 'done':
      return 'done';
    case 'assert':
      return `assertion failed at ${ev.file}:${ev.line}: ${ev.expr}${ev.values ? ` (${ev.values[0]} != ${ev.values[1]})` : ''}`;
    case 'exception':
      return `exception #${ev.name} (vector ${ev.vector}, error code ${ev.errorCode}) at rip ${hex(ev.rip)}${ev.cr2 !== undefined ? `, cr2 ${hex(ev.cr2)}` : ''}`;
    case 'exit':
      return `exit ${ev.exit.reason}`;
  }
}
