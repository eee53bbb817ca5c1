// Host references on guest_memfd pages, taken the way a process can from userspace: the range is
// mapped and vmspliced into pipes, whose buffers then hold a reference on each page (as a pinned
// page would) until the pipes are closed. Owned by the guest_memfd object; closing the file
// releases them all.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>
#include <vector>

namespace kg {

class PageHolds {
 public:
  // Pages per hold at most (64 MiB): the pipe buffers it takes count against the user's pipe quota.
  static constexpr uint64_t kMaxPages = 16384;
  PageHolds() = default;
  PageHolds(const PageHolds&) = delete;
  PageHolds& operator=(const PageHolds&) = delete;
  ~PageHolds() { ReleaseAll(); }

  // References the pages covering [offset, offset + length) of the file; returns the hold's id.
  uint32_t Take(Napi::Env env, int fd, uint64_t offset, uint64_t length);
  // Idempotent: an id already released (or never taken) does nothing.
  void Release(uint32_t id);
  void ReleaseAll();
  // Test aid: the first `n` bytes the hold's first page still carries (tee, the pipe keeps them).
  Napi::Value Peek(Napi::Env env, uint32_t id, uint32_t n);

 private:
  std::map<uint32_t, std::vector<int>> holds_;  // id -> read ends of its pipes
  uint32_t next_ = 1;
};

}  // namespace kg
