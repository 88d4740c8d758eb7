/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksum helpers (RFC 1071, RFC 1624) for headers the programs write. */
#ifndef XLB_CSUM_H
#define XLB_CSUM_H

#include <linux/types.h>

static __always_inline __u16 xlb_csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sums `words` 16-bit words at `p`, which the caller has bounds-checked; a constant
 * count unrolls. */
static __always_inline __u64 xlb_csum_add(const void *p, int words, __u64 sum)
{
	const __u16 *w = p;

#pragma unroll
	for (int i = 0; i < words; i++)
		sum += w[i];
	return sum;
}

/* RFC 1624 eqn. 3: updates a checksum for one 16-bit word changing from old to new. */
static __always_inline void xlb_csum_replace16(__u16 *check, __u16 old, __u16 new)
{
	__u64 sum = (__u16) ~*check;

	sum += (__u16)~old;
	sum += new;
	*check = xlb_csum_fold(sum);
}

/* As xlb_csum_replace16, for a checksum over data that can be all zero (an ICMPv4
 * message: no pseudo-header). Eqn. 3 folds an all-zero message's sum to -0 and writes
 * 0x0000, which does not verify; 0xffff verifies for every sum that folds to -0, so it
 * is written instead (RFC 1624 section 3: only the all-zero data has sum +0). */
static __always_inline void xlb_csum_replace16_zeroable(__u16 *check, __u16 old, __u16 new)
{
	xlb_csum_replace16(check, old, new);
	if (*check == 0)
		*check = 0xffff;
}

/* Most 16-bit words xlb_csum_add_packet() reads: the largest quote the balancer sends
 * (IPv4 header with options plus 8 bytes), and an IPv4 header with options. */
#define XLB_CSUM_MAX_WORDS 40

/* Sums the first `len` bytes (even) from `start`, stopping at data_end. The verifier
 * needs a constant trip count, hence the loop to XLB_CSUM_MAX_WORDS with early exits. */
static __always_inline __u64 xlb_csum_add_packet(void *start, __u32 len, void *data_end, __u64 sum)
{
	for (__u32 i = 0; i < XLB_CSUM_MAX_WORDS; i++) {
		__u16 *w = start + i * 2;

		if (i * 2 >= len || (void *)(w + 1) > data_end)
			break;
		sum += *w;
	}
	return sum;
}

#endif
