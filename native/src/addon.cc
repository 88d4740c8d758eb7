// SPDX-License-Identifier: Apache-2.0
// Thin node-addon-api layer over the system libbpf: open/load objects, maps,
// programs, XDP attach and BPF_PROG_TEST_RUN, network namespaces and flock for
// lock files. No policy lives here. Every wrapper owns its own file descriptor
// (dup'ed from libbpf's) and closes it on close() or when garbage-collected.
// Failures throw an Error carrying errno, code, op and, for loads, the verifier log.
#include <napi.h>

#include "errors.h"
#include "lock.h"
#include "map.h"
#include "netns.h"
#include "object.h"
#include "perf_reader.h"
#include "program.h"
#include "tc.h"
#include "tcx.h"
#include "xdp.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  xlb::CaptureLibbpfPrint();
  exports.Set("BpfObject", xlb::BpfObject::Init(env));
  exports.Set("BpfMap", xlb::BpfMap::Init(env));
  exports.Set("BpfProgram", xlb::BpfProgram::Init(env));
  exports.Set("PerfReader", xlb::PerfReader::Init(env));
  exports.Set("xdpAttach", Napi::Function::New(env, xlb::XdpAttach));
  exports.Set("xdpDetach", Napi::Function::New(env, xlb::XdpDetach));
  exports.Set("xdpQuery", Napi::Function::New(env, xlb::XdpQuery));
  exports.Set("tcAttach", Napi::Function::New(env, xlb::TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, xlb::TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, xlb::TcQuery));
  exports.Set("tcHookDestroy", Napi::Function::New(env, xlb::TcHookDestroy));
  exports.Set("tcPriority", Napi::Number::New(env, xlb::kTcPriority));
  exports.Set("tcxQuery", Napi::Function::New(env, xlb::TcxQuery));
  exports.Set("ifNameToIndex", Napi::Function::New(env, xlb::IfNameToIndex));
  exports.Set("inNetns", Napi::Function::New(env, xlb::InNetns));
  exports.Set("possibleCpus", Napi::Function::New(env, xlb::PossibleCpus));
  exports.Set("lockFile", Napi::Function::New(env, xlb::LockFile));
  exports.Set("closeFd", Napi::Function::New(env, xlb::CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(xlb_native, Init)
