/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Everything that crosses the kernel boundary: map names, keys, values and
 * constants shared by the XDP programs and user space. The TypeScript codecs in
 * control/dataplane/codec.ts mirror this file and test/btf-layout.test.ts checks
 * them against the compiled objects' BTF.
 *
 * Plain C types only. Multi-byte fields marked "network order" hold the bytes as
 * they appear on the wire; every other integer is in host order.
 */
#ifndef XLB_H
#define XLB_H

#include <linux/types.h>

/* Every map's name ends in its own version, xlb_<map>_v<N> (balancer/maps.h,
 * xlb_decap.bpf.c): a change to a map's type, flags, key or value, or to how its
 * entries are read or computed (the enum indexing it, the table hash), bumps that map's
 * version alone (test/map-layouts.txt), so a daemon adopts every other pinned map (the
 * connection table too) and never one it does not understand. */

#define XLB_FAMILY_V4 4
#define XLB_FAMILY_V6 6

/* struct xlb_vip.forwarding; the balancer drops any other (XLB_DROP_UNKNOWN_FORWARDING) */
#define XLB_FORWARD_DSR 1  /* rewrite MACs, XDP_TX to the backend's MAC */
#define XLB_FORWARD_IPIP 2 /* IPIP, IP6IP6 or IPv4-in-IPv6 by the backend's family */

/* struct xlb_vip.flags */
#define XLB_VIP_F_SOURCE_AFFINITY (1u << 0) /* hash the client address only */
#define XLB_VIP_F_NO_CONNTRACK (1u << 1)    /* never read or write the flow table */

/* struct xlb_backend.flags */
#define XLB_BACKEND_F_UNHEALTHY (1u << 0) /* connection-table hits re-hash (ring excludes it too) */

/* Defaults for load-time sizes; user space may set others before load. */
#define XLB_DEFAULT_RING_SIZE 65537
#define XLB_DEFAULT_MAX_VIPS 1024
#define XLB_DEFAULT_MAX_BACKENDS 65536
#define XLB_DEFAULT_FLOWS 65536 /* connection-table flows: XLB_FLOW_WAYS per bucket */

/* An IPv4 or IPv6 address: IPv4 in the first 4 bytes, the rest zero. */
struct xlb_addr {
	__u8 addr[16]; /* network order */
	__u8 family;   /* XLB_FAMILY_V4 or XLB_FAMILY_V6 */
	__u8 pad[3];
};

/* Key of xlb_vips_v3. */
struct xlb_vip_key {
	__u8 addr[16]; /* network order, as in struct xlb_addr */
	__u16 port;    /* network order; 0 matches any port */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;
};

/* Value of xlb_vips_v3. */
struct xlb_vip {
	__u32 id;        /* index into xlb_rings_v3 and xlb_vipstat_v4, < max VIPs */
	__u32 flags;     /* XLB_VIP_F_* */
	__u8 forwarding; /* XLB_FORWARD_* */
	__u8 pad[3];
};

/* Rings (the inner maps of xlb_rings_v3) hold XLB_RING_IDS_PER_VALUE consecutive
 * slots' backend ids (__u32) per value: slot s is element s / 2, id s % 2. An array
 * map pads every value to 8 bytes, so one 4-byte id per value would double the ring's
 * memory and cache footprint. */
#define XLB_RING_IDS_PER_VALUE 2

/* Value of xlb_backends_v3, indexed by backend id. One record per (VIP, backend):
 * a flow-table entry is used only while its backend still belongs to the VIP. */
struct xlb_backend {
	__u8 addr[16]; /* network order; the ipip outer destination */
	__u8 mac[6];   /* dsr: the backend's MAC; ipip: the next hop's, zero for the gateway */
	__u8 family;   /* 0: unused slot */
	__u8 flags;    /* XLB_BACKEND_F_* */
	__u32 vip_id;
};

