// tools/clean-dist.mjs: a module renamed or deleted in lib/ leaves no output behind in dist/.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanDist as clean } from '../../tools/clean-dist.mjs';

let dir = '';

function tree(root: string, files: string[]): void {
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), '');
  }
}

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cleanDist', () => {
  it('removes the outputs of a source that is gone, keeps the others, and drops emptied folders', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-clean-'));
    const src = path.join(dir, 'lib');
    const dist = path.join(dir, 'dist');
    tree(src, ['index.ts', 'kvm/vcpu.ts']);
    tree(dist, [
      'index.js',
      'index.js.map',
      'index.d.ts',
      'index.d.ts.map',
      'kvm/vcpu.js',
      'kvm/vcpu.d.ts',
      'kvm/guest-bytes.js',
      'kvm/guest-bytes.js.map',
      'kvm/guest-bytes.d.ts',
      'old/gone.js',
      'notes.txt',
    ]);
    expect(clean(dist, src)).toEqual([
      'kvm/guest-bytes.d.ts',
      'kvm/guest-bytes.js',
      'kvm/guest-bytes.js.map',
      'notes.txt',
      'old/gone.js',
    ]);
    expect(readdirSync(dist).sort()).toEqual(['index.d.ts', 'index.d.ts.map', 'index.js', 'index.js.map', 'kvm']);
    expect(readdirSync(path.join(dist, 'kvm')).sort()).toEqual(['vcpu.d.ts', 'vcpu.js']);
    expect(existsSync(path.join(dist, 'old'))).toBe(false);
  });

  it('does nothing when there is no dist/ yet', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-clean-'));
    expect(clean(path.join(dir, 'dist'), path.join(dir, 'lib'))).toEqual([]);
  });
});
