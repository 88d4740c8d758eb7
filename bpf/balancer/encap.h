/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding mode ipip (XLB_FORWARD_IPIP): IPIP, IP6IP6 or IPv4-in-IPv6 by the
 * backend's family, and the ICMP "too big" replies when the encapsulated packet
 * would exceed the MTU. */
#ifndef XLB_BALANCER_ENCAP_H
#define XLB_BALANCER_ENCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"
#include "lib/csum.h"
#include "lib/icmp.h"
#include "balancer/mac.h"
#include "balancer/packet.h"

#define XLB_IPV6_PTB_QUOTE (sizeof(struct ipv6hdr) + 8)

/* Shrinks the frame to Ethernet + `quote` bytes of IP packet and prepends room for
 * a new IP and ICMP header. Saves the MACs swapped first. */
static __always_inline int make_icmp_room(struct xdp_md *ctx, __u32 quote, int room, struct mac macs[2])
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	int shrink;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XLB_DROP_MALFORMED_ETH;
	macs[0] = load_mac(eth->h_source);
	macs[1] = load_mac(eth->h_dest);
	shrink = (int)(sizeof(*eth) + quote) - (int)bpf_xdp_get_buff_len(ctx);
	if (shrink < 0 && bpf_xdp_adjust_tail(ctx, shrink))
		return XLB_DROP_ADJUST_FAILED;
	if (bpf_xdp_adjust_head(ctx, -room))
		return XLB_DROP_ADJUST_FAILED;
	return XLB_CONTINUE;
}

/* The header is made as five 32-bit words in registers, summed there and stored word by
 * word: summing it back from memory would load 16-bit words spanning the byte-sized
 * stores of its fields, which cannot be forwarded and stall. Words are in host
 * (little-endian) order, as a 32-bit load of the header would give them. */
static __always_inline void write_ipv4(struct iphdr *ip, __u8 tos, __u16 tot_len, bool df, __u8 proto,
				       const void *saddr, const void *daddr)
{
	__u32 *w = (__u32 *)ip;
	__u32 version_tos_len = 0x45 | (__u32)tos << 8 | (__u32)bpf_htons(tot_len) << 16;
	__u32 id_frag = df ? (__u32)bpf_htons(XLB_IPV4_DF) << 16 : 0;
	__u32 ttl_proto = XLB_OUTER_TTL | (__u32)proto << 8; /* checksum 0 for the sum */
	__u32 src = *(const __u32 *)saddr, dst = *(const __u32 *)daddr;
	__u16 check = xlb_csum_fold((__u64)version_tos_len + id_frag + ttl_proto + src + dst);

	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the words are built in host order");
	_Static_assert(offsetof(struct iphdr, tot_len) == 2 && offsetof(struct iphdr, frag_off) == 6 &&
			       offsetof(struct iphdr, protocol) == 9 && offsetof(struct iphdr, check) == 10 &&
			       offsetof(struct iphdr, saddr) == 12 && offsetof(struct iphdr, daddr) == 16,
		       "w[0] version..tot_len, w[1] id, frag_off, w[2] ttl..check, w[3] saddr, w[4] daddr");
	w[0] = version_tos_len;
	w[1] = id_frag;
	w[2] = ttl_proto | (__u32)check << 16;
	w[3] = src;
	w[4] = dst;
}

static __always_inline void write_ipv6(struct ipv6hdr *ip6, __u8 tclass, __u32 flow_label, __u16 payload_len,
				       __u8 nexthdr, const void *saddr, const void *daddr)
{
	_Static_assert(offsetof(struct ipv6hdr, payload_len) == 4,
		       "version, traffic class and flow label are one word");
	*(__be32 *)ip6 = bpf_htonl((6u << 28) | ((__u32)tclass << 20) | (flow_label & 0xfffff));
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = nexthdr;
	ip6->hop_limit = XLB_OUTER_TTL;
	__builtin_memcpy(&ip6->saddr, saddr, 16);
	__builtin_memcpy(&ip6->daddr, daddr, 16);
}

