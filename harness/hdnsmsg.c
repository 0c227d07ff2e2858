// SPDX-License-Identifier: Apache-2.0
/*
 * DNS messages decoded for comparison (hdnsmsg.h). Names are kept uncompressed in wire form,
 * so two messages that differ only in where compression pointers point compare equal field by
 * field, and 0x20 case differences do not (a forwarder must keep the client's case).
 */
#include "hdnsmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pointer chain longer than this is a loop: a name has at most 127 labels anyway. */
#define MAX_HOPS 128

static const char *const section_names[] = { "question", "answer", "authority", "additional" };

/* ---- a growable string ---- */

struct dstr {
	char *p;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void ds_printf(struct dstr *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (d->oom)
		return;
	for (;;) {
		size_t room = d->cap - d->len;

		va_start(ap, fmt);
		n = vsnprintf(d->p ? d->p + d->len : NULL, d->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			d->oom = true;
			return;
		}
		if (d->p && (size_t)n < room) {
			d->len += (size_t)n;
			return;
		}
		size_t nc = d->cap ? d->cap : 64;
		char *np;

		while (nc < d->len + (size_t)n + 1)
			nc *= 2;
		np = realloc(d->p, nc);
		if (!np) {
			d->oom = true;
			return;
		}
		d->p = np;
		d->cap = nc;
	}
}

static char *ds_take(struct dstr *d)
{
	if (d->oom) {
		free(d->p);
		return NULL;
	}
	if (!d->p)
		return strdup("");
	return d->p;
}

/* ---- decoding ---- */

struct rd {
	const uint8_t *buf;
	size_t len, off;
	char *why;
	size_t why_len;
	char where[48]; /* "answer[2]" */
};

__attribute__((format(printf, 2, 3))) static int rd_fail(struct rd *r, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r->why_len)
		snprintf(r->why, r->why_len, "%s%s%s", r->where, r->where[0] ? ": " : "", what);
	return -EBADMSG;
}

static int rd_u16(struct rd *r, const char *field, uint16_t *v)
{
	if (r->len - r->off < 2)
		return rd_fail(r, "%s: message ends at byte %zu", field, r->len);
	*v = (uint16_t)(r->buf[r->off] << 8 | r->buf[r->off + 1]);
	r->off += 2;
	return 0;
}

static int rd_u32(struct rd *r, const char *field, uint32_t *v)
{
	if (r->len - r->off < 4)
		return rd_fail(r, "%s: message ends at byte %zu", field, r->len);
	*v = (uint32_t)r->buf[r->off] << 24 | (uint32_t)r->buf[r->off + 1] << 16 |
	     (uint32_t)r->buf[r->off + 2] << 8 | r->buf[r->off + 3];
	r->off += 4;
	return 0;
}

/*
 * The name at *off (RFC 1035 4.1.4), uncompressed into out; *off moves past it where it is
 * written (a pointer ends it). Pointers may point anywhere inside the message but not in a loop.
 */
static int name_at(struct rd *r, const char *field, size_t *off, uint8_t *out, uint16_t *ret_len)
{
	size_t p = *off, n = 0;
	bool jumped = false;
	int hops = 0;

	for (;;) {
		uint8_t c;

		if (p >= r->len)
			return rd_fail(r, "%s: message ends at byte %zu", field, r->len);
		c = r->buf[p];
		if ((c & 0xC0) == 0xC0) {
			if (p + 1 >= r->len)
				return rd_fail(r, "%s: pointer cut at byte %zu", field, p);
			if (++hops > MAX_HOPS)
				return rd_fail(r, "%s: pointer loop at byte %zu", field, p);
			if (!jumped)
				*off = p + 2;
			jumped = true;
			p = (size_t)(c & 0x3F) << 8 | r->buf[p + 1];
			continue;
		}
		if (c & 0xC0)
			return rd_fail(r, "%s: label type 0x%02x at byte %zu", field, c & 0xC0, p);
		if (n + 1 + c > HDNS_MAX_NAME)
			return rd_fail(r, "%s: longer than 255 octets", field);
		if (r->len - p - 1 < c)
			return rd_fail(r, "%s: label cut at byte %zu", field, p);
		memcpy(out + n, r->buf + p, 1u + c);
		n += 1u + c;
		p += 1u + c;
		if (c == 0)
			break;
	}
	if (!jumped)
		*off = p;
	*ret_len = (uint16_t)n;
	return 0;
}

