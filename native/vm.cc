#include "vm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cpu_config.h"
#include "errors.h"
#include "fault_inject.h"
#include "guest_memfd.h"
#include "kvm.h"
#include "mapping.h"
#include "uapi.h"
#include "vcpu.h"

namespace kg {

namespace {
constexpr uint64_t kPage = 4096;
}  // namespace

Napi::Function VmObject::Init(Napi::Env env) {
  return DefineClass(env, "NativeVm",
                     {
                         InstanceAccessor<&VmObject::GetFd>("fd"),
                         InstanceAccessor<&VmObject::GetType>("type"),
                         InstanceMethod<&VmObject::CheckExtension>("checkExtension"),
                         InstanceMethod<&VmObject::CheckExtensionFn>("checkExtensionFunction"),
                         InstanceMethod<&VmObject::CreateGuestMemfd>("createGuestMemfd"),
                         InstanceMethod<&VmObject::SetUserMemoryRegion2>("setUserMemoryRegion2"),
                         InstanceMethod<&VmObject::SetMemoryAttributes>("setMemoryAttributes"),
                         InstanceMethod<&VmObject::ProbeVmAttributes>("probeVmAttributes"),
                         InstanceMethod<&VmObject::CreateVcpu>("createVcpu"),
                         InstanceMethod<&VmObject::EnableCapJs>("enableCap"),
                         InstanceMethod<&VmObject::CloseJs>("close"),
                     });
}

VmObject::VmObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VmObject>(info) {
  Napi::Env env = info.Env();
  ChildInit& init = TakeChildInit(info, "Vm");
  TagObject(env, info.This().As<Napi::Object>(), Kind::Vm);
  type_ = static_cast<uint32_t>(init.a);
  Attach(env, init.owner, init.ownerObject);
  fd_ = init.fd;
  cell_ = std::make_shared<FdCell>();
  cell_->fd = init.fd;
  init.fd = -1;
}

VmObject::~VmObject() { FinalizeOwned(); }

void VmObject::Release() {
  // Children (files, mappings, vCPUs) are already closed; the slots go with the VM.
  while (!slotUses_.empty()) DropSlotUse(slotUses_.begin()->first);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (cell_) cell_->fd = -1;
}

void VmObject::DropSlotUse(uint32_t slot) {
  auto it = slotUses_.find(slot);
  if (it == slotUses_.end()) return;
  it->second.range->Unbind();
  slotUses_.erase(it);
}

Napi::Value VmObject::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
Napi::Value VmObject::GetType(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), type_); }

Napi::Value VmObject::CheckExtension(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  return CheckExtensionOn(env, fd_, info[0]);
}

// checkExtensionFunction() -> (cap) => number: the same call as a plain function (the hot path).
Napi::Value VmObject::CheckExtensionFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  return CheckExtensionFunction(env, cell_, "Vm");
}

Napi::Value VmObject::CreateGuestMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  kg_create_guest_memfd args;
  memset(&args, 0, sizeof(args));
  args.size = GetU64(env, info[0], "size");
  args.flags = GetU64(env, info[1], "flags");
  long fd = IoctlRetry(fd_, KG_CREATE_GUEST_MEMFD, &args);
  if (fd < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_CREATE_GUEST_MEMFD",
               "size " + std::to_string(args.size) + ", flags " + Hex(args.flags));
  }
  // Unlike the VM and vCPU fds, KVM hands out guest_memfd without O_CLOEXEC: a child process
  // must not inherit the guest's memory.
  if (fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    close(static_cast<int>(fd));
    ThrowErrno(env, err, "fcntl");
  }
  ChildInit init{static_cast<int>(fd), args.size, args.flags, 0, this, info.This().As<Napi::Object>()};
  return NewChild(env, GetData(env)->gmemCtor, init);
}

