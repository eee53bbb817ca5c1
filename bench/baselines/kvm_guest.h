// What the C baselines share (kvm_c.c, a program; napi_check.c, loaded into Node): a type-0 VM with
// one guest_memfd slot at gpa 0, and a vCPU in real mode at 0 running `out 0x10, al; jmp` so that
// every KVM_RUN is one io exit. Each call returns NULL (or -1) with errno and *what set on failure,
// so a caller inside Node can report it instead of exiting.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

struct guest {
  int kvm, vm, gmem;
  void* mem;
  uint64_t size;
};

// A type-0 VM with one guest_memfd slot at gpa 0, backed (and host-mapped) by a MMAP|INIT_SHARED
// file. 0, or -1 with errno and *what naming the failed step.
static inline int make_guest(struct guest* g, uint64_t size, const char** what) {
  g->size = size;
  g->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (g->kvm < 0) return *what = "open /dev/kvm", -1;
  g->vm = ioctl(g->kvm, KVM_CREATE_VM, 0);
  if (g->vm < 0) return *what = "KVM_CREATE_VM", -1;
  struct bench_create_guest_memfd c = {.size = size, .flags = BENCH_GUEST_MEMFD_FLAGS};
  g->gmem = ioctl(g->vm, BENCH_KVM_CREATE_GUEST_MEMFD, &c);
  if (g->gmem < 0) return *what = "KVM_CREATE_GUEST_MEMFD", -1;
  g->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->gmem, 0);
  if (g->mem == MAP_FAILED) return *what = "mmap guest_memfd", -1;
  struct bench_region2 r = {.slot = 0,
                            .flags = BENCH_KVM_MEM_GUEST_MEMFD,
                            .guest_phys_addr = 0,
                            .memory_size = size,
                            .userspace_addr = (uint64_t)(uintptr_t)g->mem,
                            .guest_memfd_offset = 0,
                            .guest_memfd = (uint32_t)g->gmem};
  if (ioctl(g->vm, BENCH_KVM_SET_USER_MEMORY_REGION2, &r) < 0) return *what = "KVM_SET_USER_MEMORY_REGION2", -1;
  return 0;
}

// The io-exit guest's vCPU on g (64 KiB or more): its fd in *vcpu and its kvm_run, or NULL.
static inline struct kvm_run* make_io_vcpu(struct guest* g, int* vcpu, const char** what) {
  // Real mode at 0: out 0x10, al; jmp back to it.
  static const uint8_t code[] = {0xE6, 0x10, 0xEB, 0xFC};
  memcpy(g->mem, code, sizeof code);
  *vcpu = ioctl(g->vm, KVM_CREATE_VCPU, 0);
  if (*vcpu < 0) return *what = "KVM_CREATE_VCPU", NULL;
  int mmap_size = ioctl(g->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < 0) return *what = "KVM_GET_VCPU_MMAP_SIZE", NULL;
  struct kvm_run* run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, *vcpu, 0);
  if (run == MAP_FAILED) return *what = "mmap kvm_run", NULL;
  struct kvm_sregs sregs;
  if (ioctl(*vcpu, KVM_GET_SREGS, &sregs) < 0) return *what = "KVM_GET_SREGS", NULL;
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(*vcpu, KVM_SET_SREGS, &sregs) < 0) return *what = "KVM_SET_SREGS", NULL;
  struct kvm_regs regs = {.rip = 0, .rflags = 2};
  if (ioctl(*vcpu, KVM_SET_REGS, &regs) < 0) return *what = "KVM_SET_REGS", NULL;
  return run;
}

// One io exit: 0, or -1 with errno (EPROTO for an exit that is not the guest's `out 0x10`). A run
// a signal interrupted (inside Node, the library's vCPU timers signal this thread) is run again.
static inline int run_io_exit(int vcpu, struct kvm_run* run) {
  int r;
  do r = ioctl(vcpu, KVM_RUN, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) return errno = EPROTO, -1;
  return 0;
}
