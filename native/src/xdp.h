// SPDX-License-Identifier: Apache-2.0
// XDP attach, detach and query on an interface, and interface name lookup.
#pragma once

#include <napi.h>

namespace xlb {

// xdpAttach(ifindex, program, {mode, replace?: BpfProgram, onlyIfNone?: boolean})
Napi::Value XdpAttach(const Napi::CallbackInfo& info);
// xdpDetach(ifindex, mode)
Napi::Value XdpDetach(const Napi::CallbackInfo& info);
// xdpQuery(ifindex, mode) -> attached program id, 0 for none
Napi::Value XdpQuery(const Napi::CallbackInfo& info);
// ifNameToIndex(name) -> ifindex in the calling thread's network namespace
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info);

}  // namespace xlb
