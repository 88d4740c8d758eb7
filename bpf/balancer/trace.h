/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The dry run (xlb trace): the program xlb_trace (xlb_trace.bpf.o, built from
 * xlb_balancer.bpf.c) runs the balancer's code on a synthesised packet
 * (BPF_PROG_TEST_RUN) against the live daemon's maps, handed to its load by
 * descriptor. It writes nothing those maps hold (no flow entry or clock, VIP-cache
 * entry or counter) and records what it decided in xlb_trace_v2 instead. Every step
 * takes the record, `trace`: NULL in xlb_balancer, where the compiler removes each
 * hook, so production's instructions are the same as without them.
 */
#ifndef XLB_BALANCER_TRACE_H
#define XLB_BALANCER_TRACE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"

/* The dry run's record of its one packet; user space zeroes it before each run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_trace);
} xlb_trace_v2 SEC(".maps");

static __always_inline struct xlb_trace *trace_record(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xlb_trace_v2, &zero);
}

/* An entry the packet would write (a counter, a cache line): none in a dry run. */
#define written_lookup(trace, map, key) ((trace) ? NULL : bpf_map_lookup_elem(map, key))

static __always_inline void trace_vip(struct xlb_trace *trace, const struct xlb_vip *vip)
{
	if (trace && vip) {
		trace->flags |= XLB_TRACE_F_VIP;
		trace->vip = *vip;
	}
}

/* The table read: `found` an entry for the flow naming `id` in `state`, a `hit` if it still holds. */
static __always_inline void trace_table(struct xlb_trace *trace, bool found, __u32 id, __u32 state, bool hit)
{
	if (!trace)
		return;
	trace->flags |= XLB_TRACE_F_TABLE | (found ? XLB_TRACE_F_TABLE_FOUND : 0) | (hit ? XLB_TRACE_F_TABLE_HIT : 0);
	trace->table_backend_id = id;
	trace->table_state = state;
}

static __always_inline void trace_ring(struct xlb_trace *trace, __u32 hash, __u32 ring_size, __u32 id)
{
	if (!trace)
		return;
	trace->flags |= XLB_TRACE_F_RING;
	trace->hash = hash;
	trace->ring_slot = hash % ring_size;
	trace->ring_backend_id = id;
}

static __always_inline void trace_outcome(struct xlb_trace *trace, __u32 outcome)
{
	if (trace) {
		trace->flags |= XLB_TRACE_F_DONE;
		trace->outcome = outcome;
	}
}

#endif /* XLB_BALANCER_TRACE_H */
