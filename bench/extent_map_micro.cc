// Micro benchmark and self-check of the extent map, no Node needed:
//   g++ -std=c++17 -O2 -Wall -Wextra -Werror bench/extent_map_micro.cc native/extent_map.cc -o /tmp/em_micro
//   /tmp/em_micro            (add -fsanitize=address,undefined -g for the sanitizer run; --quick for less work)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../native/extent_map.h"

namespace {

using Clock = std::chrono::steady_clock;

double NsSince(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

void Fail(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  std::exit(1);
}

void Check(const kg::ExtentMap& m) {
  std::string why;
  if (!m.CheckInvariants(&why)) Fail(why);
}

// Random assign/add/query/resize against one value per page, checked after every step.
void SelfCheck(int steps, uint64_t seed, uint64_t pages, int shortPercent, int edgePermille) {
  std::mt19937_64 rng(seed);
  const uint64_t base = pages;
  std::vector<uint32_t> dense(pages, 0);
  kg::ExtentMap m(pages, 0);
  std::vector<kg::Extent> runs;
  if (shortPercent > 50) {
    // Start fragmented (runs of 1-4 pages), so the tree has several levels from the first step.
    for (uint64_t p = 0; p < pages;) {
      uint64_t e = std::min(pages, p + 1 + rng() % 4);
      uint32_t v = static_cast<uint32_t>(rng() % 3);
      m.Assign(p, e, v);
      for (; p < e; p++) dense[p] = v;
    }
  }
  for (int s = 0; s < steps; s++) {
    uint64_t a = rng() % (pages + 1), b = rng() % (pages + 1);
    if (a > b) std::swap(a, b);
    if (static_cast<int>(rng() % 100) < shortPercent) b = std::min(pages, a + rng() % 5);  // splits more
    if (static_cast<int>(rng() % 1000) < edgePermille) b = pages;  // to the end, from 0: own paths
    if (static_cast<int>(rng() % 1000) < edgePermille) a = 0;
    int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      uint32_t v = static_cast<uint32_t>(rng() % 3);
      if (m.Assign(a, b, v) != kg::MapStatus::kOk) Fail("assign refused a valid range");
      for (uint64_t p = a; p < b; p++) dense[p] = v;
    } else if (op < 9) {
      int64_t d = static_cast<int64_t>(rng() % 5) - 2;
      bool ok = true;
      for (uint64_t p = a; p < b; p++) ok = ok && static_cast<int64_t>(dense[p]) + d >= 0;
      kg::MapStatus st = m.Add(a, b, d);
      if ((st == kg::MapStatus::kOk) != ok) Fail("add status disagrees with the oracle");
      if (ok) {
        for (uint64_t p = a; p < b; p++) dense[p] = static_cast<uint32_t>(dense[p] + d);
      }
    } else {
      if (rng() % 4 != 0) continue;
      uint64_t np = rng() % 16 == 0 ? 0 : base / 2 + rng() % base;
      uint32_t fill = static_cast<uint32_t>(rng() % 3);
      m.Resize(np, fill);
      dense.resize(np, fill);
      pages = np;
    }
    Check(m);
    runs.clear();
    m.Query(0, pages, &runs);
    uint64_t p = 0;
    for (const kg::Extent& e : runs) {
      if (e.start != p) Fail("runs are not contiguous");
      for (; p < e.end; p++) {
        if (dense[p] != e.value) Fail("run value differs from the oracle at step " + std::to_string(s));
      }
    }
    if (p != pages) Fail("runs do not end at pages");
    if (pages == 0) continue;
    uint64_t probe = rng() % pages;
    uint32_t v = 0;
    if (m.ValueAt(probe, &v) != kg::MapStatus::kOk || v != dense[probe]) Fail("valueAt differs from the oracle");
    for (bool equal : {true, false}) {
      if (b > pages) break;  // the range predates a shrink
      uint64_t want = pages;
      for (uint64_t q = a; q < b && want == pages; q++) {
        if ((dense[q] == v) == equal) want = q;
      }
      bool found = false;
      uint64_t at = 0;
      m.FindFirst(a, b, v, equal, &found, &at);
      if (found != (want != pages) || (found && at != want)) Fail("findFirst differs from the oracle");
    }
  }
}

std::vector<uint64_t> Shuffled(uint64_t n, std::mt19937_64& rng) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; i++) v[i] = i;
  for (uint64_t i = n - 1; i > 0; i--) std::swap(v[i], v[rng() % (i + 1)]);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const uint64_t kExtents = quick ? 100000 : 1000000;
  const int kOps = quick ? 100000 : 2000000;
  std::mt19937_64 rng(42);

  auto t0 = Clock::now();
  SelfCheck(quick ? 3000 : 20000, 1, 3000, 10, 100);
  SelfCheck(quick ? 2000 : 8000, 2, 20000, 97, 5);  // thousands of extents: several levels
  std::printf("self-check vs dense oracle: ok (%.0f ms)\n", NsSince(t0) / 1e6);

  // kExtents alternating extents of 4 pages, built in ascending and in random order.
  const uint64_t pages = 4 * kExtents;
  for (int order = 0; order < 2; order++) {
    kg::ExtentMap m(pages, 0);
    std::vector<uint64_t> idx = Shuffled(kExtents / 2, rng);
    t0 = Clock::now();
    for (uint64_t k = 0; k < kExtents / 2; k++) {
      uint64_t i = order == 0 ? k : idx[k];
      m.Assign(8 * i + 4, 8 * i + 8, 1);
    }
    double build = NsSince(t0);
    Check(m);
    std::printf("%s build: %zu extents, depth %d, %zu bytes = %.2f bytes/extent, %.0f ns/assign\n",
                order == 0 ? "ascending" : "random   ", m.ExtentCount(), m.Depth(), m.BytesUsed(),
                static_cast<double>(m.BytesUsed()) / m.ExtentCount(), build / (kExtents / 2));
    if (order == 0) continue;

    std::vector<uint64_t> at(kOps);
    for (int k = 0; k < kOps; k++) at[k] = rng() % pages;
    // Flip one page and flip it back: every call changes the map, the count stays at kExtents.
    t0 = Clock::now();
    for (int k = 0; k < kOps; k++) {
      uint32_t v = ((at[k] / 4) & 1);
      m.Assign(at[k], at[k] + 1, v ^ 1);
      m.Assign(at[k], at[k] + 1, v);
    }
    double flip = NsSince(t0) / (2.0 * kOps);
    Check(m);
    std::printf("random one-page assign (flip and restore) at %zu extents: %.1f ns/assign\n", m.ExtentCount(), flip);
    // The same figure as a JSON line, for npm run bench (fragmented.random-page-op.cxx).
    std::printf("{\"id\":\"random-page-assign\",\"ns\":%.1f,\"extents\":%zu}\n", flip, m.ExtentCount());

    t0 = Clock::now();
    for (int k = 0; k < kOps; k++) m.Assign(at[k], at[k] + 1, static_cast<uint32_t>(at[(k + 1) % kOps] & 1));
    double rnd = NsSince(t0) / kOps;
    Check(m);
    std::printf("random one-page assign of a random 0/1: %.1f ns/assign (now %zu extents, %.2f bytes/extent)\n", rnd,
                m.ExtentCount(), static_cast<double>(m.BytesUsed()) / m.ExtentCount());

    t0 = Clock::now();
    for (int k = 0; k < kOps; k++) {
      m.Add(at[k], at[k] + 1, 1);
      m.Add(at[k], at[k] + 1, -1);
    }
    std::printf("random one-page add (+1 then -1): %.1f ns/add\n", NsSince(t0) / (2.0 * kOps));
    Check(m);

    uint32_t sink = 0;
    t0 = Clock::now();
    for (int k = 0; k < kOps; k++) {
      uint32_t v;
      m.ValueAt(at[k], &v);
      sink += v;
    }
    std::printf("random valueAt: %.1f ns (sink %u)\n", NsSince(t0) / kOps, sink);

    std::vector<kg::Extent> runs;
    runs.reserve(m.ExtentCount());
    t0 = Clock::now();
    m.Query(0, pages, &runs);
    std::printf("full query: %zu runs in %.2f ms\n", runs.size(), NsSince(t0) / 1e6);

    t0 = Clock::now();
    m.Assign(0, pages, 7);
    std::printf("merge all back with one assign: %.2f ms, %zu extent(s), %zu bytes\n", NsSince(t0) / 1e6,
                m.ExtentCount(), m.BytesUsed());
    Check(m);
  }

  for (uint64_t huge : {uint64_t{1} << 28, uint64_t{1} << 52}) {
    kg::ExtentMap m(huge, 0);
    t0 = Clock::now();
    const int reps = 100000;
    for (int k = 0; k < reps; k++) {
      m.Assign(0, huge, 1);
      m.Assign(0, huge, 0);
    }
    std::printf("whole-range assign on 2^%d pages: %.1f ns\n", huge == (uint64_t{1} << 28) ? 28 : 52,
                NsSince(t0) / (2.0 * reps));
    Check(m);
  }
  return 0;
}