void hdns_msg_free(struct hdns_msg *m)
{
	if (!m)
		return;
	for (int s = 0; s < HDNS_N_SECTIONS; s++) {
		free(m->rr[s]);
		m->rr[s] = NULL;
	}
}

int hdns_decode(const uint8_t *buf, size_t len, struct hdns_msg *ret, char *why, size_t why_len)
{
	struct rd r = { .buf = buf, .len = len, .why = why, .why_len = why_len };
	int e;

	memset(ret, 0, sizeof(*ret));
	ret->buf = buf;
	ret->len = len;
	if (why_len)
		why[0] = '\0';
	if (len < HDNS_HDR_LEN)
		return rd_fail(&r, "%zu bytes, shorter than the 12-byte header", len);
	e = rd_u16(&r, "id", &ret->id);
	e = e ?: rd_u16(&r, "flags", &ret->flags);
	for (int s = 0; e == 0 && s < HDNS_N_SECTIONS; s++)
		e = rd_u16(&r, "count", &ret->count[s]);
	for (int s = 0; e == 0 && s < HDNS_N_SECTIONS; s++) {
		/* Each record takes 5 bytes at least: a count beyond that cannot be there. */
		if (ret->count[s] > (len - r.off) / 5 + 1) {
			snprintf(r.where, sizeof(r.where), "header");
			e = rd_fail(&r, "%s count %u does not fit in %zu bytes", section_names[s],
				    ret->count[s], len);
			break;
		}
		ret->rr[s] = calloc(ret->count[s] ?: 1, sizeof(*ret->rr[s]));
		if (!ret->rr[s])
			return -ENOMEM;
		for (size_t i = 0; e == 0 && i < ret->count[s]; i++) {
			struct hdns_rr *rr = &ret->rr[s][i];

			snprintf(r.where, sizeof(r.where), "%s[%zu]", section_names[s], i);
			e = name_at(&r, "name", &r.off, rr->name, &rr->name_len);
			e = e ?: rd_u16(&r, "type", &rr->type);
			e = e ?: rd_u16(&r, "class", &rr->class);
			if (e || s == HDNS_QD)
				continue;
			e = rd_u32(&r, "ttl", &rr->ttl);
			e = e ?: rd_u16(&r, "rdlength", &rr->rdlen);
			if (e == 0 && len - r.off < rr->rdlen)
				e = rd_fail(&r, "rdata: %u bytes, %zu left", rr->rdlen,
					    len - r.off);
			rr->rdata_off = r.off;
			r.off += e ? 0 : rr->rdlen;
		}
	}
	if (e == 0)
		ret->trailing = len - r.off;
	else
		hdns_msg_free(ret);
	return e;
}

/* ---- text ---- */

size_t hdns_name_text(const uint8_t *name, size_t len, char *out, size_t out_size)
{
	size_t o = 0, p = 0;

	if (!out_size)
		return 0;
	while (p < len && name[p] && o + 6 < out_size) {
		size_t l = name[p++];

		for (size_t k = 0; k < l && p < len && o + 6 < out_size; k++, p++) {
			uint8_t c = name[p];

			if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')')
				o += (size_t)snprintf(out + o, out_size - o, "\\%c", c);
			else if (c <= 0x20 || c >= 0x7f)
				o += (size_t)snprintf(out + o, out_size - o, "\\%03u", c);
			else
				out[o++] = (char)c;
		}
		out[o++] = '.';
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return o;
}

const char *hdns_rcode_name(unsigned int rcode)
{
	static const char *const n[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					 "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
					 "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI" };

	if (rcode < sizeof(n) / sizeof(n[0]))
		return n[rcode];
	if (rcode == 16)
		return "BADVERS";
	if (rcode == 23)
		return "BADCOOKIE";
	return NULL;
}

const char *hdns_type_name(unsigned int type)
{
	static const struct {
		unsigned int t;
		const char *n;
	} types[] = { { 1, "A" },	{ 2, "NS" },	 { 5, "CNAME" },  { 6, "SOA" },
		      { 12, "PTR" },	{ 13, "HINFO" }, { 15, "MX" },	  { 16, "TXT" },
		      { 28, "AAAA" },	{ 33, "SRV" },	 { 35, "NAPTR" }, { 39, "DNAME" },
		      { 41, "OPT" },	{ 43, "DS" },	 { 46, "RRSIG" }, { 47, "NSEC" },
		      { 48, "DNSKEY" }, { 50, "NSEC3" }, { 64, "SVCB" },  { 65, "HTTPS" },
		      { 99, "SPF" },	{ 251, "IXFR" }, { 252, "AXFR" }, { 255, "ANY" },
		      { 257, "CAA" } };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].t == type)
			return types[i].n;
	return NULL;
}

