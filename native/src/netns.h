// SPDX-License-Identifier: Apache-2.0
// Running a call inside another network namespace.
#pragma once

#include <napi.h>

namespace xlb {

// inNetns(path, fn): runs fn with this thread in the network namespace at path
// (e.g. /run/netns/NAME), then returns to the original one. Interface names,
// ifindexes and XDP attach inside fn refer to that namespace; BPF objects and
// maps are not per-namespace and stay usable.
Napi::Value InNetns(const Napi::CallbackInfo& info);

}  // namespace xlb
