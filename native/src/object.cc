// SPDX-License-Identifier: Apache-2.0
#include "object.h"

#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "map.h"
#include "program.h"

namespace xlb {

namespace {

// A wrapper owning a dup of the descriptor libbpf keeps for the object's map or
// program `what`, so closing either one leaves the other open.
template <typename Wrapper, typename Item>
Napi::Value WrapDup(Napi::Env env, const std::string& what, const Item* item, int (*fd_of)(const Item*)) {
  if (!item) {
    ThrowErrno(env, what + " not in object", ENOENT);
    return env.Undefined();
  }
  int fd = dup(fd_of(item));
  return WrapNewFd<Wrapper>(env, fd, "dup(" + what + ")");
}

}  // namespace

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::Map>("map"),
                         InstanceMethod<&BpfObject::Program>("program"),
                         InstanceMethod<&BpfObject::MapNames>("mapNames"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "BpfObject(path, options?) needs a path");
    return;
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object options = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);

  ClearLibbpfLog();
  obj_ = bpf_object__open_file(path.c_str(), nullptr);
  if (!obj_) {
    int err = errno;
    ThrowErrno(env, "bpf_object__open_file(" + path + ")", err, LibbpfLog());
    return;
  }
  if (!Configure(env, options)) return;  // Destroy() closes any template made
  int err = bpf_object__load(obj_);
  CloseTemplates();  // the kernel keeps its own copy of an inner-map template
  if (err) {
    ThrowErrno(env, "bpf_object__load(" + path + ")", err, LibbpfLog());
    return;
  }
}

void BpfObject::CloseTemplates() {
  for (int fd : templates_) close(fd);
  templates_.clear();
}

void BpfObject::Destroy() {
  CloseTemplates();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

// Calls use(map, name, value) for each { mapName: value } of `entries`; false after throwing.
template <typename Use>
bool BpfObject::ForEachMap(Napi::Env env, Napi::Object entries, Use use) {
  Napi::Array names = entries.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!map) {
      ThrowErrno(env, "map " + name + " not in object", ENOENT);
      return false;
    }
    if (!use(map, name, entries.Get(name))) return false;
  }
  return true;
}

// Calls set(map, name, n) for each { mapName: n } of `sizes`; false after throwing.
template <typename Set>
bool BpfObject::ForEachSize(Napi::Env env, Napi::Object sizes, const char* what, Set set) {
  return ForEachMap(env, sizes, [&](struct bpf_map* map, const std::string& name, Napi::Value v) {
    if (!v.IsNumber()) {
      ThrowType(env, std::string(what) + " of " + name + " must be a number");
      return false;
    }
    return set(map, name, v.As<Napi::Number>().Uint32Value());
  });
}

bool BpfObject::SetSizes(Napi::Env env, Napi::Object sizes) {
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
bool BpfObject::SetInnerSizes(Napi::Env env, Napi::Object sizes) {
  return ForEachSize(env, sizes, "inner max entries", [&](struct bpf_map* outer, const std::string& name, uint32_t n) {
    struct bpf_map* inner = bpf_map__inner_map(outer);
    if (!inner) {
      ThrowErrno(env, "map " + name + " is not a map-in-map", ENOENT);
      return false;
    }
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(inner));
    int fd = bpf_map_create(bpf_map__type(inner), "inner_template", bpf_map__key_size(inner),
                            bpf_map__value_size(inner), n, &opts);
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

// reuseMaps: { name: BpfMap } makes the load use that open map instead of making one
// (its type, sizes and contents as they are), and pins nothing for it.
bool BpfObject::ReuseMaps(Napi::Env env, Napi::Object maps) {
  return ForEachMap(env, maps, [&](struct bpf_map* map, const std::string& name, Napi::Value v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(BpfMap::constructor.Value())) {
      ThrowType(env, "reuseMaps." + name + " must be a BpfMap");
      return false;
    }
    if (int err = bpf_map__reuse_fd(map, BpfMap::Unwrap(v.As<Napi::Object>())->fd())) {
      ThrowErrno(env, "bpf_map__reuse_fd(" + name + ")", err);
      return false;
    }
    return true;
  });
}

bool BpfObject::Configure(Napi::Env env, Napi::Object options) {
  if (options.Get("reuseMaps").IsObject()) {
    // A pin path would make libbpf adopt or pin over the map handed in.
    if (options.Get("pinDir").IsString()) {
      ThrowType(env, "reuseMaps and pinDir do not go together");
      return false;
    }
    if (!ReuseMaps(env, options.Get("reuseMaps").As<Napi::Object>())) return false;
  }
  if (options.Get("maxEntries").IsObject() && !SetSizes(env, options.Get("maxEntries").As<Napi::Object>()))
    return false;
  if (options.Get("innerMaxEntries").IsObject() &&
      !SetInnerSizes(env, options.Get("innerMaxEntries").As<Napi::Object>()))
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

bool BpfObject::CheckOpen(Napi::Env env) {
  if (!obj_) ThrowErrno(env, "object is closed", EBADF);
  return obj_ != nullptr;
}

Napi::Value BpfObject::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return WrapDup<BpfMap>(env, "map " + name, bpf_object__find_map_by_name(obj_, name.c_str()), bpf_map__fd);
}

Napi::Value BpfObject::Program(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return WrapDup<BpfProgram>(env, "program " + name, bpf_object__find_program_by_name(obj_, name.c_str()),
                             bpf_program__fd);
}

Napi::Value BpfObject::MapNames(const Napi::CallbackInfo& info) {
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

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

}  // namespace xlb
