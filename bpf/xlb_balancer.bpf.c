// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xlb balancer: the XDP program on the load balancer's interface.
 *
 * parse (Ethernet, IPv4/IPv6, TCP/UDP/ICMP) -> VIP lookup -> connection table ->
 * Maglev ring -> backend -> forward (dsr: MAC rewrite, ipip: encapsulate) with
 * XDP_TX. Everything that is not VIP traffic passes to the host untouched.
 * Every packet ends in exactly one enum xlb_outcome counter.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"
#include "lib/csum.h"
#include "lib/icmp.h"
#include "lib/jhash.h"

#define XLB_IPV6_MAX_EXT_HEADERS 4
#define XLB_OUTER_TTL 64
#define XLB_IPV4_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */
#define XLB_IPV4_DF 0x4000
#define XLB_IPV6_PTB_QUOTE (sizeof(struct ipv6hdr) + 8)

/* Per-VIP Maglev lookup table: slot -> backend id, XLB_RING_IDS_PER_VALUE slots per
 * element; slot = hash % xlb_config.ring_size. User space replaces this template with
 * one of the configured ring size before load (libbpf 1.1 cannot resize an inner-map
 * template), and every ring has exactly that size: without BPF_F_INNER_MAP the
 * verifier knows the size and inlines the lookup (a helper call per new flow saved).
 * BPF_F_MMAPABLE lets user space fill a new ring with one memory copy. */
struct xlb_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, (XLB_DEFAULT_RING_SIZE + 1) / XLB_RING_IDS_PER_VALUE);
	__type(key, __u32);
	__type(value, __u32[XLB_RING_IDS_PER_VALUE]);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, struct xlb_vip_key);
	__type(value, struct xlb_vip);
} xlb_vips_v3 SEC(".maps");

/* Addresses that carry at least one VIP -> how many; answers echo requests and
 * keeps fragments and other protocols for those addresses from the host. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, struct xlb_addr);
	__type(value, __u32);
} xlb_vipaddr_v3 SEC(".maps");

/* VIP id -> its ring. User space builds a whole new ring and swaps it in with one
 * update, so a packet sees either the old ring or the new one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct xlb_ring);
} xlb_rings_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_backend);
} xlb_backends_v3 SEC(".maps");

/* The connection table (see struct xlb_flow_bucket); user space sizes it at load
 * time. BPF_F_MMAPABLE: the values start page-aligned, so every bucket is one cache
 * line, and user space reads the whole table with one copy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XLB_DEFAULT_FLOWS / XLB_FLOW_WAYS);
	__type(key, __u32);
	__type(value, struct xlb_flow_bucket);
} xlb_flows_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_config);
} xlb_config_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_VIP_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct xlb_vip_cache_entry);
} xlb_vipcache_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_OUTCOME_COUNT);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
} xlb_counters_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xlb_vip_stats);
} xlb_vipstat_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
} xlb_bestat_v3 SEC(".maps");

/* A flow's connection-table hash (struct xlb_flow_entry). */
struct table_hash {
	__u32 bucket; /* & flow_bucket_mask: the bucket */
	__u32 tag;
	__u32 check;  /* before the backend id is XORed in */
};

/* What parsing found. The flow is 4-byte aligned (first member of a struct holding
 * pointers) because the hash reads it as 32-bit words and the verifier rejects
 * misaligned stack access. */
struct xlb_packet {
	struct xlb_flow_key flow; /* client -> VIP; for an ICMP error, of the quoted flow */
	void *l4;                 /* outer transport header */
	__u32 ip_len;             /* outer IP packet length, header included */
	__u8 tos;                 /* IPv4 TOS or IPv6 traffic class */
	bool df;                  /* IPv4 don't-fragment (IPv6 never fragments en route) */
	bool fragment;
	bool icmp_error;          /* an ICMP error steered by the flow it quotes */
	struct table_hash table;  /* the flow's connection-table hash */
};

/* The flow key's last two words (ports; protocol and family) are read as 32-bit words
 * soon after parsing (VIP cache, hashes, compares), so each is written with one 32-bit
 * store: a load that spans several smaller stores cannot be forwarded from them and
 * stalls until they retire (that stall was the hit path's costliest line). */
