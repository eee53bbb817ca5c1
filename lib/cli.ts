#!/usr/bin/env node
// The `kvm-gmem` command: probe, demo, check, bench. Options are parsed strictly (util.parseArgs):
// a typo is an error (exit 2), never a default run.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorLine, parseOptions, styler, UsageError, type OptionSpec, type Style } from './cli-util.js';
import type { ProbeReport } from './types.js';
import { SERIES_CAPS } from './series-caps.js';

interface Command {
  summary: string;
  usage: string;
  /** The options' help lines (--help is added to every command). */
  help: () => string | Promise<string>;
  options: OptionSpec;
  run(values: Record<string, unknown>): Promise<number> | number;
}

const HELP_OPT = { help: { type: 'boolean', short: 'h' } } as const;
const PATH_HELP = '  --path FILE   the KVM device to open (default /dev/kvm)';

function version(): string {
  const pkg = fileURLToPath(new URL('../package.json', import.meta.url));
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** bench/ is in the repository, not in the package: the command exists in a checkout only. */
function benchScript(): string | null {
  const script = fileURLToPath(new URL('../bench/run.mjs', import.meta.url));
  return existsSync(script) ? script : null;
}

function printProbe(r: ProbeReport, style: Style): void {
  const err = r.kvm.error;
  const rows: [string, string][] = [
    ['kernel', r.kernel],
    [
      r.kvm.path,
      r.kvm.available
        ? style('green', 'available')
        : `${style('red', 'unavailable')}: ${err ? errorLine(Object.assign(new Error(err.message), { code: err.code })) : 'unknown error'}`,
    ],
  ];
  if (r.kvm.available) {
    rows.push(['API version', String(r.apiVersion)]);
    rows.push(['VM types', r.vmTypes.join(', ')]);
    rows.push([
      'guest_memfd flags',
      r.guestMemfdFlags
        ? `0x${r.guestMemfdFlags.raw.toString(16)} (mmap: ${r.guestMemfdFlags.mmap}, initShared: ${r.guestMemfdFlags.initShared})`
        : 'none',
    ]);
    rows.push(['conversion', r.conversion.mechanism ?? 'none (share/unshare unsupported; use the simulator)']);
    for (const [name, v] of Object.entries(r.capabilities)) {
      // A mainline number a series also claimed: say so (lib/series-caps.ts).
      const s = SERIES_CAPS.find((c) => c.mainline === name);
      rows.push([`KVM_CAP_${name}${s ? ` (${s.cap}; ${s.by.split(' (')[0]}: ${s.series})` : ''}`, String(v)]);
    }
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

const commands: Record<string, Command> = {
  probe: {
    summary: "what this host's kernel supports (exit 1 when the device cannot be used)",
    usage: 'kvm-gmem probe [--json] [--path FILE]',
    help: () => `  --json        the report as JSON\n${PATH_HELP}`,
    options: { json: { type: 'boolean' }, path: { type: 'string' } },
    async run(v) {
      const { probe } = await import('./probe.js');
      const r = probe(v.path as string | undefined);
      if (v.json) console.log(JSON.stringify(r, null, 2));
      else printProbe(r, styler(process.stdout));
      return r.kvm.available ? 0 : 1;
    },
  },
  demo: {
    summary: 'a guest on real KVM writing shared memory, a caught SIGBUS, and conversions in the simulator',
    usage: 'kvm-gmem demo [--path FILE]',
    help: () => `${PATH_HELP}\n                without a usable device only the simulator part runs`,
    options: { path: { type: 'string' } },
    async run(v) {
      const { runDemo } = await import('./demo.js');
      return runDemo({ path: v.path as string | undefined });
    },
  },
  check: {
    summary: 'run the conformance cases on this kernel and say which simulator profile it matches',
    usage: 'kvm-gmem check [--json] [--only GROUP[,GROUP]] [--case ID[,ID]] [--path FILE]',
    async help() {
      const { checkOptionsHelp } = await import('./check.js');
      return checkOptionsHelp(PATH_HELP);
    },
    options: {
      json: { type: 'boolean' },
      only: { type: 'string', multiple: true },
      case: { type: 'string', multiple: true },
      path: { type: 'string' },
    },
    async run(v) {
      const { runCheck } = await import('./check.js');
      return runCheck(v);
    },
  },
  bench: {
    summary: 'run the benchmarks (a development command: needs a checkout of the repository)',
    usage: 'kvm-gmem bench [--quick]',
    help: () => '  --quick       a shorter run\n  (the same as `npm run bench` in a checkout; writes bench/results/)',
    options: { quick: { type: 'boolean' } },
    async run(v) {
      const script = benchScript();
      if (!script) {
        console.error(
          'kvm-gmem bench: a development command; the package does not ship the benchmarks. Clone the repository and run `npm run bench` there.',
        );
        return 2;
      }
      const { spawnSync } = await import('node:child_process');
      return spawnSync(process.execPath, [script, ...(v.quick ? ['--quick'] : [])], { stdio: 'inherit' }).status ?? 1;
    },
  },
};

async function commandHelp(cmd: Command): Promise<string> {
  // The option lines come first; anything after a blank line (check's groups) follows -h.
  const [opts, ...more] = (await cmd.help()).split('\n\n');
  return [`usage: ${cmd.usage}`, cmd.summary, `options:\n${opts}\n  -h, --help    this help`, ...more].join('\n\n');
}

function topHelp(): string {
  const lines = ['usage: kvm-gmem <command> [options]', '       kvm-gmem --version', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(7)} ${c.summary}`);
  lines.push('', 'kvm-gmem <command> --help shows the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help') {
    console.log(topHelp());
    return 0;
  }
  if (name.startsWith('-')) {
    const v = parseOptions({ ...HELP_OPT, version: { type: 'boolean', short: 'v' } }, argv);
    if (v.version) console.log(version());
    else console.log(topHelp());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) throw new UsageError(`unknown command '${name}'. Commands: ${Object.keys(commands).join(', ')}`);
  const values = parseOptions({ ...cmd.options, ...HELP_OPT }, args);
  if (values.help) {
    console.log(await commandHelp(cmd));
    return 0;
  }
  return cmd.run(values);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (e instanceof UsageError) {
      const cmd = process.argv[2] && commands[process.argv[2]] ? ` ${process.argv[2]}` : '';
      console.error(`kvm-gmem${cmd}: ${e.message} (kvm-gmem${cmd} --help)`);
      process.exitCode = 2;
    } else {
      console.error(`kvm-gmem: ${errorLine(e)}`);
      process.exitCode = 1;
    }
  },
);
