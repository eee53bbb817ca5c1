// `kvm-gmem check`: run the conformance cases on this host's kernel and on each simulator profile,
// print the matrix and say which profile the kernel matches. The logic is in conformance/matrix.ts.
import os from 'node:os';
import { parseOptions, styler, UsageError, errorLine } from './cli-util.js';
import {
  GROUPS,
  cases,
  casesOf,
  computeMatrix,
  computeVerdict,
  formatReport,
  isGroup,
  runCases,
  type CaseResult,
  type Group,
  type Json,
  type ProfileResults,
  type Row,
  type Verdict,
} from './conformance/index.js';
import { PROFILE_NAMES } from './sim/profiles.js';
import type { Kvm, Profile } from './types.js';

export const PROFILES: readonly Profile[] = PROFILE_NAMES;

/** The short id of each group: the prefix of its cases' ids (`--only create`). */
export const GROUP_IDS: Record<string, Group> = {
  create: 'creation and flags',
  map: 'mapping and SIGBUS',
  falloc: 'fallocate',
  slot: 'memory slots',
  guest: 'guest access',
  conv: 'conversion',
  pins: 'references/pins',
};

export interface CheckArgs {
  json: boolean;
  only: Group[];
  cases: string[];
  path: string;
}

const CHECK_OPTIONS = {
  json: { type: 'boolean' },
  only: { type: 'string', multiple: true },
  case: { type: 'string', multiple: true },
  path: { type: 'string' },
} as const;

function groupOf(s: string): Group | null {
  if (GROUP_IDS[s]) return GROUP_IDS[s]!;
  return isGroup(s) ? s : null;
}

