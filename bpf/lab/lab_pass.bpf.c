// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP_PASS for the switch side of a lab veth that receives XDP_TX frames. veth
 * schedules the receiving end's NAPI after XDP_TX only when that end has an XDP
 * program; with GRO alone, frames sit in its ring until other traffic wakes it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int lab_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
