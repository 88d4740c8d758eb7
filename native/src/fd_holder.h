// SPDX-License-Identifier: Apache-2.0
// A file descriptor a wrapper owns: closed on close() or when the wrapper is collected.
#pragma once

#include <napi.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

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

// A new Wrapper owning fd, the result of the call named op; throws op's errno when fd < 0.
template <typename Wrapper>
Napi::Value WrapNewFd(Napi::Env env, int fd, const std::string& op) {
  if (fd < 0) {
    ThrowErrno(env, op, errno);
    return env.Undefined();
  }
  return Wrapper::Wrap(env, fd);
}

}  // namespace xlb
