// `kvm-gmem check`: run the conformance cases on this host's kernel and on each simulator profile,
// print the matrix and say which profile the kernel matches. The logic is in conformance/matrix.ts.
import os from 'node:os';
import { GROUPS, casesOf, computeMatrix, computeVerdict, formatReport, isGroup, runCases, type CaseResult, type Group, type ProfileResults, type Row, type Verdict } from './conformance/index.js';
import { PROFILE_NAMES } from './sim/profiles.js';
import type { Kvm, Profile } from './types.js';

export const PROFILES: readonly Profile[] = PROFILE_NAMES;

export interface CheckArgs {
  json: boolean;
  only: Group[];
  path: string;
}

/** Parses the options; a string is the usage error to print (exit 2). */
export function parseCheckArgs(args: string[]): CheckArgs | string {
  const out: CheckArgs = { json: false, only: [], path: '/dev/kvm' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') out.json = true;
    else if (a === '--only' || a === '--path') {
      const v = args[++i];
      if (v === undefined) return `${a} needs a value`;
      if (a === '--path') out.path = v;
      else {
        for (const g of v.split(',').map((s) => s.trim())) {
          if (!isGroup(g)) return `unknown group '${g}'; groups: ${GROUPS.map((x) => `'${x}'`).join(', ')}`;
          out.only.push(g);
        }
      }
    } else return `unknown option '${a}' (usage: kvm-gmem check [--json] [--only GROUP[,GROUP]] [--path /dev/kvm])`;
  }
  return out;
}

export interface CheckReport {
  /** profile: what probe expects this host to match (hostProfile), or null. */
  host: { kernel: string; path: string; conversion: string | null; profile: Profile | null };
  groups: Group[];
  profiles: Record<string, { available: boolean; error?: string }>;
  rows: Row[];
  verdict: Verdict;
  ms: number;
}

/** Exit status: 0 when the kernel matches some profile fully, 1 otherwise. */
export function exitStatus(v: Verdict): number {
  return v.matches.length > 0 ? 0 : 1;
}

async function runOn(kvm: Kvm, groups: Group[]): Promise<CaseResult[]> {
  try {
    return await runCases(kvm, casesOf(groups));
  } finally {
    kvm.close();
  }
}

/** Runs everything: the kernel, then each profile. Throws only when /dev/kvm cannot be opened. */
export async function check(opts: { only?: Group[]; path?: string } = {}): Promise<CheckReport> {
  const t0 = performance.now();
  const groups = opts.only ?? [];
  const path = opts.path ?? '/dev/kvm';
  // Loaded here so argument errors and the pure parts need no native addon.
  const { open } = await import('./open.js');
  const { hostProfile } = await import('./probe.js');
  const kernelKvm = open({ backend: 'kvm', path });
  const conversion = kernelKvm.profile as string | null;
  const kernel = await runOn(kernelKvm, groups);
  const results: ProfileResults = {};
  const profiles: CheckReport['profiles'] = {};
  for (const p of PROFILES) {
    let sim: Kvm;
    try {
      sim = open({ backend: 'sim', profile: p });
    } catch (e) {
      results[p] = null;
      profiles[p] = { available: false, error: `${(e as Error).name}: ${(e as Error).message}` };
      continue;
    }
    results[p] = await runOn(sim, groups);
    profiles[p] = { available: true };
  }
  const rows = computeMatrix(kernel, results);
  return {
    host: { kernel: `${os.type()} ${os.release()}`, path, conversion, profile: hostProfile() },
    groups: groups.length ? groups : [...GROUPS],
    profiles,
    rows,
    verdict: computeVerdict(rows, [...PROFILES]),
    ms: Math.round(performance.now() - t0),
  };
}

export async function runCheck(args: string[]): Promise<number> {
  const parsed = parseCheckArgs(args);
  if (typeof parsed === 'string') {
    console.error(`kvm-gmem check: ${parsed}`);
    return 2;
  }
  let report: CheckReport;
  try {
    report = await check({ only: parsed.only, path: parsed.path });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    const reason = `no usable ${parsed.path}: ${err.code ?? ''} ${err.message ?? String(e)}`.replace(/\s+/g, ' ');
    if (parsed.json) console.log(JSON.stringify({ error: { code: err.code ?? 'UNKNOWN', reason } }, null, 2));
    else console.error(`kvm-gmem check: ${reason}\n(check compares the kernel with the simulator, so it needs /dev/kvm; see kvm-gmem probe)`);
    return 2;
  }
  if (parsed.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(`kernel: ${report.host.kernel} (${report.host.path}); conversion mechanism: ${report.host.conversion ?? 'none'}; expected profile: ${report.host.profile ?? 'none verified'}`);
    for (const [p, s] of Object.entries(report.profiles)) if (!s.available) console.log(`profile '${p}' could not be run: ${s.error}`);
    console.log('');
    console.log(formatReport(report.rows, report.verdict, [...PROFILES]));
    console.log(`\n(${report.rows.length} cases on the kernel and ${PROFILES.length} profiles in ${report.ms} ms)`);
  }
  return exitStatus(report.verdict);
}
