// The SIGBUS guard against signals it does not own and handlers installed by others (each case
// in a child process, sigbus-child.mjs, with a time limit):
// - kill -BUS from another process, with no other handler, kills the process as it would
//   without kvm-gmem, at once, not at the next guarded copy;
// - kill -BUS landing during guarded copies, with a JS listener, goes to the listener and never
//   turns into a HostAccessError; the guard still catches faults afterwards;
// - process.on('SIGBUS') after the first map() (libuv's sigaction replaces the guard's handler):
//   a guarded copy of a private page still throws HostAccessError instead of re-faulting forever,
//   the listener still gets kill -BUS, and once it is removed a kill -BUS kills again; the same
//   for a guarded copy in a worker thread.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { libBundle } from '../fixtures/lib-bundle.js';
import { describeKvm } from '../helpers/kvm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'sigbus-child.mjs');
const PRIVATE_READ = 'HostAccessError@4096';

interface Ran {
  lines: Record<string, unknown>[];
  status: number | null;
  signal: string | null;
  stderr: string;
}

/** Runs one mode; a child that hangs (a copy re-faulting forever) is killed after 20 s. */
function child(mode: string): Promise<Ran> {
  const { module, env } = libBundle();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CHILD, module, mode], { env, timeout: 20_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status, signal) => {
      const lines = stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ lines, status, signal, stderr });
    });
  });
}

describeKvm('SIGBUS from outside and other handlers', () => {
  it('kill -BUS with no other handler kills the process at once (SIGBUS), as without kvm-gmem', async () => {
    const r = await child('external');
    // No 'alive' line: the process did not live on until the next guarded copy.
    expect(r.lines, r.stderr).toEqual([{ guarded: PRIVATE_READ }]);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal: 'SIGBUS' });
  }, 30_000);

  it('kill -BUS during guarded copies goes to the JS listener, never becomes a HostAccessError; the guard still works', async () => {
    const r = await child('handled');
    expect(r.lines, r.stderr).toEqual([{ copies: true, wrong: [], received: true, guarded: PRIVATE_READ }]);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
  }, 30_000);

  it("process.on('SIGBUS') after map(): guarded copies still throw, the listener gets kill -BUS, and without it kill -BUS kills", async () => {
    const r = await child('replaced');
    expect(r.lines, r.stderr).toEqual([
      { step: 'first', guarded: PRIVATE_READ },
      { step: 'listener', guarded: PRIVATE_READ },
      { step: 'kill', received: 1, guarded: PRIVATE_READ },
      { step: 'off', guarded: PRIVATE_READ },
    ]);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal: 'SIGBUS' });
  }, 30_000);

  it("process.on('SIGBUS') on the main thread, then a guarded copy in a worker, still throws HostAccessError", async () => {
    const r = await child('worker');
    expect(r.lines, r.stderr).toEqual([
      { step: 'main', guarded: PRIVATE_READ },
      { step: 'worker', guarded: PRIVATE_READ },
      { step: 'main again', guarded: PRIVATE_READ },
    ]);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
  }, 30_000);
});
