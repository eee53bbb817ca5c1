// lib/validate.ts: the argument checks both backends run before any syscall. Pure functions.
import fc from 'fast-check';
import { describe as suite, expect, it } from 'vitest';
import { ClosedError } from '../../lib/errors.js';
import {
  I64_MAX,
  PAGE_SIZE,
  U64_MAX,
  byteValue,
  bytes,
  describe,
  ensureOpen,
  i64,
  num,
  optBool,
  options,
  rangeEnd,
  u32,
  u64,
} from '../../lib/validate.js';

function err(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  expect.fail('expected a throw');
}
const isType = (fn: () => unknown) => {
  const e = err(fn);
  expect(e).toBeInstanceOf(TypeError);
  expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
};
const isRange = (fn: () => unknown) => {
  const e = err(fn);
  expect(e).toBeInstanceOf(RangeError);
  expect(e.code).toBe('ERR_OUT_OF_RANGE');
};

const WRONG_TYPES = ['1', {}, null, undefined, Symbol('s'), true, [1], () => 1];
const UNCARRYABLE = [-1, -0.5, 0.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE, -1n, U64_MAX + 1n];

suite('constants', () => {
  it('page size and the 64/63-bit limits', () => {
    expect(PAGE_SIZE).toBe(4096);
    expect(U64_MAX).toBe(18446744073709551615n);
    expect(I64_MAX).toBe(9223372036854775807n);
  });
});

suite('u64', () => {
  it('takes safe non-negative integers and bigints in [0, 2^64) and returns a bigint', () => {
    expect(u64('x', 0)).toBe(0n);
    expect(u64('x', -0)).toBe(0n);
    expect(u64('x', Number.MAX_SAFE_INTEGER)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(u64('x', 0n)).toBe(0n);
    expect(u64('x', U64_MAX)).toBe(U64_MAX);
  });
  it('wrong types are TypeError ERR_INVALID_ARG_TYPE', () => {
    for (const v of WRONG_TYPES) isType(() => u64('x', v));
  });
  it('values no u64 can carry are RangeError ERR_OUT_OF_RANGE', () => {
    for (const v of UNCARRYABLE) isRange(() => u64('x', v));
  });
  it('names the argument in the message', () => {
    expect(err(() => u64('guestPhysAddr', -1)).message).toContain('guestPhysAddr');
    expect(err(() => u64('size', 'a')).message).toContain('size');
  });
  it('round-trips every safe integer and every bigint in range (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => u64('x', n) === BigInt(n)));
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (b) => u64('x', b) === b));
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 70n), max: -1n }), (b) => err(() => u64('x', b)) instanceof RangeError),
    );
    fc.assert(
      fc.property(
        fc.bigInt({ min: U64_MAX + 1n, max: 1n << 80n }),
        (b) => err(() => u64('x', b)) instanceof RangeError,
      ),
    );
  });
});

suite('i64', () => {
  it('takes up to 2^63 - 1 and refuses 2^63 and up as RangeError', () => {
    expect(i64('x', I64_MAX)).toBe(I64_MAX);
    isRange(() => i64('x', I64_MAX + 1n));
    isRange(() => i64('x', U64_MAX));
  });
  it('inherits u64 type and range checks', () => {
    isType(() => i64('x', '1'));
    isRange(() => i64('x', -1));
  });
});

suite('u32', () => {
  it('takes 0 to 2^32 - 1 as a number, from a number or a bigint', () => {
    expect(u32('x', 0)).toBe(0);
    expect(u32('x', 0xffffffff)).toBe(0xffffffff);
    expect(u32('x', 7n)).toBe(7);
  });
  it('refuses 2^32 and up, negatives and fractions as RangeError', () => {
    for (const v of [2 ** 32, 1n << 32n, -1, 1.5, NaN]) isRange(() => u32('x', v));
  });
  it('refuses other types as TypeError', () => {
    for (const v of WRONG_TYPES) isType(() => u32('x', v));
  });
});

