// SPDX-License-Identifier: Apache-2.0
#include "hrecord.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hrec_field_names[] = { "src_ip",  "dst_ip", "src_port",  "dst_port",
					 "proto",   "pad0",   "pkt_count", "first_seen_ns",
					 "verdict", "pad1",   NULL };
const char *const hrec_field_names_v2[] = { "src_addr",	 "dst_addr",   "src_port",	"dst_port",
					    "proto",	 "family",     "verdict",	"pad0",
					    "pkt_count", "byte_count", "first_seen_ns", NULL };

void hrec_decode_v1(const void *body, struct hrec *ret)
{
	const unsigned char *p = body;

	memset(ret, 0, sizeof(*ret));
	ret->version = 1;
	memcpy(ret->raw, p, HREC_V1_LEN);
	/* memcpy into host-typed fields reads host order, which is what FLOW-REC-002 writes. */
	memcpy(&ret->src_ip, p + 0, 4);
	memcpy(&ret->dst_ip, p + 4, 4);
	memcpy(&ret->src_port, p + 8, 2);
	memcpy(&ret->dst_port, p + 10, 2);
	ret->proto = p[12];
	memcpy(&ret->pkt_count, p + 16, 8);
	memcpy(&ret->first_seen_ns, p + 24, 8);
	ret->verdict = p[32];
}

void hrec_decode_v2(const void *body, struct hrec *ret)
{
	const unsigned char *p = body;

	memset(ret, 0, sizeof(*ret));
	ret->version = 2;
	memcpy(ret->raw, p, HREC_V2_LEN);
	memcpy(ret->src_addr, p + 0, 16);
	memcpy(ret->dst_addr, p + 16, 16);
	memcpy(&ret->src_port, p + 32, 2);
	memcpy(&ret->dst_port, p + 34, 2);
	ret->proto = p[36];
	ret->family = p[37];
	ret->verdict = p[38];
	memcpy(&ret->pkt_count, p + 40, 8);
	memcpy(&ret->byte_count, p + 48, 8);
	memcpy(&ret->first_seen_ns, p + 56, 8);
}

int hrec_parse(const void *buf, size_t len, struct hrec **ret, size_t *ret_n, char *why,
	       size_t why_len)
{
	const unsigned char *p = buf;
	struct hrec *v = NULL;
	size_t off = 0, n = 0, cap = 0;

	while (off < len) {
		uint32_t flen;

		if (len - off < 4) {
			snprintf(why, why_len,
				 "frame %zu at byte %zu: truncated length (%zu of 4 bytes)", n, off,
				 len - off);
			goto bad;
		}
		/* FLOW-FRM-001: little-endian whatever the host. */
		flen = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
		       (uint32_t)p[off + 3] << 24;
		if (flen != HREC_V1_LEN && flen != HREC_V2_LEN) {
			snprintf(why, why_len,
				 "frame %zu at byte %zu: length %u, a v1 record is %d bytes, a v2 "
				 "record %d",
				 n, off, flen, HREC_V1_LEN, HREC_V2_LEN);
			goto bad;
		}
		if (n && flen != (v[0].version == 1 ? HREC_V1_LEN : HREC_V2_LEN)) {
			snprintf(why, why_len,
				 "frame %zu at byte %zu: length %u after v%d records: one stream "
				 "mixes record versions",
				 n, off, flen, v[0].version);
			goto bad;
		}
		if (len - off - 4 < flen) {
			snprintf(why, why_len,
				 "frame %zu at byte %zu: truncated body (%zu of %u bytes)", n, off,
				 len - off - 4, flen);
			goto bad;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct hrec *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		if (flen == HREC_V1_LEN)
			hrec_decode_v1(p + off + 4, &v[n++]);
		else
			hrec_decode_v2(p + off + 4, &v[n++]);
		off += 4 + flen;
	}
	*ret = v;
	*ret_n = n;
	return 0;
bad:
	free(v);
	return -EBADMSG;
}

static uint64_t bytes_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int field_v2(const struct hrec *r, const char *name, uint64_t *ret)
{
	const uint64_t vals[] = {
		0,	    0,		r->src_port,  r->dst_port,   r->proto,	      r->family,
		r->verdict, r->raw[39], r->pkt_count, r->byte_count, r->first_seen_ns
	};

	/* Indexes 0 and 1 are the addresses: text only (hrec_addr_text). */
	for (size_t i = 2; hrec_field_names_v2[i]; i++) {
		if (strcmp(hrec_field_names_v2[i], name) == 0) {
			*ret = vals[i];
			return 0;
		}
	}
	return -EINVAL;
}

int hrec_field(const struct hrec *r, const char *name, uint64_t *ret)
{
	static const int pad_off[] = { 13, 33 }, pad_len[] = { 3, 7 };
	const uint64_t vals[] = { r->src_ip, r->dst_ip,	   r->src_port,	     r->dst_port, r->proto,
				  0,	     r->pkt_count, r->first_seen_ns, r->verdict,  0 };

	if (r->version == 2)
		return field_v2(r, name, ret);
	for (size_t i = 0; hrec_field_names[i]; i++) {
		if (strcmp(hrec_field_names[i], name) != 0)
			continue;
		if (i == 5 || i == 9)
			*ret = bytes_be(r->raw + pad_off[i == 9], (size_t)pad_len[i == 9]);
		else
			*ret = vals[i];
		return 0;
	}
	return -EINVAL;
}

int hrec_addr_text(const struct hrec *r, const char *name, char buf[HREC_ADDR_TEXT])
{
	const uint8_t *a;

	if (r->version != 2)
		return -EINVAL;
	if (strcmp(name, "src_addr") == 0)
		a = r->src_addr;
	else if (strcmp(name, "dst_addr") == 0)
		a = r->dst_addr;
	else
		return -EINVAL;
	return inet_ntop(AF_INET6, a, buf, HREC_ADDR_TEXT) ? 0 : -errno;
}

int hrec_pad_nonzero(const struct hrec *r)
{
	if (r->version == 2)
		return r->raw[39] ? 39 : -1;
	for (int i = 13; i < HREC_V1_LEN; i++) {
		if (i == 16)
			i = 33;
		if (r->raw[i])
			return i;
	}
	return -1;
}

const char *hrec_ip_str(uint32_t ip, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
	return buf;
}
