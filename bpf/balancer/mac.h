/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* MAC addresses in registers, and the Ethernet header the balancer writes. */
#ifndef XLB_BALANCER_MAC_H
#define XLB_BALANCER_MAC_H

#include <stdbool.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>

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

static __always_inline void write_eth(struct ethhdr *eth, struct mac dst, struct mac src, __u16 proto)
{
	store_mac(eth->h_dest, dst);
	store_mac(eth->h_source, src);
	eth->h_proto = bpf_htons(proto);
}

#endif /* XLB_BALANCER_MAC_H */
