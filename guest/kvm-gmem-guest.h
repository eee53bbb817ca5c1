/* kvm-gmem-guest.h: what a C guest built by kvm-gmem's toolkit (compileGuest / createGuest with
 * { c: source }) may use. Freestanding: no libc. The guest defines `void guest_main(void)`; the
 * builder starts it on the stack at the top of its region, and returning from it is GUEST_DONE().
 *
 * The ucall channel follows the kernel selftests' ucall: the guest fills a struct kg_ucall and
 * writes its address to port KG_UCALL_PORT (rdi holds it; eax too when it is below 4 GiB); the
 * host decodes it into { kind: 'sync', value }, { kind: 'assert', file, line, expr } or
 * { kind: 'done' } and resumes the guest after a sync.
 */
#ifndef KVM_GMEM_GUEST_H
#define KVM_GMEM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_UCALL_PORT 0x4b55

enum { KG_UCALL_SYNC = 1, KG_UCALL_ASSERT = 2, KG_UCALL_DONE = 3 };

/* Layout fixed with lib/toolkit/ucall.ts. */
struct kg_ucall {
  uint64_t cmd;
  uint64_t line;
  const char* file;
  const char* expr;
  uint64_t args[4];
};

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/* eax is the address when it fits in 32 bits (the host then needs no KVM_GET_REGS), else ~0. */
static inline void kg_ucall(struct kg_ucall* uc) {
  uint64_t a = (uint64_t)(uintptr_t)uc;
  __asm__ volatile("outl %%eax, %%dx"
                   :
                   : "D"(uc), "a"(a >> 32 ? 0xffffffffu : (uint32_t)a), "d"((uint16_t)KG_UCALL_PORT)
                   : "memory");
}

static inline void kg_ucall_cmd(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2) {
  struct kg_ucall uc = {.cmd = cmd, .args = {a0, a1, a2, 0}};
  kg_ucall(&uc);
}

/* An assert or done does not come back: the host is told again if it resumes the guest. */
static __attribute__((noreturn, used)) void kg_stop(struct kg_ucall* uc) {
  for (;;) kg_ucall(uc);
}

static __attribute__((noreturn, noinline, used)) void kg_assert_fail(const char* file, uint64_t line, const char* expr,
                                                                     uint64_t eq, uint64_t a, uint64_t b) {
  struct kg_ucall uc = {.cmd = KG_UCALL_ASSERT, .line = line, .file = file, .expr = expr, .args = {a, b, eq, 0}};
  kg_stop(&uc);
}

static __attribute__((noreturn, used)) void kg_done(void) {
  struct kg_ucall uc = {.cmd = KG_UCALL_DONE};
  kg_stop(&uc);
}

#define GUEST_SYNC(value) kg_ucall_cmd(KG_UCALL_SYNC, (uint64_t)(value), 0, 0)
#define GUEST_DONE() kg_done()
#define GUEST_ASSERT(cond)                                           \
  do {                                                               \
    if (!(cond)) kg_assert_fail(__FILE__, __LINE__, #cond, 0, 0, 0); \
  } while (0)
/* As GUEST_ASSERT, and the host sees both values (event.values). */
#define GUEST_ASSERT_EQ(a, b)                                                              \
  do {                                                                                     \
    uint64_t kg_a_ = (uint64_t)(a), kg_b_ = (uint64_t)(b);                                 \
    if (kg_a_ != kg_b_) kg_assert_fail(__FILE__, __LINE__, #a " == " #b, 1, kg_a_, kg_b_); \
  } while (0)

/* KVM hypercalls: nr in rax, arguments in rbx, rcx, rdx, rsi; the result comes back in rax.
 * `vmcall` (Intel), or `vmmcall` with KG_VMMCALL, which compileGuest defines on AMD hosts (KVM
 * emulates the other one, but PVM gives #GP for `vmcall` at CPL3). KVM answers only at CPL0: at
 * CPL3 the result is -KVM_EPERM (-1) and the host sees no exit. */
static inline uint64_t kvm_hypercall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  uint64_t r;
#ifdef KG_VMMCALL
  __asm__ volatile("vmmcall" : "=a"(r) : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3) : "memory");
#else
  __asm__ volatile("vmcall" : "=a"(r) : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3) : "memory");
#endif
  return r;
}

#define KVM_HC_MAP_GPA_RANGE 12
#define KVM_MAP_GPA_RANGE_PAGE_SZ_4K 0
#define KVM_MAP_GPA_RANGE_PAGE_SZ_2M (1 << 0)
#define KVM_MAP_GPA_RANGE_PAGE_SZ_1G (1 << 1)
#define KVM_MAP_GPA_RANGE_ENCRYPTED (1 << 4)
#define KVM_MAP_GPA_RANGE_DECRYPTED (0 << 4)

/* Asks the host to make [gpa, gpa + size) private (or shared): 0 or a negative errno. */
static inline int64_t kvm_map_gpa_range(uint64_t gpa, uint64_t size, bool private_) {
  return (int64_t)kvm_hypercall(KVM_HC_MAP_GPA_RANGE, gpa, size / 4096,
                                private_ ? KVM_MAP_GPA_RANGE_ENCRYPTED : KVM_MAP_GPA_RANGE_DECRYPTED, 0);
}

/* gcc may call these even freestanding (struct copies, zeroing); weak, so a guest may bring its own. */
__attribute__((weak)) void* memset(void* d, int c, size_t n) {
  void* r = d;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return r;
}
__attribute__((weak)) void* memcpy(void* d, const void* s, size_t n) {
  void* r = d;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return r;
}
__attribute__((weak)) int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

void guest_main(void);

/* The entry the builder jumps to: guest_main on an aligned stack, then done. */
__asm__(
    ".pushsection .text.kg_entry, \"ax\"\n"
    ".globl _kg_start\n"
    "_kg_start:\n"
    "  and $-16, %rsp\n"
    "  call guest_main\n"
    "  call kg_done\n"
    ".popsection\n");

#endif
