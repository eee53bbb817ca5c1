// The thread's question, measured: the kernel's own xarray, maple tree and interval tree (built in
// userspace through tools/testing/radix-tree's shims from Debian's linux-source package; see
// build.mjs) against native/extent_map.cc, on the same workloads in one process, interleaved.
//
// Every structure maps a page index of a file to a small value (0 private, 1 shared). The kernel
// structures take their own spinlock per call (a pthread mutex in the harness); the extent map and
// the interval tree take none, as a caller holding the file's lock would use them. The lock-pair
// line gives that mutex's cost so a reader can subtract it.
//
// Usage: structures [--quick] [--rounds N] [--only WORKLOAD] [--kind N (one structure, by enum kind)]
// Prints one JSON object per line: {workload, structure, unit, value (median), min, max, rounds,
// opsPerRound, scale, note}; times are thread CPU time. On a wrong answer {"error": ...} and exit 1.
#include "shared.h"

#include <linux/interval_tree.h>
#include <linux/maple_tree.h>
#include <linux/slab.h>
#include <linux/xarray.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// From the harness and the kernel files build.mjs compiles.
extern struct kmem_cache* radix_tree_node_cachep;
void radix_tree_init(void);
void maple_tree_init(void);
unsigned long kmem_cache_get_alloc(struct kmem_cache*);
unsigned long kbench_maple_node_bytes(void);

// extent_map_c.cc
void* em_new(unsigned long long pages, unsigned value);
void em_free(void* m);
void em_assign(void* m, unsigned long long start, unsigned long long end, unsigned value);
unsigned em_value(void* m, unsigned long long page);
unsigned long long em_bytes(void* m);
unsigned long long em_count(void* m);
int em_check(void* m);

enum kind { EM, MAPLE, MAPLE_MERGE, XA, XA_MULTI, ITREE, NKINDS };
static const char* const kind_name[NKINDS] = {"extent-map", "maple",        "maple-merge",
                                              "xarray",     "xarray-multi", "interval-tree"};

#define PAGE_4K 4096ULL
#define EXTENTS 1000000ULL

static int quick;
static int rounds = 7;
static double sample_ms = 20;

static void fail(const char* what) {
  printf("{\"error\":\"%s\"}\n", what);
  fflush(stdout);
  exit(1);
}

// The thread's CPU time: on a shared machine a sample then leaves out the time the thread sat
// descheduled (cache misses caused by neighbours still count).
static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

// ---- the structures behind one interface ----

struct ival {
  struct interval_tree_node it;
  unsigned value;
};
static struct kmem_cache* ival_cache;

struct st {
  enum kind kind;
  uint64_t pages;
  void* em;
  struct maple_tree mt;
  struct xarray xa;
  struct rb_root_cached it;
  uint64_t it_count;
};

#define VAL(v) xa_mk_value(v)

// The plain maple tree, as a caller would: one mtree_store_range per op; equal neighbours stay apart.
static void maple_store(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  if (mtree_store_range(&s->mt, a, b - 1, VAL(v), GFP_KERNEL)) fail("mtree_store_range failed");
}

// The maple tree widened to merge: the range grows over equal neighbours first, so the tree stays
// canonical like the extent map (one entry per run of equal pages).
static void maple_merge_store(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  void* e = VAL(v);
  unsigned long first = a, last = b - 1;
  MA_STATE(mas, &s->mt, first, last);
  mtree_lock(&s->mt);
  if (first > 0) {
    mas_set(&mas, first - 1);
    if (mas_walk(&mas) == e) first = mas.index;
  }
  if (last + 1 < s->pages) {
    mas_set(&mas, last + 1);
    if (mas_walk(&mas) == e) last = mas.last;
  }
  mas_set_range(&mas, first, last);
  int err = mas_store_gfp(&mas, e, GFP_KERNEL);
  mtree_unlock(&s->mt);
  if (err) fail("mas_store_gfp failed");
}

// What the RFC's loop does: one xa_store per page.
static void xa_page_store(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  for (uint64_t p = a; p < b; p++) {
    if (xa_is_err(xa_store(&s->xa, p, VAL(v), GFP_KERNEL))) fail("xa_store failed");
  }
}

