#include "fault_inject.h"

#ifdef KVM_GMEM_TEST_HOOKS

#include <cerrno>
#include <mutex>
#include <string>

#include "errors.h"

namespace kg {

namespace {

struct Armed {
  int err = 0;                // 0: nothing armed
  unsigned long request = 0;  // ioctl only: 0 matches any request
  int skip = 0;               // let this many matching calls through first
  uint64_t fired = 0;
};

std::mutex gLock;
Armed gArmed[static_cast<int>(Sys::Count)];

Sys KindOf(Napi::Env env, Napi::Value v) {
  std::string s = v.ToString().Utf8Value();
  if (s == "ioctl") return Sys::Ioctl;
  if (s == "mmap") return Sys::Mmap;
  if (s == "fallocate") return Sys::Fallocate;
  if (s == "open") return Sys::Open;
  ThrowRangeError(env, "kind must be ioctl, mmap, fallocate or open");
}

}  // namespace

bool InjectFault(Sys kind, unsigned long request) {
  std::lock_guard<std::mutex> g(gLock);
  Armed& a = gArmed[static_cast<int>(kind)];
  if (a.err == 0) return false;
  if (kind == Sys::Ioctl && a.request != 0 && a.request != request) return false;
  if (a.skip > 0) {
    a.skip--;
    return false;
  }
  errno = a.err;
  a.err = 0;
  a.fired++;
  return true;
}

// failNext(kind, errno, request = 0, skip = 0); fired(kind) -> count; clear()
void InitFaultInjection(Napi::Env env, Napi::Object exports) {
  Napi::Object hooks = Napi::Object::New(env);
  hooks.Set("failNext", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
              Napi::Env e = info.Env();
              Sys kind = KindOf(e, info[0]);
              Armed a;
              a.err = static_cast<int>(GetU32(e, info[1], "errno"));
              a.request = info.Length() > 2 ? static_cast<unsigned long>(GetU64(e, info[2], "request")) : 0;
              a.skip = info.Length() > 3 ? static_cast<int>(GetU32(e, info[3], "skip")) : 0;
              std::lock_guard<std::mutex> g(gLock);
              a.fired = gArmed[static_cast<int>(kind)].fired;
              gArmed[static_cast<int>(kind)] = a;
              return e.Undefined();
            }));
  hooks.Set("fired", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
              Sys kind = KindOf(info.Env(), info[0]);
              std::lock_guard<std::mutex> g(gLock);
              return Napi::Number::New(info.Env(), static_cast<double>(gArmed[static_cast<int>(kind)].fired));
            }));
  hooks.Set("clear", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
              std::lock_guard<std::mutex> g(gLock);
              for (auto& a : gArmed) a.err = 0;
              return info.Env().Undefined();
            }));
  exports.Set("testHooks", hooks);
}

}  // namespace kg

#endif
