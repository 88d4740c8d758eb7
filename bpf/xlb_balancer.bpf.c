// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xlb balancer: the XDP program on the load balancer's interface.
 *
 * parse (Ethernet, IPv4/IPv6, TCP/UDP/ICMP) -> VIP lookup -> connection table ->
 * Maglev ring -> backend -> forward (dsr: MAC rewrite, ipip: encapsulate) with
 * XDP_TX. Everything that is not VIP traffic passes to the host untouched.
 * Every packet ends in exactly one enum xlb_outcome counter. The steps live in the
 * headers in balancer/, one concern each; this file holds balance() and the entry.
 */

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xlb.h"
#include "balancer/backend.h"
#include "balancer/capture.h"
#include "balancer/dsr.h"
#include "balancer/encap.h"
#include "balancer/flow_table.h"
#include "balancer/hash.h"
#include "balancer/icmp.h"
#include "balancer/maps.h"
#include "balancer/packet.h"
#include "balancer/parse.h"
#include "balancer/probe.h"
#include "balancer/trace.h"
#include "balancer/vip.h"

static __always_inline int finish(__u32 outcome, __u64 bytes, struct xlb_trace *trace)
{
	struct xlb_traffic *counter = written_lookup(trace, &xlb_counters_v4, &outcome);

	trace_outcome(trace, outcome);
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

/* A forwarding mode's transmit outcome (enum xlb_outcome: from XLB_TX_DSR up to the
 * ICMP replies), which counts towards the VIP's and the backend's traffic. */
static __always_inline bool forwarded(int outcome)
{
	return outcome >= XLB_TX_DSR && outcome < XLB_TX_ICMP_ECHO_REPLY;
}

/* A new flow's place in the table, counted by what it took (XLB_ROOM_* in
 * balancer/flow_table.h): nothing for an empty way, else the state of the flow it
 * evicted, or flow_unrecorded when no way would take it. */
static __always_inline void count_room_taken(struct xlb_vip_stats *stats, __u32 room)
{
	/* The counter of each room 0..4, a nibble each, as an offset from flow_evicted_new:
	 * flow_unrecorded, flow_evicted_established, flow_evicted_closing, flow_evicted_new,
	 * flow_evicted_closing. */
	__u32 counter = (0x20213u >> ((room & 7) << 2)) & 3;

	_Static_assert(offsetof(struct xlb_vip_stats, flow_evicted_established) ==
				       offsetof(struct xlb_vip_stats, flow_evicted_new) + 8 &&
			       offsetof(struct xlb_vip_stats, flow_evicted_closing) ==
				       offsetof(struct xlb_vip_stats, flow_evicted_new) + 16 &&
			       offsetof(struct xlb_vip_stats, flow_unrecorded) ==
				       offsetof(struct xlb_vip_stats, flow_evicted_new) + 24,
		       "the eviction counters, then flow_unrecorded");
	if (room < XLB_ROOM_EMPTY)
		(&stats->flow_evicted_new)[counter]++;
}

/* Connection table, then ring; forwards by the VIP's method and counts it. */
static __always_inline int balance(struct xdp_md *ctx, struct xlb_packet *pkt, const struct xlb_vip *vip,
				   const struct xlb_config *config, __u64 bytes, struct xlb_trace *trace,
				   struct capture_ids *ids)
{
	struct xlb_flow_bucket *bucket = NULL, *neighbour = NULL;
	struct xlb_flow_entry *entry = NULL;
	struct xlb_backend *backend = NULL;
	struct xlb_vip_stats *vip_stats;
	struct xlb_traffic *backend_stats;
	__u32 backend_id = 0, hash = 0;
	bool table_hit;
	int way = -1, outcome;

	if (!config || !config->ring_size)
		return XLB_DROP_NOT_CONFIGURED;
	vip_stats = written_lookup(trace, &xlb_vipstat_v4, &vip->id);

	if (!(vip->flags & XLB_VIP_F_NO_CONNTRACK)) {
		bucket = flow_bucket(config, &pkt->table, 0);
		if (bucket) {
			way = flow_find(bucket, &pkt->table, &backend_id);
			if (way < 0) {
				neighbour = flow_bucket(config, &pkt->table, 1);
				if (neighbour && (way = flow_find(neighbour, &pkt->table, &backend_id)) >= 0)
					bucket = neighbour;
			}
			if (way >= 0) {
				entry = &bucket->way[way & (XLB_FLOW_WAYS - 1)];
				backend = flow_backend(backend_id, vip);
			}
			/* An ICMP error is no packet of the flow's: it leaves the entry as it is. */
			if (backend && !trace && !pkt->icmp_error)
				flow_touch(entry, config, pkt->tcp_flags);
		}
		trace_table(trace, way >= 0, backend_id, entry ? entry->mark & 0xff : 0, backend != NULL);
		if (vip_stats) {
			if (backend)
				vip_stats->flow_hits++;
			else if (!pkt->icmp_error) /* an error quoting a flow is no new flow */
				vip_stats->flow_misses++;
		}
	}
	table_hit = backend != NULL;
	if (!table_hit) {
		/* A looped probe is a new flow and never recorded, so a miss is the only place to look. */
		if (looped_probe(&pkt->flow, config))
			return XLB_DROP_PROBE_LOOP;
		hash = flow_hash(&pkt->flow, vip->flags, config->hash_seed);
		backend = ring_backend(vip, hash, config, &backend_id);
		trace_ring(trace, hash, config->ring_size, backend_id);
		if (!backend)
			return XLB_DROP_NO_BACKEND;
	} else if (trace) {
		/* Where the ring would send the flow if the table lost it. */
		__u32 ring_id;

		hash = flow_hash(&pkt->flow, vip->flags, config->hash_seed);
		ring_backend(vip, hash, config, &ring_id);
		trace_ring(trace, hash, config->ring_size, ring_id);
	}
	capture_note_backend(ids, backend_id);

	/* One case per forwarding mode (its own header); a mode this program does not know
	 * is dropped and counted, never forwarded by another mode's rules. */
	switch (vip->forwarding) {
	case XLB_FORWARD_DSR:
		outcome = forward_dsr(ctx, backend);
		break;
	case XLB_FORWARD_IPIP:
		/* The hash also picks the IPv6 flow label and the outer source's varied bits:
		 * a table hit computes it only when they are wanted. */
		if (table_hit && (backend->family != XLB_FAMILY_V4 || config->source_v4_flow_bits))
			hash = flow_hash(&pkt->flow, vip->flags, config->hash_seed);
		outcome = forward_ipip(ctx, pkt, backend, config, hash);
		break;
	default:
		return XLB_DROP_UNKNOWN_FORWARDING;
	}
	/* After the switch, so that a mode this program does not know takes no way. An ICMP
	 * error only follows its flow; it never starts one. A flow whose entry no longer
	 * holds is re-recorded in the same way. */
	if (!table_hit && bucket && !pkt->icmp_error && !trace) {
		if (way < 0) {
			__u32 room;

			way = flow_place(&bucket, neighbour, &pkt->table, config, &room);
			if (vip_stats)
				count_room_taken(vip_stats, room);
		}
		if (way >= 0)
			flow_record(bucket, way, &pkt->table, backend_id, config, pkt->tcp_flags);
	}
	if (!forwarded(outcome))
		return outcome;

	if (vip_stats) {
		vip_stats->packets++;
		vip_stats->bytes += bytes;
	}
	backend_stats = written_lookup(trace, &xlb_bestat_v3, &backend_id);
	if (backend_stats) {
		backend_stats->packets++;
		backend_stats->bytes += bytes;
	}
	return outcome;
}

static __always_inline int process(struct xdp_md *ctx, __u64 bytes, struct xlb_trace *trace, struct capture_ids *ids)
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

	config = bpf_map_lookup_elem(&xlb_config_v5, &zero);
	/* Hashed before the VIP lookup, whose loads it does not wait for: the two chains
	 * overlap (~4 ns per VIP packet; non-VIP packets pay the hash for nothing). */
	if (config)
		flow_table_hash(&pkt.flow, config, &pkt.table);
	vip = lookup_vip(&pkt.flow, config, trace);
	trace_vip(trace, vip);
	if (!vip)
		return pkt.icmp_error ? XLB_DROP_MALFORMED_ICMP_INNER : XLB_PASS_NOT_VIP;
	capture_note_vip(ids, vip->id);
	if (pkt.flow.family == XLB_FAMILY_V4 && !pkt.icmp_error && !ipv4_checksum_ok((void *)(eth + 1), data_end))
		return XLB_DROP_MALFORMED_IP;
	return balance(ctx, &pkt, vip, config, bytes, trace, ids);
}

