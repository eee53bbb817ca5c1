// The thread a vCPU's asynchronous runs happen on, and the KVM_RUN loop shared with the JS thread:
// one KVM_RUN with EINTR handled, kicks (immediate_exit plus a realtime signal), and the handshake
// between the JS thread and the vCPU thread.
#pragma once

#include <linux/kvm.h>
#include <napi.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace kg {

class VcpuObject;

// The run handshake between the JS thread and the vCPU's own thread. Shared (shared_ptr) by the
// VcpuObject and the threadsafe function, so whichever goes last frees it.
enum RunState : int { kIdle = 0, kRunning = 1, kDone = 2 };

struct Runner {
  int fd = -1;
  kvm_run* run = nullptr;
  std::thread thread;
  pthread_t tid{};
  bool started = false;
  bool joined = false;
  std::atomic<uint32_t> req{0};  // bumped per request; also the futex word the thread sleeps on
  std::atomic<int> state{kIdle};
  std::atomic<bool> stop{false};
  std::atomic<bool> kicked{false};
  long result = 0;  // exit reason or -errno; published by state = kDone
  // JS-thread only:
  napi_threadsafe_function tsfn = nullptr;
  bool tsfnGone = false;
  bool teardown = false;
  VcpuObject* owner = nullptr;
  napi_deferred deferred = nullptr;
};

int64_t NowNs();
long Futex(std::atomic<uint32_t>* word, int op, uint32_t val);
// The kick signal (0 when every candidate is taken), its no-op handler installed on first use.
int KickSignal();
// What RunStep gives for a signal that was not a kick (the caller decides whether to go on).
constexpr long kRunInterrupted = -(1L << 40);
// One KVM_RUN call: the exit reason, or -errno. A kick's EINTR is KVM_EXIT_INTR (and clears
// immediate_exit); a memory fault exit comes back although KVM_RUN "failed" (EFAULT, EHWPOISON).
long RunStep(int fd, kvm_run* run, std::atomic<bool>& kicked);
// RunStep until it ends in a result (other signals' EINTR retried).
long RunOnce(int fd, kvm_run* run, std::atomic<bool>& kicked);
void KickRunner(Runner* r);
// Stops and joins the thread (idempotent); a run in flight is kicked out first.
void StopRunner(Runner* r);
void ThreadMain(Runner* r);

}  // namespace kg
