// SPDX-License-Identifier: Apache-2.0
// Thin node-addon-api layer over the system libbpf: open/load objects, maps,
// programs, XDP attach and BPF_PROG_TEST_RUN, and flock for lock files. No policy
// lives here. Every wrapper owns its own file descriptor (dup'ed from libbpf's) and
// closes it on close() or when garbage-collected. Failures throw an Error carrying
// errno, code, op and, for loads, the verifier log.
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <string>
#include <vector>

namespace {

// libbpf reports through a print callback; while an operation runs we keep its
// text so a failure can carry it (the verifier log arrives this way).
std::string g_libbpf_log;

int CaptureLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[4096];
  int n = vsnprintf(line, sizeof(line), format, args);
  if (n > 0 && g_libbpf_log.size() < (1u << 22)) g_libbpf_log.append(line);
  return 0;
}

Napi::Error ErrnoError(Napi::Env env, const std::string& op, int err, const std::string& log = "") {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);
  Napi::Error error = Napi::Error::New(env, op + ": " + strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
  error.Set("op", Napi::String::New(env, op));
  if (!log.empty()) error.Set("verifierLog", Napi::String::New(env, log));
  return error;
}

void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& log = "") {
  ErrnoError(env, op, err, log).ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

class FdHolder {
 public:
  int fd() const { return fd_; }
  void Adopt(int fd) { fd_ = fd; }
  void CloseFd() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 protected:
  int fd_ = -1;
};

// ---------------------------------------------------------------- BpfMap

// Set by BpfProgram::Init; lets map updates take a program (prog-array values).
Napi::FunctionReference* g_program_constructor = nullptr;
int ProgramFd(const Napi::Object& object);

class BpfMap : public Napi::ObjectWrap<BpfMap>, public FdHolder {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function cls = DefineClass(
        env, "BpfMap",
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

  // Wraps an fd this object will own.
  static Napi::Value Wrap(Napi::Env env, int fd) {
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

  BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {}
  ~BpfMap() override { CloseFd(); }

 private:
  struct bpf_map_info info_ = {};
  bool per_cpu_ = false;

  bool CheckOpen(Napi::Env env) {
    if (fd_ < 0) {
      ThrowErrno(env, "map " + std::string(info_.name) + " is closed", EBADF);
      return false;
    }
    return true;
  }

  // Bytes a lookup returns: per-CPU maps give one 8-byte-aligned slot per CPU.
  size_t ValueBytes() const {
    if (!per_cpu_) return info_.value_size;
    return static_cast<size_t>((info_.value_size + 7) / 8 * 8) * libbpf_num_possible_cpus();
  }

  bool CheckBuffer(Napi::Env env, const Napi::Value& v, size_t size, const char* what) {
    if (!v.IsBuffer()) {
      ThrowType(env, std::string(what) + " must be a Buffer");
      return false;
    }
    size_t got = v.As<Napi::Buffer<uint8_t>>().Length();
    if (got != size) {
      ThrowType(env, std::string(what) + " of map " + info_.name + " must be " + std::to_string(size) +
                         " bytes, got " + std::to_string(got));
      return false;
    }
    return true;
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Info(const Napi::CallbackInfo& info) {
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

  Napi::Value Lookup(const Napi::CallbackInfo& info) {
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

  Napi::Value Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env) || !CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
    // A map (map-in-map) or a program (prog array) is stored by its descriptor.
    bool inner = info[1].IsObject() && info[1].As<Napi::Object>().InstanceOf(constructor.Value());
    bool program = info[1].IsObject() && g_program_constructor && info[1].As<Napi::Object>().InstanceOf(g_program_constructor->Value());
    int value_fd = -1;
    const void* value;
    if (inner || program) {
      value_fd = inner ? Unwrap(info[1].As<Napi::Object>())->fd() : ProgramFd(info[1].As<Napi::Object>());
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

  Napi::Value Delete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env) || !CheckBuffer(env, info[0], info_.key_size, "key")) return env.Undefined();
    if (bpf_map_delete_elem(fd_, info[0].As<Napi::Buffer<uint8_t>>().Data())) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      ThrowErrno(env, "bpf_map_delete_elem(" + std::string(info_.name) + ")", errno);
      return env.Undefined();
    }
    return Napi::Boolean::New(env, true);
  }

  Napi::Value NextKey(const Napi::CallbackInfo& info) {
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
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info) {
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
    if (bpf_map_update_batch(fd_, info[0].As<Napi::Buffer<uint8_t>>().Data(),
                             info[1].As<Napi::Buffer<uint8_t>>().Data(), &count, &opts))
      ThrowErrno(env, "bpf_map_update_batch(" + std::string(info_.name) + ")", errno);
    return env.Undefined();
  }

  // lookupAll(): every entry, keys and values packed back to back, read with
  // BPF_MAP_LOOKUP_BATCH (a few syscalls for the whole map instead of one per key).
  Napi::Value LookupAll(const Napi::CallbackInfo& info) {
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
      int err = bpf_map_lookup_batch(fd_, first ? nullptr : &cursor, &cursor, keys.data() + size_t(count) * info_.key_size,
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
  size_t MappedSize(Napi::Env env, const char* op) {
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
  bool WithMapping(Napi::Env env, size_t size, int prot, Fn fn) {
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
  Napi::Value WriteMapped(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t size = MappedSize(env, "writeMapped");
    if (!size) return env.Undefined();
    if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() > size) {
      ThrowType(env, "writeMapped takes a Buffer of at most " + std::to_string(size) + " bytes");
      return env.Undefined();
    }
    auto bytes = info[0].As<Napi::Buffer<uint8_t>>();
    WithMapping(env, size, PROT_READ | PROT_WRITE, [&](uint8_t* memory) { memcpy(memory, bytes.Data(), bytes.Length()); });
    return env.Undefined();
  }

  // readMapped(length?): a copy of the array's whole memory, or of its first length
  // bytes (a sample of a large array without copying all of it).
  Napi::Value ReadMapped(const Napi::CallbackInfo& info) {
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
    if (!WithMapping(env, size, PROT_READ, [&](uint8_t* memory) { memcpy(out.Data(), memory, length); })) return env.Undefined();
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseFd();
    return info.Env().Undefined();
  }

  // create(type, keySize, valueSize, maxEntries, name, flags?)
  static Napi::Value Create(const Napi::CallbackInfo& info) {
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
                            info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(),
                            &opts);
    if (fd < 0) {
      ThrowErrno(env, "bpf_map_create(" + name + ")", errno);
      return env.Undefined();
    }
    return Wrap(env, fd);
  }

  static Napi::Value FromId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = bpf_map_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
    if (fd < 0) {
      ThrowErrno(env, "bpf_map_get_fd_by_id", errno);
      return env.Undefined();
    }
    return Wrap(env, fd);
  }

  static Napi::Value FromPin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = info[0].As<Napi::String>().Utf8Value();
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      ThrowErrno(env, "bpf_obj_get(" + path + ")", errno);
      return env.Undefined();
    }
    return Wrap(env, fd);
  }
};
Napi::FunctionReference BpfMap::constructor;

// ---------------------------------------------------------------- BpfProgram

class BpfProgram : public Napi::ObjectWrap<BpfProgram>, public FdHolder {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function cls = DefineClass(env, "BpfProgram",
                                     {
                                         InstanceAccessor<&BpfProgram::Fd>("fd"),
                                         InstanceAccessor<&BpfProgram::Info>("info"),
                                         InstanceMethod<&BpfProgram::TestRun>("testRun"),
                                         InstanceMethod<&BpfProgram::Close>("close"),
                                         StaticMethod<&BpfProgram::FromId>("fromId"),
                                     });
    constructor = Napi::Persistent(cls);
    constructor.SuppressDestruct();
    g_program_constructor = &constructor;
    return cls;
  }

  static Napi::Value Wrap(Napi::Env env, int fd) {
    Napi::Object obj = constructor.New({});
    Unwrap(obj)->Adopt(fd);
    return obj;
  }

  BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {}
  ~BpfProgram() override { CloseFd(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct bpf_prog_info pi = {};
    __u32 len = sizeof(pi);
    if (bpf_obj_get_info_by_fd(fd_, &pi, &len)) {
      ThrowErrno(env, "bpf_obj_get_info_by_fd", errno);
      return env.Undefined();
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", pi.id);
    o.Set("name", pi.name);
    o.Set("type", pi.type);
    return o;
  }

  // testRun({data, repeat?, flags?, ifindex?, batchSize?}) -> {retval, data, duration}
  // duration is the kernel's mean nanoseconds per run.
  Napi::Value TestRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) {
      ThrowErrno(env, "program is closed", EBADF);
      return env.Undefined();
    }
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().Get("data").IsBuffer()) {
      ThrowType(env, "testRun takes {data: Buffer, repeat?, flags?, ifindex?, batchSize?}");
      return env.Undefined();
    }
    Napi::Object o = info[0].As<Napi::Object>();
    auto data = o.Get("data").As<Napi::Buffer<uint8_t>>();
    auto number = [&](const char* key) -> __u32 {
      Napi::Value v = o.Get(key);
      return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 0;
    };
    __u32 flags = number("flags");
    bool live = flags & BPF_F_TEST_XDP_LIVE_FRAMES;
    // Room for encapsulation growth; live-frame runs return no data.
    std::vector<uint8_t> out(live ? 0 : data.Length() + 512);
    struct xdp_md ctx = {};
    ctx.data_end = data.Length();
    ctx.ingress_ifindex = number("ifindex");

    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = data.Data();
    opts.data_size_in = data.Length();
    opts.repeat = number("repeat");
    opts.flags = flags;
    opts.batch_size = number("batchSize");
    if (!live) {
      opts.data_out = out.data();
      opts.data_size_out = out.size();
    }
    if (ctx.ingress_ifindex) {
      opts.ctx_in = &ctx;
      opts.ctx_size_in = sizeof(ctx);
    }
    if (bpf_prog_test_run_opts(fd_, &opts)) {
      ThrowErrno(env, "bpf_prog_test_run_opts", errno);
      return env.Undefined();
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("retval", opts.retval);
    result.Set("duration", opts.duration);
    result.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), live ? 0 : opts.data_size_out));
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseFd();
    return info.Env().Undefined();
  }

  static Napi::Value FromId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = bpf_prog_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
    if (fd < 0) {
      ThrowErrno(env, "bpf_prog_get_fd_by_id", errno);
      return env.Undefined();
    }
    return Wrap(env, fd);
  }
};
Napi::FunctionReference BpfProgram::constructor;

