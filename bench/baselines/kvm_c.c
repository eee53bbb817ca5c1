// C doing what the JS benchmarks do, with raw ioctls, so the ratios show the cost of N-API and of
// the SIGBUS guard: KVM_CHECK_EXTENSION, a KVM_RUN loop against a guest doing `out`, and memcpy
// from/to a guest_memfd mmap (a VM and a MMAP|INIT_SHARED guest_memfd of its own), also after the
// guard's per-page probe.
//
// Usage: kvm_c check <calls> <reps> | ioexit <runs> <reps> | memcpy <bytes> <reps>
// Prints one JSON object per line; on failure {"error": "..."} and exit status 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_guest.h"

static void die(const char* what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// make_guest and make_io_vcpu (kvm_guest.h), or the failed step as the program's error.
static struct guest guest_or_die(uint64_t size) {
  struct guest g;
  const char* what = "";
  if (make_guest(&g, size, &what) < 0) die(what);
  return g;
}

// The JS side times batches of this many calls and takes the median batch (tinybench's p50); the C
// side does the same, so a stall of the shared machine weighs alike on both (a mean over all
// calls would count every stall against C only).
#define CHECK_BATCH 1000
#define IOEXIT_BATCH 200

static void bench_check(long calls, int reps) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  long batches = calls / CHECK_BATCH;
  if (batches < 1) batches = 1;
  double* s = calloc((size_t)(batches * reps), sizeof *s);
  int sink = 0;
  for (long b = 0; b < batches * reps; b++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < CHECK_BATCH; i++) sink += ioctl(kvm, KVM_CHECK_EXTENSION, BENCH_CAP_GUEST_MEMFD_FLAGS);
    s[b] = (double)(now_ns() - t0) / (double)CHECK_BATCH;
  }
  printf("{\"id\":\"c.check-extension\",\"ns\":%.3f,\"sink\":%d}\n", median(s, (int)(batches * reps)), sink);
}

static void bench_ioexit(long runs, int reps) {
  struct guest g = guest_or_die(0x10000);
  int vcpu;
  const char* what = "";
  struct kvm_run* run = make_io_vcpu(&g, &vcpu, &what);
  if (!run) die(what);
  long batches = runs / IOEXIT_BATCH;
  if (batches < 1) batches = 1;
  double* s = calloc((size_t)(batches * reps), sizeof *s);
  for (long b = 0; b < batches * reps; b++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < IOEXIT_BATCH; i++)
      if (run_io_exit(vcpu, run) < 0) die("KVM_RUN");
    s[b] = (double)(now_ns() - t0) / (double)IOEXIT_BATCH;
  }
  printf("{\"id\":\"c.io-exit-roundtrip\",\"ns\":%.3f}\n", median(s, (int)(batches * reps)));
}

// What the library's SIGBUS guard does before a copy (native/sigbus_guard.cc, Probe): one read
// per page in ascending order, so that a page the host may not touch faults before any byte moves.
__attribute__((noinline)) static void probe_pages(const volatile uint8_t* p, uint64_t len) {
  for (uint64_t a = 0; a < len; a += 4096) (void)p[a];
}

static void bench_memcpy(uint64_t bytes, int reps) {
  struct guest g = guest_or_die(bytes);
  uint8_t* buf = malloc(bytes);
  if (!buf) die("malloc");
  memset(buf, 0x5a, bytes);
  memset(g.mem, 0xa5, bytes);  // faults every page in before timing
  double* rd = calloc((size_t)reps, sizeof *rd);
  double* wr = calloc((size_t)reps, sizeof *wr);
  double* prd = calloc((size_t)reps, sizeof *prd);
  double* pwr = calloc((size_t)reps, sizeof *pwr);
  for (int r = 0; r < reps; r++) {
    uint64_t t0 = now_ns();
    memcpy(buf, g.mem, bytes);
    __asm__ volatile("" : : "g"(buf) : "memory");
    uint64_t t1 = now_ns();
    memcpy(g.mem, buf, bytes);
    __asm__ volatile("" : : "g"(g.mem) : "memory");
    uint64_t t2 = now_ns();
    probe_pages(g.mem, bytes);
    memcpy(buf, g.mem, bytes);
    __asm__ volatile("" : : "g"(buf) : "memory");
    uint64_t t3 = now_ns();
    probe_pages(g.mem, bytes);
    memcpy(g.mem, buf, bytes);
    __asm__ volatile("" : : "g"(g.mem) : "memory");
    uint64_t t4 = now_ns();
    rd[r] = (double)bytes / (double)(t1 - t0);  // bytes per ns = GB/s
    wr[r] = (double)bytes / (double)(t2 - t1);
    prd[r] = (double)bytes / (double)(t3 - t2);
    pwr[r] = (double)bytes / (double)(t4 - t3);
  }
  printf("{\"id\":\"c.memcpy-read-gbps\",\"gbps\":%.4f}\n", median(rd, reps));
  printf("{\"id\":\"c.memcpy-write-gbps\",\"gbps\":%.4f}\n", median(wr, reps));
  printf("{\"id\":\"c.probe-memcpy-read-gbps\",\"gbps\":%.4f}\n", median(prd, reps));
  printf("{\"id\":\"c.probe-memcpy-write-gbps\",\"gbps\":%.4f}\n", median(pwr, reps));
}

// Node always runs several threads, so its fd table is shared and every ioctl's fd lookup takes a
// file reference (fdget skips it for a single-threaded process). An idle thread puts the baseline
// on the same path, so the ratios measure the wrapper and not that difference.
static void* idle_thread(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  pthread_t idle;
  if (pthread_create(&idle, NULL, idle_thread, NULL) != 0) die("pthread_create");
  if (argc != 4) {
    fprintf(stderr, "usage: kvm_c check|ioexit|memcpy <count> <reps>\n");
    return 2;
  }
  long n = atol(argv[2]);
  int reps = atoi(argv[3]);
  if (n <= 0 || reps <= 0) return 2;
  if (!strcmp(argv[1], "check"))
    bench_check(n, reps);
  else if (!strcmp(argv[1], "ioexit"))
    bench_ioexit(n, reps);
  else if (!strcmp(argv[1], "memcpy"))
    bench_memcpy((uint64_t)n, reps);
  else
    return 2;
  return 0;
}
