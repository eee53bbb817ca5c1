// docs/api.md names everything the package exports (issue 17): each runtime export of the two
// entry points, and each member of the public interfaces in lib/types.ts, appears in it as `code`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as main from '../../lib/index.js';
import * as conformance from '../../lib/conformance/index.js';

const root = path.resolve(__dirname, '../..');
const doc = readFileSync(path.join(root, 'docs', 'api.md'), 'utf8');
/** Every identifier that appears inside a `code span` or a code block of api.md. */
const documented = new Set<string>();
for (const m of doc.matchAll(/```[\s\S]*?```|`[^`]+`/g))
  for (const id of m[0].matchAll(/[A-Za-z_$][\w$]*/g)) documented.add(id[0]);

/** Members of the exported interfaces in lib/types.ts, as 'Interface.member'. */
function interfaceMembers(names: readonly string[]): string[] {
  const file = path.join(root, 'lib', 'types.ts');
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  src.forEachChild((n) => {
    if (!ts.isInterfaceDeclaration(n) || !names.includes(n.name.text)) return;
    for (const m of n.members) if (m.name && ts.isIdentifier(m.name)) out.push(`${n.name.text}.${m.name.text}`);
  });
  return out;
}

const PUBLIC = [
  'OpenOptions',
  'Kvm',
  'Vm',
  'GuestMemfd',
  'Mapping',
  'Hold',
  'Vcpu',
  'GuestAccess',
  'CreateGuestMemfdOptions',
  'MemoryRegion',
  'MapOptions',
  'FileStat',
  'Extent',
  'ConversionResult',
  'GuestMemfdFlags',
];

describe('docs/api.md', () => {
  it("names every runtime export of 'kvm-gmem' and 'kvm-gmem/conformance'", () => {
    const missing = [...Object.keys(main), ...Object.keys(conformance)].filter((k) => !documented.has(k));
    expect(missing).toEqual([]);
  });

  it('names every member of the public interfaces', () => {
    const members = interfaceMembers(PUBLIC);
    expect(members.length).toBeGreaterThan(80);
    expect(members.filter((m) => !documented.has(m.split('.')[1]!))).toEqual([]);
  });
});
