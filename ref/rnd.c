// SPDX-License-Identifier: Apache-2.0
#include "rnd.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

static __thread struct {
	uint8_t buf[512];
	unsigned int pos;
} pool = { .pos = sizeof(pool.buf) };

static void refill(void)
{
	size_t got = 0;

	while (got < sizeof(pool.buf)) {
		ssize_t n = getrandom(pool.buf + got, sizeof(pool.buf) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* no randomness: predictable IDs would be worse than stopping */
		}
		got += (size_t)n;
	}
	pool.pos = 0;
}

uint16_t rnd_u16(void)
{
	uint16_t v;

	if (pool.pos + 2 > sizeof(pool.buf))
		refill();
	v = (uint16_t)(pool.buf[pool.pos] << 8 | pool.buf[pool.pos + 1]);
	pool.pos += 2;
	return v;
}

uint16_t rnd_range16(uint16_t lo, uint16_t hi)
{
	uint32_t span = (uint32_t)hi - lo + 1, limit, v;

	if (span > 0xFFFF)
		return rnd_u16();
	/* Rejection sampling: no modulo bias. */
	limit = 0x10000 - 0x10000 % span;
	do {
		v = rnd_u16();
	} while (v >= limit);
	return (uint16_t)(lo + v % span);
}
