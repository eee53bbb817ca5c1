// The matrix and the verdict of `kvm-gmem check`, as pure functions of case results (no I/O), so
// they can be tested with fabricated results.
import { GROUPS, canonical, sameOutcome, type CaseResult, type Group, type Json } from './case.js';

/** match: same outcome; differ: the profile answers otherwise; n/s: the kernel lacks what the case needs (not counted); error: the case crashed or hung on the kernel. */
export type Mark = 'match' | 'differ' | 'n/s' | 'error';

export interface Cell {
  mark: Mark;
  /** The profile's result (absent when the profile could not be opened). */
  result?: CaseResult;
}

export interface Row {
  id: string;
  group: Group;
  title: string;
  kernel: CaseResult;
  cells: Record<string, Cell>;
}

export interface Difference {
  id: string;
  group: Group;
  title: string;
  kernel: Shown;
  profile: Shown;
  /** Where the two outcomes part, as paths into them (at most a few). */
  where: string[];
  /** The two values at each of those paths. */
  details: PathDiff[];
}

/** A result as a reader needs it: the outcome when the case ran, else its status and why. */
export type Shown = { status: string; outcome?: Json; reason?: string };

export interface Verdict {
  /** The profiles the kernel matches in every case it could run, in column order. */
  matches: string[];
  /** The first of those, or null when it matches none. */
  verdict: string | null;
  /** When nothing matches: the profile with the fewest differences. */
  closest: string | null;
  compared: number;
  notSupported: { id: string; reason: string }[];
  kernelErrors: { id: string; status: string; reason: string }[];
  differences: Record<string, Difference[]>;
}

/** Profile results by profile name; a profile that failed to open maps to null. */
export type ProfileResults = Record<string, CaseResult[] | null>;

function cellFor(k: CaseResult, p: CaseResult | undefined): Cell {
  if (k.status === 'n/s') return { mark: 'n/s', result: p };
  if (k.status !== 'ran') return { mark: 'error', result: p };
  if (!p || p.status !== 'ran') return { mark: 'differ', result: p };
  return { mark: sameOutcome(k.outcome, p.outcome) ? 'match' : 'differ', result: p };
}

export function computeMatrix(kernel: CaseResult[], profiles: ProfileResults): Row[] {
  const byId = Object.fromEntries(
    Object.entries(profiles).map(([name, rs]) => [name, new Map((rs ?? []).map((r) => [r.id, r]))]),
  );
  const order = (g: Group) => GROUPS.indexOf(g);
  return kernel
    .map((k, i) => ({ k, i }))
    .sort((a, b) => order(a.k.group) - order(b.k.group) || a.i - b.i)
    .map(({ k }) => ({
      id: k.id,
      group: k.group,
      title: k.title,
      kernel: k,
      cells: Object.fromEntries(Object.keys(profiles).map((name) => [name, cellFor(k, byId[name]!.get(k.id))])),
    }));
}

export function shown(r: CaseResult | undefined): Shown {
  if (!r) return { status: 'missing', reason: 'the profile could not be run' };
  if (r.status === 'ran') return { status: 'ran', outcome: r.outcome ?? null };
  return { status: r.status, reason: r.reason ?? '' };
}

export interface PathDiff {
  path: string;
  kernel: Json | undefined;
  profile: Json | undefined;
}

/**
 * A key as a path step: `.name` for a plain name, else `[...]`. Cases key some outcomes by an
 * outcome (`{"error":{...}}`): such a key shows as its values, `[error: KvmError EINVAL -22 ...]`.
 */