suite('rangeEnd', () => {
  it('returns offset + length', () => {
    expect(rangeEnd(4096n, 8192n)).toBe(12288n);
    expect(rangeEnd(0n, U64_MAX)).toBe(U64_MAX);
    expect(rangeEnd(U64_MAX, 0n)).toBe(U64_MAX);
  });
  it('an end past 2^64 - 1 is RangeError', () => {
    isRange(() => rangeEnd(U64_MAX, 1n));
    isRange(() => rangeEnd(1n << 63n, 1n << 63n));
  });
  it('honours a tighter limit', () => {
    expect(rangeEnd(0n, 10n, 10n)).toBe(10n);
    isRange(() => rangeEnd(1n, 10n, 10n));
  });
  it('throws exactly when the sum passes the limit (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), fc.bigInt({ min: 0n, max: U64_MAX }), (a, b) => {
        if (a + b > U64_MAX) return err(() => rangeEnd(a, b)) instanceof RangeError;
        return rangeEnd(a, b) === a + b;
      }),
    );
  });
});

suite('byteValue', () => {
  it('takes integers 0 to 255', () => {
    expect(byteValue('b', 0)).toBe(0);
    expect(byteValue('b', 255)).toBe(255);
  });
  it('refuses out-of-range numbers as RangeError and non-numbers (bigints too) as TypeError', () => {
    for (const v of [-1, 256, 1.5, NaN, Infinity]) isRange(() => byteValue('b', v));
    for (const v of [...WRONG_TYPES, 1n]) isType(() => byteValue('b', v));
  });
});

suite('optBool', () => {
  it('undefined is false; booleans pass', () => {
    expect(optBool('f', undefined)).toBe(false);
    expect(optBool('f', true)).toBe(true);
    expect(optBool('f', false)).toBe(false);
  });
  it('anything else is TypeError, with no truthiness guessing', () => {
    for (const v of [0, 1, 'true', '', null, {}, []]) isType(() => optBool('f', v));
  });
});

suite('options', () => {
  it('an object passes through as is; undefined is {} unless required', () => {
    const o = { size: 1 };
    expect(options('o', o)).toBe(o);
    expect(options('o', undefined)).toEqual({});
  });
  it('undefined when required, null, arrays, primitives and functions are TypeError', () => {
    isType(() => options('o', undefined, true));
    for (const v of [null, [], 'x', 1, 1n, true, Symbol('o'), () => ({})]) isType(() => options('o', v));
  });
});

suite('bytes', () => {
  it('returns a Uint8Array as is', () => {
    const u = new Uint8Array(3);
    expect(bytes('d', u)).toBe(u);
    const b = Buffer.from([1]);
    expect(bytes('d', b)).toBe(b);
  });
  it('views any other ArrayBufferView over the same bytes, no copy', () => {
    const ab = new ArrayBuffer(16);
    const u16 = new Uint16Array(ab, 2, 3);
    const v = bytes('d', u16);
    expect([v.buffer, v.byteOffset, v.byteLength]).toEqual([ab, 2, 6]);
    const dv = new DataView(ab, 4, 8);
    const w = bytes('d', dv);
    w[0] = 9;
    expect(dv.getUint8(0)).toBe(9);
  });
  it('refuses ArrayBuffers, arrays, strings and the rest as TypeError', () => {
    for (const v of [new ArrayBuffer(1), [1, 2], 'ab', null, undefined, 5, {}]) isType(() => bytes('d', v));
  });
});

suite('num', () => {
  it('returns numbers for values up to 2^53 - 1 and bigints beyond (never a rounded number)', () => {
    expect(num(0n)).toBe(0);
    expect(num(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(num(1n << 53n)).toBe(1n << 53n);
    expect(num(U64_MAX)).toBe(U64_MAX);
  });
});

suite('ensureOpen', () => {
  it('is silent when open and throws ClosedError ERR_KVM_CLOSED naming the object when closed', () => {
    expect(() => ensureOpen(false, 'Vm')).not.toThrow();
    const e = err(() => ensureOpen(true, 'Vm'));
    expect(e).toBeInstanceOf(ClosedError);
    expect(e.code).toBe('ERR_KVM_CLOSED');
    expect(e.message).toContain('Vm');
  });
});

suite('describe', () => {
  it('names what a value is, for error messages, without throwing on any type', () => {
    expect(describe(null)).toBe('null');
    expect(describe([1])).toBe('an array');
    expect(describe(new Map())).toBe('an instance of Map');
    expect(describe(Object.create(null))).toBe('an instance of Object');
    expect(describe('abc')).toBe('a string ("abc")');
    expect(describe('x'.repeat(50))).toContain('…');
    expect(describe(5)).toBe('number (5)');
    expect(describe(5n)).toBe('bigint (5)');
    expect(describe(undefined)).toBe('undefined (undefined)');
    expect(describe(Symbol('s'))).toBe('symbol (Symbol(s))');
  });
});
