// vCPUs: KVM_RUN, registers and decoded exits.
#pragma once

#include <napi.h>

#include "owned.h"

namespace kg {

class VmObject;

Napi::Function InitVcpu(Napi::Env env);
Napi::Value CreateVcpuFor(Napi::Env env, VmObject* vm, Napi::Object vmObject, uint32_t id);

}  // namespace kg
