// /dev/kvm: the system fd. One ioctl per method, errno carried unchanged.
#pragma once

#include <napi.h>

#include "owned.h"

namespace kg {

class KvmObject : public Napi::ObjectWrap<KvmObject>, public Owned {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit KvmObject(const Napi::CallbackInfo& info);
  ~KvmObject() override;
  int fd() const { return fd_; }

 protected:
  void Release() override;

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value ApiVersion(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value VcpuMmapSize(const Napi::CallbackInfo& info);
  Napi::Value CreateVm(const Napi::CallbackInfo& info);
  Napi::Value SupportedCpuid(const Napi::CallbackInfo& info);
  Napi::Value MsrIndexListJs(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  int fd_ = -1;
};

// Retries an ioctl interrupted by a signal; returns its result with errno intact.
long IoctlRetry(int fd, unsigned long request, void* arg);
long IoctlRetry(int fd, unsigned long request, unsigned long arg);

}  // namespace kg
