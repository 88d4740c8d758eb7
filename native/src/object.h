// SPDX-License-Identifier: Apache-2.0
// BpfObject: a BPF ELF object opened and loaded with libbpf, sized and pinned by
// its options; hands out its maps and programs as wrappers with their own fds.
#pragma once

#include <napi.h>

#include <bpf/libbpf.h>

#include <string>
#include <vector>

namespace xlb {

// new BpfObject(path, {maxEntries?, innerMaxEntries?, pinDir?, reuseMaps?}): opens and loads.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);

  BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override { Destroy(); }

 private:
  struct bpf_object* obj_ = nullptr;
  // Inner-map templates made for innerMaxEntries, open until the load.
  std::vector<int> templates_;

  void CloseTemplates();
  void Destroy();
  template <typename Use>
  bool ForEachMap(Napi::Env env, Napi::Object entries, Use use);
  template <typename Set>
  bool ForEachSize(Napi::Env env, Napi::Object sizes, const char* what, Set set);
  bool SetSizes(Napi::Env env, Napi::Object sizes);
  bool SetInnerSizes(Napi::Env env, Napi::Object sizes);
  bool ReuseMaps(Napi::Env env, Napi::Object maps);
  bool Configure(Napi::Env env, Napi::Object options);
  bool CheckOpen(Napi::Env env);

  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  Napi::Value MapNames(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

}  // namespace xlb