static __always_inline void set_ports(struct xlb_flow_key *flow, __u32 ports)
{
	*(__u32 *)&flow->sport = ports; /* sport, then dport, both in network order */
}

static __always_inline void set_proto(struct xlb_flow_key *flow, __u8 proto, __u8 family)
{
	*(__u32 *)&flow->proto = proto | (__u32)family << 8; /* and zero padding */
}

/* Not an outcome: parsing goes on. */
#define XLB_CONTINUE (-1)

static __always_inline int finish(__u32 outcome, __u64 bytes)
{
	struct xlb_traffic *counter = bpf_map_lookup_elem(&xlb_counters_v3, &outcome);

	if (counter) {
		counter->packets++;
		counter->bytes += bytes;
	}
	if (outcome >= XLB_TX_DSR)
		return XDP_TX;
	if (outcome >= XLB_DROP_MALFORMED_ETH)
		return XDP_DROP;
	return XDP_PASS;
}

static __always_inline bool is_vip_address(const struct xlb_flow_key *flow)
{
	struct xlb_addr key = { .family = flow->family };

	__builtin_memcpy(key.addr, flow->dst, sizeof(key.addr));
	return bpf_map_lookup_elem(&xlb_vipaddr_v3, &key) != NULL;
}

/* ---- parse ---------------------------------------------------------------- */

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
	switch (pkt->flow.proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || l4_len < sizeof(*tcp) || tcp->doff < 5 ||
		    tcp->doff * 4 > l4_len)
			return XLB_DROP_MALFORMED_L4;
		set_ports(&pkt->flow, *(__u32 *)&tcp->source);
		return XLB_CONTINUE;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || l4_len < sizeof(*udp) ||
		    bpf_ntohs(udp->len) < sizeof(*udp) || bpf_ntohs(udp->len) > l4_len)
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

/* ---- ICMP ------------------------------------------------------------------ */

static __always_inline bool is_icmp4_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

static __always_inline bool is_icmp6_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
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

	return a->in6_u.u6_addr32[0] == w[0] && a->in6_u.u6_addr32[1] == w[1] &&
	       a->in6_u.u6_addr32[2] == w[2] && a->in6_u.u6_addr32[3] == w[3];
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

/* A MAC address as a 32-bit and a 16-bit word. struct ethhdr is packed, so memcpy
 * moves a MAC in six byte loads and six byte stores; these are two of each. Packet and
 * map-value words need no alignment here (the verifier checks it only on architectures
 * without cheap unaligned access). */
struct mac {
	__u32 head;
	__u16 tail;
};

static __always_inline struct mac load_mac(const __u8 *from)
{
	return (struct mac){ *(const __u32 *)from, *(const __u16 *)(from + 4) };
}

static __always_inline void store_mac(__u8 *to, struct mac mac)
{
	*(__u32 *)to = mac.head;
	*(__u16 *)(to + 4) = mac.tail;
}

static __always_inline bool mac_is_zero(struct mac mac)
{
	return !(mac.head | mac.tail);
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	struct mac source = load_mac(eth->h_source);

	store_mac(eth->h_source, load_mac(eth->h_dest));
	store_mac(eth->h_dest, source);
}

/* The echo functions check their headers again: the verifier does not carry the
 * family known at parse time through the flow key on the stack. */
