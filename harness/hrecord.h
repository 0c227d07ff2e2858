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

#define HREC_V1_LEN 40

struct hrec {
	uint32_t src_ip; /* host order: 10.0.0.1 is 0x0A000001 */
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t proto;
	uint64_t pkt_count;
	uint64_t first_seen_ns;
	uint8_t verdict;
	uint8_t raw[HREC_V1_LEN]; /* the body as read, for the padding checks */
};

/* Field names in layout order, NULL-terminated: src_ip ... pad1 (cases/README.md). */
extern const char *const hrec_field_names[];

/* Decode one 40-byte v1 body. */
void hrec_decode_v1(const void *body, struct hrec *ret);

/*
 * Split a framed stream into v1 records. 0 with a malloc'd array (NULL when n is 0);
 * -EBADMSG when a frame is truncated or not 40 bytes long, with why[] saying which frame
 * (counted from 0) and where; -ENOMEM.
 */
int hrec_parse(const void *buf, size_t len, struct hrec **ret, size_t *ret_n, char *why,
	       size_t why_len);

/*
 * A field's value by name. Padding reads as the unsigned integer of its bytes in offset
 * order (first byte most significant), so 0 means all zero. -EINVAL for an unknown name.
 */
int hrec_field(const struct hrec *r, const char *name, uint64_t *ret);

/* Offset of the first non-zero padding byte (13-15, 33-39), or -1 when all are zero. */
int hrec_pad_nonzero(const struct hrec *r);

/* "10.0.0.1" for a host-order IPv4 address; buf needs 16 bytes. */
const char *hrec_ip_str(uint32_t ip, char *buf);

#endif
