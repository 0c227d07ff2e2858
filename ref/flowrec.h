/* SPDX-License-Identifier: Apache-2.0 */
/* Flow record decoding (SPEC.md chapters 1 and 2). Pure functions, no I/O. */
#ifndef CELLREF_FLOWREC_H
#define CELLREF_FLOWREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flowrec_abi.h"

/* Longest address text flowrec_addr_text() writes, with its NUL (INET6_ADDRSTRLEN). */
#define FLOWREC_ADDR_TEXT_MAX 46

/*
 * One decoded record of either version. A v1 record fills src_addr/dst_addr with the
 * IPv4-mapped form of src_ip/dst_ip and family 4, so code that only reads the 16-byte
 * addresses handles both versions; src_ip/dst_ip keep their v1 meaning.
 */
struct flowrec {
	uint8_t version; /* 1 or 2: the length decoded from, the layout encoded to */
	uint8_t family;	 /* v2: the record's byte as written (4, 6 or anything); v1: 4 */
	uint32_t src_ip; /* host order; v2: bytes 12-15 of src_addr (an IPv4 flow's address) */
	uint32_t dst_ip;
	uint8_t src_addr[16]; /* network order */
	uint8_t dst_addr[16];
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t proto;
	uint64_t pkt_count;
	uint64_t byte_count; /* v2 only; 0 for v1 */
	uint64_t first_seen_ns;
	uint8_t verdict;
};

/*
 * Decode one record, dispatching on length: FLOWREC_V1_SIZE bytes is v1, FLOWREC_V2_SIZE is
 * v2. Any other length (or buf NULL) is -EBADMSG and *ret is untouched (never a partial decode).
 * Padding is ignored, and no field value is an error (family included).
 */
int flowrec_decode(const void *buf, size_t len, struct flowrec *ret);

/*
 * Encode (for tests and tools) the version r->version names (0 counts as 1, for structs built
 * before there was a version): zeroed padding, host byte order. v1 takes src_ip/dst_ip, v2
 * src_addr/dst_addr and family. Returns the bytes written, -EINVAL for another version,
 * -ENOBUFS when size is too small for it.
 */
int flowrec_encode(const struct flowrec *r, void *out, size_t size);

/* "tcp", "udp", "icmp", "icmpv6", or NULL for a number the contract does not name. */
const char *flowrec_protocol_name(uint8_t proto);

/* "deny" for verdict 2, "allow" for every other value. */
const char *flowrec_decision_name(uint8_t verdict);

/* Dotted quad of a host-order IPv4 address; buf must hold 16 bytes. */
char *flowrec_addr_str(uint32_t ip, char buf[static 16]);

/* The IPv4-mapped IPv6 address ::ffff:a.b.c.d of a host-order IPv4 address. */
void flowrec_addr_map_ipv4(uint32_t ip, uint8_t ret[static 16]);

/* Whether addr is in ::ffff:0:0/96 (bytes 0-9 zero, 10-11 0xff). */
bool flowrec_addr_is_mapped(const uint8_t addr[static 16]);

/*
 * Text of a 16-byte address (SPEC.md FLOW-DEC-013/014): the dotted quad of bytes 12-15 when
 * family is 4 and the address is IPv4-mapped; RFC 5952 text of all 16 bytes otherwise (family
 * 6, any other family, or family 4 without the mapped prefix, so no byte is lost).
 */
char *flowrec_addr_text(uint8_t family, const uint8_t addr[static 16],
			char buf[static FLOWREC_ADDR_TEXT_MAX]);

#endif
