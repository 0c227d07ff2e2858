// SPDX-License-Identifier: Apache-2.0
/*
 * The output-fault table (evf.h). Every edit is a splice of the original line: a small scanner
 * finds the byte span of a member (key to end of value) by walking the JSON text, so what a
 * fault does not touch keeps its exact bytes, and a fault may write what no JSON library
 * would (a duplicate member, a raw quote, a CR before the LF).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evf.h"

#define TYPE_PREFIX "dev.cellos.events.cell.observability.v1."

/* ---- scanning ---------------------------------------------------------------------------- */

struct line {
	const char *s;
	size_t n; /* without the line end */
};

static size_t skip_ws(const struct line *l, size_t i)
{
	while (i < l->n && (l->s[i] == ' ' || l->s[i] == '\t' || l->s[i] == '\r'))
		i++;
	return i;
}

/* The end of the string token at i (just past its closing quote), or 0. */
static size_t str_end(const struct line *l, size_t i)
{
	if (i >= l->n || l->s[i] != '"')
		return 0;
	for (i++; i < l->n; i++) {
		if (l->s[i] == '\\')
			i++;
		else if (l->s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The end of the value at i (object, array, string or scalar), or 0 when it is not one. */
static size_t value_end(const struct line *l, size_t i)
{
	size_t depth = 0;

	i = skip_ws(l, i);
	if (i >= l->n)
		return 0;
	if (l->s[i] == '"')
		return str_end(l, i);
	if (l->s[i] != '{' && l->s[i] != '[') {
		size_t b = i;

		while (i < l->n && !strchr(",}] \t\r", l->s[i]))
			i++;
		return i > b ? i : 0;
	}
	for (; i < l->n; i++) {
		if (l->s[i] == '"') {
			size_t e = str_end(l, i);

			if (!e)
				return 0;
			i = e - 1;
		} else if (l->s[i] == '{' || l->s[i] == '[') {
			depth++;
		} else if ((l->s[i] == '}' || l->s[i] == ']') && --depth == 0) {
			return i + 1;
		}
	}
	return 0;
}

/* A member of an object: where its key starts, where its value starts and ends. */
struct member {
	size_t key, val, end;
};

/* The first member KEY of the object at obj (the offset of its '{'): true and its spans. */
static bool member(const struct line *l, size_t obj, const char *key, struct member *ret)
{
	size_t klen = strlen(key), i = skip_ws(l, obj);

	if (i >= l->n || l->s[i] != '{')
		return false;
	for (i = skip_ws(l, i + 1); i < l->n && l->s[i] == '"';) {
		size_t ke = str_end(l, i), v, ve;

		if (!ke)
			return false;
		v = skip_ws(l, ke);
		if (v >= l->n || l->s[v] != ':')
			return false;
		v = skip_ws(l, v + 1);
		ve = value_end(l, v);
		if (!ve)
			return false;
		if (ke - i - 2 == klen && memcmp(l->s + i + 1, key, klen) == 0) {
			*ret = (struct member){ i, v, ve };
			return true;
		}
		i = skip_ws(l, ve);
		if (i < l->n && l->s[i] == ',')
			i = skip_ws(l, i + 1);
	}
	return false;
}

/* The object member at obj.key's value, for a path of two ("data", "stage"). */
static bool member2(const struct line *l, const char *outer, const char *key, struct member *ret)
{
	struct member o;

	return member(l, 0, outer, &o) && l->s[o.val] == '{' && member(l, o.val, key, ret);
}

static bool value_is(const struct line *l, const struct member *m, const char *text)
{
	size_t n = strlen(text);

	return m->end - m->val == n && memcmp(l->s + m->val, text, n) == 0;
}

static bool value_u64(const struct line *l, const struct member *m, uint64_t *ret)
{
	char buf[24], *end;

	if (m->end - m->val >= sizeof(buf) || l->s[m->val] < '0' || l->s[m->val] > '9')
		return false;
	memcpy(buf, l->s + m->val, m->end - m->val);
	buf[m->end - m->val] = '\0';
	errno = 0;
	*ret = strtoull(buf, &end, 10);
	return !errno && !*end;
}

/* The line is one whole object (a line cut short, or two glued together, is left alone). */
static bool is_object(const struct line *l)
{
	size_t i = skip_ws(l, 0), e;

	if (i >= l->n || l->s[i] != '{')
		return false;
	e = value_end(l, i);
	return e && skip_ws(l, e) == l->n;
}

/* A CloudEvent: an object with a specversion member; its type's bare name matches name. */
static bool is_event(const struct line *l, const char *name)
{
	struct member m, t;
	size_t n, p = sizeof(TYPE_PREFIX) - 1;

	if (!is_object(l) || !member(l, 0, "specversion", &m))
		return false;
	if (!name)
		return true;
	if (!member(l, 0, "type", &t) || l->s[t.val] != '"')
		return false;
	n = strlen(name);
	return t.end - t.val == p + n + 2 && memcmp(l->s + t.val + 1, TYPE_PREFIX, p) == 0 &&
	       memcmp(l->s + t.val + 1 + p, name, n) == 0;
}

/* A decoded line of `decode` (SPEC 3.2): "ok" true, a record and a flow object. */
static bool is_decoded(const struct line *l)
{
	struct member m;

	return is_object(l) && member(l, 0, "ok", &m) && value_is(l, &m, "true");
}

/* ---- editing ----------------------------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	int err;
	bool drop; /* the line goes, its end too */
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *p = realloc(o->p, cap);

		if (!p) {
			o->err = -ENOMEM;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Edits of one line, sorted by position: replace [from, to) by text. */
struct edit {
	size_t from, to;
	char text[96];
};

struct edits {
	struct edit e[8]; /* the most one fault makes is six (addr_zero_tens) */
	size_t n;
	const char *eol; /* a line end of the fault's, or NULL */
};

static void edit(struct edits *x, size_t from, size_t to, const char *text)
{
	struct edit *e;

	if (x->n == sizeof(x->e) / sizeof(x->e[0]))
		return;
	e = &x->e[x->n++];
	e->from = from;
	e->to = to;
	snprintf(e->text, sizeof(e->text), "%s", text);
}

/* Delete a member with the comma that joins it to its neighbour. */
static void edit_drop(struct edits *x, const struct line *l, const struct member *m)
{
	size_t from = m->key, to = skip_ws(l, m->end);

	if (to < l->n && l->s[to] == ',') {
		to = skip_ws(l, to + 1);
	} else { /* the last member: the comma before it goes */
		size_t b = from;

		to = m->end;
		while (b > 0 && (l->s[b - 1] == ' ' || l->s[b - 1] == '\t'))
			b--;
		if (b > 0 && l->s[b - 1] == ',')
			from = b - 1;
	}
	edit(x, from, to, "");
}

static int cmp_edit(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

/* The line with its edits applied, then its end (eol: the original's, or a fault's). */
static void apply(struct out *o, const struct line *l, struct edits *x, const char *eol)
{
	size_t at = 0;

	qsort(x->e, x->n, sizeof(x->e[0]), cmp_edit);
	for (size_t i = 0; i < x->n; i++) {
		size_t from = x->e[i].from > at ? x->e[i].from : at; /* overlaps: one comma */

		put(o, l->s + at, from - at);
		put_str(o, x->e[i].text);
		at = x->e[i].to > at ? x->e[i].to : at;
	}
	put(o, l->s + at, l->n - at);
	put_str(o, eol);
}

/* ---- the faults -------------------------------------------------------------------------- */

/*
 * A fault on one line: false when it leaves the line alone; else its edits in e, or the whole
 * new text (without the line end) written to o, or o->drop set to remove the line.
 */
typedef bool (*evf_fn)(struct evf *x, const struct line *l, struct edits *e, struct out *o);

struct evf_fault {
	const char *name;
	evf_fn fn;
	int arg; /* which mistake, for a function shared by faults */
};

/* Replace data.KEY's value of events of type TYPE (NULL: every event) with text. */
static bool set_data(const struct line *l, const char *type, const char *key, const char *text,
		     struct edits *e)
{
	struct member m;

	if (!is_event(l, type) || !member2(l, "data", key, &m))
		return false;
	edit(e, m.val, m.end, text);
	return true;
}

static bool envelope_set(const struct line *l, const char *key, const char *text, struct edits *e)
{
	struct member m;

	if (!is_event(l, NULL) || !member(l, 0, key, &m))
		return false;
	edit(e, m.val, m.end, text);
	return true;
}

/* evt.id_reused: every envelope of a producer (its source) carries its first id. */
static bool f_id_reused(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member s, id;
	size_t i;

	if (!is_event(l, NULL) || !member(l, 0, "source", &s) || !member(l, 0, "id", &id))
		return false;
	for (i = 0; i < x->n_src; i++)
		if (strlen(x->src[i].source) == s.end - s.val &&
		    memcmp(x->src[i].source, l->s + s.val, s.end - s.val) == 0)
			break;
	if (i == x->n_src) {
		if (i == sizeof(x->src) / sizeof(x->src[0]))
			return false;
		x->src[i].source = strndup(l->s + s.val, s.end - s.val);
		x->src[i].id = strndup(l->s + id.val, id.end - id.val);
		if (!x->src[i].source || !x->src[i].id) {
			free(x->src[i].source);
			free(x->src[i].id);
			return false;
		}
		x->n_src++;
		return false; /* the first keeps its own */
	}
	if (strlen(x->src[i].id) >= sizeof(e->e[0].text))
		return false;
	edit(e, id.val, id.end, x->src[i].id);
	return true;
}

/* evt.time_offset: "+00:00" for the final "Z" of the envelope time. */
static bool f_time_offset(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, NULL) || !member(l, 0, "time", &m) || m.end - m.val < 3 ||
	    memcmp(l->s + m.end - 2, "Z\"", 2) != 0)
		return false;
	edit(e, m.end - 2, m.end, "+00:00\"");
	return true;
}

/* evt.source_numbered: the source gets "/N", N counting the events (EVT-ENV-006). */
static bool f_source_numbered(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	char n[32];

	if (!is_event(l, NULL) || !member(l, 0, "source", &m) || m.end - m.val < 2 ||
	    l->s[m.end - 1] != '"')
		return false;
	snprintf(n, sizeof(n), "/%llu", x->seq++);
	edit(e, m.end - 1, m.end - 1, n);
	return true;
}

/* evt.time_monotonic: the right form, a date in January 1970 (EVT-ENV-008). */
static bool f_time_monotonic(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, NULL) || !member(l, 0, "time", &m) || m.end - m.val < 12 ||
	    l->s[m.val] != '"' || l->s[m.val + 5] != '-' || l->s[m.val + 8] != '-')
		return false;
	edit(e, m.val + 1, m.val + 11, "1970-01-01");
	return true;
}

static bool f_content_type(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return envelope_set(l, "datacontenttype", "\"application/cloudevents+json\"", e);
}

/* evt.crlf: the line ends in CR LF (only an event line that had an LF). */
static bool f_crlf(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	if (!is_event(l, NULL))
		return false;
	e->eol = "\r\n";
	return true;
}

/* evt.dup_member: specversion written twice. */
static bool f_dup_member(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	char dup[72] = ",";

	if (!is_event(l, NULL) || !member(l, 0, "specversion", &m) || m.end - m.key >= 64)
		return false;

	memcpy(dup + 1, l->s + m.key, m.end - m.key);
	dup[1 + m.end - m.key] = '\0';
	edit(e, m.end, m.end, dup);
	return true;
}

/* evt.type_short: the bare name, without the prefix. */
static bool f_type_short(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	size_t p = sizeof(TYPE_PREFIX) - 1;

	if (!is_event(l, NULL) || !member(l, 0, "type", &m) || m.end - m.val <= p + 2 ||
	    memcmp(l->s + m.val + 1, TYPE_PREFIX, p) != 0)
		return false;
	edit(e, m.val + 1, m.val + 1 + p, "");
	return true;
}

/* evt.traceparent_always: a fixed, well-formed traceparent where none was configured. */
static bool f_traceparent(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, NULL) || member(l, 0, "traceparent", &m) || !member(l, 0, "data", &m))
		return false;
	edit(e, m.key, m.key,
	     "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\",");
	return true;
}

