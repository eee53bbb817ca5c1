// Ownership shared by every native object: each wraps one kernel object, has at most one owner
// (Kvm -> Vm -> GuestMemfd/Vcpu, GuestMemfd -> Mapping) and closes its children before itself.
// close() is idempotent and is what the finalizer and the environment cleanup hook call too.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

namespace kg {

class Owned;
class MappingObject;

// Per-environment state (main thread and each worker have their own).
struct AddonData {
  Napi::FunctionReference errorFactory;
  Napi::FunctionReference vmCtor, gmemCtor, mappingCtor, vcpuCtor;
  std::unordered_set<Owned*> live;
  // Mappings still mapped, to name the guest_memfd behind a caller's buffer that faulted.
  std::unordered_set<MappingObject*> mappings;
  bool tearingDown = false;
};

AddonData* GetData(Napi::Env env);

// Type tags so an object of one class is never unwrapped as another.
enum class Kind : uint32_t { Kvm = 0x4b564d31, Vm, GuestMemfd, Mapping, Vcpu };
extern const napi_type_tag kTags[5];
void TagObject(Napi::Env env, Napi::Object obj, Kind kind);
bool HasTag(Napi::Env env, Napi::Value value, Kind kind);

class Owned {
 public:
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;

  bool closed() const { return closed_; }
  // Closes children first, then this object's kernel resources; safe to call again.
  void Close();
  // Called once the owner has closed us or the environment is going away.
  Owned* owner() const { return owner_; }

 protected:
  Owned() = default;
  virtual ~Owned();
  // Registers with the environment and, when given, the owner (whose JS object stays alive
  // while this one does, so an owner is never finalized under a live child).
  void Attach(Napi::Env env, Owned* owner, Napi::Object ownerObject);
  // Frees the kernel resource (fd, mapping). Runs exactly once.
  virtual void Release() = 0;
  // Every derived destructor calls this first, while its Release() is still reachable.
  void FinalizeOwned();

  AddonData* data_ = nullptr;

 private:
  void Unlink();
  Owned* owner_ = nullptr;
  std::vector<Owned*> children_;
  Napi::ObjectReference ownerRef_;
  bool closed_ = false;
};

// How a parent hands a fresh kernel object to its child's constructor. The constructor accepts
// only this (as an External), so JS can never wrap an arbitrary fd.
struct ChildInit {
  int fd;
  uint64_t a;  // class-specific: VM type, guest_memfd size, mapping offset, vCPU id
  uint64_t b;  // class-specific: guest_memfd flags, mapping length
  uint64_t c;  // class-specific: mapping address
  Owned* owner;
  Napi::Object ownerObject;
};
// Constructs the child; on failure closes init.fd (and nothing else) and rethrows.
Napi::Object NewChild(Napi::Env env, Napi::FunctionReference& ctor, ChildInit& init);
// In a child constructor: the ChildInit, or a TypeError when called from JS.
ChildInit& TakeChildInit(const Napi::CallbackInfo& info, const char* cls);

// Throws ClosedError when the object has been closed (directly or through its owner).
void EnsureOpen(Napi::Env env, const Owned& o, const char* what);

}  // namespace kg