int ProgramFd(const Napi::Object& object) { return BpfProgram::Unwrap(object)->fd(); }

// ---------------------------------------------------------------- BpfObject

// new BpfObject(path, {maxEntries?, pinDir?}): opens and loads.
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod<&BpfObject::Map>("map"),
                           InstanceMethod<&BpfObject::Program>("program"),
                           InstanceMethod<&BpfObject::MapNames>("mapNames"),
                           InstanceMethod<&BpfObject::Close>("close"),
                       });
  }

  BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      ThrowType(env, "BpfObject(path, options?) needs a path");
      return;
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    Napi::Object options = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);

    g_libbpf_log.clear();
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    if (!obj_) {
      int err = errno;
      ThrowErrno(env, "bpf_object__open_file(" + path + ")", err, g_libbpf_log);
      return;
    }
    if (!Configure(env, options)) return;  // Destroy() closes any template made
    int err = bpf_object__load(obj_);
    CloseTemplates();  // the kernel keeps its own copy of an inner-map template
    if (err) {
      ThrowErrno(env, "bpf_object__load(" + path + ")", err, g_libbpf_log);
      return;
    }
  }

  ~BpfObject() override { Destroy(); }

 private:
  struct bpf_object* obj_ = nullptr;
  std::vector<int> templates_;

  void CloseTemplates() {
    for (int fd : templates_) close(fd);
    templates_.clear();
  }

  void Destroy() {
    CloseTemplates();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  // Calls set(map, name, n) for each { mapName: n } of `sizes`; false after throwing.
  template <typename Set>
  bool ForEachSize(Napi::Env env, Napi::Object sizes, const char* what, Set set) {
    Napi::Array names = sizes.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
      if (!map) {
        ThrowErrno(env, "map " + name + " not in object", ENOENT);
        return false;
      }
      Napi::Value v = sizes.Get(name);
      if (!v.IsNumber()) {
        ThrowType(env, std::string(what) + " of " + name + " must be a number");
        return false;
      }
      if (!set(map, name, v.As<Napi::Number>().Uint32Value())) return false;
    }
    return true;
  }

  bool SetSizes(Napi::Env env, Napi::Object sizes) {
    return ForEachSize(env, sizes, "max entries", [&](struct bpf_map* map, const std::string& name, uint32_t n) {
      if (int err = bpf_map__set_max_entries(map, n)) {
        ThrowErrno(env, "bpf_map__set_max_entries(" + name + ")", err);
        return false;
      }
      return true;
    });
  }

  // innerMaxEntries: { outerName: n } replaces a map-in-map's inner template with one
  // of n entries (libbpf 1.1's bpf_map__set_max_entries() dereferences NULL on an inner
  // map): the same type, sizes and flags, made here and handed over by descriptor.
  bool SetInnerSizes(Napi::Env env, Napi::Object sizes) {
    return ForEachSize(env, sizes, "inner max entries", [&](struct bpf_map* outer, const std::string& name, uint32_t n) {
      struct bpf_map* inner = bpf_map__inner_map(outer);
      if (!inner) {
        ThrowErrno(env, "map " + name + " is not a map-in-map", ENOENT);
        return false;
      }
      LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(inner));
      int fd = bpf_map_create(bpf_map__type(inner), "inner_template", bpf_map__key_size(inner), bpf_map__value_size(inner), n, &opts);
      if (fd < 0) {
        ThrowErrno(env, "bpf_map_create(inner template of " + name + ")", errno);
        return false;
      }
      templates_.push_back(fd);
      if (int err = bpf_map__set_inner_map_fd(outer, fd)) {
        ThrowErrno(env, "bpf_map__set_inner_map_fd(" + name + ")", err);
        return false;
      }
      return true;
    });
  }

  bool Configure(Napi::Env env, Napi::Object options) {
    if (options.Get("maxEntries").IsObject() && !SetSizes(env, options.Get("maxEntries").As<Napi::Object>()))
      return false;
    if (options.Get("innerMaxEntries").IsObject() && !SetInnerSizes(env, options.Get("innerMaxEntries").As<Napi::Object>()))
      return false;
    Napi::Value pin_dir = options.Get("pinDir");
    if (pin_dir.IsString()) {
      std::string dir = pin_dir.As<Napi::String>().Utf8Value();
      struct bpf_map* map;
      bpf_object__for_each_map(map, obj_) {
        // Internal maps (.rodata, .bss) have no stable identity to pin.
        if (bpf_map__is_internal(map)) continue;
        std::string pin = dir + "/" + bpf_map__name(map);
        if (int err = bpf_map__set_pin_path(map, pin.c_str())) {
          ThrowErrno(env, "bpf_map__set_pin_path(" + pin + ")", err);
          return false;
        }
      }
    }
    return true;
  }

  bool CheckOpen(Napi::Env env) {
    if (!obj_) ThrowErrno(env, "object is closed", EBADF);
    return obj_ != nullptr;
  }

  Napi::Value Map(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::string name = info[0].As<Napi::String>().Utf8Value();
    struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!map) {
      ThrowErrno(env, "map " + name + " not in object", ENOENT);
      return env.Undefined();
    }
    int fd = dup(bpf_map__fd(map));
    if (fd < 0) {
      ThrowErrno(env, "dup(map " + name + ")", errno);
      return env.Undefined();
    }
    return BpfMap::Wrap(env, fd);
  }

  Napi::Value Program(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    std::string name = info[0].As<Napi::String>().Utf8Value();
    struct bpf_program* prog = bpf_object__find_program_by_name(obj_, name.c_str());
    if (!prog) {
      ThrowErrno(env, "program " + name + " not in object", ENOENT);
      return env.Undefined();
    }
    int fd = dup(bpf_program__fd(prog));
    if (fd < 0) {
      ThrowErrno(env, "dup(program " + name + ")", errno);
      return env.Undefined();
    }
    return BpfProgram::Wrap(env, fd);
  }

  Napi::Value MapNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    Napi::Array names = Napi::Array::New(env);
    struct bpf_map* map;
    uint32_t i = 0;
    bpf_object__for_each_map(map, obj_) {
      if (!bpf_map__is_internal(map)) names.Set(i++, bpf_map__name(map));
    }
    return names;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Destroy();
    return info.Env().Undefined();
  }
};

