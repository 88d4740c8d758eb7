/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* VIP addresses and the VIP of a flow, through the per-CPU VIP cache. */
#ifndef XLB_BALANCER_VIP_H
#define XLB_BALANCER_VIP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"
#include "balancer/maps.h"
#include "balancer/trace.h"

static __always_inline bool is_vip_address(const struct xlb_flow_key *flow)
{
	struct xlb_addr key = { .family = flow->family };

	__builtin_memcpy(key.addr, flow->dst, sizeof(key.addr));
	return bpf_map_lookup_elem(&xlb_vipaddr_v3, &key) != NULL;
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
static __always_inline const struct xlb_vip *lookup_vip(const struct xlb_flow_key *flow,
							const struct xlb_config *config, struct xlb_trace *trace)
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

	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "dport is f[8]'s high half");
	_Static_assert(offsetof(struct xlb_flow_key, dst) == 16 && offsetof(struct xlb_flow_key, dport) == 34 &&
			       offsetof(struct xlb_flow_key, proto) == 36 &&
			       offsetof(struct xlb_flow_key, family) == 37,
		       "f[4-7] dst, f[8] >> 16 dport, f[9] proto and family");
	_Static_assert(offsetof(struct xlb_vip_key, port) == 16 && offsetof(struct xlb_vip_key, proto) == 18 &&
			       offsetof(struct xlb_vip_key, family) == 19 && sizeof(struct xlb_vip_key) == 20,
		       "k[0-3] addr, k[4] port, proto and family");
	/* Fibonacci hashing of the address's first and last words, port, protocol and
	 * family: a cache slot needs spread, not a keyed hash. */
	slot = ((k[0] ^ k[3] ^ k[4]) * 0x9e3779b1u) >> (32 - XLB_VIP_CACHE_BITS);
	entry = written_lookup(trace, &xlb_vipcache_v3, &slot);
	if (entry) {
		e = (const __u32 *)&entry->key;
		if (entry->generation == generation && generation && e[0] == k[0] && e[1] == k[1] && e[2] == k[2] &&
		    e[3] == k[3] && e[4] == k[4])
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

#endif /* XLB_BALANCER_VIP_H */
