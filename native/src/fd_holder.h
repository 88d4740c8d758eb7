// SPDX-License-Identifier: Apache-2.0
// A file descriptor a wrapper owns: closed on close() or when the wrapper is collected.
#pragma once

#include <unistd.h>

namespace xlb {

class FdHolder {
 public:
  int fd() const { return fd_; }
  void Adopt(int fd) { fd_ = fd; }
  void CloseFd() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 protected:
  int fd_ = -1;
};

}  // namespace xlb
