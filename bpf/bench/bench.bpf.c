// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark programs (npm run bench); never attached in production.
 *
 * bench_harness: BPF_PROG_TEST_RUN with repeat > 1 runs one buffer again and again,
 * so a program that rewrites or encapsulates would see its own output next time.
 * The harness restores the packet every iteration (undoing any head growth, then
 * rewriting the bytes from bench_packet_v1), optionally makes it a different flow,
 * and tail-calls the program under test in bench_target_v1[0]. Undoing head growth
 * is a helper call; with `always_adjust_head` the harness makes that call every
 * iteration, growth or not, so a program that pushes a header and the reflector,
 * which does not, pay the same harness.
 *
 * bench_reflect: the least a forwarding XDP program can do (swap MACs, XDP_TX);
 * the harness tail-calling it is "the limit" the balancer is compared with.
 *
 * bench_generate: transmits its frame unchanged (XDP_TX) when run with
 * BPF_F_TEST_XDP_LIVE_FRAMES: it injects the frames of the forwarding-rate bench.
 *
 * bench_bounce: on the generator's interface, counts every frame that comes back and
 * reflects it again, so the injected frames circulate between the two ends and the
 * count per second is the forwarding rate of the slower end. It can give each frame it
 * sends back another flow, cycling through bench_bounce_flows_v1 of them.
 *
 * bench_memory_chase: one dependent read per run from an array of a given size, the
 * price of a connection-table bucket in a table of that size.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/csum.h"

#define BENCH_MAX_PACKET 256

struct bench_packet {
	__u32 len;         /* bytes of the template; multiple of 8 */
	__u32 flow_offset; /* 0, or where to write a per-iteration flow number (4 bytes) */
	__u32 flows;       /* distinct flow numbers to cycle through (0: never repeat) */
	__u32 ipv4_header; /* 0, or the offset of an IPv4 header (no options) to re-checksum */
	__u32 always_adjust_head;
	__u32 pad; /* the bytes are copied as 8-byte words */
	__u8 bytes[BENCH_MAX_PACKET];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_packet);
} bench_packet_v1 SEC(".maps");

/* The harness's iteration count, which numbers the flows. Shared, not per CPU: the
 * bench process may move between CPUs, and per-CPU counts would each start the flow
 * numbers over, so a "new" flow could be one another CPU already recorded. Only one
 * BPF_PROG_TEST_RUN runs at a time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_iteration_v1 SEC(".maps");

/* Frames bench_bounce saw come back, per CPU (it runs in both CPUs' softirqs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_counter_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target_v1 SEC(".maps");

SEC("xdp")
int bench_harness(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_packet *packet = bpf_map_lookup_elem(&bench_packet_v1, &zero);
	__u64 *iteration = bpf_map_lookup_elem(&bench_iteration_v1, &zero);
	void *data, *data_end;
	int grown;

	if (!packet || !iteration)
		return XDP_ABORTED;
	/* The previous run may have pushed an outer header at the head. The frame is linear
	 * (not frags-aware), so its length is data_end - data: bpf_xdp_get_buff_len() gives
	 * the same for a helper call, ~7 ns of the limit on this VM. */
	grown = (int)(ctx->data_end - ctx->data) - (int)packet->len;
	if ((grown > 0 || packet->always_adjust_head) && bpf_xdp_adjust_head(ctx, grown))
		return XDP_ABORTED;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* Constant trip count for the verifier; stop at the template's length. */
	for (__u32 i = 0; i < BENCH_MAX_PACKET / 8; i++) {
		__u64 *word = data + i * 8;

		if (i * 8 >= packet->len || (void *)(word + 1) > data_end)
			break;
		*word = *(__u64 *)&packet->bytes[i * 8];
	}
	if (packet->flow_offset) {
		/* Masked so the verifier sees a bounded offset before the range check. */
		__u32 offset = packet->flow_offset & (BENCH_MAX_PACKET - 1);
		__u32 n = (*iteration)++;
		__u32 *flow = data + offset;

		if ((void *)(flow + 1) > data_end)
			return XDP_ABORTED;
		n = packet->flows ? n % packet->flows : n;
		/* Network order, so consecutive flow numbers change the last bytes first. */
		*flow ^= bpf_htonl(n);
	}
	if (packet->ipv4_header) {
		/* The flow number may sit in the IPv4 header: keep its checksum valid. */
		__u16 *ip = data + (packet->ipv4_header & (BENCH_MAX_PACKET - 1));
		__u32 sum = 0;

		_Static_assert(sizeof(struct iphdr) == 10 * 2 && offsetof(struct iphdr, check) == 5 * 2,
			       "ten 16-bit words, ip[5] the checksum");
		if ((void *)(ip + 10) > data_end)
			return XDP_ABORTED;
		ip[5] = 0;
#pragma unroll
		for (int i = 0; i < 10; i++)
			sum += ip[i];
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ip[5] = ~sum;
	}
	bpf_tail_call(ctx, &bench_target_v1, 0);
	return XDP_ABORTED;
}

