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
 * brings along), where a full bucket records new flows while the neighbour has room;
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
 * from the cache, then throws away the work after it (a jump per way costs new flows
 * on a full table ~9 ns in the bench). */
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

#endif /* XLB_BALANCER_FLOW_TABLE_H */
