#include "extent_map_binding.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "extent_map.h"

namespace kg {

namespace {

// Every page index and end is then a safe integer (query() returns doubles).
constexpr uint64_t kMaxPages = (uint64_t{1} << 53) - 1;
// Memory changes smaller than this are not worth telling V8 about.
constexpr int64_t kReportStep = 256 * 1024;

int64_t GetI64(Napi::Env env, Napi::Value v, const char* name) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740991.0) {
      ThrowRangeError(env, (std::string(name) + " must be a safe integer").c_str());
    }
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) ThrowRangeError(env, (std::string(name) + " must be between -2^63 and 2^63-1").c_str());
    return x;
  }
  ThrowTypeError(env, (std::string(name) + " must be a number or a bigint").c_str());
}

class ExtentMapObject : public Napi::ObjectWrap<ExtentMapObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ExtentMapObject(const Napi::CallbackInfo& info);
  ~ExtentMapObject() override;

 private:
  Napi::Value GetPages(const Napi::CallbackInfo& info);
  Napi::Value Assign(const Napi::CallbackInfo& info);
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info);
  Napi::Value QueryInto(const Napi::CallbackInfo& info);
  Napi::Value ValueAt(const Napi::CallbackInfo& info);
  Napi::Value FindFirst(const Napi::CallbackInfo& info);
  Napi::Value ExtentCount(const Napi::CallbackInfo& info);
  Napi::Value BytesUsed(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value CheckInvariants(const Napi::CallbackInfo& info);
  Napi::Value Depth(const Napi::CallbackInfo& info);

  // info[0], info[1] as start <= end <= pages, or a typed throw.
  void GetRange(const Napi::CallbackInfo& info, uint64_t* start, uint64_t* end);
  void ReportMemory(Napi::Env env);

  std::unique_ptr<ExtentMap> map_;
  int64_t reported_ = 0;
  std::vector<Extent> scratch_;  // queryInto's runs, kept to spare an allocation per call
};

Napi::Function ExtentMapObject::Init(Napi::Env env) {
  return DefineClass(env, "ExtentMap",
                     {
                         InstanceAccessor<&ExtentMapObject::GetPages>("pages"),
                         InstanceMethod<&ExtentMapObject::Assign>("assign"),
                         InstanceMethod<&ExtentMapObject::Add>("add"),
                         InstanceMethod<&ExtentMapObject::Query>("query"),
                         InstanceMethod<&ExtentMapObject::QueryInto>("queryInto"),
                         InstanceMethod<&ExtentMapObject::ValueAt>("valueAt"),
                         InstanceMethod<&ExtentMapObject::FindFirst>("findFirst"),
                         InstanceMethod<&ExtentMapObject::ExtentCount>("extentCount"),
                         InstanceMethod<&ExtentMapObject::BytesUsed>("bytesUsed"),
                         InstanceMethod<&ExtentMapObject::Resize>("resize"),
                         InstanceMethod<&ExtentMapObject::CheckInvariants>("checkInvariants"),
                         InstanceMethod<&ExtentMapObject::Depth>("depth"),
                     });
}

// new ExtentMap(pages, initial)
ExtentMapObject::ExtentMapObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExtentMapObject>(info) {
  Napi::Env env = info.Env();
  uint64_t pages = GetU64(env, info[0], "pages");
  if (pages > kMaxPages) ThrowRangeError(env, "pages must be at most 2^53-1");
  uint32_t initial = GetU32(env, info[1], "initial");
  map_ = std::make_unique<ExtentMap>(pages, initial);
}

ExtentMapObject::~ExtentMapObject() {
  // The raw call: a failed adjustment must not throw out of a finalizer.
  int64_t ignored;
  if (reported_ != 0) napi_adjust_external_memory(Env(), -reported_, &ignored);
}

void ExtentMapObject::ReportMemory(Napi::Env env) {
  int64_t now = static_cast<int64_t>(map_->BytesUsed());
  int64_t target = now >= kReportStep ? now : 0;
  if (std::llabs(target - reported_) < kReportStep && !(target == 0 && reported_ != 0)) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, target - reported_);
  reported_ = target;
}

void ExtentMapObject::GetRange(const Napi::CallbackInfo& info, uint64_t* start, uint64_t* end) {
  Napi::Env env = info.Env();
  *start = GetU64(env, info[0], "start");
  *end = GetU64(env, info[1], "end");
  if (*start > *end) ThrowRangeError(env, "start must not be greater than end");
  if (*end > map_->pages()) ThrowRangeError(env, "end must not be greater than the map's pages");
}

Napi::Value ExtentMapObject::GetPages(const Napi::CallbackInfo& info) { return FromU64(info.Env(), map_->pages()); }