/* ICMP "fragmentation needed" to the client, quoting its IP header and 8 bytes. */
static __always_inline int send_frag_needed(struct xdp_md *ctx, __u16 mtu)
{
	const int room = sizeof(struct iphdr) + sizeof(struct icmphdr);
	struct iphdr *ip = (void *)(long)ctx->data + sizeof(struct ethhdr);
	void *data_end = (void *)(long)ctx->data_end;
	struct mac macs[2];
	struct icmphdr *icmp;
	struct ethhdr *eth;
	struct iphdr *quoted;
	__u32 quote;
	int ret;

	if ((void *)(ip + 1) > data_end)
		return XLB_DROP_MALFORMED_IP;
	quote = ip->ihl * 4 + 8; /* parse_l4 saw at least 8 transport bytes */
	ret = make_icmp_room(ctx, quote, room, macs);
	if (ret != XLB_CONTINUE)
		return ret;

	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip = (void *)(eth + 1);
	icmp = (void *)(ip + 1);
	quoted = (void *)(icmp + 1);
	if ((void *)(quoted + 1) > data_end)
		return XLB_DROP_ADJUST_FAILED;

	write_eth(eth, macs[0], macs[1], ETH_P_IP);
	write_ipv4(ip, 0, room + quote, false, IPPROTO_ICMP, &quoted->daddr, &quoted->saddr);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(mtu);
	icmp->checksum =
		xlb_csum_fold(xlb_csum_add_packet(quoted, quote, data_end, xlb_csum_add(icmp, sizeof(*icmp) / 2, 0)));
	return XLB_TX_ICMP_TOO_BIG;
}

/* ICMPv6 "packet too big" to the client, quoting its IPv6 header and 8 bytes. */
static __always_inline int send_packet_too_big(struct xdp_md *ctx, __u32 mtu)
{
	const int room = sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr);
	struct mac macs[2];
	struct icmp6hdr *icmp6;
	struct ipv6hdr *ip6, *quoted;
	struct ethhdr *eth;
	void *data_end;
	__u64 sum;
	int ret;

	ret = make_icmp_room(ctx, XLB_IPV6_PTB_QUOTE, room, macs);
	if (ret != XLB_CONTINUE)
		return ret;

	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6 = (void *)(eth + 1);
	icmp6 = (void *)(ip6 + 1);
	quoted = (void *)(icmp6 + 1);
	if ((void *)quoted + XLB_IPV6_PTB_QUOTE > data_end)
		return XLB_DROP_ADJUST_FAILED;

	write_eth(eth, macs[0], macs[1], ETH_P_IPV6);
	write_ipv6(ip6, 0, 0, room - sizeof(*ip6) + XLB_IPV6_PTB_QUOTE, IPPROTO_ICMPV6, &quoted->daddr, &quoted->saddr);
	icmp6->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp6->icmp6_code = 0;
	icmp6->icmp6_cksum = 0;
	icmp6->icmp6_mtu = bpf_htonl(mtu);

	/* Pseudo-header: addresses, upper-layer length, next header. */
	sum = xlb_csum_add(&ip6->saddr, 16, 0);
	sum += bpf_htons(sizeof(*icmp6) + XLB_IPV6_PTB_QUOTE);
	sum += bpf_htons(IPPROTO_ICMPV6);
	sum = xlb_csum_add(icmp6, sizeof(*icmp6) / 2, sum);
	sum = xlb_csum_add(quoted, XLB_IPV6_PTB_QUOTE / 2, sum);
	icmp6->icmp6_cksum = xlb_csum_fold(sum);
	return XLB_TX_ICMP_TOO_BIG;
}

/* The configured outer source with its low `bits` taken from the flow hash, so a
 * backend's NIC spreads flows over its receive queues. */
