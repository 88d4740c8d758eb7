/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding mode dsr (XLB_FORWARD_DSR): the backend's MAC as destination, XDP_TX. */
#ifndef XLB_BALANCER_DSR_H
#define XLB_BALANCER_DSR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>

#include "xlb.h"
#include "balancer/mac.h"

static __always_inline int forward_dsr(struct xdp_md *ctx, const struct xlb_backend *backend)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct mac next_hop = load_mac(backend->mac);

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XLB_DROP_MALFORMED_ETH;
	if (mac_is_zero(next_hop))
		return XLB_DROP_NO_ROUTE;
	store_mac(eth->h_source, load_mac(eth->h_dest));
	store_mac(eth->h_dest, next_hop);
	return XLB_TX_DSR;
}

#endif /* XLB_BALANCER_DSR_H */
