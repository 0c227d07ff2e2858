// SPDX-License-Identifier: Apache-2.0
/*
 * Properties of the DNS transaction IDs and source ports (RFC 5452): every bit balanced,
 * no counter pattern, ranges respected and covered. Statistical bounds are wide enough that a
 * correct generator fails them with negligible probability (> 8 sigma).
 */
#include <stdlib.h>
#include <string.h>

#include "rnd.h"
#include "tap.h"

TEST(bits_are_balanced)
{
	enum { N = 40000 };
	unsigned ones[16] = { 0 };

	for (int i = 0; i < N; i++) {
		uint16_t v = rnd_u16();

		for (int b = 0; b < 16; b++)
			ones[b] += (v >> b) & 1;
	}
	/* Binomial(40000, 1/2): sigma 100; allow 8 sigma. */
	for (int b = 0; b < 16; b++) {
		if (!ASSERT_TRUE(ones[b] > N / 2 - 800 && ones[b] < N / 2 + 800))
			tap_diag("bit %d: %u ones of %d", b, ones[b], N);
	}
}

TEST(no_counter_pattern_and_few_repeats)
{
	enum { N = 4000 };
	unsigned sequential = 0, repeats = 0;
	uint8_t *seen = calloc(65536, 1);
	uint16_t prev = rnd_u16();

	for (int i = 0; i < N; i++) {
		uint16_t v = rnd_u16();

		sequential += (uint16_t)(v - prev) == 1;
		repeats += seen[v];
		seen[v] = 1;
		prev = v;
	}
	free(seen);
	ASSERT_LE(sequential, 3);
	/* Birthday bound: about N^2 / 2^17 = 122 expected repeats. */
	ASSERT_LE(repeats, 250);
}

TEST(ranges_are_respected_and_covered)
{
	unsigned hits[10] = { 0 };

	for (int i = 0; i < 100000; i++) {
		uint16_t v = rnd_range16(1024, 65535);

		if (!ASSERT_TRUE(v >= 1024))
			return;
	}
	for (int i = 0; i < 100000; i++) {
		uint16_t v = rnd_range16(5, 14);

		if (!ASSERT_TRUE(v >= 5 && v <= 14))
			return;
		hits[v - 5]++;
	}
	/* 10000 expected each, sigma ~95. */
	for (int i = 0; i < 10; i++)
		ASSERT_TRUE(hits[i] > 9000 && hits[i] < 11000);
	ASSERT_EQ(rnd_range16(7, 7), 7);
}
