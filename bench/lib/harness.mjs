// The impure parts of the benchmark run: the progress line, the machine record, compiling and running
// the C/C++ baselines, and timing JS with tinybench.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bench, hrtimeNowTimestampProvider } from 'tinybench';

/** A single status line on stderr, rewritten in place with \r. */
export class Progress {
  constructor(total, stream = process.stderr) {
    this.total = total;
    this.done = 0;
    this.stream = stream;
    this.started = Date.now();
    this.width = 0;
  }
  step(label) {
    this.done++;
    this.show(label);
  }
  show(label) {
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    const text = `[${String(this.done).padStart(String(this.total).length)}/${this.total}] ${secs}s ${label}`;
    const pad = Math.max(0, this.width - text.length);
    this.width = text.length;
    this.stream.write(`\r${text}${' '.repeat(pad)}`);
  }
  end(label = 'done') {
    this.show(label);
    this.stream.write('\n');
  }
}

/** The machine a run was made on. */
export function machineInfo(quick) {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    /* keep os.cpus()'s answer */
  }
  let uname = `${os.type()} ${os.release()} ${os.version()} ${os.machine()}`;
  try {
    uname = execFileSync('uname', ['-srvm'], { encoding: 'utf8' }).trim();
  } catch {
    /* keep os' answer */
  }
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    uname,
    node: process.version,
    date: new Date().toISOString(),
    quick,
  };
}

/** Compiles the C/C++ baselines into a fresh temp dir with the system compilers; nothing is downloaded. */
export function compileBaselines(srcDir, extras = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-bench-'));
  const jobs = [
    {
      name: 'per_page',
      cmd: 'g++',
      args: ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', path.join(srcDir, 'per_page.cc')],
    },
    {
      name: 'kvm_c',
      cmd: 'cc',
      args: ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', path.join(srcDir, 'kvm_c.c'), '-pthread'],
    },
    {
      // A .node file: loaded by the benchmark, never run as a program.
      name: 'napi_check.node',
      cmd: 'cc',
      args: [
        '-std=gnu11',
        '-O2',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-shared',
        '-fPIC',
        '-I',
        path.resolve(process.execPath, '../../include/node'),
        path.join(srcDir, 'napi_check.c'),
      ],
    },
    {
      name: 'guest_copy_c',
      cmd: 'cc',
      args: ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', path.join(srcDir, 'guest_copy_c.c')],
    },
    ...extras,
  ];
  const built = {};
  const errors = {};
  for (const j of jobs) {
    const exe = path.join(dir, j.name);
    const r = spawnSync(j.cmd, [...j.args, '-o', exe], { encoding: 'utf8' });
    if (r.status === 0) built[j.name] = exe;
    else
      errors[j.name] =
        (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(0, 3).join(' | ') || `${j.cmd} failed`;
  }
  return { dir, built, errors, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a baseline and parses its JSON lines; throws with its message when it fails. */
export function runJsonLines(exe, args, timeoutMs = 300_000) {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 20 });
  const lines = (r.stdout ?? '')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));
  const err = lines.find((l) => l.error);
  if (err) throw new Error(err.error);
  if (r.status !== 0)
    throw new Error(
      `${path.basename(exe)} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr ?? '').trim()}`,
    );
  return lines;
}

/**
 * Median time of one op in ns, measured with tinybench: each sample runs `batch` ops so that the
 * timer's own cost stays out of sub-microsecond figures.
 */
export async function timeOp(
  name,
  fn,
  { batch = 1, time = 500, iterations = 10, warmupTime = 100, warmupIterations = 2 } = {},
) {
  const bench = new Bench({
    time,
    iterations,
    warmupTime,
    warmupIterations,
    timestampProvider: hrtimeNowTimestampProvider,
    throws: true,
  });
  const task =
    batch === 1
      ? fn
      : () => {
          for (let i = 0; i < batch; i++) fn();
        };
  bench.add(name, task);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw /** @type {{ error?: Error }} */ (r).error ?? new Error(`${name}: ${r.state}`);
  return (r.latency.p50 * 1e6) / batch;
}

/** Same, for async ops (each sample awaits `batch` ops in sequence). */
export async function timeAsyncOp(
  name,
  fn,
  { batch = 1, time = 500, iterations = 10, warmupTime = 100, warmupIterations = 2 } = {},
) {
  const bench = new Bench({
    time,
    iterations,
    warmupTime,
    warmupIterations,
    timestampProvider: hrtimeNowTimestampProvider,
    throws: true,
  });
  bench.add(name, async () => {
    for (let i = 0; i < batch; i++) await fn();
  });
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw /** @type {{ error?: Error }} */ (r).error ?? new Error(`${name}: ${r.state}`);
  return (r.latency.p50 * 1e6) / batch;
}
