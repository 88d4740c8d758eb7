// SPDX-License-Identifier: Apache-2.0
#include "map.h"

#include <bpf/libbpf.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "program.h"

namespace xlb {

Napi::FunctionReference BpfMap::constructor;

Napi::Function BpfMap::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "BpfMap",
                                   {
                                       InstanceAccessor<&BpfMap::Fd>("fd"),
                                       InstanceAccessor<&BpfMap::Info>("info"),
                                       InstanceMethod<&BpfMap::Lookup>("lookup"),
                                       InstanceMethod<&BpfMap::Update>("update"),
                                       InstanceMethod<&BpfMap::Delete>("delete"),
                                       InstanceMethod<&BpfMap::NextKey>("nextKey"),
                                       InstanceMethod<&BpfMap::UpdateBatch>("updateBatch"),
                                       InstanceMethod<&BpfMap::LookupAll>("lookupAll"),
                                       InstanceMethod<&BpfMap::WriteMapped>("writeMapped"),
                                       InstanceMethod<&BpfMap::ReadMapped>("readMapped"),
                                       InstanceMethod<&BpfMap::Close>("close"),
                                       StaticMethod<&BpfMap::Create>("create"),
                                       StaticMethod<&BpfMap::FromId>("fromId"),
                                       StaticMethod<&BpfMap::FromPin>("fromPin"),
                                   });
  constructor = Napi::Persistent(cls);
  constructor.SuppressDestruct();
  return cls;
}

Napi::Value BpfMap::Wrap(Napi::Env env, int fd) {
  Napi::Object obj = constructor.New({});
  BpfMap* map = Unwrap(obj);
  map->Adopt(fd);
  struct bpf_map_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
    ThrowErrno(env, "bpf_obj_get_info_by_fd", errno);
    return env.Undefined();
  }
  map->info_ = info;
  map->per_cpu_ = info.type == BPF_MAP_TYPE_PERCPU_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_HASH ||
                  info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  return obj;
}
bool BpfMap::CheckOpen(Napi::Env env) {
  if (fd_ < 0) {
    ThrowErrno(env, "map " + std::string(info_.name) + " is closed", EBADF);
    return false;
  }
  return true;
}

// Bytes a lookup returns: per-CPU maps give one 8-byte-aligned slot per CPU.
size_t BpfMap::ValueBytes() const {
  if (!per_cpu_) return info_.value_size;
  return static_cast<size_t>((info_.value_size + 7) / 8 * 8) * libbpf_num_possible_cpus();
}

bool BpfMap::CheckBuffer(Napi::Env env, const Napi::Value& v, size_t size, const char* what) {
  if (!v.IsBuffer()) {
    ThrowType(env, std::string(what) + " must be a Buffer");
    return false;
  }
  size_t got = v.As<Napi::Buffer<uint8_t>>().Length();
  if (got != size) {
    ThrowType(env, std::string(what) + " of map " + info_.name + " must be " + std::to_string(size) + " bytes, got " +
                       std::to_string(got));
    return false;
  }
  return true;
}

Napi::Value BpfMap::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value BpfMap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", info_.id);
  o.Set("name", info_.name);
  o.Set("type", info_.type);
  o.Set("keySize", info_.key_size);
  o.Set("valueSize", info_.value_size);
  o.Set("maxEntries", info_.max_entries);
  o.Set("flags", info_.map_flags);
  o.Set("perCpu", per_cpu_);
  return o;
}

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env) || !CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
  auto key = info[0].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> value(ValueBytes());
  if (bpf_map_lookup_elem(fd_, key.Data(), value.data())) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, "bpf_map_lookup_elem(" + std::string(info_.name) + ")", errno);
    return env.Undefined();
  }
  // Map-in-map lookups from user space return the inner map's id.
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

Napi::Value BpfMap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env) || !CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
  // A map (map-in-map) or a program (prog array) is stored by its descriptor.
  bool inner = info[1].IsObject() && info[1].As<Napi::Object>().InstanceOf(constructor.Value());
  bool program = info[1].IsObject() && info[1].As<Napi::Object>().InstanceOf(BpfProgram::constructor.Value());
  int value_fd = -1;
  const void* value;
  if (inner || program) {
    value_fd = inner ? Unwrap(info[1].As<Napi::Object>())->fd() : BpfProgram::Unwrap(info[1].As<Napi::Object>())->fd();
    value = &value_fd;
  } else {
    if (!CheckBuffer(env, info[1], ValueBytes(), "value")) return env.Undefined();
    value = info[1].As<Napi::Buffer<uint8_t>>().Data();
  }
  __u64 flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(fd_, info[0].As<Napi::Buffer<uint8_t>>().Data(), value, flags))
    ThrowErrno(env, "bpf_map_update_elem(" + std::string(info_.name) + ")", errno);
  return env.Undefined();
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env) || !CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
  if (bpf_map_delete_elem(fd_, info[0].As<Napi::Buffer<uint8_t>>().Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "bpf_map_delete_elem(" + std::string(info_.name) + ")", errno);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfMap::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  const void* prev = nullptr;
  if (!info[0].IsNull() && !info[0].IsUndefined()) {
    if (!CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
    prev = info[0].As<Napi::Buffer<uint8_t>>().Data();
  }
  std::vector<uint8_t> next(info_.key_size);
  if (bpf_map_get_next_key(fd_, prev, next.data())) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, "bpf_map_get_next_key(" + std::string(info_.name) + ")", errno);
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size());
}

