// Host access to pages the host may not touch: caught SIGBUS, exact offsets, any thread, any
// number of times; and a SIGBUS outside a guarded copy still kills the process as it should.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostAccessError, open, type GuestMemfd, type Kvm, type Mapping, type Vm } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { PAGE, expectSigbus } from '../fixtures/kvm-cases.js';
import { fixture, libBundle } from '../fixtures/lib-bundle.js';

const fdCount = () => readdirSync('/proc/self/fd').length;

describeKvm('SIGBUS on host access, caught', () => {
  let kvm: Kvm;
  let vm: Vm;
  beforeEach(() => {
    kvm = open({ backend: 'kvm' });
    vm = kvm.createVm();
  });
  afterEach(() => kvm.close());

  describe('private pages (MMAP without INIT_SHARED)', () => {
    let g: GuestMemfd;
    let m: Mapping;
    beforeEach(() => {
      g = vm.createGuestMemfd({ size: 8 * PAGE, mmap: true });
      m = g.map(2 * PAGE, 4 * PAGE); // mapping offset 0 is file offset 2 pages
    });

    it('read reports the first byte asked for, as a file offset, also mid-page', () => {
      expectSigbus(() => m.read(0, 1), 2 * PAGE);
      expectSigbus(() => m.read(123, PAGE), 2 * PAGE + 123);
      expectSigbus(() => m.read(3 * PAGE + 4095, 1), 5 * PAGE + 4095);
      expectSigbus(() => m.readInto(PAGE + 1, new Uint8Array(2 * PAGE)), 3 * PAGE + 1);
    });

    it('write reports the first byte it would have written', () => {
      expectSigbus(() => m.write(PAGE - 1, new Uint8Array(2)), 3 * PAGE - 1);
      expectSigbus(() => m.write(7, new DataView(new ArrayBuffer(9))), 2 * PAGE + 7);
    });

    it('fill reports the first byte it would have filled', () => {
      expectSigbus(() => m.fill(0, 4 * PAGE, 0xaa), 2 * PAGE);
      expectSigbus(() => m.fill(2 * PAGE + 17, 5, 1), 4 * PAGE + 17);
    });

    it('zero-length copies touch nothing and succeed', () => {
      expect(m.read(PAGE, 0).length).toBe(0);
      m.write(PAGE, new Uint8Array(0));
      m.fill(PAGE, 0, 1);
    });

    it('10,000 faults in a row are all caught with the right offset; the mapping still works', () => {
      let right = 0;
      for (let i = 0; i < 10_000; i++) {
        const off = (i * 4097) % (4 * PAGE);
        try {
          if (i % 3 === 0) m.read(off, 1);
          else if (i % 3 === 1) m.write(off, Uint8Array.of(i & 0xff));
          else m.fill(off, 1, 0);
        } catch (e) {
          if (e instanceof HostAccessError && e.offset === 2 * PAGE + off) right++;
        }
      }
      expect(right).toBe(10_000);
      expectSigbus(() => m.read(0, 1), 2 * PAGE);
    });
  });

  describe('beyond EOF (MMAP | INIT_SHARED, mapping twice the file)', () => {
    let g: GuestMemfd;
    let m: Mapping;
    beforeEach(() => {
      g = vm.createGuestMemfd({ size: 2 * PAGE, mmap: true, initShared: true });
      m = g.map(0, 4 * PAGE);
      m.fill(0, 2 * PAGE, 0x11);
    });

    it('a read starting mid-page in shared memory and crossing EOF faults at EOF', () => {
      expectSigbus(() => m.read(PAGE + 100, PAGE), 2 * PAGE);
      expectSigbus(() => m.readInto(2 * PAGE - 1, new Uint8Array(2)), 2 * PAGE);
      expectSigbus(() => m.read(3 * PAGE + 9, 1), 3 * PAGE + 9);
    });

    it('a write or fill crossing EOF faults at EOF and changes none of the shared bytes', () => {
      expectSigbus(() => m.write(PAGE + 1, new Uint8Array(2 * PAGE).fill(0x22)), 2 * PAGE);
      expectSigbus(() => m.fill(10, 4 * PAGE - 10, 0x33), 2 * PAGE);
      expect(m.read(0, 2 * PAGE).every((b) => b === 0x11)).toBe(true);
    });

    it('copies that end exactly at EOF succeed', () => {
      m.write(2 * PAGE - 3, Uint8Array.of(1, 2, 3));
      expect([...m.read(2 * PAGE - 3, 3)]).toEqual([1, 2, 3]);
    });

    it('a mapping that starts beyond EOF faults at its own first byte', () => {
      using far = g.map(3 * PAGE, PAGE);
      expectSigbus(() => far.read(0, 1), 3 * PAGE);
      expectSigbus(() => far.fill(PAGE - 1, 1, 0), 4 * PAGE - 1);
    });

    it('punching a hole does not make the page fault: it reads back zero', () => {
      g.punchHole(0, PAGE);
      expect(m.read(0, PAGE).every((b) => b === 0)).toBe(true);
    });
  });
});

