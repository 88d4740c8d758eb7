// SPDX-License-Identifier: Apache-2.0
#include "tc.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "program.h"

namespace xlb {

namespace {

// xlb's filter on the egress hook: a fixed handle, so a restarted daemon replaces its
// predecessor's filter instead of adding a second one.
constexpr __u32 kHandle = 0x786c62;  // "xlb"
constexpr __u32 kPriority = kTcPriority;

// The ifindex of a call taking it first; false after throwing.
bool Ifindex(const Napi::CallbackInfo& info, int* ifindex) {
  if (!info[0].IsNumber()) {
    ThrowType(info.Env(), "ifindex must be a number");
    return false;
  }
  *ifindex = info[0].As<Napi::Number>().Int32Value();
  return true;
}

std::string Op(const char* call, int ifindex) {
  return std::string(call) + "(ifindex " + std::to_string(ifindex) + " egress)";
}

}  // namespace

Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  if (!Ifindex(info, &ifindex)) return env.Undefined();
  if (!info[1].IsObject() || !info[1].As<Napi::Object>().InstanceOf(BpfProgram::constructor.Value())) {
    ThrowType(env, "tcAttach(ifindex, program)");
    return env.Undefined();
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) {
    ThrowErrno(env, Op("bpf_tc_hook_create", ifindex), -err);
    return env.Undefined();
  }
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = BpfProgram::Unwrap(info[1].As<Napi::Object>())->fd(),
              .flags = BPF_TC_F_REPLACE, .handle = kHandle, .priority = kPriority);
  if ((err = bpf_tc_attach(&hook, &opts))) ThrowErrno(env, Op("bpf_tc_attach", ifindex), -err);
  return env.Undefined();
}

Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  if (!Ifindex(info, &ifindex)) return env.Undefined();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kHandle, .priority = kPriority);
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return Napi::Boolean::New(env, false);  // no filter, or no clsact qdisc
  if (err) {
    ThrowErrno(env, Op("bpf_tc_detach", ifindex), -err);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  if (!Ifindex(info, &ifindex)) return env.Undefined();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kHandle, .priority = kPriority);
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return Napi::Number::New(env, 0);
  if (err) {
    ThrowErrno(env, Op("bpf_tc_query", ifindex), -err);
    return env.Undefined();
  }
  return Napi::Number::New(env, opts.prog_id);
}

Napi::Value TcHookDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex;
  if (!Ifindex(info, &ifindex)) return env.Undefined();
  // Both attach points together name the clsact qdisc itself, not one of its hooks.
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  int err = bpf_tc_hook_destroy(&hook);
  if (err == -ENOENT || err == -EINVAL) return Napi::Boolean::New(env, false);  // no clsact qdisc
  if (err) {
    ThrowErrno(env, "bpf_tc_hook_destroy(ifindex " + std::to_string(ifindex) + " clsact)", -err);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace xlb
