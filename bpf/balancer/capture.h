/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet capture (xlb capture): while xlb_capture's lease runs, every packet's received
 * frame is copied into a per-CPU scratch at entry (before any rewrite); at the end, if its
 * VIP, backend and outcome match the settings, that copy goes to xlb_capture_v1, and for a
 * transmit outcome the frame as sent follows it. With capture off (until_ns 0) the hit
 * path pays one load and a branch (and the ids noted on the stack); the clock is read only
 * with a lease set. XLB_NO_CAPTURE compiles the hooks out (the bench's side-by-side build).
 */
#ifndef XLB_BALANCER_CAPTURE_H
#define XLB_BALANCER_CAPTURE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"
#include "balancer/maps.h"

/* The ids a packet met on its way, for the capture filter and the records. */
struct capture_ids {
	__u32 vip_id;
	__u32 backend_id;
};

/* Written by user space, and cleared by the first packet after its lease; zero: off. A
 * section of its own, so user space finds the settings whatever other globals the object has. */
struct xlb_capture_settings xlb_capture SEC(".data.capture") = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
} xlb_capture_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_capture_scratch);
} xlb_capscratch_v1 SEC(".maps");

/* XLB_NO_CAPTURE keeps the maps (the same object for user space) but not the hooks. */
#ifdef XLB_NO_CAPTURE

#define capture_note_vip(ids, id) ((void)(ids))
#define capture_note_backend(ids, id) ((void)(ids))
#define capture_on() false
#define capture_begin(ctx, bytes) ((void)0)
#define capture_end(ctx, outcome, ids) ((void)0)

#else

#define capture_note_vip(ids, id) ((ids)->vip_id = (id))
#define capture_note_backend(ids, id) ((ids)->backend_id = (id))

/* Read at entry and at the end: the work itself is out of line (__noinline), so
 * with capture off the hit path pays a load and a branch each time and no registers. */
#define capture_on() __builtin_expect(xlb_capture.until_ns != 0, 0)

static __always_inline struct xlb_capture_scratch *capture_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xlb_capscratch_v1, &zero);
}

/* At entry, with a lease set: the received frame into the scratch if the lease runs.
 * Past it, the lease is cleared (unless renewed meanwhile), so that a daemon that died
 * mid-capture leaves every later packet the cost of capture off. */
static __noinline void capture_begin(struct xdp_md *ctx, __u32 bytes)
{
	struct xlb_capture_scratch *scratch;
	__u64 until = xlb_capture.until_ns;
	__u64 now = bpf_ktime_get_ns();
	__u32 len = bytes;

	if (now >= until) {
		__sync_val_compare_and_swap(&xlb_capture.until_ns, until, 0);
		return;
	}
	scratch = capture_scratch();
	if (!scratch)
		return;
	if (len > xlb_capture.snaplen)
		len = xlb_capture.snaplen;
	if (len > XLB_CAPTURE_MAX_BYTES)
		len = XLB_CAPTURE_MAX_BYTES;
	if (len < 1 || bpf_xdp_load_bytes(ctx, 0, scratch->frame, len))
		return;
	scratch->record.time_ns = now;
	scratch->record.sequence++;
	scratch->record.cpu = bpf_get_smp_processor_id();
	scratch->record.length = bytes;
	scratch->record.captured = len; /* 0 between packets: capture_end() sends nothing */
}

/* Whether the packet's VIP, backend (by address: one per VIP it serves) and outcome
 * are those the settings ask for. */
static __always_inline bool capture_matches(int outcome, const struct capture_ids *ids)
{
	const struct xlb_backend *backend;

	if (!(xlb_capture.outcomes & (1u << (outcome & 31))))
		return false;
	if (xlb_capture.vip_id != XLB_CAPTURE_NONE && xlb_capture.vip_id != ids->vip_id)
		return false;
	if (!xlb_capture.backend_family)
		return true;
	backend = bpf_map_lookup_elem(&xlb_backends_v3, &ids->backend_id);
	if (!backend || backend->family != xlb_capture.backend_family)
		return false;
	/* Both addresses start 4-byte aligned (struct offsets 0 and 20). */
	const __u32 *have = (const __u32 *)backend->addr, *want = (const __u32 *)xlb_capture.backend_addr;

	return ((have[0] ^ want[0]) | (have[1] ^ want[1]) | (have[2] ^ want[2]) | (have[3] ^ want[3])) == 0;
}

/* At the end, with capture on: the copies, if capture_begin() took one and the packet matches. A
 * full buffer loses them, counted in the scratch (perf tells its reader of a loss only
 * with its next record, which the last losses of a capture never get). */
static __noinline void capture_end(struct xdp_md *ctx, int outcome, const struct capture_ids *ids)
{
	struct xlb_capture_scratch *scratch = capture_scratch();
	struct xlb_capture_record sent;
	__u32 captured;

	/* Capture switched on after this packet's entry: no copy of it was taken. */
	if (!scratch || !scratch->record.captured)
		return;
	captured = scratch->record.captured;
	scratch->record.captured = 0;
	if (!capture_matches(outcome, ids))
		return;
	scratch->record.outcome = outcome;
	scratch->record.direction = XLB_CAPTURE_RECEIVED;
	scratch->record.vip_id = ids->vip_id;
	scratch->record.backend_id = ids->backend_id;
	scratch->record.captured = captured;
	if (captured > XLB_CAPTURE_MAX_BYTES)
		captured = XLB_CAPTURE_MAX_BYTES;
	if (bpf_perf_event_output(ctx, &xlb_capture_v1, BPF_F_CURRENT_CPU, scratch, sizeof(scratch->record) + captured))
		scratch->lost++;
	scratch->record.captured = 0;
	if (outcome < XLB_TX_DSR)
		return;
	sent = scratch->record;
	sent.direction = XLB_CAPTURE_SENT;
	sent.length = ctx->data_end - ctx->data;
	sent.captured = sent.length < xlb_capture.snaplen ? sent.length : xlb_capture.snaplen;
	if (bpf_perf_event_output(ctx, &xlb_capture_v1, BPF_F_CURRENT_CPU | ((__u64)sent.captured << 32), &sent,
				  sizeof(sent)))
		scratch->lost++;
}

#endif /* XLB_NO_CAPTURE */

#endif /* XLB_BALANCER_CAPTURE_H */
