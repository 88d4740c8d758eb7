// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Deliberately rejected by the verifier (a packet read with no bounds check), so
 * tests can see load failures carry the verifier log. Never loaded in production. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[64];
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
