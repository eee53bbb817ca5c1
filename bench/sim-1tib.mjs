// Share + unshare of a whole 4 KiB vs a whole 1 TiB guest_memfd in the simulator, in one run:
// the extent map makes the cost follow the number of runs touched, not the range's length.
// Run after `npx tsc -p tsconfig.json`: node bench/sim-1tib.mjs  (KVM_GMEM_DIST names another build of lib/)
import { performance } from 'node:perf_hooks';

const dist = process.env.KVM_GMEM_DIST ?? new URL('../dist/index.js', import.meta.url).href;
const { open } = await import(dist);

const PAGE = 4096;
const TIB = 2 ** 40;
const ROUNDS = Number(process.env.ROUNDS ?? 20000);

function measure(profile, size) {
  const kvm = open({ backend: 'sim', profile });
  const g = kvm.createVm().createGuestMemfd({ size, mmap: true });
  for (let i = 0; i < 2000; i++) {
    g.share(0, size);
    g.unshare(0, size);
  }
  const t0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) {
    g.share(0, size);
    g.unshare(0, size);
  }
  const us = ((performance.now() - t0) * 1000) / ROUNDS;
  const ok = JSON.stringify(g.states()) === JSON.stringify([{ offset: 0, length: size, state: 'private' }]);
  kvm.close();
  return { us, ok };
}

console.log(`node ${process.version}, ${ROUNDS} rounds of share(0, size) + unshare(0, size)`);
for (const profile of ['rfc-v5', 'inplace-v8']) {
  const small = measure(profile, PAGE);
  const big = measure(profile, TIB);
  console.log(
    `${profile.padEnd(10)}  4 KiB: ${small.us.toFixed(2)} us   1 TiB: ${big.us.toFixed(2)} us   ratio ${(big.us / small.us).toFixed(2)}` +
      `   states correct: ${small.ok && big.ok}`,
  );
}
