#include "page_hold.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fault_inject.h"

namespace kg {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPagesPerPipe = 256;  // 1 MiB: the default pipe-max-size, so no privilege is needed

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

}  // namespace

uint32_t PageHolds::Take(Napi::Env env, int fd, uint64_t offset, uint64_t length) {
  uint64_t first = offset / kPage;
  uint64_t pages = (offset + length + kPage - 1) / kPage - first;
  if (pages == 0) ThrowRangeError(env, "a hold must cover at least one byte");
  if (pages > kMaxPages) {
    ThrowUnsupported(env, "hold",
                     "a hold on the kvm backend covers at most 64 MiB (its pipe buffers are quota-limited)");
  }
  size_t bytes = pages * kPage;
  void* map = InjectFault(Sys::Mmap)
                  ? MAP_FAILED
                  : mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first * kPage));
  if (map == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  std::vector<int> readers;
  int err = 0;
  const char* syscall = nullptr;
  for (uint64_t done = 0; done < pages && err == 0;) {
    uint64_t n = std::min(kPagesPerPipe, pages - done);
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
      err = errno;
      syscall = "pipe2";
      break;
    }
    readers.push_back(p[0]);
    if (fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(n * kPage)) < 0) {
      err = errno;
      syscall = "fcntl";
    }
    // vmsplice takes a reference on each page it moves into the pipe; a page the host may not
    // map fails the call (EFAULT), never raises SIGBUS.
    uint8_t* at = static_cast<uint8_t*>(map) + done * kPage;
    size_t left = n * kPage;
    while (err == 0 && left > 0) {
      iovec iov{at, left};
      ssize_t moved = vmsplice(p[1], &iov, 1, 0);
      if (moved < 0) {
        if (errno == EINTR) continue;
        err = errno;
        syscall = "vmsplice";
        break;
      }
      at += moved;
      left -= static_cast<size_t>(moved);
    }
    close(p[1]);
    done += n;
  }
  munmap(map, bytes);
  if (err != 0) {
    CloseAll(readers);
    ThrowErrno(env, err, syscall);
  }
  uint32_t id = next_++;
  holds_.emplace(id, std::move(readers));
  return id;
}

void PageHolds::Release(uint32_t id) {
  auto it = holds_.find(id);
  if (it == holds_.end()) return;
  CloseAll(it->second);
  holds_.erase(it);
}

void PageHolds::ReleaseAll() {
  for (auto& [id, fds] : holds_) CloseAll(fds);
  holds_.clear();
}

Napi::Value PageHolds::Peek(Napi::Env env, uint32_t id, uint32_t n) {
  auto it = holds_.find(id);
  if (it == holds_.end() || it->second.empty()) return env.Null();
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) ThrowErrno(env, errno, "pipe2");
  ssize_t copied = tee(it->second.front(), p[1], n, SPLICE_F_NONBLOCK);
  int err = errno;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, copied > 0 ? static_cast<size_t>(copied) : 0);
  if (copied > 0 && read(p[0], out.Data(), static_cast<size_t>(copied)) != copied) err = errno;
  close(p[0]);
  close(p[1]);
  if (copied < 0) ThrowErrno(env, err, "tee");
  return out;
}

}  // namespace kg
