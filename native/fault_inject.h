// Test-only fault injection: forces the next syscall of a kind to fail with a chosen errno, so
// tests can show every failure path leaves objects consistent. Compiled in only with
// KVM_GMEM_TEST_HOOKS (the sanitizer/test build); in the normal build the check is a constant.
#pragma once

#include <napi.h>

namespace kg {

enum class Sys { Ioctl = 0, Mmap, Fallocate, Open, Count };

#ifdef KVM_GMEM_TEST_HOOKS
// True (with errno set) when a failure was armed for this call.
bool InjectFault(Sys kind, unsigned long request = 0);
void InitFaultInjection(Napi::Env env, Napi::Object exports);
#else
inline bool InjectFault(Sys, unsigned long = 0) { return false; }
inline void InitFaultInjection(Napi::Env, Napi::Object) {}
#endif

}  // namespace kg