// One aligned 2^k-page chunk as one multi-index entry. A larger entry around it is split first,
// one level at a time (xas_split goes down at most one node level per call).
static void xa_multi_store_order(struct xarray* xa, unsigned long s, unsigned k, void* e) {
  XA_STATE(xas, xa, s);
  for (;;) {
    xas_set_order(&xas, s, 0);  // keeps a node xas_nomem() allocated for the retry
    xas_lock(&xas);
    void* cur = xas_load(&xas);
    int o = cur ? xas_get_order(&xas) : 0;
    if (!cur || o <= (int)k) {
      xas_set_order(&xas, s, k);
      xas_store(&xas, e);
      xas_unlock(&xas);
      if (xas_nomem(&xas, GFP_KERNEL)) continue;
      if (xas_error(&xas)) fail("xas_store failed");
      return;
    }
    xas_unlock(&xas);
    unsigned shift = (unsigned)o - (unsigned)o % XA_CHUNK_SHIFT;
    unsigned n = shift >= XA_CHUNK_SHIFT && k < shift - XA_CHUNK_SHIFT ? shift - XA_CHUNK_SHIFT : k;
    unsigned long base = s & ~((1UL << o) - 1);
    XA_STATE_ORDER(sp, xa, base, n);
    xas_split_alloc(&sp, cur, o, GFP_KERNEL);
    if (xas_error(&sp)) fail("xas_split_alloc failed");
    xas_lock(&sp);
    xas_split(&sp, cur, o);
    xas_unlock(&sp);
  }
}

// A range as its maximal aligned power-of-two chunks.
static void xa_multi_store(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  while (a < b) {
    unsigned k = a ? (unsigned)__builtin_ctzll(a) : 63;
    while (k > 0 && (1ULL << k) > b - a) k--;
    xa_multi_store_order(&s->xa, a, k, VAL(v));
    a += 1ULL << k;
  }
}

static struct ival* ival_new(unsigned long start, unsigned long last, unsigned v) {
  struct ival* x = kmem_cache_alloc(ival_cache, GFP_KERNEL);
  if (!x) fail("out of memory");
  x->it.start = start;
  x->it.last = last;
  x->value = v;
  return x;
}

// Interval tree as a range map, kept canonical: overlapping nodes are cut back or removed, equal
// neighbours are absorbed into the new node.
static void it_assign(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  static struct ival** buf;
  static size_t cap;
  unsigned long last = b - 1;
  unsigned long qlo = a ? a - 1 : 0, qhi = b < s->pages ? b : last;
  size_t n = 0;
  for (struct interval_tree_node* x = interval_tree_iter_first(&s->it, qlo, qhi); x;
       x = interval_tree_iter_next(x, qlo, qhi)) {
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      buf = realloc(buf, cap * sizeof *buf);
      if (!buf) fail("out of memory");
    }
    buf[n++] = container_of(x, struct ival, it);
  }
  unsigned long ns = a, nl = last;
  struct ival* spare = NULL;
  for (size_t i = 0; i < n; i++) {
    struct ival* x = buf[i];
    unsigned long xs = x->it.start, xl = x->it.last;
    if (x->value != v && (xl < a || xs > last)) continue;  // a touching neighbour of another value
    interval_tree_remove(&x->it, &s->it);
    s->it_count--;
    if (x->value == v) {
      if (xs < ns) ns = xs;
      if (xl > nl) nl = xl;
    } else {
      if (xs < a) {
        struct ival* l = x;
        x = NULL;
        l->it.last = a - 1;
        interval_tree_insert(&l->it, &s->it);
        s->it_count++;
      }
      if (xl > last) {
        struct ival* r = x ? x : ival_new(0, 0, 0);
        x = NULL;
        r->it.start = last + 1;
        r->it.last = xl;
        r->value = buf[i]->value;
        interval_tree_insert(&r->it, &s->it);
        s->it_count++;
      }
    }
    if (x) {
      if (spare) kmem_cache_free(ival_cache, spare);
      spare = x;
    }
  }
  struct ival* y = spare ? spare : ival_new(0, 0, 0);
  y->it.start = ns;
  y->it.last = nl;
  y->value = v;
  interval_tree_insert(&y->it, &s->it);
  s->it_count++;
}