/* evt.ext_attribute: a fact as an extension attribute, outside data. */
static bool f_ext_attribute(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, NULL) || !member(l, 0, "data", &m))
		return false;
	edit(e, m.key, m.key, "\"reasonCode\":\"none\",");
	return true;
}

static bool f_source_empty(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return envelope_set(l, "source", "\"\"", e);
}

/* evt.json_quote_raw: an escaped quote inside a string written raw (the line is not JSON). */
static bool f_json_quote_raw(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	bool in = false, changed = false;

	if (!is_event(l, NULL))
		return false;
	for (size_t i = 0; i < l->n; i++) {
		if (in && l->s[i] == '\\' && i + 1 < l->n) {
			changed |= l->s[i + 1] == '"';
			put(o, l->s[i + 1] == '"' ? "\"" : l->s + i, l->s[i + 1] == '"' ? 1 : 2);
			i++;
			continue;
		}
		in ^= l->s[i] == '"';
		put(o, l->s + i, 1);
	}
	return changed;
}

/* evt.utf8_one_per_run: a run of U+FFFD (what invalid bytes become) written as one. */
static bool f_utf8_one_per_run(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char r[] = "\xEF\xBF\xBD";
	bool changed = false;

	if (!is_event(l, NULL))
		return false;
	for (size_t i = 0; i < l->n;) {
		if (i + 3 <= l->n && memcmp(l->s + i, r, 3) == 0) {
			put(o, r, 3);
			for (i += 3; i + 3 <= l->n && memcmp(l->s + i, r, 3) == 0; i += 3)
				changed = true;
			continue;
		}
		put(o, l->s + i++, 1);
	}
	return changed;
}