static __always_inline __be32 vary_source_word(__be32 base, __u32 hash, __u8 bits)
{
	__u32 mask;

	if (!bits)
		return base;
	mask = bits >= 32 ? 0xffffffff : (1u << bits) - 1;
	return bpf_htonl((bpf_ntohl(base) & ~mask) | (hash & mask));
}

/* The next hop of an encapsulated packet of `pkt`'s flow to `backend`: the backend's
 * MAC, else the gateway's; zero when there is none or an IPv6 flow meets an IPv4
 * backend (XLB_DROP_NO_ROUTE). */
static __always_inline struct mac encap_next_hop(const struct xlb_packet *pkt, const struct xlb_backend *backend,
						 const struct xlb_config *config)
{
	struct mac next_hop = load_mac(backend->mac);

	if (mac_is_zero(next_hop))
		next_hop = load_mac(config->gateway_mac);
	if (backend->family == XLB_FAMILY_V4 && pkt->flow.family != XLB_FAMILY_V4)
		return (struct mac){};
	return next_hop;
}

/* The Ethernet and outer IP headers of `pkt` encapsulated to `backend`, written in
 * the room made behind `eth` (by the balancer with bpf_xdp_adjust_head, by the probe
 * program with bpf_skb_adjust_room). */
static __always_inline int write_encap(struct ethhdr *eth, void *data_end, struct mac next_hop, struct mac our_mac,
				       const struct xlb_packet *pkt, const struct xlb_backend *backend,
				       const struct xlb_config *config, __u32 hash)
{
	if (backend->family == XLB_FAMILY_V4) {
		struct iphdr *outer = (void *)(eth + 1);
		__be32 source;

		if ((void *)(outer + 1) > data_end)
			return XLB_DROP_ADJUST_FAILED;
		source = vary_source_word(*(__be32 *)config->source_v4, hash, config->source_v4_flow_bits);
		write_eth(eth, next_hop, our_mac, ETH_P_IP);
		write_ipv4(outer, pkt->tos, pkt->ip_len + sizeof(*outer), pkt->df, IPPROTO_IPIP, &source,
			   backend->addr);
	} else {
		struct ipv6hdr *outer = (void *)(eth + 1);
		__be32 source[4];

		if ((void *)(outer + 1) > data_end)
			return XLB_DROP_ADJUST_FAILED;
		__builtin_memcpy(source, config->source_v6, 16);
		source[3] = vary_source_word(source[3], hash, config->source_v6_flow_bits);
		write_eth(eth, next_hop, our_mac, ETH_P_IPV6);
		write_ipv6(outer, pkt->tos, hash, pkt->ip_len,
			   pkt->flow.family == XLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6, source, backend->addr);
	}
	return XLB_TX_IPIP;
}

static __always_inline int forward_ipip(struct xdp_md *ctx, const struct xlb_packet *pkt,
					const struct xlb_backend *backend, const struct xlb_config *config, __u32 hash)
{
	struct mac next_hop = encap_next_hop(pkt, backend, config), our_mac;
	int overhead = backend->family == XLB_FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	struct ethhdr *eth = (void *)(long)ctx->data;

	if (mac_is_zero(next_hop))
		return XLB_DROP_NO_ROUTE;
	if (config->mtu && pkt->ip_len + overhead > config->mtu) {
		if (pkt->icmp_error)
			return XLB_DROP_TOO_BIG;
		if (pkt->flow.family == XLB_FAMILY_V6)
			return send_packet_too_big(ctx, config->mtu - overhead);
		if (!pkt->df)
			return XLB_DROP_TOO_BIG;
		return send_frag_needed(ctx, config->mtu - overhead);
	}

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XLB_DROP_MALFORMED_ETH;
	our_mac = load_mac(eth->h_dest);
	if (bpf_xdp_adjust_head(ctx, -overhead))
		return XLB_DROP_ADJUST_FAILED;
	eth = (void *)(long)ctx->data;
	return write_encap(eth, (void *)(long)ctx->data_end, next_hop, our_mac, pkt, backend, config, hash);
}

#endif /* XLB_BALANCER_ENCAP_H */
