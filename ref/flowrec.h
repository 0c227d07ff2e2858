/* SPDX-License-Identifier: Apache-2.0 */
/* Flow record decoding (SPEC.md chapters 1 and 2). Pure functions, no I/O. */
#ifndef CELLREF_FLOWREC_H
#define CELLREF_FLOWREC_H

#include <stddef.h>
#include <stdint.h>

#include "flowrec_abi.h"

struct flowrec {
	uint32_t src_ip; /* host order */
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t proto;
	uint64_t pkt_count;
	uint64_t first_seen_ns;
	uint8_t verdict;
};

/*
 * Decode one record. Dispatches on length: v1 is exactly FLOWREC_V1_SIZE bytes. Any other
 * length is -EBADMSG and *ret is untouched (never a partial decode). Padding is ignored.
 */
int flowrec_decode(const void *buf, size_t len, struct flowrec *ret);

/* Encode (for tests and tools): zeroed padding, host byte order. */
void flowrec_encode(const struct flowrec *r, unsigned char out[FLOWREC_V1_SIZE]);

/* "tcp", "udp", "icmp", "icmpv6", or NULL for a number the contract does not name. */
const char *flowrec_protocol_name(uint8_t proto);

/* "deny" for verdict 2, "allow" for every other value. */
const char *flowrec_decision_name(uint8_t verdict);

/* Dotted quad of a host-order IPv4 address; buf must hold 16 bytes. */
char *flowrec_addr_str(uint32_t ip, char buf[static 16]);

#endif