static unsigned it_value(struct st* s, uint64_t p) {
  struct interval_tree_node* x = interval_tree_iter_first(&s->it, p, p);
  return x ? container_of(x, struct ival, it)->value : ~0u;
}

static void st_init(struct st* s, enum kind k, uint64_t pages) {
  memset(s, 0, sizeof *s);
  s->kind = k;
  s->pages = pages;
  switch (k) {
    case EM: s->em = em_new(pages, 0); break;
    case MAPLE:
    case MAPLE_MERGE: mt_init_flags(&s->mt, 0); break;
    case XA:
    case XA_MULTI: xa_init(&s->xa); break;
    case ITREE: s->it = RB_ROOT_CACHED; break;
    default: break;
  }
}

// Sets [a, b) to v. For the per-page xarray this is the RFC's loop over every page.
static void st_assign(struct st* s, uint64_t a, uint64_t b, unsigned v) {
  switch (s->kind) {
    case EM: em_assign(s->em, a, b, v); break;
    case MAPLE: maple_store(s, a, b, v); break;
    case MAPLE_MERGE: maple_merge_store(s, a, b, v); break;
    case XA: xa_page_store(s, a, b, v); break;
    case XA_MULTI: xa_multi_store(s, a, b, v); break;
    case ITREE: it_assign(s, a, b, v); break;
    default: break;
  }
}

static unsigned st_load(struct st* s, uint64_t p) {
  switch (s->kind) {
    case EM: return em_value(s->em, p);
    case MAPLE:
    case MAPLE_MERGE: {
      void* e = mtree_load(&s->mt, p);
      return e ? (unsigned)xa_to_value(e) : ~0u;
    }
    case XA:
    case XA_MULTI: {
      void* e = xa_load(&s->xa, p);
      return e ? (unsigned)xa_to_value(e) : ~0u;
    }
    case ITREE: return it_value(s, p);
    default: return ~0u;
  }
}

static void st_destroy(struct st* s) {
  switch (s->kind) {
    case EM: em_free(s->em); break;
    case MAPLE:
    case MAPLE_MERGE: mtree_destroy(&s->mt); break;
    case XA:
    case XA_MULTI: xa_destroy(&s->xa); break;
    case ITREE: {
      struct interval_tree_node* x;
      while ((x = interval_tree_iter_first(&s->it, 0, ~0UL))) {
        interval_tree_remove(x, &s->it);
        kmem_cache_free(ival_cache, container_of(x, struct ival, it));
      }
      break;
    }
    default: break;
  }
  rcu_barrier();
}

// Bytes the structure's nodes take: allocator headers excluded, as the extent map's BytesUsed().
// Kernel structures share their node caches, so callers measure one structure alive at a time.
static double kind_bytes(struct st* s) {
  rcu_barrier();
  switch (s->kind) {
    case EM: return (double)em_bytes(s->em);
    case MAPLE:
    case MAPLE_MERGE: return (double)kbench_maple_node_bytes();
    case XA:
    case XA_MULTI: return (double)kmem_cache_get_alloc(radix_tree_node_cachep);
    case ITREE: return (double)kmem_cache_get_alloc(ival_cache);
    default: return 0;
  }
}

// ---- rounds, medians, output ----

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

struct series {
  double v[64];
  int n;
};

static void report(const char* workload, enum kind k, const char* unit, struct series* s, unsigned long long ops,
                   double scale, const char* note) {
  qsort(s->v, (size_t)s->n, sizeof s->v[0], cmp_double);
  double med = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
  printf(
      "{\"workload\":\"%s\",\"structure\":\"%s\",\"unit\":\"%s\",\"value\":%.4f,\"min\":%.4f,\"max\":%.4f,"
      "\"rounds\":%d,\"opsPerRound\":%llu,\"scale\":%.6g,\"note\":\"%s\"}\n",
      workload, kind_name[k], unit, med, s->v[0], s->v[s->n - 1], s->n, ops, scale, note ? note : "");
  fflush(stdout);
}

