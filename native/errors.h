// errno and the library's own failures become the typed errors of lib/errors.ts. The classes live
// in TypeScript; lib registers a factory at load time and the native side only names the kind.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace kg {

// Throws KvmError { code: 'EINVAL', errno: -22, syscall, ioctl? }. `args`, when given, is the
// call's arguments as text ("size 1000, flags 0x0"), put in the message as Node does with paths.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* ioctl = nullptr,
                             const std::string& args = std::string());
// As ThrowErrno for a call on a path (open): the error carries `path`, like Node's SystemError.
[[noreturn]] void ThrowErrnoPath(Napi::Env env, int err, const char* syscall, const std::string& path);
std::string Hex(uint64_t v);
[[noreturn]] void ThrowHostAccess(Napi::Env env, uint64_t offset, bool write);
// The fault was in the caller's own buffer (readInto's target, write's source), not in the mapping
// the call was made on: `offset` is in the guest_memfd behind that buffer when it is a view of a
// mapping of ours (`known`), else the buffer is some other file's memory and `bufferOffset` says where.
[[noreturn]] void ThrowBufferFault(Napi::Env env, bool known, uint64_t offset, uint64_t bufferOffset, bool write);
[[noreturn]] void ThrowClosed(Napi::Env env, const char* what);
[[noreturn]] void ThrowUnsupported(Napi::Env env, const char* feature, const char* why);
[[noreturn]] void ThrowBusy(Napi::Env env, uint64_t errorOffset, const char* ioctl);
[[noreturn]] void ThrowTypeError(Napi::Env env, const char* message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* message);

// A JS value (number or bigint) as an unsigned 64-bit integer, or a typed throw.
uint64_t GetU64(Napi::Env env, Napi::Value v, const char* name);
uint32_t GetU32(Napi::Env env, Napi::Value v, const char* name);
// The bytes of a TypedArray or DataView, over an ArrayBuffer or a SharedArrayBuffer alike.
struct Bytes {
  uint8_t* data;
  size_t length;
};
Bytes GetBytes(Napi::Env env, Napi::Value v, const char* name);
// A number when it fits exactly (< 2^53), else a bigint: how offsets come back to JS.
Napi::Value FromU64(Napi::Env env, uint64_t v);

void SetErrorFactory(const Napi::CallbackInfo& info);

}  // namespace kg
