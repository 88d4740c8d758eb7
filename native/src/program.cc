// SPDX-License-Identifier: Apache-2.0
#include "program.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <vector>

#include "errors.h"

namespace xlb {

Napi::FunctionReference BpfProgram::constructor;

Napi::Function BpfProgram::Init(Napi::Env env) {
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
  return cls;
}

Napi::Value BpfProgram::Wrap(Napi::Env env, int fd) {
  Napi::Object obj = constructor.New({});
  Unwrap(obj)->Adopt(fd);
  return obj;
}

Napi::Value BpfProgram::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value BpfProgram::Info(const Napi::CallbackInfo& info) {
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
Napi::Value BpfProgram::TestRun(const Napi::CallbackInfo& info) {
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

Napi::Value BpfProgram::Close(const Napi::CallbackInfo& info) {
  CloseFd();
  return info.Env().Undefined();
}

Napi::Value BpfProgram::FromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_prog_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
  return WrapNewFd<BpfProgram>(env, fd, "bpf_prog_get_fd_by_id");
}

}  // namespace xlb