// One timed unit of work for a structure: returns the number of ops it did.
typedef unsigned long long (*step_fn)(struct st* s, void* arg);

// Calibrates each structure's batch to ~sample_ms, then runs `rounds` rounds; each round times
// every structure once, in an order rotated per round so none always runs first.
static void interleave(struct st* sts, const int* kinds, int nk, step_fn step, void** args, struct series* out,
                       unsigned long long* ops_per_round) {
  unsigned long long reps[NKINDS];
  for (int j = 0; j < nk; j++) {
    struct st* s = &sts[kinds[j]];
    double t = 0;
    unsigned long long n = 0;
    // The first pass warms caches and the allocator; the second sets the batch.
    for (int pass = 0; pass < 2; pass++) {
      double t0 = now_ns();
      n = 0;
      do {
        step(s, args[kinds[j]]);
        n++;
        t = now_ns() - t0;
      } while (t < sample_ms * 1e6 / 4);
    }
    reps[j] = (unsigned long long)(n * (sample_ms * 1e6) / t) + 1;
    out[kinds[j]].n = 0;
  }
  for (int r = 0; r < rounds; r++) {
    for (int jj = 0; jj < nk; jj++) {
      int j = (jj + r) % nk;
      struct st* s = &sts[kinds[j]];
      unsigned long long ops = 0;
      double t0 = now_ns();
      for (unsigned long long i = 0; i < reps[j]; i++) ops += step(s, args[kinds[j]]);
      double t = now_ns() - t0;
      struct series* se = &out[kinds[j]];
      se->v[se->n++] = t / (double)ops;
      ops_per_round[kinds[j]] = ops;
    }
  }
}

static int all_kinds[NKINDS] = {EM, MAPLE, MAPLE_MERGE, XA, XA_MULTI, ITREE};
static int nkinds = NKINDS;
#define FOR_KINDS(k) for (int k##_j = 0, k = all_kinds[0]; k##_j < nkinds && ((k = all_kinds[k##_j]), 1); k##_j++)

// ---- workloads ----

struct range_arg {
  uint64_t lo, hi;
};

// share then unshare of [lo, hi): one op is the pair.
static unsigned long long step_pair(struct st* s, void* arg) {
  struct range_arg* a = arg;
  st_assign(s, a->lo, a->hi, 1);
  st_assign(s, a->lo, a->hi, 0);
  return 1;
}

static void whole(const char* workload, uint64_t bytes) {
  uint64_t pages = bytes / PAGE_4K;
  uint64_t window = quick ? (1ULL << 18) : (1ULL << 20);
  if (window > pages) window = pages;
  struct st sts[NKINDS];
  struct range_arg ra[NKINDS];
  void* args[NKINDS];
  FOR_KINDS(k) {
    st_init(&sts[k], k, pages);
    ra[k].lo = k == XA ? pages - window : 0;
    ra[k].hi = pages;
    st_assign(&sts[k], ra[k].lo, ra[k].hi, 0);  // the per-page xarray holds an entry per page, as in the RFC
    args[k] = &ra[k];
  }
  struct series out[NKINDS];
  unsigned long long ops[NKINDS];
  interleave(sts, all_kinds, nkinds, step_pair, args, out, ops);
  FOR_KINDS(k) {
    for (uint64_t p = 0; p < pages; p += pages / 8 + 1) {
      if (p >= ra[k].lo && st_load(&sts[k], p) != 0) fail("whole-range: wrong value after share+unshare");
    }
    double scale = (double)pages / (double)(ra[k].hi - ra[k].lo);
    for (int i = 0; i < out[k].n; i++) out[k].v[i] *= scale;
    char note[256];
    if (scale > 1) {
      snprintf(note, sizeof note,
               "one xa_store per page: measured on the top %llu pages (full tree height, entries present) and scaled "
               "linearly x%.0f",
               (unsigned long long)window, scale);
    } else {
      snprintf(note, sizeof note, "%s", "");
    }
    report(workload, k, "ns", &out[k], ops[k], scale,
           scale > 1 ? note : "share + unshare of the whole file, one pair per op");
    st_destroy(&sts[k]);
  }
}

