// SPDX-License-Identifier: Apache-2.0
// BpfProgram: one loaded BPF program by descriptor, with BPF_PROG_TEST_RUN.
#pragma once

#include <napi.h>

#include "fd_holder.h"

namespace xlb {

class BpfProgram : public Napi::ObjectWrap<BpfProgram>, public FdHolder {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env);
  // Wraps an fd this object will own.
  static Napi::Value Wrap(Napi::Env env, int fd);

  BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {}
  ~BpfProgram() override { CloseFd(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
};

}  // namespace xlb
