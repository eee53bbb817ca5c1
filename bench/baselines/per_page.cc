// The per-page conversion loops the extent map is compared against, timed in C++.
//
// per-page: the RFC v5 series' gmem_set_mappable/gmem_clear_mappable shape: for each page index in
//   the range, one locked store of a value entry into a 64-way radix tree (the xarray's fan-out and
//   layout: walk from the root on every store, grow the height on demand, allocate nodes lazily).
//   The series' unshare also looks up each page's folio; that lookup is left out, so this is a
//   lower bound of the series' cost.
// floor: one byte store per page into a flat array, the cheapest any per-page design can be.
//
// Usage: per_page <size-bytes>... [--sample-pages N] [--floor-sample-pages N] [--reps N]
// Prints one JSON object per line: {"kind","bytes","pages","measuredPages","ns"} where ns is the
// median time of one share plus one unshare over measuredPages pages (the caller scales it).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr unsigned kShift = 6;  // 64 slots per node, as XA_CHUNK_SHIFT on 64-bit kernels
constexpr unsigned kSlots = 1u << kShift;
constexpr uint64_t kPage = 4096;

// The series' mappability values, stored as xarray value entries ((v << 1) | 1).
constexpr uintptr_t kAllMappable = (0u << 1) | 1;
constexpr uintptr_t kGuestMappable = (2u << 1) | 1;

struct Node {
  unsigned shift;
  unsigned count;  // non-empty slots, kept up to date as xas_store does
  Node* parent;
  uintptr_t slots[kSlots];
};

class RadixTree {
 public:
  ~RadixTree() { Free(root_); }

  // One xa_store(): take the lock, walk from the root, create what is missing, store.
  void Store(uint64_t index, uintptr_t entry) {
    while (lock_.test_and_set(std::memory_order_acquire)) {
    }
    Expand(index);
    Node* n = root_;
    while (n->shift > 0) {
      uintptr_t& slot = n->slots[(index >> n->shift) & (kSlots - 1)];
      if (slot == 0) {
        slot = reinterpret_cast<uintptr_t>(NewNode(n->shift - kShift, n));
        n->count++;
      }
      n = reinterpret_cast<Node*>(slot);
    }
    uintptr_t& leaf = n->slots[index & (kSlots - 1)];
    if (leaf == 0) n->count++;
    leaf = entry;
    lock_.clear(std::memory_order_release);
  }

  uintptr_t Load(uint64_t index) const {
    const Node* n = root_;
    if (!n || (index >> n->shift) >= kSlots) return 0;
    while (n->shift > 0) {
      uintptr_t slot = n->slots[(index >> n->shift) & (kSlots - 1)];
      if (slot == 0) return 0;
      n = reinterpret_cast<const Node*>(slot);
    }
    return n->slots[index & (kSlots - 1)];
  }

 private:
  static Node* NewNode(unsigned shift, Node* parent) {
    Node* n = static_cast<Node*>(std::calloc(1, sizeof(Node)));
    if (!n) std::abort();
    n->shift = shift;
    n->parent = parent;
    return n;
  }

  // xas_expand(): add levels on top until the root covers the index.
  void Expand(uint64_t index) {
    if (!root_) {
      root_ = NewNode(0, nullptr);
    }
    while (root_->shift < 64 - kShift && (index >> root_->shift) >= kSlots) {
      Node* top = NewNode(root_->shift + kShift, nullptr);
      top->slots[0] = reinterpret_cast<uintptr_t>(root_);
      top->count = 1;
      root_->parent = top;
      root_ = top;
    }
  }

  void Free(Node* n) {
    if (!n) return;
    if (n->shift > 0) {
      for (uintptr_t s : n->slots) Free(reinterpret_cast<Node*>(s));
    }
    std::free(n);
  }