static const char *opcode_name(unsigned int op)
{
	static const char *const n[] = { "QUERY",  "IQUERY", "STATUS", NULL,
					 "NOTIFY", "UPDATE", "DSO" };

	return op < sizeof(n) / sizeof(n[0]) ? n[op] : NULL;
}

static const char *class_name(unsigned int c)
{
	switch (c) {
	case 1:
		return "IN";
	case 3:
		return "CH";
	case 4:
		return "HS";
	case 254:
		return "NONE";
	case 255:
		return "ANY";
	}
	return NULL;
}

static void ds_type(struct dstr *d, unsigned int t)
{
	if (hdns_type_name(t))
		ds_printf(d, "%s", hdns_type_name(t));
	else
		ds_printf(d, "TYPE%u", t);
}

static void ds_class(struct dstr *d, unsigned int c)
{
	if (class_name(c))
		ds_printf(d, "%s", class_name(c));
	else
		ds_printf(d, "CLASS%u", c);
}

static void ds_hex(struct dstr *d, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ds_printf(d, "%02x", p[i]);
}

static void ds_unknown(struct dstr *d, const uint8_t *p, size_t n)
{
	ds_printf(d, "\\# %zu", n);
	if (n)
		ds_printf(d, " ");
	ds_hex(d, p, n);
}

