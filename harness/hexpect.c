// SPDX-License-Identifier: Apache-2.0
/*
 * Expectation checking (hexpect.h). Observed text comes from the implementation under test and
 * may be anything, so it is parsed by a strict JSON reader of our own (hxv.h) rather than
 * jansson: jansson cannot hold integers above INT64_MAX, and EVT-ENV-014 asks for exact u64.
 * Numbers stay as their text; integers compare as decimal strings, never through a double.
 *
 * Every check returns 0 (holds), 1 (FAIL, message in x->msg) or -errno (ERROR, message too).
 * A message names what was expected and what was seen, on one line; a long value is named by
 * its first difference (exact_explain: a DNS message decoded by hdnsmsg.c, a text's line, a
 * JSON member), and both values go whole with the problem for result.json (keep_full).
 *
 * Semantics the README leaves open, decided here:
 * - match items: with "count", exactly that many events (records) satisfy the item; without,
 *   at least one. "ordered": each item then takes its count (default 1) of matches after the
 *   last one the item before took. Order defaults to unordered. "exhaustive": every event
 *   satisfies some item.
 * - responses "none": no response recorded, a null result, or a result with empty "replies".
 * - record fields are unsigned integers; src_ip/dst_ip compare as dotted quads against a
 *   string "exact" or a regex. Padding reads as the integer of its bytes in offset order.
 * - observed JSON: strict RFC 8259 plus no duplicate member names (EVT-ENV-003), no lone
 *   surrogates, lines terminated by LF; an integer never equals a number with a fraction or
 *   exponent (EVT-ENV-013).
 */
#include "hexpect.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "hdnsmsg.h"
#include "hxv.h"
#include "hrecord.h"
#include "util.h"

extern char **environ;

#define SHOW_MAX      200	  /* observed values in messages are cut here */
#define LONG_VALUE    80	  /* a longer string is named by its first difference */
#define WINDOW	      100	  /* bytes of a long value shown around its difference */
#define LINE_MAX_LEN  (16u << 20) /* a longer JSONL line is a FAIL, not a giant allocation */
#define SCHEMA_OUTPUT 65536	  /* validator output kept for the message */

/* ---- message buffer ---------------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	size_t limit; /* 0: none; else appends stop here and set cut */
	bool cut;
	bool oom;
};

static bool sb_grow(struct sbuf *b, size_t n)
{
	size_t need = b->len + n + 1, nc;
	char *np;

	if (b->oom)
		return false;
	if (need <= b->cap)
		return true;
	nc = b->cap ? b->cap : 128;
	while (nc < need)
		nc *= 2;
	np = realloc(b->p, nc);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = nc;
	return true;
}

/* Append; under a limit, what does not fit is dropped (only for ASCII-safe text). */
static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->cut)
		return;
	if (b->limit && b->len + n > b->limit) {
		n = b->limit - b->len;
		b->cut = true;
	}
	if (!sb_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append all or nothing, so a UTF-8 sequence or an escape is never split by the cut. */
static void sb_whole(struct sbuf *b, const char *s, size_t n)
{
	if (b->cut)
		return;
	if (b->limit && b->len + n > b->limit) {
		b->cut = true;
		return;
	}
	sb_put(b, s, n);
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sb_put(b, small, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	sb_put(b, big, (size_t)n);
	free(big);
}

/* Bytes from the outside, escaped so that the message stays one line of valid UTF-8. */
static void sb_esc(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n && !b->cut;) {
		char tmp[8];
		size_t l = hxv_utf8_len(p + i, n - i);

		if (p[i] == '"' || p[i] == '\\') {
			tmp[0] = '\\', tmp[1] = (char)p[i];
			sb_whole(b, tmp, 2);
		} else if (p[i] == '\n') {
			sb_whole(b, "\\n", 2);
		} else if (p[i] == '\t') {
			sb_whole(b, "\\t", 2);
		} else if (p[i] == '\r') {
			sb_whole(b, "\\r", 2);
		} else if (l == 0 || p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			sb_whole(b, tmp, 4);
			l = 1;
		} else {
			sb_whole(b, s + i, l);
		}
		i += l ? l : 1;
	}
}

/* Append a copy of src (a value rendered under a limit) with "..." when it was cut. */
static void sb_append_cut(struct sbuf *b, const struct sbuf *src)
{
	if (src->oom) {
		b->oom = true;
		return;
	}
	sb_put(b, src->p ? src->p : "", src->len);
	if (src->cut)
		sb_puts(b, "...");
}

static void xv_render(struct sbuf *b, const struct hxv *v)
{
	switch (v->t) {
	case HXV_NULL:
		sb_puts(b, "null");
		break;
	case HXV_TRUE:
		sb_puts(b, "true");
		break;
	case HXV_FALSE:
		sb_puts(b, "false");
		break;
	case HXV_INT:
	case HXV_REAL:
		sb_put(b, v->s, v->n);
		break;
	case HXV_STR:
		sb_whole(b, "\"", 1);
		sb_esc(b, v->s, v->n);
		sb_whole(b, "\"", 1);
		break;
	case HXV_ARR:
		sb_whole(b, "[", 1);
		for (size_t i = 0; i < v->n && !b->cut; i++) {
			if (i)
				sb_whole(b, ",", 1);
			xv_render(b, &v->items[i]);
		}
		sb_whole(b, "]", 1);
		break;
	case HXV_OBJ:
		sb_whole(b, "{", 1);
		for (size_t i = 0; i < v->n && !b->cut; i++) {
			if (i)
				sb_whole(b, ",", 1);
			sb_whole(b, "\"", 1);
			sb_esc(b, v->mem[i].key, v->mem[i].klen);
			sb_whole(b, "\":", 2);
			xv_render(b, &v->mem[i].v);
		}
		sb_whole(b, "}", 1);
		break;
	}
}

/* A value for a message: escaped, cut at SHOW_MAX bytes; NULL reads "nothing". */
static void show(struct sbuf *b, const struct hxv *v)
{
	struct sbuf t = { .limit = SHOW_MAX };

	if (!v) {
		sb_puts(b, "nothing");
		return;
	}
	xv_render(&t, v);
	sb_append_cut(b, &t);
	free(t.p);
}

static void show_bytes(struct sbuf *b, const char *s, size_t n)
{
	struct sbuf t = { .limit = SHOW_MAX };

	sb_put(b, "\"", 1);
	sb_esc(&t, s, n);
	sb_append_cut(b, &t);
	free(t.p);
	sb_put(b, "\"", 1);
}

/*
 * First difference between expected and observed: fills path (dotted, "[i]" for items) and
 * the two values there (NULL: absent). When an item is missing or extra, *ae and *ag (if given)
 * are the two arrays, else NULL. Returns true when equal.
 */
static bool xv_diff(const struct hxv *e, const struct hxv *g, struct sbuf *path,
		    const struct hxv **de, const struct hxv **dg, const struct hxv **ae,
		    const struct hxv **ag)
{
	size_t base = path->len;

	*de = e;
	*dg = g;
	if (ae && ag)
		*ae = *ag = NULL;
	if (e->t != g->t || (e->t != HXV_ARR && e->t != HXV_OBJ))
		return hxv_equal(e, g);
	if (e->t == HXV_ARR) {
		for (size_t i = 0; i < e->n || i < g->n; i++) {
			sb_printf(path, "[%zu]", i);
			if (i >= e->n || i >= g->n) {
				*de = i < e->n ? &e->items[i] : NULL;
				*dg = i < g->n ? &g->items[i] : NULL;
				if (ae && ag)
					*ae = e, *ag = g;
				return false;
			}
			if (!xv_diff(&e->items[i], &g->items[i], path, de, dg, ae, ag))
				return false;
			path->len = base;
		}
		return true;
	}
	/* Both sorted: walk them together like a merge. */
	for (size_t i = 0, k = 0; i < e->n || k < g->n;) {
		int c = i >= e->n   ? 1
			: k >= g->n ? -1
				    : hxv_key_cmp(e->mem[i].key, e->mem[i].klen, g->mem[k].key,
						  g->mem[k].klen);
		const struct hxv_mem *m = c <= 0 ? &e->mem[i] : &g->mem[k];

		if (base)
			sb_puts(path, ".");
		sb_esc(path, m->key, m->klen);
		if (c != 0) {
			*de = c < 0 ? &m->v : NULL;
			*dg = c > 0 ? &m->v : NULL;
			return false;
		}
		if (!xv_diff(&e->mem[i].v, &g->mem[k].v, path, de, dg, ae, ag))
			return false;
		path->len = base;
		i++, k++;
	}
	if (path->p)
		path->p[base] = '\0';
	return true;
}

/* ---- checking context and matchers --------------------------------------------------------------
 */

struct xctx {
	const struct hcase *c;
	const struct hobs *o;
	struct sbuf msg;
	struct hexp_problem *probs; /* problems pushed so far (hexp_check_all) */
	size_t n_probs;
	bool probs_oom;
	struct hxv_arena a;  /* scratch for values built from the case and the runner */
	uint64_t last_count; /* the counter count_is() last read (for sums) */
	bool last_count_ok;
	char *full_exp, *full_got; /* both sides in full for the next problem (result.json) */
};

__attribute__((format(printf, 3, 4))) static int fail(struct xctx *x, int r, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		x->msg.oom = true;
	va_end(ap);
	if (s) {
		sb_puts(&x->msg, s);
		free(s);
	}
	return r;
}

/* Move the message built so far into the problem list (r: 1 or -errno); returns r. */
static int push_problem(struct xctx *x, int r)
{
	struct hexp_problem *np;
	char *m = x->msg.p;

	x->msg.p = NULL;
	x->msg.len = x->msg.cap = 0;
	x->msg.cut = false;
	if (!m)
		m = strdup(r < 0 ? strerror(-r) : "expectation failed");
	np = m ? realloc(x->probs, (x->n_probs + 1) * sizeof(*np)) : NULL;
	if (!np) {
		free(m);
		free(x->full_exp);
		free(x->full_got);
		x->full_exp = x->full_got = NULL;
		x->probs_oom = true;
		return r;
	}
	/* One line, whatever a case or an implementation put in it. */
	for (char *s = m; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
	x->probs = np;
	x->probs[x->n_probs++] = (struct hexp_problem){
		.r = r, .msg = m, .expected = x->full_exp, .got = x->full_got
	};
	x->full_exp = x->full_got = NULL;
	return r;
}

/* A range bound: a number, or "{name}" looked up in the runner's variables. */
static int bound(struct xctx *x, const char *where, json_t *b, struct hxv *ret)
{
	const char *s = json_string_value(b);
	char why[96], name[128];
	json_t *val;
	size_t n;
	int r;

	if (!s)
		return hxv_from_json(&x->a, b, ret);
	n = strlen(s);
	if (n < 3 || n - 2 >= sizeof(name))
		return fail(x, -EINVAL, "%s: range bound \"%s\" is not a {variable}", where, s);
	memcpy(name, s + 1, n - 2);
	name[n - 2] = '\0';
	val = json_object_get(x->o->vars, name);
	if (!val)
		return fail(x, -ENOENT, "%s: range bound {%s}: no such runner variable", where,
			    name);
	if (json_is_integer(val) || json_is_real(val))
		return hxv_from_json(&x->a, val, ret);
	r = -EBADMSG;
	if (json_is_string(val))
		r = hxv_parse(&x->a, json_string_value(val), json_string_length(val), ret, why,
			      sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0 || !hxv_is_num(ret))
		return fail(x, -EINVAL, "%s: runner variable {%s} is not a number", where, name);
	return 0;
}

static int regex_match(struct xctx *x, const char *where, const char *re_text, const char *s,
		       size_t n, bool *ok)
{
	regmatch_t pm = { .rm_so = 0, .rm_eo = (regoff_t)n };
	regex_t re;
	int rc;

	if (n > INT32_MAX) /* regoff_t is an int */
		return fail(x, 1, "%s: expected at most %d bytes to match a regex against, got %zu",
			    where, INT32_MAX, n);
	rc = regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB);
	if (rc != 0)
		return fail(x, -EINVAL, "%s: regex does not compile", where);
	/* REG_STARTEND: the subject is bytes with a length, NULs included. */
	rc = regexec(&re, s, 1, &pm, REG_STARTEND);
	regfree(&re);
	*ok = rc == 0;
	return 0;
}

/*
 * An EVT-ENV-008 timestamp as ns since the epoch, and the length of the interval its last digit
 * stands for (1 s with no fraction, 1 us with six digits). -EINVAL when it is not that form.
 */
static int rfc3339_ns(const char *s, size_t n, uint64_t *ret_ns, uint64_t *ret_unit)
{
	unsigned yr, mo, dy, hh, mi, ss;
	uint64_t frac = 0, unit = 1000000000u;
	struct tm tm = { 0 };
	char buf[40];
	size_t i = 19;
	time_t t;

	if (n < 20 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (size_t k = 0; k < 19; k++)
		if ((k == 4 || k == 7)	   ? buf[k] != '-'
		    : k == 10		   ? buf[k] != 'T'
		    : (k == 13 || k == 16) ? buf[k] != ':'
					   : !(buf[k] >= '0' && buf[k] <= '9'))
			return -EINVAL;
	if (sscanf(buf, "%4u-%2u-%2uT%2u:%2u:%2u", &yr, &mo, &dy, &hh, &mi, &ss) != 6 || mo < 1 ||
	    mo > 12 || dy < 1 || dy > 31 || hh > 23 || mi > 59 || ss > 60 || yr < 1970)
		return -EINVAL;
	if (buf[i] == '.') {
		size_t d = 0;

		for (i++; buf[i] >= '0' && buf[i] <= '9' && d < 9; i++, d++) {
			frac = frac * 10 + (uint64_t)(buf[i] - '0');
			unit /= 10;
		}
		if (d == 0)
			return -EINVAL;
		frac *= unit;
	}
	if (buf[i] != 'Z' || i + 1 != n)
		return -EINVAL;
	tm.tm_year = (int)yr - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)dy;
	tm.tm_hour = (int)hh;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)ss;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret_ns = (uint64_t)t * 1000000000u + frac;
	*ret_unit = unit;
	return 0;
}

