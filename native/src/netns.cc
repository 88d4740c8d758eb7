// SPDX-License-Identifier: Apache-2.0
#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "errors.h"

namespace xlb {

Napi::Value InNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsFunction()) {
    ThrowType(env, "inNetns(path, fn)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) {
    ThrowErrno(env, "open(/proc/thread-self/ns/net)", errno);
    return env.Undefined();
  }
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(original);
    ThrowErrno(env, "open(" + path + ")", err);
    return env.Undefined();
  }
  if (setns(target, CLONE_NEWNET)) {
    int err = errno;
    close(original);
    close(target);
    ThrowErrno(env, "setns(" + path + ")", err);
    return env.Undefined();
  }
  close(target);
  Napi::Value result = info[1].As<Napi::Function>().Call({});
  // Return even if fn threw; its exception stays pending for the caller.
  if (setns(original, CLONE_NEWNET)) abort();  // a thread stranded in another namespace must not go on
  close(original);
  return result.IsEmpty() ? env.Undefined() : result;
}

}  // namespace xlb
