// The vCPU's configuration ioctls, shared by the objects that issue them: KVM_ENABLE_CAP (VM and
// vCPU fds), CPUID (the supported set on /dev/kvm, a vCPU's own), MSRs (the index list on
// /dev/kvm, a vCPU's values) and KVM_PRE_FAULT_MEMORY. Each is one ioctl (CPUID and the MSR list
// retried with a larger buffer on E2BIG), errno unchanged.
#pragma once

#include <napi.h>

namespace kg {

// enableCap(cap, flags, args: BigUint64Array(4)) on a VM or vCPU fd.
Napi::Value EnableCap(const Napi::CallbackInfo& info, int fd);
// KVM_GET_SUPPORTED_CPUID (on /dev/kvm) or KVM_GET_CPUID2 (on a vCPU) as a Uint32Array of
// 10 words per entry: function, index, flags, eax, ebx, ecx, edx, and 3 words of padding.
Napi::Value GetCpuidWords(Napi::Env env, int fd, bool supported);
// KVM_SET_CPUID2 from such words.
void SetCpuidWords(Napi::Env env, int vcpuFd, Napi::Value words);
// KVM_GET_MSR_INDEX_LIST as a Uint32Array.
Napi::Value MsrIndexList(Napi::Env env, int kvmFd);
// KVM_GET_MSRS / KVM_SET_MSRS over (indices: Uint32Array, values: BigUint64Array); the count the
// kernel processed (it stops at the first MSR it refuses).
Napi::Value GetMsrs(const Napi::CallbackInfo& info, int vcpuFd);
Napi::Value SetMsrs(const Napi::CallbackInfo& info, int vcpuFd);
// One KVM_PRE_FAULT_MEMORY: the range still to do, as [gpa, size] (a BigUint64Array of 2).
Napi::Value PreFaultMemory(const Napi::CallbackInfo& info, int vcpuFd);

}  // namespace kg