static __always_inline int reply_echo4(struct ethhdr *eth, struct iphdr *ip, struct icmphdr *icmp,
				       void *data_end)
{
	__u16 old_word;
	__be32 client;

	if ((void *)(ip + 1) > data_end || (void *)(icmp + 1) > data_end)
		return XLB_DROP_MALFORMED_IP;
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

static __always_inline int reply_echo6(struct ethhdr *eth, struct ipv6hdr *ip6, struct icmp6hdr *icmp6,
				       void *data_end)
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

static __always_inline void write_eth(struct ethhdr *eth, struct mac dst, struct mac src, __u16 proto)
{
	store_mac(eth->h_dest, dst);
	store_mac(eth->h_source, src);
	eth->h_proto = bpf_htons(proto);
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

	w[0] = version_tos_len;
	w[1] = id_frag;
	w[2] = ttl_proto | (__u32)check << 16;
	w[3] = src;
	w[4] = dst;
}

static __always_inline void write_ipv6(struct ipv6hdr *ip6, __u8 tclass, __u32 flow_label, __u16 payload_len,
				       __u8 nexthdr, const void *saddr, const void *daddr)
{
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
	icmp->checksum = xlb_csum_fold(
		xlb_csum_add_packet(quoted, quote, data_end, xlb_csum_add(icmp, sizeof(*icmp) / 2, 0)));
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
	write_ipv6(ip6, 0, 0, room - sizeof(*ip6) + XLB_IPV6_PTB_QUOTE, IPPROTO_ICMPV6, &quoted->daddr,
		   &quoted->saddr);
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

/* ---- backend selection -------------------------------------------------------- */

/* jhash2 over the flow key's 32-bit words; control/dataplane/hash.ts mirrors it. */
static __always_inline __u32 flow_hash(const struct xlb_flow_key *flow, __u32 vip_flags, __u32 seed)
{
	const __u32 *src = (const __u32 *)flow->src;

	if (flow->family == XLB_FAMILY_V4) {
		__u32 words[3] = { src[0], *(const __u32 *)flow->dst, *(const __u32 *)&flow->sport };

		if (vip_flags & XLB_VIP_F_SOURCE_AFFINITY)
			return xlb_jhash2(src, 1, seed);
		return xlb_jhash2(words, 3, seed);
	}
	if (vip_flags & XLB_VIP_F_SOURCE_AFFINITY)
		return xlb_jhash2(src, 4, seed);
	/* src, dst and the ports word are the key's first nine words. */
	return xlb_jhash2(src, 9, seed);
}

/* NH hashing (as in UMAC) of four words under four key words: for two different
 * inputs, the 64-bit sums collide with probability at most 2^-32 over the keys. */
static __always_inline __u64 nh4(__u32 w0, __u32 w1, __u32 w2, __u32 w3, const __u32 *key)
{
	return (__u64)(w0 + key[0]) * (w1 + key[1]) + (__u64)(w2 + key[2]) * (w3 + key[3]);
}

/* The connection table's hash (struct xlb_flow_entry). The bucket comes from NH
 * hashing under secret keys and one multiply-xorshift to spread it: a few multiplies,
 * where jhash took ~40 dependent steps on the way to the bucket's cache line, which a
 * new flow usually misses. An IPv4 flow's fingerprint is exact: its source (tag) and
 * ports-and-protocol word (check); with the VIP, which the backend record names, that
 * is the whole 5-tuple. An IPv6 source is folded to 64 bits by NH under other keys,
 * so a client cannot make two of its addresses share a fingerprint; the destination,
 * a VIP address, by XOR. control/dataplane/hash.ts mirrors it. */
static __always_inline void flow_table_hash(const struct xlb_flow_key *flow, const struct xlb_config *config,
					    struct table_hash *hash)
{
	const __u32 *w = (const __u32 *)flow;
	__u32 ports = w[8] ^ w[9], dst = w[4];
	__u64 source = w[0], mixed;

	if (flow->family != XLB_FAMILY_V4) {
		source = nh4(w[0], w[1], w[2], w[3], &config->flow_key[4]);
		dst ^= w[5] ^ w[6] ^ w[7];
	}
	mixed = nh4((__u32)source, source >> 32, dst, ports, config->flow_key);
	mixed ^= mixed >> 29;
	mixed *= 0xbf58476d1ce4e5b9ull;
	hash->bucket = mixed >> 32;
	hash->tag = (__u32)source;
	hash->check = (__u32)(source >> 32) ^ ports;
}

static __always_inline struct xlb_backend *backend_of_vip(__u32 id, const struct xlb_vip *vip)
{
	struct xlb_backend *backend = bpf_map_lookup_elem(&xlb_backends_v3, &id);

	if (!backend || !backend->family || backend->vip_id != vip->id)
		return NULL;
	return backend;
}

/* A connection-table entry still holds while its backend serves the VIP and is not
 * marked unhealthy: flows to a failed backend are broken anyway, and re-hashing
 * them lets a client that reuses the 5-tuple reach a live backend. */
static __always_inline struct xlb_backend *flow_backend(__u32 id, const struct xlb_vip *vip)
{
	struct xlb_backend *backend = backend_of_vip(id, vip);

	if (backend && (backend->flags & XLB_BACKEND_F_UNHEALTHY))
		return NULL;
	return backend;
}

static __always_inline struct xlb_backend *ring_backend(const struct xlb_vip *vip, __u32 hash,
							 const struct xlb_config *config, __u32 *id)
{
	void *ring = bpf_map_lookup_elem(&xlb_rings_v3, &vip->id);
	__u32 slot = hash % config->ring_size;
	__u32 element = slot / XLB_RING_IDS_PER_VALUE;
	__u32 *ids;

	if (!ring)
		return NULL;
	ids = bpf_map_lookup_elem(ring, &element);
	if (!ids)
		return NULL;
	*id = ids[slot % XLB_RING_IDS_PER_VALUE];
	return backend_of_vip(*id, vip);
}

/* ---- forwarding ------------------------------------------------------------- */

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

static __always_inline int forward_ipip(struct xdp_md *ctx, const struct xlb_packet *pkt,
					const struct xlb_backend *backend, const struct xlb_config *config,
					__u32 hash)
{
	struct mac next_hop = load_mac(backend->mac), our_mac;
	bool outer_v4 = backend->family == XLB_FAMILY_V4;
	int overhead = outer_v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	struct ethhdr *eth = (void *)(long)ctx->data;
	void *data_end;

	if (mac_is_zero(next_hop))
		next_hop = load_mac(config->gateway_mac);

	if (mac_is_zero(next_hop) || (outer_v4 && pkt->flow.family != XLB_FAMILY_V4))
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
	data_end = (void *)(long)ctx->data_end;

	if (outer_v4) {
		struct iphdr *outer = (void *)(eth + 1);
		__be32 source;

		if ((void *)(outer + 1) > data_end)
			return XLB_DROP_ADJUST_FAILED;
		source = vary_source_word(*(__be32 *)config->source_v4, hash, config->source_v4_flow_bits);
		write_eth(eth, next_hop, our_mac, ETH_P_IP);
		write_ipv4(outer, pkt->tos, pkt->ip_len + overhead, pkt->df, IPPROTO_IPIP, &source,
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
			   pkt->flow.family == XLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6, source,
			   backend->addr);
	}
	return XLB_TX_IPIP;
}

/* ---- connection table -------------------------------------------------------- */

/* The flow's bucket, or with `neighbour` 1 its neighbour (index ^ 1: the other half
 * of an aligned 128-byte pair, on the same page and the line adjacent-line prefetch
 * brings along), where a full bucket records new flows while the neighbour has room;
 * NULL for the neighbour in a one-bucket table. Flows spread over buckets at random,
 * so buckets fill unevenly: sharing room with a neighbour keeps far more of them than
 * four ways alone (README step 7). */
static __always_inline struct xlb_flow_bucket *flow_bucket(const struct xlb_config *config,
							   const struct table_hash *hash, __u32 neighbour)
{
	__u32 index = (hash->bucket ^ neighbour) & config->flow_bucket_mask;

	if (neighbour && !config->flow_bucket_mask)
		return NULL;
	return bpf_map_lookup_elem(&xlb_flows_v3, &index);
}

/* A way no flow was ever recorded in: tag and check both 0 (struct xlb_flow_entry). */
static __always_inline bool flow_way_empty(const struct xlb_flow_entry *entry)
{
	return !(entry->tag | entry->check);
}

/* The way holding the flow, or -1. The backend id is read once (volatile), so the id
 * returned is the one the check covered. */
static __always_inline int flow_find(const struct xlb_flow_bucket *bucket, const struct table_hash *hash,
				     __u32 *backend_id)
{
#pragma unroll
	for (int way = 0; way < XLB_FLOW_WAYS; way++) {
		const struct xlb_flow_entry *entry = &bucket->way[way];
		__u32 id;

		if (entry->tag != hash->tag)
			continue;
		id = *(volatile const __u32 *)&entry->backend_id;
		if (entry->check == (hash->check ^ id)) {
			*backend_id = id;
			return way;
		}
	}
	return -1;
}

/* The larger of two numbers below 2^32, without a branch. BPF has no conditional move,
 * so the compiler would make max() a jump; the empty asm keeps it from seeing the
 * compare in the subtraction's sign. */
static __always_inline __u32 max_u32(__u32 a, __u32 b)
{
	__u64 difference = (__u64)a - b; /* bit 63: a < b */

	asm volatile("" : "+r"(difference));
	return a ^ ((a ^ b) & -(__u32)(difference >> 63));
}

/* The bucket's victim for a new flow: an empty way, else the one least recently used.
 * Ties (ways used at the same clock) go to the way nearest a hash-picked start, so they do not
 * always evict the same way: the rank is idle time, then (way ^ start), so ranks differ
 * and the largest names its way in its low bits. An empty way needs no test of its
 * own: its `used` is 0, so it has been idle for the whole clock, longer than any way
 * recorded since (used 1..clock); the first inserts fill every way long before the
 * clock can wrap. The largest rank is found without branches: which way is oldest is
 * random, and a mispredicted jump here resolves only once the bucket's line has come
 * from the cache, then throws away the work after it (with a jump per way, new flows
 * on a full table took 86-88 ns in the bench, now 77-79). */
static __always_inline __u32 flow_victim(const struct xlb_flow_bucket *bucket, const struct table_hash *hash)
{
	__u32 start = hash->bucket >> 30, rank[XLB_FLOW_WAYS];
	__u16 clock = bucket->way[0].clock;

	_Static_assert(XLB_FLOW_WAYS == 4, "the max below is a tree of four ranks");

#pragma unroll
	for (__u32 way = 0; way < XLB_FLOW_WAYS; way++)
		rank[way] = (__u16)(clock - bucket->way[way].used) * XLB_FLOW_WAYS + (way ^ start);
	return (max_u32(max_u32(rank[0], rank[1]), max_u32(rank[2], rank[3])) & (XLB_FLOW_WAYS - 1)) ^ start;
}

/* An empty way of the bucket, or -1. */
static __always_inline int flow_empty_way(const struct xlb_flow_bucket *bucket)
{
#pragma unroll
	for (int way = 0; way < XLB_FLOW_WAYS; way++)
		if (flow_way_empty(&bucket->way[way]))
			return way;
	return -1;
}

/* Where a new flow goes: its bucket's victim (an empty way, else the least recently
 * used), unless that way holds a flow and the neighbour has an empty way. `bucket`
 * is updated to the bucket chosen. */
static __always_inline __u32 flow_place(struct xlb_flow_bucket **bucket, struct xlb_flow_bucket *neighbour,
					const struct table_hash *hash)
{
	__u32 way = flow_victim(*bucket, hash) & (XLB_FLOW_WAYS - 1);
	int spare;

	if (!neighbour || flow_way_empty(&(*bucket)->way[way]))
		return way;
	spare = flow_empty_way(neighbour);
	if (spare < 0)
		return way;
	*bucket = neighbour;
	return spare;
}

/* A reader that sees the entry half-written, whatever order the stores land in, finds
 * the new flow's tag with the old flow's check (or the other way round), or a check
 * that does not cover the backend id read: a miss for both flows. Only a third flow,
 * of one's client with the other's ports, could match, in the nanoseconds the race
 * lasts. */
static __always_inline void flow_record(struct xlb_flow_bucket *bucket, __u32 way, const struct table_hash *hash,
					__u32 backend_id)
{
	struct xlb_flow_entry *entry;
	__u16 clock = bucket->way[0].clock + 1;

	way &= XLB_FLOW_WAYS - 1; /* bounds for the verifier */
	entry = &bucket->way[way];
	bucket->way[0].clock = clock;
	entry->tag = hash->tag;
	entry->backend_id = backend_id;
	entry->used = clock;
	entry->check = hash->check ^ backend_id;
}

/* ---- balance ------------------------------------------------------------------ */

/* Connection table, then ring; forwards by the VIP's method and counts it. */
static __always_inline int balance(struct xdp_md *ctx, struct xlb_packet *pkt, const struct xlb_vip *vip,
				   const struct xlb_config *config, __u64 bytes)
{
	struct xlb_flow_bucket *bucket = NULL, *neighbour = NULL;
	struct xlb_backend *backend = NULL;
	struct xlb_vip_stats *vip_stats;
	struct xlb_traffic *backend_stats;
	__u32 backend_id = 0, hash = 0;
	bool table_hit;
	int way = -1, outcome;

	if (!config || !config->ring_size)
		return XLB_DROP_NOT_CONFIGURED;
	vip_stats = bpf_map_lookup_elem(&xlb_vipstat_v3, &vip->id);

	if (!(vip->flags & XLB_VIP_F_NO_CONNTRACK)) {
		bucket = flow_bucket(config, &pkt->table, 0);
		if (bucket) {
			way = flow_find(bucket, &pkt->table, &backend_id);
			if (way < 0) {
				neighbour = flow_bucket(config, &pkt->table, 1);
				if (neighbour && (way = flow_find(neighbour, &pkt->table, &backend_id)) >= 0)
					bucket = neighbour;
			}
			if (way >= 0)
				backend = flow_backend(backend_id, vip);
			/* Written only when the bucket took a flow since: hits mostly just read. */
			if (backend) {
				struct xlb_flow_entry *entry = &bucket->way[way & (XLB_FLOW_WAYS - 1)];

				if (entry->used != bucket->way[0].clock)
					entry->used = bucket->way[0].clock;
			}
		}
		if (vip_stats) {
			if (backend)
				vip_stats->flow_hits++;
			else
				vip_stats->flow_misses++;
		}
	}
	table_hit = backend != NULL;
	if (!table_hit) {
		hash = flow_hash(&pkt->flow, vip->flags, config->hash_seed);
		backend = ring_backend(vip, hash, config, &backend_id);
		if (!backend)
			return XLB_DROP_NO_BACKEND;
		/* An ICMP error only follows its flow; it never starts one. A flow whose
		 * entry no longer holds is re-recorded in the same way. */
		if (bucket && !pkt->icmp_error) {
			if (way < 0)
				way = flow_place(&bucket, neighbour, &pkt->table);
			flow_record(bucket, way, &pkt->table, backend_id);
		}
	}

	if (vip->forwarding == XLB_FORWARD_DSR) {
		outcome = forward_dsr(ctx, backend);
	} else {
		/* The hash also picks the IPv6 flow label and the outer source's varied bits:
		 * a table hit computes it only when they are wanted. */
		if (table_hit && (backend->family != XLB_FAMILY_V4 || config->source_v4_flow_bits))
			hash = flow_hash(&pkt->flow, vip->flags, config->hash_seed);
		outcome = forward_ipip(ctx, pkt, backend, config, hash);
	}
	if (outcome != XLB_TX_DSR && outcome != XLB_TX_IPIP)
		return outcome;

	if (vip_stats) {
		vip_stats->packets++;
		vip_stats->bytes += bytes;
	}
	backend_stats = bpf_map_lookup_elem(&xlb_bestat_v3, &backend_id);
	if (backend_stats) {
		backend_stats->packets++;
		backend_stats->bytes += bytes;
	}
	return outcome;
}

static __always_inline const struct xlb_vip *lookup_vip_map(struct xlb_vip_key *key)
{
	const struct xlb_vip *vip = bpf_map_lookup_elem(&xlb_vips_v3, key);

	if (vip)
		return vip;
	key->port = 0;
	vip = bpf_map_lookup_elem(&xlb_vips_v3, key);
	return vip;
}

/* The VIP for a flow: exact port first, then the address's any-port VIP. Answers come
 * from the per-CPU cache while its generation is current. The generation is read
 * before the map, so an entry filled from a map older than the latest VIP change
 * always carries an older generation and is never used. The key's five words are
 * made from the flow's words in registers; the key itself is built only on a miss. */
static __always_inline const struct xlb_vip *lookup_vip(const struct xlb_flow_key *flow, const struct xlb_config *config)
{
	const __u32 *f = (const __u32 *)flow;
	/* dst, then dport | proto << 16 | family << 24 (struct xlb_vip_key's layout) */
	__u32 k[5] = { f[4], f[5], f[6], f[7], (f[8] >> 16) | (f[9] << 16) };
	__u32 generation = config ? config->vip_generation : 0;
	struct xlb_vip_cache_entry *entry;
	union {
		struct xlb_vip_key key;
		__u32 words[5];
	} key;
	const struct xlb_vip *vip;
	const __u32 *e;
	__u32 slot;

	/* Fibonacci hashing of the address's first and last words, port, protocol and
	 * family: a cache slot needs spread, not a keyed hash. */
	slot = ((k[0] ^ k[3] ^ k[4]) * 0x9e3779b1u) >> (32 - XLB_VIP_CACHE_BITS);
	entry = bpf_map_lookup_elem(&xlb_vipcache_v3, &slot);
	if (entry) {
		e = (const __u32 *)&entry->key;
		if (entry->generation == generation && generation && e[0] == k[0] && e[1] == k[1] &&
		    e[2] == k[2] && e[3] == k[3] && e[4] == k[4])
			return entry->found ? &entry->vip : NULL;
	}

	__builtin_memcpy(key.words, k, sizeof(k));
	if (!entry)
		return lookup_vip_map(&key.key);
	entry->key = key.key;
	vip = lookup_vip_map(&key.key);
	entry->found = vip != NULL;
	if (vip)
		entry->vip = *vip;
	entry->generation = generation;
	return entry->found ? &entry->vip : NULL;
}

static __always_inline int process(struct xdp_md *ctx, __u64 bytes)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xlb_packet pkt = {};
	const struct xlb_config *config;
	const struct xlb_vip *vip;
	__u32 zero = 0;
	int ret;

	if ((void *)(eth + 1) > data_end)
		return XLB_DROP_MALFORMED_ETH;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		ret = parse_ipv4(&pkt, (void *)(eth + 1), data_end);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		ret = parse_ipv6(&pkt, (void *)(eth + 1), data_end);
	else
		return XLB_PASS_NON_IP;
	if (ret != XLB_CONTINUE)
		return ret;

	/* Fragments: see README "Fragments". Non-first ones carry no ports, so any
	 * fragment to a VIP address is dropped rather than guessed at. */
	if (pkt.fragment)
		return is_vip_address(&pkt.flow) ? XLB_DROP_FRAGMENT : XLB_PASS_FRAGMENT;

	ret = parse_l4(&pkt, (void *)(eth + 1), data_end);
	if (ret != XLB_CONTINUE)
		return ret;

	switch (pkt.flow.proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((pkt.flow.proto == IPPROTO_ICMP) != (pkt.flow.family == XLB_FAMILY_V4))
			return is_vip_address(&pkt.flow) ? XLB_DROP_VIP_PROTO : XLB_PASS_NOT_VIP;
		ret = handle_icmp(&pkt, eth, data_end);
		if (ret != XLB_CONTINUE)
			return ret;
		break;
	default:
		return is_vip_address(&pkt.flow) ? XLB_DROP_VIP_PROTO : XLB_PASS_NOT_VIP;
	}

	config = bpf_map_lookup_elem(&xlb_config_v3, &zero);
	/* Hashed before the VIP lookup, whose loads it does not wait for: the two chains
	 * overlap (~4 ns per VIP packet; non-VIP packets pay the hash for nothing). */
	if (config)
		flow_table_hash(&pkt.flow, config, &pkt.table);
	vip = lookup_vip(&pkt.flow, config);
	if (!vip)
		return pkt.icmp_error ? XLB_DROP_MALFORMED_ICMP_INNER : XLB_PASS_NOT_VIP;
	if (pkt.flow.family == XLB_FAMILY_V4 && !pkt.icmp_error && !ipv4_checksum_ok((void *)(eth + 1), data_end))
		return XLB_DROP_MALFORMED_IP;
	return balance(ctx, &pkt, vip, config, bytes);
}

SEC("xdp")
int xlb_balancer(struct xdp_md *ctx)
{
	/* The program is not frags-aware (SEC("xdp")), so every frame is linear. */
	__u64 bytes = ctx->data_end - ctx->data;

	return finish(process(ctx, bytes), bytes);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
