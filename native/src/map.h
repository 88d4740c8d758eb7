// SPDX-License-Identifier: Apache-2.0
// BpfMap: one BPF map by descriptor (from an object, a pin, an id or created here),
// with lookups and updates checked against the map's key and value sizes.
#pragma once

#include <napi.h>

#include <bpf/bpf.h>

#include "fd_holder.h"

namespace xlb {

class BpfMap : public Napi::ObjectWrap<BpfMap>, public FdHolder {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env);
  // Wraps an fd this object will own.
  static Napi::Value Wrap(Napi::Env env, int fd);

  BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {}
  ~BpfMap() override { CloseFd(); }

 private:
  struct bpf_map_info info_ = {};
  bool per_cpu_ = false;

  bool CheckOpen(Napi::Env env);
  size_t ValueBytes() const;
  bool CheckBuffer(Napi::Env env, const Napi::Value& v, size_t size, const char* what);
  size_t MappedSize(Napi::Env env, const char* op);
  template <typename Fn>
  bool WithMapping(Napi::Env env, size_t size, int prot, Fn fn);

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value LookupAll(const Napi::CallbackInfo& info);
  Napi::Value WriteMapped(const Napi::CallbackInfo& info);
  Napi::Value ReadMapped(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static Napi::Value Create(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
};

// possibleCpus(): the number of value slots a per-CPU map's lookup returns.
Napi::Value PossibleCpus(const Napi::CallbackInfo& info);

}  // namespace xlb