// 10^6 one-page extents, alternating 0/1, built in the given order of pages.
static void build_alternating(struct st* s, const uint32_t* order, uint64_t n) {
  if (s->kind == EM || s->kind == MAPLE || s->kind == MAPLE_MERGE || s->kind == ITREE) st_assign(s, 0, n, 0);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t p = order ? order[i] : i;
    st_assign(s, p, p + 1, (unsigned)(p & 1));
  }
}

static void check_alternating(struct st* s, uint64_t n, const char* where) {
  for (uint64_t p = 0; p < n; p++) {
    if (st_load(s, p) != (p & 1)) {
      char msg[160];
      snprintf(msg, sizeof msg, "%s: %s holds a wrong value at page %llu", where, kind_name[s->kind],
               (unsigned long long)p);
      fail(msg);
    }
  }
  if (s->kind == EM && (em_count(s->em) != n || !em_check(s->em)))
    fail("extent map: wrong extent count or broken invariants");
}

static uint32_t* shuffled(uint64_t n) {
  uint32_t* a = malloc(n * sizeof *a);
  if (!a) fail("out of memory");
  for (uint64_t i = 0; i < n; i++) a[i] = (uint32_t)i;
  for (uint64_t i = n - 1; i > 0; i--) {
    uint64_t j = rnd() % (i + 1);
    uint32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

#define FLIPS 1000
struct flip_arg {
  uint32_t* pages;  // FLIPS pages forward, then the same pages in another order
  int pools, next;
  uint64_t width;  // pages per extent
};

// FLIPS one-extent ops to the other value, then FLIPS back: the structure ends as it started.
static unsigned long long step_flips(struct st* s, void* arg) {
  struct flip_arg* f = arg;
  uint32_t* p = f->pages + (size_t)(f->next++ % f->pools) * 2 * FLIPS;
  uint64_t w = f->width;
  for (int i = 0; i < FLIPS; i++) st_assign(s, p[i] * w, p[i] * w + w, 1 - (p[i] & 1));
  for (int i = FLIPS; i < 2 * FLIPS; i++) st_assign(s, p[i] * w, p[i] * w + w, p[i] & 1);
  return 2 * FLIPS;
}

static uint32_t* flip_pools(int pools, uint64_t lo, uint64_t hi) {
  uint32_t* a = malloc((size_t)pools * 2 * FLIPS * sizeof *a);
  if (!a) fail("out of memory");
  for (int q = 0; q < pools; q++) {
    uint32_t* f = a + (size_t)q * 2 * FLIPS;
    for (int i = 0; i < FLIPS; i++) f[i] = (uint32_t)(lo + rnd() % (hi - lo));
    for (int i = 0; i < FLIPS; i++) f[FLIPS + i] = f[FLIPS - 1 - i];
    for (int i = FLIPS - 1; i > 0; i--) {
      int j = (int)(rnd() % (uint64_t)(i + 1));
      uint32_t t = f[FLIPS + i];
      f[FLIPS + i] = f[FLIPS + j];
      f[FLIPS + j] = t;
    }
  }
  return a;
}

// Builds every structure in random page order (bytes-random), then times random one-page ops.
static void random_page(void) {
  uint64_t n = EXTENTS;
  uint32_t* order = shuffled(n);
  struct st sts[NKINDS];
  double bytes[NKINDS];
  FOR_KINDS(k) {
    rcu_barrier();
    double before = k == EM ? 0 : kind_bytes(&(struct st){.kind = k});
    st_init(&sts[k], k, n);
    build_alternating(&sts[k], order, n);
    check_alternating(&sts[k], n, "random build");
    bytes[k] = kind_bytes(&sts[k]) - before;
  }
  free(order);
  FOR_KINDS(k) {
    struct series s = {.n = 1};
    s.v[0] = bytes[k] / (double)n;
    report("bytes-random", k, "B", &s, n, 1,
           k == XA ? "node bytes / pages after xa_store of every page in random order (one entry per page; here pages "
                     "= extents)"
                   : "node bytes / extents after building 10^6 alternating one-page extents in random page order "
                     "(deterministic)");
  }
  struct flip_arg fa = {.pools = 16, .width = 1};
  fa.pages = flip_pools(fa.pools, 0, n);
  void* args[NKINDS];
  FOR_KINDS(k) args[k] = &fa;
  struct series out[NKINDS];
  unsigned long long ops[NKINDS];
  interleave(sts, all_kinds, nkinds, step_flips, args, out, ops);
  FOR_KINDS(k) {
    check_alternating(&sts[k], n, "random-page");
    report("random-page", k, "ns", &out[k], ops[k], 1,
           k == MAPLE || k == XA || k == XA_MULTI
               ? "one-page store at a random page of 10^6 alternating one-page extents (to the other value and back; "
                 "no merging)"
               : "one-page store at a random page of 10^6 alternating one-page extents (to the other value and back; "
                 "merges with both neighbours, then splits)");
    st_destroy(&sts[k]);
  }
  free(fa.pages);
}

static void ascending_build(void) {
  uint64_t n = EXTENTS;
  struct series out[NKINDS], bytes[NKINDS];
  FOR_KINDS(k) out[k].n = bytes[k].n = 0;
  for (int r = 0; r < rounds; r++) {
    for (int jj = 0; jj < nkinds; jj++) {
      int k = all_kinds[(jj + r) % nkinds];
      double before = k == EM ? 0 : kind_bytes(&(struct st){.kind = k});
      struct st s;
      double t0 = now_ns();
      st_init(&s, k, n);
      build_alternating(&s, NULL, n);
      double t = now_ns() - t0;
      out[k].v[out[k].n++] = t / (double)n;
      if (r == 0) check_alternating(&s, n, "ascending build");
      bytes[k].v[bytes[k].n++] = (kind_bytes(&s) - before) / (double)n;
      st_destroy(&s);
    }
  }
  FOR_KINDS(k) {
    report("ascending-build", k, "ns", &out[k], n, 1,
           "build of 10^6 alternating one-page extents in ascending page order, per extent (one store per page)");
    report("bytes-ascending", k, "B", &bytes[k], n, 1,
           k == XA ? "node bytes / pages after xa_store of every page in ascending order (here pages = extents)"
                   : "node bytes / extents after the ascending build");
  }
}

// 10^6 extents of 2 MiB each, alternating; one op flips one 2 MiB extent to the other value.
static void op_2mib_among(void) {
  const uint64_t w = 512, n = EXTENTS, window = 2048;
  struct st sts[NKINDS];
  struct flip_arg fa[NKINDS];
  void* args[NKINDS];
  uint32_t* all = flip_pools(16, 0, n);
  uint32_t* top = flip_pools(16, n - window, n);
  FOR_KINDS(k) {
    st_init(&sts[k], k, n * w);
    uint64_t first = k == XA ? n - window : 0;
    if (k != XA) st_assign(&sts[k], 0, n * w, 0);
    for (uint64_t e = first; e < n; e++) st_assign(&sts[k], e * w, e * w + w, (unsigned)(e & 1));
    fa[k] = (struct flip_arg){.pages = k == XA ? top : all, .pools = 16, .width = w};
    args[k] = &fa[k];
  }
  struct series out[NKINDS];
  unsigned long long ops[NKINDS];
  interleave(sts, all_kinds, nkinds, step_flips, args, out, ops);
  FOR_KINDS(k) {
    uint64_t first = k == XA ? n - window : 0;
    for (uint64_t e = first; e < n; e += 997) {
      if (st_load(&sts[k], e * w + rnd() % w) != (e & 1)) fail("op-2mib-among: wrong value");
    }
    report("op-2mib-among", k, "ns", &out[k], ops[k], 1,
           k == XA ? "512 xa_stores per op; only the top 2048 of the 10^6 extents hold entries (the whole file per "
                     "page would take ~4.7 GB of nodes): cost per op does not depend on the other extents, and the "
                     "smaller tree is warmer in cache, so this is a lower bound"
                   : "one 2 MiB op: a random 2 MiB extent among 10^6 alternating 2 MiB extents flipped to the other "
                     "value and back");
    st_destroy(&sts[k]);
  }
  free(all);
  free(top);
}

// The RFC's gmem_clear_mappable loop shape: for each page, a lookup and a store; then the
// reverse loop puts the range back.
struct rfc_arg {
  uint64_t pages;
};
static unsigned long long step_rfc(struct st* s, void* arg) {
  uint64_t n = ((struct rfc_arg*)arg)->pages;
  unsigned bad = 0;
  for (uint64_t p = 0; p < n; p++) {
    bad |= st_load(s, p) ^ 1;
    st_assign(s, p, p + 1, 0);
  }
  for (uint64_t p = 0; p < n; p++) {
    bad |= st_load(s, p);
    st_assign(s, p, p + 1, 1);
  }
  if (bad) fail("rfc-loop: lookup saw a wrong value");
  return 2 * n;
}

static void rfc_loop(void) {
  struct rfc_arg ra = {.pages = 1ULL << 16};
  struct st sts[NKINDS];
  void* args[NKINDS];
  FOR_KINDS(k) {
    st_init(&sts[k], k, ra.pages);
    st_assign(&sts[k], 0, ra.pages, 1);
    args[k] = &ra;
  }
  struct series out[NKINDS];
  unsigned long long ops[NKINDS];
  interleave(sts, all_kinds, nkinds, step_rfc, args, out, ops);
  FOR_KINDS(k) {
    report("rfc-loop", k, "ns", &out[k], ops[k], 1,
           "per page of a 256 MiB range: one lookup and one one-page store (unshare loop, then the share loop back), "
           "per page");
    st_destroy(&sts[k]);
  }
}

// The uncontended pthread mutex pair every kernel-structure call pays in this harness.
static void lock_pair(void) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  struct series s = {.n = 0};
  const unsigned long long n = 1000000;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (unsigned long long i = 0; i < n; i++) {
      pthread_mutex_lock(&m);
      __asm__ volatile("" ::: "memory");
      pthread_mutex_unlock(&m);
    }
    s.v[s.n++] = (now_ns() - t0) / (double)n;
  }
  printf("{\"workload\":\"lock-pair\",\"structure\":\"pthread-mutex\",\"unit\":\"ns\",\"value\":%.4f,\"rounds\":%d}\n",
         (qsort(s.v, (size_t)s.n, sizeof s.v[0], cmp_double), s.v[s.n / 2]), s.n);
}

