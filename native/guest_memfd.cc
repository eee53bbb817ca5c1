#include "guest_memfd.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"
#include "fault_inject.h"
#include "kvm.h"
#include "mapping.h"
#include "uapi.h"

namespace kg {

Napi::Function GuestMemfdObject::Init(Napi::Env env) {
  return DefineClass(env, "NativeGuestMemfd",
                     {
                         InstanceAccessor<&GuestMemfdObject::GetFd>("fd"),
                         InstanceMethod<&GuestMemfdObject::Map>("map"),
                         InstanceMethod<&GuestMemfdObject::Fallocate>("fallocate"),
                         InstanceMethod<&GuestMemfdObject::Stat>("stat"),
                         InstanceMethod<&GuestMemfdObject::ProbeConversion>("probeConversion"),
                         InstanceMethod<&GuestMemfdObject::Convert>("convert"),
                         InstanceMethod<&GuestMemfdObject::Hold>("hold"),
                         InstanceMethod<&GuestMemfdObject::ReleaseHold>("releaseHold"),
                         InstanceMethod<&GuestMemfdObject::PeekHold>("peekHold"),
                         InstanceMethod<&GuestMemfdObject::CloseJs>("close"),
                     });
}

GuestMemfdObject::GuestMemfdObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GuestMemfdObject>(info) {
  Napi::Env env = info.Env();
  ChildInit& init = TakeChildInit(info, "GuestMemfd");
  TagObject(env, info.This().As<Napi::Object>(), Kind::GuestMemfd);
  size_ = init.a;
  flags_ = init.b;
  Attach(env, init.owner, init.ownerObject);
  fd_ = init.fd;
  init.fd = -1;
}

GuestMemfdObject::~GuestMemfdObject() { FinalizeOwned(); }

void GuestMemfdObject::Release() {
  holds_.ReleaseAll();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Napi::Value GuestMemfdObject::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// map(offset, length, private?)
Napi::Value GuestMemfdObject::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "GuestMemfd");
  uint64_t offset = GetU64(env, info[0], "offset");
  uint64_t length = GetU64(env, info[1], "length");
  bool priv = info.Length() > 2 && info[2].ToBoolean().Value();
  if (offset > static_cast<uint64_t>(INT64_MAX)) ThrowRangeError(env, "offset must be below 2^63");
  void* p = InjectFault(Sys::Mmap) ? MAP_FAILED
                                   : mmap(nullptr, length, PROT_READ | PROT_WRITE, priv ? MAP_PRIVATE : MAP_SHARED, fd_,
                                          static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    int err = errno;
    ThrowErrno(env, err, "mmap", nullptr, "offset " + std::to_string(offset) + ", length " + std::to_string(length));
  }
  ChildInit init{-1, offset, length, reinterpret_cast<uintptr_t>(p), this, info.This().As<Napi::Object>()};
  try {
    return NewChild(env, GetData(env)->mappingCtor, init);
  } catch (...) {
    if (init.c != 0) munmap(p, length);
    throw;
  }
}

// fallocate(mode, offset, length) with mode 'allocate' | 'punch'
Napi::Value GuestMemfdObject::Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "GuestMemfd");
  bool punch = info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "punch";
  uint64_t offset = GetU64(env, info[1], "offset");
  uint64_t length = GetU64(env, info[2], "length");
  if (offset > static_cast<uint64_t>(INT64_MAX) || length > static_cast<uint64_t>(INT64_MAX)) {
    ThrowRangeError(env, "offset and length must be below 2^63");
  }
  int mode = punch ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : FALLOC_FL_KEEP_SIZE;
  int r = -1;
  if (!InjectFault(Sys::Fallocate)) {
    do {
      r = fallocate(fd_, mode, static_cast<off_t>(offset), static_cast<off_t>(length));
    } while (r < 0 && errno == EINTR);
  }
  if (r < 0) {
    int err = errno;
    ThrowErrno(env, err, "fallocate", nullptr,
               std::string(punch ? "punch hole" : "allocate") + ", offset " + std::to_string(offset) + ", length " +
                   std::to_string(length));
  }
  return env.Undefined();
}

