/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 (FIPS 180-4) for the report's file and kernel config hashes. Compiled in so the
 * harness needs no crypto library in a minimal qemu guest.
 */
#ifndef CELLCHECK_HSHA256_H
#define CELLCHECK_HSHA256_H

#include <stddef.h>
#include <stdint.h>

struct hsha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	size_t fill;
};

void hsha256_init(struct hsha256 *s);
void hsha256_update(struct hsha256 *s, const void *data, size_t n);
/* 64 lowercase hex digits and a NUL. */
void hsha256_final_hex(struct hsha256 *s, char hex[65]);

/* Hash a whole file. 0 or -errno. */
int hsha256_file(const char *path, char hex[65]);

#endif
