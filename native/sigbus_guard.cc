#include "sigbus_guard.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace kg {

namespace {

constexpr uintptr_t kPage = 4096;

// initial-exec TLS: the handler must not call into the dynamic TLS allocator.
__attribute__((tls_model("initial-exec"))) thread_local sigjmp_buf* volatile tlJump = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local volatile uintptr_t tlFault = 0;

// The action that was in place before ours: the handler reads it on any thread while a re-assert
// (GuardedCopy, on any thread) may replace it. A seqlock: writers hold gWriteMutex and block SIGBUS
// on their own thread while writing, so no reader ever waits on an interrupted writer.
std::atomic<unsigned> gPrevSeq{0};
std::atomic<uintptr_t> gPrevFn{0};  // sa_sigaction or sa_handler (SIG_DFL 0, SIG_IGN 1)
std::atomic<int> gPrevFlags{0};
std::mutex gWriteMutex;

// Set while this thread runs the previous handler: one that chains back to us ends there.
__attribute__((tls_model("initial-exec"))) thread_local volatile int tlChaining = 0;

void OnSigbus(int sig, siginfo_t* info, void* ctx);

struct sigaction OurAction() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnSigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  return sa;
}

bool IsOurs(const struct sigaction& a) { return (a.sa_flags & SA_SIGINFO) && a.sa_sigaction == OnSigbus; }

void ReadPrevious(uintptr_t* fn, int* flags) {
  for (;;) {
    unsigned s = gPrevSeq.load(std::memory_order_acquire);
    if (s & 1) continue;
    *fn = gPrevFn.load(std::memory_order_relaxed);
    *flags = gPrevFlags.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (gPrevSeq.load(std::memory_order_relaxed) == s) return;
  }
}

// Caller holds gWriteMutex with SIGBUS blocked on this thread.
void WritePrevious(const struct sigaction& a) {
  uintptr_t fn = (a.sa_flags & SA_SIGINFO) ? reinterpret_cast<uintptr_t>(a.sa_sigaction)
                                           : reinterpret_cast<uintptr_t>(a.sa_handler);
  unsigned s = gPrevSeq.load(std::memory_order_relaxed);
  gPrevSeq.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  gPrevFn.store(fn, std::memory_order_relaxed);
  gPrevFlags.store(a.sa_flags, std::memory_order_relaxed);
  gPrevSeq.store(s + 2, std::memory_order_release);
}

// Puts our handler on top unless it is there already. Whatever replaced it (libuv's, for a
// process.on('SIGBUS') listener, or SIG_DFL when the last listener went) becomes the chain target.
bool Assert() {
  struct sigaction cur;
  if (sigaction(SIGBUS, nullptr, &cur) != 0) return false;
  if (IsOurs(cur)) return true;
  std::lock_guard<std::mutex> lock(gWriteMutex);
  sigset_t bus, old;
  sigemptyset(&bus);
  sigaddset(&bus, SIGBUS);
  pthread_sigmask(SIG_BLOCK, &bus, &old);
  bool ok = true;
  // Recorded before ours goes in: until then the handler in force is `cur` itself.
  if (sigaction(SIGBUS, nullptr, &cur) != 0) {
    ok = false;
  } else if (!IsOurs(cur)) {
    WritePrevious(cur);
    struct sigaction ours = OurAction();
    struct sigaction replaced;
    if (sigaction(SIGBUS, &ours, &replaced) != 0) {
      ok = false;
    } else if (!IsOurs(replaced) && (replaced.sa_handler != cur.sa_handler || replaced.sa_flags != cur.sa_flags)) {
      WritePrevious(replaced);  // someone else's sigaction came in between
    }
  }
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return ok;
}

