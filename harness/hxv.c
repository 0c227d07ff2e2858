// SPDX-License-Identifier: Apache-2.0
/*
 * The strict JSON reader and its values (hxv.h): a recursive descent over a buffer that need
 * not be NUL-terminated, into an arena; objects sorted by key so lookups are a binary search
 * and a duplicate member is found while sorting.
 */
#include "hxv.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void *hxv_arena_alloc(struct hxv_arena *a, size_t n)
{
	struct hxv_ablk *b = a->head;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 65536 ? n : 65536;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

char *hxv_arena_strndup(struct hxv_arena *a, const char *s, size_t n)
{
	char *p = hxv_arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void hxv_arena_free(struct hxv_arena *a)
{
	while (a->head) {
		struct hxv_ablk *n = a->head->next;

		free(a->head);
		a->head = n;
	}
}

int hxv_key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);

	return r ? r : (an > bn) - (an < bn);
}

static int mem_cmp(const void *x, const void *y)
{
	const struct hxv_mem *a = x, *b = y;

	return hxv_key_cmp(a->key, a->klen, b->key, b->klen);
}

const struct hxv *hxv_get(const struct hxv *o, const char *key, size_t klen)
{
	size_t lo = 0, hi;

	if (!o || o->t != HXV_OBJ)
		return NULL;
	hi = o->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = hxv_key_cmp(o->mem[mid].key, o->mem[mid].klen, key, klen);

		if (c == 0)
			return &o->mem[mid].v;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Dotted path: object members, or array indexes where a segment is all digits. */
const struct hxv *hxv_path(const struct hxv *v, const char *path)
{
	while (v && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (v->t == HXV_ARR && n > 0 && strspn(path, "0123456789") >= n) {
			unsigned long long i;
			char idx[24];

			if (n >= sizeof(idx))
				return NULL;
			memcpy(idx, path, n);
			idx[n] = '\0';
			if (util_parse_u64(idx, 0, SIZE_MAX, &i) < 0 || i >= v->n)
				return NULL;
			v = &v->items[i];
		} else {
			v = hxv_get(v, path, n);
		}
		path += n + (dot != NULL);
	}
	return v;
}

/* Length of the valid UTF-8 sequence (RFC 3629) at p, within n bytes; 0 if invalid. */
size_t hxv_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0)
		len = 2, cp = p[0] & 0x1F, min = 0x80;
	else if ((p[0] & 0xF0) == 0xE0)
		len = 3, cp = p[0] & 0x0F, min = 0x800;
	else if ((p[0] & 0xF8) == 0xF0)
		len = 4, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Strict RFC 8259 reader over a buffer that need not be NUL-terminated. */
struct jp {
	const char *start, *p, *end;
	struct hxv_arena *a;
	int depth;
	char err[96];
};

