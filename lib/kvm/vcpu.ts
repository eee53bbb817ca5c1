// The real backend's vCPU is the core Vcpu over the native vCPU, which is its VcpuPort (KVM_RUN,
// the register ioctls and the kvm_run area live in native/vcpu.cc). The name stays for
// lib/kvm/guest.ts, whose helper makes its vCPUs with `new KvmVcpu(native, onClose)`.
export { Vcpu as KvmVcpu } from '../core/vcpu.js';
