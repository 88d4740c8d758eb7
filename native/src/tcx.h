// SPDX-License-Identifier: Apache-2.0
// The programs attached at an interface's tcx hook (BPF_LINK_CREATE or BPF_PROG_ATTACH
// with BPF_TCX_INGRESS/EGRESS): they run before every clsact filter, xlb's among them.
#pragma once

#include <napi.h>

namespace xlb {

// tcxQuery(ifindex, 'ingress' | 'egress') -> [{ id, name }] in the order they run; []
// on a kernel without tcx
Napi::Value TcxQuery(const Napi::CallbackInfo& info);

}  // namespace xlb
