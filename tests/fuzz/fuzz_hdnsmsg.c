// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the harness's DNS message decoder for comparisons (harness/hdnsmsg.c). The
 * input is two messages, [u16 length of the first][first][second], as a raw_hex expectation
 * compares them. Beyond "no crash, no overread": a decoded message's records lie inside it, its
 * text renders, it equals itself, and a difference always names a field with both sides.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(const struct hdns_msg *m)
{
	char text[HDNS_NAME_TEXT], *t;
	struct hdns_diff d;

	for (int s = 0; s < HDNS_N_SECTIONS; s++)
		for (size_t i = 0; i < m->count[s]; i++) {
			const struct hdns_rr *rr = &m->rr[s][i];
			size_t n = hdns_name_text(rr->name, rr->name_len, text, sizeof(text));

			if (rr->name_len == 0 || rr->name_len > HDNS_MAX_NAME || n == 0 ||
			    n != strlen(text) || text[n - 1] != '.')
				abort();
			if (s != HDNS_QD && rr->rdata_off + rr->rdlen > m->len)
				abort();
			t = hdns_rr_text(m, (enum hdns_section)s, i);
			if (!t)
				abort();
			free(t);
		}
	if (m->trailing > m->len)
		abort();
	t = hdns_summary(m);
	if (!t || !strstr(t, "ID "))
		abort();
	free(t);
	if (hdns_diff(m, m, &d) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t la = size >= 2 ? (size_t)(data[0] << 8 | data[1]) : 0, lb;
	uint8_t *a, *b;
	struct hdns_msg ma, mb;
	struct hdns_diff d;
	char why[160];
	int ra, rb;

	if (size < 2)
		return 0;
	if (la > size - 2)
		la = size - 2;
	lb = size - 2 - la;
	/* Exact-size copies, so any read past either end is caught by ASan. */
	a = malloc(la ? la : 1);
	b = malloc(lb ? lb : 1);
	if (!a || !b)
		abort();
	memcpy(a, data + 2, la);
	memcpy(b, data + 2 + la, lb);
	ra = hdns_decode(a, la, &ma, why, sizeof(why));
	if (ra < 0 && (ra != -EBADMSG || !why[0]))
		abort();
	rb = hdns_decode(b, lb, &mb, why, sizeof(why));
	if (rb < 0 && (rb != -EBADMSG || !why[0]))
		abort();
	if (ra == 0)
		check_one(&ma);
	if (rb == 0)
		check_one(&mb);
	if (ra == 0 && rb == 0) {
		int r = hdns_diff(&ma, &mb, &d);

		if (r < 0 || (r == 1 && (!d.field[0] || !d.expected || !d.got)))
			abort();
		/* Equal fields: the messages differ at most in their compression. */
		if (r == 0 && (ma.id != mb.id || ma.flags != mb.flags))
			abort();
		hdns_diff_free(&d);
	}
	hdns_msg_free(&ma);
	hdns_msg_free(&mb);
	free(a);
	free(b);
	return 0;
}