// setUserMemoryRegion2({ slot, flags?, guestPhysAddr?, size?, userspace?, userspaceOffset?,
// guestMemfd?, guestMemfdOffset? }): struct kvm_userspace_memory_region2 by field name; a missing
// number is 0, a missing userspace or guestMemfd is none (delete is { slot }).
Napi::Value VmObject::SetUserMemoryRegion2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  if (!info[0].IsObject()) ThrowTypeError(env, "region must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto optU64 = [&](const char* name) -> uint64_t {
    Napi::Value v = o.Get(name);
    return v.IsUndefined() ? 0 : GetU64(env, v, name);
  };
  kg_userspace_memory_region2 r;
  memset(&r, 0, sizeof(r));
  r.slot = GetU32(env, o.Get("slot"), "slot");
  Napi::Value flags = o.Get("flags");
  r.flags = flags.IsUndefined() ? 0 : GetU32(env, flags, "flags");
  r.guest_phys_addr = optU64("guestPhysAddr");
  r.memory_size = optU64("size");
  MappingObject* mapping = nullptr;
  uint64_t userspaceOffset = 0;
  Napi::Value userspace = o.Get("userspace");
  if (!userspace.IsUndefined()) {
    if (!HasTag(env, userspace, Kind::Mapping)) ThrowTypeError(env, "userspace must be a Mapping");
    mapping = MappingObject::Unwrap(userspace.As<Napi::Object>());
    userspaceOffset = optU64("userspaceOffset");
  }
  GuestMemfdObject* gmem = nullptr;
  Napi::Value guestMemfd = o.Get("guestMemfd");
  if (!guestMemfd.IsUndefined()) {
    if (!HasTag(env, guestMemfd, Kind::GuestMemfd)) ThrowTypeError(env, "guestMemfd must be a GuestMemfd");
    gmem = GuestMemfdObject::Unwrap(guestMemfd.As<Napi::Object>());
    r.guest_memfd_offset = optU64("guestMemfdOffset");
  }
  // Argument conversion can run a script's getters: the open checks come after all of it.
  EnsureOpen(env, *this, "Vm");
  if (gmem != nullptr) {
    EnsureOpen(env, *gmem, "GuestMemfd");
    r.guest_memfd = static_cast<uint32_t>(gmem->fd());
  }
  std::shared_ptr<MappedRange> range;
  if (mapping != nullptr) {
    EnsureOpen(env, *mapping, "Mapping");
    // The kernel only checks that the slot is user memory: from this mapping's own record, never
    // from what a script says its length is, a slot must not reach past the mapping's last page.
    uint64_t mapped = (mapping->length() + kPage - 1) & ~(kPage - 1);
    if (userspaceOffset > mapping->length()) ThrowRangeError(env, "userspaceOffset is beyond the mapping");
    if (r.memory_size > mapped - userspaceOffset) {
      ThrowRangeError(env, "the slot reaches past the end of its userspace mapping");
    }
    r.userspace_addr = reinterpret_cast<uintptr_t>(mapping->address()) + userspaceOffset;
    range = mapping->range();
  } else if (r.memory_size != 0) {
    range = ReserveForSlot(env, r.slot, r.memory_size);
    if (range) r.userspace_addr = reinterpret_cast<uintptr_t>(range->addr);
  }
  if (IoctlRetry(fd_, KG_SET_USER_MEMORY_REGION2, &r) < 0) {
    int err = errno;
    if (range && mapping == nullptr) ReleaseReserve(r.slot, range);
    ThrowErrno(env, err, "ioctl", "KVM_SET_USER_MEMORY_REGION2",
               "slot " + std::to_string(r.slot) + ", flags " + Hex(r.flags) + ", guest_phys_addr " +
                   Hex(r.guest_phys_addr) + ", memory_size " + std::to_string(r.memory_size) + ", guest_memfd_offset " +
                   std::to_string(r.guest_memfd_offset));
  }
  // Track what each slot points into, so its address range stays reserved while it does.
  auto it = slotUses_.find(r.slot);
  if (r.memory_size == 0 || (it != slotUses_.end() && it->second.range != range)) DropSlotUse(r.slot);
  if (range && slotUses_.find(r.slot) == slotUses_.end()) {
    range->slots++;
    slotUses_.emplace(r.slot, SlotUse{std::move(range)});
  }
  return env.Undefined();
}

// A slot without userspace memory would have userspace_addr 0: the guest would reach whatever the
// process maps in [0, size) (node itself sits at 0x400000). It gets an inaccessible reservation
// of its own instead, the same one each time the slot is set again, so the kernel sees an
// unchanged address. Sizes the kernel refuses whatever the address (unaligned, more than
// KVM_MEM_MAX_NR_PAGES) keep address 0 and get the kernel's own EINVAL.
std::shared_ptr<MappedRange> VmObject::ReserveForSlot(Napi::Env env, uint32_t slot, uint64_t size) {
  constexpr uint64_t kMaxSlotPages = (1ULL << 31) - 1;
  if ((size & (kPage - 1)) != 0 || size / kPage > kMaxSlotPages) return nullptr;
  auto it = slotUses_.find(slot);
  if (it != slotUses_.end() && it->second.range->anonymous && it->second.range->length == size) {
    return it->second.range;
  }
  void* p = MAP_FAILED;
  if (!InjectFault(Sys::Mmap)) {
    p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  auto range = std::make_shared<MappedRange>();
  range->addr = static_cast<uint8_t*>(p);
  range->length = size;
  range->reserved = true;
  range->anonymous = true;
  return range;
}

// The ioctl refused the slot: a reservation made for this call goes again.
void VmObject::ReleaseReserve(uint32_t slot, const std::shared_ptr<MappedRange>& range) {
  auto it = slotUses_.find(slot);
  if (it != slotUses_.end() && it->second.range == range) return;
  munmap(range->addr, range->length);
  range->addr = nullptr;
}

Napi::Value VmObject::SetMemoryAttributes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  kg_memory_attributes a;
  memset(&a, 0, sizeof(a));
  a.address = GetU64(env, info[0], "gpa");
  a.size = GetU64(env, info[1], "size");
  a.attributes = GetU64(env, info[2], "attributes");
  a.flags = info.Length() > 3 ? GetU64(env, info[3], "flags") : 0;
  if (IoctlRetry(fd_, KG_SET_MEMORY_ATTRIBUTES, &a) < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_SET_MEMORY_ATTRIBUTES",
               "address " + Hex(a.address) + ", size " + std::to_string(a.size) + ", attributes " + Hex(a.attributes));
  }
  return env.Undefined();
}

// KVM_SET_MEMORY_ATTRIBUTES with size 0: EINVAL when the ioctl exists, ENOTTY when it does not.
Napi::Value VmObject::ProbeVmAttributes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  kg_memory_attributes a;
  memset(&a, 0, sizeof(a));
  long r = IoctlRetry(fd_, KG_SET_MEMORY_ATTRIBUTES, &a);
  return Napi::Boolean::New(env, !(r < 0 && errno == ENOTTY));
}

Napi::Value VmObject::CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vm");
  return CreateVcpuFor(env, this, info.This().As<Napi::Object>(), GetU32(env, info[0], "id"));
}

Napi::Value VmObject::EnableCapJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vm");
  return EnableCap(info, fd_);
}

Napi::Value VmObject::CloseJs(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

}  // namespace kg
