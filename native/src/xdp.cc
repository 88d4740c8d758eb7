// SPDX-License-Identifier: Apache-2.0
#include "xdp.h"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "program.h"

namespace xlb {

namespace {

__u32 XdpModeFlag(Napi::Env env, const Napi::Value& mode, bool* ok) {
  std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
  *ok = true;
  if (m == "native") return XDP_FLAGS_DRV_MODE;
  if (m == "generic") return XDP_FLAGS_SKB_MODE;
  *ok = false;
  ThrowType(env, "mode must be \"native\" or \"generic\"");
  return 0;
}

// The ifindex and mode flag of an (ifindex, mode) call; false after throwing.
bool IfindexAndMode(const Napi::CallbackInfo& info, int* ifindex, __u32* flags) {
  if (!info[0].IsNumber()) {
    ThrowType(info.Env(), "ifindex must be a number");
    return false;
  }
  *ifindex = info[0].As<Napi::Number>().Int32Value();
  bool ok;
  *flags = XdpModeFlag(info.Env(), info[1], &ok);
  return ok;
}

}  // namespace

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

Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  __u32 flags;
  if (!IfindexAndMode(info, &ifindex, &flags)) return env.Undefined();
  if (int err = bpf_xdp_detach(ifindex, flags, nullptr))
    ThrowErrno(env, "bpf_xdp_detach(ifindex " + std::to_string(ifindex) + ")", err);
  return env.Undefined();
}

Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  __u32 flags;
  if (!IfindexAndMode(info, &ifindex, &flags)) return env.Undefined();
  __u32 id = 0;
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

}  // namespace xlb