export function pathKey(k: string): string {
  if (/^[A-Za-z_$][\w$-]*$/.test(k)) return `.${k}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(k);
  } catch {
    return `[${JSON.stringify(k)}]`;
  }
  if (parsed === null || typeof parsed !== 'object') return `[${k}]`;
  const leaves = (v: unknown): string[] =>
    v !== null && typeof v === 'object'
      ? Object.keys(v)
          .sort()
          .flatMap((x) => leaves((v as Record<string, unknown>)[x]))
      : [String(v)];
  const top = Array.isArray(parsed) ? [] : Object.keys(parsed).sort();
  const text =
    top.length === 1
      ? `${top[0]}: ${leaves((parsed as Record<string, unknown>)[top[0]!]).join(' ')}`
      : leaves(parsed).join(' ');
  return `[${clip(text, 60)}]`;
}

/** Where a and b differ, with both values there; descends while the shapes agree. */
export function diffs(
  a: Json | undefined,
  b: Json | undefined,
  path = '',
  out: PathDiff[] = [],
  limit = 4,
): PathDiff[] {
  if (out.length >= limit || canonical(a) === canonical(b)) return out;
  const isObj = (v: unknown): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diffs(x, b[i], `${path}[${i}]`, out, limit));
  } else if (isObj(a) && isObj(b) && canonical(Object.keys(a).sort()) === canonical(Object.keys(b).sort())) {
    for (const k of Object.keys(a).sort()) diffs(a[k], b[k], `${path}${pathKey(k)}`, out, limit);
  } else {
    out.push({ path: path || '.', kernel: a, profile: b });
  }
  return out;
}

/** Paths where a and b differ, e.g. ".share.error.code"; the whole value when the shapes differ. */
export function differingPaths(a: Json | undefined, b: Json | undefined): string[] {
  return diffs(a, b).map((d) => d.path);
}

export function computeVerdict(rows: Row[], profileNames: string[]): Verdict {
  const differences: Record<string, Difference[]> = {};
  for (const name of profileNames) {
    differences[name] = rows
      .filter((r) => r.cells[name] && (r.cells[name]!.mark === 'differ' || r.cells[name]!.mark === 'error'))
      .map((r) => {
        const k = shown(r.kernel);
        const p = shown(r.cells[name]!.result);
        const details =
          k.status === 'ran' && p.status === 'ran'
            ? diffs(k.outcome, p.outcome)
            : [{ path: 'status', kernel: k.status, profile: p.status }];
        return {
          id: r.id,
          group: r.group,
          title: r.title,
          kernel: k,
          profile: p,
          where: details.map((d) => d.path),
          details,
        };
      });
  }
  const compared = rows.filter((r) => r.kernel.status !== 'n/s').length;
  const matches = profileNames.filter((n) => compared > 0 && differences[n]!.length === 0);
  let closest: string | null = null;
  if (matches.length === 0 && profileNames.length > 0) {
    closest = [...profileNames].sort((a, b) => differences[a]!.length - differences[b]!.length)[0]!;
  }
  return {
    matches,
    verdict: matches[0] ?? null,
    closest,
    compared,
    notSupported: rows
      .filter((r) => r.kernel.status === 'n/s')
      .map((r) => ({ id: r.id, reason: r.kernel.reason ?? '' })),
    kernelErrors: rows
      .filter((r) => r.kernel.status === 'crashed' || r.kernel.status === 'timeout')
      .map((r) => ({ id: r.id, status: r.kernel.status, reason: r.kernel.reason ?? '' })),
    differences,
  };
}

const SYMBOL: Record<Mark, string> = { match: '✓', differ: '✗', 'n/s': 'n/s', error: '!' };
const COLOUR: Record<Mark, string | string[]> = { match: 'green', differ: 'red', 'n/s': 'dim', error: ['red', 'bold'] };

/** util.styleText's shape; the default leaves text plain. */
export type Style = (format: string | string[], text: string) => string;
const plain: Style = (_f, text) => text;

function clip(text: string, max = 150): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function oneLine(s: Shown): string {
  return clip(s.status === 'ran' ? canonical(s.outcome ?? null) : `${s.status}: ${s.reason ?? ''}`);
}

const NS_PREFIX = 'not supported here: ';

/** The matrix as text: one row per case under its group, one column per profile, then the verdict. */
export function formatReport(
  rows: Row[],
  verdict: Verdict,
  profileNames: string[],
  kernelLabel = 'kernel',
  style: Style = plain,
): string {
  const lines: string[] = [];
  // Each reason for n/s once, as a footnote: rows show its number.
  const reasons: string[] = [];
  const note = (reason: string) => {
    const text = reason.startsWith(NS_PREFIX) ? reason.slice(NS_PREFIX.length) : reason;
    if (!reasons.includes(text)) reasons.push(text);
    return `[${reasons.indexOf(text) + 1}]`;
  };
  const idW = Math.max(4, ...rows.map((r) => r.id.length));
  const colW = profileNames.map((n) => Math.max(n.length, 3));
  lines.push(style('bold', `${'case'.padEnd(idW)}  ${profileNames.map((n, i) => n.padEnd(colW[i]!)).join('  ')}`));
  let group: string | undefined;
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      lines.push('', style('bold', `[${group}]`));
    }
    const cells = profileNames
      .map((n, i) => {
        const mark = r.cells[n]?.mark ?? 'differ';
        return style(COLOUR[mark], SYMBOL[mark]) + ' '.repeat(colW[i]! - SYMBOL[mark].length);
      })
      .join('  ');
    const why =
      r.kernel.status === 'n/s'
        ? `  ${note(r.kernel.reason ?? '')}`
        : r.kernel.status !== 'ran'
          ? `  ${style('red', `${kernelLabel} ${r.kernel.status}: ${r.kernel.reason}`)}`
          : '';
    lines.push(`${r.id.padEnd(idW)}  ${cells}${why}`.trimEnd());
  }
  lines.push(
    '',
    `✓ same result as the ${kernelLabel}  ✗ different  n/s not supported here (not counted)  ! crashed or hung on the ${kernelLabel}`,
  );
  if (reasons.length) {
    lines.push('', 'not supported here:');
    reasons.forEach((r, i) => lines.push(`  [${i + 1}] ${r}`));
  }
  lines.push('');
  const ns = verdict.notSupported.length;
  lines.push(`${verdict.compared} cases compared, ${ns} not supported here.`);
  if (verdict.verdict) {
    const also = verdict.matches.slice(1);
    lines.push(
      style(
        ['green', 'bold'],
        `verdict: this kernel matches '${verdict.verdict}'${also.length ? ` (and also ${also.map((m) => `'${m}'`).join(', ')})` : ''} in every case it can run.`,
      ),
    );
  } else {
    lines.push(
      style(
        ['red', 'bold'],
        `verdict: this kernel matches no profile fully${verdict.closest ? `; closest is '${verdict.closest}' (${verdict.differences[verdict.closest]!.length} differences)` : ''}.`,
      ),
    );
  }
  for (const name of profileNames) {
    const ds = verdict.differences[name]!;
    if (verdict.matches.includes(name)) continue;
    lines.push('', style('bold', `differences from '${name}' (${ds.length}):`));
    for (const d of ds) {
      lines.push(`  ${d.id} (${d.group}): ${d.title}`);
      if (d.kernel.status === 'ran' && d.profile.status === 'ran') {
        for (const x of d.details) {
          lines.push(`    at ${style('cyan', clip(x.path, 100))}:`);
          lines.push(`      ${kernelLabel}: ${clip(canonical(x.kernel))}`);
          lines.push(`      ${name}: ${clip(canonical(x.profile))}`);
        }
      } else {
        lines.push(`    ${kernelLabel}: ${oneLine(d.kernel)}`);
        lines.push(`    ${name}: ${oneLine(d.profile)}`);
      }
    }
  }
  return lines.join('\n');
}
