// SPDX-License-Identifier: Apache-2.0
#include "dnswire.h"

#include <string.h>

#include "fault.h"

#define FLAG_QR	    0x8000
#define FLAG_RD	    0x0100
#define OPCODE(f)   (((f) >> 11) & 0xF)
#define OPCODE_MASK 0x7800

/*
 * A name in the question: plain labels only (no compression pointers, no extended label
 * types), each 1..63 bytes, at most 255 bytes in all. Returns its wire length or 0.
 */
static size_t question_name(const uint8_t *msg, size_t len, size_t off)
{
	size_t start = off;

	for (;;) {
		uint8_t l;

		if (off >= len)
			return 0;
		l = msg[off];
		if (l == 0)
			break;
		/* dns.question_pointer: a pointer ends the question's name (as in a record). */
		if (l >= 0xC0 && FAULT("dns.question_pointer"))
			return off + 2 <= len ? off + 2 - start : 0;
		/* dns.label_over_63: length bytes 0x40 to 0xBF are taken as label lengths. */
		if (l > DNSWIRE_MAX_LABEL && !(l < 0xC0 && FAULT("dns.label_over_63")))
			return 0; /* 0x40/0x80 reserved, 0xC0 a pointer */
		off += 1u + l;
		if (off - start >= DNSWIRE_MAX_NAME && !FAULT("dns.name_over_255"))
			return 0;
	}
	off++;
	return off - start <= DNSWIRE_MAX_NAME || FAULT("dns.name_over_255") ? off - start : 0;
}

/*
 * A name in a resource record of the additional section: labels, ending in the root or in a
 * pointer. A pointer must point strictly before where it stands (so chains end) and at most
 * DNSWIRE_MAX_PTR_HOPS are followed. Returns the bytes the name takes at off, or 0.
 */
static size_t rr_name(const uint8_t *msg, size_t len, size_t off)
{
	size_t start = off, consumed = 0, total = 0, pos = off;
	int hops = 0;

	for (;;) {
		uint8_t l;

		if (pos >= len)
			return 0;
		l = msg[pos];
		if ((l & 0xC0) == 0xC0) {
			size_t target;

			if (pos + 1 >= len)
				return 0;
			target = (size_t)((l & 0x3F) << 8 | msg[pos + 1]);
			if (!consumed)
				consumed = pos + 2 - start;
			/* dns.pointer_unchecked: a pointer ends the name, its target unread. */
			if (FAULT("dns.pointer_unchecked"))
				return consumed;
			/* dns.pointer_hops_unbounded: any number of (backward) pointers is
			 * followed. */
			if (target >= pos ||
			    (++hops > DNSWIRE_MAX_PTR_HOPS && !FAULT("dns.pointer_hops_unbounded")))
				return 0;
			pos = target;
			continue;
		}
		if (l & 0xC0)
			return 0;
		if (l == 0)
			break;
		total += 1u + l;
		if (total >= DNSWIRE_MAX_NAME)
			return 0;
		pos += 1u + l;
	}
	return consumed ? consumed : pos + 1 - start;
}

enum dnswire_verdict dnswire_parse_query(const uint8_t *msg, size_t len, struct dnswire_query *q)
{
	uint16_t qd, an, ns, ar;
	unsigned opts = 0;
	bool truncated = false;
	size_t off, n;

	memset(q, 0, sizeof(*q));
	if (len < DNSWIRE_HDR_LEN)
		return DNSWIRE_DROP;
	q->id = dnswire_get16(msg);
	q->flags = dnswire_get16(msg + 2);
	if ((q->flags & FLAG_QR) && !FAULT("dns.qr_accepted"))
		return DNSWIRE_DROP; /* never answer a response: that is how loops start */
	qd = dnswire_get16(msg + 4);
	an = dnswire_get16(msg + 6);
	ns = dnswire_get16(msg + 8);
	ar = dnswire_get16(msg + 10);

	/* The question comes first even for NOTIMP, so that it can be echoed. */
	/* Only the first DNSWIRE_MAX_QUERY bytes are looked at, even of a larger message. */
	/* dns.qdcount_unchecked: the first question is read whatever QDCOUNT says. */
	if (qd == 1 || FAULT("dns.qdcount_unchecked")) {
		size_t plen = len > DNSWIRE_MAX_QUERY ? DNSWIRE_MAX_QUERY : len;

		n = question_name(msg, plen, DNSWIRE_HDR_LEN);
		if (n && DNSWIRE_HDR_LEN + n + 4 <= plen) {
			q->qname_len = (uint16_t)n;
			q->qtype = dnswire_get16(msg + DNSWIRE_HDR_LEN + n);
			q->qclass = dnswire_get16(msg + DNSWIRE_HDR_LEN + n + 2);
			q->has_question = true;
		}
		truncated = n && !q->has_question;
	}
	/* dns.counts_before_opcode: step 4 is checked before step 3. */
	if (FAULT("dns.counts_before_opcode") && (qd != 1 || an != 0 || ns != 0)) {
		q->has_question = false;
		return DNSWIRE_BAD;
	}
	if (OPCODE(q->flags) != 0 && !FAULT("dns.opcode_ignored"))
		return DNSWIRE_NOT_IMPL;
	/* dns.ancount_unchecked: ANCOUNT and NSCOUNT are not looked at. */
	if (FAULT("dns.ancount_unchecked"))
		an = ns = 0;
	if ((qd != 1 && !FAULT("dns.qdcount_unchecked")) || an != 0 || ns != 0) {
		q->has_question = false; /* a malformed header: echo nothing */
		return DNSWIRE_BAD;
	}
	/* dns.truncated_question_dropped: QTYPE or QCLASS cut short gets no response. */
	if (truncated && FAULT("dns.truncated_question_dropped"))
		return DNSWIRE_DROP;
	if (q->has_question && len > DNSWIRE_MAX_QUERY && FAULT("dns.oversize_dropped"))
		return DNSWIRE_DROP; /* the fault: no FORMERR for a message over 4096 bytes */
	if (!q->has_question || len > DNSWIRE_MAX_QUERY)
		return DNSWIRE_BAD; /* too large: FORMERR, echoing the question when it parsed */

