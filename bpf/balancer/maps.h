/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The balancer's maps; their keys and values are in xlb.h. Each name ends in that
 * map's layout version (see xlb.h), mirrored by MAPS in control/dataplane/codec.ts. */
#ifndef XLB_BALANCER_MAPS_H
#define XLB_BALANCER_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"

/* Per-VIP Maglev lookup table: slot -> backend id, XLB_RING_IDS_PER_VALUE slots per
 * element; slot = hash % xlb_config.ring_size. User space replaces this template with
 * one of the configured ring size before load (libbpf 1.1 cannot resize an inner-map
 * template), and every ring has exactly that size: without BPF_F_INNER_MAP the
 * verifier knows the size and inlines the lookup (a helper call per new flow saved).
 * BPF_F_MMAPABLE lets user space fill a new ring with one memory copy. */
struct xlb_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, (XLB_DEFAULT_RING_SIZE + 1) / XLB_RING_IDS_PER_VALUE);
	__type(key, __u32);
	__type(value, __u32[XLB_RING_IDS_PER_VALUE]);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, struct xlb_vip_key);
	__type(value, struct xlb_vip);
} xlb_vips_v3 SEC(".maps");

/* Addresses that carry at least one VIP -> how many; answers echo requests and
 * keeps fragments and other protocols for those addresses from the host. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, struct xlb_addr);
	__type(value, __u32);
} xlb_vipaddr_v3 SEC(".maps");

/* VIP id -> its ring. User space builds a whole new ring and swaps it in with one
 * update, so a packet sees either the old ring or the new one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct xlb_ring);
} xlb_rings_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_backend);
} xlb_backends_v3 SEC(".maps");

/* The connection table (see struct xlb_flow_bucket); user space sizes it at load
 * time. BPF_F_MMAPABLE: the values start page-aligned, so every bucket is one cache
 * line, and user space reads the whole table with one copy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XLB_DEFAULT_FLOWS / XLB_FLOW_WAYS);
	__type(key, __u32);
	__type(value, struct xlb_flow_bucket);
} xlb_flows_v5 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_config);
} xlb_config_v5 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_VIP_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct xlb_vip_cache_entry);
} xlb_vipcache_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_OUTCOME_COUNT);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
} xlb_counters_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xlb_vip_stats);
} xlb_vipstat_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_traffic);
} xlb_bestat_v3 SEC(".maps");

/* Health-check probes (struct xlb_probe_key -> struct xlb_probe), read by the tc
 * egress program xlb_probe; one entry per probing target checked via the VIP. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, struct xlb_probe_key);
	__type(value, struct xlb_probe);
} xlb_probes_v1 SEC(".maps");

/* When xlb_probe last sent each probe on (struct xlb_probe_key -> struct
 * xlb_probe_sent), read by the control plane after a via-vip success. LRU: the keys
 * of probes no longer checked age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_DEFAULT_MAX_BACKENDS);
	__type(key, struct xlb_probe_key);
	__type(value, struct xlb_probe_sent);
} xlb_probe_sent_v1 SEC(".maps");

#endif /* XLB_BALANCER_MAPS_H */
