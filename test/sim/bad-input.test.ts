// Bad input to every public call of the simulator, in every profile: wrong types are TypeError,
// values no syscall could carry RangeError (both before any effect), what the kernel judges its
// errno, and any call on a closed object (or a child of one) ClosedError, as on the kvm backend.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GuestMemfd, Kvm, Mapping, Profile, Vm } from '../../lib/index.js';
import { PAGE, sim, thrown } from './helpers.js';
import { hostMappable } from '../../lib/conformance/features.js';
import { closedCallRows } from '../fixtures/closed-calls.js';

const TOTAL = 4 * PAGE;
interface Ctx { kvm: Kvm; vm: Vm; gm: GuestMemfd; plain: GuestMemfd; m: Mapping }
type Want = 'type' | 'range' | 'closed' | [code: string, syscall: string, ioctl?: string];
type Row = [name: string, run: (c: Ctx) => unknown, want: Want];

const WRONG_TYPES: unknown[] = ['4096', {}, null, Symbol('s'), true, [4096]];
const OUT_OF_RANGE: unknown[] = [-1, NaN, Infinity, 1.5, 2 ** 53, -1n, 1n << 64n];

function num(call: string, f: (c: Ctx, v: unknown) => unknown, o: { required?: boolean; width?: 32 | 63 } = {}): Row[] {
  const rows: Row[] = WRONG_TYPES.map((v) => [`${call} with ${String(typeof v === 'symbol' ? 'a symbol' : JSON.stringify(v))}`, (c) => f(c, v), 'type']);
  if (o.required) rows.push([`${call} with undefined`, (c) => f(c, undefined), 'type']);
  for (const v of OUT_OF_RANGE) rows.push([`${call} with ${String(v)}`, (c) => f(c, v), 'range']);
  if (o.width === 32) rows.push([`${call} with 2^32`, (c) => f(c, 2 ** 32), 'range']);
  if (o.width === 63) rows.push([`${call} with 2^63`, (c) => f(c, 1n << 63n), 'range']);
  return rows;
}
const bool = (call: string, f: (c: Ctx, v: unknown) => unknown): Row[] =>
  ['yes', 1, null, {}].map((v) => [`${call} with ${JSON.stringify(v)}`, (c) => f(c, v), 'type']);
const opts = (call: string, f: (c: Ctx, v: unknown) => unknown, required: boolean): Row[] =>
  ['x', 1, null, [], ...(required ? [undefined] : [])].map((v) => [`${call} with ${JSON.stringify(v) ?? 'undefined'}`, (c) => f(c, v), 'type']);
const region = (c: Ctx, over: Record<string, unknown>) =>
  c.vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x100000, size: PAGE, userspace: c.m, ...over } as never);
const SLOTS = (): Want => ['EINVAL', 'ioctl', 'KVM_SET_USER_MEMORY_REGION2'];