static bool f_failed_stage(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return set_data(l, "dns_proxy_failed", "stage", "\"unknown\"", e);
}

/* dns.event_transport_swapped: udp for tcp and tcp for udp in dns_query. */
static bool f_transport_swapped(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, "dns_query") || !member2(l, "data", "transport", &m))
		return false;
	if (value_is(l, &m, "\"udp\""))
		edit(e, m.val, m.end, "\"tcp\"");
	else if (value_is(l, &m, "\"tcp\""))
		edit(e, m.val, m.end, "\"udp\"");
	return e->n > 0;
}

/* dns.stats_tcp_as_udp: dns_proxy_stats counts TCP messages under udpQueries. */
static bool f_stats_tcp_as_udp(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member u, t;
	uint64_t nu, nt;
	char num[24];

	if (!is_event(l, "dns_proxy_stats") || !member2(l, "data", "udpQueries", &u) ||
	    !member2(l, "data", "tcpQueries", &t) || !value_u64(l, &u, &nu) ||
	    !value_u64(l, &t, &nt) || nt == 0)
		return false;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)(nu + nt));
	edit(e, u.val, u.end, num);
	edit(e, t.val, t.end, "0");
	return true;
}

/* dns.run_id_per_event: every event's data.runId a fresh UUID, --run-id ignored (DNS-EVT-003). */
static bool f_run_id_per_event(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	char id[48];

	if (!is_event(l, NULL) || !member2(l, "data", "runId", &m))
		return false;
	snprintf(id, sizeof(id), "\"5e1f0000-0000-4000-8000-%012llx\"", x->seq++);
	edit(e, m.val, m.end, id);
	return true;
}

/* dns.listeners_reversed: dns_proxy_started's listeners array in reverse order. */
static bool f_listeners_reversed(struct evf *x, const struct line *l, struct edits *e,
				 struct out *o)
{
	struct member m;
	size_t from[8], to[8], n = 0, i;