// ---------------------------------------------------------------- XDP and helpers

__u32 XdpModeFlag(Napi::Env env, const Napi::Value& mode, bool* ok) {
  std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
  *ok = true;
  if (m == "native") return XDP_FLAGS_DRV_MODE;
  if (m == "generic") return XDP_FLAGS_SKB_MODE;
  *ok = false;
  ThrowType(env, "mode must be \"native\" or \"generic\"");
  return 0;
}

// xdpAttach(ifindex, program, {mode, replace?: BpfProgram, onlyIfNone?: boolean})
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsObject() ||
      !info[1].As<Napi::Object>().InstanceOf(BpfProgram::constructor.Value()) || !info[2].IsObject()) {
    ThrowType(env, "xdpAttach(ifindex, program, {mode, replace?, onlyIfNone?})");
    return env.Undefined();
  }
  Napi::Object o = info[2].As<Napi::Object>();
  bool ok;
  __u32 flags = XdpModeFlag(env, o.Get("mode"), &ok);
  if (!ok) return env.Undefined();
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  Napi::Value replace = o.Get("replace");
  if (replace.IsObject() && replace.As<Napi::Object>().InstanceOf(BpfProgram::constructor.Value())) {
    flags |= XDP_FLAGS_REPLACE;
    opts.old_prog_fd = BpfProgram::Unwrap(replace.As<Napi::Object>())->fd();
  } else if (o.Get("onlyIfNone").ToBoolean()) {
    flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
  }
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  int prog_fd = BpfProgram::Unwrap(info[1].As<Napi::Object>())->fd();
  if (int err = bpf_xdp_attach(ifindex, prog_fd, flags, &opts))
    ThrowErrno(env, "bpf_xdp_attach(ifindex " + std::to_string(ifindex) + ")", err);
  return env.Undefined();
}

