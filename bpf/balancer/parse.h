/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parsing IPv4, IPv6 and the transport header into struct xlb_packet. */
#ifndef XLB_BALANCER_PARSE_H
#define XLB_BALANCER_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"
#include "lib/csum.h"
#include "lib/icmp.h"
#include "balancer/packet.h"
#include "balancer/vip.h"

#define XLB_IPV6_MAX_EXT_HEADERS 4

static __always_inline int parse_ipv4(struct xlb_packet *pkt, struct iphdr *ip, void *data_end)
{
	__u32 hdr_len;

	if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5)
		return XLB_DROP_MALFORMED_IP;
	hdr_len = ip->ihl * 4;
	pkt->ip_len = bpf_ntohs(ip->tot_len);
	if (pkt->ip_len < hdr_len || (void *)ip + pkt->ip_len > data_end)
		return XLB_DROP_MALFORMED_IP;

	set_proto(&pkt->flow, ip->protocol, XLB_FAMILY_V4);
	__builtin_memcpy(pkt->flow.src, &ip->saddr, 4);
	__builtin_memcpy(pkt->flow.dst, &ip->daddr, 4);
	pkt->tos = ip->tos;
	pkt->df = ip->frag_off & bpf_htons(XLB_IPV4_DF);
	pkt->fragment = ip->frag_off & bpf_htons(XLB_IPV4_FRAGMENT_BITS);
	pkt->l4 = (void *)ip + hdr_len;
	return XLB_CONTINUE;
}

/* Extension headers parse_ipv6 walks past (a fragment header ends the walk). */
static __always_inline bool is_ipv6_walked_header(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS;
}

static __always_inline int parse_ipv6(struct xlb_packet *pkt, struct ipv6hdr *ip6, void *data_end)
{
	__u32 payload_len, ext_len = 0;
	__u8 nexthdr;
	void *cursor;

	if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
		return XLB_DROP_MALFORMED_IP;
	payload_len = bpf_ntohs(ip6->payload_len);
	pkt->ip_len = sizeof(*ip6) + payload_len;
	if ((void *)ip6 + pkt->ip_len > data_end)
		return XLB_DROP_MALFORMED_IP;

	__builtin_memcpy(pkt->flow.src, &ip6->saddr, 16);
	__builtin_memcpy(pkt->flow.dst, &ip6->daddr, 16);
	pkt->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	nexthdr = ip6->nexthdr;
	cursor = ip6 + 1;

#pragma unroll
	for (int i = 0; i < XLB_IPV6_MAX_EXT_HEADERS; i++) {
		struct ipv6_opt_hdr *opt = cursor;

		if (nexthdr == IPPROTO_FRAGMENT) {
			pkt->fragment = true;
			break;
		}
		if (!is_ipv6_walked_header(nexthdr))
			break;
		if ((void *)(opt + 1) > data_end)
			return XLB_DROP_MALFORMED_IP;
		ext_len += (opt->hdrlen + 1) * 8;
		if (ext_len > payload_len)
			return XLB_DROP_MALFORMED_IP;
		nexthdr = opt->nexthdr;
		cursor += (opt->hdrlen + 1) * 8;
	}
	set_proto(&pkt->flow, nexthdr, XLB_FAMILY_V6);
	/* More headers than the walk takes: the host's stack may follow them, but a packet
	 * to a VIP address cannot be read. */
	if (is_ipv6_walked_header(nexthdr))
		return is_vip_address(&pkt->flow) ? XLB_DROP_MALFORMED_IP : XLB_PASS_NOT_VIP;
	pkt->l4 = cursor;
	return XLB_CONTINUE;
}

/* The IPv4 header checksum, checked only for traffic the balancer acts on: the
 * host's stack checks everything it receives itself. A header without options is
 * summed as five 32-bit words (the one's-complement sum does not care). */
static __always_inline bool ipv4_checksum_ok(struct iphdr *ip, void *data_end)
{
	const __u32 *w = (const __u32 *)ip;

	_Static_assert(sizeof(struct iphdr) == 5 * 4, "an IPv4 header without options is five words");
	if ((void *)(ip + 1) > data_end)
		return false;
	if (ip->ihl == 5)
		return xlb_csum_fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]) == 0;
	return xlb_csum_fold(xlb_csum_add_packet(ip, ip->ihl * 4, data_end, 0)) == 0;
}

/* Checks the transport header fits the IP payload and reads the ports. */
static __always_inline int parse_l4(struct xlb_packet *pkt, void *l3, void *data_end)
{
	void *l4 = pkt->l4;
	__u32 l4_len = pkt->ip_len - (__u32)(l4 - l3);

	/* The IPv6 extension-header walk guarantees l4 lies within ip_len; IPv4 checked
	 * ip_len >= IHL. */
	_Static_assert(offsetof(struct tcphdr, dest) == 2 && offsetof(struct udphdr, dest) == 2,
		       "the source and destination ports are the transport header's first word");
	switch (pkt->flow.proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || l4_len < sizeof(*tcp) || tcp->doff < 5 || tcp->doff * 4 > l4_len)
			return XLB_DROP_MALFORMED_L4;
		set_ports(&pkt->flow, *(__u32 *)&tcp->source);
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return XLB_CONTINUE;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || l4_len < sizeof(*udp) || bpf_ntohs(udp->len) < sizeof(*udp) ||
		    bpf_ntohs(udp->len) > l4_len)
			return XLB_DROP_MALFORMED_L4;
		set_ports(&pkt->flow, *(__u32 *)&udp->source);
		return XLB_CONTINUE;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* Both headers start with type, code, checksum and 4 more bytes. */
		if (l4 + sizeof(struct icmphdr) > data_end || l4_len < sizeof(struct icmphdr))
			return XLB_DROP_MALFORMED_L4;
		return XLB_CONTINUE;
	default:
		return XLB_CONTINUE;
	}
}

#endif /* XLB_BALANCER_PARSE_H */
