// Every conformance case on the real kernel and on the simulator profile probe expects for it
// (hostProfile: 'linux-6.18-pvm' here, 'linux-6.18' / 'linux-7.3' in tools/rig): any difference
// fails, because that profile claims to be this kernel. Then what each profile must
// answer where the profiles part ways.
import { beforeAll, describe, expect, it } from 'vitest';
import { open } from '../../lib/index.js';
import { canonical, cases, runCases, type CaseResult } from '../../lib/conformance/index.js';
import { seriesExpectations } from '../../lib/conformance/expected-series.js';
import type { Kvm, Profile } from '../../lib/types.js';
import { hostProfile } from '../../lib/probe.js';
import { describeKvm } from '../helpers/kvm.js';

const expected: Profile = hostProfile() ?? 'linux-6.18';

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

describeKvm(`conformance: the real kernel and the simulator profile ${expected} agree`, () => {
  let kernel: Map<string, CaseResult>;
  let sim: Map<string, CaseResult>;
  beforeAll(async () => {
    kernel = await runAll(open({ backend: 'kvm' }));
    sim = await runAll(open({ backend: 'sim', profile: expected }));
    const skipped = [...kernel.values()].filter((r) => r.status === 'n/s');
    if (skipped.length)
      console.info(
        `[conformance] ${skipped.length} cases not supported by this kernel (both sides must agree): ${[...new Set(skipped.map((r) => r.reason))].join('; ')}`,
      );
  });

  for (const c of cases) {
    it(`${c.group}: ${c.title} [${c.id}]`, () => {
      const k = kernel.get(c.id)!;
      // A crash or a hang on the kernel is a bug in the case or the backend, not a result to compare.
      expect(k.status === 'crashed' || k.status === 'timeout' ? `${k.status}: ${k.reason}` : 'ok').toBe('ok');
      expect(comparable(sim.get(c.id)), `simulator '${expected}' differs from the kernel in ${c.id}`).toEqual(
        comparable(k),
      );
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

const UNSUPPORTED_CONVERSION = {
  error: { class: 'UnsupportedError', code: 'ERR_KVM_UNSUPPORTED', feature: 'in-place conversion' },
};

describe.each(['rfc-v5', 'inplace-v8', 'linux-6.18', 'linux-7.3', 'linux-6.18-pvm'] as const)(
  'conformance on the simulator profile %s',
  (profile) => {
    let rs: Map<string, CaseResult>;
    beforeAll(async () => {
      rs = await profileResults(profile);
    });

    it('no case crashes or hangs', () => {
      const broken = [...rs.values()]
        .filter((r) => r.status === 'crashed' || r.status === 'timeout')
        .map((r) => `${r.id}: ${r.status} ${r.reason}`);
      expect(broken).toEqual([]);
    });

    it('guest_memfd creation refuses unknown flag bits and unaligned sizes with EINVAL', () => {
      const einval = {
        error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' },
      };
      expect(outcome(rs, 'create.sizes-bad')).toEqual({ [canonical(einval)]: [0, 1, 100, 4095, 4097, 11776] });
      const bits = Array.from({ length: 62 }, (_, i) => i + 2);
      expect(outcome(rs, 'create.flag-bits-unknown')).toEqual({ [canonical(einval)]: bits });
    });

    it('host access to a page beyond EOF is SIGBUS at the first byte past EOF', () => {
      expect(outcome(rs, 'map.beyond-eof-sigbus')).toMatchObject({
        spanning: { error: { class: 'HostAccessError', code: 'SIGBUS', offset: 8192 } },
      });
    });

    if (profile.startsWith('linux-')) {
      it('has no conversion: share is UnsupportedError and the conversion and pins cases are not supported', () => {
        expect(outcome(rs, 'conv.available')).toEqual({
          share: UNSUPPORTED_CONVERSION,
          unshare: UNSUPPORTED_CONVERSION,
        });
        for (const id of ['conv.share-private', 'conv.round-trip-keeps-data', 'pins.unshare-held', 'pins.two-holds']) {
          expect(rs.get(id)!.status, id).toBe('n/s');
        }
        const holds = outcome(rs, 'pins.hold-without-conversion') as Record<string, unknown>;
        expect(holds.hold).not.toHaveProperty('error');
        expect(holds).toMatchObject({
          private: { error: { class: 'KvmError', code: 'EFAULT' } },
          noMmap: { error: { class: 'KvmError', code: 'ENODEV' } },
        });
      });
    }

    if (profile === 'rfc-v5' || profile === 'inplace-v8') {
      // The answers each series profile must give, kept next to the cases (lib/conformance/expected-series.ts).
      it.each(Object.entries(seriesExpectations[profile]))("%s gives the series' answer", (id, want) => {
        expect(outcome(rs, id)).toEqual(want);
      });
    }
  },
);
