/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A DNS message decoder for comparisons only: hexpect.c decodes both sides of a hex message
 * expectation (raw_hex, frames) and names the first field that differs instead of showing two
 * rows of hex. Written from RFC 1035 4.1, RFC 6891 6.1 and RFC 3597, never from ref/ (DESIGN.md
 * 8). Every read is bounds-checked; a message that does not decode gets a reason, never a guess.
 */
#ifndef CELLCHECK_HDNSMSG_H
#define CELLCHECK_HDNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HDNS_HDR_LEN   12
#define HDNS_MAX_NAME  255  /* octets of a name in wire form, root label included */
#define HDNS_NAME_TEXT 1024 /* its presentation form: 4 bytes per octet at most, and a NUL */
#define HDNS_TYPE_OPT  41

enum hdns_section { HDNS_QD, HDNS_AN, HDNS_NS, HDNS_AR, HDNS_N_SECTIONS };

/* One question (type and class only) or resource record. */
struct hdns_rr {
	uint8_t name[HDNS_MAX_NAME]; /* uncompressed wire form */
	uint16_t name_len;
	uint16_t type, class;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdata_off; /* where its rdata starts in the message */
};

struct hdns_msg {
	const uint8_t *buf; /* the message decoded (not owned) */
	size_t len;
	uint16_t id, flags;
	struct hdns_rr *rr[HDNS_N_SECTIONS]; /* malloc'd, count[s] each */
	uint16_t count[HDNS_N_SECTIONS];
	size_t trailing; /* bytes after the last record */
};

/*
 * Decode buf (not copied: it must outlive *ret). 0, -EBADMSG with the reason in why ("answer[0]:
 * name: pointer loop at byte 40"), or -ENOMEM. *ret is always safe to give to hdns_msg_free.
 */
int hdns_decode(const uint8_t *buf, size_t len, struct hdns_msg *ret, char *why, size_t why_len);
void hdns_msg_free(struct hdns_msg *m);

/* The first difference: where ("header.rcode", "answer[0].ttl"), and both sides as text. */
struct hdns_diff {
	char field[64];
	char *expected; /* malloc'd */
	char *got;
};

/*
 * Compare header fields, then question, answer, authority and additional record by record (an
 * OPT record field by field as edns.*), then trailing bytes. 0: no field differs (the bytes may
 * still: name compression); 1 with *ret filled; -ENOMEM.
 */
int hdns_diff(const struct hdns_msg *e, const struct hdns_msg *g, struct hdns_diff *ret);
void hdns_diff_free(struct hdns_diff *d);

/* Presentation form of a wire name ("a.example.test.", "." for the root); its length. */
size_t hdns_name_text(const uint8_t *name, size_t len, char *out, size_t out_size);

/* "a.example.test. 60 IN A 192.0.2.1" (malloc'd, NULL on ENOMEM); questions without TTL/rdata. */
char *hdns_rr_text(const struct hdns_msg *m, enum hdns_section s, size_t i);

/* "response ID 4369 (0x1111) NOERROR, fast.example.test. IN A, 1 answer, 0 authority, 0
 * additional" (malloc'd, NULL on ENOMEM). */
char *hdns_summary(const struct hdns_msg *m);

/* "SERVFAIL", "A", "IN", "QUERY"; NULL for a number without a name. */
const char *hdns_rcode_name(unsigned int rcode);
const char *hdns_type_name(unsigned int type);

/* Hex text to bytes: 0 and *ret (malloc'd) with *ret_len, or -EINVAL (odd length, not hex). */
int hdns_unhex(const char *hex, size_t n, uint8_t **ret, size_t *ret_len);

#endif