static __always_inline int reflect(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int bench_reflect(struct xdp_md *ctx)
{
	return reflect(ctx);
}

SEC("xdp")
int bench_generate(struct xdp_md *ctx)
{
	return XDP_TX;
}

/* The number of distinct flows bench_bounce cycles the frames through; 0 keeps each
 * frame's own flow. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_bounce_flows_v1 SEC(".maps");

/* Makes an IPv4 frame flow number n: the low 16 bits of its source address, with the
 * header checksum updated to match (the TCP checksum is left stale: XDP programs on
 * the way do not check it). */
static __always_inline void set_flow(struct xdp_md *ctx, __u32 n)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *low;

	if ((void *)(ip + 1) > (void *)(long)ctx->data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return;
	low = (__u16 *)&ip->saddr + 1;
	xlb_csum_replace16(&ip->check, *low, bpf_htons(n));
	*low = bpf_htons(n);
}

SEC("xdp")
int bench_bounce(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&bench_counter_v1, &zero);
	__u32 *flows = bpf_map_lookup_elem(&bench_bounce_flows_v1, &zero);

	if (count) {
		(*count)++;
		if (flows && *flows)
			set_flow(ctx, *count % *flows);
	}
	return reflect(ctx);
}

/* bench_memory_chase's 64-byte lines: up to 2^19 of them, 32 MiB, the 2M-flow table's size. */
#define BENCH_LINE_BITS 19

struct bench_line {
	__u64 word[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << BENCH_LINE_BITS);
	__type(key, __u32);
	__type(value, struct bench_line);
} bench_lines_v1 SEC(".maps");

/* bench_memory_chase's run count, which picks the next line. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_chase_runs_v1 SEC(".maps");

/* The memory yardstick of the connection-table cases: each run reads one line of the
 * first 2^bits of bench_lines_v1 (bits: the run's first data byte, at most
 * BENCH_LINE_BITS) at a random index (the run count, Fibonacci-hashed) that waits for
 * the previous run's read (the line's word, always 0, is added to the count), so reads
 * cannot overlap and a run takes one read from wherever that many lines live: the
 * caches while they fit, else memory. The test-run loop's own work overlaps it. */
SEC("xdp")
int bench_memory_chase(struct xdp_md *ctx)
{
	__u8 *bits = (void *)(long)ctx->data;
	__u32 zero = 0, index;
	__u64 *runs = bpf_map_lookup_elem(&bench_chase_runs_v1, &zero);
	struct bench_line *line;

	if (!runs || (void *)(bits + 1) > (void *)(long)ctx->data_end || !*bits || *bits > BENCH_LINE_BITS)
		return XDP_ABORTED;
	index = (*runs * 0x9e3779b97f4a7c15ull) >> (64 - *bits);
	line = bpf_map_lookup_elem(&bench_lines_v1, &index);
	if (!line)
		return XDP_ABORTED;
	*runs += 1 + line->word[0];
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
