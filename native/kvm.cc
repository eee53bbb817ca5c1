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
  Attach(env, nullptr, Napi::Object());
}

KvmObject::~KvmObject() { FinalizeOwned(); }

void KvmObject::Release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
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
  uint32_t cap = GetU32(env, info[0], "cap");
  return IoctlValue(env, fd_, KVM_CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION", "cap " + std::to_string(cap));
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
