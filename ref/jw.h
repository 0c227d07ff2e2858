/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming JSON writer into a growable buffer (the iproute2 json_writer shape). It exists
 * because events carry full-range u64 counters that jansson cannot represent, and because every
 * string the workload can influence must come out as valid, escaped UTF-8 whatever its bytes.
 *
 * Errors are sticky: after an allocation failure every call is a no-op and jw_error() says so.
 */
#ifndef CELLREF_JW_H
#define CELLREF_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 32

struct jw {
	char *buf;
	size_t len;
	size_t cap;
	int err;
	int depth;
	bool first[JW_MAX_DEPTH]; /* no element written yet at this depth */
	bool after_key;
};

void jw_init(struct jw *w);
void jw_reset(struct jw *w);
void jw_free(struct jw *w);
int jw_error(const struct jw *w);
/* NUL-terminated text written so far (never NULL after jw_init). */
const char *jw_text(const struct jw *w);

void jw_obj_open(struct jw *w);
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w);
void jw_arr_close(struct jw *w);
void jw_key(struct jw *w, const char *key);

/*
 * Strings are escaped; invalid UTF-8 bytes become U+FFFD, so any byte string is accepted.
 * jw_str(NULL) writes null; event producers never pass NULL (SPEC EVT-ENV-015).
 */
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* Splice text that already is one JSON value. */
void jw_raw(struct jw *w, const char *json);
/* Append bytes outside of any value (the line terminator). */
void jw_append(struct jw *w, const char *s, size_t n);

void jw_kv_str(struct jw *w, const char *key, const char *s);
void jw_kv_u64(struct jw *w, const char *key, uint64_t v);
void jw_kv_i64(struct jw *w, const char *key, int64_t v);
void jw_kv_bool(struct jw *w, const char *key, bool v);

#endif
