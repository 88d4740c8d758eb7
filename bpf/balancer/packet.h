/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What parsing finds in a packet, and constants of the headers the balancer reads
 * and writes. */
#ifndef XLB_BALANCER_PACKET_H
#define XLB_BALANCER_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "xlb.h"

#define XLB_OUTER_TTL 64
#define XLB_IPV4_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */
#define XLB_IPV4_DF 0x4000

/* A flow's connection-table hash (struct xlb_flow_entry). */
struct table_hash {
	__u32 bucket; /* & flow_bucket_mask: the bucket */
	__u32 tag;
	__u32 check; /* before the backend id is XORed in */
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
	bool icmp_error;         /* an ICMP error steered by the flow it quotes */
	__u8 tcp_flags;          /* byte 13 of a TCP header (FIN, SYN, RST ...); 0 otherwise */
	struct table_hash table; /* the flow's connection-table hash */
};

/* The flow key's last two words (ports; protocol and family) are read as 32-bit words
 * soon after parsing (VIP cache, hashes, compares), so each is written with one 32-bit
 * store: a load that spans several smaller stores cannot be forwarded from them and
 * stalls until they retire (such a stall costs the hit path more than any other line). */
static __always_inline void set_ports(struct xlb_flow_key *flow, __u32 ports)
{
	_Static_assert(offsetof(struct xlb_flow_key, sport) == 32 && offsetof(struct xlb_flow_key, dport) == 34,
		       "sport and dport are the flow key's ninth word");
	*(__u32 *)&flow->sport = ports; /* sport, then dport, both in network order */
}

static __always_inline void set_proto(struct xlb_flow_key *flow, __u8 proto, __u8 family)
{
	_Static_assert(offsetof(struct xlb_flow_key, proto) == 36 && offsetof(struct xlb_flow_key, family) == 37 &&
			       sizeof(struct xlb_flow_key) == 40,
		       "proto, family and padding are the flow key's tenth and last word");
	*(__u32 *)&flow->proto = proto | (__u32)family << 8; /* and zero padding */
}

/* Not an outcome: parsing goes on. */
#define XLB_CONTINUE (-1)

#endif /* XLB_BALANCER_PACKET_H */
