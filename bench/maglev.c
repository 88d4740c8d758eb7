/*
 * The Maglev population of control/maglev/maglev.ts (equal weights), in plain C, as
 * the yardstick for the TypeScript build: backends ranked by key, FNV-1a + murmur3
 * finaliser for offset and skip, round-robin turns, permutations walked by adding
 * skip, each slot holding the index of its backend in the given list.
 *
 * Usage: maglev N M REPEATS -> "MS DIGEST": the median milliseconds of REPEATS builds
 * and an FNV-1a digest of the table's entries, which the bench compares with the
 * TypeScript table's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t key_hash(const char *key, uint32_t seed)
{
	uint32_t h = 0x811c9dc5u ^ seed;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x01000193u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static char **sort_keys;

static int by_key(const void *a, const void *b)
{
	return strcmp(sort_keys[*(const uint32_t *)a], sort_keys[*(const uint32_t *)b]);
}

static void build(char **keys, uint32_t n, uint32_t m, uint32_t *table, uint32_t *order, uint32_t *position,
		  uint32_t *skip, uint8_t *filled)
{
	/* Ranked by key, so the table does not depend on the order backends are given in. */
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	sort_keys = keys;
	qsort(order, n, sizeof(*order), by_key);
	for (uint32_t r = 0; r < n; r++) {
		position[r] = key_hash(keys[order[r]], 0) % m;
		skip[r] = key_hash(keys[order[r]], 0x9e3779b9u) % (m - 1) + 1;
	}
	memset(filled, 0, m);
	for (uint32_t claimed = 0;;) {
		for (uint32_t r = 0; r < n; r++) {
			uint32_t slot = position[r], step = skip[r];

			while (filled[slot]) {
				slot += step;
				if (slot >= m)
					slot -= m;
			}
			filled[slot] = 1;
			table[slot] = order[r];
			slot += step;
			position[r] = slot >= m ? slot - m : slot;
			if (++claimed == m)
				return;
		}
	}
}

static int by_time(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: maglev N M REPEATS\n");
		return 2;
	}
	uint32_t n = atoi(argv[1]), m = atoi(argv[2]), repeats = atoi(argv[3]);
	char **keys = calloc(n, sizeof(*keys));
	uint32_t *order = calloc(n, 4), *position = calloc(n, 4), *skip = calloc(n, 4);
	uint8_t *filled = calloc(m, 1);
	uint32_t *table = calloc(m, 4), digest = 0x811c9dc5u;
	double *ms = calloc(repeats, sizeof(*ms));
	struct timespec a, b;

	for (uint32_t i = 0; i < n; i++) {
		keys[i] = malloc(32);
		snprintf(keys[i], 32, "198.18.%u.%u", i >> 8, i & 255);
	}
	/* One table for every build, as the daemon reuses one array (every slot is
	 * written, so it needs no clearing); the slot flags are scratch on both sides. */
	for (uint32_t i = 0; i < repeats; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		build(keys, n, m, table, order, position, skip, filled);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	}
	for (uint32_t s = 0; s < m; s++)
		digest = (digest ^ table[s]) * 0x01000193u;
	qsort(ms, repeats, sizeof(*ms), by_time);
	printf("%.4f %u\n", ms[repeats / 2], digest);
	return 0;
}