	if (!is_event(l, "dns_proxy_started") || !member2(l, "data", "listeners", &m) ||
	    l->s[m.val] != '[')
		return false;
	for (i = skip_ws(l, m.val + 1); i < m.end && l->s[i] == '"' && n < 8;) {
		size_t end = str_end(l, i);

		if (!end || end - i >= sizeof(e->e[0].text))
			return false;
		from[n] = i;
		to[n++] = end;
		i = skip_ws(l, end);
		if (i < m.end && l->s[i] == ',')
			i = skip_ws(l, i + 1);
	}
	for (i = 0; i < n; i++) {
		char text[sizeof(e->e[0].text)];
		size_t k = n - 1 - i;

		snprintf(text, sizeof(text), "%.*s", (int)(to[k] - from[k]), l->s + from[k]);
		edit(e, from[i], to[i], text);
	}
	return n > 1;
}

/* dns.query_listen_first: every dns_query says dns_proxy_started's listen. */
static bool f_query_listen_first(struct evf *x, const struct line *l, struct edits *e,
				 struct out *o)
{
	struct member m;

	if (is_event(l, "dns_proxy_started") && member2(l, "data", "listen", &m) &&
	    m.end - m.val < sizeof(x->listen)) {
		snprintf(x->listen, sizeof(x->listen), "%.*s", (int)(m.end - m.val), l->s + m.val);
		return false;
	}
	return x->listen[0] && set_data(l, "dns_query", "listen", x->listen, e);
}

/* dns.qname_lowercased: the qname of dns_query with its ASCII letters lowercase (DNS-PRS-013). */
static bool f_qname_lowercased(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	bool changed = false;

	if (!is_event(l, "dns_query") || !member2(l, "data", "qname", &m) || l->s[m.val] != '"')
		return false;
	/* The whole line: a name is longer than an edit holds. Its JSON has no \u escape. */
	put(o, l->s, m.val);
	for (size_t i = m.val; i < m.end; i++) {
		char c = l->s[i];

		changed |= c >= 'A' && c <= 'Z';
		put(o, &(char){ c >= 'A' && c <= 'Z' ? (char)(c + 32) : c }, 1);
	}
	put(o, l->s + m.end, l->n - m.end);
	return changed;
}

/*
 * dns.root_name_empty: the root name written "" instead of "." (DNS-PRS-013): the qname of
 * dns_query, and an allowlist entry of dns_proxy_started (the same name text).
 */
static bool f_root_name_empty(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (is_event(l, "dns_query") && member2(l, "data", "qname", &m) && value_is(l, &m, "\".\""))
		edit(e, m.val, m.end, "\"\"");
	if (is_event(l, "dns_proxy_started") && member2(l, "data", "allowlist", &m) &&
	    l->s[m.val] == '[') {
		for (size_t i = skip_ws(l, m.val + 1), v; i < m.end && l->s[i] != ']';) {
			v = value_end(l, i);
			if (!v)
				break;
			if (v - i == 3 && memcmp(l->s + i, "\".\"", 3) == 0)
				edit(e, i, v, "\"\"");
			i = skip_ws(l, v);
			if (i < m.end && l->s[i] == ',')
				i = skip_ws(l, i + 1);
		}
	}
	return e->n > 0;
}

/* dns.query_id_reused: every dns_query event carries the first one's queryId (DNS-EVT-002). */
static bool f_query_id_reused(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, "dns_query") || !member2(l, "data", "queryId", &m) ||
	    m.end - m.val >= sizeof(e->e[0].text))
		return false;
	if (!x->first) {
		x->first = strndup(l->s + m.val, m.end - m.val);
		return false;
	}
	edit(e, m.val, m.end, x->first);
	return true;
}

/* Two kinds of IPv6 text mistakes of a DNS proxy (DNS-CLI-004). */
enum {
	ADDR_UNBRACKETED = 1, /* dns.v6_port_unbracketed: IP:PORT without the brackets */
	ADDR_INET_NTOP,	      /* dns.v6_text_inet_ntop: glibc's text, ::/96 in mixed notation */
};

/*
 * A quoted address or IP:PORT value (v, n bytes, quotes included) as the fault writes it into
 * ret; false when the fault leaves it alone (IPv4, no brackets to drop).
 */
static bool addr_fault_text(const char *v, size_t n, int fault, char ret[96])
{
	const char *a = v + 1, *end = v + n - 1, *rb = NULL;
	char in[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN];
	struct in6_addr bin;

	if (n < 4 || v[0] != '"' || *end != '"')
		return false;
	if (*a == '[') {
		rb = memchr(a, ']', (size_t)(end - a));
		if (!rb || rb + 1 == end || rb[1] != ':')
			return false;
		a++;
	}
	if (fault == ADDR_UNBRACKETED) {
		if (!rb)
			return false;
		snprintf(ret, 96, "\"%.*s%.*s\"", (int)(rb - a), a, (int)(end - rb - 1), rb + 1);
		return true;
	}
	if ((size_t)((rb ?: end) - a) >= sizeof(in))
		return false;
	memcpy(in, a, (size_t)((rb ?: end) - a));
	in[(rb ?: end) - a] = '\0';
	if (inet_pton(AF_INET6, in, &bin) != 1 || !inet_ntop(AF_INET6, &bin, out, sizeof(out)))
		return false;
	if (rb)
		snprintf(ret, 96, "\"[%s]%.*s\"", out, (int)(end - rb - 1), rb + 1);
	else
		snprintf(ret, 96, "\"%s\"", out);
	return true;
}

