// A C face for native/extent_map.cc, so the kernel-structure benchmark (C, built against the
// kernel's headers) can drive it in the same process.
#include <cstdio>
#include <string>

#include "../../native/extent_map.h"

extern "C" {

void* em_new(unsigned long long pages, unsigned value) { return new kg::ExtentMap(pages, value); }
void em_free(void* m) { delete static_cast<kg::ExtentMap*>(m); }
void em_assign(void* m, unsigned long long start, unsigned long long end, unsigned value) {
  static_cast<kg::ExtentMap*>(m)->Assign(start, end, value);
}
unsigned em_value(void* m, unsigned long long page) {
  unsigned v = 0;
  static_cast<kg::ExtentMap*>(m)->ValueAt(page, &v);
  return v;
}
unsigned long long em_bytes(void* m) { return static_cast<kg::ExtentMap*>(m)->BytesUsed(); }
unsigned long long em_count(void* m) { return static_cast<kg::ExtentMap*>(m)->ExtentCount(); }
// 1 when the tree's invariants hold; else 0 and the reason is printed to stderr.
int em_check(void* m) {
  std::string why;
  if (static_cast<kg::ExtentMap*>(m)->CheckInvariants(&why)) return 1;
  std::fprintf(stderr, "extent map: %s\n", why.c_str());
  return 0;
}
}