// updateBatch(keys, values, count, flags?): keys and values packed back to back.
Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!info[2].IsNumber()) {
    ThrowType(env, "count must be a number");
    return env.Undefined();
  }
  __u32 count = info[2].As<Napi::Number>().Uint32Value();
  if (!CheckBuffer(env, info[0], size_t(count) * info_.key_size, "keys") ||
      !CheckBuffer(env, info[1], size_t(count) * ValueBytes(), "values"))
    return env.Undefined();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_batch(fd_, info[0].As<Napi::Buffer<uint8_t>>().Data(), info[1].As<Napi::Buffer<uint8_t>>().Data(),
                           &count, &opts))
    ThrowErrno(env, "bpf_map_update_batch(" + std::string(info_.name) + ")", errno);
  return env.Undefined();
}

// lookupAll(): every entry, keys and values packed back to back, read with
// BPF_MAP_LOOKUP_BATCH (a few syscalls for the whole map instead of one per key).
Napi::Value BpfMap::LookupAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  const size_t capacity = info_.max_entries;
  std::vector<uint8_t> keys(capacity * info_.key_size), values(capacity * ValueBytes());
  // The batch cursor is opaque to user space; the kernel's array and hash
  // implementations both use a 4-byte one.
  __u32 cursor = 0, count = 0;
  bool first = true;
  for (;;) {
    __u32 chunk = static_cast<__u32>(capacity - count);
    if (chunk == 0) break;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err =
        bpf_map_lookup_batch(fd_, first ? nullptr : &cursor, &cursor, keys.data() + size_t(count) * info_.key_size,
                             values.data() + size_t(count) * ValueBytes(), &chunk, &opts);
    first = false;
    count += chunk;
    if (err && errno == ENOENT) break;  // the end; chunk holds the last entries
    if (err) {
      ThrowErrno(env, "bpf_map_lookup_batch(" + std::string(info_.name) + ")", errno);
      return env.Undefined();
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, count));
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), size_t(count) * info_.key_size));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), size_t(count) * ValueBytes()));
  return out;
}

// Size of a BPF_F_MMAPABLE array's memory (values back to back, each padded to
// 8 bytes), or 0 after throwing when the map is not one.
size_t BpfMap::MappedSize(Napi::Env env, const char* op) {
  if (!CheckOpen(env)) return 0;
  if (info_.type != BPF_MAP_TYPE_ARRAY || !(info_.map_flags & BPF_F_MMAPABLE)) {
    ThrowType(env, std::string(op) + " needs an array map created with BPF_F_MMAPABLE");
    return 0;
  }
  return static_cast<size_t>((info_.value_size + 7) / 8 * 8) * info_.max_entries;
}

// Runs fn on the array's memory, mapped for the call: one copy instead of a
// syscall per element.
template <typename Fn>
bool BpfMap::WithMapping(Napi::Env env, size_t size, int prot, Fn fn) {
  void* memory = mmap(nullptr, size, prot, MAP_SHARED, fd_, 0);
  if (memory == MAP_FAILED) {
    ThrowErrno(env, "mmap(" + std::string(info_.name) + ")", errno);
    return false;
  }
  fn(static_cast<uint8_t*>(memory));
  munmap(memory, size);
  return true;
}

// writeMapped(bytes): copies bytes to the start of the array's memory.
Napi::Value BpfMap::WriteMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = MappedSize(env, "writeMapped");
  if (!size) return env.Undefined();
  if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() > size) {
    ThrowType(env, "writeMapped takes a Buffer of at most " + std::to_string(size) + " bytes");
    return env.Undefined();
  }
  auto bytes = info[0].As<Napi::Buffer<uint8_t>>();
  WithMapping(env, size, PROT_READ | PROT_WRITE,
              [&](uint8_t* memory) { memcpy(memory, bytes.Data(), bytes.Length()); });
  return env.Undefined();
}

// readMapped(length?): a copy of the array's whole memory, or of its first length
// bytes (a sample of a large array without copying all of it).
Napi::Value BpfMap::ReadMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = MappedSize(env, "readMapped");
  if (!size) return env.Undefined();
  size_t length = size;
  if (!info[0].IsUndefined()) {
    double wanted = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(wanted >= 0 && wanted <= double(size)) || wanted != double(size_t(wanted))) {
      ThrowType(env, "readMapped takes a whole number of bytes up to " + std::to_string(size));
      return env.Undefined();
    }
    length = size_t(wanted);
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, length);
  if (!WithMapping(env, size, PROT_READ, [&](uint8_t* memory) { memcpy(out.Data(), memory, length); }))
    return env.Undefined();
  return out;
}

Napi::Value BpfMap::Close(const Napi::CallbackInfo& info) {
  CloseFd();
  return info.Env().Undefined();
}

// create(type, keySize, valueSize, maxEntries, name, flags?)
Napi::Value BpfMap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int i = 0; i < 4; i++)
    if (!info[i].IsNumber()) {
      ThrowType(env, "create(type, keySize, valueSize, maxEntries, name, flags?) takes numbers first");
      return env.Undefined();
    }
  std::string name = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  opts.map_flags = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Uint32Value() : 0;
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(info[0].As<Napi::Number>().Uint32Value()),
                          name.empty() ? nullptr : name.c_str(), info[1].As<Napi::Number>().Uint32Value(),
                          info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(), &opts);
  return WrapNewFd<BpfMap>(env, fd, "bpf_map_create(" + name + ")");
}

Napi::Value BpfMap::FromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_map_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
  return WrapNewFd<BpfMap>(env, fd, "bpf_map_get_fd_by_id");
}

Napi::Value BpfMap::FromPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = bpf_obj_get(path.c_str());
  return WrapNewFd<BpfMap>(env, fd, "bpf_obj_get(" + path + ")");
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

}  // namespace xlb
