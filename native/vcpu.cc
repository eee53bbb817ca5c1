#include "vcpu.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <thread>

#include "cpu_config.h"
#include "errors.h"
#include "fault_inject.h"
#include "guest_regs.h"
#include "guest_runner.h"
#include "kvm.h"
#include "uapi.h"
#include "vm.h"

namespace kg {

namespace {

void CallJs(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;
  Runner* r = static_cast<std::shared_ptr<Runner>*>(context)->get();
  if (r->owner != nullptr) r->owner->Settle(Napi::Env(env));
}

void TsfnFinalize(napi_env, void* data, void*) {
  auto* holder = static_cast<std::shared_ptr<Runner>*>(data);
  (*holder)->tsfnGone = true;
  delete holder;
}

// Registered after the threadsafe function, so it runs before Node tears that down.
void RunnerCleanup(void* arg) {
  auto* r = static_cast<Runner*>(arg);
  r->teardown = true;
  StopRunner(r);
}

Napi::Value ErrnoErrorValue(Napi::Env env, int err) {
  try {
    ThrowErrno(env, err, "ioctl", "KVM_RUN");
  } catch (const Napi::Error& e) {
    return e.Value();
  }
}

Napi::Value ClosedErrorValue(Napi::Env env) {
  try {
    ThrowClosed(env, "Vcpu");
  } catch (const Napi::Error& e) {
    return e.Value();
  }
}

// True once the environment is being torn down (worker terminate, process exit): calls that may
// run JS are refused then, so a harmless property set tells.
bool EnvStopping(napi_env env) {
  napi_value obj;
  napi_value yes;
  if (napi_create_object(env, &obj) != napi_ok || napi_get_boolean(env, true, &yes) != napi_ok) return true;
  napi_status st = napi_set_named_property(env, obj, "probe", yes);
  return st == napi_pending_exception || st == napi_cannot_run_js;
}

Napi::Value RunResult(Napi::Env env, long res) {
  if (res < 0) ThrowErrno(env, static_cast<int>(-res), "ioctl", "KVM_RUN");
  return Napi::Number::New(env, static_cast<double>(res));
}

}  // namespace

Napi::Function VcpuObject::Init(Napi::Env env) {
  return DefineClass(env, "NativeVcpu",
                     {
                         InstanceAccessor<&VcpuObject::GetId>("id"),
                         InstanceAccessor<&VcpuObject::GetFd>("fd"),
                         InstanceMethod<&VcpuObject::Area>("area"),
                         InstanceMethod<&VcpuObject::GetRegs>("getRegs"),
                         InstanceMethod<&VcpuObject::SetRegs>("setRegs"),
                         InstanceMethod<&VcpuObject::GetSregs>("getSregs"),
                         InstanceMethod<&VcpuObject::SetSregs>("setSregs"),
                         InstanceMethod<&VcpuObject::RunSync>("runSync"),
                         InstanceMethod<&VcpuObject::Run>("run"),
                         InstanceMethod<&VcpuObject::Kick>("kick"),
                         InstanceMethod<&VcpuObject::SetRunInline>("setRunInline"),
                         InstanceMethod<&VcpuObject::EnableCapJs>("enableCap"),
                         InstanceMethod<&VcpuObject::GetCpuid>("getCpuid"),
                         InstanceMethod<&VcpuObject::SetCpuid>("setCpuid"),
                         InstanceMethod<&VcpuObject::GetMsrsJs>("getMsrs"),
                         InstanceMethod<&VcpuObject::SetMsrsJs>("setMsrs"),
                         InstanceMethod<&VcpuObject::PreFaultMemoryJs>("preFaultMemory"),
                         InstanceMethod<&VcpuObject::CloseJs>("close"),
                         InstanceAccessor<&VcpuObject::GetLayout>("layout"),
                     });
}

// ChildInit: fd = vCPU fd, a = id, b = kvm_run mmap size, c = the /dev/kvm fd (for CPUID).
VcpuObject::VcpuObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VcpuObject>(info) {
  Napi::Env env = info.Env();
  ChildInit& init = TakeChildInit(info, "Vcpu");
  TagObject(env, info.This().As<Napi::Object>(), Kind::Vcpu);
  env_ = env;
  id_ = static_cast<uint32_t>(init.a);
  runSize_ = static_cast<size_t>(init.b);
  SetSupportedCpuid(env, static_cast<int>(init.c), init.fd);
  void* p = mmap(nullptr, runSize_, PROT_READ | PROT_WRITE, MAP_SHARED, init.fd, 0);
  if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  run_ = static_cast<kvm_run*>(p);
  runner_ = std::make_shared<Runner>();
  runner_->fd = init.fd;
  runner_->run = run_;
  runner_->owner = this;
  Attach(env, init.owner, init.ownerObject);
  fd_ = init.fd;
  init.fd = -1;
}

VcpuObject::~VcpuObject() { FinalizeOwned(); }

void VcpuObject::Release() {
  if (runner_) {
    Runner* r = runner_.get();
    StopRunner(r);
    napi_deferred d = r->deferred;
    r->deferred = nullptr;
    r->owner = nullptr;
    if (r->started && !r->teardown) {
      // Closed while a run was pending: the promise settles now, with ClosedError.
      if (d != nullptr) {
        try {
          Napi::HandleScope scope(env_);
          napi_reject_deferred(env_, d, ClosedErrorValue(Napi::Env(env_)));
        } catch (...) {
        }
        Unref();
      }
      if (!r->tsfnGone) napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
      napi_remove_env_cleanup_hook(env_, RunnerCleanup, r);
    }
    runner_.reset();
  }
  if (!area_.IsEmpty()) {
    if (!(data_ != nullptr && data_->tearingDown)) {
      try {
        Napi::ArrayBuffer ab = area_.Value();
        if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      } catch (...) {
      }
      area_.Reset();
    } else {
      area_.SuppressDestruct();
    }
  }
  if (timerReady_) timer_delete(timer_);
  timerReady_ = false;
  if (run_ != nullptr) munmap(run_, runSize_);
  run_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Napi::Value VcpuObject::GetId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }
Napi::Value VcpuObject::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// The kvm_run mmap as an ArrayBuffer (zero-copy); detached when the vCPU closes.
Napi::Value VcpuObject::Area(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  if (area_.IsEmpty()) {
    area_ = Napi::Persistent(Napi::ArrayBuffer::New(env, run_, runSize_));
  }
  return area_.Value();
}

static uint64_t* RegWords(Napi::Env env, Napi::Value v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array ||
      v.As<Napi::TypedArray>().ElementLength() != kRegWords) {
    ThrowTypeError(env, "regs must be a BigUint64Array of 18 words");
  }
  return v.As<Napi::TypedArrayOf<uint64_t>>().Data();
}

