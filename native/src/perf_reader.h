// SPDX-License-Identifier: Apache-2.0
// PerfReader: the records a BPF program writes into a perf event array, read without
// blocking (libbpf's perf_buffer), with the count of records the kernel lost.
#pragma once

#include <napi.h>

#include <bpf/libbpf.h>

#include <cstdint>
#include <vector>

namespace xlb {

class PerfReader : public Napi::ObjectWrap<PerfReader> {
 public:
  static Napi::Function Init(Napi::Env env);

  // new PerfReader(map, pagesPerCpu): opens a buffer per CPU and installs it in the map.
  PerfReader(const Napi::CallbackInfo& info);
  ~PerfReader() override { Destroy(); }

 private:
  struct perf_buffer* buffer_ = nullptr;
  std::vector<std::vector<uint8_t>> pending_;
  uint64_t lost_ = 0;

  static void OnSample(void* ctx, int cpu, void* data, __u32 size);
  static void OnLost(void* ctx, int cpu, __u64 count);
  void Destroy();

  Napi::Value Consume(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

}  // namespace xlb