static int u64_xv(struct xctx *x, uint64_t u, struct hxv *v)
{
	char buf[32];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%llu", (unsigned long long)u);

	v->t = HXV_INT;
	v->s = hxv_arena_strndup(&x->a, buf, n);
	v->n = n;
	return v->s ? 0 : -ENOMEM;
}

/*
 * time_range: the instants a timestamp stands for (from it to the end of its last digit's
 * interval, since a producer truncates) meet [LO, HI], both ns since the epoch.
 */
static int time_in(struct xctx *x, const char *where, json_t *val, const struct hxv *v, bool *ok)
{
	struct hxv lo, hi, t0, t1;
	uint64_t ns, unit;
	int r;

	r = bound(x, where, json_array_get(val, 0), &lo);
	r = r ?: bound(x, where, json_array_get(val, 1), &hi);
	if (r < 0)
		return r;
	if (!v || v->t != HXV_STR || rfc3339_ns(v->s, v->n, &ns, &unit) < 0)
		return 0;
	r = u64_xv(x, ns, &t0);
	r = r ?: u64_xv(x, ns + unit - 1, &t1);
	if (r < 0)
		return r;
	*ok = hxv_num_cmp(&t0, &hi) <= 0 && hxv_num_cmp(&lo, &t1) <= 0;
	return 0;
}

/* var: the value is the runner variable NAME (a string, or a number as its decimal text). */
static int var_is(struct xctx *x, const char *where, json_t *val, const struct hxv *v, bool *ok)
{
	const char *name = json_string_value(val);
	json_t *jv = name ? json_object_get(x->o->vars, name) : NULL;

	if (!jv)
		return fail(x, -ENOENT, "%s: var {%s}: no such runner variable", where, name ?: "");
	if (!v)
		return 0;
	/* Runner variables are strings; a number is compared as its decimal text. */
	if (json_is_string(jv) && (v->t == HXV_STR || v->t == HXV_INT))
		*ok = v->n == json_string_length(jv) &&
		      memcmp(v->s, json_string_value(jv), v->n) == 0;
	return 0;
}

/* Evaluate one matcher against v (NULL: the path is absent). 0 with *ok, or -errno. */
static int mt_eval(struct xctx *x, const char *where, json_t *m, const struct hxv *v, bool *ok)
{
	json_t *val;
	const char *key;

	*ok = false;
	json_object_foreach(m, key, val)
	{
		if (strcmp(key, "present") == 0 || strcmp(key, "distinct") == 0 ||
		    strcmp(key, "same") == 0) {
			/* distinct and same compare across the item's matches: items_across. */
			*ok = v != NULL;
		} else if (strcmp(key, "time_range") == 0) {
			return time_in(x, where, val, v, ok);
		} else if (strcmp(key, "var") == 0) {
			return var_is(x, where, val, v, ok);
		} else if (strcmp(key, "absent") == 0) {
			*ok = v == NULL;
		} else if (strcmp(key, "exact") == 0) {
			struct hxv e;
			int r;

			if (!v)
				return 0;
			r = hxv_from_json(&x->a, val, &e);
			if (r < 0)
				return r;
			*ok = hxv_equal(&e, v);
		} else if (strcmp(key, "regex") == 0) {
			if (!v || !json_is_string(val) ||
			    (v->t != HXV_STR && v->t != HXV_INT && v->t != HXV_REAL))
				return 0;
			return regex_match(x, where, json_string_value(val), v->s, v->n, ok);
		} else if (strcmp(key, "range") == 0) {
			struct hxv lo, hi;
			int r;

			r = bound(x, where, json_array_get(val, 0), &lo);
			r = r ?: bound(x, where, json_array_get(val, 1), &hi);
			if (r < 0)
				return r;
			*ok = hxv_is_num(v) && hxv_num_cmp(&lo, v) <= 0 && hxv_num_cmp(v, &hi) <= 0;
		} else {
			return fail(x, -EINVAL, "%s: unknown matcher \"%s\"", where, key);
		}
	}
	return 0;
}

static void show_bound(struct xctx *x, struct sbuf *b, json_t *jb)
{
	const char *s = json_string_value(jb);
	struct hxv v;

	if (s) {
		json_t *val;

		sb_esc(b, s, strlen(s));
		if (strlen(s) > 2) {
			_cleanup_free_ char *name = strndup(s + 1, strlen(s) - 2);

			val = name ? json_object_get(x->o->vars, name) : NULL;
			if (json_is_string(val)) {
				sb_puts(b, "=");
				sb_esc(b, json_string_value(val), json_string_length(val));
			} else if (val && hxv_from_json(&x->a, val, &v) == 0) {
				sb_puts(b, "=");
				show(b, &v);
			}
		}
		return;
	}
	if (hxv_from_json(&x->a, jb, &v) == 0)
		show(b, &v);
}

/* ---- both sides in full, and long values named by their first difference ---------------------
 */

/* A value rendered in full (escaped like a message, never cut); malloc'd, NULL on ENOMEM. */
static char *render_full(const struct hxv *v)
{
	struct sbuf t = { 0 };

	if (!v)
		return strdup("nothing");
	xv_render(&t, v);
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p ?: strdup("");
}

static char *bytes_full(const char *s, size_t n)
{
	struct sbuf t = { 0 };

	sb_puts(&t, "\"");
	sb_esc(&t, s, n);
	sb_puts(&t, "\"");
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

/* Keep both sides in full for the problem about to be pushed (they go to result.json). */
static void keep_full(struct xctx *x, char *e, char *g)
{
	free(x->full_exp);
	free(x->full_got);
	x->full_exp = e;
	x->full_got = g;
}

static size_t common_prefix(const char *a, size_t an, const char *b, size_t bn)
{
	size_t k = 0;

	while (k < an && k < bn && a[k] == b[k])
		k++;
	return k;
}

/* s quoted: whole when short, else about WINDOW bytes around byte at, "..." where cut. */
static void show_around(struct sbuf *b, const char *s, size_t n, size_t at)
{
	size_t start = 0;
	struct sbuf t = { .limit = SHOW_MAX };

	if (n > SHOW_MAX) {
		t.limit = WINDOW;
		start = at > WINDOW / 3 ? at - WINDOW / 3 : 0;
		while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
			start--;
	}
	sb_puts(b, "\"");
	if (start)
		sb_puts(b, "...");
	sb_esc(&t, s + start, n - start);
	sb_append_cut(b, &t);
	free(t.p);
	sb_puts(b, "\"");
}

/* Text of our own making (a decoded field), escaped and cut at SHOW_MAX, unquoted. */
static void show_plain(struct sbuf *b, const char *s)
{
	struct sbuf t = { .limit = SHOW_MAX };

	sb_esc(&t, s, strlen(s));
	sb_append_cut(b, &t);
	free(t.p);
}

/* The line starting at off: its length without the LF; false when s ends before it. */
static bool line_at(const char *s, size_t n, size_t off, size_t *ret_len)
{
	const char *nl;

	if (off >= n)
		return false;
	nl = memchr(s + off, '\n', n - off);
	*ret_len = nl ? (size_t)(nl - s) - off : n - off;
	return true;
}

/* What ends a line at byte k: "a line end", "the end of text". */
static const char *line_end(const char *s, size_t n, size_t k)
{
	return k >= n ? "the end of text" : s[k] == '\n' ? "a line end" : "more";
}

static size_t count_lines(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += s[i] == '\n';
	return c + (n > 0 && s[n - 1] != '\n');
}

/*
 * Two texts that differ, after the caller wrote the check's name: with lines, " line L:
 * expected "...", got "..."" (the two lines, each cut around the difference, "(byte K)" when
 * cut); on one line, ": differs at byte K: expected "...", got "..."".
 */
/* One side of a line difference: the line around byte k, or the end of the text. */
static void line_side(struct sbuf *b, const char *t, size_t tn, bool has, size_t ls, size_t l,
		      size_t k, bool same_text)
{
	if (has)
		show_around(b, t + ls, l, k - ls);
	else
		sb_printf(b, "end of text (%zu lines)", count_lines(t, tn));
	if (same_text)
		sb_printf(b, " then %s", line_end(t, tn, k));
}

static void text_explain(struct xctx *x, const char *e, size_t en, const char *g, size_t gn)
{
	struct sbuf *b = &x->msg;
	size_t k = common_prefix(e, en, g, gn), line = 0, ls = 0;

	if (!memchr(e, '\n', en) && !memchr(g, '\n', gn)) {
		sb_printf(b, ": differs at byte %zu: expected ", k);
		if (k == en)
			sb_printf(b, "the value to end there (%zu bytes)", en);
		else
			show_around(b, e, en, k);
		sb_puts(b, ", got ");
		if (k == gn)
			sb_printf(b, "its end (%zu bytes)", gn);
		else
			show_around(b, g, gn, k);
		return;
	}
	for (size_t i = 0; i < k; i++)
		if (e[i] == '\n') {
			line++;
			ls = i + 1;
		}
	{
		size_t el = 0, gl = 0;
		bool he = line_at(e, en, ls, &el), hg = line_at(g, gn, ls, &gl);

		sb_printf(b, " line %zu", line + 1);
		if ((he && el > SHOW_MAX) || (hg && gl > SHOW_MAX))
			sb_printf(b, " (byte %zu)", k);
		/* The same text on both sides: they differ in how the line ends. */
		bool same = he && hg && el == gl && memcmp(e + ls, g + ls, el) == 0;

		sb_puts(b, ": expected ");
		line_side(b, e, en, he, ls, el, k, same);
		sb_puts(b, ", got ");
		line_side(b, g, gn, hg, ls, gl, k, same);
	}
}

/*
 * At the "[" of a bracket expression: where its closing "]" is, or NULL. A "]" first (after an
 * optional "^") is a member, and so is anything in "[:alpha:]", "[.x.]", "[=x=]".
 */
static const char *re_bracket_end(const char *p)
{
	p += 1 + (p[1] == '^');
	p += *p == ']';
	while (*p && *p != ']') {
		const char *close;

		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=') &&
		    (close = strchr(p + 2, ']')))
			p = close;
		p++;
	}
	return *p ? p : NULL;
}