Napi::Value VcpuObject::GetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  uint64_t* out = RegWords(env, info[0]);
  kvm_regs regs;
  if (IoctlRetry(fd_, KVM_GET_REGS, &regs) < 0) ThrowErrno(env, errno, "ioctl", "KVM_GET_REGS");
  memcpy(out, &regs, sizeof(regs));
  return env.Undefined();
}

Napi::Value VcpuObject::SetRegs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  uint64_t* in = RegWords(env, info[0]);
  kvm_regs regs;
  memcpy(&regs, in, sizeof(regs));
  if (IoctlRetry(fd_, KVM_SET_REGS, &regs) < 0) ThrowErrno(env, errno, "ioctl", "KVM_SET_REGS");
  return env.Undefined();
}

Napi::Value VcpuObject::GetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  kvm_sregs s;
  if (IoctlRetry(fd_, KVM_GET_SREGS, &s) < 0) ThrowErrno(env, errno, "ioctl", "KVM_GET_SREGS");
  return SregsToJs(env, s);
}

Napi::Value VcpuObject::SetSregs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  if (!info[0].IsObject()) ThrowTypeError(env, "sregs must be an object");
  kvm_sregs s;
  if (IoctlRetry(fd_, KVM_GET_SREGS, &s) < 0) ThrowErrno(env, errno, "ioctl", "KVM_GET_SREGS");
  SregsFromJs(env, info[0].As<Napi::Object>(), s);
  // Reading the object can run a script's getters, which may have closed or started this vCPU.
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  if (IoctlRetry(fd_, KVM_SET_SREGS, &s) < 0) ThrowErrno(env, errno, "ioctl", "KVM_SET_SREGS");
  return env.Undefined();
}

void VcpuObject::EnsureIdle(Napi::Env env) {
  if (runner_->state.load() != kIdle) {
    Napi::Error e = Napi::Error::New(env, "Vcpu " + std::to_string(id_) + " is running: one run at a time per vCPU");
    e.Value().Set("code", "ERR_KVM_VCPU_BUSY");
    throw e;
  }
}

// runSync(): KVM_RUN on this thread until the vCPU exits. A watch timer interrupts it every
// kWatchNs of guest time so that a worker being terminated (or a process exiting) is noticed:
// a guest that never exits must not hold its thread, and with it the process, forever.
Napi::Value VcpuObject::RunSync(const Napi::CallbackInfo& info) {
  constexpr int64_t kWatchNs = 100000000;
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  if (!timerReady_) CreateTimer(env);
  for (;;) {
    ArmWithin(kWatchNs, false);
    Napi::Value result;
    if (RunHere(env, &result)) return result;
    if (NowNs() >= timerExpiry_) timerExpiry_ = 0;
    if (EnvStopping(env)) ThrowClosed(env, "Vcpu");
  }
}