const rows: Row[] = [
  ...num('kvm.checkExtension', (c, v) => c.kvm.checkExtension(v as number), { required: true, width: 32 }).filter((r) => !r[0].includes('"4096"')),
  ['kvm.checkExtension unknown name', (c) => c.kvm.checkExtension('NO_SUCH_CAP'), 'range'],
  ...opts('kvm.createVm', (c, v) => c.kvm.createVm(v as never), false),
  ...num('kvm.createVm type', (c, v) => c.kvm.createVm({ type: v as number }), { width: 32 }),
  ['kvm.createVm type 7', (c) => c.kvm.createVm({ type: 7 }), ['EINVAL', 'ioctl', 'KVM_CREATE_VM']],
  ...num('vm.checkExtension', (c, v) => c.vm.checkExtension(v as number), { required: true, width: 32 }).filter((r) => !r[0].includes('"4096"')),
  ...opts('vm.createGuestMemfd', (c, v) => c.vm.createGuestMemfd(v as never), true),
  ...num('createGuestMemfd size', (c, v) => c.vm.createGuestMemfd({ size: v as number }), { required: true }),
  ...num('createGuestMemfd flags', (c, v) => c.vm.createGuestMemfd({ size: PAGE, flags: v as number })),
  ...bool('createGuestMemfd mmap', (c, v) => c.vm.createGuestMemfd({ size: PAGE, mmap: v as boolean })),
  ...bool('createGuestMemfd initShared', (c, v) => c.vm.createGuestMemfd({ size: PAGE, initShared: v as boolean })),
  ['createGuestMemfd size 0', (c) => c.vm.createGuestMemfd({ size: 0 }), ['EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD']],
  ['createGuestMemfd flag bit 63', (c) => c.vm.createGuestMemfd({ size: PAGE, flags: 1n << 63n }), ['EINVAL', 'ioctl', 'KVM_CREATE_GUEST_MEMFD']],
  ...opts('vm.setMemoryRegion', (c, v) => c.vm.setMemoryRegion(v as never), true),
  ...num('setMemoryRegion slot', (c, v) => region(c, { slot: v }), { required: true, width: 32 }),
  ...num('setMemoryRegion guestPhysAddr', (c, v) => region(c, { guestPhysAddr: v }), { required: true }),
  ...num('setMemoryRegion size', (c, v) => region(c, { size: v }), { required: true }),
  ...num('setMemoryRegion guestMemfdOffset', (c, v) => region(c, { userspace: undefined, guestMemfd: c.gm, guestMemfdOffset: v })),
  ...num('setMemoryRegion userspaceOffset', (c, v) => region(c, { userspaceOffset: v })),
  ...bool('setMemoryRegion readonly', (c, v) => region(c, { readonly: v })),
  ...bool('setMemoryRegion logDirtyPages', (c, v) => region(c, { logDirtyPages: v })),
  ['setMemoryRegion guestMemfd not one', (c) => region(c, { guestMemfd: { fd: -1 } }), 'type'],
  ['setMemoryRegion userspace not a Mapping', (c) => region(c, { userspace: new Uint8Array(PAGE) }), 'type'],
  ['setMemoryRegion userspaceOffset past the mapping', (c) => region(c, { userspaceOffset: TOTAL + PAGE }), 'range'],
  ['setMemoryRegion unaligned gpa', (c) => region(c, { guestPhysAddr: 0x100001 }), SLOTS()],
  ['setMemoryRegion slot 0xffff', (c) => region(c, { slot: 0xffff }), SLOTS()],
  ...num('vm.deleteMemoryRegion', (c, v) => c.vm.deleteMemoryRegion(v as number), { required: true, width: 32 }),
  ...num('setMemoryAttributes gpa', (c, v) => c.vm.setMemoryAttributes(v as number, PAGE, { private: true }), { required: true }),
  ...num('setMemoryAttributes size', (c, v) => c.vm.setMemoryAttributes(0, v as number, { private: true }), { required: true }),
  ...opts('setMemoryAttributes attributes', (c, v) => c.vm.setMemoryAttributes(0, PAGE, v as never), true),
  ...bool('setMemoryAttributes private', (c, v) => c.vm.setMemoryAttributes(0, PAGE, { private: v as boolean })),
  ...num('vm.createVcpu', (c, v) => c.vm.createVcpu(v as number), { width: 32 }),
  ...num('gm.map offset', (c, v) => c.gm.map(v as number), { width: 63 }),
  ...num('gm.map length', (c, v) => c.gm.map(0, v as number)),
  ...opts('gm.map options', (c, v) => c.gm.map(0, PAGE, v as never), false),
  ...bool('gm.map private', (c, v) => c.gm.map(0, PAGE, { private: v as boolean })),
  ['gm.map no length from past the file', (c) => c.gm.map(TOTAL + PAGE), 'range'],
  ['gm.map offset + length past 2^64', (c) => c.gm.map(PAGE, (1n << 64n) - 1n), 'range'],
  ['gm.map unaligned offset', (c) => c.gm.map(1, PAGE), ['EINVAL', 'mmap']],
  ['gm.map of a file without MMAP', (c) => c.plain.map(), ['ENODEV', 'mmap']],
  ...(['share', 'unshare', 'hold'] as const).flatMap((f): Row[] => [
    ...num(`gm.${f} offset`, (c, v) => c.gm[f](v as number, PAGE), { required: true }),
    ...num(`gm.${f} length`, (c, v) => c.gm[f](0, v as number), { required: true }),
    [`gm.${f} past the file`, (c) => c.gm[f](TOTAL - PAGE, 2 * PAGE), 'range'],
    [`gm.${f} offset + length past 2^64`, (c) => c.gm[f]((1n << 64n) - 1n, 2), 'range'],
  ]),
  ...num('gm.states offset', (c, v) => c.gm.states(v as number)),
  ...num('gm.states length', (c, v) => c.gm.states(0, v as number)),
  ['gm.states from past the file', (c) => c.gm.states(TOTAL + 1), 'range'],
  ['gm.states past the file', (c) => c.gm.states(0, TOTAL + 1), 'range'],
  ...(['allocate', 'punchHole'] as const).flatMap((f): Row[] => [
    ...num(`gm.${f} offset`, (c, v) => c.gm[f](v as number, PAGE), { required: true, width: 63 }),
    ...num(`gm.${f} length`, (c, v) => c.gm[f](0, v as number), { required: true, width: 63 }),
    [`gm.${f} unaligned`, (c) => c.gm[f](1, PAGE), ['EINVAL', 'fallocate']],
    [`gm.${f} length 0`, (c) => c.gm[f](0, 0), ['EINVAL', 'fallocate']],
    [`gm.${f} past the largest file`, (c) => c.gm[f](1n << 62n, 3n << 61n), ['EFBIG', 'fallocate']],
  ]),
  ...num('m.read offset', (c, v) => c.m.read(v as number, 1), { required: true }),
  ...num('m.read length', (c, v) => c.m.read(0, v as number), { required: true }),
  ['m.read past the end', (c) => c.m.read(TOTAL - 1, 2), 'range'],
  ['m.read offset + length past 2^64', (c) => c.m.read((1n << 64n) - 1n, 2), 'range'],
  ...num('m.readInto offset', (c, v) => c.m.readInto(v as number, new Uint8Array(1)), { required: true }),
  ...[...WRONG_TYPES, undefined, 5].map((v): Row => [`m.readInto target ${String(typeof v)}`, (c) => c.m.readInto(0, v as Uint8Array), 'type']),
  ...num('m.write offset', (c, v) => c.m.write(v as number, new Uint8Array(1)), { required: true }),
  ...[...WRONG_TYPES, undefined, new ArrayBuffer(4)].map((v): Row => [`m.write data ${String(typeof v)}`, (c) => c.m.write(0, v as Uint8Array), 'type']),
  ['m.write past the end', (c) => c.m.write(TOTAL - 1, new Uint8Array(2)), 'range'],
  ...num('m.fill offset', (c, v) => c.m.fill(v as number, 1, 0), { required: true }),
  ...num('m.fill length', (c, v) => c.m.fill(0, v as number, 0), { required: true }),
  ...[...WRONG_TYPES, undefined, 1n].map((v): Row => [`m.fill byte ${String(typeof v)}`, (c) => c.m.fill(0, 1, v as number), 'type']),
  ...[256, -1, 1.5, NaN].map((v): Row => [`m.fill byte ${v}`, (c) => c.m.fill(0, 1, v), 'range']),
  ['m.fill past the end', (c) => c.m.fill(1, TOTAL, 0), 'range'],
];

