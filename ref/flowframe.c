// SPDX-License-Identifier: Apache-2.0
#include "flowframe.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "flowevt.h"
#include "flowrec.h"
#include "jw.h"

struct reader {
	int fd;
	FILE *out; /* flushed before every blocking read */
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

			/*
			 * About to block: what is decoded so far goes out first (FLOW-FRM-009;
			 * decode.output_buffered is its negative control).
			 */
			if (!FAULT("decode.output_buffered"))
				fflush(r->out);
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

static void emit_line(struct jw *w, FILE *out)
{
	jw_append(w, "\n", 1);
	fwrite(jw_text(w), 1, w->len, out);
	jw_reset(w);
}

static void write_truncated(struct jw *w, FILE *out, uint64_t index, uint64_t expected,
			    uint64_t got)
{
	jw_obj_open(w);
	jw_kv_bool(w, "ok", false);
	jw_kv_u64(w, "index", index);
	jw_kv_str(w, "error", "truncated_frame");
	jw_kv_u64(w, "expected", expected);
	jw_kv_u64(w, "got", got);
	jw_obj_close(w);
	emit_line(w, out);
}

/*
 * Negative controls (ref/fault.h), each breaking one decoder rule; the monitor, which shares
 * flowrec and flowevt, is untouched because they act here only. Empty in a normal build.
 */
static bool fault_pad_nonzero(const unsigned char *rec, uint32_t len)
{
	static const unsigned char zero[7];

	if (len == FLOWREC_V2_SIZE)
		return rec[offsetof(struct flowrec_v2, pad0)] != 0;
	return memcmp(rec + offsetof(struct flowrec_v1, pad0), zero, 3) != 0 ||
	       memcmp(rec + offsetof(struct flowrec_v1, pad1), zero, 7) != 0;
}

/* Whether a frame of len bytes is rejected although the contract decodes it, or the reverse. */
static bool fault_length(uint32_t len)
{
	if (len == FLOWREC_V2_SIZE && FAULT("decode.v2_rejected"))
		return true; /* a v1-only decoder */
	return false;
}

int flowframe_decode_stream(int fd, FILE *out, uint64_t *ret_frames)
{
	static __thread struct reader rd; /* 64 KiB: not on the stack */
	bool rejected = false;
	uint64_t index = 0;
	struct jw w;
	int rc = FLOWFRAME_OK;

	memset(&rd, 0, offsetof(struct reader, buf));
	rd.fd = fd;
	rd.out = out;
	jw_init(&w);
	for (;; index++) {
		unsigned char rec[FLOWREC_V2_SIZE];
		uint32_t le_len, len, keep;
		struct flowrec r;
		struct flowevt e;
		bool stop = false;
		uint64_t got = reader_take(&rd, &le_len, sizeof(le_len));

		if (got == 0 && !rd.err)
			break; /* clean end at a frame boundary */
		if (got < sizeof(le_len)) {
			if (!rd.err)
				write_truncated(&w, out, index, sizeof(le_len), got);
			rc = FLOWFRAME_TRUNCATED;
			break;
		}
		len = le32toh(le_len);
		/*
		 * Only a body of a record length is kept; any other is skipped unbuffered.
		 * decode.v2_prefix: a longer body keeps its first 64 bytes, decoded as v2.
		 */
		keep = len == FLOWREC_V1_SIZE || len == FLOWREC_V2_SIZE ? len : 0;
		if (len > FLOWREC_V2_SIZE && FAULT("decode.v2_prefix"))
			keep = FLOWREC_V2_SIZE;
		got = reader_take(&rd, keep ? rec : NULL, keep);
		if (got == keep && len > keep)
			got += reader_take(&rd, NULL, len - keep);
		if (got < len) {
			if (!rd.err)
				write_truncated(&w, out, index, len, got);
			rc = FLOWFRAME_TRUNCATED;
			break;
		}

		jw_obj_open(&w);
		if (flowrec_decode(rec, keep, &r) < 0 || fault_length(len) ||
		    (FAULT("decode.pad_checked") && fault_pad_nonzero(rec, len))) {
			jw_kv_bool(&w, "ok", false);
			jw_kv_u64(&w, "index", index);
			jw_kv_str(&w, "error", "wrong_length");
			jw_kv_u64(&w, "got", len);
			rejected = true;
			stop = FAULT("decode.wrong_length_resync");
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
		emit_line(&w, out);
		if (stop) {
			index++; /* the frame just written counts */
			break;
		}
	}
	if (ret_frames)
		*ret_frames = index;
	if (!rd.err && jw_error(&w))
		rd.err = jw_error(&w);
	jw_free(&w);
	if (rd.err)
		return rd.err;
	return rc == FLOWFRAME_OK && rejected ? FLOWFRAME_REJECTED : rc;
}
