/* SPDX-License-Identifier: GPL-2.0-only */
/* Bob Jenkins' lookup3 hash as in the kernel's linux/jhash.h; control/dataplane/hash.ts
 * mirrors it so tests can predict the backend a flow hashes to. */
#ifndef XLB_JHASH_H
#define XLB_JHASH_H

#include <linux/types.h>

#define XLB_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 xlb_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

/* The kernel's layout: three steps a line, as in include/linux/jhash.h. */
/* clang-format off */
#define xlb_jhash_mix(a, b, c)                                                  \
	{                                                                      \
		a -= c; a ^= xlb_rol32(c, 4); c += b;                          \
		b -= a; b ^= xlb_rol32(a, 6); a += c;                          \
		c -= b; c ^= xlb_rol32(b, 8); b += a;                          \
		a -= c; a ^= xlb_rol32(c, 16); c += b;                         \
		b -= a; b ^= xlb_rol32(a, 19); a += c;                         \
		c -= b; c ^= xlb_rol32(b, 4); b += a;                          \
	}

#define xlb_jhash_final(a, b, c)                                                \
	{                                                                      \
		c ^= b; c -= xlb_rol32(b, 14);                                 \
		a ^= c; a -= xlb_rol32(c, 11);                                 \
		b ^= a; b -= xlb_rol32(a, 25);                                 \
		c ^= b; c -= xlb_rol32(b, 16);                                 \
		a ^= c; a -= xlb_rol32(c, 4);                                  \
		b ^= a; b -= xlb_rol32(a, 14);                                 \
		c ^= b; c -= xlb_rol32(b, 24);                                 \
	}
/* clang-format on */

/* jhash2() over `length` 32-bit words; callers pass a constant length so the
 * loop unrolls. */
static __always_inline __u32 xlb_jhash2(const __u32 *k, __u32 length, __u32 initval)
{
	__u32 a, b, c;

	a = b = c = XLB_JHASH_INITVAL + (length << 2) + initval;
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		xlb_jhash_mix(a, b, c);
		length -= 3;
		k += 3;
	}
	switch (length) {
	case 3:
		c += k[2];
		/* fallthrough */
	case 2:
		b += k[1];
		/* fallthrough */
	case 1:
		a += k[0];
		xlb_jhash_final(a, b, c);
		break;
	default:
		break;
	}
	return c;
}

#endif
