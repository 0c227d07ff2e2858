// SPDX-License-Identifier: Apache-2.0
/*
 * cellref decode: framed flow records on stdin (u32 little-endian length, then that many bytes),
 * one JSON line per frame on stdout (SPEC.md chapter 3). Frames of any length are skipped
 * without buffering them, so a hostile length cannot make us allocate.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cellref.h"
#include "flowevt.h"
#include "flowrec.h"
#include "jw.h"
#include "util.h"

struct reader {
	int fd;
	int err;
	size_t pos, len;
	unsigned char buf[1 << 16];
};

/* Copy up to n bytes to dst (or discard them when dst is NULL); returns bytes delivered. */
static uint64_t reader_take(struct reader *r, void *dst, uint64_t n)
{
	uint64_t got = 0;

	while (got < n) {
		size_t chunk;

		if (r->pos == r->len) {
			ssize_t k;

			/* About to block: what is decoded so far goes out first (FLOW-FRM-009). */
			fflush(stdout);
			do {
				k = read(r->fd, r->buf, sizeof(r->buf));
			} while (k < 0 && errno == EINTR);
			if (k < 0) {
				r->err = -errno;
				break;
			}
			if (k == 0)
				break;
			r->pos = 0;
			r->len = (size_t)k;
		}
		chunk = r->len - r->pos;
		if (chunk > n - got)
			chunk = (size_t)(n - got);
		if (dst)
			memcpy((unsigned char *)dst + got, r->buf + r->pos, chunk);
		r->pos += chunk;
		got += chunk;
	}
	return got;
}

static void emit_line(struct jw *w)
{
	jw_append(w, "\n", 1);
	fwrite(jw_text(w), 1, w->len, stdout);
	jw_reset(w);
}

static void write_truncated(struct jw *w, uint64_t index, uint64_t expected, uint64_t got)
{
	jw_obj_open(w);
	jw_kv_bool(w, "ok", false);
	jw_kv_u64(w, "index", index);
	jw_kv_str(w, "error", "truncated_frame");
	jw_kv_u64(w, "expected", expected);
	jw_kv_u64(w, "got", got);
	jw_obj_close(w);
	emit_line(w);
}

static void usage(FILE *f)
{
	fputs("usage: cellref decode < FRAMES\n"
	      "Reads u32 little-endian length-prefixed flow records on stdin and writes one JSON\n"
	      "object per record on stdout. Exit: 0 all decoded, 1 truncated input or read error,\n"
	      "2 usage, 3 a record was rejected.\n",
	      f);
}

int cellref_decode_main(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, {} };
	static struct reader rd;
	bool rejected = false;
	uint64_t index = 0;
	struct jw w;
	int c, rc = CELLREF_EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return CELLREF_EXIT_OK;
		}
		usage(stderr);
		return CELLREF_EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "cellref: decode: unexpected argument '%s'\n", argv[optind]);
		return CELLREF_EXIT_USAGE;
	}

	rd.fd = STDIN_FILENO;
	jw_init(&w);
	for (;; index++) {
		unsigned char rec[FLOWREC_V1_SIZE];
		uint32_t le_len, len;
		struct flowrec r;
		struct flowevt e;
		uint64_t got = reader_take(&rd, &le_len, sizeof(le_len));

		if (got == 0 && !rd.err)
			break; /* clean end at a frame boundary */
		if (got < sizeof(le_len)) {
			if (!rd.err)
				write_truncated(&w, index, sizeof(le_len), got);
			rc = CELLREF_EXIT_FAILURE;
			break;
		}
		len = le32toh(le_len);
		if (len == FLOWREC_V1_SIZE) {
			got = reader_take(&rd, rec, len);
		} else {
			got = reader_take(&rd, NULL, len);
		}
		if (got < len) {
			if (!rd.err)
				write_truncated(&w, index, len, got);
			rc = CELLREF_EXIT_FAILURE;
			break;
		}

		jw_obj_open(&w);
		if (len != FLOWREC_V1_SIZE || flowrec_decode(rec, len, &r) < 0) {
			jw_kv_bool(&w, "ok", false);
			jw_kv_u64(&w, "index", index);
			jw_kv_str(&w, "error", "wrong_length");
			jw_kv_u64(&w, "got", len);
			rejected = true;
		} else {
			flowevt_from_record(&r, &e);
			jw_kv_bool(&w, "ok", true);
			jw_kv_u64(&w, "index", index);
			jw_key(&w, "record");
			jw_obj_open(&w);
			flowevt_write_record_members(&w, &r);
			jw_obj_close(&w);
			jw_key(&w, "flow");
			jw_obj_open(&w);
			flowevt_write_flow_members(&w, &e);
			jw_obj_close(&w);
		}
		jw_obj_close(&w);
		emit_line(&w);
	}
	if (jw_error(&w) && rc == CELLREF_EXIT_OK)
		rc = CELLREF_EXIT_FAILURE;
	jw_free(&w);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "cellref: decode: stdout: %s: %s\n", util_errno_name(errno),
			strerror(errno));
		return CELLREF_EXIT_FAILURE;
	}
	if (rd.err) {
		fprintf(stderr, "cellref: decode: stdin: %s: %s\n", util_errno_name(rd.err),
			strerror(-rd.err));
		return CELLREF_EXIT_FAILURE;
	}
	if (rc == CELLREF_EXIT_OK && rejected)
		rc = CELLREF_EXIT_REJECTED;
	return rc;
}
