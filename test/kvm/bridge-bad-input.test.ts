// Bad input for every public call of the real backend, as a table: each row names the call, the
// value and the typed error it must give. Types and values no syscall could carry fail before
// any syscall; what the kernel judges comes back as its errno. Extend by adding rows.
import os from 'node:os';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open, probe, type GuestMemfd, type Kvm, type Mapping, type Vm } from '../../lib/index.js';
import { closedCallRows } from '../fixtures/closed-calls.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE, thrown } from '../fixtures/kvm-cases.js';

const TOTAL = 4 * PAGE;

interface Ctx {
  kvm: Kvm;
  vm: Vm;
  /** MMAP | INIT_SHARED, TOTAL bytes */
  gm: GuestMemfd;
  /** no flags */
  plain: GuestMemfd;
  /** gm mapped whole */
  m: Mapping;
}

type Want =
  | { kind: 'type' }
  | { kind: 'range' }
  | { kind: 'closed' }
  | { kind: 'kvm'; code: string; syscall: string; ioctl?: string };

interface Case {
  name: string;
  run: (c: Ctx) => unknown;
  want: Want;
}

const TYPE: Want = { kind: 'type' };
const RANGE: Want = { kind: 'range' };
const kernel = (code: string, syscall: string, ioctl?: string): Want => ({ kind: 'kvm', code, syscall, ioctl });

const WRONG_TYPES: [string, unknown][] = [
  ['a string', '4096'],
  ['an object', {}],
  ['null', null],
  ['a symbol', Symbol('s')],
  ['a boolean', true],
  ['an array', [4096]],
];
const OUT_OF_RANGE: [string, unknown][] = [
  ['-1', -1],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['1.5', 1.5],
  ['2^53 (not a safe integer)', 2 ** 53],
  ['-1n', -1n],
  ['2^64 as a bigint', 1n << 64n],
];

/** Rows for one numeric argument: every wrong type, every uncarryable value, and the width limit. */
function numberArg(call: string, invoke: (c: Ctx, v: unknown) => unknown, o: { required?: boolean; width?: 32 | 63; noString?: boolean } = {}): Case[] {
  const rows: Case[] = [];
  for (const [label, v] of WRONG_TYPES) {
    if (o.noString && typeof v === 'string') continue;
    rows.push({ name: `${call} with ${label}`, run: (c) => invoke(c, v), want: TYPE });
  }
  if (o.required) rows.push({ name: `${call} with undefined`, run: (c) => invoke(c, undefined), want: TYPE });
  for (const [label, v] of OUT_OF_RANGE) rows.push({ name: `${call} with ${label}`, run: (c) => invoke(c, v), want: RANGE });
  if (o.width === 32) rows.push({ name: `${call} with 2^32`, run: (c) => invoke(c, 2 ** 32), want: RANGE });
  if (o.width === 63) rows.push({ name: `${call} with 2^63`, run: (c) => invoke(c, 1n << 63n), want: RANGE });
  return rows;
}

function boolArg(call: string, invoke: (c: Ctx, v: unknown) => unknown): Case[] {
  return [['a string', 'yes'], ['a number', 1], ['null', null], ['an object', {}]].map(([label, v]) => ({
    name: `${call} with ${label as string}`,
    run: (c: Ctx) => invoke(c, v),
    want: TYPE,
  }));
}

function optionsArg(call: string, invoke: (c: Ctx, v: unknown) => unknown, required: boolean): Case[] {
  const values: [string, unknown][] = [['a string', 'x'], ['a number', 1], ['null', null], ['an array', []], ['a symbol', Symbol('o')]];
  if (required) values.push(['undefined', undefined]);
  return values.map(([label, v]) => ({ name: `${call} with ${label}`, run: (c: Ctx) => invoke(c, v), want: TYPE }));
}

const region = (c: Ctx, over: Record<string, unknown>) =>
  c.vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: PAGE, userspace: c.m, ...over } as never);

