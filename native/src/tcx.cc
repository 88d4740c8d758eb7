// SPDX-License-Identifier: Apache-2.0
#include "tcx.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "errors.h"

namespace xlb {

namespace {

// The kernel's enum bpf_attach_type values (6.6 and later); the system's linux/bpf.h
// (libbpf 1.1's era) does not name them.
constexpr int kTcxIngress = 46;  // BPF_TCX_INGRESS
constexpr int kTcxEgress = 47;   // BPF_TCX_EGRESS

// More programs than any host runs on one hook; past it the kernel fills these and
// says ENOSPC, and the first ones are the ones that run first, all a caller asks about.
constexpr __u32 kMaxPrograms = 64;

// The program's name, "" when it went away since the query.
std::string ProgramName(__u32 id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return "";
  struct bpf_prog_info pi = {};
  __u32 len = sizeof(pi);
  std::string name = bpf_obj_get_info_by_fd(fd, &pi, &len) ? "" : pi.name;
  close(fd);
  return name;
}

}  // namespace

Napi::Value TcxQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string direction = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (!info[0].IsNumber() || (direction != "ingress" && direction != "egress")) {
    ThrowType(env, "tcxQuery(ifindex, 'ingress' | 'egress')");
    return env.Undefined();
  }
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  __u32 ids[kMaxPrograms];
  // target_fd shares its place in bpf_attr with the target_ifindex tcx reads.
  LIBBPF_OPTS(bpf_prog_query_opts, opts, .prog_ids = ids, .prog_cnt = kMaxPrograms);
  int err = bpf_prog_query_opts(ifindex, static_cast<bpf_attach_type>(direction == "egress" ? kTcxEgress : kTcxIngress),
                                &opts);
  Napi::Array programs = Napi::Array::New(env);
  if (err == -EINVAL) return programs;  // no tcx in this kernel
  if (err && err != -ENOSPC) {
    ThrowErrno(env, "bpf_prog_query(ifindex " + std::to_string(ifindex) + " tcx " + direction + ")", -err);
    return env.Undefined();
  }
  // On ENOSPC prog_cnt is the hook's whole count: only kMaxPrograms ids were filled.
  for (__u32 i = 0; i < std::min(opts.prog_cnt, kMaxPrograms); i++) {
    Napi::Object program = Napi::Object::New(env);
    program.Set("id", ids[i]);
    program.Set("name", ProgramName(ids[i]));
    programs.Set(i, program);
  }
  return programs;
}

}  // namespace xlb
