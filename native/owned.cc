#include "owned.h"

#include <unistd.h>

#include <algorithm>
#include <string>

#include "errors.h"

namespace kg {

const napi_type_tag kTags[5] = {
    {0x6b766d2d676d656dULL, 0x0000000000000001ULL}, {0x6b766d2d676d656dULL, 0x0000000000000002ULL},
    {0x6b766d2d676d656dULL, 0x0000000000000003ULL}, {0x6b766d2d676d656dULL, 0x0000000000000004ULL},
    {0x6b766d2d676d656dULL, 0x0000000000000005ULL},
};

static const napi_type_tag& TagFor(Kind kind) {
  return kTags[static_cast<uint32_t>(kind) - static_cast<uint32_t>(Kind::Kvm)];
}

void TagObject(Napi::Env env, Napi::Object obj, Kind kind) {
  napi_status st = napi_type_tag_object(env, obj, &TagFor(kind));
  NAPI_THROW_IF_FAILED_VOID(env, st);
}

bool HasTag(Napi::Env env, Napi::Value value, Kind kind) {
  if (!value.IsObject()) return false;
  bool result = false;
  napi_status st = napi_check_object_type_tag(env, value, &TagFor(kind), &result);
  return st == napi_ok && result;
}

AddonData* GetData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

void Owned::Attach(Napi::Env env, Owned* owner, Napi::Object ownerObject) {
  data_ = GetData(env);
  data_->live.insert(this);
  if (owner != nullptr) {
    owner_ = owner;
    owner->children_.push_back(this);
    ownerRef_ = Napi::Persistent(ownerObject);
  }
}

void Owned::Unlink() {
  if (owner_ != nullptr) {
    auto& siblings = owner_->children_;
    siblings.erase(std::remove(siblings.begin(), siblings.end(), this), siblings.end());
    owner_ = nullptr;
  }
  // The owner no longer needs to outlive us once we are closed.
  if (!ownerRef_.IsEmpty() && !(data_ != nullptr && data_->tearingDown)) ownerRef_.Reset();
}

void Owned::Close() {
  if (closed_) return;
  closed_ = true;
  // Children unlink themselves from children_ as they close.
  while (!children_.empty()) children_.back()->Close();
  Release();
  Unlink();
}

void Owned::FinalizeOwned() {
  Close();
  if (data_ != nullptr) data_->live.erase(this);
}

Owned::~Owned() {
  // During teardown the references were already dropped by the cleanup hook.
  if (!ownerRef_.IsEmpty()) ownerRef_.SuppressDestruct();
}

Napi::Object NewChild(Napi::Env env, Napi::FunctionReference& ctor, ChildInit& init) {
  try {
    return ctor.New({Napi::External<ChildInit>::New(env, &init)});
  } catch (...) {
    if (init.fd >= 0) close(init.fd);
    throw;
  }
}

ChildInit& TakeChildInit(const Napi::CallbackInfo& info, const char* cls) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    ThrowTypeError(info.Env(), (std::string(cls) + " is created by its owner, not with new").c_str());
  }
  return *info[0].As<Napi::External<ChildInit>>().Data();
}

void EnsureOpen(Napi::Env env, const Owned& o, const char* what) {
  if (o.closed()) ThrowClosed(env, what);
}

}  // namespace kg