/*
 * dns.v6_port_unbracketed, dns.v6_text_inet_ntop: the address texts of dns_proxy_started
 * (listen, upstream) and dns_query (clientAddr), and upstreamResolverId where it is the
 * upstream's text (its default), as the fault writes them.
 */
static bool f_dns_addr(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char *const keys[] = { "listen", "upstream", "clientAddr",
					    "upstreamResolverId" };
	bool started = is_event(l, "dns_proxy_started");
	struct member m;
	char text[96];

	if (!started && !is_event(l, "dns_query"))
		return false;
	if (started && member2(l, "data", "upstream", &m)) {
		free(x->first);
		x->first = strndup(l->s + m.val, m.end - m.val);
	}
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (!member2(l, "data", keys[k], &m))
			continue;
		if (k == 3 && !(x->first && value_is(l, &m, x->first)))
			continue;
		if (addr_fault_text(l->s + m.val, m.end - m.val, x->f->arg, text))
			edit(e, m.val, m.end, text);
	}
	return e->n > 0;
}

/* The IPv6 text mistakes of the decoder's negative controls (FLOW-DEC-015), one a fault. */
enum {
	V6_NO_COMPRESS = 1 << 0,   /* no run of zero groups replaced by :: */
	V6_FIRST_RUN = 1 << 1,	   /* the first run of two or more, not the longest */
	V6_TIE_LAST = 1 << 2,	   /* the last of equally long runs */
	V6_SINGLE_ZERO = 1 << 3,   /* a lone zero group may be the run */
	V6_MAPPED_HEX = 1 << 4,	   /* ::ffff:0:0/96 in hexadecimal, not with a dotted quad */
	V6_UPPER = 1 << 5,	   /* uppercase digits */
	V6_LEADING_ZEROS = 1 << 6, /* four digits a group */
};

/* The zero run replaced by "::" (RFC 5952 4.2) as the fault picks it; *ret_len 0: none. */
static void v6_zero_run(const uint16_t g[8], unsigned f, int *ret_start, int *ret_len)
{
	int best = -1, best_len = 0;

	for (int i = 0; i < 8;) {
		int j = i;

		while (j < 8 && g[j] == 0)
			j++;
		if (j == i) {
			i++;
			continue;
		}
		bool take = j - i > best_len || (j - i == best_len && (f & V6_TIE_LAST));

		if (best >= 0 && (f & V6_FIRST_RUN))
			take = false;
		if (j - i >= (f & V6_SINGLE_ZERO ? 1 : 2) && take) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	*ret_start = f & V6_NO_COMPRESS ? -1 : best;
	*ret_len = f & V6_NO_COMPRESS || best < 0 ? 0 : best_len;
}

/* An IPv6 address in the text of RFC 5952, but for the fault's mistake. */
static void v6_text(const uint8_t a[16], unsigned f, char *p)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const char *digits = f & V6_UPPER ? "0123456789ABCDEF" : "0123456789abcdef";
	int start, len, n = memcmp(a, mapped, 12) || (f & V6_MAPPED_HEX) ? 8 : 6;
	uint16_t g[8];

	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a[2 * i] << 8 | a[2 * i + 1]);
	v6_zero_run(g, f, &start, &len);
	for (int i = 0; i < n;) {
		bool started = f & V6_LEADING_ZEROS;

		if (i == start) {
			*p++ = ':';
			*p++ = ':';
			i += len;
			continue;
		}
		if (i > 0 && i != start + len)
			*p++ = ':';
		for (int shift = 12; shift >= 0; shift -= 4) {
			unsigned d = (g[i] >> shift) & 0xF;

			if (d || started || shift == 0) {
				*p++ = digits[d];
				started = true;
			}
		}
		i++;
	}
	if (n == 6)
		p += sprintf(p, ":%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
	*p = '\0';
}

/*
 * decode.v6_*: srcAddr and dstAddr of IPv6 in the record, flow and data objects (decoder
 * lines and flow events) written with the fault's mistake.
 */
static bool f_v6_text(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char *const objs[] = { "record", "flow", "data" };
	static const char *const keys[] = { "srcAddr", "dstAddr" };
	struct member ob, m;

	if (!is_object(l))
		return false;
	for (int i = 0; i < 3; i++) {
		if (!member(l, 0, objs[i], &ob) || l->s[ob.val] != '{')
			continue;
		for (int k = 0; k < 2; k++) {
			char in[INET6_ADDRSTRLEN], text[96];
			struct in6_addr a;
			size_t n;

			if (!member(l, ob.val, keys[k], &m) || l->s[m.val] != '"')
				continue;
			n = m.end - m.val - 2;
			if (n >= sizeof(in) || !memchr(l->s + m.val + 1, ':', n))
				continue;
			memcpy(in, l->s + m.val + 1, n);
			in[n] = '\0';
			if (inet_pton(AF_INET6, in, &a) != 1)
				continue;
			text[0] = '"';
			v6_text(a.s6_addr, x->f->arg, text + 1);
			strcat(text, "\"");
			if (!value_is(l, &m, text))
				edit(e, m.val, m.end, text);
		}
	}
	return e->n > 0;
}

/* decode.byte_count_missing: no byteCount in the flow object (FLOW-DEC-016, FLOW-FRM-012). */
static bool f_byte_count_missing(struct evf *x, const struct line *l, struct edits *e,
				 struct out *o)
{
	struct member m;