/*
 * The literal runs a regex needs wherever it matches (POSIX ERE): text outside brackets and
 * groups, escapes unescaped, a character under a quantifier dropped. Calls fn on each run of 3
 * bytes or more, in order, until it returns true. None when the regex has a top-level "|".
 */
static void re_literals(const char *re, bool (*fn)(const char *run, size_t n, void *arg), void *arg)
{
	char run[256];
	size_t n = 0;
	int depth = 0;

	for (const char *p = re; *p; p++)
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (*p == '|' && depth == 0)
			return;
	for (const char *p = re;; p++) {
		bool lit = false, quant = *p == '*' || *p == '+' || *p == '?' || *p == '{';
		char c = *p;

		if (*p == '\\' && p[1]) {
			c = *++p;
			/* \w, \d and the like are classes in glibc's ERE, not letters. */
			lit = depth == 0 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					      (c >= '0' && c <= '9'));
		} else if (*p && !strchr(".[]()*+?{}|^$", *p)) {
			lit = depth == 0;
		}
		if (lit && n < sizeof(run)) {
			run[n++] = c;
			continue;
		}
		if (quant && n > 0)
			n--; /* "ab*": only the "a" is sure */
		if (n >= 3 && fn(run, n, arg))
			return;
		n = 0;
		if (!*p)
			return;
		if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (*p == '[') {
			p = re_bracket_end(p);
			if (!p)
				return;
		} else if (*p == '{') {
			while (p[1] && *p != '}')
				p++;
		}
	}
}

struct re_miss {
	const char *s;
	size_t n;
	char run[256];
	size_t run_n;
	bool found; /* a run the subject lacks */
};

static bool re_first_missing(const char *run, size_t n, void *arg)
{
	struct re_miss *m = arg;

	if (memmem(m->s, m->n, run, n))
		return false;
	memcpy(m->run, run, n);
	m->run_n = n;
	m->found = true;
	return true;
}

/*
 * The regex's top-level atoms, each with its quantifiers: their end offsets in ends[]. 0 when
 * it has a top-level "|" (no atom is then needed), more than max atoms, or does not parse.
 */
static size_t re_atoms(const char *re, size_t *ends, size_t max)
{
	const char *p = re;
	size_t n = 0;

	while (*p) {
		if (n == max || *p == '|')
			return 0;
		if (*p == '\\') {
			p += p[1] ? 2 : 1;
		} else if (*p == '[') {
			p = re_bracket_end(p);
			if (!p)
				return 0;
			p++;
		} else if (*p == '(') {
			int depth = 1;

			for (p++; *p && depth; p++)
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '[' && !(p = re_bracket_end(p)))
					return 0;
				else if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
			if (depth)
				return 0;
		} else {
			p++;
		}
		while (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			const char *close = *p == '{' ? strchr(p, '}') : p;

			if (!close)
				return 0;
			p = close + 1;
		}
		ends[n++] = (size_t)(p - re);
	}
	return n;
}

/*
 * Where a regex that does not match stops matching: the most top-level atoms from its start
 * that still match (a concatenation that matches has every prefix matching), where that match
 * ends, and the atom that fails there. false when even the first atom does not match.
 */
static bool re_stop(const char *re, const char *s, size_t n, size_t *ret_from, size_t *ret_to,
		    size_t *ret_at)
{
	size_t ends[128], na = re_atoms(re, ends, ARRAY_SIZE(ends)), best = 0, at = 0;

	for (size_t k = 1; k < na; k++) {
		regmatch_t pm = { .rm_so = 0, .rm_eo = (regoff_t)n };
		char *pre = strndup(re, ends[k - 1]);
		regex_t rx;
		int rc;

		if (!pre || regcomp(&rx, pre, REG_EXTENDED) != 0) {
			free(pre);
			break;
		}
		rc = regexec(&rx, s, 1, &pm, REG_STARTEND);
		regfree(&rx);
		free(pre);
		if (rc != 0)
			break;
		best = k;
		at = (size_t)pm.rm_eo;
	}
	if (!best)
		return false;
	*ret_from = ends[best - 1];
	*ret_to = ends[best];
	*ret_at = at;
	return true;
}

/*
 * What a regex did not find in a long subject, after ", got ": the first literal the regex needs
 * that the subject lacks, and the subject around the longest start of that literal it has
 * ("1843 bytes without "\"nonewprivs\":1"; at byte 812: "...\"nonewprivs\":0..."). The subject
 * itself, cut, when it is short or no literal is missing.
 */
static void show_regex_got(struct sbuf *b, const char *re, const char *s, size_t n)
{
	struct re_miss m = { .s = s, .n = n };
	size_t best = 0, at = 0;

	size_t from, to;

	if (n > SHOW_MAX && re && n <= INT32_MAX)
		re_literals(re, re_first_missing, &m);
	/* Every literal is there: where the regex stops matching, and what it wants there (a
	 * regexec per atom, so not over megabytes). */
	if (!m.found && n > SHOW_MAX && re && n <= (1u << 20) &&
	    re_stop(re, s, n, &from, &to, &at)) {
		sb_printf(b, "%zu bytes; the regex matches up to byte %zu, then expects ", n, at);
		show_bytes(b, re + from, to - from);
		sb_puts(b, ", where the output reads ");
		show_around(b, s, n, at);
		return;
	}
	if (!m.found) {
		show_bytes(b, s, n);
		return;
	}
	at = 0;
	for (size_t k = m.run_n - 1; k >= 1 && !best; k--) {
		const char *hit = memmem(s, n, m.run, k);

		if (hit) {
			best = k;
			at = (size_t)(hit - s);
		}
	}
	sb_printf(b, "%zu bytes without ", n);
	show_bytes(b, m.run, m.run_n);
	if (best >= 3) {
		sb_printf(b, "; its start ");
		show_bytes(b, m.run, best);
		sb_printf(b, " is at byte %zu: ", at);
		show_around(b, s, n, at + best);
	}
}

/* "first differing byte at offset 2: expected 0x85, got 0x81" */
static void byte_diff(struct sbuf *b, const uint8_t *e, size_t en, const uint8_t *g, size_t gn)
{
	size_t k = 0;

	while (k < en && k < gn && e[k] == g[k])
		k++;
	sb_printf(b, "first differing byte at offset %zu: expected ", k);
	if (k < en)
		sb_printf(b, "0x%02x", e[k]);
	else
		sb_printf(b, "the end (%zu bytes)", en);
	sb_puts(b, ", got ");
	if (k < gn)
		sb_printf(b, "0x%02x", g[k]);
	else
		sb_printf(b, "the end (%zu bytes)", gn);
}

/* Two DNS messages decoded, the first differing field named; the bytes when one does not decode. */
static int dns_explain(struct xctx *x, const uint8_t *e, size_t en, const uint8_t *g, size_t gn)
{
	struct sbuf *b = &x->msg;
	struct hdns_msg me, mg;
	struct hdns_diff d;
	char why_e[160], why_g[160];
	int re, rg, r = 0;

	re = hdns_decode(e, en, &me, why_e, sizeof(why_e));
	rg = hdns_decode(g, gn, &mg, why_g, sizeof(why_g));
	if (re == -ENOMEM || rg == -ENOMEM) {
		r = -ENOMEM;
	} else if (re < 0) {
		sb_puts(b, "the expected message does not decode as DNS (");
		sb_esc(b, why_e, strlen(why_e));
		sb_puts(b, "); ");
	} else if (rg < 0) {
		sb_puts(b, "got a message that does not decode as DNS (");
		sb_esc(b, why_g, strlen(why_g));
		sb_puts(b, "); ");
	} else {
		r = hdns_diff(&me, &mg, &d);
		if (r == 1) {
			sb_printf(b, "differs at %s: expected ", d.field);
			show_plain(b, d.expected);
			sb_puts(b, ", got ");
			show_plain(b, d.got);
			hdns_diff_free(&d);
		} else if (r == 0) {
			sb_puts(b, "every decoded field is equal (name compression differs?); ");
		}
	}
	if (r == 0)
		byte_diff(b, e, en, g, gn);
	hdns_msg_free(&me);
	hdns_msg_free(&mg);
	return r < 0 ? r : 0;
}

/* A hex DNS message in a few words: "a DNS response ID 4369 (0x1111) NOERROR, ...". */
static int dns_summary(struct xctx *x, const struct hxv *hex)
{
	_cleanup_free_ uint8_t *b = NULL;
	_cleanup_free_ char *sum = NULL;
	struct hdns_msg m;
	char why[160];
	size_t n;
	int r;

	r = hdns_unhex(hex->s, hex->n, &b, &n);
	r = r ?: hdns_decode(b, n, &m, why, sizeof(why));
	if (r == -EBADMSG) {
		sb_printf(&x->msg, "%zu bytes that do not decode as DNS (", n);
		sb_esc(&x->msg, why, strlen(why));
		sb_puts(&x->msg, ")");
		return 0;
	}
	if (r < 0)
		return r;
	sum = hdns_summary(&m);
	hdns_msg_free(&m);
	if (!sum)
		return -ENOMEM;
	sb_puts(&x->msg, "a DNS ");
	sb_esc(&x->msg, sum, strlen(sum));
	return 0;
}