/* This source makes two objects: xlb_balancer.bpf.o (with the tc probe program) and,
 * with XLB_TRACE_OBJECT, the dry run's xlb_trace.bpf.o (balancer/trace.h). One caller
 * of process() each: a second in one object would change how the compiler lays out
 * the first. */
#ifndef XLB_TRACE_OBJECT
SEC("xdp")
int xlb_balancer(struct xdp_md *ctx)
{
	/* The program is not frags-aware (SEC("xdp")), so every frame is linear. */
	__u64 bytes = ctx->data_end - ctx->data;
	struct capture_ids ids = { XLB_CAPTURE_NONE, XLB_CAPTURE_NONE };
	int outcome;

	if (capture_on())
		capture_begin(ctx, bytes);
	outcome = process(ctx, bytes, NULL, &ids);
	if (capture_on())
		capture_end(ctx, outcome, &ids);
	return finish(outcome, bytes, NULL);
}

/* Health-check probes through the forwarding path (balancer/probe.h), on the same
 * interface's tc egress hook; in this object so it shares the balancer's maps. What
 * is no probe gets TC_ACT_UNSPEC, so an operator's later egress filters still run. */
SEC("tc")
int xlb_probe(struct __sk_buff *skb)
{
	return from_probe_port(skb) ? forward_probe(skb) : TC_ACT_UNSPEC;
}
#else
SEC("xdp")
int xlb_trace(struct xdp_md *ctx)
{
	struct xlb_trace *trace = trace_record();
	__u64 bytes = ctx->data_end - ctx->data;
	struct capture_ids ids; /* built with XLB_NO_CAPTURE: never read */

	if (!trace)
		return XDP_ABORTED;
	return finish(process(ctx, bytes, trace, &ids), bytes, trace);
}
#endif

/* GPL: the object includes lib/jhash.h, which is GPL-2.0-only. */
char LICENSE[] SEC("license") = "GPL";
