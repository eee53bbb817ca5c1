#include "guest_regs.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

#include "errors.h"
#include "kvm.h"
#include "uapi.h"

namespace kg {

namespace {

Napi::Object SegmentToJs(Napi::Env env, const kvm_segment& g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(g.base)));
  o.Set("limit", Napi::Number::New(env, g.limit));
  o.Set("selector", Napi::Number::New(env, g.selector));
  o.Set("type", Napi::Number::New(env, g.type));
  o.Set("present", Napi::Number::New(env, g.present));
  o.Set("dpl", Napi::Number::New(env, g.dpl));
  o.Set("db", Napi::Number::New(env, g.db));
  o.Set("s", Napi::Number::New(env, g.s));
  o.Set("l", Napi::Number::New(env, g.l));
  o.Set("g", Napi::Number::New(env, g.g));
  o.Set("avl", Napi::Number::New(env, g.avl));
  o.Set("unusable", Napi::Number::New(env, g.unusable));
  return o;
}

template <typename T>
void Field(Napi::Env env, Napi::Object o, const char* name, T& out, uint64_t max) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return;
  uint64_t x = GetU64(env, v, name);
  if (x > max) ThrowRangeError(env, (std::string(name) + " is out of range").c_str());
  out = static_cast<T>(x);
}

void SegmentFromJs(Napi::Env env, Napi::Object parent, const char* name, kvm_segment& g) {
  Napi::Value v = parent.Get(name);
  if (v.IsUndefined()) return;
  if (!v.IsObject()) ThrowTypeError(env, (std::string(name) + " must be an object").c_str());
  Napi::Object o = v.As<Napi::Object>();
  Field(env, o, "base", g.base, UINT64_MAX);
  Field(env, o, "limit", g.limit, UINT32_MAX);
  Field(env, o, "selector", g.selector, 0xffff);
  Field(env, o, "type", g.type, 0xff);
  Field(env, o, "present", g.present, 0xff);
  Field(env, o, "dpl", g.dpl, 0xff);
  Field(env, o, "db", g.db, 0xff);
  Field(env, o, "s", g.s, 0xff);
  Field(env, o, "l", g.l, 0xff);
  Field(env, o, "g", g.g, 0xff);
  Field(env, o, "avl", g.avl, 0xff);
  Field(env, o, "unusable", g.unusable, 0xff);
}

void DtableFromJs(Napi::Env env, Napi::Object parent, const char* name, kvm_dtable& t) {
  Napi::Value v = parent.Get(name);
  if (v.IsUndefined()) return;
  if (!v.IsObject()) ThrowTypeError(env, (std::string(name) + " must be an object").c_str());
  Field(env, v.As<Napi::Object>(), "base", t.base, UINT64_MAX);
  Field(env, v.As<Napi::Object>(), "limit", t.limit, 0xffff);
}

Napi::Object DtableToJs(Napi::Env env, const kvm_dtable& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(t.base)));
  o.Set("limit", Napi::Number::New(env, t.limit));
  return o;
}

}  // namespace

Napi::Object SregsToJs(Napi::Env env, const kvm_sregs& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cs", SegmentToJs(env, s.cs));
  o.Set("ds", SegmentToJs(env, s.ds));
  o.Set("es", SegmentToJs(env, s.es));
  o.Set("fs", SegmentToJs(env, s.fs));
  o.Set("gs", SegmentToJs(env, s.gs));
  o.Set("ss", SegmentToJs(env, s.ss));
  o.Set("tr", SegmentToJs(env, s.tr));
  o.Set("ldt", SegmentToJs(env, s.ldt));
  o.Set("gdt", DtableToJs(env, s.gdt));
  o.Set("idt", DtableToJs(env, s.idt));
  o.Set("cr0", Napi::BigInt::New(env, static_cast<uint64_t>(s.cr0)));
  o.Set("cr2", Napi::BigInt::New(env, static_cast<uint64_t>(s.cr2)));
  o.Set("cr3", Napi::BigInt::New(env, static_cast<uint64_t>(s.cr3)));
  o.Set("cr4", Napi::BigInt::New(env, static_cast<uint64_t>(s.cr4)));
  o.Set("cr8", Napi::BigInt::New(env, static_cast<uint64_t>(s.cr8)));
  o.Set("efer", Napi::BigInt::New(env, static_cast<uint64_t>(s.efer)));
  o.Set("apicBase", Napi::BigInt::New(env, static_cast<uint64_t>(s.apic_base)));
  return o;
}

void SregsFromJs(Napi::Env env, Napi::Object o, kvm_sregs& s) {
  SegmentFromJs(env, o, "cs", s.cs);
  SegmentFromJs(env, o, "ds", s.ds);
  SegmentFromJs(env, o, "es", s.es);
  SegmentFromJs(env, o, "fs", s.fs);
  SegmentFromJs(env, o, "gs", s.gs);
  SegmentFromJs(env, o, "ss", s.ss);
  SegmentFromJs(env, o, "tr", s.tr);
  SegmentFromJs(env, o, "ldt", s.ldt);
  DtableFromJs(env, o, "gdt", s.gdt);
  DtableFromJs(env, o, "idt", s.idt);
  Field(env, o, "cr0", s.cr0, UINT64_MAX);
  Field(env, o, "cr2", s.cr2, UINT64_MAX);
  Field(env, o, "cr3", s.cr3, UINT64_MAX);
  Field(env, o, "cr4", s.cr4, UINT64_MAX);
  Field(env, o, "cr8", s.cr8, UINT64_MAX);
  Field(env, o, "efer", s.efer, UINT64_MAX);
  Field(env, o, "apicBase", s.apic_base, UINT64_MAX);
}

void SetSupportedCpuid(Napi::Env env, int kvmFd, int vcpuFd) {
  // The entry count is unknown up front: grow until the kernel stops answering E2BIG.
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    size_t bytes = sizeof(kg_cpuid2_header) + n * sizeof(kvm_cpuid_entry2);
    std::unique_ptr<kg_cpuid2_header, decltype(&free)> c(static_cast<kg_cpuid2_header*>(calloc(1, bytes)), &free);
    if (!c) ThrowErrno(env, ENOMEM, "calloc");
    c->nent = n;
    if (IoctlRetry(kvmFd, KG_GET_SUPPORTED_CPUID, c.get()) < 0) {
      if (errno == E2BIG) continue;
      ThrowErrno(env, errno, "ioctl", "KVM_GET_SUPPORTED_CPUID");
    }
    if (IoctlRetry(vcpuFd, KG_SET_CPUID2, c.get()) < 0) ThrowErrno(env, errno, "ioctl", "KVM_SET_CPUID2");
    return;
  }
  ThrowErrno(env, E2BIG, "ioctl", "KVM_GET_SUPPORTED_CPUID");
}

}  // namespace kg
