// Worker threads and teardown: VMs, files, mappings, slots and vCPUs made in a worker that ends
// (on its own, by process.exit, or by terminate()) while they are open and while a vCPU run(),
// a guarded copy loop or vm.guest access is in flight. No crash, no hang (each worker has a time
// limit), and the parent's fd and thread counts come back to where they were. Objects dropped
// without close() are closed by their finalizers (a child process with --expose-gc).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { beforeAll, expect, it } from 'vitest';
import { libBundle } from '../fixtures/lib-bundle.js';
import { describeKvm } from '../helpers/kvm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCENARIO = path.join(here, 'worker-scenario.mjs');
const LIMIT_MS = 15_000;

const fdCount = () => readdirSync('/proc/self/fd').length;
const threadCount = () => readdirSync('/proc/self/task').length;

type Mode = 'idle' | 'exit' | 'run' | 'runsync' | 'copy' | 'guest';
type End = 'natural' | 'exit' | 'terminate';

interface Ended {
  messages: string[];
  code: number;
  how: 'exited' | 'hung';
  error?: string;
}

/** Starts one worker; terminates it after 'busy' when asked; never waits longer than LIMIT_MS. */
function scenario(mode: Mode, end: End): Promise<Ended> {
  const { module, env } = libBundle();
  return new Promise((resolve) => {
    const messages: string[] = [];
    let error: string | undefined;
    const w = new Worker(SCENARIO, { workerData: { lib: module, mode, end: end === 'terminate' ? 'stay' : end }, env });
    const hung = setTimeout(() => {
      void w.terminate();
      resolve({ messages, code: -1, how: 'hung' });
    }, LIMIT_MS);
    w.on('message', (m: string) => {
      messages.push(m);
      // Let the loop or the run get going, then pull the thread down under it.
      if (m === 'busy' && end === 'terminate') setTimeout(() => void w.terminate(), 50);
    });
    w.on('error', (e) => {
      error = `${e.name}: ${e.message}`;
    });
    w.on('exit', (code) => {
      clearTimeout(hung);
      resolve({ messages, code, how: 'exited', error });
    });
  });
}

/** The counts come back within a short while (thread joins and fd closes finish on exit). */
async function settled(base: { fds: number; threads: number }): Promise<{ fds: number; threads: number }> {
  let now = { fds: fdCount(), threads: threadCount() };
  for (let i = 0; i < 50 && (now.fds !== base.fds || now.threads > base.threads); i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = { fds: fdCount(), threads: threadCount() };
  }
  return now;
}

describeKvm('worker threads and teardown', () => {
  let base: { fds: number; threads: number };
  beforeAll(async () => {
    // One worker first: the bundle, the addon and the worker machinery set up what stays.
    const warm = await scenario('idle', 'natural');
    expect(warm.how).toBe('exited');
    base = await settled({ fds: fdCount(), threads: threadCount() });
  }, 60_000);

  const cases: [Mode, End, number][] = [
    ['idle', 'natural', 0],
    ['exit', 'natural', 0],
    ['run', 'terminate', 1],
    ['run', 'exit', 0],
    ['runsync', 'terminate', 1],
    ['copy', 'terminate', 1],
    ['copy', 'exit', 0],
    ['guest', 'terminate', 1],
    ['guest', 'exit', 0],
  ];
  for (const [mode, end, code] of cases) {
    it(`a worker in mode '${mode}' ending by ${end} with every object open leaves no fd or thread behind`, async () => {
      // terminate() landing inside a copy that faults is the case that used to abort the process.
      const rounds = mode === 'copy' && end === 'terminate' ? 6 : 2;
      for (let i = 0; i < rounds; i++) {
        const r = await scenario(mode, end);
        expect(r.how, `worker ${mode}/${end} did not end within ${LIMIT_MS} ms`).toBe('exited');
        expect(r.error).toBeUndefined();
        expect(r.messages[0]).toBe('ready');
        if (mode !== 'idle' && mode !== 'exit') expect(r.messages).toContain('busy');
        expect(r.code).toBe(code);
        expect(await settled(base)).toEqual(base);
      }
    });
  }

  it('four workers with runs in flight, terminated together, leave nothing behind', async () => {
    const all = await Promise.all([
      scenario('run', 'terminate'),
      scenario('run', 'terminate'),
      scenario('copy', 'terminate'),
      scenario('guest', 'terminate'),
    ]);
    for (const r of all) {
      expect(r.how).toBe('exited');
      expect(r.code).toBe(1);
    }
    expect(await settled(base)).toEqual(base);
  });

  it('objects dropped without close(), vCPUs included, are closed by their finalizers', () => {
    const { module, env } = libBundle();
    const child = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'finalizer-child.mjs'), module, '40'], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const r = JSON.parse(child.stdout) as Record<
      'before' | 'during' | 'after',
      { fds: number; threads: number; maps: number }
    >;
    // Each round holds /dev/kvm, a VM, two files and two vCPUs: dropped, they stay until collected.
    expect(r.during.fds).toBeGreaterThan(r.before.fds + 40);
    expect(r.during.maps).toBeGreaterThan(r.before.maps);
    expect(r.after).toEqual(r.before);
  });
});