/* A name inside rdata, which may be compressed (RFC 3597 4: only for the well-known types). */
static bool rd_name(const struct hdns_msg *m, size_t *off, size_t end, struct dstr *d)
{
	struct rd r = { .buf = m->buf, .len = end };
	uint8_t name[HDNS_MAX_NAME];
	char text[HDNS_NAME_TEXT];
	uint16_t n;

	if (*off >= end || name_at(&r, "", off, name, &n) < 0 || *off > end)
		return false;
	hdns_name_text(name, n, text, sizeof(text));
	ds_printf(d, "%s", text);
	return true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The rdata in presentation form; RFC 3597 \# for types not known here or that do not parse. */
static void ds_rdata(struct dstr *d, const struct hdns_msg *m, const struct hdns_rr *rr)
{
	const uint8_t *p = m->buf + rr->rdata_off;
	size_t n = rr->rdlen, off = rr->rdata_off, end = rr->rdata_off + rr->rdlen;
	size_t mark = d->len;
	char a[INET6_ADDRSTRLEN];
	bool ok = true;

	switch (rr->type) {
	case 1:
		if ((ok = n == 4))
			ds_printf(d, "%s", inet_ntop(AF_INET, p, a, sizeof(a)));
		break;
	case 28:
		if ((ok = n == 16))
			ds_printf(d, "%s", inet_ntop(AF_INET6, p, a, sizeof(a)));
		break;
	case 2:
	case 5:
	case 12:
	case 39:
		ok = rd_name(m, &off, end, d) && off == end;
		break;
	case 15:
		if ((ok = n >= 3)) {
			ds_printf(d, "%u ", be16(p));
			off += 2;
			ok = rd_name(m, &off, end, d) && off == end;
		}
		break;
	case 6:
		ok = rd_name(m, &off, end, d);
		ds_printf(d, " ");
		ok = ok && rd_name(m, &off, end, d) && end - off == 20;
		for (int i = 0; ok && i < 5; i++)
			ds_printf(d, " %u", be32(m->buf + off + 4 * i));
		break;
	case 33:
		if ((ok = n >= 7)) {
			ds_printf(d, "%u %u %u ", be16(p), be16(p + 2), be16(p + 4));
			off += 6;
			ok = rd_name(m, &off, end, d) && off == end;
		}
		break;
	case 16:
		for (size_t i = 0; ok && i < n;) {
			size_t l = p[i++];

			if ((ok = l <= n - i)) {
				ds_printf(d, "%s\"", i > 1 ? " " : "");
				for (size_t k = 0; k < l; k++, i++)
					if (p[i] == '"' || p[i] == '\\')
						ds_printf(d, "\\%c", p[i]);
					else if (p[i] < 0x20 || p[i] >= 0x7f)
						ds_printf(d, "\\%03u", p[i]);
					else
						ds_printf(d, "%c", p[i]);
				ds_printf(d, "\"");
			}
		}
		break;
	default:
		ds_unknown(d, p, n);
		return;
	}
	if (!ok) {
		d->len = mark;
		if (d->p)
			d->p[mark] = '\0';
		ds_unknown(d, p, n);
	}
}

char *hdns_rr_text(const struct hdns_msg *m, enum hdns_section s, size_t i)
{
	const struct hdns_rr *rr = &m->rr[s][i];
	char name[HDNS_NAME_TEXT];
	struct dstr d = { 0 };

	hdns_name_text(rr->name, rr->name_len, name, sizeof(name));
	if (s == HDNS_QD) {
		ds_printf(&d, "%s ", name);
		ds_class(&d, rr->class);
		ds_printf(&d, " ");
		ds_type(&d, rr->type);
		return ds_take(&d);
	}
	if (rr->type == HDNS_TYPE_OPT) {
		ds_printf(&d, "%s OPT udp_size %u ext_rcode %u version %u do %u rdata ", name,
			  rr->class, rr->ttl >> 24, rr->ttl >> 16 & 0xff, rr->ttl >> 15 & 1);
		ds_hex(&d, m->buf + rr->rdata_off, rr->rdlen);
		return ds_take(&d);
	}
	ds_printf(&d, "%s %u ", name, rr->ttl);
	ds_class(&d, rr->class);
	ds_printf(&d, " ");
	ds_type(&d, rr->type);
	ds_printf(&d, " ");
	ds_rdata(&d, m, rr);
	return ds_take(&d);
}

char *hdns_summary(const struct hdns_msg *m)
{
	unsigned int rcode = m->flags & 0xf;
	struct dstr d = { 0 };

	ds_printf(&d, "%s ID %u (0x%04x) ", m->flags & 0x8000 ? "response" : "query", m->id, m->id);
	if (hdns_rcode_name(rcode))
		ds_printf(&d, "%s, ", hdns_rcode_name(rcode));
	else
		ds_printf(&d, "RCODE%u, ", rcode);
	if (m->count[HDNS_QD]) {
		char *q = hdns_rr_text(m, HDNS_QD, 0);

		if (!q) {
			free(d.p);
			return NULL;
		}
		ds_printf(&d, "%s, ", q);
		free(q);
	} else {
		ds_printf(&d, "no question, ");
	}
	ds_printf(&d, "%u answer%s, %u authority, %u additional", m->count[HDNS_AN],
		  m->count[HDNS_AN] == 1 ? "" : "s", m->count[HDNS_NS], m->count[HDNS_AR]);
	return ds_take(&d);
}

/* ---- the first difference ---- */

void hdns_diff_free(struct hdns_diff *d)
{
	free(d->expected);
	free(d->got);
	d->expected = d->got = NULL;
}

/* Fill ret with the field and two texts already built; 1, or -ENOMEM. */
static int differ(struct hdns_diff *ret, struct dstr *e, struct dstr *g, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int differ(struct hdns_diff *ret, struct dstr *e, struct dstr *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ret->field, sizeof(ret->field), fmt, ap);
	va_end(ap);
	ret->expected = ds_take(e);
	ret->got = ds_take(g);
	if (!ret->expected || !ret->got) {
		hdns_diff_free(ret);
		return -ENOMEM;
	}
	return 1;
}

/* A number with its name when it has one: "2 (SERVFAIL)". */
static int differ_num(struct hdns_diff *ret, const char *field, unsigned long e, unsigned long g,
		      const char *(*name)(unsigned int))
{
	struct dstr de = { 0 }, dg = { 0 };
	const char *ne = name ? name((unsigned int)e) : NULL;
	const char *ng = name ? name((unsigned int)g) : NULL;

	ds_printf(&de, "%lu", e);
	ds_printf(&dg, "%lu", g);
	if (ne)
		ds_printf(&de, " (%s)", ne);
	if (ng)
		ds_printf(&dg, " (%s)", ng);
	return differ(ret, &de, &dg, "%s", field);
}

static int diff_header(const struct hdns_msg *e, const struct hdns_msg *g, struct hdns_diff *ret)
{
	static const struct {
		const char *field;
		unsigned int shift, mask;
		const char *(*name)(unsigned int);
	} flags[] = {
		{ "header.qr", 15, 1, NULL }, { "header.opcode", 11, 0xf, opcode_name },
		{ "header.aa", 10, 1, NULL }, { "header.tc", 9, 1, NULL },
		{ "header.rd", 8, 1, NULL },  { "header.ra", 7, 1, NULL },
		{ "header.z", 6, 1, NULL },   { "header.ad", 5, 1, NULL },
		{ "header.cd", 4, 1, NULL },  { "header.rcode", 0, 0xf, hdns_rcode_name },
	};

	if (e->id != g->id) {
		struct dstr de = { 0 }, dg = { 0 };

		ds_printf(&de, "%u (0x%04x)", e->id, e->id);
		ds_printf(&dg, "%u (0x%04x)", g->id, g->id);
		return differ(ret, &de, &dg, "header.id");
	}
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		unsigned int a = e->flags >> flags[i].shift & flags[i].mask;
		unsigned int b = g->flags >> flags[i].shift & flags[i].mask;

		if (a != b)
			return differ_num(ret, flags[i].field, a, b, flags[i].name);
	}
	return 0;
}

