#include "cpu_config.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "errors.h"
#include "kvm.h"
#include "uapi.h"

namespace kg {

namespace {

constexpr uint32_t kCpuidWords = sizeof(kvm_cpuid_entry2) / 4;
constexpr uint32_t kMaxEntries = 1 << 16;

struct Freer {
  void operator()(void* p) const { free(p); }
};
template <typename T>
using Buffer = std::unique_ptr<T, Freer>;

template <typename T>
Buffer<T> Alloc(Napi::Env env, size_t bytes) {
  Buffer<T> b(static_cast<T*>(calloc(1, bytes)));
  if (!b) ThrowErrno(env, ENOMEM, "calloc");
  return b;
}

// A typed array of one element type, as its data and element count (a SharedArrayBuffer's too).
template <typename T>
T* Elements(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t* count, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) ThrowTypeError(env, what);
  void* data = nullptr;
  napi_typedarray_type t;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, v, &t, count, &data, nullptr, nullptr), nullptr);
  return static_cast<T*>(data);
}

Napi::Value CopyToJs(Napi::Env env, const uint32_t* words, size_t n) {
  Napi::Uint32Array out = Napi::Uint32Array::New(env, n);
  if (n > 0) memcpy(out.Data(), words, n * 4);
  return out;
}

}  // namespace

