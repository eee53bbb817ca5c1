// Every conformance case on the real kernel and on the simulator's 'linux-6.18' profile: any
// difference fails, because that profile claims to be this kernel. Then what each profile must
// answer where the profiles part ways.
import { beforeAll, describe, expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import { canonical, cases, runCases, type CaseResult } from '../../lib/conformance/index.js';
import type { Kvm, Profile } from '../../lib/types.js';
import { describeKvm } from '../helpers/kvm.js';

async function runAll(kvm: Kvm): Promise<Map<string, CaseResult>> {
  try {
    return new Map((await runCases(kvm, cases)).map((r) => [r.id, r]));
  } finally {
    kvm.close();
  }
}

/** What is compared: whether it ran and what came of it (not timings, not the wording of reasons). */
function comparable(r: CaseResult | undefined) {
  if (!r) return { status: 'missing' };
  return r.status === 'ran' ? { status: r.status, outcome: r.outcome } : { status: r.status };
}

describeKvm('conformance: the real kernel and the simulator profile linux-6.18 agree', () => {
  let kernel: Map<string, CaseResult>;
  let sim: Map<string, CaseResult>;
  beforeAll(async () => {
    kernel = await runAll(open({ backend: 'kvm' }));
    sim = await runAll(open({ backend: 'sim', profile: 'linux-6.18' }));
    const skipped = [...kernel.values()].filter((r) => r.status === 'n/s');
    if (skipped.length) console.info(`[conformance] ${skipped.length} cases not supported by this kernel (both sides must agree): ${[...new Set(skipped.map((r) => r.reason))].join('; ')}`);
  });

  for (const c of cases) {
    it(`${c.group}: ${c.title} [${c.id}]`, () => {
      const k = kernel.get(c.id)!;
      // A crash or a hang on the kernel is a bug in the case or the backend, not a result to compare.
      expect(k.status === 'crashed' || k.status === 'timeout' ? `${k.status}: ${k.reason}` : 'ok').toBe('ok');
      expect(comparable(sim.get(c.id)), `simulator 'linux-6.18' differs from the kernel in ${c.id}`).toEqual(comparable(k));
    });
  }
});

async function profileResults(profile: Profile): Promise<Map<string, CaseResult>> {
  return runAll(open({ backend: 'sim', profile }));
}

function outcome(rs: Map<string, CaseResult>, id: string): unknown {
  const r = rs.get(id)!;
  expect(r.status, `${id}: ${r.reason ?? ''}`).toBe('ran');
  return r.outcome;
}

const UNSUPPORTED_CONVERSION = { error: { class: 'UnsupportedError', code: 'ERR_KVM_UNSUPPORTED', feature: 'in-place conversion' } };

describe.each(['rfc-v5', 'inplace-v8', 'linux-6.18'] as const)('conformance on the simulator profile %s', (profile) => {
  let rs: Map<string, CaseResult>;
  beforeAll(async () => {
    rs = await profileResults(profile);
  });

  it('no case crashes or hangs', () => {
    const broken = [...rs.values()].filter((r) => r.status === 'crashed' || r.status === 'timeout').map((r) => `${r.id}: ${r.status} ${r.reason}`);
    expect(broken).toEqual([]);
  });

  it('guest_memfd creation refuses unknown flag bits and unaligned sizes with EINVAL', () => {
    const einval = { error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' } };
    expect(outcome(rs, 'create.sizes-bad')).toEqual({ [canonical(einval)]: [0, 1, 100, 4095, 4097, 11776] });
    const bits = Array.from({ length: 62 }, (_, i) => i + 2);
    expect(outcome(rs, 'create.flag-bits-unknown')).toEqual({ [canonical(einval)]: bits });
  });

  it('host access to a page beyond EOF is SIGBUS at the first byte past EOF', () => {
    expect(outcome(rs, 'map.beyond-eof-sigbus')).toMatchObject({
      spanning: { error: { class: 'HostAccessError', code: 'SIGBUS', offset: 8192 } },
    });
  });

  if (profile === 'linux-6.18') {
    it('has no conversion: share is UnsupportedError and the conversion and pins cases are not supported', () => {
      expect(outcome(rs, 'conv.available')).toEqual({ share: UNSUPPORTED_CONVERSION, unshare: UNSUPPORTED_CONVERSION });
      for (const id of ['conv.share-private', 'conv.round-trip-keeps-data', 'pins.unshare-held', 'pins.two-holds']) {
        expect(rs.get(id)!.status, id).toBe('n/s');
      }
      const holds = outcome(rs, 'pins.hold-without-conversion') as Record<string, unknown>;
      expect(holds.hold).not.toHaveProperty('error');
      expect(holds).toMatchObject({ private: { error: { class: 'KvmError', code: 'EFAULT' } }, noMmap: { error: { class: 'KvmError', code: 'ENODEV' } } });
    });
  } else {
    it('converts in place: unsharing one page leaves its neighbours shared and the host gets SIGBUS on it', () => {
      expect(outcome(rs, 'conv.unshare-one-page')).toMatchObject({
        unshare: { ok: { pending: [] } },
        states: [
          { offset: 0, length: 4096, state: 'shared' },
          { offset: 4096, length: 4096, state: 'private' },
          { offset: 8192, length: 8192, state: 'shared' },
        ],
        neighbour: { ok: 'aa*4096' },
        page: { error: { class: 'HostAccessError', code: 'SIGBUS', offset: 4196 } },
      });
      expect(outcome(rs, 'conv.round-trip-keeps-data')).toMatchObject({ bytes: { ok: '5a*16384' } });
      expect(outcome(rs, 'conv.punch-keeps-state')).toMatchObject({ bytes: { ok: '00*4096 66*4096' } });
    });
  }

  if (profile === 'rfc-v5') {
    it('unshare of a held page leaves it pending until the last hold is released', () => {
      expect(outcome(rs, 'pins.unshare-held')).toEqual({
        unshare: { ok: { pending: [{ offset: 8192, length: 4096, state: 'pending' }] } },
        states: [
          { offset: 0, length: 8192, state: 'private' },
          { offset: 8192, length: 4096, state: 'pending' },
          { offset: 12288, length: 4096, state: 'private' },
        ],
      });
      expect(outcome(rs, 'pins.release-completes')).toMatchObject({ released: true, states: [{ offset: 0, length: 16384, state: 'private' }] });
      expect(outcome(rs, 'pins.share-cancels')).toMatchObject({ afterRelease: [{ offset: 0, length: 4096, state: 'shared' }, { offset: 4096, length: 12288, state: 'private' }] });
    });
  }

  if (profile === 'inplace-v8') {
    it('unshare of a held page fails with EAGAIN at that page and converts nothing; it succeeds after release', () => {
      const busy = { error: { class: 'ConversionBusyError', code: 'EAGAIN', errorOffset: 8192 } };
      expect(outcome(rs, 'pins.unshare-held')).toEqual({ unshare: busy, states: [{ offset: 0, length: 16384, state: 'shared' }] });
      expect(outcome(rs, 'pins.release-completes')).toMatchObject({
        unshare: { error: { code: 'EAGAIN', errorOffset: 4096 } },
        retry: { ok: { pending: [] } },
        final: [{ offset: 0, length: 16384, state: 'private' }],
      });
      expect(outcome(rs, 'pins.share-ignores-holds')).toMatchObject({ share: { ok: null } });
    });
  }
});
