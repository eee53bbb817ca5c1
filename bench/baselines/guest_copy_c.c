// The C baseline for vm.guest.readInto: a guest at CPL3 copying a guest_memfd slot in 2 MiB chunks
// into a bounce buffer, the host copying each chunk into one reused buffer: the same work as the
// library's fast path, without JS. Prints {"first": GB/s, "warm": [GB/s, ...]} for a fresh VM.
// Built and run by npm run bench (bench/lib/kvm-suite.mjs). Usage: guest_copy_c <bytes> <warm reps> [4k]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_guest.h"

#define HELPER_GPA 0xf0000000ULL
#define HELPER_SIZE (4ULL << 20)
#define TARGET_GPA (4ULL << 30)
#define CHUNK (2ULL << 20)
#define BOUNCE 0x200000ULL
#define ARGS 0x9000
#define PORT 0x4b47

static void die(const char* what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  exit(1);
}
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const uint8_t program[] = {
    0x48, 0x8b, 0x34, 0x25, ARGS & 0xff,        ARGS >> 8, 0,    0,  // mov rsi, [ARGS]
    0x48, 0x8b, 0x3c, 0x25, (ARGS + 8) & 0xff,  ARGS >> 8, 0,    0,  // mov rdi, [ARGS + 8]
    0x48, 0x8b, 0x0c, 0x25, (ARGS + 16) & 0xff, ARGS >> 8, 0,    0,  // mov rcx, [ARGS + 16]
    0xf3, 0x48, 0xa5,                                                // rep movsq
    0xb0, 0x00, 0x66, 0xba, PORT & 0xff,        PORT >> 8, 0xee,     // mov al, 0; mov dx, PORT; out dx, al
    0xeb, 0xdc,                                                      // jmp 0
};

static void seg(struct kvm_segment* s, uint16_t sel, uint8_t type, int code) {
  memset(s, 0, sizeof *s);
  s->selector = sel;
  s->limit = 0xffffffff;
  s->type = type;
  s->present = 1;
  s->dpl = 3;
  s->s = 1;
  s->g = 1;
  s->l = code;
  s->db = !code;
}