/* A TCP byte stream of length-prefixed messages (RFC 1035 4.2.2): the frames, if it is one. */
static bool frames_split(const uint8_t *p, size_t n, size_t *off, size_t *len, size_t max,
			 size_t *ret_n)
{
	size_t k = 0, o = 0;

	while (o < n) {
		size_t l;

		if (n - o < 2 || k == max)
			return false;
		l = (size_t)p[o] << 8 | p[o + 1];
		if (l > n - o - 2)
			return false;
		off[k] = o + 2;
		len[k++] = l;
		o += 2 + l;
	}
	*ret_n = k;
	return k > 0;
}

/*
 * Hex strings holding DNS messages (a response's raw_hex, a reply's or a frame's hex; a TCP
 * stream when stream): ": differs at header.rcode: expected 2 (SERVFAIL), got 0 (NOERROR)".
 * Both hex dumps go in full to the problem (result.json), never to the message.
 */
static int hex_explain(struct xctx *x, const struct hxv *ev, const struct hxv *gv, bool stream)
{
	_cleanup_free_ uint8_t *e = NULL, *g = NULL;
	size_t en, gn, eo[64], el[64], go[64], gl[64], ne, ng;
	int r;

	r = hdns_unhex(ev->s, ev->n, &e, &en);
	r = r ?: hdns_unhex(gv->s, gv->n, &g, &gn);
	if (r < 0)
		return r;
	sb_puts(&x->msg, ": ");
	keep_full(x, strndup(ev->s, ev->n), strndup(gv->s, gv->n));
	if (gn == 0) {
		sb_puts(&x->msg, "expected ");
		r = stream ? 0 : dns_summary(x, ev);
		if (stream)
			sb_printf(&x->msg, "%zu bytes", en);
		sb_puts(&x->msg, ", got nothing (0 bytes)");
		return r;
	}
	if (!stream)
		return dns_explain(x, e, en, g, gn);
	if (!frames_split(e, en, eo, el, ARRAY_SIZE(eo), &ne) ||
	    !frames_split(g, gn, go, gl, ARRAY_SIZE(go), &ng)) {
		sb_puts(&x->msg, "not both streams of length-prefixed messages; ");
		byte_diff(&x->msg, e, en, g, gn);
		return 0;
	}
	for (size_t i = 0; i < ne && i < ng; i++) {
		if (el[i] == gl[i] && memcmp(e + eo[i], g + go[i], el[i]) == 0)
			continue;
		sb_printf(&x->msg, "frame[%zu] ", i);
		return dns_explain(x, e + eo[i], el[i], g + go[i], gl[i]);
	}
	sb_printf(&x->msg, "expected %zu frame%s, got %zu", ne, ne == 1 ? "" : "s", ng);
	return 0;
}

/* The last dotted segment of a field path. */
static const char *last_segment(const char *key)
{
	const char *dot = strrchr(key, '.');

	return dot ? dot + 1 : key;
}

/*
 * An exact value that differs, after the caller wrote the field's name: DNS messages decoded,
 * long or multi-line strings by their first differing line or byte, arrays and objects by their
 * first differing member. 1: explained; 0: left to the plain "expected exact X, got Y".
 */
static int exact_explain(struct xctx *x, const char *key, const struct hxv *e, const struct hxv *g)
{
	const char *seg = last_segment(key);
	struct sbuf path = { 0 };
	const struct hxv *de, *dg, *ae, *ag;
	int r = 1;

	if ((strcmp(seg, "raw_hex") == 0 || strcmp(seg, "hex") == 0) && hxv_is_hex(e) &&
	    (hxv_is_hex(g) || (g->t == HXV_STR && g->n == 0))) {
		/* A tcp_send result's "hex" is the byte stream; anywhere else one message. */
		r = hex_explain(x, e, g, strcmp(key, "hex") == 0);
		return r < 0 ? r : 1;
	}
	if (e->t == HXV_STR && g->t == HXV_STR &&
	    (e->n > LONG_VALUE || g->n > LONG_VALUE || memchr(e->s, '\n', e->n) ||
	     memchr(g->s, '\n', g->n))) {
		text_explain(x, e->s, e->n, g->s, g->n);
		keep_full(x, render_full(e), render_full(g));
		return 1;
	}
	if (e->t != g->t || (e->t != HXV_ARR && e->t != HXV_OBJ))
		return 0;
	if (xv_diff(e, g, &path, &de, &dg, &ae, &ag)) {
		free(path.p);
		return 0;
	}
	/* An item only one side has is named by its array: "answers: expected 2 items, got 1". */
	if (ae && path.len && path.p[path.len - 1] == ']') {
		char *open = strrchr(path.p, '[');

		if (open)
			path.len = (size_t)(open - path.p);
	}
	if (path.len && path.p[0] != '[')
		sb_puts(&x->msg, ".");
	sb_put(&x->msg, path.p ?: "", path.len);
	free(path.p);
	keep_full(x, render_full(e), render_full(g));
	if (de && dg && strcmp(seg, "frames") == 0 && hxv_is_hex(de) && hxv_is_hex(dg)) {
		char *fe = x->full_exp, *fg = x->full_got;

		/* Keep the whole arrays, not only the frame that differs. */
		x->full_exp = x->full_got = NULL;
		r = hex_explain(x, de, dg, false);
		keep_full(x, fe, fg);
		return r < 0 ? r : 1;
	}
	if (de && dg && de->t == HXV_STR && dg->t == HXV_STR &&
	    (de->n > LONG_VALUE || dg->n > LONG_VALUE || memchr(de->s, '\n', de->n) ||
	     memchr(dg->s, '\n', dg->n))) {
		text_explain(x, de->s, de->n, dg->s, dg->n);
		return 1;
	}
	if (ae) {
		size_t n = ae->n < ag->n ? ae->n : ag->n;

		sb_printf(&x->msg, ": expected %zu item%s, got %zu (%s [%zu]: ", ae->n,
			  ae->n == 1 ? "" : "s", ag->n, de ? "missing" : "extra", n);
		if (strcmp(seg, "frames") == 0 && hxv_is_hex(de ?: dg))
			r = dns_summary(x, de ?: dg);
		else
			show(&x->msg, de ?: dg);
		sb_puts(&x->msg, ")");
		return r < 0 ? r : 1;
	}
	/* A member only one side has: "expected absent, got 5", "expected 5, got nothing". */
	sb_puts(&x->msg, ": expected ");
	if (de)
		show(&x->msg, de);
	else
		sb_puts(&x->msg, "absent");
	sb_puts(&x->msg, ", got ");
	show(&x->msg, dg);
	return 1;
}

/*
 * "KEY: expected exact 5, got 7" (KEY NULL: the caller named the check). An exact value is
 * explained by its first difference (exact_explain); both sides go in full to result.json.
 */
static int mt_explain(struct xctx *x, const char *fkey, json_t *m, const struct hxv *got)
{
	struct sbuf *b = &x->msg;
	json_t *val, *ex = json_object_get(m, "exact");
	const char *key;
	size_t mark = b->len;

	if (fkey)
		sb_esc(b, fkey, strlen(fkey));
	if (fkey && ex && json_object_size(m) == 1 && got) {
		struct hxv e;
		int r = hxv_from_json(&x->a, ex, &e);

		r = r ?: exact_explain(x, fkey, &e, got);
		if (r != 0)
			return r < 0 ? r : 0;
		/* Not explained: start again from the plain form. */
		b->len = mark;
		if (b->p)
			b->p[mark] = '\0';
		sb_esc(b, fkey, strlen(fkey));
	}
	if (fkey)
		sb_puts(b, ": ");
	sb_puts(b, "expected ");
	json_object_foreach(m, key, val)
	{
		sb_esc(b, key, strlen(key));
		if (strcmp(key, "exact") == 0) {
			struct hxv e;

			sb_puts(b, " ");
			if (hxv_from_json(&x->a, val, &e) == 0)
				show(b, &e);
		} else if (strcmp(key, "regex") == 0 && json_is_string(val)) {
			sb_puts(b, " ");
			show_bytes(b, json_string_value(val), json_string_length(val));
		} else if (strcmp(key, "var") == 0 && json_is_string(val)) {
			json_t *jv = json_object_get(x->o->vars, json_string_value(val));

			sb_puts(b, " {");
			sb_esc(b, json_string_value(val), json_string_length(val));
			sb_puts(b, "}");
			if (json_is_string(jv)) {
				sb_puts(b, "=");
				show_bytes(b, json_string_value(jv), json_string_length(jv));
			}
		} else if (strcmp(key, "range") == 0 || strcmp(key, "time_range") == 0) {
			sb_puts(b, " [");
			show_bound(x, b, json_array_get(val, 0));
			sb_puts(b, ", ");
			show_bound(x, b, json_array_get(val, 1));
			sb_puts(b, "]");
		}
	}
	sb_puts(b, ", got ");
	if (json_object_size(m) == 1 && json_is_string(json_object_get(m, "regex")) && got &&
	    got->t == HXV_STR)
		show_regex_got(b, json_string_value(json_object_get(m, "regex")), got->s, got->n);
	else
		show(b, got);
	keep_full(x, json_dumps(m, JSON_COMPACT | JSON_ENSURE_ASCII), render_full(got));
	return 0;
}

/* ---- which process ------------------------------------------------------------------------------
 */

static const char *default_start(const struct hcase *c)
{
	const char *first = NULL;

	for (size_t i = 0; i < c->n_steps; i++) {
		const struct hcase_step *s = &c->steps[i];

		if (s->action != HCASE_ACT_START)
			continue;
		if (s->start.component == c->component)
			return s->name;
		if (!first)
			first = s->name;
	}
	return first;
}

/* The process an expectation reads: its "step", else the case's first start step. */
static int get_proc(struct xctx *x, const char *where, json_t *spec, const struct hobs_proc **ret)
{
	const char *name = json_string_value(json_object_get(spec, "step"));

	if (!name)
		name = default_start(x->c);
	if (!name)
		return fail(x, -EINVAL, "%s: the case has no start step", where);
	for (size_t i = 0; i < x->o->n_procs; i++)
		if (x->o->procs[i].name && strcmp(x->o->procs[i].name, name) == 0) {
			*ret = &x->o->procs[i];
			return 0;
		}
	return fail(x, -ENOENT, "%s: nothing observed of start step \"%s\"", where, name);
}

static int read_fixture(struct xctx *x, const char *where, const char *rel, char **ret,
			size_t *ret_len)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	if (!x->o->srcdir)
		return fail(x, -EINVAL, "%s: no source directory to find %s in", where, rel);
	if (asprintf(&path, "%s/%s", x->o->srcdir, rel) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		return fail(x, -e, "%s: cannot read %s: %s", where, path, strerror(e));
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	n = util_read_full(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return fail(x, (int)n, "%s: cannot read %s: %s", where, path, strerror((int)-n));
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = (size_t)n;
	return 0;
}

/* ---- stdout / stderr
 * ------------------------------------------------------------------------------ */

struct lines {
	const char **p;
	size_t *n;
	size_t count;
	bool unterminated; /* the last line has no LF */
};

static void lines_free(struct lines *l)
{
	free(l->p);
	free(l->n);
}

static int split_lines(const char *s, size_t len, struct lines *ret)
{
	size_t cap = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(s + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (s + off)) : len - off;

		if (ret->count == cap) {
			size_t nc = cap ? cap * 2 : 64;
			const char **np = realloc(ret->p, nc * sizeof(*np));
			size_t *nn;

			if (!np)
				goto oom;
			ret->p = np;
			nn = realloc(ret->n, nc * sizeof(*nn));
			if (!nn)
				goto oom;
			ret->n = nn;
			cap = nc;
		}
		ret->p[ret->count] = s + off;
		ret->n[ret->count++] = n;
		ret->unterminated = !nl;
		off += n + 1;
	}
	return 0;
oom:
	lines_free(ret);
	return -ENOMEM;
}

