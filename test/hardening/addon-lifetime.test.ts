// The addon once loaded stays loaded for the life of the process. When only worker threads load
// it, Node dlcloses a module at each such worker's exit unless the library is marked NODELETE;
// the SIGBUS and kick handlers would then point into unmapped code and the statics (the chosen
// kick signal, the install-once flags) would start over at every load, taking a new realtime
// signal each time until none is left.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { libBundle } from '../fixtures/lib-bundle.js';
import { describeKvm } from '../helpers/kvm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'addon-lifetime-child.mjs');
// More workers than there are realtime signals a per-load choice could take (SIGRTMIN+4..SIGRTMAX-4).
const WORKERS = 40;

describeKvm('addon lifetime when only workers load it', () => {
  it(`${WORKERS} workers in turn each run and kick a vCPU and guard a copy; a private page touched through view() in the last one kills with SIGBUS`, async () => {
    const { module, env } = libBundle();
    // Not spawnSync: the test worker must keep answering vitest while the child runs.
    const r = await new Promise<{ stdout: string; stderr: string; status: number | null; signal: string | null }>(
      (resolve) => {
        const c = spawn(process.execPath, [CHILD, module, String(WORKERS)], {
          env,
          timeout: 180_000,
          killSignal: 'SIGKILL',
        });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (status, signal) => resolve({ stdout, stderr, status, signal }));
      },
    );
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const expected = Array.from({ length: WORKERS }, (_, worker) => ({
      worker,
      inline: 'hlt',
      kicked: 'intr',
      guarded: 'HostAccessError@4096',
    }));
    expect(lines, r.stderr).toEqual(expected);
    // Killed by the default action of SIGBUS, as without kvm-gmem: not SIGSEGV from a handler in
    // unmapped code, not a hang.
    expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: null, signal: 'SIGBUS' });
  }, 200_000);
});