// A SIGBUS that is not a fault inside a guarded copy: what would have happened without us.
void Chain(int sig, siginfo_t* info, void* ctx) {
  // si_code > 0: the kernel raised it for an access of this thread. <= 0: kill, tgkill, sigqueue.
  bool fault = info != nullptr && info->si_code > 0;
  uintptr_t fn;
  int flags;
  ReadPrevious(&fn, &flags);
  if (tlChaining) fn = reinterpret_cast<uintptr_t>(SIG_DFL);
  if (fn != reinterpret_cast<uintptr_t>(SIG_DFL) && fn != reinterpret_cast<uintptr_t>(SIG_IGN)) {
    tlChaining = 1;
    if (flags & SA_SIGINFO) {
      reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, ctx);
    } else {
      reinterpret_cast<void (*)(int)>(fn)(sig);
    }
    tlChaining = 0;
    return;
  }
  if (fn == reinterpret_cast<uintptr_t>(SIG_IGN) && !fault) return;
  // Default action (the kernel does not let a fault be ignored either): the process dies of it.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
  // A fault: returning re-executes the access, which now kills (the core shows the access). Should
  // it succeed this time (the page turned shared meanwhile), the next guarded copy re-asserts us.
  if (fault) return;
  // From outside: die of it now. Still here (init of a PID namespace ignores it): guard again.
  sigset_t bus;
  sigemptyset(&bus);
  sigaddset(&bus, SIGBUS);
  pthread_sigmask(SIG_UNBLOCK, &bus, nullptr);
  raise(SIGBUS);
  struct sigaction ours = OurAction();
  sigaction(SIGBUS, &ours, nullptr);
}

void OnSigbus(int sig, siginfo_t* info, void* ctx) {
  sigjmp_buf* jb = tlJump;
  // Only the kernel's own SIGBUS for an access ends a copy; a kill -BUS that lands mid-copy is chained.
  if (jb != nullptr && info != nullptr && info->si_code > 0) {
    tlFault = reinterpret_cast<uintptr_t>(info->si_addr);
    tlJump = nullptr;
    siglongjmp(*jb, 1);
  }
  Chain(sig, info, ctx);
}

// Reads one byte per page in ascending order: the first page the host may not touch faults
// here, before any byte of the copy is moved.
__attribute__((noinline)) void Probe(const volatile uint8_t* p, size_t len) {
  if (len == 0) return;
  uintptr_t start = reinterpret_cast<uintptr_t>(p);
  uintptr_t end = start + len;
  for (uintptr_t a = start; a < end; a = (a & ~(kPage - 1)) + kPage) {
    (void)*reinterpret_cast<const volatile uint8_t*>(a);
  }
}

}  // namespace

bool InstallSigbusGuard() {
  int e = errno;
  if (!Assert()) return false;
  errno = e;
  return true;
}

namespace {

// The copy itself, kept apart so no early return sits beside sigsetjmp (GCC's -Wclobbered).
__attribute__((noinline)) GuardResult CopyUnderGuard(CopyKind kind, uint8_t* guest, uint8_t* host, size_t len,
                                                     int byte) {
  sigjmp_buf jb;
  if (sigsetjmp(jb, 1) != 0) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return GuardResult{false, tlFault & ~(kPage - 1)};
  }
  tlChaining = 0;  // a chained handler that jumped out instead of returning left it set
  tlJump = &jb;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  Probe(guest, len);
  switch (kind) {
    case CopyKind::Read: memcpy(host, guest, len); break;
    case CopyKind::Write: memcpy(guest, host, len); break;
    case CopyKind::Fill: memset(guest, byte, len); break;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tlJump = nullptr;
  return GuardResult{true, 0};
}

}  // namespace

GuardResult GuardedCopy(CopyKind kind, uint8_t* guest, uint8_t* host, size_t len, int byte) {
  // An empty Buffer has no data pointer, and memcpy/memset with null is undefined even for 0 bytes.
  if (len == 0) return GuardResult{true, 0};
  // A sigaction since the last copy (libuv's, for process.on('SIGBUS')) may have replaced our
  // handler: a fault would then go to a handler that returns, and re-fault forever. One
  // rt_sigaction read per copy; on failure (none is known for SIGBUS) the copy goes ahead as before.
  Assert();
  return CopyUnderGuard(kind, guest, host, len, byte);
}

}  // namespace kg
