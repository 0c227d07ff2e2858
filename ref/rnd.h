/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpredictable numbers from the kernel's random source (getrandom(2)), buffered so a busy
 * proxy does not make one system call per DNS query. For DNS transaction IDs and source
 * ports (RFC 5452). One state per thread; not for keys.
 */
#ifndef CELLREF_RND_H
#define CELLREF_RND_H

#include <stdint.h>

uint16_t rnd_u16(void);
/* Uniform in [lo, hi]. */
uint16_t rnd_range16(uint16_t lo, uint16_t hi);

#endif
