#include "sigbus_guard.h"

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

struct sigaction gPrevious;
std::once_flag gInstallOnce;
int gInstallErrno = 0;

void Chain(int sig, siginfo_t* info, void* ctx) {
  if (gPrevious.sa_flags & SA_SIGINFO) {
    if (gPrevious.sa_sigaction != nullptr) {
      gPrevious.sa_sigaction(sig, info, ctx);
      return;
    }
  } else if (gPrevious.sa_handler == SIG_IGN) {
    return;
  } else if (gPrevious.sa_handler != SIG_DFL && gPrevious.sa_handler != nullptr) {
    gPrevious.sa_handler(sig);
    return;
  }
  // Default action: restore it; returning re-executes the faulting access, which then kills the
  // process the way it would have without us.
  signal(sig, SIG_DFL);
}

void OnSigbus(int sig, siginfo_t* info, void* ctx) {
  sigjmp_buf* jb = tlJump;
  if (jb != nullptr) {
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
  std::call_once(gInstallOnce, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &gPrevious) != 0) gInstallErrno = errno;
  });
  if (gInstallErrno != 0) {
    errno = gInstallErrno;
    return false;
  }
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
  tlJump = &jb;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  Probe(guest, len);
  switch (kind) {
    case CopyKind::Read:
      memcpy(host, guest, len);
      break;
    case CopyKind::Write:
      memcpy(guest, host, len);
      break;
    case CopyKind::Fill:
      memset(guest, byte, len);
      break;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tlJump = nullptr;
  return GuardResult{true, 0};
}

}  // namespace

GuardResult GuardedCopy(CopyKind kind, uint8_t* guest, uint8_t* host, size_t len, int byte) {
  // An empty Buffer has no data pointer, and memcpy/memset with null is undefined even for 0 bytes.
  if (len == 0) return GuardResult{true, 0};
  return CopyUnderGuard(kind, guest, host, len, byte);
}

}  // namespace kg
