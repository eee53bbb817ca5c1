// The simulator where the native addon cannot load (no compiler, macOS, --ignore-scripts): the
// library imports, the simulator runs on the TypeScript extent map and the generated constants,
// and the real backend says why it cannot run. In a child process with the addon made unloadable.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, libBundle } from '../fixtures/lib-bundle.js';

function scenario(addon: string): { status: number | null; stderr: string; out: Record<string, unknown> } {
  const { module, env } = libBundle();
  const r = spawnSync(process.execPath, [fixture('no-addon-scenario.mjs'), module], {
    encoding: 'utf8',
    env: { ...env, KVM_GMEM_ADDON: addon },
  });
  return { status: r.status, stderr: r.stderr, out: r.status === 0 ? JSON.parse(r.stdout) : {} };
}

const expected = {
  unshare: { pending: [] },
  privateRead: 'SIGBUS',
  held: { pending: [{ offset: 0, length: 4096, state: 'pending' }] },
  // RFC v5: nothing completes a pending page when its last reference goes (docs/profiles.md).
  states: [
    { offset: 0, length: 4096, state: 'pending' },
    { offset: 4096, length: 3 * 4096, state: 'shared' },
  ],
  text: 'hello',
  tib: { pending: [] },
};

describe('without the native addon', () => {
  it('KVM_GMEM_ADDON=none: the simulator runs share/unshare/map/hold; the real backend is an UnsupportedError', () => {
    const r = scenario('none');
    expect(r.stderr).toBe('');
    expect(r.out).toMatchObject(expected);
    expect(r.out.kvm).toMatchObject({ unsupported: true, feature: 'native addon' });
    expect((r.out.kvm as { message: string }).message).toContain('KVM_GMEM_ADDON=none');
  });

  it('an addon file that does not load (not an ELF file): the same, and the message says why', () => {
    const bad = path.join(mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-badaddon-')), 'kvm_gmem.node');
    writeFileSync(bad, 'not an ELF file');
    const r = scenario(bad);
    expect(r.stderr).toBe('');
    expect(r.out).toMatchObject(expected);
    expect((r.out.kvm as { message: string }).message).toMatch(/invalid ELF header|file too short/);
  });

  it('with the addon the same scenario gives the same answers (the real backend then opens or fails as a KvmError)', () => {
    const r = scenario(libBundle().env.KVM_GMEM_ADDON!);
    expect(r.stderr).toBe('');
    expect(r.out).toMatchObject(expected);
    expect(r.out.kvm === 'opened' || (r.out.kvm as { unsupported: boolean }).unsupported === false).toBe(true);
  });
});