	/* Exactly ARCOUNT records follow (EDNS OPT, TSIG), then the message ends. */
	off = DNSWIRE_HDR_LEN + dnswire_question_len(q);
	for (uint16_t i = 0; i < ar; i++) {
		uint16_t rdlen;

		n = rr_name(msg, len, off);
		/* dns.additional_lenient: a record that does not fit ends the section, accepted. */
		if ((!n || off + n + 10 > len) && FAULT("dns.additional_lenient")) {
			off = len;
			break;
		}
		if (!n || off + n + 10 > len)
			return DNSWIRE_BAD;
		off += n;
		/* dns.odd_query_refused counts the OPT records (TYPE 41). */
		opts += dnswire_get16(msg + off) == 41;
		rdlen = dnswire_get16(msg + off + 8);
		off += 10;
		if (off + rdlen > len && FAULT("dns.additional_lenient")) {
			off = len;
			break;
		}
		if (off + rdlen > len)
			return DNSWIRE_BAD;
		off += rdlen;
	}
	if (off != len && !FAULT("dns.trailing_accepted"))
		return DNSWIRE_BAD; /* trailing garbage */
	/* dns.z_bit_refused: a query with the reserved Z bit set gets FORMERR. */
	if ((q->flags & 0x0040) && FAULT("dns.z_bit_refused"))
		return DNSWIRE_BAD;
	/* dns.odd_query_refused: QCLASS other than IN, a header RCODE or two OPTs get FORMERR. */
	if ((q->qclass != 1 || (q->flags & 0xF) != 0 || opts > 1) && FAULT("dns.odd_query_refused"))
		return DNSWIRE_BAD;
	return DNSWIRE_QUERY;
}

size_t dnswire_make_response(const uint8_t *msg, const struct dnswire_query *q, uint8_t rcode,
			     uint8_t *out, size_t out_len)
{
	size_t qlen = q->has_question ? dnswire_question_len(q) : 0;
	uint16_t flags = (uint16_t)(FLAG_QR | (q->flags & (OPCODE_MASK | FLAG_RD)) | (rcode & 0xF));

	/* dns.response_bits_copied: AA, TC, RA, Z, AD and CD of the query are kept too. */
	if (FAULT("dns.response_bits_copied"))
		flags |= q->flags & 0x06F0;

	if (out_len < DNSWIRE_HDR_LEN + qlen)
		return 0;
	memset(out, 0, DNSWIRE_HDR_LEN);
	dnswire_put16(out, q->id);
	dnswire_put16(out + 2, flags);
	if (qlen) {
		dnswire_put16(out + 4, 1);
		memcpy(out + DNSWIRE_HDR_LEN, msg + DNSWIRE_HDR_LEN, qlen);
	}
	return DNSWIRE_HDR_LEN + qlen;
}

bool dnswire_reply_matches(const uint8_t *reply, size_t len, uint16_t txid, const uint8_t *question,
			   size_t question_len)
{
	if (len < DNSWIRE_HDR_LEN + question_len)
		return false;
	if (dnswire_get16(reply) != txid || !(dnswire_get16(reply + 2) & FLAG_QR) ||
	    dnswire_get16(reply + 4) != 1)
		return false;
	return memcmp(reply + DNSWIRE_HDR_LEN, question, question_len) == 0;
}

size_t dnswire_name_text(const uint8_t *name, size_t name_len, char *out, size_t out_len)
{
	size_t off = 0, o = 0;

	if (out_len < DNSWIRE_NAME_TEXT)
		return 0;
	while (off < name_len && name[off]) {
		uint8_t l = name[off++];

		for (uint8_t i = 0; i < l && off < name_len; i++, off++) {
			uint8_t c = name[off];

			if (c == '.' || c == '\\') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c >= 0x21 && c <= 0x7E) {
				out[o++] = (char)c;
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
		out[o++] = '.';
	}
	if (o == 0)
		out[o++] = '.'; /* the root */
	out[o] = '\0';
	return o;
}
