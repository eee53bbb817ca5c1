#include "vcpu.h"

#include "errors.h"

namespace kg {

Napi::Function InitVcpu(Napi::Env env) {
  return Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
}

Napi::Value CreateVcpuFor(Napi::Env env, VmObject*, Napi::Object, uint32_t) {
  ThrowUnsupported(env, "vcpu", "not built yet");
}

}  // namespace kg
