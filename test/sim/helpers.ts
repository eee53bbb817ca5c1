// Shared by the simulator tests: open a profile, and assert thrown errors by class and code.
import os from 'node:os';
import { expect } from 'vitest';
import { open } from '../../lib/index.js';
import type { Kvm, Profile } from '../../lib/index.js';
import { thrown } from '../helpers/thrown.js';

export const PAGE = 4096;
export const TIB = 2 ** 40;

export function sim(profile: Profile): Kvm {
  return open({ backend: 'sim', profile });
}

export { thrown };

/** What the promise rejected with (fails the test when it resolves). */
export async function rejected(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  return expect.fail('expected a rejection');
}

export function expectKvmError(fn: () => unknown, code: string, syscall: string, ioctl?: string): void {
  const e = thrown(fn);
  expect(e.name, e.message).toBe('KvmError');
  expect(e.code).toBe(code);
  expect(e.errno).toBe(-(os.constants.errno as Record<string, number>)[code]!);
  expect(e.syscall).toBe(syscall);
  expect(e.ioctl).toBe(ioctl);
}

export function expectCode(fn: () => unknown, name: string, code: string): Error & Record<string, unknown> {
  const e = thrown(fn);
  expect(`${e.name} ${String(e.code)}`, e.message).toBe(`${name} ${code}`);
  return e;
}

export function expectSigbus(fn: () => unknown, offset: number, access?: 'read' | 'write'): void {
  const e = expectCode(fn, 'HostAccessError', 'SIGBUS');
  expect(e.offset).toBe(offset);
  if (access) expect(e.access).toBe(access);
}
