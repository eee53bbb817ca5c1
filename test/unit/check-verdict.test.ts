// The matrix and verdict of `kvm-gmem check`, from fabricated results (no kernel, no simulator).
import { describe, expect, it } from 'vitest';
import {
  computeMatrix,
  computeVerdict,
  differingPaths,
  formatReport,
  type CaseResult,
  type Group,
  type Json,
} from '../../lib/conformance/index.js';
import { GROUP_IDS, exitStatus, parseCheckArgs } from '../../lib/check.js';
import { cases, pathKey } from '../../lib/conformance/index.js';

const PROFILES = ['rfc-v5', 'inplace-v8', 'linux-6.18'];

function ran(id: string, group: Group, outcome: Json): CaseResult {
  return { id, group, title: `the ${id} behaviour`, status: 'ran', outcome, ms: 1 };
}
function ns(id: string, group: Group, reason: string): CaseResult {
  return { id, group, title: `the ${id} behaviour`, status: 'n/s', reason, ms: 0 };
}

const EINVAL = {
  error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' },
};
const UNSUPPORTED = {
  error: { class: 'UnsupportedError', code: 'ERR_KVM_UNSUPPORTED', feature: 'in-place conversion' },
};
const PENDING = { ok: { pending: [{ offset: 8192, length: 4096, state: 'pending' }] } };
const BUSY = { error: { class: 'ConversionBusyError', code: 'EAGAIN', errorOffset: 8192 } };

/** What each simulator profile answers, per case. */
const profiles: Record<string, CaseResult[]> = {
  'rfc-v5': [
    ran('create.size', 'creation and flags', EINVAL),
    ran('conv.available', 'conversion', { share: { ok: null } }),
    ran('pins.unshare-held', 'references/pins', PENDING),
  ],
  'inplace-v8': [
    ran('create.size', 'creation and flags', EINVAL),
    ran('conv.available', 'conversion', { share: { ok: null } }),
    ran('pins.unshare-held', 'references/pins', BUSY),
  ],
  'linux-6.18': [
    ran('create.size', 'creation and flags', EINVAL),
    ran('conv.available', 'conversion', { share: UNSUPPORTED }),
    ns('pins.unshare-held', 'references/pins', 'not supported here: in-place conversion'),
  ],
};