static int diff_name(const char *field, const struct hdns_rr *a, const struct hdns_rr *b,
		     struct hdns_diff *ret)
{
	char ta[HDNS_NAME_TEXT], tb[HDNS_NAME_TEXT];
	struct dstr de = { 0 }, dg = { 0 };

	if (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0)
		return 0;
	hdns_name_text(a->name, a->name_len, ta, sizeof(ta));
	hdns_name_text(b->name, b->name_len, tb, sizeof(tb));
	ds_printf(&de, "%s", ta);
	ds_printf(&dg, "%s", tb);
	return differ(ret, &de, &dg, "%s.name", field);
}

/* EDNS (RFC 6891 6.1.3): the OPT record's fields, then its options one by one. */
static int diff_opt(const struct hdns_msg *e, const struct hdns_rr *a, const struct hdns_msg *g,
		    const struct hdns_rr *b, struct hdns_diff *ret)
{
	const uint8_t *pa = e->buf + a->rdata_off, *pb = g->buf + b->rdata_off;
	size_t ia = 0, ib = 0, k = 0;

	if (a->class != b->class)
		return differ_num(ret, "edns.udp_size", a->class, b->class, NULL);
	if (a->ttl >> 24 != b->ttl >> 24)
		return differ_num(ret, "edns.ext_rcode", a->ttl >> 24, b->ttl >> 24, NULL);
	if ((a->ttl >> 16 & 0xff) != (b->ttl >> 16 & 0xff))
		return differ_num(ret, "edns.version", a->ttl >> 16 & 0xff, b->ttl >> 16 & 0xff,
				  NULL);
	if ((a->ttl >> 15 & 1) != (b->ttl >> 15 & 1))
		return differ_num(ret, "edns.do", a->ttl >> 15 & 1, b->ttl >> 15 & 1, NULL);
	if ((a->ttl & 0x7fff) != (b->ttl & 0x7fff))
		return differ_num(ret, "edns.z", a->ttl & 0x7fff, b->ttl & 0x7fff, NULL);
	for (;; k++) {
		bool ha = a->rdlen - ia >= 4, hb = b->rdlen - ib >= 4;
		size_t la = ha ? be16(pa + ia + 2) : 0, lb = hb ? be16(pb + ib + 2) : 0;
		struct dstr de = { 0 }, dg = { 0 };
		char field[40];

		snprintf(field, sizeof(field), "edns.options[%zu]", k);
		/* An option cut short is shown as the bytes that are left. */
		if (ha && la > a->rdlen - ia - 4)
			ha = false;
		if (hb && lb > b->rdlen - ib - 4)
			hb = false;
		if (!ha || !hb) {
			if (!ha && !hb && a->rdlen - ia == b->rdlen - ib &&
			    memcmp(pa + ia, pb + ib, a->rdlen - ia) == 0)
				return 0;
			if (ha)
				ds_printf(&de, "code %u data ", be16(pa + ia));
			ds_hex(&de, pa + ia + (ha ? 4 : 0), ha ? la : a->rdlen - ia);
			if (hb)
				ds_printf(&dg, "code %u data ", be16(pb + ib));
			ds_hex(&dg, pb + ib + (hb ? 4 : 0), hb ? lb : b->rdlen - ib);
			if (!ha && a->rdlen == ia)
				ds_printf(&de, "none");
			if (!hb && b->rdlen == ib)
				ds_printf(&dg, "none");
			return differ(ret, &de, &dg, "%s", field);
		}
		if (be16(pa + ia) != be16(pb + ib)) {
			strcat(field, ".code");
			return differ_num(ret, field, be16(pa + ia), be16(pb + ib), NULL);
		}
		if (la != lb || memcmp(pa + ia + 4, pb + ib + 4, la) != 0) {
			ds_hex(&de, pa + ia + 4, la);
			ds_hex(&dg, pb + ib + 4, lb);
			return differ(ret, &de, &dg, "%s.data", field);
		}
		ia += 4 + la;
		ib += 4 + lb;
	}
}

