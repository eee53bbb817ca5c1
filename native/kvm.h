// /dev/kvm: the system fd. One ioctl per method, errno carried unchanged.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "owned.h"

namespace kg {

// The fd an object's plain hot-path functions act on: -1 once the object is closed. Shared with
// those functions, which may outlive the object (a script can keep one after dropping it).
struct FdCell {
  int fd = -1;
};

// A plain N-API function `(cap) => KVM_CHECK_EXTENSION on cell's fd`: the work of the
// checkExtension method without ObjectWrap's dispatch (an unwrap and a CallbackInfo per call),
// which costs more than the ioctl's own wrapper cost goal allows. `what` names the object in the
// ClosedError it gives once the object is closed.
// KVM_CHECK_EXTENSION on fd with the cap argument as given: its value, or its errno as a KvmError
// (the one implementation behind the methods and the plain function).
Napi::Value CheckExtensionOn(Napi::Env env, int fd, Napi::Value capArg);

Napi::Function CheckExtensionFunction(Napi::Env env, const std::shared_ptr<FdCell>& cell, const char* what);

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
  Napi::Value CheckExtensionFn(const Napi::CallbackInfo& info);
  Napi::Value CreateVm(const Napi::CallbackInfo& info);
  Napi::Value SupportedCpuid(const Napi::CallbackInfo& info);
  Napi::Value MsrIndexListJs(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  int fd_ = -1;
  std::shared_ptr<FdCell> cell_ = std::make_shared<FdCell>();
};

// Retries an ioctl interrupted by a signal; returns its result with errno intact. The argument is
// a value or a pointer (the kernel's ioctl takes an unsigned long either way).
long IoctlRetry(int fd, unsigned long request, unsigned long arg);
inline long IoctlRetry(int fd, unsigned long request, void* arg) {
  return IoctlRetry(fd, request, reinterpret_cast<unsigned long>(arg));
}
// An ioctl whose result is the answer (the API version, a capability's value): a number, or its
// errno thrown as a KvmError naming `name`.
Napi::Value IoctlValue(Napi::Env env, int fd, unsigned long request, unsigned long arg, const char* name,
                       const std::string& args = "");

}  // namespace kg
