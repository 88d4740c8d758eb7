/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The connection table (struct xlb_flow_bucket in xlb.h): find, place and record flows. */
#ifndef XLB_BALANCER_FLOW_TABLE_H
#define XLB_BALANCER_FLOW_TABLE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"
#include "balancer/maps.h"
#include "balancer/packet.h"

/* The flow's bucket, or with `neighbour` 1 its neighbour (index ^ 1: the other half
 * of an aligned 128-byte pair, on the same page and the line adjacent-line prefetch
 * brings along), where a full bucket records new flows while the neighbour has more room;
 * NULL for the neighbour in a one-bucket table. Flows spread over buckets at random,
 * so buckets fill unevenly: sharing room with a neighbour keeps far more of them than
 * four ways alone (README step 7). */
static __always_inline struct xlb_flow_bucket *flow_bucket(const struct xlb_config *config,
							   const struct table_hash *hash, __u32 neighbour)
{
	__u32 index = (hash->bucket ^ neighbour) & config->flow_bucket_mask;

	_Static_assert(sizeof(struct xlb_flow_bucket) == 64, "a bucket is one cache line");
	if (neighbour && !config->flow_bucket_mask)
		return NULL;
	return bpf_map_lookup_elem(&xlb_flows_v5, &index);
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

/* TCP flags as in byte 13 of the header (struct xlb_packet.tcp_flags; 0 for UDP). */
#define XLB_TCP_FIN 0x01
#define XLB_TCP_SYN 0x02
#define XLB_TCP_RST 0x04

/* An entry's mark (struct xlb_flow_entry): its state and when it stops being protected. */
static __always_inline __u32 flow_mark_of(__u32 expires, __u32 state)
{
	return expires << 8 | state;
}

/* A flow's mark in `state` after a packet at `clock`. */
static __always_inline __u32 flow_mark_now(const struct xlb_config *config, __u32 state)
{
	__u32 hold = state == XLB_FLOW_ESTABLISHED     ? config->flow_idle_timeout
		     : (state & 3) == XLB_FLOW_CLOSING ? XLB_FLOW_CLOSING_IDLE
						       : 0;

	return flow_mark_of(config->clock + hold, state);
}

/* A hit: the entry's state and expiry follow the packet. FIN or RST close the flow, a
 * SYN starts a new connection on the 4-tuple, anything else proves one (a flow closed
 * by a FIN stays closing: its client still acknowledges; one closed by an RST is
 * established again, the RST not having been its client's). The usual hit, an established flow's segment in the second
 * it was last seen, only reads: CPUs then do not pass the bucket's line between them. */
static __always_inline void flow_touch(struct xlb_flow_entry *entry, const struct xlb_config *config, __u8 tcp_flags)
{
	__u32 mark = entry->mark, flags = tcp_flags & (XLB_TCP_FIN | XLB_TCP_SYN | XLB_TCP_RST), next;

	if (!((mark ^ config->established_mark) | flags))
		return;
	if (flags & XLB_TCP_RST)
		next = XLB_FLOW_CLOSING | XLB_FLOW_F_RESET;
	else if (flags & XLB_TCP_FIN)
		next = XLB_FLOW_CLOSING;
	else if (flags)
		next = XLB_FLOW_NEW;
	else
		next = (mark & 0xff) == XLB_FLOW_CLOSING ? XLB_FLOW_CLOSING : XLB_FLOW_ESTABLISHED;
	next = flow_mark_now(config, next);
	if (next != mark)
		entry->mark = next;
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

/* A way's room for a new flow, in a rank's bits XLB_ROOM_SHIFT and up (flow_rank):
 * 5 empty, 4 closing and idle XLB_FLOW_CLOSING_IDLE seconds, 3 new, 2 closing, 1
 * established and idle flow_idle_timeout seconds or more, 0 established and active
 * (never taken). */
#define XLB_ROOM_SHIFT 26
#define XLB_ROOM_EMPTY 5
/* The room of each (state, expired), a nibble each at index state | expired << 2. */
#define XLB_ROOM_OF 0x41352035u

/* The way's rank as a victim: its room, then how long ago its protection ran out (or
 * how little of it is left), then (way ^ start), so ranks differ and the largest names
 * its way in its low bits: within a room the oldest goes first. `start` is picked by
 * the flow's hash so that ties do not always evict the same way. Computed without
 * branches: which way goes is random, and a mispredicted jump here resolves only once
 * the bucket's line has come from the cache, then throws away the work after it (a
 * jump per way cost new flows on a full table ~9 ns). */
static __always_inline __u32 flow_rank(const struct xlb_flow_entry *entry, __u32 way, __u32 start, __u32 now)
{
	/* now is clock << 8 | 0xff: the subtraction leaves clock - expires (mod 2^24) in bits
	 * 8-31, below 2^23 once expired (a hold is at most a week, 2^20 s). */
	__u32 mark = entry->mark, past = (now - mark) >> 8, expired = (past >> 23) ^ 1;
	__u32 room = (XLB_ROOM_OF >> (((mark & 3) | expired << 2) << 2)) & 0xf;

	return room << XLB_ROOM_SHIFT | past << 2 | (way ^ start);
}

/* The bucket's best victim for a new flow, as a rank (flow_rank). */
static __always_inline __u32 flow_victim(const struct xlb_flow_bucket *bucket, const struct table_hash *hash,
					 const struct xlb_config *config)
{
	__u32 start = hash->bucket >> 30, now = config->clock << 8 | 0xff, rank[XLB_FLOW_WAYS];

	_Static_assert(XLB_FLOW_WAYS == 4, "the max below is a tree of four ranks");

#pragma unroll
	for (__u32 way = 0; way < XLB_FLOW_WAYS; way++)
		rank[way] = flow_rank(&bucket->way[way], way, start, now);
	return max_u32(max_u32(rank[0], rank[1]), max_u32(rank[2], rank[3]));
}

/* An empty way of the bucket, or -1. */
static __always_inline int flow_empty_way(const struct xlb_flow_bucket *bucket)
{
#pragma unroll
	for (int way = 0; way < XLB_FLOW_WAYS; way++)
		if (!(bucket->way[way].mark & 0xff))
			return way;
	return -1;
}

/* Where a new flow goes: its bucket's victim, unless that holds a flow and the
 * neighbour has an empty way, or every way of the bucket holds an active established
 * flow and the neighbour's victim does not. `bucket` is updated to the bucket chosen,
 * `room` to the way's (XLB_ROOM_*). -1: no way may take the flow. */
static __always_inline int flow_place(struct xlb_flow_bucket **bucket, struct xlb_flow_bucket *neighbour,
				      const struct table_hash *hash, const struct xlb_config *config, __u32 *room)
{
	__u32 rank = flow_victim(*bucket, hash, config);
	int spare;

	*room = rank >> XLB_ROOM_SHIFT;
	if (!neighbour || *room >= XLB_ROOM_EMPTY)
		goto own;
	spare = flow_empty_way(neighbour);
	if (spare >= 0) {
		*bucket = neighbour;
		*room = XLB_ROOM_EMPTY;
		return spare;
	}
	if (!*room) {
		/* Rare: only a bucket full of active connections looks further. */
		rank = flow_victim(neighbour, hash, config);
		*room = rank >> XLB_ROOM_SHIFT;
		*bucket = neighbour;
	}
own:
	if (!*room)
		return -1;
	return (rank ^ (hash->bucket >> 30)) & (XLB_FLOW_WAYS - 1);
}

/* A reader that sees the entry half-written, whatever order the stores land in, finds
 * the new flow's tag with the old flow's check (or the other way round), or a check
 * that does not cover the backend id read: a miss for both flows. Only a third flow,
 * of one's client with the other's ports, could match, in the nanoseconds the race
 * lasts. A flow starts new, or closing if its first packet is a FIN or RST. */
static __always_inline void flow_record(struct xlb_flow_bucket *bucket, __u32 way, const struct table_hash *hash,
					__u32 backend_id, const struct xlb_config *config, __u8 tcp_flags)
{
	struct xlb_flow_entry *entry;
	__u32 state = tcp_flags & XLB_TCP_RST   ? XLB_FLOW_CLOSING | XLB_FLOW_F_RESET
		      : tcp_flags & XLB_TCP_FIN ? XLB_FLOW_CLOSING
						: XLB_FLOW_NEW;

	way &= XLB_FLOW_WAYS - 1; /* bounds for the verifier */
	entry = &bucket->way[way];
	entry->tag = hash->tag;
	entry->backend_id = backend_id;
	entry->mark = flow_mark_now(config, state);
	entry->check = hash->check ^ backend_id;
}

#endif /* XLB_BALANCER_FLOW_TABLE_H */
