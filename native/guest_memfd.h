// A guest_memfd file: mmap, fallocate, stat, and the conversion ioctls of the unmerged series.
#pragma once

#include <napi.h>

#include "owned.h"
#include "page_hold.h"

namespace kg {

class GuestMemfdObject : public Napi::ObjectWrap<GuestMemfdObject>, public Owned {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit GuestMemfdObject(const Napi::CallbackInfo& info);
  ~GuestMemfdObject() override;
  int fd() const { return fd_; }

 protected:
  void Release() override;

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Fallocate(const Napi::CallbackInfo& info);
  Napi::Value Stat(const Napi::CallbackInfo& info);
  Napi::Value ProbeConversion(const Napi::CallbackInfo& info);
  Napi::Value Convert(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  Napi::Value Hold(const Napi::CallbackInfo& info);
  Napi::Value ReleaseHold(const Napi::CallbackInfo& info);
  Napi::Value PeekHold(const Napi::CallbackInfo& info);

  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t flags_ = 0;
  PageHolds holds_;
};

}  // namespace kg
