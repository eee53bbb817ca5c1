#include "extent_map.h"

#include <algorithm>
#include <cstring>

namespace kg {

namespace em_detail {

struct Node {
  int32_t n = 0;
  bool leaf;
  explicit Node(bool isLeaf) : leaf(isLeaf) {}
};

struct Leaf : Node {
  Leaf() : Node(true) {}
  uint64_t keys[kLeafCap];  // extent starts, sorted; an extent ends at the next start (or pages_)
  uint32_t vals[kLeafCap];
};

struct Inner : Node {
  Inner() : Node(false) {}
  uint64_t keys[kInnerCap];  // keys[i] is exactly the smallest key under kids[i]
  Node* kids[kInnerCap];
};

}  // namespace em_detail

using em_detail::Inner;
using em_detail::kInnerCap;
using em_detail::kLeafCap;
using em_detail::Leaf;
using em_detail::Node;

// A root-to-leaf path, so iteration needs no sibling links to maintain.
struct ExtentMap::Cursor {
  Inner* path[kMaxDepth];
  int idx[kMaxDepth];
  int depth = 0;
  Leaf* leaf = nullptr;
  int i = 0;
};

namespace {

// How many of the n sorted keys are <= x (strict: < x). Two branch-free linear passes rather than
// a binary search, so the loads do not depend on each other and a node's cache misses overlap:
// first the last key of every block of 8 (one per cache line), then the 8 keys of the one block
// where the answer lies: 16 compares for a 64-key node instead of 64.
template <bool kStrict>
inline int CountBelow(const uint64_t* keys, int n, uint64_t x) {
  int full = n >> 3;
  int blocks = 0;
  for (int j = 0; j < full; j++) blocks += kStrict ? keys[8 * j + 7] < x : keys[8 * j + 7] <= x;
  int count = blocks * 8;
  int end = std::min(n, count + 8);
  for (int i = count; i < end; i++) count += kStrict ? keys[i] < x : keys[i] <= x;
  return count;
}

// Starts loading a leaf's values while its keys are being scanned: one memory wait, not two.
inline void PrefetchValues(const Leaf* leaf) {
  for (int off = 0; off < static_cast<int>(sizeof(leaf->vals)); off += 64) {
    __builtin_prefetch(reinterpret_cast<const char*>(leaf->vals) + off);
  }
}

// The same for an inner node's child pointers: the pointer the scan picks is then already loaded.
inline void PrefetchKids(const Inner* in) {
  for (int off = 0; off < static_cast<int>(sizeof(in->kids)); off += 64) {
    __builtin_prefetch(reinterpret_cast<const char*>(in->kids) + off);
  }
}

inline int ChildFor(const Inner* in, uint64_t x) {
  int i = CountBelow<false>(in->keys, in->n, x) - 1;
  return i < 0 ? 0 : i;
}

inline uint64_t MinKey(const Node* node) {
  return node->leaf ? static_cast<const Leaf*>(node)->keys[0] : static_cast<const Inner*>(node)->keys[0];
}

inline uint32_t* Payload(Leaf* x) { return x->vals; }
inline Node** Payload(Inner* x) { return x->kids; }
inline int Cap(const Node* x) { return x->leaf ? kLeafCap : kInnerCap; }

// Entry moves shared by leaves and inner nodes: keys in one array, payloads in the other.
template <class N>
void OpenGap(N* x, int pos, int cnt) {
  int tail = x->n - pos;
  std::memmove(x->keys + pos + cnt, x->keys + pos, tail * sizeof(x->keys[0]));
  std::memmove(Payload(x) + pos + cnt, Payload(x) + pos, tail * sizeof(Payload(x)[0]));
  x->n += cnt;
}

template <class N>
void CloseGap(N* x, int pos, int cnt) {
  int tail = x->n - pos - cnt;
  std::memmove(x->keys + pos, x->keys + pos + cnt, tail * sizeof(x->keys[0]));
  std::memmove(Payload(x) + pos, Payload(x) + pos + cnt, tail * sizeof(Payload(x)[0]));
  x->n -= cnt;
}

template <class N>
void CopyEntries(N* dst, int dpos, N* src, int spos, int cnt) {
  std::memcpy(dst->keys + dpos, src->keys + spos, cnt * sizeof(dst->keys[0]));
  std::memcpy(Payload(dst) + dpos, Payload(src) + spos, cnt * sizeof(Payload(dst)[0]));
}

template <class N, class P>
void InsertAt(N* x, int pos, uint64_t key, P payload) {
  OpenGap(x, pos, 1);
  x->keys[pos] = key;
  Payload(x)[pos] = payload;
}

// Moves R's entries to the end of L (L->n + R->n <= cap).
template <class N>
void Append(N* l, N* r) {
  CopyEntries(l, l->n, r, 0, r->n);
  l->n += r->n;
  r->n = 0;
}

// Evens out two siblings so both are at least half full (their sum exceeds the capacity).
template <class N>
void Redistribute(N* l, N* r) {
  int wantL = (l->n + r->n) / 2;
  if (l->n < wantL) {
    int m = wantL - l->n;
    CopyEntries(l, l->n, r, 0, m);
    l->n += m;
    CloseGap(r, 0, m);
  } else if (l->n > wantL) {
    int m = l->n - wantL;
    OpenGap(r, 0, m);
    CopyEntries(r, 0, l, wantL, m);
    l->n = wantL;
  }
}

}  // namespace

ExtentMap::ExtentMap(uint64_t pages, uint32_t initial) : pages_(pages) {
  Leaf* leaf = new Leaf();
  leaves_ = 1;
  if (pages > 0) {
    leaf->keys[0] = 0;
    leaf->vals[0] = initial;
    leaf->n = 1;
    count_ = 1;
  }
  root_ = leaf;
}

ExtentMap::~ExtentMap() { FreeSubtree(root_); }

size_t ExtentMap::BytesUsed() const { return sizeof(*this) + leaves_ * sizeof(Leaf) + inners_ * sizeof(Inner); }

int ExtentMap::Depth() const {
  int d = 1;
  for (const Node* x = root_; !x->leaf; x = static_cast<const Inner*>(x)->kids[0]) d++;
  return d;
}

void ExtentMap::FreeSubtree(Node* node) {
  if (node->leaf) {
    count_ -= node->n;
    leaves_--;
    delete static_cast<Leaf*>(node);
    return;
  }
  Inner* in = static_cast<Inner*>(node);
  for (int k = 0; k < in->n; k++) FreeSubtree(in->kids[k]);
  inners_--;
  delete in;
}

void ExtentMap::Seek(Cursor* c, uint64_t x) const {
  Node* node = root_;
  c->depth = 0;
  while (!node->leaf) {
    Inner* in = static_cast<Inner*>(node);
    PrefetchKids(in);
    int k = ChildFor(in, x);
    c->path[c->depth] = in;
    c->idx[c->depth] = k;
    c->depth++;
    node = in->kids[k];
  }
  c->leaf = static_cast<Leaf*>(node);
  PrefetchValues(c->leaf);
  int k = CountBelow<false>(c->leaf->keys, c->leaf->n, x) - 1;
  c->i = k < 0 ? 0 : k;
}

bool ExtentMap::Next(Cursor* c) const {
  if (++c->i < c->leaf->n) return true;
  int d = c->depth - 1;
  while (d >= 0 && c->idx[d] + 1 >= c->path[d]->n) d--;
  if (d < 0) return false;
  c->idx[d]++;
  Node* node = c->path[d]->kids[c->idx[d]];
  for (d = d + 1; !node->leaf; d++) {
    Inner* in = static_cast<Inner*>(node);
    c->path[d] = in;
    c->idx[d] = 0;
    node = in->kids[0];
  }
  c->leaf = static_cast<Leaf*>(node);
  c->i = 0;
  return true;
}

uint64_t ExtentMap::RunEnd(const Cursor& c) const {
  if (c.i + 1 < c.leaf->n) return c.leaf->keys[c.i + 1];
  // Separators are exact minima, so the next start is the nearest right separator on the path.
  for (int d = c.depth - 1; d >= 0; d--) {
    if (c.idx[d] + 1 < c.path[d]->n) return c.path[d]->keys[c.idx[d] + 1];
  }
  return pages_;
}

uint32_t ExtentMap::ValueAtUnchecked(uint64_t page) const {
  const Node* node = root_;
  while (!node->leaf) {
    const Inner* in = static_cast<const Inner*>(node);
    PrefetchKids(in);
    node = in->kids[ChildFor(in, page)];
  }
  const Leaf* leaf = static_cast<const Leaf*>(node);
  PrefetchValues(leaf);
  return leaf->vals[CountBelow<false>(leaf->keys, leaf->n, page) - 1];
}

bool ExtentMap::FirstKeyAtLeast(uint64_t x, uint64_t* key) const {
  const Node* node = root_;
  bool have = false;
  uint64_t candidate = 0;
  while (!node->leaf) {
    const Inner* in = static_cast<const Inner*>(node);
    int k = ChildFor(in, x);
    if (k + 1 < in->n) {
      have = true;
      candidate = in->keys[k + 1];
    }
    node = in->kids[k];
  }
  const Leaf* leaf = static_cast<const Leaf*>(node);
  int j = CountBelow<true>(leaf->keys, leaf->n, x);
  if (j < leaf->n) {
    *key = leaf->keys[j];
    return true;
  }
  *key = candidate;
  return have;
}

void ExtentMap::Insert(uint64_t key, uint32_t value) {
  Node* right = InsertRec(root_, key, value);
  if (right == nullptr) return;
  Inner* top = new Inner();
  inners_++;
  top->n = 2;
  top->keys[0] = MinKey(root_);
  top->kids[0] = root_;
  top->keys[1] = MinKey(right);
  top->kids[1] = right;
  root_ = top;
}

// Inserts a key not yet present; returns the new right sibling when the node had to split.
Node* ExtentMap::InsertRec(Node* node, uint64_t key, uint32_t value) {
  if (node->leaf) {
    Leaf* leaf = static_cast<Leaf*>(node);
    int pos = CountBelow<false>(leaf->keys, leaf->n, key);
    count_++;
    if (leaf->n < kLeafCap) {
      InsertAt(leaf, pos, key, value);
      return nullptr;
    }
    Leaf* right = new Leaf();
    leaves_++;
    const int mid = kLeafCap / 2;
    CopyEntries(right, 0, leaf, mid, kLeafCap - mid);
    right->n = kLeafCap - mid;
    leaf->n = mid;
    if (pos <= mid) {
      InsertAt(leaf, pos, key, value);
    } else {
      InsertAt(right, pos - mid, key, value);
    }
    return right;
  }
  Inner* in = static_cast<Inner*>(node);
  int k = ChildFor(in, key);
  if (in->kids[k]->leaf && in->kids[k]->n == kLeafCap && MakeRoom(in, k)) k = ChildFor(in, key);
  Node* split = InsertRec(in->kids[k], key, value);
  in->keys[k] = MinKey(in->kids[k]);
  if (split == nullptr) return nullptr;
  int pos = k + 1;
  if (in->n < kInnerCap) {
    InsertAt(in, pos, MinKey(split), split);
    return nullptr;
  }
  Inner* right = new Inner();
  inners_++;
  const int mid = kInnerCap / 2;
  CopyEntries(right, 0, in, mid, kInnerCap - mid);
  right->n = kInnerCap - mid;
  in->n = mid;
  if (pos <= mid) {
    InsertAt(in, pos, MinKey(split), split);
  } else {
    InsertAt(right, pos - mid, MinKey(split), split);
  }
  return right;
}

// Before a full leaf splits, moves half of a sibling's free room worth of entries into that sibling
// (B*-tree style). Leaves then fill to 85-100%: an ascending build tops up the left neighbour
// instead of leaving a trail of half-empty leaves. Separators stay exact minima.
bool ExtentMap::MakeRoom(Inner* in, int k) {
  Leaf* c = static_cast<Leaf*>(in->kids[k]);
  if (k > 0 && in->kids[k - 1]->n < kLeafCap - 1) {
    Leaf* l = static_cast<Leaf*>(in->kids[k - 1]);
    int m = (kLeafCap - l->n + 1) / 2;
    CopyEntries(l, l->n, c, 0, m);
    l->n += m;
    CloseGap(c, 0, m);
    in->keys[k] = c->keys[0];
    return true;
  }
  if (k + 1 < in->n && in->kids[k + 1]->n < kLeafCap - 1) {
    Leaf* r = static_cast<Leaf*>(in->kids[k + 1]);
    int m = (kLeafCap - r->n + 1) / 2;
    OpenGap(r, 0, m);
    CopyEntries(r, 0, c, c->n - m, m);
    c->n -= m;
    in->keys[k + 1] = r->keys[0];
    return true;
  }
  return false;
}

// Removes every key in [lo, hi): whole subtrees in between are freed, only the two boundary
// paths are edited, then those two paths are brought back to half-full nodes.
void ExtentMap::EraseRange(uint64_t lo, uint64_t hi) {
  if (lo >= hi || root_->n == 0) return;
  EraseRec(root_, lo, hi);
  CollapseRoot();
  Repair(lo);
  uint64_t succ;
  if (FirstKeyAtLeast(lo, &succ)) Repair(succ);
}

void ExtentMap::EraseRec(Node* node, uint64_t lo, uint64_t hi) {
  if (node->leaf) {
    Leaf* leaf = static_cast<Leaf*>(node);
    int a = CountBelow<true>(leaf->keys, leaf->n, lo);
    int b = CountBelow<true>(leaf->keys, leaf->n, hi);
    if (b > a) {
      CloseGap(leaf, a, b - a);
      count_ -= b - a;
    }
    return;
  }
  Inner* in = static_cast<Inner*>(node);
  int a = ChildFor(in, lo);
  int b = ChildFor(in, hi - 1);
  // Children strictly between a and b hold keys in [lo, hi) only.
  if (b - a > 1) {
    for (int k = a + 1; k < b; k++) FreeSubtree(in->kids[k]);
    CloseGap(in, a + 1, b - a - 1);
    b = a + 1;
  }
  EraseRec(in->kids[a], lo, hi);
  if (b != a) EraseRec(in->kids[b], lo, hi);
  for (int k = b; k >= a; k--) {
    Node* child = in->kids[k];
    if (child->n == 0) {
      FreeSubtree(child);
      CloseGap(in, k, 1);
    } else {
      in->keys[k] = MinKey(child);
    }
  }
}

void ExtentMap::CollapseRoot() {
  while (!root_->leaf && root_->n <= 1) {
    Inner* old = static_cast<Inner*>(root_);
    if (old->n == 1) {
      root_ = old->kids[0];
    } else {
      root_ = new Leaf();
      leaves_++;
    }
    inners_--;
    delete old;
  }
}

// Bottom-up along the search path of x, so a parent that lost a child to a merge is fixed next.
// A node left with a single child cannot be fixed from inside; the next pass, after its parent
// merged it with a sibling, can.
void ExtentMap::Repair(uint64_t x) {
  for (int pass = 0; pass < kMaxDepth; pass++) {
    CollapseRoot();
    Inner* path[kMaxDepth];
    int depth = 0;
    for (Node* node = root_; !node->leaf; node = path[depth - 1]->kids[ChildFor(path[depth - 1], x)]) {
      path[depth++] = static_cast<Inner*>(node);
    }
    bool stuck = false;
    for (int d = depth - 1; d >= 0; d--) {
      Inner* in = path[d];
      for (;;) {
        int k = ChildFor(in, x);
        Node* child = in->kids[k];
        if (child->n >= (child->leaf ? kLeafMin : kInnerMin)) break;
        if (in->n == 1) {
          stuck = stuck || d > 0;  // a root with one child just collapses
          break;
        }
        FixChild(in, k);
      }
    }
    if (!stuck) break;
  }
  CollapseRoot();
}

// Merges kids[i] with a sibling, or evens them out when both would not fit in one node.
void ExtentMap::FixChild(Inner* p, int i) {
  int j = i + 1 < p->n ? i + 1 : i - 1;
  int l = std::min(i, j);
  int r = std::max(i, j);
  Node* left = p->kids[l];
  Node* right = p->kids[r];
  if (left->n + right->n <= Cap(left)) {
    if (left->leaf) {
      Append(static_cast<Leaf*>(left), static_cast<Leaf*>(right));
    } else {
      Append(static_cast<Inner*>(left), static_cast<Inner*>(right));
    }
    FreeSubtree(right);  // empty now
    CloseGap(p, r, 1);
  } else {
    if (left->leaf) {
      Redistribute(static_cast<Leaf*>(left), static_cast<Leaf*>(right));
    } else {
      Redistribute(static_cast<Inner*>(left), static_cast<Inner*>(right));
    }
    p->keys[r] = MinKey(right);
  }
  p->keys[l] = MinKey(left);
}

MapStatus ExtentMap::Assign(uint64_t start, uint64_t end, uint32_t value) {
  if (start > end || end > pages_) return MapStatus::kBadRange;
  if (start == end) return MapStatus::kOk;
  if (start == 0 && end == pages_) {
    // The whole file becomes one extent (a whole-range share/unshare): no search, whatever the
    // tree held is freed.
    if (!root_->leaf) {
      FreeSubtree(root_);
      root_ = new Leaf();
      leaves_++;
    }
    Leaf* leaf = static_cast<Leaf*>(root_);
    leaf->keys[0] = 0;
    leaf->vals[0] = value;
    leaf->n = 1;
    count_ = 1;
    return MapStatus::kOk;
  }
  Cursor c;
  Seek(&c, start);
  if (c.leaf->vals[c.i] == value && RunEnd(c) >= end) return MapStatus::kOk;
  if (AssignInLeaf(c, start, end, value)) return MapStatus::kOk;
  bool hasPrev = start > 0;
  uint32_t prevVal = hasPrev ? ValueAtUnchecked(start - 1) : 0;
  bool hasTail = end < pages_;
  uint32_t tailVal = hasTail ? ValueAtUnchecked(end) : 0;
  // Drop every start in [start, end], then put back only the starts canonical form needs.
  EraseRange(start, hasTail ? end + 1 : end);
  if (!hasPrev || prevVal != value) Insert(start, value);
  if (hasTail && tailVal != value) Insert(end, tailVal);
  return MapStatus::kOk;
}

// The common small assign: every start it reads or rewrites lies in the cursor's leaf and the
// leaf stays within its fill bounds with the same first key, so no other node changes.
bool ExtentMap::AssignInLeaf(const Cursor& c, uint64_t start, uint64_t end, uint32_t value) {
  Leaf* leaf = c.leaf;
  int n = leaf->n;
  // Where the leaf's key range ends: the next separator on the path, or pages_.
  uint64_t leafEnd = pages_;
  for (int d = c.depth - 1; d >= 0; d--) {
    if (c.idx[d] + 1 < c.path[d]->n) {
      leafEnd = c.path[d]->keys[c.idx[d] + 1];
      break;
    }
  }
  if (end >= leafEnd && leafEnd < pages_) return false;  // starts up to end may sit in later leaves
  bool hasTail = end < pages_;
  int a = c.leaf->keys[c.i] < start ? c.i + 1 : c.i;  // first key >= start
  bool hasPrev = start > 0;
  if (hasPrev && a == 0) return false;  // the extent before start is in another leaf
  uint32_t prevVal = hasPrev ? leaf->vals[a - 1] : 0;
  int b = a + CountBelow<false>(leaf->keys + a, n - a, end);  // first key > end
  uint32_t tailVal = hasTail ? leaf->vals[b - 1] : 0;         // b > c.i: keys[c.i] <= start <= end
  uint64_t newKeys[2];
  uint32_t newVals[2];
  int ins = 0;
  if (!hasPrev || prevVal != value) {
    newKeys[ins] = start;
    newVals[ins++] = value;
  }
  if (hasTail && tailVal != value) {
    newKeys[ins] = end;
    newVals[ins++] = tailVal;
  }
  int newN = n - (b - a) + ins;
  bool isRoot = c.depth == 0;
  if (newN > kLeafCap || newN < (isRoot ? 1 : kLeafMin)) return false;
  if (a == 0 && (ins == 0 || newKeys[0] != leaf->keys[0])) return false;  // the separator would move
  int tail = n - b;
  std::memmove(leaf->keys + a + ins, leaf->keys + b, tail * sizeof(leaf->keys[0]));
  std::memmove(leaf->vals + a + ins, leaf->vals + b, tail * sizeof(leaf->vals[0]));
  for (int k = 0; k < ins; k++) {
    leaf->keys[a + k] = newKeys[k];
    leaf->vals[a + k] = newVals[k];
  }
  leaf->n = newN;
  count_ = count_ + newN - n;
  return true;
}

MapStatus ExtentMap::Add(uint64_t start, uint64_t end, int64_t delta) {
  if (start > end || end > pages_) return MapStatus::kBadRange;
  if (start == end || delta == 0) return MapStatus::kOk;
  Cursor c;
  Seek(&c, start);
  if (RunEnd(c) >= end) {
    // One extent covers the range: the same as assigning its value plus delta.
    uint32_t v = c.leaf->vals[c.i];
    if (delta < 0 && delta < -static_cast<int64_t>(v)) return MapStatus::kUnderflow;
    if (delta > 0 && static_cast<uint64_t>(delta) > UINT32_MAX - v) return MapStatus::kOverflow;
    return Assign(start, end, static_cast<uint32_t>(static_cast<int64_t>(v) + delta));
  }
  // Check every extent first so a failure changes nothing.
  for (;;) {
    uint32_t v = c.leaf->vals[c.i];
    if (delta < 0 && delta < -static_cast<int64_t>(v)) return MapStatus::kUnderflow;
    if (delta > 0 && static_cast<uint64_t>(delta) > UINT32_MAX - v) return MapStatus::kOverflow;
    if (RunEnd(c) >= end) break;
    Next(&c);
  }
  uint64_t key;
  if (!FirstKeyAtLeast(start, &key) || key != start) Insert(start, ValueAtUnchecked(start));
  if (end < pages_ && (!FirstKeyAtLeast(end, &key) || key != end)) Insert(end, ValueAtUnchecked(end));
  Seek(&c, start);
  do {
    c.leaf->vals[c.i] = static_cast<uint32_t>(static_cast<int64_t>(c.leaf->vals[c.i]) + delta);
  } while (Next(&c) && c.leaf->keys[c.i] < end);
  // Inside the range neighbours stayed different; only the two edges can now merge.
  if (start > 0 && ValueAtUnchecked(start - 1) == ValueAtUnchecked(start)) EraseRange(start, start + 1);
  if (end < pages_ && ValueAtUnchecked(end - 1) == ValueAtUnchecked(end)) EraseRange(end, end + 1);
  return MapStatus::kOk;
}

MapStatus ExtentMap::Query(uint64_t start, uint64_t end, std::vector<Extent>* out) const {
  if (start > end || end > pages_) return MapStatus::kBadRange;
  if (start == end) return MapStatus::kOk;
  Cursor c;
  Seek(&c, start);
  for (;;) {
    uint64_t s = std::max(c.leaf->keys[c.i], start);
    uint64_t e = RunEnd(c);
    if (e >= end) {
      out->push_back({s, end, c.leaf->vals[c.i]});
      return MapStatus::kOk;
    }
    out->push_back({s, e, c.leaf->vals[c.i]});
    Next(&c);
  }
}

MapStatus ExtentMap::ValueAt(uint64_t page, uint32_t* value) const {
  if (page >= pages_) return MapStatus::kBadRange;
  *value = ValueAtUnchecked(page);
  return MapStatus::kOk;
}

MapStatus ExtentMap::FindFirst(uint64_t start, uint64_t end, uint32_t value, bool equal, bool* found,
                               uint64_t* page) const {
  *found = false;
  if (start > end || end > pages_) return MapStatus::kBadRange;
  if (start == end) return MapStatus::kOk;
  Cursor c;
  Seek(&c, start);
  for (;;) {
    if ((c.leaf->vals[c.i] == value) == equal) {
      *found = true;
      *page = std::max(c.leaf->keys[c.i], start);
      return MapStatus::kOk;
    }
    if (RunEnd(c) >= end) return MapStatus::kOk;
    Next(&c);
  }
}

void ExtentMap::Resize(uint64_t pages, uint32_t fill) {
  if (pages < pages_) {
    EraseRange(pages, pages_);
  } else if (pages > pages_) {
    if (pages_ == 0) {
      Insert(0, fill);
    } else if (ValueAtUnchecked(pages_ - 1) != fill) {
      Insert(pages_, fill);
    }
  }
  pages_ = pages;
}

bool ExtentMap::CheckRec(const Node* node, int depth, int leafDepth, bool isRoot, size_t* keys, size_t* leaves,
                         size_t* inners, std::string* why) const {
  int minFill = isRoot ? (node->leaf ? 0 : 2) : (node->leaf ? kLeafMin : kInnerMin);
  if (node->n < minFill || node->n > Cap(node)) {
    *why = "node fill " + std::to_string(node->n) + " at depth " + std::to_string(depth);
    return false;
  }
  const uint64_t* k = node->leaf ? static_cast<const Leaf*>(node)->keys : static_cast<const Inner*>(node)->keys;
  for (int i = 1; i < node->n; i++) {
    if (k[i - 1] >= k[i]) {
      *why = "keys not increasing in a node";
      return false;
    }
  }
  if (node->leaf) {
    if (depth != leafDepth) {
      *why = "leaves at different depths";
      return false;
    }
    *keys += node->n;
    ++*leaves;
    return true;
  }
  ++*inners;
  const Inner* in = static_cast<const Inner*>(node);
  for (int i = 0; i < in->n; i++) {
    if (in->kids[i]->n == 0 || MinKey(in->kids[i]) != in->keys[i]) {
      *why = "separator is not the child's smallest key";
      return false;
    }
    if (!CheckRec(in->kids[i], depth + 1, leafDepth, false, keys, leaves, inners, why)) return false;
  }
  return true;
}

bool ExtentMap::CheckInvariants(std::string* why) const {
  size_t keys = 0, leaves = 0, inners = 0;
  if (!CheckRec(root_, 1, Depth(), true, &keys, &leaves, &inners, why)) return false;
  if (keys != count_ || leaves != leaves_ || inners != inners_) {
    *why = "counters disagree with the tree";
    return false;
  }
  if (pages_ == 0) {
    if (count_ != 0) *why = "empty map holds extents";
    return count_ == 0;
  }
  Cursor c;
  Seek(&c, 0);
  if (count_ == 0 || c.leaf->keys[c.i] != 0) {
    *why = "the first extent does not start at 0";
    return false;
  }
  size_t seen = 1;
  uint64_t prevKey = 0;
  uint32_t prevVal = c.leaf->vals[c.i];
  while (Next(&c)) {
    uint64_t k = c.leaf->keys[c.i];
    uint32_t v = c.leaf->vals[c.i];
    if (k <= prevKey || k >= pages_ || v == prevVal) {
      *why = "extent at " + std::to_string(k) + " is out of order, past the end, or equal to its neighbour";
      return false;
    }
    prevKey = k;
    prevVal = v;
    seen++;
  }
  if (seen != count_) {
    *why = "iteration saw a different number of extents";
    return false;
  }
  return true;
}

}  // namespace kg
