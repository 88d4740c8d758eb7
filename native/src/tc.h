// SPDX-License-Identifier: Apache-2.0
// A program on an interface's tc egress (clsact) hook, at xlb's own handle and
// priority: attach (replacing what is there), detach and query.
#pragma once

#include <napi.h>

namespace xlb {

// tcAttach(ifindex, program): creates the clsact qdisc if missing, then attaches or
// replaces xlb's egress filter in one step.
Napi::Value TcAttach(const Napi::CallbackInfo& info);
// tcDetach(ifindex) -> false when no xlb egress filter was there
Napi::Value TcDetach(const Napi::CallbackInfo& info);
// tcQuery(ifindex) -> the program id of xlb's egress filter, 0 for none
Napi::Value TcQuery(const Napi::CallbackInfo& info);

}  // namespace xlb
