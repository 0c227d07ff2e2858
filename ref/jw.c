// SPDX-License-Identifier: Apache-2.0
#include "jw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(struct jw *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = true;
	w->buf = malloc(256);
	if (!w->buf) {
		w->err = -ENOMEM;
		return;
	}
	w->cap = 256;
	w->buf[0] = '\0';
}

void jw_reset(struct jw *w)
{
	w->len = 0;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
	if (w->buf)
		w->buf[0] = '\0';
}

void jw_free(struct jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int jw_error(const struct jw *w)
{
	return w->err;
}

const char *jw_text(const struct jw *w)
{
	return w->buf ? w->buf : "";
}

static bool reserve(struct jw *w, size_t extra)
{
	size_t need, cap;
	char *nb;

	if (w->err)
		return false;
	need = w->len + extra + 1;
	if (need <= w->cap)
		return true;
	cap = w->cap ? w->cap : 256;
	while (cap < need)
		cap *= 2;
	nb = realloc(w->buf, cap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

void jw_append(struct jw *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static inline void putc_(struct jw *w, char c)
{
	if (w->len + 2 <= w->cap && !w->err) {
		w->buf[w->len++] = c;
		w->buf[w->len] = '\0';
		return;
	}
	jw_append(w, &c, 1);
}

/* Comma bookkeeping before any value or key. */
static void sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		putc_(w, ',');
	w->first[w->depth] = false;
}

static void open_(struct jw *w, char c)
{
	sep(w);
	putc_(w, c);
	if (w->depth + 1 >= JW_MAX_DEPTH) {
		w->err = w->err ?: -E2BIG;
		return;
	}
	w->first[++w->depth] = true;
}

static void close_(struct jw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	putc_(w, c);
}

void jw_obj_open(struct jw *w)
{
	open_(w, '{');
}

void jw_obj_close(struct jw *w)
{
	close_(w, '}');
}

void jw_arr_open(struct jw *w)
{
	open_(w, '[');
}

void jw_arr_close(struct jw *w)
{
	close_(w, ']');
}

/*
 * Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one.
 * Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629).
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static void put_escaped(struct jw *w, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	putc_(w, '"');
	while (i < n && !w->err) {
		size_t run = i;
		uint32_t cp;

		/* Fast path: a run of printable ASCII that needs no escaping goes out in one copy.
		 */
		while (run < n && s[run] >= 0x20 && s[run] < 0x7F && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			jw_append(w, (const char *)s + i, run - i);
			i = run;
			continue;
		}
		size_t len = utf8_seq(s + i, n - i, &cp);
		char esc[16];

		if (len == 0) {
			jw_append(w, "\xEF\xBF\xBD", 3); /* U+FFFD for each invalid byte */
			i++;
			continue;
		}
		switch (cp) {
		case '"':
			jw_append(w, "\\\"", 2);
			break;
		case '\\':
			jw_append(w, "\\\\", 2);
			break;
		case '\n':
			jw_append(w, "\\n", 2);
			break;
		case '\r':
			jw_append(w, "\\r", 2);
			break;
		case '\t':
			jw_append(w, "\\t", 2);
			break;
		default:
			/* Control bytes, DEL and the JavaScript line separators go out escaped. */
			if (cp < 0x20 || cp == 0x7F || cp == 0x2028 || cp == 0x2029) {
				snprintf(esc, sizeof(esc), "\\u%04" PRIx32, cp);
				jw_append(w, esc, 6);
			} else {
				jw_append(w, (const char *)s + i, len);
			}
		}
		i += len;
	}
	putc_(w, '"');
}

void jw_key(struct jw *w, const char *key)
{
	sep(w);
	put_escaped(w, key, strlen(key));
	putc_(w, ':');
	w->after_key = true;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	sep(w);
	put_escaped(w, s, n);
}

void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	jw_strn(w, s, strlen(s));
}

static void put_num(struct jw *w, const char *fmt_out)
{
	sep(w);
	jw_append(w, fmt_out, strlen(fmt_out));
}

void jw_u64(struct jw *w, uint64_t v)
{
	char b[24], *p = b + sizeof(b) - 1;

	/* By hand: counters are on the hot path of every event, snprintf is not cheap. */
	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_num(w, p);
}

void jw_i64(struct jw *w, int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRId64, v);
	put_num(w, b);
}

void jw_bool(struct jw *w, bool v)
{
	put_num(w, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	put_num(w, "null");
}

void jw_raw(struct jw *w, const char *json)
{
	put_num(w, json);
}

void jw_kv_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kv_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	jw_u64(w, v);
}

void jw_kv_i64(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_i64(w, v);
}

void jw_kv_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}
