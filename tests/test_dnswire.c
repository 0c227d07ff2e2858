// SPDX-License-Identifier: Apache-2.0
/*
 * DNS wire handling (SPEC.md 8.2, 8.4): the parser against the corpus in fixtures/dns/ (whose
 * expectations were written from SPEC.md, not from this parser), the proxy's own responses,
 * the reply checks and the presentation of names.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnswire.h"
#include "tap.h"
#include "util.h"

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex) / 2;

	if (n > max)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return (size_t)-1;
		out[i] = (uint8_t)v;
	}
	return n;
}

static const char *reason_of(enum dnswire_verdict v)
{
	return v == DNSWIRE_NOT_IMPL ? "unsupported_opcode" : "malformed_query";
}

TEST(corpus_from_the_spec)
{
	char path[4096];
	const char *src = getenv("CELLCHECK_SRCDIR");
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int cases = 0;
	static uint8_t msg[70000];

	if (!src)
		tap_skip("CELLCHECK_SRCDIR not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/fixtures/dns/queries.jsonl", src);
	f = fopen(path, "re");
	if (!ASSERT_TRUE(f))
		return;
	while (getline(&line, &cap, f) > 0) {
		json_t *c = json_loads(line, 0, NULL), *ex = json_object_get(c, "expect");
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *outcome = json_string_value(json_object_get(ex, "outcome"));
		size_t len =
			unhex(json_string_value(json_object_get(c, "hex")) ?: "", msg, sizeof(msg));
		struct dnswire_query q;
		enum dnswire_verdict v;
		bool ok = true;

		if (!ASSERT_TRUE(c && name && outcome && len != (size_t)-1)) {
			json_decref(c);
			continue;
		}
		cases++;
		v = dnswire_parse_query(msg, len, &q);
		if (strcmp(outcome, "query") == 0) {
			char text[DNSWIRE_NAME_TEXT];

			ok = ASSERT_EQ(v, DNSWIRE_QUERY) && ASSERT_TRUE(q.has_question);
			if (ok) {
				dnswire_name_text(msg + DNSWIRE_HDR_LEN, q.qname_len, text,
						  sizeof(text));
				ok = ASSERT_STREQ(text, json_string_value(
								json_object_get(ex, "qname"))) &&
				     ASSERT_EQ(q.qtype,
					       json_integer_value(json_object_get(ex, "qtype"))) &&
				     ASSERT_EQ(q.qclass,
					       json_integer_value(json_object_get(ex, "qclass")));
			}
		} else if (strcmp(outcome, "drop") == 0) {
			ok = ASSERT_EQ(v, DNSWIRE_DROP);
		} else {
			uint8_t out[600];
			int rcode = (int)json_integer_value(json_object_get(ex, "rcode"));
			bool echo = json_is_true(json_object_get(ex, "echo_question"));
			const char *reason = json_string_value(json_object_get(ex, "reason"));
			size_t n;

			ok = ASSERT_TRUE(v == DNSWIRE_BAD || v == DNSWIRE_NOT_IMPL) &&
			     ASSERT_EQ(v == DNSWIRE_NOT_IMPL ? 4 : 1, rcode) &&
			     ASSERT_STREQ(reason_of(v), reason);
			if (ok) {
				n = dnswire_make_response(msg, &q, (uint8_t)rcode, out,
							  sizeof(out));
				ok = ASSERT_EQ(n, echo ? DNSWIRE_HDR_LEN + q.qname_len + 4u
						       : (unsigned)DNSWIRE_HDR_LEN) &&
				     ASSERT_EQ(out[3] & 0xF, rcode) && ASSERT_TRUE(out[2] & 0x80) &&
				     ASSERT_EQ(dnswire_get16(out), dnswire_get16(msg)) &&
				     ASSERT_EQ(dnswire_get16(out + 4), echo ? 1 : 0);
			}
		}
		if (!ok)
			tap_diag("corpus case %s", name);
		json_decref(c);
	}
	free(line);
	fclose(f);
	tap_diag("%d corpus cases", cases);
	ASSERT_GT(cases, 30);
}

/* www.example.test A IN, RD, id 0x1234 */
static const uint8_t www_a[] = { 0x12, 0x34, 0x01, 0x00, 0,   1,   0,	0,   0,	  0,   0,   0,
				 3,    'w',  'w',  'w',	 7,   'e', 'x', 'a', 'm', 'p', 'l', 'e',
				 4,    't',  'e',  's',	 't', 0,   0,	1,   0,	  1 };

