// The range store: page ranges [start, end) of a file mapped to a uint32 value, kept canonical
// (no two adjacent extents with equal value) so a 1 TiB conversion costs the same as one page.
// A B+tree with wide nodes: leaves hold sorted start keys in one array and values in another; an
// extent ends where the next one starts. Every operation is O(log n + k) for k extents touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kg {

struct Extent {
  uint64_t start;
  uint64_t end;
  uint32_t value;
};

enum class MapStatus {
  kOk,
  kBadRange,   // start > end, end > pages, or page >= pages
  kUnderflow,  // add() would take a value below 0
  kOverflow,   // add() would take a value above 2^32-1
};

namespace em_detail {
// Wide nodes: 64 entries fill 776-byte leaves (sorted starts, then values) and 1032-byte inner nodes.
constexpr int kLeafCap = 64;
constexpr int kInnerCap = 64;
struct Node;
struct Leaf;
struct Inner;
}  // namespace em_detail

class ExtentMap {
 public:
  ExtentMap(uint64_t pages, uint32_t initial);
  ~ExtentMap();
  ExtentMap(const ExtentMap&) = delete;
  ExtentMap& operator=(const ExtentMap&) = delete;

  uint64_t pages() const { return pages_; }
  // Extents in the map; 0 only when pages() == 0.
  size_t ExtentCount() const { return count_; }
  // Bytes allocated for the nodes plus this object (allocator headers excluded).
  size_t BytesUsed() const;

  MapStatus Assign(uint64_t start, uint64_t end, uint32_t value);
  // Adds delta to every page in [start, end); on kUnderflow/kOverflow nothing has changed.
  MapStatus Add(uint64_t start, uint64_t end, int64_t delta);
  // Appends the extents clipped to [start, end), in order, to *out.
  MapStatus Query(uint64_t start, uint64_t end, std::vector<Extent>* out) const;
  MapStatus ValueAt(uint64_t page, uint32_t* value) const;
  // First page in [start, end) whose value is == value (equal) or != value (!equal). Returns false
  // in *found when there is none. Costs O(log n) plus the extents skipped.
  MapStatus FindFirst(uint64_t start, uint64_t end, uint32_t value, bool equal, bool* found, uint64_t* page) const;
  // Grows (new pages take fill) or shrinks the covered range to [0, pages).
  void Resize(uint64_t pages, uint32_t fill);

  // Full structural check (sorted keys, exact separators, uniform depth, fill, canonical form,
  // counts). Linear time; for tests and benchmarks. Returns false and a reason on failure.
  bool CheckInvariants(std::string* why) const;
  int Depth() const;

 private:
  using Node = em_detail::Node;
  using Leaf = em_detail::Leaf;
  using Inner = em_detail::Inner;
  struct Cursor;

  static constexpr int kLeafMin = em_detail::kLeafCap / 2;
  static constexpr int kInnerMin = em_detail::kInnerCap / 2;
  static constexpr int kMaxDepth = 40;

  uint32_t ValueAtUnchecked(uint64_t page) const;
  bool FirstKeyAtLeast(uint64_t x, uint64_t* key) const;
  bool AssignInLeaf(const Cursor& c, uint64_t start, uint64_t end, uint32_t value);
  void Insert(uint64_t key, uint32_t value);
  Node* InsertRec(Node* node, uint64_t key, uint32_t value);
  bool MakeRoom(Inner* in, int k);
  void EraseRange(uint64_t lo, uint64_t hi);
  void EraseRec(Node* node, uint64_t lo, uint64_t hi);
  void Repair(uint64_t x);
  void FixChild(Inner* p, int i);
  void CollapseRoot();
  void FreeSubtree(Node* node);
  void Seek(Cursor* c, uint64_t x) const;
  bool Next(Cursor* c) const;
  uint64_t RunEnd(const Cursor& c) const;
  bool CheckRec(const Node* node, int depth, int leafDepth, bool isRoot, size_t* keys, size_t* leaves, size_t* inners,
                std::string* why) const;

  Node* root_ = nullptr;
  uint64_t pages_ = 0;
  size_t count_ = 0;
  size_t leaves_ = 0;
  size_t inners_ = 0;
};

}  // namespace kg