	if (!is_decoded(l) || !member2(l, "flow", "byteCount", &m))
		return false;
	edit_drop(e, l, &m);
	return true;
}

/* An address member's text as 16 bytes: a dotted quad as ::ffff:a.b.c.d, else IPv6 text. */
static bool addr_bytes(const struct line *l, const struct member *m, uint8_t ret[16])
{
	char in[INET6_ADDRSTRLEN];
	size_t n = m->end - m->val - 2;

	if (l->s[m->val] != '"' || n < 2 || n >= sizeof(in))
		return false;
	memcpy(in, l->s + m->val + 1, n);
	in[n] = '\0';
	if (inet_pton(AF_INET, in, ret + 12) == 1) {
		memset(ret, 0, 10);
		ret[10] = ret[11] = 0xff;
		return true;
	}
	return inet_pton(AF_INET6, in, ret) == 1;
}

/*
 * decode.family_ignored (FLOW-DEC-014): a v2 line's flow addresses as IPv6 text whatever the
 * family (a dotted quad of family 4 reads ::ffff:a.b.c.d); the record object keeps its own.
 * decode.v2_addr_words (FLOW-DEC-013): every v2 address read as four host-order words, the
 * bytes of each 4-byte group reversed, then written by the family's rule (record and flow).
 */
static bool f_v2_addr(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char *const objs[] = { "record", "flow" };
	static const char *const keys[] = { "srcAddr", "dstAddr" };
	bool words = x->f->arg, v4;
	struct member fam, ob, m;

	/* v2 lines carry record.family; v1 lines have none and stay as they are. */
	if (!is_decoded(l) || !member2(l, "record", "family", &fam))
		return false;
	v4 = value_is(l, &fam, "4");
	for (int i = words ? 0 : 1; i < 2; i++) {
		if (!member(l, 0, objs[i], &ob) || l->s[ob.val] != '{')
			continue;
		for (int k = 0; k < 2; k++) {
			static const uint8_t mapped[12] = {
				0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
			};
			uint8_t a[16];
			char text[96];

			if (!member(l, ob.val, keys[k], &m) || !addr_bytes(l, &m, a))
				continue;
			for (int g = 0; words && g < 16; g += 4) {
				uint8_t t0 = a[g], t1 = a[g + 1];

				a[g] = a[g + 3];
				a[g + 1] = a[g + 2];
				a[g + 2] = t1;
				a[g + 3] = t0;
			}
			if (words && v4 && !memcmp(a, mapped, 12)) {
				snprintf(text, sizeof(text), "\"%u.%u.%u.%u\"", a[12], a[13], a[14],
					 a[15]);
			} else {
				text[0] = '"';
				v6_text(a, 0, text + 1);
				strcat(text, "\"");
			}
			if (!value_is(l, &m, text))
				edit(e, m.val, m.end, text);
		}
	}
	return e->n > 0;
}

/*
 * sup.relay_source_own: a supervisor relays its workers' events with its own source, that of
 * the first event of its sink (its own), written over theirs (SUP-EVT-004).
 */
static bool f_relay_source_own(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, NULL) || !member(l, 0, "source", &m) ||
	    m.end - m.val >= sizeof(e->e[0].text))
		return false;
	if (!x->first) {
		x->first = strndup(l->s + m.val, m.end - m.val);
		return false;
	}
	if (value_is(l, &m, x->first))
		return false;
	edit(e, m.val, m.end, x->first);
	return true;
}

static bool f_pkt_count_zero(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return set_data(l, "network_flow_decision", "packetCount", "0", e);
}

/* Add d to data.KEY (an unsigned integer) of events of type TYPE, or set it to 0 (d < 0). */
static bool bump_data(const struct line *l, const char *type, const char *key, int d,
		      struct edits *e)
{
	struct member m;
	uint64_t v;
	char num[24];

	if (!is_event(l, type) || !member2(l, "data", key, &m) || !value_u64(l, &m, &v))
		return false;
	snprintf(num, sizeof(num), "%llu", d < 0 ? 0ull : (unsigned long long)(v + (uint64_t)d));
	edit(e, m.val, m.end, num);
	return true;
}

static bool f_summary_miscount(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return bump_data(l, "flow_monitor_summary", "uniqueFlowCount", 1, e);
}

static bool f_lost_uncounted(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	return bump_data(l, "flow_monitor_summary", "recordsLost", -1, e);
}

/* flow.event_byte_count_absent: no byteCount in decision and tally events (v2 records). */
static bool f_byte_count_absent(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!(is_event(l, "network_flow_decision") || is_event(l, "network_flow_tally")) ||
	    !member2(l, "data", "byteCount", &m))
		return false;
	edit_drop(e, l, &m);
	return true;
}

/* flow.started_version_wrong: flow_monitor_started names the other record version. */
static bool f_started_version(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;
	uint64_t v;

	if (!is_event(l, "flow_monitor_started") || !member2(l, "data", "recordVersion", &m) ||
	    !value_u64(l, &m, &v))
		return false;
	edit(e, m.val, m.end, v == 2 ? "1" : "2");
	return true;
}

/* sup.degraded_silent: no cell_degraded event. */
static bool f_degraded_silent(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	if (!is_event(l, "cell_degraded"))
		return false;
	o->drop = true;
	return true;
}