describeKvm('SIGBUS in worker threads and outside guarded copies', () => {
  const runWorker = (loops: number, leaveOpen: boolean): Promise<Record<string, unknown>> => {
    const { module, env } = libBundle();
    return new Promise((resolve, reject) => {
      const w = new Worker(fixture('sigbus-worker.mjs'), { workerData: { lib: module, loops, leaveOpen }, env });
      let msg: Record<string, unknown> | undefined;
      w.on('message', (m) => (msg = m));
      w.on('error', reject);
      w.on('exit', (code) =>
        code === 0 && msg ? resolve(msg) : reject(new Error(`worker exit ${code}, message ${JSON.stringify(msg)}`)),
      );
    });
  };
  const P = PAGE;
  const expected = {
    privateRead: { offset: P + 100, code: 'SIGBUS' },
    privateWrite: { offset: 2 * P + 7, code: 'SIGBUS' },
    privateFill: { offset: 3 * P, code: 'SIGBUS' },
    beyondEofRead: { offset: 2 * P, code: 'SIGBUS' },
    beyondEofWrite: { offset: 2 * P, code: 'SIGBUS' },
    beyondEofFill: { offset: 2 * P + 5, code: 'SIGBUS' },
    sharedStillReadable: true,
  };

  it('a worker catches every fault with the exact offset, 10,000 in a row, and exits cleanly', async () => {
    const r = await runWorker(10_000, false);
    expect(r).toEqual({ ...expected, loopCaught: 10_000 });
  });

  it('two workers and the main thread fault at the same time without mixing up their offsets', async () => {
    const kvm = open({ backend: 'kvm' });
    try {
      const g = kvm.createVm().createGuestMemfd({ size: 4 * PAGE, mmap: true });
      const m = g.map();
      const workers = [runWorker(3000, false), runWorker(3000, false)];
      let right = 0;
      for (let i = 0; i < 3000; i++) {
        try {
          m.read(i % (4 * PAGE), 1);
        } catch (e) {
          if (e instanceof HostAccessError && e.offset === i % (4 * PAGE)) right++;
        }
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
      expect(right).toBe(3000);
      for (const r of await Promise.all(workers)) expect(r).toEqual({ ...expected, loopCaught: 3000 });
    } finally {
      kvm.close();
    }
  });

  it('objects a worker leaves open are closed when it exits (no fd left behind)', async () => {
    const before = fdCount();
    const r = await runWorker(10, true);
    expect(r.loopCaught).toBe(10);
    // Worker teardown is asynchronous to the exit event by a tick at most.
    await new Promise((res) => setTimeout(res, 50));
    expect(fdCount()).toBe(before);
  });

  const child = (kind: 'private' | 'shared') => {
    const { module, env } = libBundle();
    return spawnSync(process.execPath, [fixture('sigbus-unguarded.mjs'), module, kind], {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
  };

  it('a private page touched through view() outside any guarded copy kills the process by SIGBUS', () => {
    const r = child('private');
    expect(r.stdout).toContain('guarded:SIGBUS'); // the guard was installed and had caught one
    expect(r.stdout).not.toContain('survived');
    expect(r.signal).toBe('SIGBUS');
  });

  it('the same script on a shared page runs to the end and exits 0 with a live view', () => {
    const r = child('shared');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('survived:1');
    expect([r.status, r.signal]).toEqual([0, null]);
  });
});
