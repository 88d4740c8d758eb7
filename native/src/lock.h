// SPDX-License-Identifier: Apache-2.0
// Lock files: an exclusive flock held by a descriptor the caller closes.
#pragma once

#include <napi.h>

namespace xlb {

// lockFile(path) -> fd: opens (creating, mode 0600) and takes flock(LOCK_EX | LOCK_NB).
// The kernel drops the lock when the descriptor closes, however the process ends;
// O_CLOEXEC keeps children from inheriting it.
Napi::Value LockFile(const Napi::CallbackInfo& info);
// closeFd(fd): closes a descriptor from lockFile, releasing its lock.
Napi::Value CloseFd(const Napi::CallbackInfo& info);

}  // namespace xlb