static int jsonl_compare(struct xctx *x, const char *where, const char *file, const char *exp,
			 size_t exp_len, const char *got, size_t got_len)
{
	struct lines le, lg;
	size_t i;
	int r;

	r = split_lines(exp, exp_len, &le);
	if (r < 0)
		return r;
	r = split_lines(got, got_len, &lg);
	if (r < 0) {
		lines_free(&le);
		return r;
	}
	for (i = 0; r == 0 && (i < le.count || i < lg.count); i++) {
		struct hxv_arena a = { 0 };
		struct sbuf path = { 0 };
		const struct hxv *de, *dg;
		struct hxv ve, vg;
		char why[96];

		if (i < le.count) {
			r = hxv_parse(&a, le.p[i], le.n[i], &ve, why, sizeof(why));
			if (r == -EBADMSG)
				r = fail(x, -EINVAL, "%s: %s line %zu is not JSON: %s", where, file,
					 i + 1, why);
		}
		if (r == 0 && i >= le.count) {
			sb_printf(&x->msg, "%s: line %zu: expected end of output (%zu lines), got ",
				  where, i + 1, le.count);
			show_bytes(&x->msg, lg.p[i], lg.n[i]);
			keep_full(x, strdup("end of output"), bytes_full(lg.p[i], lg.n[i]));
			r = 1;
		} else if (r == 0 && i >= lg.count) {
			sb_printf(&x->msg, "%s: line %zu: expected ", where, i + 1);
			show(&x->msg, &ve);
			sb_printf(&x->msg, ", got end of output (%zu lines)", lg.count);
			keep_full(x, bytes_full(le.p[i], le.n[i]), strdup("end of output"));
			r = 1;
		} else if (r == 0 && lg.n[i] > LINE_MAX_LEN) {
			r = fail(x, 1, "%s: line %zu: expected at most %u bytes, got %zu", where,
				 i + 1, LINE_MAX_LEN, lg.n[i]);
		} else if (r == 0) {
			r = hxv_parse(&a, lg.p[i], lg.n[i], &vg, why, sizeof(why));
			if (r == -EBADMSG) {
				sb_printf(
					&x->msg,
					"%s: line %zu: expected JSON, got text that is not (%s): ",
					where, i + 1, why);
				show_bytes(&x->msg, lg.p[i], lg.n[i]);
				r = 1;
			} else if (r == 0 && !xv_diff(&ve, &vg, &path, &de, &dg, NULL, NULL)) {
				sb_printf(&x->msg, "%s: line %zu: ", where, i + 1);
				if (path.len) {
					sb_put(&x->msg, path.p, path.len);
					sb_puts(&x->msg, ": ");
				}
				sb_puts(&x->msg, "expected ");
				show(&x->msg, de);
				sb_puts(&x->msg, ", got ");
				show(&x->msg, dg);
				keep_full(x, bytes_full(le.p[i], le.n[i]),
					  bytes_full(lg.p[i], lg.n[i]));
				r = 1;
			}
			if (r == 0 && i == lg.count - 1 && lg.unterminated)
				r = fail(x, 1,
					 "%s: line %zu: expected a terminating LF, got the end of "
					 "output",
					 where, i + 1);
		}
		free(path.p);
		hxv_arena_free(&a);
	}
	lines_free(&le);
	lines_free(&lg);
	return r;
}

static int bytes_compare(struct xctx *x, const char *where, const char *file, const char *exp,
			 size_t exp_len, const char *got, size_t got_len)
{
	size_t k = 0, line = 1, ls = 0;

	while (k < exp_len && k < got_len && exp[k] == got[k]) {
		if (exp[k] == '\n') {
			line++;
			ls = k + 1;
		}
		k++;
	}
	if (k == exp_len && k == got_len)
		return 0;
	sb_printf(&x->msg, "%s: differs from ", where);
	sb_esc(&x->msg, file, strlen(file));
	sb_printf(&x->msg, " at byte %zu (line %zu): expected ", k, line);
	/* The line on each side with its LF, cut around the difference when long; in full in
	 * result.json. */
	if (k < exp_len) {
		const char *nl = memchr(exp + ls, '\n', exp_len - ls);
		size_t n = nl ? (size_t)(nl - exp - ls) + 1 : exp_len - ls;

		show_around(&x->msg, exp + ls, n, k - ls);
		free(x->full_exp);
		x->full_exp = bytes_full(exp + ls, n);
	} else {
		sb_puts(&x->msg, "end of output");
	}
	sb_puts(&x->msg, ", got ");
	if (k < got_len) {
		const char *nl = memchr(got + ls, '\n', got_len - ls);
		size_t n = nl ? (size_t)(nl - got - ls) + 1 : got_len - ls;

		show_around(&x->msg, got + ls, n, k - ls);
		free(x->full_got);
		x->full_got = bytes_full(got + ls, n);
	} else {
		sb_puts(&x->msg, "end of output");
	}
	return 1;
}

static int check_output(struct xctx *x, const char *key)
{
	json_t *spec = json_object_get(x->c->expect, key), *re;
	const struct hobs_proc *p;
	const char *file, *data;
	char where[32];
	size_t len;
	int r;

	if (!spec)
		return 0;
	snprintf(where, sizeof(where), "expect.%s", key);
	r = get_proc(x, where, spec, &p);
	if (r < 0)
		return r;
	data = strcmp(key, "stdout") == 0 ? p->out : p->err;
	len = strcmp(key, "stdout") == 0 ? p->out_len : p->err_len;
	if (!data)
		data = "", len = 0;

	file = json_string_value(json_object_get(spec, "file"));
	re = json_object_get(spec, "regex");
	if (json_is_true(json_object_get(spec, "empty"))) {
		if (len == 0)
			return 0;
		sb_printf(&x->msg, "%s: expected empty, got %zu bytes: ", where, len);
		show_bytes(&x->msg, data, len);
		keep_full(x, strdup("\"\""), bytes_full(data, len));
		return 1;
	}
	if (re) {
		bool ok;

		r = regex_match(x, where, json_string_value(re) ?: "", data, len, &ok);
		if (r < 0 || ok)
			return r;
		sb_printf(&x->msg, "%s: expected regex ", where);
		show_bytes(&x->msg, json_string_value(re) ?: "", json_string_length(re));
		sb_puts(&x->msg, ", got ");
		show_regex_got(&x->msg, json_string_value(re), data, len);
		keep_full(x, bytes_full(json_string_value(re) ?: "", json_string_length(re)),
			  bytes_full(data, len));
		return 1;
	}
	if (file) {
		_cleanup_free_ char *exp = NULL;
		const char *cmp = json_string_value(json_object_get(spec, "compare"));
		size_t exp_len = 0;

		r = read_fixture(x, where, file, &exp, &exp_len);
		if (r < 0)
			return r;
		if (cmp && strcmp(cmp, "jsonl") == 0)
			return jsonl_compare(x, where, file, exp, exp_len, data, len);
		return bytes_compare(x, where, file, exp, exp_len, data, len);
	}
	return fail(x, -EINVAL, "%s: none of file, regex, empty", where);
}

static int check_stdout(struct xctx *x)
{
	return check_output(x, "stdout");
}

static int check_stderr(struct xctx *x)
{
	return check_output(x, "stderr");
}

/* ---- streams: events and records ---------------------------------------------------------------
 */

struct events {
	struct hxv_arena a;
	struct hxv *ev; /* one object per line */
	size_t n;
};

static void events_free(struct events *e)
{
	free(e->ev);
	hxv_arena_free(&e->a);
}

static const struct hxv *ev_type(const struct hxv *ev)
{
	return hxv_get(ev, "type", 4);
}

/* "dns_query" names dev.cellos.events.cell.observability.v1.dns_query; so does the full type. */
static bool type_is(const struct hxv *t, const char *want)
{
	size_t wl = strlen(want);

	if (!t || t->t != HXV_STR)
		return false;
	if (t->n == wl)
		return memcmp(t->s, want, wl) == 0;
	return t->n > wl && t->s[t->n - wl - 1] == '.' && memcmp(t->s + t->n - wl, want, wl) == 0;
}

/* Parse a proc's event stream; a line that is not an event with a string type is a FAIL. */
static int events_load(struct xctx *x, const char *where, const struct hobs_proc *p,
		       struct events *ret)
{
	struct lines l;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!p->events)
		return fail(x, 1, "%s: expected an event stream from start step \"%s\", got none",
			    where, p->name);
	r = split_lines(p->events, p->events_len, &l);
	if (r < 0)
		return r;
	ret->ev = calloc(l.count ?: 1, sizeof(*ret->ev));
	if (!ret->ev) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.count; i++) {
		const struct hxv *t;
		char why[96];

		if (l.n[i] > LINE_MAX_LEN) {
			r = fail(x, 1, "%s: line %zu: expected at most %u bytes, got %zu", where,
				 i + 1, LINE_MAX_LEN, l.n[i]);
			goto out;
		}
		r = hxv_parse(&ret->a, l.p[i], l.n[i], &ret->ev[i], why, sizeof(why));
		if (r == -EBADMSG) {
			sb_printf(&x->msg,
				  "%s: line %zu: expected JSON, got text that is not (%s): ", where,
				  i + 1, why);
			show_bytes(&x->msg, l.p[i], l.n[i]);
			r = 1;
		}
		if (r != 0)
			goto out;
		ret->n = i + 1;
		t = ev_type(&ret->ev[i]);
		if (ret->ev[i].t != HXV_OBJ || !t || t->t != HXV_STR) {
			sb_printf(&x->msg,
				  "%s: line %zu: expected an event with a string \"type\", got ",
				  where, i + 1);
			show(&x->msg, &ret->ev[i]);
			r = 1;
			goto out;
		}
		if (i == l.count - 1 && l.unterminated) {
			r = fail(x, 1,
				 "%s: line %zu: expected a terminating LF, got the end of output",
				 where, i + 1);
			goto out;
		}
	}
out:
	lines_free(&l);
	if (r != 0)
		events_free(ret);
	return r;
}

static int records_load(struct xctx *x, const char *where, const struct hobs_proc *p,
			struct hrec **ret, size_t *ret_n)
{
	char why[160];
	int r;

	if (!p->records)
		return fail(x, 1, "%s: expected a record stream from start step \"%s\", got none",
			    where, p->name);
	r = hrec_parse(p->records, p->records_len, ret, ret_n, why, sizeof(why));
	if (r == -EBADMSG)
		return fail(x, 1, "%s: %s", where, why);
	return r;
}