  Node* root_ = nullptr;
  std::atomic_flag lock_ = ATOMIC_FLAG_INIT;
};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Keeps the compiler from treating the stores as dead.
inline void Escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Enough repetitions of a tiny range that one timed sample lasts well above the clock's resolution.
uint64_t InnerReps(uint64_t pages) { return std::max<uint64_t>(1, (1u << 16) / pages); }

// At least `reps` samples, and more while they are cheap (up to ~50 ms), so a busy machine's
// hiccups fall outside the median.
bool MoreSamples(const std::vector<double>& s, int reps, uint64_t started) {
  return int(s.size()) < reps || (s.size() < 101 && NowNs() - started < 50000000u);
}

double TimeRadix(uint64_t total_pages, uint64_t measured, int reps) {
  // The measured window sits at the top of the range so the tree has the full range's height.
  uint64_t first = total_pages - measured;
  RadixTree tree;
  // The first conversion allocates the nodes; time the steady state, which favours the loop.
  for (uint64_t i = first; i < total_pages; i++) tree.Store(i, kAllMappable);
  uint64_t inner = InnerReps(measured);
  std::vector<double> samples;
  for (uint64_t started = NowNs(); MoreSamples(samples, reps, started);) {
    uint64_t t0 = NowNs();
    for (uint64_t k = 0; k < inner; k++) {
      for (uint64_t i = first; i < total_pages; i++) tree.Store(i, kAllMappable);    // share
      for (uint64_t i = first; i < total_pages; i++) tree.Store(i, kGuestMappable);  // unshare
      Escape(&tree);
    }
    samples.push_back(double(NowNs() - t0) / double(inner));
  }
  if (tree.Load(total_pages - 1) != kGuestMappable) std::abort();
  return Median(samples);
}

double TimeFloor(uint64_t measured, int reps) {
  std::vector<uint8_t> states(measured, 1);  // touched now, so page faults stay out of the timing
  uint8_t* a = states.data();
  uint64_t inner = InnerReps(measured);
  std::vector<double> samples;
  for (uint64_t started = NowNs(); MoreSamples(samples, reps, started);) {
    uint64_t t0 = NowNs();
    for (uint64_t k = 0; k < inner; k++) {
      for (uint64_t i = 0; i < measured; i++) a[i] = 0;
      Escape(a);
      for (uint64_t i = 0; i < measured; i++) a[i] = 2;
      Escape(a);
    }
    samples.push_back(double(NowNs() - t0) / double(inner));
  }
  if (a[measured - 1] != 2) std::abort();
  return Median(samples);
}

void Print(const char* kind, uint64_t bytes, uint64_t pages, uint64_t measured, double ns) {
  std::printf("{\"kind\":\"%s\",\"bytes\":%llu,\"pages\":%llu,\"measuredPages\":%llu,\"ns\":%.3f}\n", kind,
              (unsigned long long)bytes, (unsigned long long)pages, (unsigned long long)measured, ns);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t sample_pages = 1u << 18;
  uint64_t floor_sample_pages = 1u << 26;
  int reps = 5;
  std::vector<uint64_t> sizes;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--sample-pages" && i + 1 < argc) {
      sample_pages = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--floor-sample-pages" && i + 1 < argc) {
      floor_sample_pages = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      sizes.push_back(std::strtoull(argv[i], nullptr, 10));
    }
  }
  if (sizes.empty() || sample_pages == 0 || floor_sample_pages == 0 || reps < 1) {
    std::fprintf(stderr, "usage: per_page <size-bytes>... [--sample-pages N] [--floor-sample-pages N] [--reps N]\n");
    return 2;
  }
  for (uint64_t bytes : sizes) {
    uint64_t pages = (bytes + kPage - 1) / kPage;
    uint64_t m = std::min(pages, sample_pages);
    Print("per-page", bytes, pages, m, TimeRadix(pages, m, reps));
    uint64_t f = std::min(pages, floor_sample_pages);
    Print("floor", bytes, pages, f, TimeFloor(f, reps));
  }
  return 0;
}