static int diff_rr(const struct hdns_msg *e, const struct hdns_msg *g, enum hdns_section s,
		   size_t i, struct hdns_diff *ret)
{
	const struct hdns_rr *a = &e->rr[s][i], *b = &g->rr[s][i];
	char field[48], f[64];
	int r;

	snprintf(field, sizeof(field), "%s[%zu]", section_names[s], i);
	r = diff_name(field, a, b, ret);
	if (r)
		return r;
	if (a->type != b->type) {
		snprintf(f, sizeof(f), "%s.type", field);
		return differ_num(ret, f, a->type, b->type, hdns_type_name);
	}
	if (s != HDNS_QD && a->type == HDNS_TYPE_OPT)
		return diff_opt(e, a, g, b, ret);
	if (a->class != b->class) {
		snprintf(f, sizeof(f), "%s.class", field);
		return differ_num(ret, f, a->class, b->class, class_name);
	}
	if (s == HDNS_QD)
		return 0;
	if (a->ttl != b->ttl) {
		snprintf(f, sizeof(f), "%s.ttl", field);
		return differ_num(ret, f, a->ttl, b->ttl, NULL);
	}
	{
		struct dstr de = { 0 }, dg = { 0 };

		ds_rdata(&de, e, a);
		ds_rdata(&dg, g, b);
		/* Empty rdata (a TXT of no strings) renders as nothing: NULL. */
		if (de.oom || dg.oom || strcmp(de.p ?: "", dg.p ?: "") != 0)
			return differ(ret, &de, &dg, "%s.rdata", field);
		free(de.p);
		free(dg.p);
	}
	return 0;
}

int hdns_diff(const struct hdns_msg *e, const struct hdns_msg *g, struct hdns_diff *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	r = diff_header(e, g, ret);
	if (r)
		return r;
	for (int s = 0; s < HDNS_N_SECTIONS; s++) {
		size_t n = e->count[s] < g->count[s] ? e->count[s] : g->count[s];
		struct dstr de = { 0 }, dg = { 0 };
		const struct hdns_msg *more;
		char *rr;

		for (size_t i = 0; i < n; i++) {
			r = diff_rr(e, g, (enum hdns_section)s, i, ret);
			if (r)
				return r;
		}
		if (e->count[s] == g->count[s])
			continue;
		/* One side has more: the counts, and the first record only one side has. */
		more = e->count[s] > g->count[s] ? e : g;
		rr = hdns_rr_text(more, (enum hdns_section)s, n);
		if (!rr)
			return -ENOMEM;
		ds_printf(&de, "%u record%s", e->count[s], e->count[s] == 1 ? "" : "s");
		ds_printf(&dg, "%u record%s", g->count[s], g->count[s] == 1 ? "" : "s");
		ds_printf(more == e ? &de : &dg, " (%s[%zu]: %s)", section_names[s], n, rr);
		free(rr);
		return differ(ret, &de, &dg, "%s", section_names[s]);
	}
	if (e->trailing != g->trailing) {
		r = differ_num(ret, "trailing bytes", e->trailing, g->trailing, NULL);
		return r;
	}
	return 0;
}

int hdns_unhex(const char *hex, size_t n, uint8_t **ret, size_t *ret_len)
{
	uint8_t *b;

	if (n % 2)
		return -EINVAL;
	b = malloc(n / 2 ? n / 2 : 1);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 2) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = hex[i + (size_t)k];
			int h = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
						       : -1;

			if (h < 0) {
				free(b);
				return -EINVAL;
			}
			v = v << 4 | h;
		}
		b[i / 2] = (uint8_t)v;
	}
	*ret = b;
	*ret_len = n / 2;
	return 0;
}