/* What the item matcher needs from a stream, events or records alike. */
struct cand {
	size_t n;
	const char *noun; /* "event", "record" */
	struct events *ev;
	const struct hrec *rec;
};

static bool cand_type(const struct cand *c, size_t i, const char *type)
{
	return !type || (c->ev && type_is(ev_type(&c->ev->ev[i]), type));
}

static void cand_where(const struct cand *c, size_t i, struct sbuf *b)
{
	if (c->ev)
		sb_printf(b, "line %zu", i + 1);
	else
		sb_printf(b, "record %zu", i);
}

/* The value at a field path; records give numbers, addresses dotted for string matchers. */
static int cand_field(struct xctx *x, const struct cand *c, size_t i, const char *path, json_t *m,
		      struct hxv *tmp, const struct hxv **ret)
{
	const struct hrec *r;
	char buf[HREC_ADDR_TEXT];
	uint64_t u;
	size_t n;

	if (c->ev) {
		*ret = hxv_path(&c->ev->ev[i], path);
		return 0;
	}
	r = &c->rec[i];
	if (hrec_addr_text(r, path, buf) == 0) {
		tmp->t = HXV_STR; /* v2 addresses: text only */
	} else if (hrec_field(r, path, &u) < 0) {
		return fail(x, -EINVAL, "records: \"%s\" is not a field of a v%d record", path,
			    r->version);
	} else if ((strcmp(path, "src_ip") == 0 || strcmp(path, "dst_ip") == 0) &&
		   (json_is_string(json_object_get(m, "exact")) || json_object_get(m, "regex"))) {
		hrec_ip_str((uint32_t)u, buf);
		tmp->t = HXV_STR;
	} else {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)u);
		tmp->t = HXV_INT;
	}
	n = strlen(buf);
	tmp->s = hxv_arena_strndup(&x->a, buf, n);
	tmp->n = n;
	*ret = tmp;
	return tmp->s ? 0 : -ENOMEM;
}

/*
 * Does candidate i satisfy every field matcher? 0 with *ok; on a mismatch *bad_key is the
 * first failing field and *n_ok how many held before it (to find the closest miss).
 */
static int cand_match(struct xctx *x, const struct cand *c, size_t i, const char *where,
		      json_t *fields, bool *ok, const char **bad_key, size_t *n_ok)
{
	const char *key;
	json_t *m;

	*ok = true;
	*n_ok = 0;
	json_object_foreach(fields, key, m)
	{
		const struct hxv *v;
		struct hxv tmp;
		int r;

		r = cand_field(x, c, i, key, m, &tmp, &v);
		r = r ?: mt_eval(x, where, m, v, ok);
		if (r < 0)
			return r;
		if (!*ok) {
			*bad_key = key;
			return 0;
		}
		(*n_ok)++;
	}
	return 0;
}

/* "<where>: <key>: expected ..., got ..." for candidate i's first failing field. */
static int explain_miss(struct xctx *x, const struct cand *c, size_t i, const char *where,
			json_t *fields)
{
	const char *key = NULL;
	const struct hxv *v;
	struct hxv tmp;
	size_t n_ok;
	bool ok;
	int r;

	r = cand_match(x, c, i, where, fields, &ok, &key, &n_ok);
	if (r < 0 || ok || !key)
		return r;
	r = cand_field(x, c, i, key, json_object_get(fields, key), &tmp, &v);
	if (r < 0)
		return r;
	return mt_explain(x, key, json_object_get(fields, key), v);
}

static void item_where(char *buf, size_t len, const char *kind, size_t i, const char *type)
{
	if (type)
		snprintf(buf, len, "expect.%s.match[%zu] (%s)", kind, i, type);
	else
		snprintf(buf, len, "expect.%s.match[%zu]", kind, i);
}

/* Every item's count, then the order, then exhaustiveness (cases/README.md, Expectations). */
/*
 * Each item's own count: with "count", exactly that many candidates of its type match it;
 * without, at least one. 0, 1 (FAIL: the first item that does not hold), or -errno.
 */
static int items_counted(struct xctx *x, const char *kind, json_t *items, const struct cand *c)
{
	json_t *item;
	size_t i;
	int r;

	json_array_foreach(items, i, item)
	{
		const char *type = json_string_value(json_object_get(item, "type"));
		json_t *fields = json_object_get(item, "fields"),
		       *jcount = json_object_get(item, "count");
		size_t matched = 0, n_type = 0, best = SIZE_MAX, best_ok = 0, first = 0;
		size_t want = jcount ? (size_t)json_integer_value(jcount) : 1;
		char where[160];
		bool bad;

		item_where(where, sizeof(where), kind, i, type);
		for (size_t j = 0; j < c->n; j++) {
			const char *bad_key;
			size_t n_ok;
			bool ok;

			if (!cand_type(c, j, type))
				continue;
			n_type++;
			r = cand_match(x, c, j, where, fields, &ok, &bad_key, &n_ok);
			if (r < 0)
				return r;
			if (ok && matched++ == 0)
				first = j;
			if (!ok && (best == SIZE_MAX || n_ok > best_ok))
				best = j, best_ok = n_ok;
		}
		bad = jcount ? matched != want : matched == 0;
		if (!bad)
			continue;
		sb_printf(&x->msg, "%s: ", where);
		if (n_type == 0) {
			if (type) {
				sb_puts(&x->msg, "expected ");
				if (jcount)
					sb_printf(&x->msg, "%zu ", want);
				else
					sb_puts(&x->msg, "a ");
				sb_esc(&x->msg, type, strlen(type));
				sb_printf(&x->msg, " event%s, got none among %zu events",
					  jcount && want != 1 ? "s" : "", c->n);
			} else {
				sb_printf(&x->msg, "expected %zu matching %ss, got an empty stream",
					  want, c->noun);
			}
		} else if (matched == 0) {
			r = explain_miss(x, c, best, where, fields);
			if (r < 0)
				return r;
		} else if (matched < want && best != SIZE_MAX) {
			sb_printf(&x->msg, "expected %zu matching %ss, got %zu; closest miss (",
				  want, c->noun, matched);
			cand_where(c, best, &x->msg);
			sb_puts(&x->msg, "): ");
			r = explain_miss(x, c, best, where, fields);
			if (r < 0)
				return r;
		} else {
			sb_printf(&x->msg, "expected %zu matching %ss, got %zu", want, c->noun,
				  matched);
			if (matched > want) {
				sb_puts(&x->msg, " (first: ");
				cand_where(c, first, &x->msg);
				sb_puts(&x->msg, ")");
			}
		}
		return 1;
	}
	return 0;
}

/* "ordered": each item takes its matches (count, default 1) after those of the one before. */
static int items_ordered(struct xctx *x, const char *kind, json_t *items, const struct cand *c)
{
	size_t i, pos = 0, prev_last = 0;
	bool have_prev = false;
	json_t *item;
	int r;

	json_array_foreach(items, i, item)
	{
		const char *type = json_string_value(json_object_get(item, "type"));
		json_t *fields = json_object_get(item, "fields");
		json_t *jcount = json_object_get(item, "count");
		size_t want = jcount ? (size_t)json_integer_value(jcount) : 1, got = 0;
		size_t j, last = pos;
		char where[160];

		item_where(where, sizeof(where), kind, i, type);
		for (j = pos; j < c->n && got < want; j++) {
			const char *bad_key;
			size_t n_ok;
			bool ok;

			if (!cand_type(c, j, type))
				continue;
			r = cand_match(x, c, j, where, fields, &ok, &bad_key, &n_ok);
			if (r < 0)
				return r;
			if (ok) {
				got++;
				last = j;
			}
		}
		if (got < want) {
			sb_printf(&x->msg, "%s: out of order: expected %zu matching %ss after ",
				  where, want, c->noun);
			if (have_prev) {
				cand_where(c, prev_last, &x->msg);
				sb_printf(&x->msg, " (matched by match[%zu])", i - 1);
			} else {
				sb_puts(&x->msg, "the start");
			}
			sb_printf(&x->msg, ", found %zu", got);
			return 1;
		}
		if (want) {
			pos = last + 1;
			prev_last = last;
			have_prev = true;
		}
	}
	return 0;
}

/* "exhaustive": every candidate matches some item. */
static int items_exhaustive(struct xctx *x, const char *kind, json_t *items, const struct cand *c)
{
	json_t *item;
	size_t i;
	int r;

	char ex_where[64];

	snprintf(ex_where, sizeof(ex_where), "expect.%s.exhaustive", kind);
	for (size_t j = 0; j < c->n; j++) {
		bool any = false;

		json_array_foreach(items, i, item)
		{
			const char *type = json_string_value(json_object_get(item, "type"));
			const char *bad_key;
			size_t n_ok;
			bool ok;

			if (!cand_type(c, j, type))
				continue;
			r = cand_match(x, c, j, ex_where, json_object_get(item, "fields"), &ok,
				       &bad_key, &n_ok);
			if (r < 0)
				return r;
			if (ok) {
				any = true;
				break;
			}
		}
		if (any)
			continue;
		sb_printf(&x->msg,
			  "expect.%s.exhaustive: expected every %s to match an item of "
			  "expect.%s.match, got ",
			  kind, c->noun, kind);
		cand_where(c, j, &x->msg);
		if (c->ev) {
			const struct hxv *t = ev_type(&c->ev->ev[j]);

			sb_puts(&x->msg, " (");
			sb_esc(&x->msg, t->s, t->n);
			sb_puts(&x->msg, ")");
		}
		sb_puts(&x->msg, " matching none");
		return 1;
	}
	return 0;
}

/*
 * distinct and same: over the candidates an item matches (every field), the field's values
 * differ pairwise, or all equal the first. 0, 1 (FAIL naming both candidates), or -errno.
 */
static int item_across(struct xctx *x, const char *where, const char *type, json_t *fields,
		       const char *key, bool distinct, const struct cand *c)
{
	_cleanup_free_ size_t *idx = calloc(c->n ? c->n : 1, sizeof(*idx));
	const struct hxv **val = NULL;
	size_t n = 0;
	int r = 0;

	if (!idx)
		return -ENOMEM;
	if (!c->ev)
		return fail(x, -EINVAL, "%s: %s: distinct and same compare event fields", where,
			    key);
	for (size_t j = 0; j < c->n; j++) {
		const char *bad_key;
		size_t n_ok;
		bool ok;

		if (!cand_type(c, j, type))
			continue;
		r = cand_match(x, c, j, where, fields, &ok, &bad_key, &n_ok);
		if (r < 0)
			return r;
		if (ok)
			idx[n++] = j;
	}
	val = calloc(n ? n : 1, sizeof(*val));
	if (!val)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		val[k] = hxv_path(&c->ev->ev[idx[k]], key);
	/* Quadratic, but the streams these compare hold at most a few thousand events. */
	for (size_t k = 1; k < n && r == 0; k++)
		for (size_t l = 0; l < (distinct ? k : 1) && r == 0; l++) {
			if (hxv_equal(val[l], val[k]) != distinct)
				continue;
			sb_printf(&x->msg, "%s: ", where);
			sb_esc(&x->msg, key, strlen(key));
			sb_printf(&x->msg, ": expected %s across the %zu matching %ss, got ",
				  distinct ? "distinct values" : "the same value", n, c->noun);
			show(&x->msg, val[l]);
			sb_puts(&x->msg, " (");
			cand_where(c, idx[l], &x->msg);
			sb_printf(&x->msg, ") %s ", distinct ? "and again" : "but");
			if (!distinct)
				show(&x->msg, val[k]);
			sb_puts(&x->msg, distinct ? "(" : " (");
			cand_where(c, idx[k], &x->msg);
			sb_puts(&x->msg, ")");
			r = 1;
		}
	free(val);
	return r;
}

