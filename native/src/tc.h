// SPDX-License-Identifier: Apache-2.0
// A program on an interface's tc egress (clsact) hook, at xlb's own handle and
// priority: attach (replacing what is there), detach and query; and the clsact qdisc's
// removal.
#pragma once

#include <napi.h>

#include <cstdint>

namespace xlb {

// The preference of xlb's egress filter (exported as tcPriority): fixed, so a restarted
// daemon replaces its predecessor's filter; filters at a lower one run before it.
constexpr uint32_t kTcPriority = 0x786c;

// tcAttach(ifindex, program): creates the clsact qdisc if missing, then attaches or
// replaces xlb's egress filter in one step.
Napi::Value TcAttach(const Napi::CallbackInfo& info);
// tcDetach(ifindex) -> false when no xlb egress filter was there
Napi::Value TcDetach(const Napi::CallbackInfo& info);
// tcQuery(ifindex) -> the program id of xlb's egress filter, 0 for none
Napi::Value TcQuery(const Napi::CallbackInfo& info);
// tcHookDestroy(ifindex) -> false when there was no clsact qdisc; removes it with every
// filter on its ingress and egress hooks
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info);

}  // namespace xlb