static double copy_all(int vcpu, struct kvm_run* run, uint8_t* helper, uint8_t* dst, uint64_t bytes) {
  uint64_t t0 = now_ns();
  for (uint64_t done = 0; done < bytes; done += CHUNK) {
    uint64_t n = bytes - done < CHUNK ? bytes - done : CHUNK;
    uint64_t* args = (uint64_t*)(helper + ARGS);
    args[0] = (4ULL << 30) + done;
    args[1] = BOUNCE;
    args[2] = n / 8;
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != PORT) {
      printf("{\"error\":\"exit %u\"}\n", run->exit_reason);
      exit(1);
    }
    memcpy(dst + done, helper + BOUNCE, n);
  }
  return (double)bytes / (double)(now_ns() - t0);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: guest_copy_c <bytes> <warm reps> [4k]\n");
    return 2;
  }
  uint64_t bytes = strtoull(argv[1], NULL, 0);
  int reps = atoi(argv[2]);
  int small = argc > 3 && !strcmp(argv[3], "4k");
  if (bytes == 0 || bytes % CHUNK || bytes > (64ULL << 20) || reps < 1) {
    fprintf(stderr, "bytes: a multiple of 2 MiB up to 64 MiB\n");
    return 2;
  }
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");

  // The source: a MMAP|INIT_SHARED guest_memfd slot with its own mapping, filled by the host.
  struct bench_create_guest_memfd c = {.size = bytes, .flags = BENCH_GUEST_MEMFD_FLAGS};
  int gmem = ioctl(vm, BENCH_KVM_CREATE_GUEST_MEMFD, &c);
  if (gmem < 0) die("KVM_CREATE_GUEST_MEMFD");
  uint8_t* src = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
  if (src == MAP_FAILED) die("mmap guest_memfd");
  memset(src, 0x3c, bytes);
  struct bench_region2 r = {.slot = 0,
                            .flags = BENCH_KVM_MEM_GUEST_MEMFD,
                            .guest_phys_addr = TARGET_GPA,
                            .memory_size = bytes,
                            .userspace_addr = (uint64_t)(uintptr_t)src,
                            .guest_memfd = (uint32_t)gmem};
  if (ioctl(vm, BENCH_KVM_SET_USER_MEMORY_REGION2, &r) < 0) die("KVM_SET_USER_MEMORY_REGION2");

  // The helper: code, tables, TSS with I/O bitmap, bounce buffer, at VA 0.
  uint8_t* h = mmap(NULL, HELPER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED) die("mmap helper");
  memcpy(h, program, sizeof program);
  uint64_t* pml4 = (uint64_t*)(h + 0x1000);
  uint64_t* pdpt = (uint64_t*)(h + 0x2000);
  uint64_t* pdlow = (uint64_t*)(h + 0x3000);
  uint64_t* pdtgt = (uint64_t*)(h + 0x4000);
  uint64_t* gdt = (uint64_t*)(h + 0x5000);
  const uint64_t tbl = 0x27, large = 0xe7, pte = 0x67;
  pml4[0] = (HELPER_GPA + 0x2000) | tbl;
  pdpt[0] = (HELPER_GPA + 0x3000) | tbl;
  pdpt[4] = (HELPER_GPA + 0x4000) | tbl;
  pdlow[0] = HELPER_GPA | large;
  pdlow[1] = (HELPER_GPA + (2ULL << 20)) | large;
  for (uint64_t i = 0; i < bytes / (2ULL << 20); i++) {
    if (!small) {
      pdtgt[i] = (TARGET_GPA + (i << 21)) | large;
      continue;
    }
    uint64_t* pt = (uint64_t*)(h + 0x10000 + i * 0x1000);  // up to 32 tables: 0x10000..0x30000
    for (int j = 0; j < 512; j++) pt[j] = (TARGET_GPA + (i << 21) + ((uint64_t)j << 12)) | pte;
    pdtgt[i] = (HELPER_GPA + 0x10000 + i * 0x1000) | tbl;
  }
  gdt[1] = 0x00af9b000000ffffULL;
  gdt[2] = 0x00cf93000000ffffULL;
  gdt[3] = 0x2068ULL | (0x6000ULL << 16) | (0x8bULL << 40);
  gdt[5] = 0x00affb000000ffffULL;
  gdt[6] = 0x00cff3000000ffffULL;
  *(uint16_t*)(h + 0x6000 + 0x66) = 0x68;
  h[0x6000 + 0x2068] = 0xff;
  struct kvm_userspace_memory_region hr = {
      .slot = 1, .guest_phys_addr = HELPER_GPA, .memory_size = HELPER_SIZE, .userspace_addr = (uint64_t)(uintptr_t)h};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &hr) < 0) die("KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int nent = 64;
  struct kvm_cpuid2* cpuid;
  for (;;) {
    cpuid = calloc(1, sizeof *cpuid + (size_t)nent * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = (uint32_t)nent;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) break;
    if (errno != E2BIG) die("KVM_GET_SUPPORTED_CPUID");
    free(cpuid);
    nent *= 2;
  }
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run* run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  seg(&s.cs, 0x2b, 11, 1);
  seg(&s.ss, 0x33, 3, 0);
  s.ds = s.es = s.fs = s.gs = s.ss;
  memset(&s.tr, 0, sizeof s.tr);
  s.tr.base = 0x6000;
  s.tr.limit = 0x2068;
  s.tr.selector = 0x18;
  s.tr.type = 11;
  s.tr.present = 1;
  s.gdt.base = 0x5000;
  s.gdt.limit = 7 * 8 - 1;
  s.idt.base = 0;
  s.idt.limit = 0;
  s.cr0 = 0x80050033ULL;
  s.cr3 = HELPER_GPA + 0x1000;
  s.cr4 = 0x20;
  s.efer = 0x500;
  if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = 0;
  regs.rflags = 0x3002;
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  uint8_t* dst = malloc(bytes);
  memset(dst, 1, bytes);
  double first = copy_all(vcpu, run, h, dst, bytes);
  if (dst[0] != 0x3c || dst[bytes - 1] != 0x3c) {
    printf("{\"error\":\"the copy returned other bytes\"}\n");
    return 1;
  }
  printf("{\"first\":%.4f,\"warm\":[", first);
  for (int i = 0; i < reps; i++) printf("%s%.4f", i ? "," : "", copy_all(vcpu, run, h, dst, bytes));
  printf("]}\n");
  return 0;
}
