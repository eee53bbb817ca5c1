// The library's error classes (api.md "Errors"). Every one extends Error and carries a string `code`.
import os from 'node:os';

export interface KvmErrorInit {
  code: string;
  errno: number;
  syscall: string;
  ioctl?: string;
  /** The file a failed open() named, as on Node's SystemError. */
  path?: string;
  message?: string;
}

/**
 * A syscall failed; shaped like Node's SystemError (`code`, negative `errno`, `syscall`, `path`
 * for open). The message names the call and its arguments:
 * `EINVAL: Invalid argument, ioctl KVM_CREATE_GUEST_MEMFD (size 1000, flags 0x0)`.
 */
export class KvmError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly ioctl?: string;
  readonly path?: string;
  constructor(init: KvmErrorInit) {
    super(
      init.message ??
        `${init.code}: ${init.syscall}${init.ioctl ? ' ' + init.ioctl : ''}${init.path !== undefined ? ` '${init.path}'` : ''}`,
    );
    this.name = 'KvmError';
    this.code = init.code;
    this.errno = init.errno;
    this.syscall = init.syscall;
    if (init.ioctl !== undefined) this.ioctl = init.ioctl;
    if (init.path !== undefined) this.path = init.path;
  }
}

/**
 * Builds a KvmError from an errno name, as the kernel would have returned it. `args` is the
 * call's arguments as text ("size 1000, flags 0x0"), as the native layer writes them.
 */
export function kvmError(code: string, syscall: string, ioctl?: string, detail?: string, args?: string): KvmError {
  const n = (os.constants.errno as Record<string, number>)[code];
  if (n === undefined) throw new Error(`unknown errno name ${code}`);
  const what = ioctl ? `${syscall} ${ioctl}` : syscall;
  return new KvmError({
    code,
    errno: -n,
    syscall,
    ioctl,
    message: `${code}: ${detail ?? errnoText(code)}, ${what}${args ? ` (${args})` : ''}`,
  });
}

const errnoTexts: Record<string, string> = {
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
  ENOTTY: 'Inappropriate ioctl for device',
  EEXIST: 'File exists',
  EBADF: 'Bad file descriptor',
  EFAULT: 'Bad address',
  ENOMEM: 'Cannot allocate memory',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOSPC: 'No space left on device',
  EAGAIN: 'Resource temporarily unavailable',
  E2BIG: 'Argument list too long',
  EOPNOTSUPP: 'Operation not supported',
};
function errnoText(code: string): string {
  return errnoTexts[code] ?? code;
}

/** The host touched a guest_memfd page it may not map (SIGBUS, caught). */
export class HostAccessError extends Error {
  readonly code = 'SIGBUS' as const;
  /** First faulting byte, as an offset in the guest_memfd (-1: the faulting memory is not one of ours). */
  readonly offset: number;
  readonly access: 'read' | 'write';
  /**
   * Which memory faulted: 'mapping', the one the call was made on; 'buffer', the caller's own
   * (readInto's target or write's source, e.g. a view() of another mapping whose page is private).
   */
  readonly side: 'mapping' | 'buffer';
  /** With side 'buffer': the index of the first faulting byte in the caller's buffer. */
  readonly bufferOffset?: number;
  constructor(offset: number, access: 'read' | 'write' = 'read', message?: string, buffer?: { bufferOffset: number }) {
    super(
      message ??
        `SIGBUS: host ${access === 'write' ? 'write to' : 'read of'} guest_memfd offset ${offset} (page not mappable by the host)`,
    );
    this.name = 'HostAccessError';
    this.offset = offset;
    this.access = access;
    this.side = buffer ? 'buffer' : 'mapping';
    if (buffer) this.bufferOffset = buffer.bufferOffset;
  }
}

/**
 * view() of a range with a page the host may not touch (private, pending, or past the end of the
 * file): refused as the HostAccessError a touch would give, before any view exists.
 */
export function viewRefused(offset: bigint | number): HostAccessError {
  const at = Number(offset);
  return new HostAccessError(
    at,
    'read',
    `SIGBUS: view() refused: guest_memfd offset ${at} is not shared with the host (the first touch of a view there would kill the process)`,
  );
}

const EAGAIN = -os.constants.errno.EAGAIN;

/**
 * A to-private conversion found pages with elevated references: the kernel's EAGAIN, so a
 * KvmError (code 'EAGAIN', errno -11, syscall 'ioctl') with the offset where it stopped.
 */
export class ConversionBusyError extends KvmError {
  override readonly code = 'EAGAIN' as const;
  override readonly errno = EAGAIN;
  readonly errorOffset: number;
  constructor(errorOffset: number, message?: string, ioctl?: string) {
    super({
      code: 'EAGAIN',
      errno: EAGAIN,
      syscall: 'ioctl',
      ioctl,
      message:
        message ??
        `EAGAIN: page at offset ${errorOffset} is still referenced by the host${ioctl ? `, ioctl ${ioctl}` : ''}`,
    });
    this.name = 'ConversionBusyError';
    this.errorOffset = errorOffset;
  }
}

/** The guest accessed a page it may not map. */
export class GuestMemoryFault extends Error {
  readonly code = 'KVM_EXIT_MEMORY_FAULT' as const;
  readonly gpa: number;
  readonly size: number;
  readonly private: boolean;
  constructor(init: { gpa: number; size: number; private: boolean; message?: string }) {
    super(
      init.message ??
        `guest memory fault at gpa 0x${init.gpa.toString(16)} (size ${init.size}${init.private ? ', private' : ''})`,
    );
    this.name = 'GuestMemoryFault';
    this.gpa = init.gpa;
    this.size = init.size;
    this.private = init.private;
  }
}

/** The kernel or the backend lacks the feature. */
export class UnsupportedError extends Error {
  readonly code = 'ERR_KVM_UNSUPPORTED' as const;
  readonly feature: string;
  constructor(feature: string, message?: string) {
    super(message ?? `${feature} is not supported here`);
    this.name = 'UnsupportedError';
    this.feature = feature;
  }
}

/** Use after close (also of a child after its owner closed). */
export class ClosedError extends Error {
  readonly code = 'ERR_KVM_CLOSED' as const;
  constructor(what: string, message?: string) {
    super(message ?? `${what} is closed`);
    this.name = 'ClosedError';
  }
}

/** TypeError with Node's code for a bad argument type. */
export function argTypeError(message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

/** RangeError with Node's code for an out-of-range argument. */
export function argRangeError(message: string): RangeError {
  const e = new RangeError(message) as RangeError & { code: string };
  e.code = 'ERR_OUT_OF_RANGE';
  return e;
}

/** What the native layer calls to build its errors (registered once at load). */
export function makeNativeError(kind: string, p: Record<string, unknown>): Error {
  const message = p.message as string | undefined;
  switch (kind) {
    case 'KvmError':
      return new KvmError(p as unknown as KvmErrorInit);
    case 'HostAccessError':
      return new HostAccessError(
        Number(p.offset),
        p.access as 'read' | 'write',
        message,
        p.side === 'buffer' ? { bufferOffset: Number(p.bufferOffset) } : undefined,
      );
    case 'ConversionBusyError':
      return new ConversionBusyError(Number(p.errorOffset), message, p.ioctl as string);
    case 'UnsupportedError':
      return new UnsupportedError(p.feature as string, message);
    case 'ClosedError':
      return new ClosedError(p.what as string, message);
    case 'TypeError':
      return argTypeError(message ?? 'invalid argument');
    case 'RangeError':
      return argRangeError(message ?? 'argument out of range');
    default:
      return new Error(message ?? kind);
  }
}