// Keeps the one-shot timer due within the window: between a tenth of it and all of it from now.
// Arming costs microseconds here (nested virtualization), so one arming covers many runs. With
// `bound`, a later expiry (runSync's longer watch) is pulled in to the window too.
void VcpuObject::ArmWithin(int64_t windowNs, bool bound) {
  int64_t now = NowNs();
  int64_t left = timerExpiry_ - now;
  if (left >= windowNs / 10 && !(bound && left > windowNs)) return;
  itimerspec arm{};
  arm.it_value.tv_sec = windowNs / 1000000000;
  arm.it_value.tv_nsec = windowNs % 1000000000;
  timer_settime(timer_, 0, &arm, nullptr);
  timerExpiry_ = now + windowNs;
}

// One KVM_RUN on this thread. True with *out set when it ended in a result (an exit, a kick's
// 'intr', or a thrown error); false when a signal (the timer's or another) interrupted it.
bool VcpuObject::RunHere(Napi::Env env, Napi::Value* out) {
  long r = RunStep(fd_, run_, runner_->kicked);
  if (r == kRunInterrupted) return false;
  *out = RunResult(env, r);
  return true;
}

void VcpuObject::StartRunner(Napi::Env env) {
  const std::shared_ptr<Runner>& r = runner_;
  auto* holder = new std::shared_ptr<Runner>(r);
  napi_status st = napi_create_threadsafe_function(env, nullptr, nullptr, Napi::String::New(env, "kvm-gmem:vcpu"), 0, 1,
                                                   holder, TsfnFinalize, holder, CallJs, &r->tsfn);
  if (st != napi_ok) {
    delete holder;
    NAPI_THROW_IF_FAILED_VOID(env, st);
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  napi_add_env_cleanup_hook(env, RunnerCleanup, r.get());
  KickSignal();
  try {
    r->thread = std::thread(ThreadMain, r.get());
  } catch (const std::system_error& e) {
    ThrowErrno(env, e.code().value(), "pthread_create");
  }
  r->tid = r->thread.native_handle();
  r->started = true;
}

// run(): KVM_RUN starts on this thread under a one-shot timer; an exit before it fires comes back
// at once as the exit reason (no thread handoff: the cost of runSync). When the timer fires first,
// the run moves to the vCPU's own thread and a Promise is returned, so the event loop is held for
// at most the window.
Napi::Value VcpuObject::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  EnsureIdle(env);
  Runner* r = runner_.get();
  if (inlineNs_ > 0) {
    if (!timerReady_) CreateTimer(env);
    // Each run starts with between a tenth of the window and the whole window left.
    ArmWithin(inlineNs_, true);
    Napi::Value result;
    if (RunHere(env, &result)) return result;
    // The window passed (or another signal came): the vCPU thread carries on from here.
    timerExpiry_ = 0;
  }
  if (!r->started) StartRunner(env);
  napi_value promise;
  napi_status st = napi_create_promise(env, &r->deferred, &promise);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  r->state.store(kRunning);
  Ref();
  napi_ref_threadsafe_function(env, r->tsfn);
  r->req.fetch_add(1);
  Futex(&r->req, FUTEX_WAKE, 1);
  return Napi::Value(env, promise);
}

// A timer that signals this (the JS) thread with the kick signal, which must not be blocked here.
void VcpuObject::CreateTimer(Napi::Env env) {
  int sig = KickSignal();
  if (sig == 0) ThrowErrno(env, EAGAIN, "sigaction");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = sig;
  ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) ThrowErrno(env, errno, "timer_create");
  timerReady_ = true;
}

void VcpuObject::Settle(Napi::Env env) {
  Runner* r = runner_.get();
  if (r == nullptr || r->deferred == nullptr || r->state.load(std::memory_order_acquire) != kDone) return;
  napi_deferred d = r->deferred;
  r->deferred = nullptr;
  long res = r->result;
  r->state.store(kIdle);
  napi_unref_threadsafe_function(env, r->tsfn);
  Napi::HandleScope scope(env);
  if (res >= 0) {
    napi_resolve_deferred(env, d, Napi::Number::New(env, static_cast<double>(res)));
  } else {
    napi_reject_deferred(env, d, ErrnoErrorValue(env, static_cast<int>(-res)));
  }
  Unref();
}

// The current run (or, when none is in flight, the next one) comes back as KVM_EXIT_INTR.
Napi::Value VcpuObject::Kick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  KickRunner(runner_.get());
  return env.Undefined();
}

// setRunInline(ns): how long run() keeps KVM_RUN on the JS thread before moving it to the vCPU
// thread; 0 sends every run() to the vCPU thread.
Napi::Value VcpuObject::SetRunInline(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env, *this, "Vcpu");
  uint64_t ns = GetU64(env, info[0], "ns");
  if (ns > 10000000000ULL) ThrowRangeError(env, "the inline window must be at most 10 s");
  inlineNs_ = static_cast<int64_t>(ns);
  timerExpiry_ = 0;
  return env.Undefined();
}

