// What a call threw, for asserting an error's class and fields (fails the test when it returns).
import { expect } from 'vitest';

export function thrown(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  return expect.fail('expected a throw');
}