/* Every field of every item with a distinct or same matcher. */
static int items_across(struct xctx *x, const char *kind, json_t *items, const struct cand *c)
{
	json_t *item;
	size_t i;

	json_array_foreach(items, i, item)
	{
		const char *type = json_string_value(json_object_get(item, "type"));
		json_t *fields = json_object_get(item, "fields"), *m;
		const char *key;
		char where[160];

		item_where(where, sizeof(where), kind, i, type);
		json_object_foreach(fields, key, m)
		{
			bool distinct = json_object_get(m, "distinct") != NULL;
			int r;

			if (!distinct && !json_object_get(m, "same"))
				continue;
			r = item_across(x, where, type, fields, key, distinct, c);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

static int check_items(struct xctx *x, const char *kind, json_t *spec, const struct cand *c)
{
	json_t *items = json_object_get(spec, "match");
	const char *order = json_string_value(json_object_get(spec, "order"));
	int r;

	r = items_counted(x, kind, items, c);
	if (r == 0)
		r = items_across(x, kind, items, c);
	if (r == 0 && order && strcmp(order, "ordered") == 0)
		r = items_ordered(x, kind, items, c);
	if (r == 0 && json_is_true(json_object_get(spec, "exhaustive")))
		r = items_exhaustive(x, kind, items, c);
	return r;
}

/* ---- schema validation through tests/validate_events.py
 * -------------------------------------------- */

/* The validator's report, its temporary file name replaced by "events", lines joined. */
static void schema_message(struct xctx *x, const char *out, size_t len, const char *tmp)
{
	struct sbuf t = { .limit = SHOW_MAX };
	size_t tl = strlen(tmp);

	for (size_t i = 0; i < len && !t.cut;) {
		if (len - i >= tl && memcmp(out + i, tmp, tl) == 0) {
			sb_whole(&t, "events", 6);
			i += tl;
		} else if (out[i] == '\n') {
			if (i + 1 < len)
				sb_whole(&t, " | ", 3);
			i++;
		} else {
			const char *nl = memchr(out + i, '\n', len - i);
			const char *hit = memmem(out + i, len - i, tmp, tl);
			size_t n = (nl ? (size_t)(nl - out) : len) - i;

			if (hit && (size_t)(hit - out) - i < n)
				n = (size_t)(hit - out) - i;
			sb_esc(&t, out + i, n);
			i += n;
		}
	}
	sb_append_cut(&x->msg, &t);
	free(t.p);
}

static int check_schema(struct xctx *x, const struct hobs_proc *p)
{
	static const char where[] = "expect.events.schema";
	_cleanup_free_ char *script = NULL, *schemas = NULL, *tmp = NULL, *out = NULL;
	const char *tmpdir = getenv("TMPDIR");
	posix_spawn_file_actions_t fa;
	size_t out_len = 0;
	int pfd[2], fd, status = 0, r;
	pid_t pid;

	if (!p->events || p->events_len == 0)
		return 0; /* nothing to validate; a missing stream fails elsewhere */
	if (!x->o->srcdir)
		return fail(x, -EINVAL, "%s: no source directory for the validator", where);
	if (asprintf(&script, "%s/tests/validate_events.py", x->o->srcdir) < 0 ||
	    asprintf(&schemas, "%s/fixtures/schemas", x->o->srcdir) < 0 ||
	    asprintf(&tmp, "%s/cellcheck-events.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") < 0)
		return -ENOMEM;
	if (access(script, R_OK) < 0)
		return fail(x, -errno, "%s: cannot read %s: %s", where, script, strerror(errno));
	out = malloc(SCHEMA_OUTPUT);
	if (!out)
		return -ENOMEM;
	/* Unlinked at once and read as the validator's stdin: a killed run leaves no file. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return fail(x, -errno, "%s: temporary file: %s", where, strerror(errno));
	unlink(tmp);
	r = util_write_all(fd, p->events, p->events_len);
	if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return fail(x, r, "%s: writing a temporary file: %s", where, strerror(-r));
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		return fail(x, r, "%s: pipe: %s", where, strerror(-r));
	}
	{
		char *argv[] = { "/usr/bin/python3", script, "--schemas", schemas, "-", NULL };

		r = posix_spawn_file_actions_init(&fa);
		r = r ?: posix_spawn_file_actions_adddup2(&fa, fd, 0);
		r = r ?: posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
		r = r ?: posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
		r = r ?: posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(pfd[1]);
	close(fd);
	if (r != 0) {
		close(pfd[0]);
		return fail(x, -r, "%s: cannot run /usr/bin/python3: %s", where, strerror(r));
	}
	for (;;) {
		char drain[4096];
		ssize_t n = out_len < SCHEMA_OUTPUT
				    ? read(pfd[0], out + out_len, SCHEMA_OUTPUT - out_len)
				    : read(pfd[0], drain, sizeof(drain));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out_len < SCHEMA_OUTPUT)
			out_len += (size_t)n;
	}
	close(pfd[0]);
	do
		r = waitpid(pid, &status, 0) < 0 ? -errno : 0;
	while (r == -EINTR);
	/* Without the status (a SIGCHLD handler reaped it) the verdict is unknown: ERROR. */
	if (r < 0)
		return fail(x, r, "%s: waiting for validate_events.py: %s", where, strerror(-r));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
		sb_printf(&x->msg, "%s: ", where);
		schema_message(x, out, out_len, "<stdin>");
		return 1;
	}
	sb_printf(&x->msg, "%s: validate_events.py failed (status %d): ", where, status);
	schema_message(x, out, out_len, "<stdin>");
	return -EIO;
}

/* ---- the expectation kinds
 * ------------------------------------------------------------------------- */

static int check_events(struct xctx *x)
{
	json_t *spec = json_object_get(x->c->expect, "events");
	const struct hobs_proc *p;
	struct events ev;
	struct cand c;
	int r;

	if (!spec)
		return 0;
	r = get_proc(x, "expect.events", spec, &p);
	r = r ?: events_load(x, "expect.events", p, &ev);
	if (r != 0)
		return r;
	c = (struct cand){ .n = ev.n, .noun = "event", .ev = &ev };
	r = check_items(x, "events", spec, &c);
	events_free(&ev);
	if (r == 0 && json_is_true(json_object_get(spec, "schema")))
		r = check_schema(x, p);
	return r;
}

static const char *const pad_names[] = { "pad0", "pad1" };

static int check_records(struct xctx *x)
{
	json_t *spec = json_object_get(x->c->expect, "records"), *mono, *f;
	_cleanup_free_ struct hrec *rec = NULL;
	const struct hobs_proc *p;
	struct cand c;
	size_t n = 0, i;
	int r;

	if (!spec)
		return 0;
	r = get_proc(x, "expect.records", spec, &p);
	r = r ?: records_load(x, "expect.records", p, &rec, &n);
	if (r != 0)
		return r;
	if (json_is_true(json_object_get(spec, "pad_zero")))
		for (i = 0; i < n; i++) {
			int off = hrec_pad_nonzero(&rec[i]);
			bool v2 = rec[i].version == 2; /* v2: pad0 is byte 39 alone */
			int start = v2 ? 39 : off < 16 ? 13 : 33, len = v2 ? 1 : off < 16 ? 3 : 7;

			if (off < 0)
				continue;
			sb_printf(&x->msg,
				  "expect.records.pad_zero: record %zu: %s: expected zeros, got", i,
				  pad_names[!v2 && off >= 16]);
			for (int k = 0; k < len; k++)
				sb_printf(&x->msg, " %02x", rec[i].raw[start + k]);
			return 1;
		}
	mono = json_object_get(spec, "monotonic");
	json_array_foreach(mono, i, f)
	{
		const char *name = json_string_value(f);

		for (size_t k = 1; k < n; k++) {
			uint64_t a, b;

			if (hrec_field(&rec[k - 1], name, &a) < 0 ||
			    hrec_field(&rec[k], name, &b) < 0)
				return fail(x, -EINVAL,
					    "expect.records.monotonic: \"%s\" is not a "
					    "record field",
					    name);
			if (b < a)
				return fail(
					x, 1,
					"expect.records.monotonic: record %zu: expected %s %llu or "
					"more (record %zu's), got %llu",
					k, name, (unsigned long long)a, k - 1,
					(unsigned long long)b);
		}
	}
	c = (struct cand){ .n = n, .noun = "record", .rec = rec };
	return check_items(x, "records", spec, &c);
}

/* A response counts as none when absent, null, or a driver result with no replies. */
static bool resp_none(const struct hobs_resp *r)
{
	json_t *rep;

	if (!r || !r->result || json_is_null(r->result))
		return true;
	rep = json_object_get(r->result, "replies");
	return json_is_array(rep) && json_array_size(rep) == 0;
}

static int check_responses(struct xctx *x)
{
	json_t *arr = json_object_get(x->c->expect, "responses"), *item;
	size_t i;
	int r;

	json_array_foreach(arr, i, item)
	{
		const char *step = json_string_value(json_object_get(item, "step"));
		json_t *fields = json_object_get(item, "fields"), *m;
		const struct hobs_resp *resp = NULL;
		const char *key;
		char where[160];
		struct hxv v;

		snprintf(where, sizeof(where), "expect.responses[%zu] (%s)", i, step ?: "?");
		for (size_t k = 0; step && k < x->o->n_resps; k++)
			if (x->o->resps[k].step && strcmp(x->o->resps[k].step, step) == 0)
				resp = &x->o->resps[k];
		if (json_is_true(json_object_get(item, "none"))) {
			if (resp_none(resp))
				continue;
			r = hxv_from_json(&x->a, resp->result, &v);
			if (r < 0)
				return r;
			sb_printf(&x->msg, "%s: expected no response, got ", where);
			show(&x->msg, &v);
			keep_full(x, strdup("no response"), render_full(&v));
			push_problem(x, 1);
			continue;
		}
		if (!resp || !resp->result) {
			push_problem(x, fail(x, 1,
					     "%s: expected a response, got none (the step did not "
					     "record one)",
					     where));
			continue;
		}
		r = hxv_from_json(&x->a, resp->result, &v);
		if (r < 0)
			return r;
		/* Every field of every response: a wrong RCODE does not hide a wrong ID. */
		size_t before = x->n_probs;

		json_object_foreach(fields, key, m)
		{
			const struct hxv *fv = hxv_path(&v, key);
			bool ok;

			r = mt_eval(x, where, m, fv, &ok);
			if (r == -ENOMEM)
				return r;
			if (r < 0) {
				push_problem(x, r);
				continue;
			}
			if (ok)
				continue;
			sb_printf(&x->msg, "%s: ", where);
			r = mt_explain(x, key, m, fv);
			if (r == -ENOMEM)
				return r;
			push_problem(x, 1);
		}
		if (x->n_probs > before && json_is_true(json_object_get(resp->result, "none"))) {
			/* The driver got no answer: one problem for it, not one per field. */
			const char *e = json_string_value(json_object_get(resp->result, "error"));

			for (size_t k = before; k < x->n_probs; k++) {
				free(x->probs[k].msg);
				free(x->probs[k].expected);
				free(x->probs[k].got);
			}
			x->n_probs = before;
			sb_printf(&x->msg, "%s: expected a response with", where);
			json_object_foreach(fields, key, m) sb_printf(&x->msg, " %s", key);
			sb_printf(&x->msg, ", got none%s%s%s", e ? " (" : "", e ?: "",
				  e ? ")" : "");
			push_problem(x, 1);
		}
	}
	return 0;
}

/* A counter against a bare integer or a matcher. */
static int count_is(struct xctx *x, const char *key, json_t *want, const struct hxv *got)
{
	char where[160];
	json_t *m = want;
	bool ok;
	int r;

	/* For sums: the value just read, whatever it is compared with. */
	x->last_count = got->s ? strtoull(got->s, NULL, 10) : 0;
	x->last_count_ok = true;

	snprintf(where, sizeof(where), "expect.counts.%s", key);
	if (json_is_integer(want)) {
		m = json_pack("{s:O}", "exact", want);
		if (!m)
			return -ENOMEM;
	}
	r = mt_eval(x, where, m, got, &ok);
	if (r == 0 && !ok) {
		sb_printf(&x->msg, "%s: ", where);
		r = mt_explain(x, NULL, m, got) ?: 1;
	}
	if (m != want)
		json_decref(m);
	return r;
}

static int count_one(struct xctx *x, const char *key, json_t *want)
{
	json_t *ex = x->c->expect;
	const struct hobs_proc *p;
	char where[160];
	struct hxv got;
	int r;

	snprintf(where, sizeof(where), "expect.counts.%s", key);
	if (strncmp(key, "var:", 4) == 0) {
		/* A number the runner measured (ready.STEP.events, upstream.id_distinct, ...). */
		const char *val = json_string_value(json_object_get(x->o->vars, key + 4));
		char *end;
		unsigned long long u;

		if (!val)
			return fail(x, 1, "%s: expected the runner's value %s, got none", where,
				    key + 4);
		errno = 0;
		u = strtoull(val, &end, 10);
		if (errno || end == val || *end)
			return fail(x, -EINVAL, "%s: runner value %s is \"%s\"", where, key + 4,
				    val);
		r = u64_xv(x, u, &got);
	} else if (strcmp(key, "upstream_queries") == 0) {
		if (x->o->upstream_queries == UINT64_MAX)
			return fail(x, -EINVAL, "%s: the case has no upstream", where);
		r = u64_xv(x, x->o->upstream_queries, &got);
	} else if (strcmp(key, "records") == 0) {
		_cleanup_free_ struct hrec *rec = NULL;
		size_t n = 0;

		r = get_proc(x, where, json_object_get(ex, "records"), &p);
		r = r ?: records_load(x, where, p, &rec, &n);
		r = r ?: u64_xv(x, n, &got);
	} else {
		const struct hxv *found = NULL;
		struct events ev;
		size_t n = 0;

		r = get_proc(x, where, json_object_get(ex, "events"), &p);
		r = r ?: events_load(x, where, p, &ev);
		if (r != 0)
			return r;
		for (size_t i = 0; i < ev.n; i++) {
			const struct hxv *t = ev_type(&ev.ev[i]);

			if (strcmp(key, "lost") == 0	      ? type_is(t, "flow_monitor_summary")
			    : strncmp(key, "events:", 7) == 0 ? type_is(t, key + 7)
							      : true) {
				n++;
				found = &ev.ev[i];
			}
		}
		if (strcmp(key, "lost") != 0) {
			r = u64_xv(x, n, &got);
		} else if (n != 1) {
			r = fail(x, 1, "%s: expected one flow_monitor_summary event, got %zu",
				 where, n);
		} else {
			found = hxv_path(found, "data.recordsLost");
			if (!hxv_is_num(found)) {
				sb_printf(
					&x->msg,
					"%s: expected data.recordsLost of flow_monitor_summary to be a "
					"number, got ",
					where);
				show(&x->msg, found);
				r = 1;
			} else {
				/* Copied out: the events arena goes away before the comparison. */
				got = *found;
				got.s = hxv_arena_strndup(&x->a, found->s, found->n);
				r = got.s ? 0 : -ENOMEM;
			}
		}
		events_free(&ev);
	}
	if (r != 0)
		return r;
	return count_is(x, key, want, &got);
}

/* "records+lost": the sum of the counters, compared like one. */
static int count_sum(struct xctx *x, const char *key, json_t *want)
{
	char where[160], term[64];
	uint64_t sum = 0;
	struct hxv got;
	int r;

	snprintf(where, sizeof(where), "expect.counts.%s", key);
	for (const char *k = key;;) {
		const char *plus = strchr(k, '+');
		size_t n = plus ? (size_t)(plus - k) : strlen(k);
		json_t *any = json_pack("{s:b}", "present", 1);

		if (!any)
			return -ENOMEM;
		snprintf(term, sizeof(term), "%.*s", (int)n, k);
		/* Each term through count_one's own reading, with a matcher any value passes. */
		x->last_count_ok = false;
		r = count_one(x, term, any);
		json_decref(any);
		if (r != 0)
			return r;
		sum += x->last_count;
		if (!plus)
			break;
		k = plus + 1;
	}
	r = u64_xv(x, sum, &got);
	return r ?: count_is(x, key, want, &got);
}

static int check_counts(struct xctx *x)
{
	json_t *counts = json_object_get(x->c->expect, "counts"), *want;
	const char *key;
	int r;

	json_object_foreach(counts, key, want)
	{
		r = strchr(key, '+') ? count_sum(x, key, want) : count_one(x, key, want);
		if (r == -ENOMEM)
			return r;
		if (r != 0)
			push_problem(x, r);
	}
	return 0;
}

/* expect.btf: the struct's layout as the profile's BPF object describes it in BTF. */
static int check_btf(struct xctx *x)
{
	json_t *b = json_object_get(x->c->expect, "btf"), *members, *m;
	const char *name;
	struct btf *btf;
	const struct btf_type *t;
	const struct btf_member *bm;
	bool exhaustive;
	size_t i;
	int id, r = 0;

	if (!b)
		return 0;
	if (!x->o->bpf_object)
		return fail(x, -ENOENT, "expect.btf: the profile names no artifacts.bpf_object");
	name = json_string_value(json_object_get(b, "struct"));
	exhaustive = json_is_true(json_object_get(b, "exhaustive"));
	members = json_object_get(b, "members");
	btf = btf__parse_elf(x->o->bpf_object, NULL);
	if (!btf)
		return fail(x, -errno ?: -EINVAL, "expect.btf: %s: no BTF (%s)", x->o->bpf_object,
			    strerror(errno));
	id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (id < 0) {
		r = fail(x, 1, "expect.btf: expected struct %s in the BTF of %s, got none", name,
			 x->o->bpf_object);
		goto out;
	}
	t = btf__type_by_id(btf, (__u32)id);
	if (json_object_get(b, "size") &&
	    (json_int_t)t->size != json_integer_value(json_object_get(b, "size"))) {
		r = fail(x, 1, "expect.btf: struct %s: size %u, expected %lld", name, t->size,
			 (long long)json_integer_value(json_object_get(b, "size")));
		goto out;
	}
	bm = btf_members(t);
	if (exhaustive && btf_vlen(t) != json_array_size(members)) {
		r = fail(x, 1, "expect.btf: struct %s: %u members, expected %zu", name, btf_vlen(t),
			 json_array_size(members));
		goto out;
	}
	json_array_foreach(members, i, m)
	{
		const char *want = json_string_value(json_object_get(m, "name"));
		json_int_t off = json_integer_value(json_object_get(m, "offset"));
		json_int_t size = json_integer_value(json_object_get(m, "size"));
		int k = -1;

		/* Exhaustive: in this order; otherwise found by name anywhere. */
		for (unsigned int j = 0; j < btf_vlen(t); j++) {
			if ((!exhaustive || j == i) &&
			    strcmp(btf__name_by_offset(btf, bm[j].name_off), want) == 0) {
				k = (int)j;
				break;
			}
		}
		if (k < 0) {
			r = fail(x, 1, "expect.btf: struct %s: member %zu: expected %s, got %s",
				 name, i, want,
				 exhaustive && i < btf_vlen(t)
					 ? btf__name_by_offset(btf, bm[i].name_off)
					 : "none");
			goto out;
		}
		__u32 bits = btf_member_bit_offset(t, (__u32)k);
		__s64 msize = btf__resolve_size(btf, bm[k].type);

		if (bits % 8 || (json_int_t)(bits / 8) != off || msize != size) {
			r = fail(
				x, 1,
				"expect.btf: struct %s: %s: offset %u size %lld, expected offset %lld "
				"size %lld",
				name, want, bits / 8, (long long)msize, (long long)off,
				(long long)size);
			goto out;
		}
	}
out:
	btf__free(btf);
	return r;
}

void hexp_problems_free(struct hexp_problem *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].msg);
		free(p[i].expected);
		free(p[i].got);
	}
	free(p);
}

