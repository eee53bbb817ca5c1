#include "errors.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "owned.h"

namespace kg {

namespace {

[[noreturn]] void ThrowKind(Napi::Env env, const char* kind, Napi::Object props) {
  AddonData* data = GetData(env);
  if (data == nullptr || data->errorFactory.IsEmpty()) {
    // lib/ always registers the factory; this only guards direct use of the raw addon.
    Napi::Error err = Napi::Error::New(env, props.Get("message").ToString());
    err.Value().Set("code", props.Get("code"));
    throw err;
  }
  Napi::Value made = data->errorFactory.Call({Napi::String::New(env, kind), props});
  throw Napi::Error(env, made);
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "E" + std::to_string(err);
}

}  // namespace

void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* ioctl, const std::string& args) {
  Napi::Object props = Napi::Object::New(env);
  std::string code = ErrnoName(err);
  std::string msg = code + ": " + strerror(err) + ", " + syscall;
  if (ioctl != nullptr) msg += std::string(" ") + ioctl;
  if (!args.empty()) msg += " (" + args + ")";
  props.Set("code", code);
  props.Set("errno", -err);
  props.Set("syscall", syscall);
  if (ioctl != nullptr) props.Set("ioctl", ioctl);
  props.Set("message", msg);
  ThrowKind(env, "KvmError", props);
}

void ThrowErrnoPath(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Object props = Napi::Object::New(env);
  std::string code = ErrnoName(err);
  props.Set("code", code);
  props.Set("errno", -err);
  props.Set("syscall", syscall);
  props.Set("path", path);
  props.Set("message", code + ": " + strerror(err) + ", " + syscall + " '" + path + "'");
  ThrowKind(env, "KvmError", props);
}

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void ThrowHostAccess(Napi::Env env, uint64_t offset, bool write) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("offset", FromU64(env, offset));
  props.Set("access", write ? "write" : "read");
  props.Set("message", std::string("SIGBUS: host ") + (write ? "write to" : "read of") + " guest_memfd offset " +
                           std::to_string(offset) + " (page not mappable by the host)");
  ThrowKind(env, "HostAccessError", props);
}

void ThrowBufferFault(Napi::Env env, bool known, uint64_t offset, uint64_t bufferOffset, bool write) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("offset", known ? FromU64(env, offset) : Napi::Number::New(env, -1));
  props.Set("access", write ? "write" : "read");
  props.Set("side", "buffer");
  props.Set("bufferOffset", FromU64(env, bufferOffset));
  std::string what = write ? "write to" : "read of";
  props.Set("message", known ? "SIGBUS: host " + what + " the caller's buffer, a view of guest_memfd offset " +
                                   std::to_string(offset) + " (page not mappable by the host)"
                             : "SIGBUS: host " + what + " the caller's buffer at byte " + std::to_string(bufferOffset) +
                                   " (its memory is not accessible)");
  ThrowKind(env, "HostAccessError", props);
}

void ThrowClosed(Napi::Env env, const char* what) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("message", std::string(what) + " is closed");
  props.Set("what", what);
  ThrowKind(env, "ClosedError", props);
}

void ThrowUnsupported(Napi::Env env, const char* feature, const char* why) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("feature", feature);
  props.Set("message", std::string(feature) + " is not supported: " + why);
  ThrowKind(env, "UnsupportedError", props);
}

void ThrowBusy(Napi::Env env, uint64_t errorOffset, const char* ioctl) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("errorOffset", FromU64(env, errorOffset));
  props.Set("ioctl", ioctl);
  props.Set("message", std::string("EAGAIN: ") + ioctl + ": page at offset " + std::to_string(errorOffset) +
                           " has elevated references");
  ThrowKind(env, "ConversionBusyError", props);
}

void ThrowTypeError(Napi::Env env, const char* message) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("message", message);
  ThrowKind(env, "TypeError", props);
}

void ThrowRangeError(Napi::Env env, const char* message) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("message", message);
  ThrowKind(env, "RangeError", props);
}

namespace {

// What a bad value was, for "got ..." (a number or bigint in decimal, else its type).
std::string Got(Napi::Value v) {
  if (v.IsNumber() || v.IsBigInt()) return v.ToString().Utf8Value();
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    default: return "an object";
  }
}

}  // namespace

uint64_t GetU64(Napi::Env env, Napi::Value v, const char* name) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0) {
      ThrowRangeError(env, (std::string(name) + " must be a non-negative safe integer, got " + Got(v)).c_str());
    }
    return static_cast<uint64_t>(d);
  }
  if (v.IsBigInt()) {
    int sign = 0;
    size_t words = 2;
    uint64_t w[2] = {0, 0};
    napi_status st = napi_get_value_bigint_words(env, v, &sign, &words, w);
    if (st != napi_ok || sign != 0 || words > 1) {
      ThrowRangeError(env, (std::string(name) + " must be between 0 and 2^64-1, got " + Got(v)).c_str());
    }
    return w[0];
  }
  ThrowTypeError(env, (std::string(name) + " must be a number or a bigint, got " + Got(v)).c_str());
}

Bytes GetBytes(Napi::Env env, Napi::Value v, const char* name) {
  // The data pointers napi gives for the view itself: ArrayBuffer().Data() refuses a SharedArrayBuffer.
  void* data = nullptr;
  size_t length = 0;
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t count = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, v, &type, &count, &data, nullptr, nullptr), Bytes{});
    length = v.As<Napi::TypedArray>().ByteLength();
  } else if (v.IsDataView()) {
    NAPI_THROW_IF_FAILED(env, napi_get_dataview_info(env, v, &length, &data, nullptr, nullptr), Bytes{});
  } else {
    ThrowTypeError(env, (std::string(name) + " must be a Uint8Array, Buffer or other ArrayBufferView").c_str());
  }
  return Bytes{static_cast<uint8_t*>(data), data == nullptr ? 0 : length};
}

uint32_t GetU32(Napi::Env env, Napi::Value v, const char* name) {
  uint64_t x = GetU64(env, v, name);
  if (x > 0xffffffffULL)
    ThrowRangeError(env, (std::string(name) + " must fit in 32 bits, got " + std::to_string(x)).c_str());
  return static_cast<uint32_t>(x);
}

Napi::Value FromU64(Napi::Env env, uint64_t v) {
  if (v <= 9007199254740991ULL) return Napi::Number::New(env, static_cast<double>(v));
  return Napi::BigInt::New(env, v);
}

void SetErrorFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowTypeError(env, "setErrorFactory takes a function");
  GetData(env)->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
}

}  // namespace kg