Napi::Value VcpuObject::GetLayout(const Napi::CallbackInfo& info) { return VcpuLayout(info.Env()); }

Napi::Value VcpuObject::CloseJs(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

Napi::Object VcpuLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const size_t u = offsetof(kvm_run, io);
#define OFF(name, value) o.Set(name, Napi::Number::New(env, static_cast<double>(value)))
  OFF("immediateExit", offsetof(kvm_run, immediate_exit));
  OFF("exitReason", offsetof(kvm_run, exit_reason));
  OFF("ioDirection", u + offsetof(decltype(kvm_run::io), direction));
  OFF("ioSize", u + offsetof(decltype(kvm_run::io), size));
  OFF("ioPort", u + offsetof(decltype(kvm_run::io), port));
  OFF("ioCount", u + offsetof(decltype(kvm_run::io), count));
  OFF("ioDataOffset", u + offsetof(decltype(kvm_run::io), data_offset));
  OFF("mmioPhysAddr", offsetof(kvm_run, mmio.phys_addr));
  OFF("mmioData", offsetof(kvm_run, mmio.data));
  OFF("mmioLen", offsetof(kvm_run, mmio.len));
  OFF("mmioIsWrite", offsetof(kvm_run, mmio.is_write));
  OFF("failEntryReason", offsetof(kvm_run, fail_entry.hardware_entry_failure_reason));
  OFF("failEntryCpu", offsetof(kvm_run, fail_entry.cpu));
  OFF("internalSuberror", offsetof(kvm_run, internal.suberror));
  OFF("internalNdata", offsetof(kvm_run, internal.ndata));
  OFF("internalData", offsetof(kvm_run, internal.data));
  OFF("hwExitReason", offsetof(kvm_run, hw.hardware_exit_reason));
  OFF("memoryFaultFlags", u + offsetof(kg_run_memory_fault, flags));
  OFF("memoryFaultGpa", u + offsetof(kg_run_memory_fault, gpa));
  OFF("memoryFaultSize", u + offsetof(kg_run_memory_fault, size));
  OFF("hypercallNr", offsetof(kvm_run, hypercall.nr));
  OFF("hypercallArgs", offsetof(kvm_run, hypercall.args));
  OFF("hypercallRet", offsetof(kvm_run, hypercall.ret));
  OFF("hypercallLongMode", offsetof(kvm_run, hypercall.longmode));
#undef OFF
  o.Set("memoryFaultFlagPrivate", Napi::Number::New(env, static_cast<double>(KVM_MEMORY_EXIT_FLAG_PRIVATE)));
  o.Set("ioIn", Napi::Number::New(env, KVM_EXIT_IO_IN));
  return o;
}

// The configuration ioctls (native/cpu_config.cc): open and idle first, as every vCPU call.
Napi::Value VcpuObject::EnableCapJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  return EnableCap(info, fd_);
}

Napi::Value VcpuObject::GetCpuid(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  return GetCpuidWords(info.Env(), fd_, false);
}

Napi::Value VcpuObject::SetCpuid(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  SetCpuidWords(info.Env(), fd_, info[0]);
  return info.Env().Undefined();
}

Napi::Value VcpuObject::GetMsrsJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  return GetMsrs(info, fd_);
}

Napi::Value VcpuObject::SetMsrsJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  return SetMsrs(info, fd_);
}

Napi::Value VcpuObject::PreFaultMemoryJs(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env(), *this, "Vcpu");
  EnsureIdle(info.Env());
  return PreFaultMemory(info, fd_);
}

Napi::Function InitVcpu(Napi::Env env) { return VcpuObject::Init(env); }

Napi::Value CreateVcpuFor(Napi::Env env, VmObject* vm, Napi::Object vmObject, uint32_t id) {
  // A VM is only ever made by a Kvm object, so its owner is one.
  auto* kvm = static_cast<KvmObject*>(vm->owner());
  if (kvm == nullptr || kvm->closed()) ThrowClosed(env, "Kvm");
  long size = IoctlRetry(kvm->fd(), KVM_GET_VCPU_MMAP_SIZE, 0UL);
  if (size < 0) ThrowErrno(env, errno, "ioctl", "KVM_GET_VCPU_MMAP_SIZE");
  long fd = IoctlRetry(vm->fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) {
    int err = errno;
    ThrowErrno(env, err, "ioctl", "KVM_CREATE_VCPU", "id " + std::to_string(id));
  }
  ChildInit init{static_cast<int>(fd), id, static_cast<uint64_t>(size), static_cast<uint64_t>(kvm->fd()), vm, vmObject};
  return NewChild(env, GetData(env)->vcpuCtor, init);
}

}  // namespace kg