// Every call on a closed object, or on the child of a closed owner.
for (const [name, run] of closedCallRows()) rows.push([name, run, 'closed']);
rows.push(['setMemoryRegion with a closed guestMemfd', (c) => { const g = c.vm.createGuestMemfd({ size: PAGE }); g.close(); return c.vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0, size: PAGE, guestMemfd: g }); }, 'closed']);
rows.push(['setMemoryRegion with an unmapped userspace mapping', (c) => { c.m.unmap(); return region(c, {}); }, 'closed']);

describe.each<Profile>(['linux-6.18', 'rfc-v5', 'inplace-v8'])('%s: bad input', (profile) => {
  let c: Ctx;
  beforeEach(() => {
    const kvm = sim(profile);
    const vm = kvm.createVm();
    const gm = vm.createGuestMemfd({ size: TOTAL, ...hostMappable(vm) });
    c = { kvm, vm, gm, plain: vm.createGuestMemfd({ size: TOTAL }), m: gm.map() };
  });
  afterEach(() => c.kvm.close());

  // RFC v5 maps every guest_memfd (kvm_gmem_mmap has no flag check): no file lacks MMAP there.
  const mine = rows.filter((r) => profile !== 'rfc-v5' || r[0] !== 'gm.map of a file without MMAP');
  it.each(mine.map((r) => [r[0], r] as const))('%s', (_name, [, run, want]) => {
    const e = thrown(() => run(c));
    const seen = `${e.name} ${String(e.code)}: ${e.message}`;
    if (want === 'type') expect([e instanceof TypeError, e.code], seen).toEqual([true, 'ERR_INVALID_ARG_TYPE']);
    else if (want === 'range') expect([e instanceof RangeError, e.code], seen).toEqual([true, 'ERR_OUT_OF_RANGE']);
    else if (want === 'closed') expect([e.name, e.code], seen).toEqual(['ClosedError', 'ERR_KVM_CLOSED']);
    else expect([e.name, e.code, e.syscall, e.ioctl], seen).toEqual(['KvmError', ...want.slice(0, 2), want[2]]);
    // A bad call leaves what is open working.
    if (!c.m.closed) expect(c.m.read(0, 1).length).toBe(1);
  });

  it('close() and [Symbol.dispose] twice are harmless; closing a Vm closes its children, not the Kvm', () => {
    c.vm.close();
    expect([c.vm.closed, c.gm.closed, c.plain.closed, c.m.closed, c.kvm.closed]).toEqual([true, true, true, true, false]);
    for (const o of [c.m, c.gm, c.plain, c.vm, c.kvm]) {
      o.close();
      o[Symbol.dispose]();
      expect(o.closed).toBe(true);
    }
    expect(c.gm.fd).toBe(-1);
    expect(c.m.length).toBe(TOTAL);
  });

  it('a hold released after its file closed is a no-op', () => {
    const h = c.gm.hold(0, PAGE);
    c.gm.close();
    h.release();
    expect(h.released).toBe(true);
  });
});