TEST(own_responses_copy_id_opcode_rd_and_echo_the_question)
{
	struct dnswire_query q;
	uint8_t out[600];
	size_t n;

	if (!ASSERT_EQ(dnswire_parse_query(www_a, sizeof(www_a), &q), DNSWIRE_QUERY))
		return;
	n = dnswire_make_response(www_a, &q, DNSWIRE_REFUSED, out, sizeof(out));
	ASSERT_EQ(n, sizeof(www_a));
	ASSERT_EQ(dnswire_get16(out), 0x1234);
	ASSERT_EQ(dnswire_get16(out + 2), 0x8105); /* QR, RD, REFUSED; RA clear */
	ASSERT_EQ(dnswire_get16(out + 4), 1);
	ASSERT_EQ(dnswire_get16(out + 6), 0);
	ASSERT_TRUE(memcmp(out + 12, www_a + 12, sizeof(www_a) - 12) == 0);
	ASSERT_EQ(dnswire_make_response(www_a, &q, DNSWIRE_REFUSED, out, 20), 0);
}

TEST(reply_checks_id_qr_and_exact_question)
{
	uint8_t r[sizeof(www_a)];
	const uint8_t *question = www_a + 12;
	size_t qlen = sizeof(www_a) - 12;

	memcpy(r, www_a, sizeof(r));
	r[2] |= 0x80;
	ASSERT_TRUE(dnswire_reply_matches(r, sizeof(r), 0x1234, question, qlen));
	ASSERT_FALSE(dnswire_reply_matches(r, sizeof(r), 0x1235, question, qlen));
	ASSERT_FALSE(dnswire_reply_matches(r, sizeof(r) - 1, 0x1234, question, qlen));
	r[13] = 'W'; /* case differs: not the question we asked (0x20 bits are ours) */
	ASSERT_FALSE(dnswire_reply_matches(r, sizeof(r), 0x1234, question, qlen));
	r[13] = 'w';
	r[2] &= 0x7F; /* not a response */
	ASSERT_FALSE(dnswire_reply_matches(r, sizeof(r), 0x1234, question, qlen));
	r[2] |= 0x80;
	r[5] = 2; /* two questions */
	ASSERT_FALSE(dnswire_reply_matches(r, sizeof(r), 0x1234, question, qlen));
}

TEST(names_render_in_presentation_form)
{
	static const uint8_t odd[] = { 4, 'a', '.', '\\', ' ', 3, 0xFF, '"', 'Z', 0 };
	static const uint8_t root[] = { 0 };
	char t[DNSWIRE_NAME_TEXT];

	dnswire_name_text(www_a + 12, 18, t, sizeof(t));
	ASSERT_STREQ(t, "www.example.test.");
	dnswire_name_text(root, 1, t, sizeof(t));
	ASSERT_STREQ(t, ".");
	dnswire_name_text(odd, sizeof(odd), t, sizeof(t));
	ASSERT_STREQ(t, "a\\.\\\\\\032.\\255\"Z.");
	ASSERT_EQ(dnswire_name_text(odd, sizeof(odd), t, 10), 0);
}

TEST(parser_never_reads_past_the_end)
{
	/* Every prefix of a valid query with EDNS: each must be handled within its length. */
	static const uint8_t q[] = { 0xab, 0xcd, 0x01, 0x00, 0, 1, 0,	 0, 0, 0,
				     0,	   1,	 1,    'a',  0, 0, 1,	 0, 1, 0,
				     0,	   41,	 0x10, 0,    0, 0, 0x80, 0, 0, 0 };
	struct dnswire_query pq;

	for (size_t n = 0; n < sizeof(q); n++) {
		uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any overread */

		memcpy(copy, q, n);
		ASSERT_TRUE(dnswire_parse_query(copy, n, &pq) != DNSWIRE_QUERY);
		free(copy);
	}
	ASSERT_EQ(dnswire_parse_query(q, sizeof(q), &pq), DNSWIRE_QUERY);
}
