/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The harness's own reader of framed flow records (SPEC.md 1 and 3.1), written from the SPEC
 * alone: ref/'s decoder is what the suite judges, so it must not judge itself (DESIGN.md 8).
 * Frame lengths are u32 little-endian on every host (FLOW-FRM-001); record bodies are in the
 * producer's host order (FLOW-REC-002), which is this host's.
 */
#ifndef CELLCHECK_HRECORD_H
#define CELLCHECK_HRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HREC_V1_LEN    40
#define HREC_V2_LEN    64
#define HREC_ADDR_TEXT 46 /* INET6_ADDRSTRLEN */

struct hrec {
	int version;	 /* 1 or 2: the frame's length */
	uint32_t src_ip; /* v1, host order: 10.0.0.1 is 0x0A000001 */
	uint32_t dst_ip;
	uint8_t src_addr[16]; /* v2, network order */
	uint8_t dst_addr[16];
	uint8_t family; /* v2 */
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t proto;
	uint64_t pkt_count;
	uint64_t byte_count; /* v2 */
	uint64_t first_seen_ns;
	uint8_t verdict;
	uint8_t raw[HREC_V2_LEN]; /* the body as read, for the padding checks */
};

/* Field names of each version in layout order, NULL-terminated (cases/README.md). */
extern const char *const hrec_field_names[];
extern const char *const hrec_field_names_v2[];

/* Decode one 40-byte v1 body. */
void hrec_decode_v1(const void *body, struct hrec *ret);
/* Decode one 64-byte v2 body. */
void hrec_decode_v2(const void *body, struct hrec *ret);

/*
 * Split a framed stream into records of one version (40-byte v1 or 64-byte v2 frames; a
 * producer writes one version for its whole life, so a stream mixing them is refused). 0 with a
 * malloc'd array (NULL when n is 0); -EBADMSG when a frame is truncated, of another length or
 * of the other version, with why[] saying which frame (counted from 0) and where; -ENOMEM.
 */
int hrec_parse(const void *buf, size_t len, struct hrec **ret, size_t *ret_n, char *why,
	       size_t why_len);

/*
 * A numeric field's value by name. Padding reads as the unsigned integer of its bytes in
 * offset order (first byte most significant), so 0 means all zero. -EINVAL for a name the
 * record's version does not have (and for v2's addresses: hrec_addr_text).
 */
int hrec_field(const struct hrec *r, const char *name, uint64_t *ret);

/*
 * v2's src_addr or dst_addr as text (inet_ntop: RFC 5952 form for IPv6, ::ffff:a.b.c.d for a
 * mapped address); -EINVAL for another name or a v1 record.
 */
int hrec_addr_text(const struct hrec *r, const char *name, char buf[HREC_ADDR_TEXT]);

/* Offset of the first non-zero padding byte (v1: 13-15, 33-39; v2: 39), or -1 if none. */
int hrec_pad_nonzero(const struct hrec *r);

/* "10.0.0.1" for a host-order IPv4 address; buf needs 16 bytes. */
const char *hrec_ip_str(uint32_t ip, char *buf);

#endif