/* sup.running_ipv6_single_stack: a single-stack cell's cell_running carries an ipv6Address. */
static bool f_running_ipv6(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m, m6;

	if (!is_event(l, "cell_running") || !member2(l, "data", "address", &m) ||
	    member2(l, "data", "ipv6Address", &m6))
		return false;
	edit(e, m.end, m.end, ",\"ipv6Address\":\"fd00:88::5\"");
	return true;
}

static bool f_no_flow_count(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_event(l, "cell_exited") || !member2(l, "data", "uniqueFlowCount", &m))
		return false;
	edit_drop(e, l, &m);
	return true;
}

/*
 * sup.signal_as_exit: a workload ended by a signal reported as exited: status exited,
 * workloadStatus the exit code (128+N), no signal or signalName.
 */
static bool f_signal_as_exit(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member st, code, sig, name;
	char text[48];

	if (!is_event(l, "cell_exited") || !member2(l, "data", "status", &st) ||
	    !value_is(l, &st, "\"signaled\"") || !member2(l, "data", "exitCode", &code) ||
	    code.end - code.val > 8)
		return false;
	edit(e, st.val, st.end, "\"exited\"");
	snprintf(text, sizeof(text), ",\"workloadStatus\":%.*s", (int)(code.end - code.val),
		 l->s + code.val);
	edit(e, code.end, code.end, text);
	if (member2(l, "data", "signal", &sig))
		edit_drop(e, l, &sig);
	if (member2(l, "data", "signalName", &name))
		edit_drop(e, l, &name);
	return true;
}

/* decode.port_order: srcPort and dstPort byte-swapped in the record and the flow object. */
static bool f_port_order(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char *const objs[] = { "record", "flow" }, *const keys[] = { "srcPort",
										  "dstPort" };
	struct member ob, m;
	uint64_t v;
	char num[8];

	if (!is_decoded(l))
		return false;
	for (int i = 0; i < 2; i++) {
		if (!member(l, 0, objs[i], &ob))
			continue;
		for (int k = 0; k < 2; k++) {
			if (!member(l, ob.val, keys[k], &m) || !value_u64(l, &m, &v) || v > 65535)
				continue;
			snprintf(num, sizeof(num), "%u", (unsigned)((v & 0xff) << 8 | v >> 8));
			edit(e, m.val, m.end, num);
		}
	}
	return e->n > 0;
}

/* decode.verdict_map: verdict 2 decoded as allow (the raw record.verdict stays 2). */
static bool f_verdict_map(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member v, d;

	if (!is_decoded(l) || !member2(l, "record", "verdict", &v) || !value_is(l, &v, "2") ||
	    !member2(l, "flow", "decision", &d))
		return false;
	edit(e, d.val, d.end, "\"allow\"");
	return true;
}

/* decode.proto_guess: protocol "tcp" where the contract names none (before packetCount). */
static bool f_proto_guess(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	struct member m;

	if (!is_decoded(l) || member2(l, "flow", "protocol", &m) ||
	    !member2(l, "flow", "packetCount", &m))
		return false;
	edit(e, m.key, m.key, "\"protocol\":\"tcp\",");
	return true;
}

/* decode.addr_zero_tens: an address octet 100..109 loses its middle zero (105 reads 15). */
static bool f_addr_zero_tens(struct evf *x, const struct line *l, struct edits *e, struct out *o)
{
	static const char *const objs[] = { "record", "flow", "data" };
	static const char *const keys[] = { "srcAddr", "dstAddr" };
	struct member ob, m;

	if (!is_object(l))
		return false;
	for (int i = 0; i < 3; i++) {
		if (!member(l, 0, objs[i], &ob) || l->s[ob.val] != '{')
			continue;
		for (int k = 0; k < 2; k++) {
			char text[20], *p = text;
			const char *s;
			unsigned oct[4], n = 0;
			bool changed = false;

			if (!member(l, ob.val, keys[k], &m) || m.end - m.val > 17 ||
			    l->s[m.val] != '"')
				continue;
			s = l->s + m.val + 1;
			while (n < 4) {
				char *end;
				unsigned long v = strtoul(s, &end, 10);

				if (end == s || end - s > 3 || v > 255)
					break;
				oct[n++] = (unsigned)v;
				s = end + 1;
				if (*end != (n < 4 ? '.' : '"'))
					break;
			}
			if (n != 4 || s != l->s + m.end)
				continue;
			*p++ = '"';
			for (unsigned j = 0; j < 4; j++) {
				bool lose = oct[j] >= 100 && oct[j] <= 109;

				changed |= lose;
				p += sprintf(p, j ? ".%u" : "%u", lose ? 10 + oct[j] % 10 : oct[j]);
			}
			*p++ = '"';
			*p = '\0';
			if (changed)
				edit(e, m.val, m.end, text);
		}
	}
	return e->n > 0;
}