int hexp_check_all(const struct hcase *c, const struct hobs *o, struct hexp_problem **ret,
		   size_t *ret_n)
{
	static int (*const checks[])(
		struct xctx *) = { check_stdout,  check_stderr, check_responses, check_events,
				   check_records, check_counts, check_btf };
	struct xctx x = { .c = c, .o = o };
	int worst = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!c || !o || !c->expect)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(checks); i++) {
		int r = checks[i](&x);

		if (r == -ENOMEM || x.msg.oom) {
			x.probs_oom = true;
			break;
		}
		if (r != 0)
			push_problem(&x, r);
	}
	free(x.msg.p);
	free(x.full_exp);
	free(x.full_got);
	hxv_arena_free(&x.a);
	if (x.probs_oom) {
		hexp_problems_free(x.probs, x.n_probs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < x.n_probs; i++)
		if (x.probs[i].r < 0 && worst >= 0)
			worst = x.probs[i].r;
		else if (!worst)
			worst = 1;
	*ret = x.probs;
	*ret_n = x.n_probs;
	return worst;
}

int hexp_check(const struct hcase *c, const struct hobs *o, char **msg)
{
	struct hexp_problem *p;
	size_t n;
	int r;

	*msg = NULL;
	r = hexp_check_all(c, o, &p, &n);
	if (r == -ENOMEM) {
		*msg = strdup("out of memory while checking expectations");
		return r;
	}
	if (n == 1) {
		*msg = TAKE_PTR(p[0].msg);
	} else if (n > 1 && asprintf(msg, "%s (and %zu more)", p[0].msg, n - 1) < 0) {
		*msg = NULL;
	}
	hexp_problems_free(p, n);
	return r;
}
