// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xlb decap: the XDP program on a backend's interface. Strips the IPIP, IP6IP6 or
 * IPv4-in-IPv6 header that the balancer added when the outer destination is one of
 * this host's addresses (xlb_decap_v3), and passes the inner packet up the stack.
 * It stands in for the ipip/ip6_tunnel modules and is cheaper than them.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 256);
	__type(key, struct xlb_addr);
	__type(value, __u32);
} xlb_decap_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_DECAP_OUTCOME_COUNT);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
} xlb_dcounter_v3 SEC(".maps");

#define XLB_DECAP_CONTINUE (-1)

static __always_inline bool is_our_address(const void *addr, __u8 family)
{
	struct xlb_addr key = { .family = family };

	__builtin_memcpy(key.addr, addr, family == XLB_FAMILY_V4 ? 4 : 16);
	return bpf_map_lookup_elem(&xlb_decap_v3, &key) != NULL;
}

/* Finds the outer header's length and the inner EtherType, or an outcome. */
static __always_inline int outer_header(struct ethhdr *eth, void *data_end, int *outer_len, __u16 *inner_proto)
{
	void *l3 = eth + 1;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return XLB_DECAP_DROP_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return XLB_DECAP_DROP_MALFORMED;
		if (ip->protocol != IPPROTO_IPIP || !is_our_address(&ip->daddr, XLB_FAMILY_V4))
			return XLB_DECAP_PASS_NOT_ENCAP;
		if (ip->ihl < 5 || ip->frag_off & bpf_htons(0x3fff))
			return XLB_DECAP_DROP_MALFORMED;
		*outer_len = ip->ihl * 4;
		*inner_proto = ETH_P_IP;
		return XLB_DECAP_CONTINUE;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return XLB_DECAP_DROP_MALFORMED;
		proto = ip6->nexthdr;
		if ((proto != IPPROTO_IPIP && proto != IPPROTO_IPV6) || !is_our_address(&ip6->daddr, XLB_FAMILY_V6))
			return XLB_DECAP_PASS_NOT_ENCAP;
		*outer_len = sizeof(*ip6);
		*inner_proto = proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6;
		return XLB_DECAP_CONTINUE;
	}
	return XLB_DECAP_PASS_NOT_ENCAP;
}

static __always_inline int decap(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr saved;
	__u16 inner_proto = 0;
	int outer_len = 0, ret;
	__u8 *inner;

	ret = outer_header(eth, data_end, &outer_len, &inner_proto);
	if (ret != XLB_DECAP_CONTINUE)
		return ret;
	/* The inner header must be there and of the family the outer one announced. */
	inner = (void *)(eth + 1) + outer_len;
	if ((void *)(inner + 1) > data_end)
		return XLB_DECAP_DROP_MALFORMED;
	if ((*inner >> 4) != (inner_proto == ETH_P_IP ? 4 : 6))
		return XLB_DECAP_DROP_MALFORMED;

	saved = *eth;
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return XLB_DECAP_DROP_ADJUST_FAILED;
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XLB_DECAP_DROP_ADJUST_FAILED;
	__builtin_memcpy(eth->h_dest, saved.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_source, saved.h_source, ETH_ALEN);
	eth->h_proto = bpf_htons(inner_proto);
	return XLB_DECAP_PASS_DECAPSULATED;
}

SEC("xdp")
int xlb_decap(struct xdp_md *ctx)
{
	__u64 bytes = bpf_xdp_get_buff_len(ctx);
	__u32 outcome = decap(ctx);
	struct xlb_traffic *counter = bpf_map_lookup_elem(&xlb_dcounter_v3, &outcome);

	if (counter) {
		counter->packets++;
		counter->bytes += bytes;
	}
	return outcome >= XLB_DECAP_DROP_MALFORMED ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
