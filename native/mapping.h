// A MAP_SHARED mapping of a guest_memfd range. Every copy goes through the SIGBUS guard, and the
// zero-copy views handed to JS are detached before the memory goes away.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "owned.h"

namespace kg {

// A mapping's address range, shared with the memory slots that point into it. Whichever goes
// last gives the addresses back, so a slot never reaches memory mapped there afterwards, and a
// slot never keeps the mapping's JS object (and through it its VM) alive.
struct MappedRange {
  uint8_t* addr = nullptr;
  uint64_t length = 0;
  uint32_t slots = 0;
  bool reserved = false;   // the mapping is gone; a PROT_NONE placeholder holds the addresses
  bool anonymous = false;  // no mapping ever: a slot without userspace memory reserved it
  // A slot stopped pointing here.
  void Unbind();
};

class MappingObject : public Napi::ObjectWrap<MappingObject>, public Owned {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit MappingObject(const Napi::CallbackInfo& info);
  ~MappingObject() override;
  uint8_t* address() const { return addr_; }
  uint64_t length() const { return length_; }
  // Memory slots that point into this mapping bind its range; while any does, unmapping leaves
  // the range reserved (PROT_NONE) so the slot can never reach whatever is mapped there next.
  std::shared_ptr<MappedRange> range() const { return range_; }

 protected:
  void Release() override;

 private:
  Napi::Value GetOffset(const Napi::CallbackInfo& info);
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value ReadInto(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Fill(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value DetachViews(const Napi::CallbackInfo& info);
  Napi::Value Unmap(const Napi::CallbackInfo& info);
  void CheckRange(Napi::Env env, uint64_t off, uint64_t len);
  // `buffer`: the caller's side of the copy, which may be the one that faulted.
  [[noreturn]] void ThrowFault(Napi::Env env, uint8_t* start, uint64_t len, uintptr_t faultPage, bool write,
                               const uint8_t* buffer);
  void DetachAll();

  uint8_t* addr_ = nullptr;
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
  std::shared_ptr<MappedRange> range_;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> views_;
};

}  // namespace kg
