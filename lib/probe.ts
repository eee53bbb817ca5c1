// probe(): what this host's kernel supports, as plain data. Never throws.
import os from 'node:os';
import { CAPS } from './constants.js';
import { KvmSystem } from './kvm/kvm.js';
import type { ProbeReport } from './types.js';

export function probe(path = '/dev/kvm'): ProbeReport {
  const report: ProbeReport = {
    kvm: { available: false, path },
    apiVersion: null,
    kernel: `${os.type()} ${os.release()}`,
    capabilities: {},
    vmTypes: [],
    guestMemfdFlags: null,
    conversion: { mechanism: null, inPlace: false },
  };
  let kvm: KvmSystem | undefined;
  try {
    kvm = new KvmSystem(path);
    report.kvm.available = true;
    report.apiVersion = kvm.apiVersion;
    for (const name of Object.keys(CAPS)) {
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
    const mech = kvm.profile;
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
