/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DNS wire format for the proxy (SPEC.md chapter 8.2): strict, bounded parsing of queries,
 * the responses the proxy makes itself, the checks an upstream reply must pass, and the
 * presentation form of names for events. No allocation, no I/O; every read is bounds-checked
 * against the message length.
 */
#ifndef CELLREF_DNSWIRE_H
#define CELLREF_DNSWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSWIRE_HDR_LEN	     12
#define DNSWIRE_MAX_QUERY    4096 /* the reference's bound on a query (SPEC DNS limits) */
#define DNSWIRE_MAX_NAME     255  /* wire bytes including the root label */
#define DNSWIRE_MAX_LABEL    63
#define DNSWIRE_NAME_TEXT    (4 * DNSWIRE_MAX_NAME + 2) /* worst case: every byte as \DDD */
#define DNSWIRE_MAX_PTR_HOPS 16

enum dnswire_rcode {
	DNSWIRE_NOERROR = 0,
	DNSWIRE_FORMERR = 1,
	DNSWIRE_SERVFAIL = 2,
	DNSWIRE_NOTIMP = 4,
	DNSWIRE_REFUSED = 5,
};

/* What to do with a received message. */
enum dnswire_verdict {
	DNSWIRE_QUERY,	  /* a well-formed query: forward or apply policy */
	DNSWIRE_DROP,	  /* no response at all (too short, or a response) */
	DNSWIRE_BAD,	  /* answer FORMERR */
	DNSWIRE_NOT_IMPL, /* answer NOTIMP: opcode other than QUERY */
};

struct dnswire_query {
	uint16_t id;
	uint16_t flags;
	bool has_question;  /* the question parsed: qname, qtype, qclass are valid */
	uint16_t qname_len; /* wire bytes of the name, root label included */
	uint16_t qtype;
	uint16_t qclass;
	/* The question section is at offset DNSWIRE_HDR_LEN, qname_len + 4 bytes long. */
};

static inline uint16_t dnswire_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void dnswire_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t dnswire_question_len(const struct dnswire_query *q)
{
	return (uint16_t)(q->qname_len + 4);
}

/* Classify and parse one message; *q is filled as far as parsing got. */
enum dnswire_verdict dnswire_parse_query(const uint8_t *msg, size_t len, struct dnswire_query *q);

/*
 * The proxy's own response to q (FORMERR, NOTIMP, REFUSED, SERVFAIL): client's ID, QR, opcode
 * and RD copied, the question echoed when q->has_question. Returns its length (<= out_len).
 */
size_t dnswire_make_response(const uint8_t *msg, const struct dnswire_query *q, uint8_t rcode,
			     uint8_t *out, size_t out_len);

/*
 * An upstream reply is acceptable for a query sent with txid and this question (name bytes,
 * type, class) when it is a response (QR) of at least a header, with that ID, one question, and
 * a byte-identical question section.
 */
bool dnswire_reply_matches(const uint8_t *reply, size_t len, uint16_t txid, const uint8_t *question,
			   size_t question_len);

/* Presentation form of a wire name ("www.example.test.", "." for the root), RFC 1035 5.1. */
size_t dnswire_name_text(const uint8_t *name, size_t name_len, char *out, size_t out_len);

#endif
