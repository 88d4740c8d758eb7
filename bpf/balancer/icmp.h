/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMP to a VIP address: echo replies, and errors steered by the flow they quote. */
#ifndef XLB_BALANCER_ICMP_H
#define XLB_BALANCER_ICMP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "xlb.h"
#include "lib/csum.h"
#include "lib/icmp.h"
#include "balancer/mac.h"
#include "balancer/packet.h"
#include "balancer/parse.h"
#include "balancer/vip.h"

static __always_inline bool is_icmp4_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

static __always_inline bool is_icmp6_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG || type == ICMPV6_TIME_EXCEED ||
	       type == ICMPV6_PARAMPROB;
}

/* The quoted packet went from the VIP to the client: steer the error by the
 * reversed flow. Its source must be the address the error came to, so a forged
 * quote cannot reach another VIP's backends. */
static __always_inline int parse_icmp4_quote(struct xlb_packet *pkt, void *data_end)
{
	struct iphdr *inner = pkt->l4 + sizeof(struct icmphdr);
	__u16 *ports;

	if ((void *)(inner + 1) > data_end || inner->version != 4 || inner->ihl < 5)
		return XLB_DROP_MALFORMED_ICMP_INNER;
	ports = (void *)inner + inner->ihl * 4;
	if ((void *)(ports + 2) > data_end)
		return XLB_DROP_MALFORMED_ICMP_INNER;
	if (inner->saddr != *(__u32 *)pkt->flow.dst ||
	    (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP))
		return XLB_DROP_MALFORMED_ICMP_INNER;
	__builtin_memcpy(pkt->flow.src, &inner->daddr, 4);
	set_proto(&pkt->flow, inner->protocol, XLB_FAMILY_V4);
	set_ports(&pkt->flow, ports[1] | (__u32)ports[0] << 16);
	pkt->icmp_error = true;
	return XLB_CONTINUE;
}

static __always_inline bool ipv6_equal(const struct in6_addr *a, const __u8 *b)
{
	const __u32 *w = (const __u32 *)b;

	return a->in6_u.u6_addr32[0] == w[0] && a->in6_u.u6_addr32[1] == w[1] && a->in6_u.u6_addr32[2] == w[2] &&
	       a->in6_u.u6_addr32[3] == w[3];
}

/* As parse_icmp4_quote; the quoted IPv6 header must be followed directly by TCP or
 * UDP (extension headers in a quote are not followed). */
static __always_inline int parse_icmp6_quote(struct xlb_packet *pkt, void *data_end)
{
	struct ipv6hdr *inner = pkt->l4 + sizeof(struct icmp6hdr);
	__u16 *ports = (void *)(inner + 1);

	if ((void *)(ports + 2) > data_end || inner->version != 6)
		return XLB_DROP_MALFORMED_ICMP_INNER;
	if (!ipv6_equal(&inner->saddr, pkt->flow.dst) ||
	    (inner->nexthdr != IPPROTO_TCP && inner->nexthdr != IPPROTO_UDP))
		return XLB_DROP_MALFORMED_ICMP_INNER;
	__builtin_memcpy(pkt->flow.src, &inner->daddr, 16);
	set_proto(&pkt->flow, inner->nexthdr, XLB_FAMILY_V6);
	set_ports(&pkt->flow, ports[1] | (__u32)ports[0] << 16);
	pkt->icmp_error = true;
	return XLB_CONTINUE;
}

/* The echo functions check their headers again: the verifier does not carry the
 * family known at parse time through the flow key on the stack. */
static __always_inline int reply_echo4(struct ethhdr *eth, struct iphdr *ip, struct icmphdr *icmp, void *data_end)
{
	__u16 old_word;
	__be32 client;

	if ((void *)(ip + 1) > data_end || (void *)(icmp + 1) > data_end)
		return XLB_DROP_MALFORMED_IP;
	_Static_assert(offsetof(struct iphdr, protocol) == offsetof(struct iphdr, ttl) + 1,
		       "ttl and protocol are one 16-bit word of the checksum");
	old_word = *(__u16 *)&ip->ttl;
	client = ip->saddr;

	swap_macs(eth);
	ip->saddr = ip->daddr;
	ip->daddr = client;
	ip->ttl = XLB_OUTER_TTL;
	/* A header is never all zero (version 4), so 0x0000 is right when it comes out. */
	xlb_csum_replace16(&ip->check, old_word, *(__u16 *)&ip->ttl);
	old_word = *(__u16 *)icmp;
	icmp->type = ICMP_ECHOREPLY;
	xlb_csum_replace16_zeroable(&icmp->checksum, old_word, *(__u16 *)icmp);
	return XLB_TX_ICMP_ECHO_REPLY;
}

static __always_inline int reply_echo6(struct ethhdr *eth, struct ipv6hdr *ip6, struct icmp6hdr *icmp6, void *data_end)
{
	struct in6_addr client;
	__u16 old_word;

	if ((void *)(ip6 + 1) > data_end || (void *)(icmp6 + 1) > data_end)
		return XLB_DROP_MALFORMED_IP;
	client = ip6->saddr;
	old_word = *(__u16 *)icmp6;

	/* Swapping the addresses leaves the pseudo-header sum unchanged. That sum is never
	 * zero (next header 58), so the result cannot be an all-zero message's -0. */
	swap_macs(eth);
	ip6->saddr = ip6->daddr;
	ip6->daddr = client;
	ip6->hop_limit = XLB_OUTER_TTL;
	icmp6->icmp6_type = ICMPV6_ECHO_REPLY;
	xlb_csum_replace16(&icmp6->icmp6_cksum, old_word, *(__u16 *)icmp6);
	return XLB_TX_ICMP_ECHO_REPLY;
}

/* ICMP to a VIP address: answer echo requests, steer errors by their quoted flow. */
static __always_inline int handle_icmp(struct xlb_packet *pkt, struct ethhdr *eth, void *data_end)
{
	__u8 type = *(__u8 *)pkt->l4; /* parse_l4 checked 8 bytes */

	if (!is_vip_address(&pkt->flow))
		return XLB_PASS_NOT_VIP;
	if (pkt->flow.family == XLB_FAMILY_V4) {
		if (!ipv4_checksum_ok((void *)(eth + 1), data_end))
			return XLB_DROP_MALFORMED_IP;
		if (type == ICMP_ECHO)
			return reply_echo4(eth, (void *)(eth + 1), pkt->l4, data_end);
		if (is_icmp4_error(type))
			return parse_icmp4_quote(pkt, data_end);
	} else {
		if (type == ICMPV6_ECHO_REQUEST)
			return reply_echo6(eth, (void *)(eth + 1), pkt->l4, data_end);
		if (is_icmp6_error(type))
			return parse_icmp6_quote(pkt, data_end);
	}
	return XLB_DROP_VIP_PROTO;
}

#endif /* XLB_BALANCER_ICMP_H */
