#include "guest_runner.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "fault_inject.h"
#include "uapi.h"

namespace kg {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

long Futex(std::atomic<uint32_t>* word, int op, uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op | FUTEX_PRIVATE_FLAG, val, nullptr, nullptr, 0);
}

// A realtime signal with a no-op handler: delivering it to the vCPU thread makes KVM_RUN return
// EINTR. Chosen once, among the ones nobody else handles.
int KickSignal() {
  static int sig = 0;
  static std::once_flag once;
  std::call_once(once, [] {
    for (int s = SIGRTMIN + 4; s <= SIGRTMAX - 4; s++) {
      struct sigaction old;
      if (sigaction(s, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa;
      memset(&sa, 0, sizeof(sa));
      sa.sa_handler = [](int) {};
      // KVM_RUN returns EINTR regardless; other calls a late timer signal lands in just restart.
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      if (sigaction(s, &sa, nullptr) == 0) {
        sig = s;
        return;
      }
    }
  });
  return sig;
}

long RunStep(int fd, kvm_run* run, std::atomic<bool>& kicked) {
  if (!InjectFault(Sys::Ioctl, KVM_RUN) && ioctl(fd, KVM_RUN, 0) == 0) return run->exit_reason;
  int e = errno;
  if (e == EINTR) {
    if (!kicked.exchange(false)) return kRunInterrupted;
    __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return KVM_EXIT_INTR;
  }
  if ((e == EFAULT || e == EHWPOISON) && run->exit_reason == KVM_EXIT_MEMORY_FAULT) return KVM_EXIT_MEMORY_FAULT;
  return -e;
}

long RunOnce(int fd, kvm_run* run, std::atomic<bool>& kicked) {
  for (;;) {
    long r = RunStep(fd, run, kicked);
    if (r != kRunInterrupted) return r;
  }
}

void KickRunner(Runner* r) {
  r->kicked.store(true);
  // immediate_exit covers the window before the thread enters KVM_RUN; the signal the time inside.
  __atomic_store_n(&r->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (r->started && !r->joined && KickSignal() != 0) pthread_kill(r->tid, KickSignal());
}

void StopRunner(Runner* r) {
  if (!r->started || r->joined) return;
  r->stop.store(true);
  KickRunner(r);
  r->req.fetch_add(1);
  Futex(&r->req, FUTEX_WAKE, 1);
  r->thread.join();
  r->joined = true;
  r->kicked.store(false);
  __atomic_store_n(&r->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

void ThreadMain(Runner* r) {
  sigset_t set;
  sigemptyset(&set);
  if (KickSignal() != 0) sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  uint32_t seen = 0;
  for (;;) {
    uint32_t cur;
    while ((cur = r->req.load(std::memory_order_acquire)) == seen && !r->stop.load()) {
      Futex(&r->req, FUTEX_WAIT, seen);
    }
    if (r->stop.load()) return;
    seen = cur;
    r->result = RunOnce(r->fd, r->run, r->kicked);
    r->state.store(kDone, std::memory_order_release);
    napi_call_threadsafe_function(r->tsfn, nullptr, napi_tsfn_nonblocking);
  }
}

}  // namespace kg
