#include "kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "cpu_config.h"
#include "errors.h"
#include "fault_inject.h"
#include "uapi.h"

namespace kg {

namespace {

struct CheckExtensionData {
  std::shared_ptr<FdCell> cell;
  const char* what;
};

napi_value CallCheckExtension(napi_env rawEnv, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value arg = nullptr;
  void* data = nullptr;
  if (napi_get_cb_info(rawEnv, cbinfo, &argc, &arg, nullptr, &data) != napi_ok) return nullptr;
  Napi::Env env(rawEnv);
  // The typed throws of errors.cc are C++ exceptions; a plain N-API callback turns them into
  // pending JS exceptions itself.
  try {
    auto* cx = static_cast<CheckExtensionData*>(data);
    if (cx->cell->fd < 0) ThrowClosed(env, cx->what);
    return CheckExtensionOn(env, cx->cell->fd, Napi::Value(rawEnv, arg));
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
}

}  // namespace

Napi::Value CheckExtensionOn(Napi::Env env, int fd, Napi::Value capArg) {
  // A uint32 number in one N-API call; anything else gets GetU32's checks and errors. The
  // error's argument text is made only when there is an error.
  double d = -1;
  uint32_t cap;
  if (napi_get_value_double(env, capArg, &d) == napi_ok && d >= 0 && d <= 4294967295.0 && d == static_cast<uint32_t>(d))
    cap = static_cast<uint32_t>(d);
  else
    cap = GetU32(env, capArg, "cap");
  long r = IoctlRetry(fd, KVM_CHECK_EXTENSION, cap);
  if (r < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_CHECK_EXTENSION", "cap " + std::to_string(cap));
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Function CheckExtensionFunction(Napi::Env env, const std::shared_ptr<FdCell>& cell, const char* what) {
  auto* data = new CheckExtensionData{cell, what};
  napi_value fn = nullptr;
  if (napi_create_function(env, "checkExtension", NAPI_AUTO_LENGTH, CallCheckExtension, data, &fn) != napi_ok) {
    delete data;
    throw Napi::Error::New(env);
  }
  napi_status st = napi_add_finalizer(
      env, fn, data, [](napi_env, void* d, void*) { delete static_cast<CheckExtensionData*>(d); }, nullptr, nullptr);
  if (st != napi_ok) {
    delete data;
    throw Napi::Error::New(env);
  }
  return Napi::Function(env, fn);
}

long IoctlRetry(int fd, unsigned long request, unsigned long arg) {
  if (InjectFault(Sys::Ioctl, request)) return -1;
  long r;
  do {
    r = ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

Napi::Value IoctlValue(Napi::Env env, int fd, unsigned long request, unsigned long arg, const char* name,
                       const std::string& args) {
  long r = IoctlRetry(fd, request, arg);
  if (r < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", name, args);
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Function KvmObject::Init(Napi::Env env) {
  return DefineClass(env, "NativeKvm",
                     {
                         InstanceAccessor<&KvmObject::GetFd>("fd"),
                         InstanceMethod<&KvmObject::ApiVersion>("apiVersion"),
                         InstanceMethod<&KvmObject::CheckExtension>("checkExtension"),
                         InstanceMethod<&KvmObject::CheckExtensionFn>("checkExtensionFunction"),
                         InstanceMethod<&KvmObject::CreateVm>("createVm"),
                         InstanceMethod<&KvmObject::SupportedCpuid>("supportedCpuid"),
                         InstanceMethod<&KvmObject::MsrIndexListJs>("msrIndexList"),
                         InstanceMethod<&KvmObject::CloseJs>("close"),
                     });
}

KvmObject::KvmObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmObject>(info) {
  Napi::Env env = info.Env();
  TagObject(env, info.This().As<Napi::Object>(), Kind::Kvm);
  if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = InjectFault(Sys::Open) ? -1 : open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowErrnoPath(env, errno, "open", path);
  fd_ = fd;
  cell_->fd = fd;
  Attach(env, nullptr, Napi::Object());
}

KvmObject::~KvmObject() { FinalizeOwned(); }

void KvmObject::Release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  cell_->fd = -1;
}

Napi::Value KvmObject::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value KvmObject::ApiVersion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Kvm");
  return IoctlValue(env, fd_, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
}

Napi::Value KvmObject::CheckExtension(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Kvm");
  return CheckExtensionOn(env, fd_, info[0]);
}

// checkExtensionFunction() -> (cap) => number: the same call as a plain function (the hot path).
Napi::Value KvmObject::CheckExtensionFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Kvm");
  return CheckExtensionFunction(env, cell_, "Kvm");
}

Napi::Value KvmObject::CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Kvm");
  uint32_t type = GetU32(env, info[0], "type");
  long fd = IoctlRetry(fd_, KVM_CREATE_VM, static_cast<unsigned long>(type));
  if (fd < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_CREATE_VM", "type " + std::to_string(type));
  }
  // KVM installs the VM fd with O_CLOEXEC already.
  ChildInit init{static_cast<int>(fd), type, 0, 0, this, info.This().As<Napi::Object>()};
  return NewChild(env, GetData(env)->vmCtor, init);
}

Napi::Value KvmObject::CloseJs(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

Napi::Value KvmObject::SupportedCpuid(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Kvm");
  return GetCpuidWords(info.Env(), fd_, true);
}

Napi::Value KvmObject::MsrIndexListJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Kvm");
  return MsrIndexList(info.Env(), fd_);
}

}  // namespace kg
