#!/usr/bin/env node
// The VM type 1 (KVM_X86_SW_PROTECTED_VM) cases, held to what the kernel must answer
// (lib/conformance/cases-private.ts and cases-private-guest.ts). Run inside the rig's custom kernel:
//   npm run rig -- custom node tools/rig/type1.mjs
// Exit 0 when every case ran and matched; 1 on a difference or a crash; 2 when type 1 is missing
// here; 3 when a case hung and nothing differed (in 4 boots of 36 every KVM_RUN spun in the
// kernel until a signal while the kernel had no TSC rate; the rig now passes it, docs/profiles.md).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const { open } = await import(pathToFileURL(path.join(dist, 'index.js')).href);
const { canonical, privateCases, privateExpectations, runCases } = await import(
  pathToFileURL(path.join(dist, 'conformance', 'index.js')).href
);
// Guests driven through lib/toolkit's ConversionLoop (KVM_HC_MAP_GPA_RANGE, KVM_EXIT_MEMORY_FAULT).
const { privateGuestCases, privateGuestExpectations } = await import(
  pathToFileURL(path.join(dist, 'conformance', 'cases-private-guest.js')).href
);
// KVM_GMEM_TYPE1_ONLY=<id,id,...>: only those cases (a short boot while iterating on one).
const only = process.env.KVM_GMEM_TYPE1_ONLY?.split(',').filter(Boolean);
const all = [...privateCases, ...privateGuestCases].filter((c) => !only || only.includes(c.id));

const kvm = open({ backend: 'kvm' });
let status = 0;
try {
  const want = { ...privateExpectations(), ...privateGuestExpectations() };
  for (const r of await runCases(kvm, all)) {
    if (r.status !== 'ran') {
      console.log(`type1 ${r.id}: ${r.status}: ${r.reason}`);
      const code = r.status === 'n/s' ? 2 : r.status === 'timeout' ? 3 : 1;
      status = status === 1 || code === 1 ? 1 : Math.max(status, code);
      continue;
    }
    const ok = canonical(r.outcome) === canonical(want[r.id]);
    console.log(`type1 ${r.id}: ${ok ? 'as expected' : 'DIFFERS'} (${r.ms} ms)`);
    if (!ok) {
      console.log(`  kernel:   ${canonical(r.outcome)}`);
      console.log(`  expected: ${canonical(want[r.id])}`);
      status = 1;
    }
  }
  if (status === 3) console.log('type1: a case hung (no result), nothing differed');
} finally {
  kvm.close();
}
process.exit(status);
