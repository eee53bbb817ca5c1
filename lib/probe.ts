// probe(): what this host's kernel supports, as plain data. Never throws.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { CAPS } from './constants.js';
import type { Kvm } from './core/kvm.js';
import { openKvm } from './kvm/kvm.js';
import type { ConversionMechanism, ProbeReport, Profile } from './types.js';
import { SERIES_CAPS } from './series-caps.js';

/**
 * The simulator profile whose rules were verified on a kernel like this one, or null when none
 * was: PVM's /dev/kvm (kvm_pvm loaded) is 'linux-6.18-pvm'; a mainline 6.18.x or 7.3.x kernel is
 * 'linux-6.18' or 'linux-7.3' (measured in tools/rig on Debian's builds). Pure, for tests.
 */
export function profileFor(host: { pvm: boolean; release: string }): Profile | null {
  const m = /^(\d+)\.(\d+)/.exec(host.release);
  const version = m ? `${m[1]}.${m[2]}` : '';
  if (host.pvm) return version === '6.18' ? 'linux-6.18-pvm' : null;
  if (version === '6.18') return 'linux-6.18';
  if (version === '7.3') return 'linux-7.3';
  return null;
}

/** profileFor this host: PVM is found by its module, /sys/module/kvm_pvm. */
export function hostProfile(): Profile | null {
  return profileFor({ pvm: existsSync('/sys/module/kvm_pvm'), release: os.release() });
}

export function probe(path = '/dev/kvm'): ProbeReport {
  const report: ProbeReport = {
    kvm: { available: false, path },
    apiVersion: null,
    kernel: `${os.type()} ${os.release()}`,
    capabilities: {},
    vmTypes: [],
    guestMemfdFlags: null,
    conversion: { mechanism: null, inPlace: false },
    profile: hostProfile(),
  };
  let kvm: Kvm | undefined;
  try {
    kvm = openKvm(path);
    report.kvm.available = true;
    report.apiVersion = kvm.apiVersion;
    // A number a series claimed and mainline reused is reported under its mainline name (the
    // series' reading: lib/series-caps.ts; checkExtension takes either name).
    const names = Object.keys(CAPS).map((name) => SERIES_CAPS.find((c) => c.series === name)?.mainline ?? name);
    for (const name of names) {
      try {
        report.capabilities[name] = kvm.checkExtension(name);
      } catch {
        report.capabilities[name] = -1;
      }
    }
    report.vmTypes = kvm.vmTypes();
    try {
      const vm = kvm.createVm();
      try {
        const f = vm.guestMemfdFlags();
        report.guestMemfdFlags = { ...f, raw: vm.checkExtension('GUEST_MEMFD_FLAGS') };
      } finally {
        vm.close();
      }
    } catch {
      report.guestMemfdFlags = null;
    }
    const mech = kvm.profile as ConversionMechanism; // the kvm backend: never a profile name
    report.conversion = { mechanism: mech, inPlace: mech === 'attributes2' || mech === 'gmem-convert' };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    report.kvm.error = { code: err.code ?? 'UNKNOWN', message: err.message ?? String(e) };
  } finally {
    try {
      kvm?.close();
    } catch {
      // closing never throws; nothing to report
    }
  }
  return report;
}
