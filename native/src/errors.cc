// SPDX-License-Identifier: Apache-2.0
#include "errors.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace xlb {

namespace {

// libbpf reports through a print callback; while an operation runs we keep its
// text so a failure can carry it (the verifier log arrives this way).
std::string g_libbpf_log;

int AppendLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[4096];
  int n = vsnprintf(line, sizeof(line), format, args);
  if (n > 0 && g_libbpf_log.size() < (1u << 22)) g_libbpf_log.append(line);
  return 0;
}

}  // namespace

void CaptureLibbpfPrint() { libbpf_set_print(AppendLibbpfPrint); }

void ClearLibbpfLog() { g_libbpf_log.clear(); }

const std::string& LibbpfLog() { return g_libbpf_log; }

void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& log) {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);
  Napi::Error error = Napi::Error::New(env, op + ": " + strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
  error.Set("op", Napi::String::New(env, op));
  if (!log.empty()) error.Set("verifierLog", Napi::String::New(env, log));
  error.ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

}  // namespace xlb