static int jp_fail(struct jp *j, const char *what)
{
	snprintf(j->err, sizeof(j->err), "%s at byte %zu", what, (size_t)(j->p - j->start));
	return -EBADMSG;
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_hex4(struct jp *j, const char *p, uint32_t *ret)
{
	uint32_t v = 0;

	if (j->end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v << 4 | (uint32_t)h;
	}
	*ret = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* At the opening quote. Escapes only shrink, so the raw length bounds the decoded one. */
static int jp_string(struct jp *j, const char **ret, size_t *ret_n)
{
	const char *q = j->p + 1, *close;
	char *out;
	size_t o = 0;

	for (close = q; close < j->end && *close != '"'; close++)
		if (*close == '\\' && ++close == j->end)
			break;
	if (close >= j->end)
		return jp_fail(j, "unterminated string");
	out = hxv_arena_alloc(j->a, (size_t)(close - q) + 1);
	if (!out)
		return -ENOMEM;
	while (q < close) {
		unsigned char c = (unsigned char)*q;

		j->p = q;
		if (c == '\\') {
			uint32_t cp, lo;

			switch (q[1]) {
			case '"':
			case '\\':
			case '/':
				out[o++] = q[1];
				q += 2;
				continue;
			case 'b':
				out[o++] = '\b';
				q += 2;
				continue;
			case 'f':
				out[o++] = '\f';
				q += 2;
				continue;
			case 'n':
				out[o++] = '\n';
				q += 2;
				continue;
			case 'r':
				out[o++] = '\r';
				q += 2;
				continue;
			case 't':
				out[o++] = '\t';
				q += 2;
				continue;
			case 'u':
				if (jp_hex4(j, q + 2, &cp) < 0)
					return jp_fail(j, "bad \\u escape");
				q += 6;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return jp_fail(j, "lone low surrogate");
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					if (close - q < 6 || q[0] != '\\' || q[1] != 'u' ||
					    jp_hex4(j, q + 2, &lo) < 0 || lo < 0xDC00 ||
					    lo > 0xDFFF)
						return jp_fail(j, "lone high surrogate");
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					q += 6;
				}
				o += put_utf8(out + o, cp);
				continue;
			default:
				return jp_fail(j, "bad escape");
			}
		}
		if (c < 0x20)
			return jp_fail(j, "control character in string");
		{
			size_t l = hxv_utf8_len((const unsigned char *)q, (size_t)(close - q));

			if (l == 0)
				return jp_fail(j, "invalid UTF-8");
			memcpy(out + o, q, l);
			o += l;
			q += l;
		}
	}
	out[o] = '\0';
	j->p = close + 1;
	*ret = out;
	*ret_n = o;
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int jp_number(struct jp *j, struct hxv *v)
{
	const char *s = j->p, *p = s;
	bool integer = true;

	if (p < j->end && *p == '-')
		p++;
	if (p >= j->end || !is_digit(*p))
		return jp_fail(j, "bad number");
	if (*p == '0')
		p++;
	else
		while (p < j->end && is_digit(*p))
			p++;
	if (p < j->end && *p == '.') {
		integer = false;
		if (++p >= j->end || !is_digit(*p))
			return jp_fail(j, "bad number");
		while (p < j->end && is_digit(*p))
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		integer = false;
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || !is_digit(*p))
			return jp_fail(j, "bad number");
		while (p < j->end && is_digit(*p))
			p++;
	}
	v->t = integer ? HXV_INT : HXV_REAL;
	v->n = (size_t)(p - s);
	v->s = hxv_arena_strndup(j->a, s, v->n);
	j->p = p;
	return v->s ? 0 : -ENOMEM;
}

static int jp_value(struct jp *j, struct hxv *v);

static int jp_container(struct jp *j, struct hxv *v, bool obj)
{
	struct hxv_mem *mv = NULL;
	struct hxv *iv = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (++j->depth > HXV_DEPTH)
		return jp_fail(j, "nested too deep");
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
		j->p++;
		goto done;
	}
	for (;;) {
		struct hxv_mem m = { 0 };

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			void *np =
				obj ? realloc(mv, nc * sizeof(*mv)) : realloc(iv, nc * sizeof(*iv));

			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			if (obj)
				mv = np;
			else
				iv = np;
			cap = nc;
		}
		jp_ws(j);
		if (obj) {
			if (j->p >= j->end || *j->p != '"') {
				r = jp_fail(j, "expected a member name");
				goto out;
			}
			r = jp_string(j, &m.key, &m.klen);
			if (r < 0)
				goto out;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				r = jp_fail(j, "expected ':'");
				goto out;
			}
			j->p++;
		}
		r = jp_value(j, &m.v);
		if (r < 0)
			goto out;
		if (obj)
			mv[n++] = m;
		else
			iv[n++] = m.v;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
			j->p++;
			break;
		}
		r = jp_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		goto out;
	}
done:
	v->t = obj ? HXV_OBJ : HXV_ARR;
	v->n = n;
	if (n) {
		size_t sz = obj ? sizeof(*mv) : sizeof(*iv);
		void *dst = hxv_arena_alloc(j->a, n * sz);

		if (!dst) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(dst, obj ? (void *)mv : (void *)iv, n * sz);
		if (obj) {
			v->mem = dst;
			/* Sorted: member order is free, and duplicates (EVT-ENV-003) sit side by
			 * side. */
			qsort(v->mem, n, sizeof(*mv), mem_cmp);
			for (size_t i = 1; i < n; i++)
				if (mem_cmp(&v->mem[i - 1], &v->mem[i]) == 0) {
					r = jp_fail(j, "duplicate member name");
					goto out;
				}
		} else {
			v->items = dst;
		}
	}
	j->depth--;
out:
	free(mv);
	free(iv);
	return r;
}

static int jp_lit(struct jp *j, const char *lit, enum hxv_type t, struct hxv *v)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return jp_fail(j, "unexpected character");
	j->p += n;
	v->t = t;
	return 0;
}

static int jp_value(struct jp *j, struct hxv *v)
{
	memset(v, 0, sizeof(*v));
	jp_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, "unexpected end");
	switch (*j->p) {
	case '{':
		return jp_container(j, v, true);
	case '[':
		return jp_container(j, v, false);
	case '"':
		v->t = HXV_STR;
		return jp_string(j, &v->s, &v->n);
	case 't':
		return jp_lit(j, "true", HXV_TRUE, v);
	case 'f':
		return jp_lit(j, "false", HXV_FALSE, v);
	case 'n':
		return jp_lit(j, "null", HXV_NULL, v);
	default:
		return jp_number(j, v);
	}
}

/* One whole JSON text. -EBADMSG with why[] set, or -ENOMEM. */
int hxv_parse(struct hxv_arena *a, const char *s, size_t n, struct hxv *v, char *why,
	      size_t why_len)
{
	struct jp j = { .start = s, .p = s, .end = s + n, .a = a };
	int r;

	r = jp_value(&j, v);
	if (r == 0) {
		jp_ws(&j);
		if (j.p != j.end)
			r = jp_fail(&j, "trailing data");
	}
	if (r == -EBADMSG)
		snprintf(why, why_len, "%s", j.err);
	return r;
}