/* The client's view of a flow: the connection table's key. */
struct xlb_flow_key {
	__u8 src[16]; /* network order */
	__u8 dst[16]; /* network order */
	__u16 sport;  /* network order */
	__u16 dport;  /* network order */
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/*
 * The connection table, xlb_flows_v5: an array of buckets, set-associative like a
 * CPU cache. A flow's table hash (flow_table_hash(), keyed by xlb_config.flow_key)
 * picks the bucket (& xlb_config.flow_bucket_mask) and gives the flow's fingerprint,
 * kept instead of its 5-tuple. One bucket is one cache line of XLB_FLOW_WAYS ways, so
 * a lookup reads one line and an insert writes it; 65,536 flows take 1 MiB. A lookup
 * that misses its bucket reads the neighbouring bucket (index ^ 1) too.
 *
 * Every entry has a state (enum xlb_flow_state) and the table's clock at its last
 * packet. A flow is recorded new; a later packet that is not a SYN (any later packet
 * of UDP) makes it established; FIN or RST makes it closing. A new flow takes, in its
 * bucket (or the neighbour: flow_place), the first of: an empty way, a closing entry idle for
 * XLB_FLOW_CLOSING_IDLE seconds, a new one, a closing one, an established one idle for
 * xlb_config.flow_idle_timeout seconds or more (oldest first within each); a bucket and
 * neighbour full of active established flows record no new flow (it goes by the ring).
 * So a flood of new flows churns only the flood's own entries.
 * No locks: CPUs may race on a way, and a torn entry's fields then disagree with the
 * flows they came from.
 */
#define XLB_FLOW_WAYS 4 /* a power of two */

enum xlb_flow_state {
	XLB_FLOW_EMPTY = 0,       /* no flow was ever recorded in the way */
	XLB_FLOW_NEW = 1,         /* recorded by its first packet */
	XLB_FLOW_ESTABLISHED = 2, /* a later packet not a SYN: only idle ones are evicted */
	XLB_FLOW_CLOSING = 3,     /* FIN or RST seen: evicted first once idle a while */
};

/* In a closing entry's state: closed by an RST. A later packet of the flow that is no
 * RST or SYN shows the RST was not the client's (a client that resets sends no more)
 * and makes it established again. */
#define XLB_FLOW_F_RESET 0x4

/* Seconds a closing flow stays behind new ones: a spoofed RST, or a client's FIN while
 * the server still sends (half-close), does not make a flow still sending the first to go. */
#define XLB_FLOW_CLOSING_IDLE 10

struct xlb_flow_entry {
	__u32 tag; /* fingerprint, first word (an IPv4 flow's source address) */
	__u32 backend_id;
	__u32 check; /* fingerprint, second word (holding the ports) ^ backend_id; 0 with
		      * tag 0: an empty way */
	__u32 mark;  /* bits 0-7: enum xlb_flow_state; 8-31: the xlb_config.clock at which its
		      * protection ends: its last packet's, plus flow_idle_timeout when
		      * established, XLB_FLOW_CLOSING_IDLE when closing */
};

struct xlb_flow_bucket {
	struct xlb_flow_entry way[XLB_FLOW_WAYS];
};

/* Default of xlb_config.flow_idle_timeout: IPVS's for established TCP. */
#define XLB_DEFAULT_FLOW_IDLE_TIMEOUT 900

/* Single entry of xlb_config_v5. */
struct xlb_config {
	__u32 hash_seed;
	__u32 ring_size;          /* entries in every ring; 0: not configured, drop VIP traffic */
	__u16 mtu;                /* largest encapsulated IP packet; 0: no check */
	__u8 gateway_mac[6];      /* ipip next hop when a backend has no MAC of its own */
	__u8 source_v4[4];        /* ipip outer source, network order */
	__u8 source_v6[16];       /* ip6ip6 / 4in6 outer source, network order */
	__u8 source_v4_flow_bits; /* low bits of the outer source taken from the flow hash (0..16) */
	__u8 source_v6_flow_bits; /* likewise for IPv6 (0..32) */
	__u8 pad[2];
	__u32 vip_generation;    /* bumped by user space after every change to xlb_vips_v3 */
	__u32 flow_bucket_mask;  /* buckets in xlb_flows_v5 minus one (a power of two) */
	__u32 flow_key[8];       /* secret keys of the table hash, chosen when the table is made;
				  * not hash_seed, so a new hash_seed keeps established flows */
	__u32 clock;             /* seconds the daemons have run, 24 bits, wrapping: ticked by the
				  * daemon, each carrying on from the last (a stopped daemon ages
				  * no flow) */
	__u32 flow_idle_timeout; /* seconds idle after which an established flow may be evicted */
	__u32 established_mark;  /* an established entry's mark after a packet now: (clock +
				  * flow_idle_timeout) << 8 | XLB_FLOW_ESTABLISHED, written with
				  * the clock so that a hit compares one word */
};

/* Value of xlb_vipcache_v3: a per-CPU, direct-mapped cache of VIP lookups in front of
 * xlb_vips_v3 (a hash lookup costs ~30 ns; this ~5). An entry is valid only while its
 * generation equals xlb_config.vip_generation, so every VIP change empties it. */
struct xlb_vip_cache_entry {
	struct xlb_vip_key key;
	struct xlb_vip vip;
	__u32 generation;
	__u32 found; /* 0: the key is no VIP (negative entry) */
};

#define XLB_VIP_CACHE_BITS 8 /* log2 of the entries per CPU */
#define XLB_VIP_CACHE_SIZE (1 << XLB_VIP_CACHE_BITS)

/* A packet and byte count; per CPU in every stats map. */
struct xlb_traffic {
	__u64 packets;
	__u64 bytes;
};

/* Value of xlb_vipstat_v4, indexed by VIP id. */
struct xlb_vip_stats {
	__u64 packets; /* forwarded to a backend */
	__u64 bytes;
	__u64 flow_hits;   /* connection-table hits */
	__u64 flow_misses; /* connection-table misses (new flows) */
	/* New flows of the VIP recorded over a way holding a flow, by that flow's state
	 * (in enum xlb_flow_state's order), and new flows no way would take. */
	__u64 flow_evicted_new;
	__u64 flow_evicted_established;
	__u64 flow_evicted_closing;
	__u64 flow_unrecorded;
};

/* Index of xlb_counters_v4: the one outcome of every packet the balancer sees.
 * Ordered passes, drops, transmits (the forwarding modes', then the ICMP replies): the
 * program derives its verdict, and whether the packet counts as forwarded, from the
 * ranges. Any change here takes a new xlb_counters version (test/map-layouts.txt). */
enum xlb_outcome {
	XLB_PASS_NON_IP = 0,           /* not IPv4/IPv6 (ARP, LLDP, VLAN ...) */
	XLB_PASS_NOT_VIP,              /* IP traffic to no VIP */
	XLB_PASS_FRAGMENT,             /* a fragment to an address that is no VIP's */
	XLB_DROP_MALFORMED_ETH,        /* shorter than an Ethernet header */
	XLB_DROP_MALFORMED_IP,         /* bad version, IHL, length, or truncated IP header */
	XLB_DROP_MALFORMED_L4,         /* truncated or inconsistent TCP/UDP/ICMP header */
	XLB_DROP_MALFORMED_ICMP_INNER, /* ICMP error whose quoted packet is no VIP flow */
	XLB_DROP_FRAGMENT,             /* a fragment to a VIP address (see README: fragments) */
	XLB_DROP_VIP_PROTO,            /* other protocol, or unhandled ICMP type, to a VIP address */
	XLB_DROP_NOT_CONFIGURED,       /* VIP traffic before xlb_config_v5 was written */
	XLB_DROP_NO_BACKEND,           /* the VIP's ring is empty or missing */
	XLB_DROP_NO_ROUTE,             /* no next-hop MAC, or an IPv6 VIP with an IPv4 ipip backend */
	XLB_DROP_TOO_BIG,              /* encapsulated size over MTU and no ICMP may be sent */
	XLB_DROP_ADJUST_FAILED,        /* bpf_xdp_adjust_head/tail refused */
	XLB_DROP_UNKNOWN_FORWARDING,   /* the VIP's forwarding is no XLB_FORWARD_* this program knows */
	XLB_DROP_PROBE_LOOP,           /* a via-vip probe of the LB's that missed xlb_probe and came back */
	XLB_TX_DSR,                    /* forwarded by MAC rewrite */
	XLB_TX_IPIP,                   /* forwarded encapsulated */
	XLB_TX_ICMP_ECHO_REPLY,        /* answered an echo request to a VIP address */
	XLB_TX_ICMP_TOO_BIG,           /* sent frag-needed / packet-too-big to the client */
	XLB_OUTCOME_COUNT,
};

/* Health-check probes through the forwarding path (tc program xlb_probe): a probe's
 * local port is in this range, outside Linux's default ephemeral range (32768-60999),
 * so an ordinary connection never looks like one. */
#define XLB_PROBE_PORT_MIN 61440
#define XLB_PROBE_PORT_MAX 65535

/* Key of xlb_probes_v1: a probe's packet as the LB sends it. */
struct xlb_probe_key {
	__u8 addr[16]; /* the VIP address, network order */
	__u16 port;    /* the check port, network order */
	__u16 sport;   /* the probe's local port, network order */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;
	__u8 pad[2];
};

/* Value of xlb_probes_v1: where the probe goes, as a client packet of the VIP would. */
struct xlb_probe {
	__u32 backend_id; /* index of xlb_backends_v3 */
	__u8 forwarding;  /* XLB_FORWARD_* */
	__u8 pad[3];
};

/* Value of xlb_probe_sent_v1 (key struct xlb_probe_key): when xlb_probe last sent that
 * probe on to its backend. A via-vip success counts only for a probe sent after it
 * began: one that missed xlb_probe may come back answered by another backend. */
struct xlb_probe_sent {
	__u64 sent_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Value of xlb_trace_v2 (balancer/trace.h): what a dry run decided for its packet. */
#define XLB_TRACE_F_VIP (1u << 0)         /* a VIP matched: vip */
#define XLB_TRACE_F_TABLE (1u << 1)       /* the connection table was read */
#define XLB_TRACE_F_TABLE_FOUND (1u << 2) /* an entry names the flow: table_backend_id */
#define XLB_TRACE_F_TABLE_HIT (1u << 3)   /* ...and its backend still serves the VIP */
#define XLB_TRACE_F_RING (1u << 4)        /* the ring was read: hash, ring_slot, ring_backend_id */
#define XLB_TRACE_F_DONE (1u << 5)        /* outcome is the packet's */

struct xlb_trace {
	__u32 flags; /* XLB_TRACE_F_* */
	__u32 outcome;
	struct xlb_vip vip;
	__u32 table_backend_id;
	__u32 table_state; /* enum xlb_flow_state of the entry found */
	__u32 hash;
	__u32 ring_slot;
	__u32 ring_backend_id;
};

/* xlb_decap_v3 (decap program): struct xlb_addr -> __u32 (unused), the host's own
 * outer destinations. */

/* Index of xlb_dcounter_v3. */
enum xlb_decap_outcome {
	XLB_DECAP_PASS_NOT_ENCAP = 0, /* not encapsulated, or not to one of our addresses */
	XLB_DECAP_PASS_DECAPSULATED,  /* outer header stripped, inner packet passed up */
	XLB_DECAP_DROP_MALFORMED,     /* truncated outer or inner header */
	XLB_DECAP_DROP_ADJUST_FAILED,
	XLB_DECAP_OUTCOME_COUNT,
};

/*
 * Packet capture (xlb capture, balancer/capture.h). User space writes the settings
 * into the balancer's .data.capture section (struct xlb_capture_settings xlb_capture, alone
 * there); while its lease runs (bpf_ktime_get_ns() < until_ns, renewed by the capturing
 * daemon) the balancer copies every packet that matches into xlb_capture_v1 (a perf
 * event array): as received, and for a transmit outcome as sent too, each copy after a
 * struct xlb_capture_record. The first packet after the lease clears until_ns: a daemon
 * killed mid-capture leaves capture off.
 */
#define XLB_CAPTURE_NONE 0xffffffffu /* an id: no VIP or backend; a filter: any */
#define XLB_CAPTURE_MAX_BYTES 4096   /* largest received copy (the per-CPU scratch) */
#define XLB_CAPTURE_RECEIVED 1
#define XLB_CAPTURE_SENT 2

struct xlb_capture_settings {
	__u64 until_ns;        /* the lease: capture while bpf_ktime_get_ns() is below it; 0: off */
	__u32 vip_id;          /* XLB_CAPTURE_NONE: any */
	__u32 outcomes;        /* bit (1 << enum xlb_outcome) per outcome captured */
	__u32 snaplen;         /* bytes copied at most from each frame */
	__u8 backend_addr[16]; /* network order; only with backend_family */
	__u8 backend_family;   /* 0: any backend, or none */
	__u8 pad[3];
};

struct xlb_capture_record {
	__u64 time_ns;  /* bpf_ktime_get_ns() at the packet's arrival */
	__u32 sequence; /* per CPU: a packet's received and sent copies share it */
	__u32 cpu;
	__u32 vip_id;     /* XLB_CAPTURE_NONE: no VIP */
	__u32 backend_id; /* XLB_CAPTURE_NONE: no backend */
	__u32 length;     /* the frame's length */
	__u32 captured;   /* bytes of it that follow this record */
	__u8 outcome;     /* enum xlb_outcome */
	__u8 direction;   /* XLB_CAPTURE_RECEIVED or XLB_CAPTURE_SENT */
	__u8 pad[6];
};

/* Value of xlb_capscratch_v1 (per CPU): the received copy, taken at entry before the
 * packet is rewritten and sent at the end if the packet matches. */
struct xlb_capture_scratch {
	struct xlb_capture_record record;
	__u8 frame[XLB_CAPTURE_MAX_BYTES]; /* right after the record: one output sends both */
	__u64 lost;                        /* copies xlb_capture_v1 refused (its buffer full) */
};

#endif /* XLB_H */