const cases: Case[] = [
  // Kvm
  ...numberArg('kvm.checkExtension(cap)', (c, v) => c.kvm.checkExtension(v as number), { required: true, width: 32, noString: true }),
  { name: 'kvm.checkExtension with an unknown name', run: (c) => c.kvm.checkExtension('NO_SUCH_CAP'), want: RANGE },
  ...optionsArg('kvm.createVm(options)', (c, v) => c.kvm.createVm(v as never), false),
  ...numberArg('kvm.createVm({type})', (c, v) => c.kvm.createVm({ type: v as number }), { width: 32 }),
  { name: 'kvm.createVm with an unsupported type (1)', run: (c) => c.kvm.createVm({ type: 1 }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_VM') },
  { name: 'kvm.createVm with type 2^32-1', run: (c) => c.kvm.createVm({ type: 2 ** 32 - 1 }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_VM') },

  // Vm
  ...numberArg('vm.checkExtension(cap)', (c, v) => c.vm.checkExtension(v as number), { required: true, width: 32, noString: true }),
  { name: 'vm.checkExtension with an unknown name', run: (c) => c.vm.checkExtension('KVM_CAP_NOPE'), want: RANGE },
  ...optionsArg('vm.createGuestMemfd(options)', (c, v) => c.vm.createGuestMemfd(v as never), true),
  ...numberArg('vm.createGuestMemfd({size})', (c, v) => c.vm.createGuestMemfd({ size: v as number }), { required: true }),
  ...numberArg('vm.createGuestMemfd({flags})', (c, v) => c.vm.createGuestMemfd({ size: PAGE, flags: v as number })),
  ...boolArg('vm.createGuestMemfd({mmap})', (c, v) => c.vm.createGuestMemfd({ size: PAGE, mmap: v as boolean })),
  ...boolArg('vm.createGuestMemfd({initShared})', (c, v) => c.vm.createGuestMemfd({ size: PAGE, initShared: v as boolean })),
  { name: 'vm.createGuestMemfd with size 0', run: (c) => c.vm.createGuestMemfd({ size: 0 }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD') },
  { name: 'vm.createGuestMemfd with an unaligned size', run: (c) => c.vm.createGuestMemfd({ size: PAGE + 1 }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD') },
  { name: 'vm.createGuestMemfd with size 2^64-1', run: (c) => c.vm.createGuestMemfd({ size: (1n << 64n) - 1n }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD') },
  { name: 'vm.createGuestMemfd with an unknown flag bit', run: (c) => c.vm.createGuestMemfd({ size: PAGE, flags: 1n << 63n }), want: kernel('EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD') },
  ...optionsArg('vm.setMemoryRegion(region)', (c, v) => c.vm.setMemoryRegion(v as never), true),
  ...numberArg('vm.setMemoryRegion({slot})', (c, v) => region(c, { slot: v }), { required: true, width: 32 }),
  ...numberArg('vm.setMemoryRegion({guestPhysAddr})', (c, v) => region(c, { guestPhysAddr: v }), { required: true }),
  ...numberArg('vm.setMemoryRegion({size})', (c, v) => region(c, { size: v }), { required: true }),
  ...numberArg('vm.setMemoryRegion({guestMemfdOffset})', (c, v) => region(c, { userspace: undefined, guestMemfd: c.gm, guestMemfdOffset: v })),
  ...numberArg('vm.setMemoryRegion({userspaceOffset})', (c, v) => region(c, { userspaceOffset: v })),
  ...boolArg('vm.setMemoryRegion({readonly})', (c, v) => region(c, { readonly: v })),
  ...boolArg('vm.setMemoryRegion({logDirtyPages})', (c, v) => region(c, { logDirtyPages: v })),
  { name: 'vm.setMemoryRegion with a guestMemfd that is not one', run: (c) => region(c, { guestMemfd: { fd: c.gm.fd } }), want: TYPE },
  { name: 'vm.setMemoryRegion with a userspace that is not a Mapping', run: (c) => region(c, { userspace: new Uint8Array(PAGE) }), want: TYPE },
  { name: 'vm.setMemoryRegion with a userspaceOffset beyond the mapping', run: (c) => region(c, { userspaceOffset: TOTAL + PAGE }), want: RANGE },
  { name: 'vm.setMemoryRegion with an unaligned guestPhysAddr', run: (c) => region(c, { guestPhysAddr: 0x100001 }), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  { name: 'vm.setMemoryRegion with an unaligned size', run: (c) => region(c, { size: PAGE - 1 }), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  { name: 'vm.setMemoryRegion with a guestMemfd offset past the file', run: (c) => region(c, { userspace: undefined, guestMemfd: c.gm, guestMemfdOffset: TOTAL }), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  { name: 'vm.setMemoryRegion with a guestMemfd of another VM', run: (c) => region(c, { userspace: undefined, guestMemfd: c.kvm.createVm().createGuestMemfd({ size: PAGE }) }), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  { name: 'vm.setMemoryRegion with a slot past the slot count', run: (c) => region(c, { slot: 0xffff }), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  ...numberArg('vm.deleteMemoryRegion(slot)', (c, v) => c.vm.deleteMemoryRegion(v as number), { required: true, width: 32 }),
  { name: 'vm.deleteMemoryRegion of a slot never set', run: (c) => c.vm.deleteMemoryRegion(7), want: kernel('EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2') },
  ...numberArg('vm.setMemoryAttributes(gpa)', (c, v) => c.vm.setMemoryAttributes(v as number, PAGE, { private: true }), { required: true }),
  ...numberArg('vm.setMemoryAttributes(size)', (c, v) => c.vm.setMemoryAttributes(0, v as number, { private: true }), { required: true }),
  ...optionsArg('vm.setMemoryAttributes(attributes)', (c, v) => c.vm.setMemoryAttributes(0, PAGE, v as never), true),
  ...boolArg('vm.setMemoryAttributes({private})', (c, v) => c.vm.setMemoryAttributes(0, PAGE, { private: v as boolean })),
  ...numberArg('vm.createVcpu(id)', (c, v) => c.vm.createVcpu(v as number), { width: 32 }),

  // GuestMemfd
  ...numberArg('gm.map(offset)', (c, v) => c.gm.map(v as number), { width: 63 }),
  ...numberArg('gm.map(offset, length)', (c, v) => c.gm.map(0, v as number)),
  ...optionsArg('gm.map(offset, length, options)', (c, v) => c.gm.map(0, PAGE, v as never), false),
  ...boolArg('gm.map({private})', (c, v) => c.gm.map(0, PAGE, { private: v as boolean })),
  { name: 'gm.map with no length from beyond the file', run: (c) => c.gm.map(TOTAL + PAGE), want: RANGE },
  { name: 'gm.map with offset + length past 2^64', run: (c) => c.gm.map(PAGE, (1n << 64n) - 1n), want: RANGE },
  { name: 'gm.map with an unaligned offset', run: (c) => c.gm.map(1, PAGE), want: kernel('EINVAL', 'mmap') },
  { name: 'gm.map with length 0', run: (c) => c.gm.map(0, 0), want: kernel('EINVAL', 'mmap') },
  { name: 'gm.map of a file without MMAP', run: (c) => c.plain.map(), want: kernel('ENODEV', 'mmap') },
  { name: 'gm.map MAP_PRIVATE', run: (c) => c.gm.map(0, PAGE, { private: true }), want: kernel('EINVAL', 'mmap') },
  ...(['share', 'unshare', 'hold'] as const).flatMap((f) => [
    ...numberArg(`gm.${f}(offset)`, (c, v) => c.gm[f](v as number, PAGE), { required: true }),
    ...numberArg(`gm.${f}(offset, length)`, (c, v) => c.gm[f](0, v as number), { required: true }),
    { name: `gm.${f} beyond the file`, run: (c: Ctx) => c.gm[f](TOTAL - PAGE, 2 * PAGE), want: RANGE },
    { name: `gm.${f} with offset + length past 2^64`, run: (c: Ctx) => c.gm[f]((1n << 64n) - 1n, 2), want: RANGE },
  ]),
  ...numberArg('gm.states(offset)', (c, v) => c.gm.states(v as number)),
  ...numberArg('gm.states(offset, length)', (c, v) => c.gm.states(0, v as number)),
  { name: 'gm.states from beyond the file', run: (c) => c.gm.states(TOTAL + 1), want: RANGE },
  { name: 'gm.states past the end of the file', run: (c) => c.gm.states(0, TOTAL + 1), want: RANGE },
  { name: 'gm.states with offset + length past 2^64', run: (c) => c.gm.states(PAGE, (1n << 64n) - 1n), want: RANGE },
  ...(['allocate', 'punchHole'] as const).flatMap((f) => [
    ...numberArg(`gm.${f}(offset)`, (c, v) => c.gm[f](v as number, PAGE), { required: true, width: 63 }),
    ...numberArg(`gm.${f}(offset, length)`, (c, v) => c.gm[f](0, v as number), { required: true, width: 63 }),
    { name: `gm.${f} with an unaligned offset`, run: (c: Ctx) => c.gm[f](1, PAGE), want: kernel('EINVAL', 'fallocate') },
    { name: `gm.${f} with length 0`, run: (c: Ctx) => c.gm[f](0, 0), want: kernel('EINVAL', 'fallocate') },
    { name: `gm.${f} with offset + length past the largest file`, run: (c: Ctx) => c.gm[f](1n << 62n, 3n << 61n), want: kernel('EFBIG', 'fallocate') },
  ]),
  { name: 'gm.allocate at EOF', run: (c) => c.gm.allocate(TOTAL, PAGE), want: kernel('EINVAL', 'fallocate') },

  // Mapping (offsets relative to the mapping, TOTAL bytes long)
  ...numberArg('m.read(offset)', (c, v) => c.m.read(v as number, 1), { required: true }),
  ...numberArg('m.read(offset, length)', (c, v) => c.m.read(0, v as number), { required: true }),
  { name: 'm.read past the end', run: (c) => c.m.read(TOTAL - 1, 2), want: RANGE },
  { name: 'm.read from past the end', run: (c) => c.m.read(TOTAL + 1, 0), want: RANGE },
  { name: 'm.read of more than the largest Buffer', run: (c) => c.vm.createGuestMemfd({ size: 2 ** 33, mmap: true, initShared: true }).map().read(0, 2 ** 32 + 1), want: RANGE },
  { name: 'm.read with offset + length past 2^64', run: (c) => c.m.read((1n << 64n) - 1n, 2), want: RANGE },
  ...numberArg('m.readInto(offset)', (c, v) => c.m.readInto(v as number, new Uint8Array(1)), { required: true }),
  ...[...WRONG_TYPES, ['undefined', undefined] as [string, unknown], ['a number', 5] as [string, unknown]].map(([label, v]) => ({
    name: `m.readInto target ${label}`,
    run: (c: Ctx) => c.m.readInto(0, v as Uint8Array),
    want: TYPE,
  })),
  { name: 'm.readInto past the end', run: (c) => c.m.readInto(TOTAL - 1, new Uint8Array(2)), want: RANGE },
  ...numberArg('m.write(offset)', (c, v) => c.m.write(v as number, new Uint8Array(1)), { required: true }),
  ...[...WRONG_TYPES, ['undefined', undefined] as [string, unknown], ['an ArrayBuffer', new ArrayBuffer(4)] as [string, unknown]].map(([label, v]) => ({
    name: `m.write data ${label}`,
    run: (c: Ctx) => c.m.write(0, v as Uint8Array),
    want: TYPE,
  })),
  { name: 'm.write past the end', run: (c) => c.m.write(TOTAL - 1, new Uint8Array(2)), want: RANGE },
  { name: 'm.write with offset + length past 2^64', run: (c) => c.m.write((1n << 64n) - 1n, new Uint8Array(2)), want: RANGE },
  ...numberArg('m.fill(offset)', (c, v) => c.m.fill(v as number, 1, 0), { required: true }),
  ...numberArg('m.fill(offset, length)', (c, v) => c.m.fill(0, v as number, 0), { required: true }),
  ...[...WRONG_TYPES, ['undefined', undefined] as [string, unknown], ['a bigint', 1n] as [string, unknown]].map(([label, v]) => ({
    name: `m.fill byte ${label}`,
    run: (c: Ctx) => c.m.fill(0, 1, v as number),
    want: TYPE,
  })),
  ...[['256', 256], ['-1', -1], ['1.5', 1.5], ['NaN', NaN]].map(([label, v]) => ({
    name: `m.fill byte ${label as string}`,
    run: (c: Ctx) => c.m.fill(0, 1, v as number),
    want: RANGE,
  })),
  { name: 'm.fill past the end', run: (c) => c.m.fill(1, TOTAL, 0), want: RANGE },
];

// Whatever each public call does once its object (or an owner) is closed.
for (const [name, run] of closedCallRows()) cases.push({ name, run, want: { kind: 'closed' } });
// A closed object passed as an argument counts as closed too.
cases.push({ name: 'vm.setMemoryRegion with a closed guestMemfd', run: (c) => { const g = c.vm.createGuestMemfd({ size: PAGE }); g.close(); return c.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g }); }, want: { kind: 'closed' } });
cases.push({ name: 'vm.setMemoryRegion with an unmapped userspace mapping', run: (c) => { c.m.unmap(); return region(c, {}); }, want: { kind: 'closed' } });

describeKvm('bad input to the real backend', () => {
  let c: Ctx;
  beforeEach(() => {
    const kvm = open({ backend: 'kvm' });
    const vm = kvm.createVm();
    const gm = vm.createGuestMemfd({ size: TOTAL, mmap: true, initShared: true });
    c = { kvm, vm, gm, plain: vm.createGuestMemfd({ size: TOTAL }), m: gm.map() };
  });
  afterEach(() => c.kvm.close());

  it.each(cases.map((x) => [x.name, x] as const))('%s', (_name, x) => {
    const e = thrown(() => x.run(c));
    const seen = `${e.name} ${String(e.code)}: ${e.message}`;
    switch (x.want.kind) {
      case 'type':
        expect(e, seen).toBeInstanceOf(TypeError);
        expect(e.code, seen).toBe('ERR_INVALID_ARG_TYPE');
        break;
      case 'range':
        expect(e, seen).toBeInstanceOf(RangeError);
        expect(e.code, seen).toBe('ERR_OUT_OF_RANGE');
        break;
      case 'closed':
        expect(e.name, seen).toBe('ClosedError');
        expect(e.code, seen).toBe('ERR_KVM_CLOSED');
        break;
      case 'kvm':
        expect(e.name, seen).toBe('KvmError');
        expect(e.code, seen).toBe(x.want.code);
        expect(e.errno).toBe(-(os.constants.errno as Record<string, number>)[x.want.code]!);
        expect(e.syscall).toBe(x.want.syscall);
        expect(e.ioctl).toBe(x.want.ioctl);
        break;
    }
    // The objects left open still work: no bad call broke them.
    if (!c.m.closed) expect(c.m.read(0, 1).length).toBe(1);
  });

  it('close() and [Symbol.dispose] twice are harmless on every object', () => {
    for (const o of [c.m, c.gm, c.plain, c.vm, c.kvm]) {
      o.close();
      o.close();
      o[Symbol.dispose]();
      expect(o.closed).toBe(true);
    }
    c.m.unmap();
    expect(c.gm.fd).toBe(-1);
  });

  it('closing a Vm marks every child closed, and the Kvm stays usable', () => {
    c.vm.close();
    expect([c.vm.closed, c.gm.closed, c.plain.closed, c.m.closed]).toEqual([true, true, true, true]);
    expect(c.kvm.closed).toBe(false);
    expect(c.kvm.createVm().checkExtension('GUEST_MEMFD')).toBe(1);
  });

  it('a mapping outlives nothing: closing its file closes it, the file can be remapped only while open', () => {
    c.gm.close();
    expect(c.m.closed).toBe(true);
    expect(c.m.length).toBe(TOTAL);
    expect(thrown(() => c.gm.map()).code).toBe('ERR_KVM_CLOSED');
  });

  it('probe() never throws, whatever its path argument', () => {
    for (const p of ['/nonexistent', '', '/dev/null', '/proc/self/fd', 42, null, {}, Symbol('p')]) {
      const r = probe(p as string);
      expect(r.kvm.available).toBe(false);
      expect(typeof r.kvm.error?.code).toBe('string');
      JSON.stringify(r);
    }
  });
});