int main(int argc, char** argv) {
  const char* only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      quick = 1;
    } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--kind") && i + 1 < argc) {
      all_kinds[0] = atoi(argv[++i]);
      nkinds = 1;
      if (all_kinds[0] < 0 || all_kinds[0] >= NKINDS) fail("--kind must be 0..5");
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr, "usage: structures [--quick] [--rounds N] [--only WORKLOAD] [--kind N]\n");
      return 2;
    }
  }
  if (rounds < 7 || rounds > 64) fail("--rounds must be 7..64");
  if (quick) sample_ms = 5;
  rcu_register_thread();
  radix_tree_init();
  maple_tree_init();
  ival_cache = kmem_cache_create("kbench_ival", sizeof(struct ival), 0, 0, NULL);
  static const struct {
    const char* name;
    uint64_t bytes;
  } sizes[] = {{"whole-4kib", 4096ULL},
               {"whole-2mib", 2ULL << 20},
               {"whole-1gib", 1ULL << 30},
               {"whole-64gib", 64ULL << 30},
               {"whole-1tib", 1ULL << 40}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (!only || !strcmp(only, sizes[i].name)) whole(sizes[i].name, sizes[i].bytes);
  }
  if (!only || !strcmp(only, "random-page") || !strcmp(only, "bytes-random")) random_page();
  if (!only || !strcmp(only, "ascending-build") || !strcmp(only, "bytes-ascending")) ascending_build();
  if (!only || !strcmp(only, "op-2mib-among")) op_2mib_among();
  if (!only || !strcmp(only, "rfc-loop")) rfc_loop();
  if (!only || !strcmp(only, "lock-pair")) lock_pair();
  rcu_unregister_thread();
  return 0;
}
