// Where a prebuilt addon for this machine lives: prebuilds/<platform>-<arch>/kvm_gmem.<libc>.node.
// Shared by tools/prebuild.mjs (which writes it), tools/install.mjs and lib/native.ts (which load it).
import path from 'node:path';

/** 'glibc' or 'musl' on Linux (the C library the addon links against), else ''. */
export function libc() {
  if (process.platform !== 'linux') return '';
  const report = /** @type {{ header?: { glibcVersionRuntime?: string } } | undefined} */ (
    process.report?.getReport?.()
  );
  const header = report?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

export function prebuildPath(root) {
  const tag = libc();
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `kvm_gmem${tag ? `.${tag}` : ''}.node`);
}
