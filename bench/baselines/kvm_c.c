// C doing what the JS benchmarks do, with raw ioctls, so the ratios show the cost of N-API and of
// the SIGBUS guard: KVM_CHECK_EXTENSION, a KVM_RUN loop against a guest doing `out`, and memcpy
// from/to a guest_memfd mmap (a VM and a MMAP|INIT_SHARED guest_memfd of its own).
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

// Debian's headers predate guest_memfd: numbers from kernel-uapi.md section 4.
#define BENCH_KVM_CREATE_GUEST_MEMFD 0xC040AED4UL
#define BENCH_KVM_SET_USER_MEMORY_REGION2 0x40A0AE49UL
#define BENCH_KVM_MEM_GUEST_MEMFD (1u << 2)
#define BENCH_GUEST_MEMFD_FLAGS 3ULL /* MMAP | INIT_SHARED */
#define BENCH_CAP_GUEST_MEMFD_FLAGS 244

struct bench_create_guest_memfd {
  uint64_t size, flags, reserved[6];
};
struct bench_region2 {
  uint32_t slot, flags;
  uint64_t guest_phys_addr, memory_size, userspace_addr, guest_memfd_offset;
  uint32_t guest_memfd, pad1;
  uint64_t pad2[14];
};

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

struct guest {
  int kvm, vm, gmem;
  void* mem;
  uint64_t size;
};

// A type-0 VM with one guest_memfd slot at gpa 0, backed (and host-mapped) by a MMAP|INIT_SHARED file.
static struct guest make_guest(uint64_t size) {
  struct guest g;
  g.size = size;
  g.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (g.kvm < 0) die("open /dev/kvm");
  g.vm = ioctl(g.kvm, KVM_CREATE_VM, 0);
  if (g.vm < 0) die("KVM_CREATE_VM");
  struct bench_create_guest_memfd c = {.size = size, .flags = BENCH_GUEST_MEMFD_FLAGS};
  g.gmem = ioctl(g.vm, BENCH_KVM_CREATE_GUEST_MEMFD, &c);
  if (g.gmem < 0) die("KVM_CREATE_GUEST_MEMFD");
  g.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g.gmem, 0);
  if (g.mem == MAP_FAILED) die("mmap guest_memfd");
  struct bench_region2 r = {.slot = 0,
                            .flags = BENCH_KVM_MEM_GUEST_MEMFD,
                            .guest_phys_addr = 0,
                            .memory_size = size,
                            .userspace_addr = (uint64_t)(uintptr_t)g.mem,
                            .guest_memfd_offset = 0,
                            .guest_memfd = (uint32_t)g.gmem};
  if (ioctl(g.vm, BENCH_KVM_SET_USER_MEMORY_REGION2, &r) < 0) die("KVM_SET_USER_MEMORY_REGION2");
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
  struct guest g = make_guest(0x10000);
  // Real mode at 0: out 0x10, al; jmp back to it.
  static const uint8_t code[] = {0xE6, 0x10, 0xEB, 0xFC};
  memcpy(g.mem, code, sizeof code);
  int vcpu = ioctl(g.vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int mmap_size = ioctl(g.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run* run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = 0, .rflags = 2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
  long batches = runs / IOEXIT_BATCH;
  if (batches < 1) batches = 1;
  double* s = calloc((size_t)(batches * reps), sizeof *s);
  for (long b = 0; b < batches * reps; b++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < IOEXIT_BATCH; i++) {
      if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) {
        errno = EPROTO;
        die("unexpected exit");
      }
    }
    s[b] = (double)(now_ns() - t0) / (double)IOEXIT_BATCH;
  }
  printf("{\"id\":\"c.io-exit-roundtrip\",\"ns\":%.3f}\n", median(s, (int)(batches * reps)));
}

static void bench_memcpy(uint64_t bytes, int reps) {
  struct guest g = make_guest(bytes);
  uint8_t* buf = malloc(bytes);
  if (!buf) die("malloc");
  memset(buf, 0x5a, bytes);
  memset(g.mem, 0xa5, bytes);  // faults every page in before timing
  double* rd = calloc((size_t)reps, sizeof *rd);
  double* wr = calloc((size_t)reps, sizeof *wr);
  for (int r = 0; r < reps; r++) {
    uint64_t t0 = now_ns();
    memcpy(buf, g.mem, bytes);
    __asm__ volatile("" : : "g"(buf) : "memory");
    uint64_t t1 = now_ns();
    memcpy(g.mem, buf, bytes);
    __asm__ volatile("" : : "g"(g.mem) : "memory");
    uint64_t t2 = now_ns();
    rd[r] = (double)bytes / (double)(t1 - t0);  // bytes per ns = GB/s
    wr[r] = (double)bytes / (double)(t2 - t1);
  }
  printf("{\"id\":\"c.memcpy-read-gbps\",\"gbps\":%.4f}\n", median(rd, reps));
  printf("{\"id\":\"c.memcpy-write-gbps\",\"gbps\":%.4f}\n", median(wr, reps));
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