function listOf(v: unknown): string[] {
  const items = v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [String(v)];
  return items
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** Checks parsed values (from util.parseArgs); a string is the usage error to print (exit 2). */
export function checkArgsFrom(v: Record<string, unknown>): CheckArgs | string {
  const out: CheckArgs = {
    json: v.json === true,
    only: [],
    cases: [],
    path: (v.path as string | undefined) ?? '/dev/kvm',
  };
  for (const g of listOf(v.only)) {
    const group = groupOf(g);
    if (!group) return `unknown group '${g}'; groups: ${Object.keys(GROUP_IDS).join(', ')} (kvm-gmem check --help)`;
    if (!out.only.includes(group)) out.only.push(group);
  }
  const ids = new Set(cases.map((c) => c.id));
  for (const id of listOf(v.case)) {
    if (!ids.has(id)) {
      // Suggest the ids containing what was typed, then the others of its group (the id's prefix).
      const prefix = `${id.split('.')[0]}.`;
      const all = [...ids];
      const near = [
        ...new Set([...all.filter((x) => x.includes(id)), ...all.filter((x) => x.startsWith(prefix))]),
      ].slice(0, 5);
      return `unknown case '${id}'${near.length ? `; did you mean ${near.join(', ')}?` : ''}`;
    }
    out.cases.push(id);
  }
  return out;
}

/** Parses the command line; a string is the usage error to print (exit 2). */
export function parseCheckArgs(args: string[]): CheckArgs | string {
  try {
    return checkArgsFrom(parseOptions(CHECK_OPTIONS, args));
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
}

/** The option lines of `kvm-gmem check --help`, with the groups. */
export function checkOptionsHelp(pathHelp: string): string {
  const w = Math.max(...Object.keys(GROUP_IDS).map((k) => k.length));
  const count = (g: Group) => cases.filter((c) => c.group === g).length;
  return [
    '  --json        the report as JSON (exit status as without)',
    '  --only GROUP  run the cases of these groups only (repeat it, or GROUP,GROUP)',
    '  --case ID     run these cases only (repeat it, or ID,ID; ids are in the report)',
    pathHelp,
    '',
    'groups:',
    ...Object.entries(GROUP_IDS).map(([id, g]) => `  ${id.padEnd(w)}  ${g} (${count(g)} cases)`),
    '',
    'exit status: 0 when the kernel matches a profile in every case it can run, 1 when none,',
    '2 on a usage error or when the device cannot be opened.',
  ].join('\n');
}

/** docs/api.md, GuestMemfd.states(); docs/profiles.md. */
export const STATES_MIRROR =
  "the kernel's states() are a mirror: no ioctl reads conversion states back, so on the kvm backend GuestMemfd.states() is the file's initial state and this process's own successful share/unshare calls; cases that report states compare that mirror, while their host and guest accesses test the kernel";

export interface CheckReport {
  /** profile: what probe expects this host to match (hostProfile), or null. */
  host: { kernel: string; path: string; conversion: string | null; profile: Profile | null };
  groups: Group[];
  profiles: Record<string, { available: boolean; error?: string }>;
  /** What a reader must know to read the kernel's column (e.g. that its states() are a mirror). */
  notes: string[];
  rows: Row[];
  verdict: Verdict;
  ms: number;
}

/** Exit status: 0 when the kernel matches some profile fully, 1 otherwise. */
export function exitStatus(v: Verdict): number {
  return v.matches.length > 0 ? 0 : 1;
}

async function runOn(kvm: Kvm, selected: typeof cases): Promise<CaseResult[]> {
  try {
    return await runCases(kvm, selected);
  } finally {
    kvm.close();
  }
}

/** Runs everything: the kernel, then each profile. Throws only when /dev/kvm cannot be opened. */
export async function check(opts: { only?: Group[]; cases?: string[]; path?: string } = {}): Promise<CheckReport> {
  const t0 = performance.now();
  const groups = opts.only ?? [];
  const ids = opts.cases ?? [];
  const selected = casesOf(groups).filter((c) => ids.length === 0 || ids.includes(c.id));
  const path = opts.path ?? '/dev/kvm';
  // Loaded here so argument errors and the pure parts need no native addon.
  const { open } = await import('./open.js');
  const { hostProfile } = await import('./probe.js');
  const kernelKvm = open({ backend: 'kvm', path });
  const conversion = kernelKvm.profile as string | null;
  const kernel = await runOn(kernelKvm, selected);
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
    results[p] = await runOn(sim, selected);
    profiles[p] = { available: true };
  }
  const rows = computeMatrix(kernel, results);
  return {
    host: { kernel: `${os.type()} ${os.release()}`, path, conversion, profile: hostProfile() },
    groups: groups.length ? groups : [...GROUPS],
    profiles,
    notes: [STATES_MIRROR],
    rows,
    verdict: computeVerdict(rows, [...PROFILES]),
    ms: Math.round(performance.now() - t0),
  };
}

/**
 * The report as `check --json` prints it: each kernel outcome once (in its row), a profile's cell
 * as its mark, a difference as the paths where the outcomes part with both values there, and
 * each not-supported reason once with its cases.
 */
export function jsonReport(r: CheckReport): Json {
  const strip = (k: CaseResult) => {
    const { id: _id, group: _g, title: _t, ...rest } = k;
    if (rest.status === 'n/s') delete rest.reason;
    return rest as unknown as Json;
  };
  const notSupported: { reason: string; cases: string[] }[] = [];
  for (const { id, reason } of r.verdict.notSupported) {
    const entry = notSupported.find((x) => x.reason === reason);
    if (entry) entry.cases.push(id);
    else notSupported.push({ reason, cases: [id] });
  }
  const differences = Object.fromEntries(
    Object.entries(r.verdict.differences).map(([p, ds]) => [
      p,
      ds.map((d) => {
        const bothRan = d.kernel.status === 'ran' && d.profile.status === 'ran';
        const drop = ({ outcome: _o, ...rest }: typeof d.kernel) => rest;
        return bothRan
          ? { id: d.id, group: d.group, details: d.details }
          : { id: d.id, group: d.group, kernel: drop(d.kernel), profile: d.profile };
      }),
    ]),
  );
  return JSON.parse(
    JSON.stringify({
      host: r.host,
      groups: r.groups,
      profiles: r.profiles,
      notes: r.notes,
      rows: r.rows.map((row) => ({
        id: row.id,
        group: row.group,
        title: row.title,
        kernel: strip(row.kernel),
        cells: Object.fromEntries(Object.entries(row.cells).map(([p, c]) => [p, c.mark])),
      })),
      verdict: { ...r.verdict, notSupported, differences },
      ms: r.ms,
    }),
  ) as Json;
}

export async function runCheck(args: string[] | Record<string, unknown>): Promise<number> {
  let parsed: CheckArgs | string;
  try {
    parsed = Array.isArray(args) ? parseCheckArgs(args) : checkArgsFrom(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    parsed = e.message;
  }
  if (typeof parsed === 'string') {
    console.error(`kvm-gmem check: ${parsed}`);
    return 2;
  }
  let report: CheckReport;
  try {
    report = await check({ only: parsed.only, cases: parsed.cases, path: parsed.path });
  } catch (e) {
    const err = e as { code?: string };
    const reason = `no usable ${parsed.path}: ${errorLine(e)}`;
    if (parsed.json) console.log(JSON.stringify({ error: { code: err.code ?? 'UNKNOWN', reason } }, null, 2));
    else
      console.error(
        `kvm-gmem check: ${reason}\n(check compares the kernel with the simulator, so it needs the device; see kvm-gmem probe)`,
      );
    return 2;
  }
  if (parsed.json) {
    console.log(JSON.stringify(jsonReport(report), null, 2));
  } else {
    const style = styler(process.stdout);
    console.log(
      `kernel: ${report.host.kernel} (${report.host.path}); conversion mechanism: ${report.host.conversion ?? 'none'}; expected profile: ${report.host.profile ?? 'none verified'}`,
    );
    for (const [p, s] of Object.entries(report.profiles))
      if (!s.available) console.log(style('yellow', `profile '${p}' could not be run: ${s.error}`));
    for (const n of report.notes) console.log(`note: ${n}`);
    console.log('');
    console.log(formatReport(report.rows, report.verdict, [...PROFILES], 'kernel', style));
    console.log(`\n(${report.rows.length} cases on the kernel and ${PROFILES.length} profiles in ${report.ms} ms)`);
  }
  return exitStatus(report.verdict);
}
