// The package as npm ships it (issue 17): the tarball's files, and consumers of it (CommonJS,
// ESM, TypeScript .cts, the command) in a fresh project.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanDist } from '../../tools/clean-dist.mjs';

const root = path.resolve(__dirname, '../..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const addon = path.join(root, 'build', 'Release', 'kvm_gmem.node');

// Asynchronous: tsc takes tens of seconds on a loaded machine, and a worker blocked that long misses
// vitest's RPC deadline ("Timeout calling onTaskUpdate").
// The library's own compile also drops stale outputs first, as `npm run build:ts` does.
function tsc(args: string[]): Promise<{ status: number | null; out: string }> {
  if (args[1] === 'tsconfig.json') cleanDist(path.join(root, 'dist'), path.join(root, 'lib'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), ...args], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ status, out }));
  });
}

describe('the tarball (npm pack)', () => {
  let files: string[] = [];
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

  beforeAll(async () => {
    expect((await tsc(['-p', 'tsconfig.json'])).status).toBe(0);
    // --ignore-scripts: the file list as it is, without prepare rebuilding dist/ under other tests.
    const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  });

  it('ships the library, its sources for the source maps, the addon sources, LICENSE and docs/api.md', () => {
    for (const f of [
      'LICENSE',
      'README.md',
      'docs/api.md',
      'package.json',
      'binding.gyp',
      'tools/build-addon.mjs',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli.js',
      'native/addon.cc',
      'lib/index.ts',
    ]) {
      expect(files, f).toContain(f);
    }
  });

  it('leaves out the benchmarks, the fuzz and sanitizer tools, the tests and the cmake build', () => {
    const unwanted = files.filter(
      (f) =>
        /^(bench|test)\//.test(f) ||
        ['tools/fuzz.mjs', 'tools/test-asan.sh', 'CMakeLists.txt', 'vitest.config.ts'].includes(f),
    );
    expect(unwanted).toEqual([]);
  });

  it('every source map points at sources that are in the tarball', () => {
    const maps = files.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const m of maps) {
      const { sources } = JSON.parse(readFileSync(path.join(root, m), 'utf8')) as { sources: string[] };
      for (const s of sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(m), s));
        if (!files.includes(target)) missing.push(`${m} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('package.json: MIT as LICENSE says, keywords, no os or cpu limit (the simulator runs anywhere), no tinybench for consumers', () => {
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(pkg.keywords).toContain('guest_memfd');
    expect(pkg.cpu).toBeUndefined();
    expect(pkg.os).toBeUndefined();
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain('tinybench');
    expect(pkg.exports['.'].require).toBe('./dist/index.js');
  });
});

describe('a consumer project with the packed tarball', () => {
  let dir = '';
  let pkgDir = '';
  let tarball = '';
  const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, args, {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, KVM_GMEM_ADDON: '', ...env },
    });

  beforeAll(async () => {
    expect((await tsc(['-p', 'tsconfig.json'])).status).toBe(0);
    dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-consumer-'));
    const tgz = execFileSync(npm, ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], {
      cwd: root,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!;
    tarball = path.join(dir, tgz);
    // npm install --ignore-scripts of the tarball, without the registry: unpack it where npm would.
    pkgDir = path.join(dir, 'node_modules', 'kvm-gmem');
    mkdirSync(pkgDir, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', pkgDir, '--strip-components=1']);
    // Without a prebuilt addon (a checkout that ran `npm run prebuilds` packs one): the source-build case.
    rmSync(path.join(pkgDir, 'prebuilds'), { recursive: true, force: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without the install script (--ignore-scripts) the simulator runs, and the real backend says to run `npm rebuild kvm-gmem`', () => {
    // No build/ and no prebuilds/ in this copy: the addon cannot load, as after --ignore-scripts or on macOS.
    expect(existsSync(path.join(pkgDir, 'build'))).toBe(false);
    // Run from the consumer's directory: from the repository, 'kvm-gmem' would be the checkout itself.
    copyFileSync(path.join(root, 'test', 'fixtures', 'no-addon-scenario.mjs'), path.join(dir, 'scenario.mjs'));
    const r = node(['scenario.mjs', 'kvm-gmem']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      privateRead: 'SIGBUS',
      text: 'hello',
      held: { pending: [{ offset: 0, length: 4096, state: 'pending' }] },
    });
    expect(out.kvm.unsupported).toBe(true);
    expect(out.kvm.message).toContain('npm rebuild kvm-gmem');
    expect(out.kvm.message).not.toContain('npm run build:native');
    // require() too, and open() with the defaults says why it gave the simulator or throws: never silently.
    const c = node([
      '-e',
      "const k = require('kvm-gmem'); try { const s = k.open(); console.log(s.backend, s.fallbackReason); } catch (e) { console.log(e.name, e.feature); }",
    ]);
    expect(c.stdout.trim()).toBe(
      existsSync('/dev/kvm')
        ? 'UnsupportedError native addon'
        : "sim the native addon is not loaded and there is no /dev/kvm (the simulator's 'rfc-v5' profile instead)",
    );
  });

  it("'kvm-gmem/conformance' exports the case API: a consumer's own case runs next to the shipped ones (ESM and CJS)", () => {
    writeFileSync(
      path.join(dir, 'own-case.mjs'),
      `import { open } from 'kvm-gmem';
import { cases, runCases, attempt, GROUPS } from 'kvm-gmem/conformance';
const mine = { id: 'create.my-odd-size', group: 'creation and flags', title: 'an odd size is EINVAL',
  run: (kvm) => attempt(() => kvm.createVm().createGuestMemfd({ size: 1000 })) };
const kvm = open({ backend: 'sim', profile: 'linux-6.18' });
const [r] = await runCases(kvm, [mine]);
console.log(JSON.stringify({ groups: GROUPS.length, shipped: cases.length > 50, status: r.status, outcome: r.outcome }));
`,
    );
    const r = node(['own-case.mjs']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      groups: 7,
      shipped: true,
      status: 'ran',
      outcome: {
        error: { class: 'KvmError', code: 'EINVAL', errno: -22, syscall: 'ioctl', ioctl: 'KVM_CREATE_GUEST_MEMFD' },
      },
    });
    const c = node([
      '-e',
      "const c = require('kvm-gmem/conformance'); console.log(typeof c.runCases, c.cases === require('kvm-gmem/conformance').cases)",
    ]);
    expect(c.stdout.trim()).toBe('function true');
  });

  /** A fresh unpacked copy of the package, as `npm install --ignore-scripts` leaves it. */
  function unpack(name: string): string {
    const at = path.join(dir, name, 'node_modules', 'kvm-gmem');
    mkdirSync(at, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', at, '--strip-components=1']);
    // A tarball packed where prebuilds/ exists carries one: start each case without it.
    rmSync(path.join(at, 'prebuilds'), { recursive: true, force: true });
    return at;
  }
  // The install script as npm runs it there, on a machine with no compiler, make or python3 on PATH.
  const install = (at: string) =>
    spawnSync(process.execPath, [path.join(at, 'tools', 'install.mjs')], {
      cwd: at,
      encoding: 'utf8',
      env: { ...process.env, PATH: '/nonexistent', KVM_GMEM_ADDON: '' },
    });

  it.skipIf(!existsSync(addon))(
    'with no compiler the install uses the prebuilt addon, and the package then loads and runs',
    () => {
      const at = unpack('prebuilt');
      const r = spawnSync(
        process.execPath,
        [path.join(root, 'tools', 'prebuild.mjs'), '--from', addon, '--out', path.join(at, 'prebuilds')],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(existsSync(path.join(at, 'prebuilds', 'linux-x64', 'kvm_gmem.glibc.node'))).toBe(true);
      const i = install(at);
      expect([i.status, i.stderr]).toEqual([0, '']);
      expect(existsSync(path.join(at, 'build'))).toBe(false);
      const use = spawnSync(
        process.execPath,
        [
          '-e',
          "const { open } = require('kvm-gmem'); const k = open({ backend: 'sim' }); console.log(k.createVm().createGuestMemfd({ size: 4096 }).size);",
        ],
        {
          cwd: path.dirname(path.dirname(at)),
          encoding: 'utf8',
          env: { ...process.env, KVM_GMEM_ADDON: '' },
        },
      );
      expect(use.stdout.trim(), use.stderr).toBe('4096');
    },
  );

  it('with no prebuilt addon and no compiler the install succeeds with one line naming what is missing for the real backend', () => {
    const at = unpack('nothing');
    const i = install(at);
    expect(i.status).toBe(0);
    expect(i.stderr.trim().split('\n')).toHaveLength(1);
    expect(i.stderr).toContain('missing make, a C++ compiler');
    expect(i.stderr).toContain('npm rebuild kvm-gmem');
    expect(i.stderr).toContain('only the simulator works');
  });

  it('a prebuilt addon that does not load here is reported and the install falls back to building from source', () => {
    const at = unpack('broken');
    mkdirSync(path.join(at, 'prebuilds', 'linux-x64'), { recursive: true });
    writeFileSync(path.join(at, 'prebuilds', 'linux-x64', 'kvm_gmem.glibc.node'), 'not an ELF file');
    const i = install(at);
    expect(i.status).toBe(0);
    expect(i.stderr).toContain('the prebuilt addon does not load here');
    expect(i.stderr).toContain('missing make');
  });

  it('on macOS (or any platform but Linux x64) the install builds nothing and says the simulator works', () => {
    const at = unpack('darwin');
    for (const [platform, arch] of [
      ['darwin', 'arm64'],
      ['linux', 'arm64'],
    ]) {
      const fake = `data:text/javascript,Object.defineProperty(process,'platform',{value:'${platform}'});Object.defineProperty(process,'arch',{value:'${arch}'})`;
      const i = spawnSync(process.execPath, ['--import', fake, path.join(at, 'tools', 'install.mjs')], {
        cwd: at,
        encoding: 'utf8',
        env: { ...process.env, KVM_GMEM_ADDON: '' },
      });
      expect([i.status, i.stderr.trim()]).toEqual([
        0,
        `kvm-gmem: no native addon for ${platform}-${arch} (the real backend is Linux x64 only); the simulator works here.`,
      ]);
      expect(existsSync(path.join(at, 'build'))).toBe(false);
    }
  });

  it('in a checkout of the repository missing build tools still fail the install (its tests need the addon)', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'tools', 'build-addon.mjs')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, PATH: '/nonexistent' },
    });
    expect(r.status).toBe(3);
    const co = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-checkout-'));
    try {
      mkdirSync(path.join(co, 'tools'));
      for (const f of ['install.mjs', 'build-addon.mjs', 'addon-target.mjs'])
        copyFileSync(path.join(root, 'tools', f), path.join(co, 'tools', f));
      const i = spawnSync(process.execPath, [path.join(co, 'tools', 'install.mjs')], {
        cwd: co,
        encoding: 'utf8',
        env: { ...process.env, PATH: '/nonexistent' },
      });
      expect(i.status).toBe(3);
      expect(i.stderr).toContain('missing make');
    } finally {
      rmSync(co, { recursive: true, force: true });
    }
  });

  describe.skipIf(!existsSync(addon))('with the addon built (as the install script does)', () => {
    beforeAll(() => {
      mkdirSync(path.join(pkgDir, 'build', 'Release'), { recursive: true });
      copyFileSync(addon, path.join(pkgDir, 'build', 'Release', 'kvm_gmem.node'));
    });

    it("require('kvm-gmem') works in a .cjs file: the same classes as the ESM entry", () => {
      writeFileSync(
        path.join(dir, 'consumer.cjs'),
        `const { open, KvmError, ConversionBusyError } = require('kvm-gmem');
const kvm = open({ backend: 'sim', profile: 'inplace-v8' });
const gm = kvm.createVm().createGuestMemfd({ size: 4096, mmap: true, initShared: true });
console.log(JSON.stringify({ backend: kvm.backend, states: gm.states(), busyIsKvm: ConversionBusyError.prototype instanceof KvmError }));
kvm.close();
`,
      );
      const r = node(['consumer.cjs']);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({
        backend: 'sim',
        states: [{ offset: 0, length: 4096, state: 'shared' }],
        busyIsKvm: true,
      });
    });

    it('import works in a .mjs file', () => {
      writeFileSync(
        path.join(dir, 'consumer.mjs'),
        "import { open } from 'kvm-gmem';\nconst k = open({ backend: 'sim' });\nconsole.log(k.profile);\nk.close();\n",
      );
      const r = node(['consumer.mjs']);
      expect(r.stdout.trim()).toBe('linux-6.18');
    });

    it('a .cts consumer type-checks with tsc against the shipped declarations', async () => {
      writeFileSync(
        path.join(dir, 'consumer.cts'),
        `import kg = require('kvm-gmem');
const kvm: kg.Kvm = kg.open({ backend: 'sim' });
const size: number = kvm.createVm().createGuestMemfd({ size: 4096 }).size;
const reason: string | null = kvm.fallbackReason;
import conf = require('kvm-gmem/conformance');
const mine: conf.Case = { id: 'x.mine', group: 'fallocate', title: 'mine', run: async () => null };
const results: Promise<conf.CaseResult[]> = conf.runCases(kvm, [mine, ...conf.cases]);
export = { size, reason, results };
`,
      );
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2022',
            strict: true,
            noEmit: true,
            types: ['node'],
            typeRoots: [path.join(root, 'node_modules/@types')],
          },
          files: ['consumer.cts'],
        }),
      );
      const ok = await tsc(['-p', path.join(dir, 'tsconfig.json')]);
      expect(ok.status, ok.out).toBe(0);
      // And it does check: a wrong option is a type error.
      writeFileSync(
        path.join(dir, 'consumer.cts'),
        "import kg = require('kvm-gmem');\nkg.open({ backend: 'bogus' });\n",
      );
      expect((await tsc(['-p', path.join(dir, 'tsconfig.json')])).status).not.toBe(0);
    });

    it('the command: --version works, and bench says it is a development command (exit 2)', () => {
      const cli = path.join(pkgDir, 'dist', 'cli.js');
      expect(node([cli, '--version']).stdout.trim()).toBe(
        JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version,
      );
      const b = node([cli, 'bench']);
      expect(b.status).toBe(2);
      expect(b.stderr).toContain('development command');
    });
  });
});

describe('binding.gyp', () => {
  const nodeGyp = [
    process.env.npm_config_node_gyp,
    path.resolve(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ].find((p): p is string => !!p && existsSync(p));

  it.skipIf(!nodeGyp)('-Werror only when KVM_GMEM_WERROR=1 (the repository CI), never in a consumer build', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kvm-gmem-gyp-'));
    try {
      copyFileSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
      const flags = (env: NodeJS.ProcessEnv) => {
        const r = spawnSync(
          process.execPath,
          [nodeGyp!, 'configure', `--nodedir=${path.resolve(process.execPath, '../..')}`],
          {
            cwd: dir,
            encoding: 'utf8',
            // node-addon-api's include dir is looked up from here.
            env: { ...process.env, NODE_PATH: path.join(root, 'node_modules'), ...env },
          },
        );
        expect(r.status, r.stderr).toBe(0);
        return readFileSync(path.join(dir, 'build', 'kvm_gmem.target.mk'), 'utf8');
      };
      expect(flags({ KVM_GMEM_WERROR: undefined })).not.toContain('-Werror');
      expect(flags({ KVM_GMEM_WERROR: '1' })).toContain('-Werror');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
