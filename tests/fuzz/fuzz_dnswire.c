// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: any bytes as a DNS query (SPEC.md 8.2). Beyond "no crash, no overread":
 * verdicts are consistent with what was parsed, responses stay within their bounds, and the
 * presentation of a parsed name round-trips its length limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnspol.h"
#include "dnswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dnspol *pol;
	uint8_t *msg = malloc(size ? size : 1), out[DNSWIRE_HDR_LEN + DNSWIRE_MAX_NAME + 4];
	char text[DNSWIRE_NAME_TEXT];
	struct dnswire_query q;
	enum dnswire_verdict v;
	size_t n;

	if (!pol && (dnspol_new(&pol) < 0 || dnspol_allow(pol, "example.test") < 0))
		abort();
	/* An exact-size copy, so any read past the end is caught by ASan. */
	memcpy(msg, data, size);
	v = dnswire_parse_query(msg, size, &q);
	if (v == DNSWIRE_QUERY && (!q.has_question || size < DNSWIRE_HDR_LEN + q.qname_len + 4u))
		abort();
	if (q.has_question) {
		if (q.qname_len == 0 || q.qname_len > DNSWIRE_MAX_NAME)
			abort();
		n = dnswire_name_text(msg + DNSWIRE_HDR_LEN, q.qname_len, text, sizeof(text));
		if (n == 0 || n != strlen(text) || text[n - 1] != '.')
			abort();
		(void)dnspol_allows(pol, msg + DNSWIRE_HDR_LEN, q.qname_len);
	}
	if (v == DNSWIRE_BAD || v == DNSWIRE_NOT_IMPL) {
		n = dnswire_make_response(msg, &q, v == DNSWIRE_BAD ? 1 : 4, out, sizeof(out));
		if (n < DNSWIRE_HDR_LEN || !(out[2] & 0x80))
			abort();
	}
	free(msg);
	return 0;
}