int hxv_from_json(struct hxv_arena *a, json_t *js, struct hxv *v)
{
	char num[64];

	memset(v, 0, sizeof(*v));
	switch (json_typeof(js)) {
	case JSON_NULL:
		v->t = HXV_NULL;
		return 0;
	case JSON_TRUE:
		v->t = HXV_TRUE;
		return 0;
	case JSON_FALSE:
		v->t = HXV_FALSE;
		return 0;
	case JSON_INTEGER:
		v->t = HXV_INT;
		v->n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					json_integer_value(js));
		v->s = hxv_arena_strndup(a, num, v->n);
		return v->s ? 0 : -ENOMEM;
	case JSON_REAL:
		v->t = HXV_REAL;
		v->n = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(js));
		/* Shown as a real, so "expected 1500.0, got 1500" says why they differ. */
		if (!strpbrk(num, ".eEni"))
			v->n += (size_t)snprintf(num + v->n, sizeof(num) - v->n, ".0");
		v->s = hxv_arena_strndup(a, num, v->n);
		return v->s ? 0 : -ENOMEM;
	case JSON_STRING:
		v->t = HXV_STR;
		v->n = json_string_length(js);
		v->s = hxv_arena_strndup(a, json_string_value(js), v->n);
		return v->s ? 0 : -ENOMEM;
	case JSON_ARRAY: {
		json_t *e;
		size_t i;

		v->t = HXV_ARR;
		v->n = json_array_size(js);
		v->items = hxv_arena_alloc(a, (v->n ?: 1) * sizeof(*v->items));
		if (!v->items)
			return -ENOMEM;
		json_array_foreach(js, i, e)
		{
			int r = hxv_from_json(a, e, &v->items[i]);

			if (r < 0)
				return r;
		}
		return 0;
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *e;
		size_t i = 0;

		v->t = HXV_OBJ;
		v->n = json_object_size(js);
		v->mem = hxv_arena_alloc(a, (v->n ?: 1) * sizeof(*v->mem));
		if (!v->mem)
			return -ENOMEM;
		json_object_foreach(js, k, e)
		{
			int r;

			v->mem[i].klen = strlen(k);
			v->mem[i].key = hxv_arena_strndup(a, k, v->mem[i].klen);
			if (!v->mem[i].key)
				return -ENOMEM;
			r = hxv_from_json(a, e, &v->mem[i].v);
			if (r < 0)
				return r;
			i++;
		}
		qsort(v->mem, v->n, sizeof(*v->mem), mem_cmp);
		return 0;
	}
	}
	return -EINVAL;
}

static const char *int_digits(const char *s, bool *neg)
{
	*neg = s[0] == '-';
	s += *neg;
	if (strcmp(s, "0") == 0)
		*neg = false; /* -0 is 0 */
	return s;
}

/* -1, 0, 1. Integers exactly, as decimal strings; anything with a fraction as long double. */
int hxv_num_cmp(const struct hxv *a, const struct hxv *b)
{
	long double x, y;

	if (a->t == HXV_INT && b->t == HXV_INT) {
		bool na, nb;
		const char *da = int_digits(a->s, &na), *db = int_digits(b->s, &nb);
		size_t la = strlen(da), lb = strlen(db);
		int c;

		if (na != nb)
			return na ? -1 : 1;
		c = la != lb ? (la < lb ? -1 : 1) : strcmp(da, db);
		c = c < 0 ? -1 : c > 0;
		return na ? -c : c;
	}
	/* A double's text goes through strtod, so that 0.1 compares as the double 0.1. */
	x = a->t == HXV_INT ? strtold(a->s, NULL) : (long double)strtod(a->s, NULL);
	y = b->t == HXV_INT ? strtold(b->s, NULL) : (long double)strtod(b->s, NULL);
	return (x > y) - (x < y);
}

bool hxv_is_num(const struct hxv *v)
{
	return v && (v->t == HXV_INT || v->t == HXV_REAL);
}

/* JSON value equality: member order free, integers exact, an integer never equals a real. */
bool hxv_equal(const struct hxv *a, const struct hxv *b)
{
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case HXV_INT:
		return hxv_num_cmp(a, b) == 0;
	case HXV_REAL:
		return strtod(a->s, NULL) == strtod(b->s, NULL);
	case HXV_STR:
		return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
	case HXV_ARR:
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!hxv_equal(&a->items[i], &b->items[i]))
				return false;
		return true;
	case HXV_OBJ:
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (hxv_key_cmp(a->mem[i].key, a->mem[i].klen, b->mem[i].key,
					b->mem[i].klen) ||
			    !hxv_equal(&a->mem[i].v, &b->mem[i].v))
				return false;
		return true;
	default:
		return true;
	}
}

bool hxv_is_hex(const struct hxv *v)
{
	if (!v || v->t != HXV_STR || v->n == 0 || v->n % 2)
		return false;
	for (size_t i = 0; i < v->n; i++)
		if (hexval(v->s[i]) < 0)
			return false;
	return true;
}