static const struct evf_fault faults[] = {
	{ "evt.id_reused", f_id_reused },
	{ "evt.time_offset", f_time_offset },
	{ "evt.content_type", f_content_type },
	{ "evt.crlf", f_crlf },
	{ "evt.dup_member", f_dup_member },
	{ "evt.type_short", f_type_short },
	{ "evt.traceparent_always", f_traceparent },
	{ "evt.ext_attribute", f_ext_attribute },
	{ "evt.source_empty", f_source_empty },
	{ "evt.source_numbered", f_source_numbered },
	{ "evt.time_monotonic", f_time_monotonic },
	{ "evt.json_quote_raw", f_json_quote_raw },
	{ "evt.utf8_one_per_run", f_utf8_one_per_run },
	{ "dns.failed_stage_unknown", f_failed_stage },
	{ "dns.event_transport_swapped", f_transport_swapped },
	{ "dns.stats_tcp_as_udp", f_stats_tcp_as_udp },
	{ "dns.run_id_per_event", f_run_id_per_event },
	{ "dns.listeners_reversed", f_listeners_reversed },
	{ "dns.query_listen_first", f_query_listen_first },
	{ "dns.query_id_reused", f_query_id_reused },
	{ "dns.qname_lowercased", f_qname_lowercased },
	{ "dns.root_name_empty", f_root_name_empty },
	{ "dns.v6_port_unbracketed", f_dns_addr, ADDR_UNBRACKETED },
	{ "dns.v6_text_inet_ntop", f_dns_addr, ADDR_INET_NTOP },
	{ "flow.event_pkt_count_zero", f_pkt_count_zero },
	{ "flow.summary_miscount", f_summary_miscount },
	{ "flow.lost_uncounted", f_lost_uncounted },
	{ "flow.event_byte_count_absent", f_byte_count_absent },
	{ "flow.started_version_wrong", f_started_version },
	{ "sup.degraded_silent", f_degraded_silent },
	{ "sup.exited_no_flow_count", f_no_flow_count },
	{ "sup.running_ipv6_single_stack", f_running_ipv6 },
	{ "sup.signal_as_exit", f_signal_as_exit },
	{ "sup.relay_source_own", f_relay_source_own },
	{ "decode.port_order", f_port_order },
	{ "decode.verdict_map", f_verdict_map },
	{ "decode.proto_guess", f_proto_guess },
	{ "decode.addr_zero_tens", f_addr_zero_tens },
	{ "decode.v6_no_compress", f_v6_text, V6_NO_COMPRESS },
	{ "decode.v6_first_run", f_v6_text, V6_FIRST_RUN },
	{ "decode.v6_tie_last", f_v6_text, V6_TIE_LAST },
	{ "decode.v6_single_zero", f_v6_text, V6_SINGLE_ZERO },
	{ "decode.v6_mapped_hex", f_v6_text, V6_MAPPED_HEX },
	{ "decode.v6_upper", f_v6_text, V6_UPPER },
	{ "decode.v6_leading_zeros", f_v6_text, V6_LEADING_ZEROS },
	{ "decode.byte_count_missing", f_byte_count_missing },
	{ "decode.family_ignored", f_v2_addr, 0 },
	{ "decode.v2_addr_words", f_v2_addr, 1 },
};

const struct evf_fault *evf_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(faults) / sizeof(faults[0]); i++)
		if (strcmp(faults[i].name, name) == 0)
			return &faults[i];
	return NULL;
}

size_t evf_count(void)
{
	return sizeof(faults) / sizeof(faults[0]);
}

const char *evf_name(size_t i)
{
	return i < evf_count() ? faults[i].name : NULL;
}

int evf_init(struct evf *x, const char *name)
{
	memset(x, 0, sizeof(*x));
	x->f = evf_find(name);
	return x->f ? 0 : -ENOENT;
}

void evf_done(struct evf *x)
{
	for (size_t i = 0; i < x->n_src; i++) {
		free(x->src[i].source);
		free(x->src[i].id);
	}
	x->n_src = 0;
	free(x->first);
	x->first = NULL;
}

int evf_line(struct evf *x, const char *line, size_t len, char **ret, size_t *ret_len)
{
	struct line l = { line, len };
	struct edits e = { .n = 0 };
	struct out o = { 0 };
	const char *eol = "";

	if (!x->f || len > EVF_LINE_MAX)
		return 0;
	if (l.n && l.s[l.n - 1] == '\n') {
		l.n--;
		eol = "\n";
	}
	if (!x->f->fn(x, &l, &e, &o)) {
		free(o.p);
		return 0;
	}
	if (e.eol && *eol)
		eol = e.eol;
	if (o.drop) {
		free(o.p);
		o = (struct out){ 0 };
	} else if (o.p || o.err) { /* the fault wrote the line's text itself */
		put_str(&o, eol);
	} else {
		apply(&o, &l, &e, eol);
	}
	if (!o.err && !o.p)
		o.p = strdup("");
	if (o.err || !o.p) {
		free(o.p);
		return o.err ?: -ENOMEM;
	}
	*ret = o.p;
	*ret_len = o.len;
	return 1;
}

int evf_buffer(const char *name, const char *buf, size_t len, char **ret, size_t *ret_len)
{
	struct evf x;
	struct out o = { 0 };
	int err = evf_init(&x, name);

	for (size_t at = 0; !err && at < len;) {
		const char *nl = memchr(buf + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - buf - at) + 1 : len - at;
		char *rep = NULL;
		size_t rep_len = 0;
		int r = evf_line(&x, buf + at, n, &rep, &rep_len);

		if (r < 0)
			err = r;
		else if (r == 0)
			put(&o, buf + at, n);
		else
			put(&o, rep, rep_len);
		free(rep);
		at += n;
	}
	evf_done(&x);
	put(&o, "", 0);
	err = err ?: o.err;
	if (err) {
		free(o.p);
		return err;
	}
	*ret = o.p ?: strdup("");
	*ret_len = o.len;
	return *ret ? 0 : -ENOMEM;
}