// assign(start, end, value)
Napi::Value ExtentMapObject::Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start, end;
  GetRange(info, &start, &end);
  uint32_t value = GetU32(env, info[2], "value");
  if (map_->Assign(start, end, value) != MapStatus::kOk) ThrowRangeError(env, "range is outside the map");
  ReportMemory(env);
  return env.Undefined();
}

// add(start, end, delta): all or nothing.
Napi::Value ExtentMapObject::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start, end;
  GetRange(info, &start, &end);
  int64_t delta = GetI64(env, info[2], "delta");
  switch (map_->Add(start, end, delta)) {
    case MapStatus::kOk: break;
    case MapStatus::kUnderflow: ThrowRangeError(env, "add would take a value below 0; the map is unchanged");
    case MapStatus::kOverflow: ThrowRangeError(env, "add would take a value above 2^32-1; the map is unchanged");
    case MapStatus::kBadRange: ThrowRangeError(env, "range is outside the map");
  }
  ReportMemory(env);
  return env.Undefined();
}

// query(start, end) -> Float64Array [start0, end0, value0, start1, ...]
Napi::Value ExtentMapObject::Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start, end;
  GetRange(info, &start, &end);
  std::vector<Extent> runs;
  map_->Query(start, end, &runs);
  Napi::Float64Array out = Napi::Float64Array::New(env, runs.size() * 3);
  double* p = out.Data();
  for (const Extent& e : runs) {
    *p++ = static_cast<double>(e.start);
    *p++ = static_cast<double>(e.end);
    *p++ = static_cast<double>(e.value);
  }
  return out;
}

// queryInto(start, end, out: Float64Array) -> runs written as [start, end, value] triples; when
// out is too short, nothing is written and the result is minus the number of runs (the caller
// grows its buffer and asks again). The hot path of states(): no allocation per call.
Napi::Value ExtentMapObject::QueryInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start, end;
  GetRange(info, &start, &end);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowTypeError(env, "out must be a Float64Array");
  }
  Napi::Float64Array out = info[2].As<Napi::Float64Array>();
  scratch_.clear();
  map_->Query(start, end, &scratch_);
  size_t n = scratch_.size();
  if (n * 3 > out.ElementLength()) return Napi::Number::New(env, -static_cast<double>(n));
  double* p = out.Data();
  for (const Extent& e : scratch_) {
    *p++ = static_cast<double>(e.start);
    *p++ = static_cast<double>(e.end);
    *p++ = static_cast<double>(e.value);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// valueAt(page)
Napi::Value ExtentMapObject::ValueAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t page = GetU64(env, info[0], "page");
  uint32_t value;
  if (map_->ValueAt(page, &value) != MapStatus::kOk) ThrowRangeError(env, "page must be less than the map's pages");
  return Napi::Number::New(env, value);
}

// findFirst(start, end, value, equal) -> first page in [start, end) whose value is == (or !=) value, or -1
Napi::Value ExtentMapObject::FindFirst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t start, end;
  GetRange(info, &start, &end);
  uint32_t value = GetU32(env, info[2], "value");
  if (!info[3].IsBoolean()) ThrowTypeError(env, "equal must be a boolean");
  bool found = false;
  uint64_t page = 0;
  map_->FindFirst(start, end, value, info[3].As<Napi::Boolean>().Value(), &found, &page);
  return Napi::Number::New(env, found ? static_cast<double>(page) : -1.0);
}

Napi::Value ExtentMapObject::ExtentCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(map_->ExtentCount()));
}

Napi::Value ExtentMapObject::BytesUsed(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(map_->BytesUsed()));
}

// resize(pages, fill): new pages take fill.
Napi::Value ExtentMapObject::Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pages = GetU64(env, info[0], "pages");
  if (pages > kMaxPages) ThrowRangeError(env, "pages must be at most 2^53-1");
  uint32_t fill = GetU32(env, info[1], "fill");
  map_->Resize(pages, fill);
  ReportMemory(env);
  return env.Undefined();
}

// checkInvariants() -> '' when the tree is sound, else what is wrong (linear time; for tests).
Napi::Value ExtentMapObject::CheckInvariants(const Napi::CallbackInfo& info) {
  std::string why;
  map_->CheckInvariants(&why);
  return Napi::String::New(info.Env(), why);
}

// depth() -> levels of the tree, 1 when the root is a leaf.
Napi::Value ExtentMapObject::Depth(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), map_->Depth());
}

}  // namespace

void InitExtentMap(Napi::Env env, Napi::Object exports) { exports.Set("ExtentMap", ExtentMapObject::Init(env)); }

}  // namespace kg
