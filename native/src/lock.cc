// SPDX-License-Identifier: Apache-2.0
#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace xlb {

Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "lockFile(path)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    ThrowErrno(env, "open(" + path + ")", errno);
    return env.Undefined();
  }
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "flock(" + path + ")", err);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ThrowType(env, "closeFd(fd)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd)) ThrowErrno(env, "close(" + std::to_string(fd) + ")", errno);
  return env.Undefined();
}

}  // namespace xlb
