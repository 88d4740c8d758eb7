// SPDX-License-Identifier: Apache-2.0
#include "perf_reader.h"

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "map.h"

namespace xlb {

Napi::Function PerfReader::Init(Napi::Env env) {
  return DefineClass(env, "PerfReader",
                     {
                         InstanceMethod<&PerfReader::Consume>("consume"),
                         InstanceMethod<&PerfReader::Close>("close"),
                     });
}

PerfReader::PerfReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PerfReader>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(BpfMap::constructor.Value()) ||
      !info[1].IsNumber()) {
    ThrowType(env, "PerfReader(map, pagesPerCpu) needs a BpfMap and a number");
    return;
  }
  int fd = info[0].As<Napi::Object>().Get("fd").As<Napi::Number>().Int32Value();
  // A power of two: perf's ring buffer takes only those.
  size_t pages = info[1].As<Napi::Number>().Uint32Value();
  ClearLibbpfLog();
  buffer_ = perf_buffer__new(fd, pages, OnSample, OnLost, this, nullptr);
  if (!buffer_) ThrowErrno(env, "perf_buffer__new", errno, LibbpfLog());
}

void PerfReader::OnSample(void* ctx, int cpu, void* data, __u32 size) {
  auto* reader = static_cast<PerfReader*>(ctx);
  const auto* bytes = static_cast<const uint8_t*>(data);
  reader->pending_.emplace_back(bytes, bytes + size);
}

void PerfReader::OnLost(void* ctx, int cpu, __u64 count) { static_cast<PerfReader*>(ctx)->lost_ += count; }

void PerfReader::Destroy() {
  if (buffer_) perf_buffer__free(buffer_);  // closes the events: the map's slots empty
  buffer_ = nullptr;
}

// consume() -> { records: Buffer[], lost }: what every CPU's buffer holds now (each
// record padded by perf to 8 bytes), and the records lost since the last call.
Napi::Value PerfReader::Consume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!buffer_) {
    ThrowErrno(env, "perf reader is closed", EBADF);
    return env.Undefined();
  }
  int err = perf_buffer__consume(buffer_);
  if (err < 0) {
    pending_.clear();
    ThrowErrno(env, "perf_buffer__consume", -err);
    return env.Undefined();
  }
  Napi::Array records = Napi::Array::New(env, pending_.size());
  for (size_t i = 0; i < pending_.size(); i++)
    records.Set(i, Napi::Buffer<uint8_t>::Copy(env, pending_[i].data(), pending_[i].size()));
  pending_.clear();
  Napi::Object result = Napi::Object::New(env);
  result.Set("records", records);
  result.Set("lost", Napi::Number::New(env, static_cast<double>(lost_)));
  lost_ = 0;
  return result;
}

Napi::Value PerfReader::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

}  // namespace xlb
