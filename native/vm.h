// A VM fd: memory slots, attributes, and the factory for guest_memfd files and vCPUs.
#pragma once

#include <napi.h>

#include <map>
#include <memory>

#include "kvm.h"
#include "owned.h"

namespace kg {

class MappingObject;
struct MappedRange;

class VmObject : public Napi::ObjectWrap<VmObject>, public Owned {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit VmObject(const Napi::CallbackInfo& info);
  ~VmObject() override;
  int fd() const { return fd_; }

 protected:
  void Release() override;

 private:
  struct SlotUse {
    std::shared_ptr<MappedRange> range;  // keeps the mapping's addresses reserved while the slot points at them
  };
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetType(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value CheckExtensionFn(const Napi::CallbackInfo& info);
  Napi::Value CreateGuestMemfd(const Napi::CallbackInfo& info);
  Napi::Value SetUserMemoryRegion2(const Napi::CallbackInfo& info);
  Napi::Value SetMemoryAttributes(const Napi::CallbackInfo& info);
  Napi::Value ProbeVmAttributes(const Napi::CallbackInfo& info);
  Napi::Value CreateVcpu(const Napi::CallbackInfo& info);
  Napi::Value EnableCapJs(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info);
  void DropSlotUse(uint32_t slot);
  std::shared_ptr<MappedRange> ReserveForSlot(Napi::Env env, uint32_t slot, uint64_t size);
  void ReleaseReserve(uint32_t slot, const std::shared_ptr<MappedRange>& range);

  int fd_ = -1;
  std::shared_ptr<FdCell> cell_;
  uint32_t type_ = 0;
  std::map<uint32_t, SlotUse> slotUses_;
};

}  // namespace kg