// xdpDetach(ifindex, mode)
Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  __u32 flags = XdpModeFlag(env, info[1], &ok);
  if (!ok) return env.Undefined();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  if (int err = bpf_xdp_detach(ifindex, flags, nullptr))
    ThrowErrno(env, "bpf_xdp_detach(ifindex " + std::to_string(ifindex) + ")", err);
  return env.Undefined();
}

// xdpQuery(ifindex, mode) -> attached program id, 0 for none
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  __u32 flags = XdpModeFlag(env, info[1], &ok);
  if (!ok) return env.Undefined();
  __u32 id = 0;
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  if (int err = bpf_xdp_query_id(ifindex, flags, &id)) {
    ThrowErrno(env, "bpf_xdp_query_id(ifindex " + std::to_string(ifindex) + ")", err);
    return env.Undefined();
  }
  return Napi::Number::New(env, id);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned int index = if_nametoindex(name.c_str());
  if (!index) {
    ThrowErrno(env, "if_nametoindex(" + name + ")", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, index);
}

// inNetns(path, fn): runs fn with this thread in the network namespace at path
// (e.g. /run/netns/NAME), then returns to the original one. Interface names,
// ifindexes and XDP attach inside fn refer to that namespace; BPF objects and
// maps are not per-namespace and stay usable.
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

// lockFile(path) -> fd: opens (creating, mode 0600) and takes flock(LOCK_EX | LOCK_NB).
// The kernel drops the lock when the descriptor closes, however the process ends;
// O_CLOEXEC keeps children from inheriting it.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "lockFile(path)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    ThrowErrno(env, "open(" + path + ")", errno);
    return env.Undefined();
  }
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "flock(" + path + ")", err);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// closeFd(fd): closes a descriptor from lockFile, releasing its lock.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ThrowType(env, "closeFd(fd)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd)) ThrowErrno(env, "close(" + std::to_string(fd) + ")", errno);
  return env.Undefined();
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpfPrint);
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("BpfMap", BpfMap::Init(env));
  exports.Set("BpfProgram", BpfProgram::Init(env));
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach));
  exports.Set("xdpDetach", Napi::Function::New(env, XdpDetach));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
  exports.Set("inNetns", Napi::Function::New(env, InNetns));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus));
  exports.Set("lockFile", Napi::Function::New(env, LockFile));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(xlb_native, Init)