describe('check verdict', () => {
  it('a kernel answering like rfc-v5 in every case matches rfc-v5 only, with no differences there', () => {
    const kernel = [
      ran('create.size', 'creation and flags', EINVAL),
      ran('conv.available', 'conversion', { share: { ok: null } }),
      ran('pins.unshare-held', 'references/pins', PENDING),
    ];
    const rows = computeMatrix(kernel, profiles);
    const v = computeVerdict(rows, PROFILES);
    expect(v.verdict).toBe('rfc-v5');
    expect(v.matches).toEqual(['rfc-v5']);
    expect(v.differences['rfc-v5']).toEqual([]);
    expect(v.differences['inplace-v8']!.map((d) => d.id)).toEqual(['pins.unshare-held']);
    expect(v.differences['inplace-v8']![0]!.kernel).toEqual({ status: 'ran', outcome: PENDING });
    expect(v.differences['inplace-v8']![0]!.profile).toEqual({ status: 'ran', outcome: BUSY });
    // linux-6.18 cannot run the pins case while this kernel can: that is a difference, not a pass.
    expect(v.differences['linux-6.18']!.map((d) => d.id)).toEqual(['conv.available', 'pins.unshare-held']);
    expect(rows.map((r) => r.cells['rfc-v5']!.mark)).toEqual(['match', 'match', 'match']);
    expect(exitStatus(v)).toBe(0);
  });

  it('a kernel that matches no profile gets no verdict, the closest profile and every difference with both results', () => {
    const kernel = [
      ran('create.size', 'creation and flags', { error: { ...EINVAL.error, code: 'E2BIG', errno: -7 } }),
      ran('conv.available', 'conversion', { share: UNSUPPORTED }),
      ns('pins.unshare-held', 'references/pins', 'not supported here: in-place conversion'),
    ];
    const v = computeVerdict(computeMatrix(kernel, profiles), PROFILES);
    expect(v.verdict).toBeNull();
    expect(v.matches).toEqual([]);
    expect(v.closest).toBe('linux-6.18');
    expect(v.differences['linux-6.18']).toHaveLength(1);
    const d = v.differences['linux-6.18']![0]!;
    expect(d.id).toBe('create.size');
    expect(d.where).toEqual(['.error.code', '.error.errno']);
    expect(d.kernel.outcome).toMatchObject({ error: { code: 'E2BIG' } });
    expect(d.profile.outcome).toEqual(EINVAL);
    expect(v.differences['rfc-v5']!.map((x) => x.id)).toEqual(['create.size', 'conv.available']);
    expect(exitStatus(v)).toBe(1);
  });

  it('cases the kernel cannot run are n/s, listed with the missing capability, and never count as differences', () => {
    const kernel = [
      ran('create.size', 'creation and flags', EINVAL),
      ran('conv.available', 'conversion', { share: UNSUPPORTED }),
      ns('pins.unshare-held', 'references/pins', 'not supported here: in-place conversion'),
    ];
    const rows = computeMatrix(kernel, profiles);
    const v = computeVerdict(rows, PROFILES);
    expect(v.verdict).toBe('linux-6.18');
    expect(v.compared).toBe(2);
    expect(v.notSupported).toEqual([{ id: 'pins.unshare-held', reason: 'not supported here: in-place conversion' }]);
    expect(PROFILES.map((p) => rows[2]!.cells[p]!.mark)).toEqual(['n/s', 'n/s', 'n/s']);
    // rfc-v5 answers the pins case differently, but the kernel could not run it: only conv.available counts.
    expect(v.differences['rfc-v5']!.map((x) => x.id)).toEqual(['conv.available']);
    const text = formatReport(rows, v, PROFILES);
    // The reason is printed once, as a numbered note the row points to.
    expect(text).toMatch(/pins\.unshare-held\s+n\/s\s+n\/s\s+n\/s\s+\[1\]/);
    expect(text).toMatch(/not supported here:\n {2}\[1\] in-place conversion\n/);
    const table = text.slice(0, text.indexOf('cases compared'));
    expect(table.split('in-place conversion').length - 1).toBe(1);
    expect(text).toContain("verdict: this kernel matches 'linux-6.18'");
  });

  it('a case that crashed or hung on the kernel counts against every profile', () => {
    const kernel: CaseResult[] = [
      ran('create.size', 'creation and flags', EINVAL),
      {
        id: 'conv.available',
        group: 'conversion',
        title: 't',
        status: 'timeout',
        reason: 'no result after 5000 ms',
        ms: 5000,
      },
    ];
    const v = computeVerdict(computeMatrix(kernel, profiles), PROFILES);
    expect(v.matches).toEqual([]);
    expect(v.kernelErrors).toEqual([{ id: 'conv.available', status: 'timeout', reason: 'no result after 5000 ms' }]);
    expect(v.differences['linux-6.18']!.map((x) => x.id)).toEqual(['conv.available']);
  });

  it('a profile that could not be opened differs wherever the kernel ran', () => {
    const kernel = [ran('create.size', 'creation and flags', EINVAL)];
    const v = computeVerdict(computeMatrix(kernel, { ...profiles, 'linux-6.18': null }), PROFILES);
    expect(v.matches).toEqual(['rfc-v5', 'inplace-v8']);
    expect(v.differences['linux-6.18']![0]!.profile.status).toBe('missing');
  });

  it('rows come out grouped in group order, keeping case order inside a group', () => {
    const kernel = [
      ran('pins.a', 'references/pins', 1),
      ran('create.a', 'creation and flags', 1),
      ran('pins.b', 'references/pins', 1),
      ran('create.b', 'creation and flags', 1),
    ];
    expect(computeMatrix(kernel, {}).map((r) => r.id)).toEqual(['create.a', 'create.b', 'pins.a', 'pins.b']);
  });

  it('outcomes compare by value, whatever the key order', () => {
    const kernel = [ran('x', 'fallocate', { a: 1, b: { c: [1, 2], d: null } })];
    const rows = computeMatrix(kernel, { p: [ran('x', 'fallocate', { b: { d: null, c: [1, 2] }, a: 1 })] });
    expect(rows[0]!.cells.p!.mark).toBe('match');
    expect(differingPaths({ a: [1, 2] }, { a: [1, 3] })).toEqual(['.a[1]']);
    expect(differingPaths({ a: 1 }, { b: 1 })).toEqual(['.']);
  });

  it('a path step keyed by an outcome reads as its values, not as escaped JSON', () => {
    const key = JSON.stringify({ error: { class: 'KvmError', code: 'EINVAL', errno: -22 } });
    expect(differingPaths({ create: { [key]: [1, 2] } }, { create: { [key]: [2] } })).toEqual([
      '.create[error: KvmError EINVAL -22]',
    ]);
    expect(pathKey('{"ok":null}')).toBe('[ok: null]');
    expect(pathKey('two words')).toBe('["two words"]');
    expect(pathKey('VM_TYPES')).toBe('.VM_TYPES');
  });
});

describe('check arguments', () => {
  it('--only takes known groups, one or comma-separated', () => {
    expect(parseCheckArgs(['--only', 'fallocate', '--json'])).toEqual({
      json: true,
      only: ['fallocate'],
      cases: [],
      path: '/dev/kvm',
    });
    expect(parseCheckArgs(['--only', 'memory slots,conversion'])).toMatchObject({
      only: ['memory slots', 'conversion'],
    });
  });

  it('an unknown group is an error that lists the groups', () => {
    const r = parseCheckArgs(['--only', 'slots']);
    expect(typeof r).toBe('string');
    expect(r).toContain("unknown group 'slots'");
    expect(r).toContain('create, map, falloc, slot, guest, conv, pins');
  });

  it('short group ids are the prefixes of their case ids, and --only takes them', () => {
    for (const c of cases) expect(GROUP_IDS[c.id.split('.')[0]!], c.id).toBe(c.group);
    expect(parseCheckArgs(['--only', 'create', '--only', 'conv,pins'])).toMatchObject({
      only: ['creation and flags', 'conversion', 'references/pins'],
    });
  });

  it('--case takes known case ids and names the near ones of an unknown id', () => {
    expect(parseCheckArgs(['--case', 'falloc.aligned,create.flags-none'])).toMatchObject({
      cases: ['falloc.aligned', 'create.flags-none'],
    });
    expect(parseCheckArgs(['--case', 'falloc.alined'])).toMatch(/unknown case 'falloc.alined'; did you mean falloc\./);
  });

  it('unknown options and a missing value are errors', () => {
    expect(parseCheckArgs(['--fast'])).toMatch(/unknown option '--fast'/);
    expect(parseCheckArgs(['--only'])).toMatch(/needs a value/);
  });
});