Napi::Value EnableCap(const Napi::CallbackInfo& info, int fd) {
  Napi::Env env = info.Env();
  kvm_enable_cap c;
  memset(&c, 0, sizeof(c));
  c.cap = GetU32(env, info[0], "cap");
  c.flags = GetU32(env, info[1], "flags");
  size_t n = 0;
  uint64_t* args =
      Elements<uint64_t>(env, info[2], napi_biguint64_array, &n, "args must be a BigUint64Array of 4 words");
  if (n != 4) ThrowTypeError(env, "args must be a BigUint64Array of 4 words");
  memcpy(c.args, args, sizeof(c.args));
  long r = IoctlRetry(fd, KVM_ENABLE_CAP, &c);
  if (r < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_ENABLE_CAP", "cap " + std::to_string(c.cap) + ", flags " + Hex(c.flags));
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value GetCpuidWords(Napi::Env env, int fd, bool supported) {
  const char* name = supported ? "KVM_GET_SUPPORTED_CPUID" : "KVM_GET_CPUID2";
  // The entry count is unknown up front: grow until the kernel stops answering E2BIG.
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    auto c = Alloc<kg_cpuid2_header>(env, sizeof(kg_cpuid2_header) + n * sizeof(kvm_cpuid_entry2));
    c->nent = n;
    if (IoctlRetry(fd, supported ? KG_GET_SUPPORTED_CPUID : KG_GET_CPUID2, c.get()) < 0) {
      if (errno == E2BIG) continue;
      ThrowErrno(env, errno, "ioctl", name);
    }
    return CopyToJs(env, reinterpret_cast<const uint32_t*>(c.get() + 1), static_cast<size_t>(c->nent) * kCpuidWords);
  }
  ThrowErrno(env, E2BIG, "ioctl", name);
}

void SetCpuidWords(Napi::Env env, int vcpuFd, Napi::Value words) {
  size_t n = 0;
  const char* what = "entries must be a Uint32Array of 10 words per entry";
  uint32_t* w = Elements<uint32_t>(env, words, napi_uint32_array, &n, what);
  if (n % kCpuidWords != 0 || n / kCpuidWords > kMaxEntries) ThrowTypeError(env, what);
  size_t count = n / kCpuidWords;
  auto c = Alloc<kg_cpuid2_header>(env, sizeof(kg_cpuid2_header) + count * sizeof(kvm_cpuid_entry2));
  c->nent = static_cast<uint32_t>(count);
  if (n > 0) memcpy(c.get() + 1, w, n * 4);
  if (IoctlRetry(vcpuFd, KG_SET_CPUID2, c.get()) < 0) ThrowErrno(env, errno, "ioctl", "KVM_SET_CPUID2");
}

Napi::Value MsrIndexList(Napi::Env env, int kvmFd) {
  kg_msr_list_header probe{0};
  // With nmsrs 0 the kernel answers E2BIG and says how many there are.
  if (IoctlRetry(kvmFd, KG_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
    ThrowErrno(env, errno, "ioctl", "KVM_GET_MSR_INDEX_LIST");
  }
  for (int attempt = 0; attempt < 4; attempt++) {
    uint32_t n = probe.nmsrs;
    if (n > kMaxEntries) ThrowErrno(env, E2BIG, "ioctl", "KVM_GET_MSR_INDEX_LIST");
    auto l = Alloc<kg_msr_list_header>(env, sizeof(kg_msr_list_header) + n * 4);
    l->nmsrs = n;
    if (IoctlRetry(kvmFd, KG_GET_MSR_INDEX_LIST, l.get()) < 0) {
      if (errno != E2BIG) ThrowErrno(env, errno, "ioctl", "KVM_GET_MSR_INDEX_LIST");
      probe.nmsrs = l->nmsrs;
      continue;
    }
    return CopyToJs(env, reinterpret_cast<const uint32_t*>(l.get() + 1), l->nmsrs);
  }
  ThrowErrno(env, E2BIG, "ioctl", "KVM_GET_MSR_INDEX_LIST");
}

namespace {

// (indices: Uint32Array, values: BigUint64Array of the same length) -> a kvm_msrs buffer.
Buffer<kg_msrs_header> MsrBuffer(const Napi::CallbackInfo& info, uint64_t** values, size_t* count) {
  Napi::Env env = info.Env();
  size_t n = 0;
  size_t nv = 0;
  uint32_t* idx = Elements<uint32_t>(env, info[0], napi_uint32_array, &n, "indices must be a Uint32Array");
  *values = Elements<uint64_t>(env, info[1], napi_biguint64_array, &nv, "values must be a BigUint64Array");
  if (nv != n) ThrowTypeError(env, "values must have one word per index");
  if (n > kMaxEntries) ThrowRangeError(env, "at most 65536 MSRs per call");
  auto m = Alloc<kg_msrs_header>(env, sizeof(kg_msrs_header) + n * sizeof(kvm_msr_entry));
  m->nmsrs = static_cast<uint32_t>(n);
  auto* e = reinterpret_cast<kvm_msr_entry*>(m.get() + 1);
  for (size_t i = 0; i < n; i++) {
    e[i].index = idx[i];
    e[i].data = (*values)[i];
  }
  *count = n;
  return m;
}

}  // namespace

namespace {

// KVM_GET_MSRS or KVM_SET_MSRS: the count the kernel processed; a get fills in the values read.
Napi::Value MsrIoctl(const Napi::CallbackInfo& info, int vcpuFd, bool set) {
  Napi::Env env = info.Env();
  uint64_t* values = nullptr;
  size_t n = 0;
  auto m = MsrBuffer(info, &values, &n);
  long r = IoctlRetry(vcpuFd, set ? KG_SET_MSRS : KG_GET_MSRS, m.get());
  if (r < 0) ThrowErrno(env, errno, "ioctl", set ? "KVM_SET_MSRS" : "KVM_GET_MSRS");
  auto* e = reinterpret_cast<const kvm_msr_entry*>(m.get() + 1);
  for (size_t i = 0; !set && i < n && i < static_cast<size_t>(r); i++) values[i] = e[i].data;
  return Napi::Number::New(env, static_cast<double>(r));
}

}  // namespace

Napi::Value GetMsrs(const Napi::CallbackInfo& info, int vcpuFd) { return MsrIoctl(info, vcpuFd, false); }
Napi::Value SetMsrs(const Napi::CallbackInfo& info, int vcpuFd) { return MsrIoctl(info, vcpuFd, true); }

Napi::Value PreFaultMemory(const Napi::CallbackInfo& info, int vcpuFd) {
  Napi::Env env = info.Env();
  kg_pre_fault_memory p;
  memset(&p, 0, sizeof(p));
  p.gpa = GetU64(env, info[0], "gpa");
  p.size = GetU64(env, info[1], "size");
  if (IoctlRetry(vcpuFd, KG_PRE_FAULT_MEMORY, &p) < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_PRE_FAULT_MEMORY", "gpa " + Hex(p.gpa) + ", size " + std::to_string(p.size));
  }
  Napi::BigUint64Array out = Napi::BigUint64Array::New(env, 2);
  out[0] = p.gpa;
  out[1] = p.size;
  return out;
}

}  // namespace kg
