// SPDX-License-Identifier: Apache-2.0
// The errors the binding throws: every failing call raises an Error carrying errno,
// code, op and, for loads, libbpf's messages (the verifier log among them).
#pragma once

#include <napi.h>

#include <string>

namespace xlb {

// Routes libbpf's print callback into a buffer that a failure can carry.
void CaptureLibbpfPrint();
// Empties that buffer, so an operation's failure carries only its own messages.
void ClearLibbpfLog();
const std::string& LibbpfLog();

// Throws an Error with errno (positive), code (its name), op and, when log is set, verifierLog.
void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& log = "");
void ThrowType(Napi::Env env, const std::string& message);

}  // namespace xlb
