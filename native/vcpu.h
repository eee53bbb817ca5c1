// vCPUs: KVM_RUN (on the JS thread, or on a per-vCPU thread for run()), registers, and the
// kvm_run area that lib/ decodes exits from.
#pragma once

#include <napi.h>

#include <time.h>

#include <memory>

#include "owned.h"

struct kvm_run;

namespace kg {

class VmObject;
struct Runner;

class VcpuObject : public Napi::ObjectWrap<VcpuObject>, public Owned {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit VcpuObject(const Napi::CallbackInfo& info);
  ~VcpuObject() override;
  // On the JS thread, when the vCPU thread finished a run that went asynchronous.
  void Settle(Napi::Env env);

 protected:
  void Release() override;

 private:
  Napi::Value GetId(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value Area(const Napi::CallbackInfo& info);
  Napi::Value GetRegs(const Napi::CallbackInfo& info);
  Napi::Value SetRegs(const Napi::CallbackInfo& info);
  Napi::Value GetSregs(const Napi::CallbackInfo& info);
  Napi::Value SetSregs(const Napi::CallbackInfo& info);
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Kick(const Napi::CallbackInfo& info);
  Napi::Value SetRunInline(const Napi::CallbackInfo& info);
  Napi::Value EnableCapJs(const Napi::CallbackInfo& info);
  Napi::Value GetCpuid(const Napi::CallbackInfo& info);
  Napi::Value SetCpuid(const Napi::CallbackInfo& info);
  Napi::Value GetMsrsJs(const Napi::CallbackInfo& info);
  Napi::Value SetMsrsJs(const Napi::CallbackInfo& info);
  Napi::Value PreFaultMemoryJs(const Napi::CallbackInfo& info);
  Napi::Value GetLayout(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  void EnsureIdle(Napi::Env env);
  void StartRunner(Napi::Env env);
  void CreateTimer(Napi::Env env);
  void ArmWithin(int64_t windowNs, bool bound);
  bool RunHere(Napi::Env env, Napi::Value* out);

  napi_env env_ = nullptr;
  int fd_ = -1;
  uint32_t id_ = 0;
  kvm_run* run_ = nullptr;
  size_t runSize_ = 0;
  // 2 ms: each window costs one timer arming, about 3 us in timer_settime alone on PVM and 0.24 us
  // per io exit at 500 us (measured: run() at 5 ms matched runSync()).
  int64_t inlineNs_ = 2000000;
  int64_t timerExpiry_ = 0;
  timer_t timer_{};
  bool timerReady_ = false;
  std::shared_ptr<Runner> runner_;
  Napi::Reference<Napi::ArrayBuffer> area_;
};

Napi::Function InitVcpu(Napi::Env env);
Napi::Value CreateVcpuFor(Napi::Env env, VmObject* vm, Napi::Object vmObject, uint32_t id);
// Offsets of the kvm_run fields lib/ decodes (from the compiled struct, never retyped).
Napi::Object VcpuLayout(Napi::Env env);

}  // namespace kg
