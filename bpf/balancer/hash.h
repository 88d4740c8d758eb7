/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow hashes: jhash2 for the Maglev ring, NH hashing for the connection table. */
#ifndef XLB_BALANCER_HASH_H
#define XLB_BALANCER_HASH_H

#include <stddef.h>

#include "xlb.h"
#include "lib/jhash.h"
#include "balancer/packet.h"

/* jhash2 over the flow key's 32-bit words; control/dataplane/hash.ts mirrors it. */
static __always_inline __u32 flow_hash(const struct xlb_flow_key *flow, __u32 vip_flags, __u32 seed)
{
	const __u32 *src = (const __u32 *)flow->src;

	_Static_assert(offsetof(struct xlb_flow_key, dst) == 16 && offsetof(struct xlb_flow_key, sport) == 32,
		       "src, dst and the ports are the flow key's words 0-3, 4-7 and 8");
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
 * where jhash takes ~40 dependent steps on the way to the bucket's cache line, which a
 * new flow usually misses. An IPv4 flow's fingerprint is exact: its source (tag) and
 * ports-and-protocol word (check); with the VIP, which the backend record names, that
 * is the whole 5-tuple. An IPv6 source is folded to 64 bits by NH under other keys,
 * so a client cannot make two of its addresses share a fingerprint; the destination,
 * a VIP address, by XOR. control/dataplane/hash.ts mirrors it; a change to it takes a
 * new xlb_flows version (test/map-layouts.txt records the hash of fixed flows). */
static __always_inline void flow_table_hash(const struct xlb_flow_key *flow, const struct xlb_config *config,
					    struct table_hash *hash)
{
	const __u32 *w = (const __u32 *)flow;
	__u32 ports = w[8] ^ w[9], dst = w[4];
	__u64 source = w[0], mixed;

	_Static_assert(offsetof(struct xlb_flow_key, dst) == 16 && offsetof(struct xlb_flow_key, sport) == 32 &&
			       offsetof(struct xlb_flow_key, proto) == 36,
		       "w[0-3] src, w[4-7] dst, w[8] ports, w[9] proto and family");
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

#endif /* XLB_BALANCER_HASH_H */
