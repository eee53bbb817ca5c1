#include "mapping.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"
#include "sigbus_guard.h"

namespace kg {

namespace {
constexpr uintptr_t kPageSize = 4096;
}  // namespace

Napi::Function MappingObject::Init(Napi::Env env) {
  return DefineClass(env, "NativeMapping",
                     {
                         InstanceAccessor<&MappingObject::GetOffset>("offset"),
                         InstanceAccessor<&MappingObject::GetLength>("length"),
                         InstanceMethod<&MappingObject::Read>("read"),
                         InstanceMethod<&MappingObject::ReadInto>("readInto"),
                         InstanceMethod<&MappingObject::Write>("write"),
                         InstanceMethod<&MappingObject::Fill>("fill"),
                         InstanceMethod<&MappingObject::View>("view"),
                         InstanceMethod<&MappingObject::DetachViews>("detachViews"),
                         InstanceMethod<&MappingObject::Unmap>("unmap"),
                     });
}

MappingObject::MappingObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappingObject>(info) {
  Napi::Env env = info.Env();
  ChildInit& init = TakeChildInit(info, "Mapping");
  TagObject(env, info.This().As<Napi::Object>(), Kind::Mapping);
  if (!InstallSigbusGuard()) ThrowErrno(env, errno, "sigaction");
  offset_ = init.a;
  length_ = init.b;
  Attach(env, init.owner, init.ownerObject);
  addr_ = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(init.c));
  init.c = 0;  // ours now
  range_ = std::make_shared<MappedRange>();
  range_->addr = addr_;
  range_->length = length_;
  data_->mappings.insert(this);
}

MappingObject::~MappingObject() { FinalizeOwned(); }

void MappingObject::DetachAll() {
  if (data_ != nullptr && data_->tearingDown) {
    for (auto& r : views_) r.SuppressDestruct();
    views_.clear();
    return;
  }
  for (auto& r : views_) {
    if (r.IsEmpty()) continue;
    Napi::ArrayBuffer ab = r.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
    r.Reset();
  }
  views_.clear();
}

void MappingObject::Release() {
  DetachAll();
  if (data_ != nullptr) data_->mappings.erase(this);
  if (addr_ == nullptr) return;
  uint8_t* addr = addr_;
  addr_ = nullptr;
  if (range_->slots > 0) {
    // Replace the pages, keep the addresses: the guest_memfd reference is dropped now.
    void* p = mmap(addr, length_, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      range_->reserved = true;
      return;
    }
  }
  munmap(addr, length_);
  range_->addr = nullptr;
}

void MappedRange::Unbind() {
  if (slots > 0) slots--;
  if (slots == 0 && reserved && addr != nullptr) {
    munmap(addr, length);
    addr = nullptr;
    reserved = false;
  }
}

Napi::Value MappingObject::GetOffset(const Napi::CallbackInfo& info) { return FromU64(info.Env(), offset_); }
Napi::Value MappingObject::GetLength(const Napi::CallbackInfo& info) { return FromU64(info.Env(), length_); }

void MappingObject::CheckRange(Napi::Env env, uint64_t off, uint64_t len) {
  EnsureOpen(env, *this, "Mapping");
  if (off > length_ || len > length_ - off) ThrowRangeError(env, "range is outside the mapping");
}

void MappingObject::ThrowFault(Napi::Env env, uint8_t* start, uint64_t len, uintptr_t faultPage, bool write,
                               const uint8_t* buffer) {
  uintptr_t mine = reinterpret_cast<uintptr_t>(start);
  if (buffer == nullptr || (faultPage + kPageSize > mine && faultPage < mine + len)) {
    uintptr_t first = std::max(faultPage, mine);
    ThrowHostAccess(env, offset_ + (first - reinterpret_cast<uintptr_t>(addr_)), write);
  }
  // The caller's buffer faulted: reading write()'s source, writing readInto()'s target.
  uintptr_t buf = reinterpret_cast<uintptr_t>(buffer);
  uintptr_t first = std::max(faultPage, buf);
  for (MappingObject* m : data_->mappings) {
    uintptr_t a = reinterpret_cast<uintptr_t>(m->addr_);
    if (a != 0 && first >= a && first < a + m->length_) {
      ThrowBufferFault(env, true, m->offset_ + (first - a), first - buf, !write);
    }
  }
  ThrowBufferFault(env, false, 0, first - buf, !write);
}

// read(offset, length) -> Buffer
Napi::Value MappingObject::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t off = GetU64(env, info[0], "offset");
  uint64_t len = GetU64(env, info[1], "length");
  CheckRange(env, off, len);
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, len);
  GuardResult g = GuardedCopy(CopyKind::Read, addr_ + off, buf.Data(), len, 0);
  if (!g.ok) ThrowFault(env, addr_ + off, len, g.faultAddr, false, nullptr);
  return buf;
}

// readInto(offset, target: Uint8Array) -> bytes copied
Napi::Value MappingObject::ReadInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t off = GetU64(env, info[0], "offset");
  if (!info[1].IsTypedArray()) ThrowTypeError(env, "target must be a Uint8Array");
  Bytes dst = GetBytes(env, info[1], "target");
  CheckRange(env, off, dst.length);
  GuardResult g = GuardedCopy(CopyKind::Read, addr_ + off, dst.data, dst.length, 0);
  if (!g.ok) ThrowFault(env, addr_ + off, dst.length, g.faultAddr, false, dst.data);
  return Napi::Number::New(env, static_cast<double>(dst.length));
}

// write(offset, data: ArrayBufferView)
Napi::Value MappingObject::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t off = GetU64(env, info[0], "offset");
  Bytes src = GetBytes(env, info[1], "data");
  CheckRange(env, off, src.length);
  GuardResult g = GuardedCopy(CopyKind::Write, addr_ + off, src.data, src.length, 0);
  if (!g.ok) ThrowFault(env, addr_ + off, src.length, g.faultAddr, true, src.data);
  return env.Undefined();
}

// fill(offset, length, byte)
Napi::Value MappingObject::Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t off = GetU64(env, info[0], "offset");
  uint64_t len = GetU64(env, info[1], "length");
  uint32_t byte = GetU32(env, info[2], "byte");
  if (byte > 255) ThrowRangeError(env, "byte must be between 0 and 255");
  CheckRange(env, off, len);
  GuardResult g = GuardedCopy(CopyKind::Fill, addr_ + off, nullptr, len, static_cast<int>(byte));
  if (!g.ok) ThrowFault(env, addr_ + off, len, g.faultAddr, true, nullptr);
  return env.Undefined();
}

Napi::Value MappingObject::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Mapping");
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, addr_, length_, nullptr, nullptr, &ab);
  if (st == napi_no_external_buffers_allowed) {
    ThrowUnsupported(env, "Mapping.view", "this runtime forbids external ArrayBuffers");
  }
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  Napi::ArrayBuffer buf(env, ab);
  // Views already gone are dropped so the list stays short.
  views_.erase(std::remove_if(views_.begin(), views_.end(),
                              [](Napi::Reference<Napi::ArrayBuffer>& r) { return r.Value().IsEmpty(); }),
               views_.end());
  views_.push_back(Napi::Weak(buf));
  return buf;
}

Napi::Value MappingObject::DetachViews(const Napi::CallbackInfo& info) {
  DetachAll();
  return info.Env().Undefined();
}

Napi::Value MappingObject::Unmap(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

}  // namespace kg
