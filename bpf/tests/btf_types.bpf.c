// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Puts the layout of xlb.h types that no map of the programs holds (the flow key
 * lives only on the balancer's stack; the outcome enums index the counter maps as
 * __u32) into BTF, for test/btf-layout.test.ts. Never loaded. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct xlb_flow_key);
	__type(value, __u32);
} xlb_flow_key_type SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, enum xlb_outcome);
	__type(value, enum xlb_decap_outcome);
} xlb_outcome_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, enum xlb_flow_state);
	__type(value, __u32);
} xlb_flow_state_type SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";
