/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Health-check probes through the forwarding path: the tc egress program xlb_probe
 * sends a probe the control plane addressed to a VIP (from a local port in
 * XLB_PROBE_PORT_MIN..MAX) to the backend xlb_probes_v1 names for it, as the balancer
 * would forward a client's packet of that flow: dsr by the backend's MAC, ipip
 * encapsulated. The backend answers the LB's own address, which XDP passes. */
#ifndef XLB_BALANCER_PROBE_H
#define XLB_BALANCER_PROBE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"
#include "balancer/encap.h"
#include "balancer/hash.h"
#include "balancer/mac.h"
#include "balancer/maps.h"
#include "balancer/packet.h"
#include "balancer/parse.h"
#include "balancer/vip.h"

_Static_assert(XLB_PROBE_PORT_MAX == 65535, "the range ends at the last port: one compare tests it");

/* Whether the packet's source port is a probe's: read from the linear headers, which
 * the host's own TCP and UDP packets always have, so most packets leave after a few
 * loads. */
static __always_inline bool from_probe_port(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__be16 *ports;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return false;
		proto = ip->protocol;
		ports = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return false;
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
	} else {
		return false;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return false;
	if ((void *)(ports + 1) > data_end)
		return false;
	return bpf_ntohs(*ports) >= XLB_PROBE_PORT_MIN;
}

/* Whether a VIP packet is one of the LB's own via-vip probes come back to it: it left
 * by a route that missed xlb_probe, and balanced, the ring's backend would answer for
 * the probed one (a false "healthy"). Probes bind the configured source itself, so it
 * is compared whole: the flow bits vary only the outer source the balancer writes. */
static __always_inline bool looped_probe(const struct xlb_flow_key *flow, const struct xlb_config *config)
{
	const __u32 *src = (const __u32 *)flow->src, *own = (const __u32 *)config->source_v6;

	if (bpf_ntohs(flow->sport) < XLB_PROBE_PORT_MIN)
		return false;
	if (flow->family == XLB_FAMILY_V4)
		return src[0] == *(const __u32 *)config->source_v4;
	return src[0] == own[0] && src[1] == own[1] && src[2] == own[2] && src[3] == own[3];
}

/* Encapsulates the probe for `backend` as forward_ipip would (no MTU check: probes
 * are small). */
static __always_inline int encapsulate_probe(struct __sk_buff *skb, const struct xlb_packet *pkt,
					     const struct xlb_backend *backend)
{
	bool outer_v4 = backend->family == XLB_FAMILY_V4;
	__u32 overhead = outer_v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr), zero = 0;
	__u64 flags = outer_v4 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
	const struct xlb_config *config = bpf_map_lookup_elem(&xlb_config_v5, &zero);
	struct mac next_hop, our_mac;
	struct ethhdr *eth;

	if (!config)
		return TC_ACT_SHOT;
	next_hop = encap_next_hop(pkt, backend, config);
	if (mac_is_zero(next_hop))
		return TC_ACT_SHOT;
	eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	our_mac = load_mac(eth->h_source);
	if (bpf_skb_adjust_room(skb, overhead, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_SHOT;
	/* The VIP's affinity flag only changes the hash's input: the outer source's varied
	 * bits and the flow label, which the backend's decap does not read. */
	if (write_encap((void *)(long)skb->data, (void *)(long)skb->data_end, next_hop, our_mac, pkt, backend, config,
			flow_hash(&pkt->flow, 0, config->hash_seed)) != XLB_TX_IPIP)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* Sets the probe's TTL / hop limit to 1 (ipip: the inner header, before encapsulation).
 * A backend holding the VIP takes the probe whatever its TTL; one that would forward it
 * (ip_forward on, the VIP not on lo) drops it with ICMP time exceeded instead of passing
 * it to whatever else answers for the VIP (a false "up"). */
static __always_inline bool limit_probe_hops(struct ethhdr *eth, void *data_end)
{
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 old_word;

		if ((void *)(ip + 1) > data_end)
			return false;
		_Static_assert(offsetof(struct iphdr, protocol) == offsetof(struct iphdr, ttl) + 1,
			       "ttl and protocol are one 16-bit word of the checksum");
		old_word = *(__u16 *)&ip->ttl;
		ip->ttl = 1;
		xlb_csum_replace16(&ip->check, old_word, *(__u16 *)&ip->ttl);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return false;
		ip6->hop_limit = 1;
	}
	return true;
}

/* Stamps the probe of `key` as sent through xlb_probe now when `verdict` lets it out
 * to its backend; returns `verdict`. */
static __always_inline int stamp_sent(const struct xlb_probe_key *key, int verdict)
{
	if (verdict == TC_ACT_OK) {
		struct xlb_probe_sent sent = { .sent_ns = bpf_ktime_get_ns() };

		bpf_map_update_elem(&xlb_probe_sent_v1, key, &sent, BPF_ANY);
	}
	return verdict;
}

/* A probe-port packet: sent on to its backend (and stamped, stamp_sent), or dropped when it is to a VIP
 * address and no probe entry names a backend (through the gateway it would come back
 * to the balancer and be answered by whichever backend the ring picks). Any other
 * packet gets TC_ACT_UNSPEC: the egress filters after xlb's still classify it. */
static __always_inline int forward_probe(struct __sk_buff *skb)
{
	struct xlb_probe_key key = {};
	const struct xlb_backend *backend;
	const struct xlb_probe *probe;
	struct xlb_packet pkt = {};
	void *data, *data_end;
	struct ethhdr *eth;
	int ret;

	/* The whole packet linear, so the balancer's parsers (which check the IP length
	 * against the data) read it as they read a frame. */
	if (bpf_skb_pull_data(skb, skb->len))
		return TC_ACT_UNSPEC;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		ret = parse_ipv4(&pkt, (void *)(eth + 1), data_end);
	else
		ret = parse_ipv6(&pkt, (void *)(eth + 1), data_end);
	if (ret != XLB_CONTINUE)
		return TC_ACT_UNSPEC;
	if (pkt.fragment)
		return is_vip_address(&pkt.flow) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
	if (parse_l4(&pkt, (void *)(eth + 1), data_end) != XLB_CONTINUE)
		return TC_ACT_UNSPEC;

	__builtin_memcpy(key.addr, pkt.flow.dst, sizeof(key.addr));
	key.port = pkt.flow.dport;
	key.sport = pkt.flow.sport;
	key.proto = pkt.flow.proto;
	key.family = pkt.flow.family;
	probe = bpf_map_lookup_elem(&xlb_probes_v1, &key);
	if (!probe)
		return is_vip_address(&pkt.flow) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
	backend = bpf_map_lookup_elem(&xlb_backends_v3, &probe->backend_id);
	if (!backend || !backend->family)
		return TC_ACT_SHOT;
	if (!limit_probe_hops(eth, data_end))
		return TC_ACT_SHOT;

	switch (probe->forwarding) {
	case XLB_FORWARD_DSR: {
		struct mac next_hop = load_mac(backend->mac);

		if (mac_is_zero(next_hop))
			return TC_ACT_SHOT;
		store_mac(eth->h_dest, next_hop);
		return stamp_sent(&key, TC_ACT_OK);
	}
	case XLB_FORWARD_IPIP:
		return stamp_sent(&key, encapsulate_probe(skb, &pkt, backend));
	default:
		return TC_ACT_SHOT;
	}
}

#endif /* XLB_BALANCER_PROBE_H */
