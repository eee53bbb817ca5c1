// Guest register state between KVM's structs and JS values: kvm_regs as 18 u64 words (lib/ names
// them), kvm_sregs as plain objects (segments, descriptor tables, control registers, EFER).
#pragma once

#include <linux/kvm.h>
#include <napi.h>

namespace kg {

constexpr size_t kRegWords = sizeof(kvm_regs) / sizeof(uint64_t);
static_assert(kRegWords == 18, "kvm_regs is 18 u64 words on x86-64");

Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& s);
// Overlays the fields present in `o` on `s` (a missing field keeps its current value).
void SregsFromJs(Napi::Env env, Napi::Object o, kvm_sregs& s);

// KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd, then KVM_SET_CPUID2 on the vCPU: what long mode
// needs (KVM refuses EFER.LME without the LM bit in the guest's CPUID). Throws KvmError.
void SetSupportedCpuid(Napi::Env env, int kvmFd, int vcpuFd);

}  // namespace kg
