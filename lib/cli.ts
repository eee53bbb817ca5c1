#!/usr/bin/env node
// The `kvm-gmem` command: probe, demo, bench, check.
import { probe } from './probe.js';
import type { ProbeReport } from './types.js';

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number> | number;
}

function printProbe(r: ProbeReport): void {
  const rows: [string, string][] = [
    ['kernel', r.kernel],
    ['/dev/kvm', r.kvm.available ? `available (${r.kvm.path})` : `unavailable (${r.kvm.path}): ${r.kvm.error?.code} ${r.kvm.error?.message ?? ''}`],
  ];
  if (r.kvm.available) {
    rows.push(['API version', String(r.apiVersion)]);
    rows.push(['VM types', r.vmTypes.join(', ')]);
    rows.push([
      'guest_memfd flags',
      r.guestMemfdFlags ? `0x${r.guestMemfdFlags.raw.toString(16)} (mmap: ${r.guestMemfdFlags.mmap}, initShared: ${r.guestMemfdFlags.initShared})` : 'none',
    ]);
    rows.push(['conversion', r.conversion.mechanism ?? 'none (share/unshare unsupported; use the simulator)']);
    for (const [name, v] of Object.entries(r.capabilities)) rows.push([`KVM_CAP_${name}`, String(v)]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

const commands: Record<string, Command> = {
  probe: {
    summary: "what this host's kernel supports",
    usage: 'kvm-gmem probe [--json] [--path /dev/kvm]',
    run(args) {
      const pi = args.indexOf('--path');
      const r = probe(pi >= 0 ? args[pi + 1] : undefined);
      if (args.includes('--json')) console.log(JSON.stringify(r, null, 2));
      else printProbe(r);
      return 0;
    },
  },
  demo: {
    summary: 'a guest on real KVM writing shared memory, a caught SIGBUS, and conversions in the simulator',
    usage: 'kvm-gmem demo [--path /dev/kvm]',
    async run(args) {
      const { runDemo } = await import('./demo.js');
      return runDemo(args);
    },
  },
  check: {
    summary: "run the conformance cases on this kernel and say which simulator profile it matches",
    usage: 'kvm-gmem check [--json] [--only GROUP]',
    async run(args) {
      const { runCheck } = await import('./check.js');
      return runCheck(args);
    },
  },
  bench: {
    summary: 'run the benchmarks (writes bench/results/latest.json and .svg)',
    usage: 'kvm-gmem bench [--quick]',
    async run(args) {
      const { spawnSync } = await import('node:child_process');
      const { fileURLToPath } = await import('node:url');
      const script = fileURLToPath(new URL('../bench/run.mjs', import.meta.url));
      return spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' }).status ?? 1;
    },
  },
};

function help(): void {
  console.log('usage: kvm-gmem <command> [options]\n\ncommands:');
  for (const [name, c] of Object.entries(commands)) console.log(`  ${name.padEnd(7)} ${c.summary}`);
  console.log('\nkvm-gmem <command> --help shows the options of one command.');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    help();
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`kvm-gmem: unknown command '${name}'. Commands: ${Object.keys(commands).join(', ')} (kvm-gmem --help)`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: ${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  return cmd.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(`kvm-gmem: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  },
);