Napi::Value GuestMemfdObject::Stat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "GuestMemfd");
  struct stat st;
  if (fstat(fd_, &st) < 0) ThrowErrno(env, errno, "fstat");
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", FromU64(env, static_cast<uint64_t>(st.st_size)));
  o.Set("blksize", Napi::Number::New(env, static_cast<double>(st.st_blksize)));
  o.Set("blocks", FromU64(env, static_cast<uint64_t>(st.st_blocks)));
  o.Set("ino", FromU64(env, static_cast<uint64_t>(st.st_ino)));
  o.Set("dev", FromU64(env, static_cast<uint64_t>(st.st_dev)));
  o.Set("mode", Napi::Number::New(env, st.st_mode));
  return o;
}

// Which conversion ioctl this kernel has on a guest_memfd, found with size-0 calls that change
// nothing: EINVAL means the ioctl exists, ENOTTY that it does not.
Napi::Value GuestMemfdObject::ProbeConversion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "GuestMemfd");
  kg_memory_attributes2 a2;
  memset(&a2, 0, sizeof(a2));
  if (!(IoctlRetry(fd_, KG_SET_MEMORY_ATTRIBUTES2, &a2) < 0 && errno == ENOTTY)) {
    return Napi::String::New(env, "attributes2");
  }
  kg_gmem_convert c;
  memset(&c, 0, sizeof(c));
  if (!(IoctlRetry(fd_, KG_GMEM_CONVERT_SHARED, &c) < 0 && errno == ENOTTY)) {
    return Napi::String::New(env, "gmem-convert");
  }
  return env.Null();
}

// convert(mechanism, toPrivate, offset, size): undefined, ConversionBusyError or KvmError.
Napi::Value GuestMemfdObject::Convert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "GuestMemfd");
  std::string mech = info[0].ToString().Utf8Value();
  bool toPrivate = info[1].ToBoolean().Value();
  uint64_t offset = GetU64(env, info[2], "offset");
  uint64_t size = GetU64(env, info[3], "size");
  if (mech == "attributes2") {
    kg_memory_attributes2 a;
    memset(&a, 0, sizeof(a));
    a.offset = offset;
    a.size = size;
    a.attributes = toPrivate ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    if (IoctlRetry(fd_, KG_SET_MEMORY_ATTRIBUTES2, &a) < 0) {
      if (errno == EAGAIN) ThrowBusy(env, a.error_offset, "KVM_SET_MEMORY_ATTRIBUTES2");
      int err = errno;
      ThrowErrno(
          env, err, "ioctl", "KVM_SET_MEMORY_ATTRIBUTES2",
          "offset " + std::to_string(offset) + ", size " + std::to_string(size) + ", attributes " + Hex(a.attributes));
    }
  } else if (mech == "gmem-convert") {
    kg_gmem_convert c;
    memset(&c, 0, sizeof(c));
    c.offset = offset;
    c.size = size;
    unsigned long req = toPrivate ? KG_GMEM_CONVERT_PRIVATE : KG_GMEM_CONVERT_SHARED;
    const char* name = toPrivate ? "KVM_GMEM_CONVERT_PRIVATE" : "KVM_GMEM_CONVERT_SHARED";
    if (IoctlRetry(fd_, req, &c) < 0) {
      if (errno == EAGAIN) ThrowBusy(env, c.error_offset, name);
      int err = errno;
      ThrowErrno(env, err, "ioctl", name, "offset " + std::to_string(offset) + ", size " + std::to_string(size));
    }
  } else {
    ThrowUnsupported(env, "in-place conversion", "no conversion ioctl on this kernel");
  }
  return env.Undefined();
}

// hold(offset, length) -> id: host references on the pages (see page_hold.h).
Napi::Value GuestMemfdObject::Hold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = GetU64(env, info[0], "offset");
  uint64_t length = GetU64(env, info[1], "length");
  EnsureOpen(env, *this, "GuestMemfd");
  if (offset > size_ || length > size_ - offset) ThrowRangeError(env, "the hold is outside the file");
  return Napi::Number::New(env, holds_.Take(env, fd_, offset, length));
}

Napi::Value GuestMemfdObject::ReleaseHold(const Napi::CallbackInfo& info) {
  holds_.Release(GetU32(info.Env(), info[0], "id"));
  return info.Env().Undefined();
}

Napi::Value GuestMemfdObject::PeekHold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return holds_.Peek(env, GetU32(env, info[0], "id"), GetU32(env, info[1], "bytes"));
}

Napi::Value GuestMemfdObject::CloseJs(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

}  // namespace kg
