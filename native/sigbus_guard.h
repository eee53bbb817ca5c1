// Copies to and from guest memory that survive SIGBUS. The handler stays dormant unless the kernel
// raised the SIGBUS for an access of a thread inside a guarded copy (a thread-local jump buffer is
// set); then it jumps back out of the copy. Any other SIGBUS (a fault elsewhere, a kill -BUS) goes
// to the handler that was in place before ours, or gets the default action. Each copy first checks
// that the handler is still ours and puts it back if a later sigaction replaced it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kg {

enum class CopyKind { Read, Write, Fill };

struct GuardResult {
  bool ok;
  uintptr_t faultAddr;  // first byte of the page the copy could not touch
};

// Installs the process-wide handler, or puts it back on top (idempotent, thread-safe). Returns
// false with errno set.
bool InstallSigbusGuard();

// Copies len bytes. `guest` is the address inside the mapping, `host` the ordinary buffer.
// Read: guest -> host. Write: host -> guest. Fill: memset(guest, byte, len).
// Pages are touched in ascending order first, so the reported fault is the lowest page that
// cannot be touched and no byte past it has been written.
GuardResult GuardedCopy(CopyKind kind, uint8_t* guest, uint8_t* host, size_t len, int byte);

}  // namespace kg
