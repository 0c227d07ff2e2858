// SPDX-License-Identifier: Apache-2.0
#include "flowrec.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void flowrec_addr_map_ipv4(uint32_t ip, uint8_t ret[static 16])
{
	uint32_t be = htobe32(ip);

	memcpy(ret, mapped_prefix, sizeof(mapped_prefix));
	memcpy(ret + 12, &be, sizeof(be));
}

bool flowrec_addr_is_mapped(const uint8_t addr[static 16])
{
	return memcmp(addr, mapped_prefix, sizeof(mapped_prefix)) == 0;
}

static uint32_t addr_low_ipv4(const uint8_t addr[static 16])
{
	uint32_t be;

	memcpy(&be, addr + 12, sizeof(be));
	return be32toh(be);
}

static void decode_v1(const void *buf, struct flowrec *ret)
{
	struct flowrec_v1 v1;

	memcpy(&v1, buf, sizeof(v1));
	*ret = (struct flowrec){
		.version = 1,
		.family = FLOWREC_FAMILY_IPV4,
		.src_ip = v1.src_ip,
		.dst_ip = v1.dst_ip,
		.src_port = v1.src_port,
		.dst_port = v1.dst_port,
		.proto = v1.proto,
		.pkt_count = v1.pkt_count,
		.first_seen_ns = v1.first_seen_ns,
		.verdict = v1.verdict,
	};
	flowrec_addr_map_ipv4(v1.src_ip, ret->src_addr);
	flowrec_addr_map_ipv4(v1.dst_ip, ret->dst_addr);
}

static void decode_v2(const void *buf, struct flowrec *ret)
{
	struct flowrec_v2 v2;

	memcpy(&v2, buf, sizeof(v2));
	*ret = (struct flowrec){
		.version = 2,
		.family = v2.family,
		.src_ip = addr_low_ipv4(v2.src_addr),
		.dst_ip = addr_low_ipv4(v2.dst_addr),
		.src_port = v2.src_port,
		.dst_port = v2.dst_port,
		.proto = v2.proto,
		.pkt_count = v2.pkt_count,
		.byte_count = v2.byte_count,
		.first_seen_ns = v2.first_seen_ns,
		.verdict = v2.verdict,
	};
	memcpy(ret->src_addr, v2.src_addr, sizeof(v2.src_addr));
	memcpy(ret->dst_addr, v2.dst_addr, sizeof(v2.dst_addr));
}

int flowrec_decode(const void *buf, size_t len, struct flowrec *ret)
{
	/* Record versions are told apart by length alone (FLOW-REC-005). */
	if (!buf)
		return -EBADMSG;
	switch (len) {
	case FLOWREC_V1_SIZE:
		decode_v1(buf, ret);
		return 0;
	case FLOWREC_V2_SIZE:
		decode_v2(buf, ret);
		return 0;
	default:
		return -EBADMSG;
	}
}

int flowrec_encode(const struct flowrec *r, void *out, size_t size)
{
	if (r->version == 0 || r->version == 1) {
		struct flowrec_v1 v1;

		if (size < sizeof(v1))
			return -ENOBUFS;
		memset(&v1, 0, sizeof(v1));
		v1.src_ip = r->src_ip;
		v1.dst_ip = r->dst_ip;
		v1.src_port = r->src_port;
		v1.dst_port = r->dst_port;
		v1.proto = r->proto;
		v1.pkt_count = r->pkt_count;
		v1.first_seen_ns = r->first_seen_ns;
		v1.verdict = r->verdict;
		memcpy(out, &v1, sizeof(v1));
		return (int)sizeof(v1);
	}
	if (r->version == 2) {
		struct flowrec_v2 v2;

		if (size < sizeof(v2))
			return -ENOBUFS;
		memset(&v2, 0, sizeof(v2));
		memcpy(v2.src_addr, r->src_addr, sizeof(v2.src_addr));
		memcpy(v2.dst_addr, r->dst_addr, sizeof(v2.dst_addr));
		v2.src_port = r->src_port;
		v2.dst_port = r->dst_port;
		v2.proto = r->proto;
		v2.family = r->family;
		v2.verdict = r->verdict;
		v2.pkt_count = r->pkt_count;
		v2.byte_count = r->byte_count;
		v2.first_seen_ns = r->first_seen_ns;
		memcpy(out, &v2, sizeof(v2));
		return (int)sizeof(v2);
	}
	return -EINVAL;
}

const char *flowrec_protocol_name(uint8_t proto)
{
	switch (proto) {
	case FLOWREC_PROTO_ICMP:
		return "icmp";
	case FLOWREC_PROTO_TCP:
		return "tcp";
	case FLOWREC_PROTO_UDP:
		return "udp";
	case FLOWREC_PROTO_ICMPV6:
		return "icmpv6";
	default:
		return NULL;
	}
}

const char *flowrec_decision_name(uint8_t verdict)
{
	return verdict == FLOWREC_VERDICT_DROP ? "deny" : "allow";
}

char *flowrec_addr_str(uint32_t ip, char buf[static 16])
{
	char *p = buf;

	for (int shift = 24; shift >= 0; shift -= 8) {
		unsigned int o = (ip >> shift) & 0xFF;

		if (o >= 100)
			*p++ = (char)('0' + o / 100);
		if (o >= 10)
			*p++ = (char)('0' + o / 10 % 10);
		*p++ = (char)('0' + o % 10);
		*p++ = shift ? '.' : '\0';
	}
	return buf;
}

/*
 * The zero run RFC 5952 4.2 compresses: the longest run of two or more zero groups, the first
 * of equal runs (4.2.3); a single zero group is never compressed (4.2.2). *ret_len 0: none.
 */
static void text_zero_run(const uint16_t g[8], int *ret_start, int *ret_len)
{
	int best = -1, best_len = 0;

	for (int i = 0; i < 8;) {
		int j = i;

		while (j < 8 && g[j] == 0)
			j++;
		if (j > i) {
			if (j - i >= 2 && j - i > best_len) {
				best = i;
				best_len = j - i;
			}
			i = j;
		} else {
			i++;
		}
	}
	*ret_start = best;
	*ret_len = best >= 0 ? best_len : 0;
}

static char *text_group(char *p, uint16_t v)
{
	static const char digits[] = "0123456789abcdef";
	bool started = false;

	for (int shift = 12; shift >= 0; shift -= 4) {
		unsigned int d = (v >> shift) & 0xF;

		/* RFC 5952 4.1: no leading zeros, but a zero group is "0". */
		if (d || started || shift == 0) {
			*p++ = digits[d];
			started = true;
		}
	}
	return p;
}

static char *text_ipv6(const uint8_t addr[static 16], char buf[static FLOWREC_ADDR_TEXT_MAX])
{
	uint16_t g[8];
	int start, len, n = 8;
	char *p = buf;

	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(addr[2 * i] << 8 | addr[2 * i + 1]);
	/* RFC 5952 5: the IPv4-mapped prefix is written with the dotted quad it carries. */
	if (flowrec_addr_is_mapped(addr))
		n = 6;
	/*
	 * All eight groups take part: in a mapped address the run of groups 0-4 (five) is longer
	 * than any run in the IPv4 part, so it is the one compressed and ends before group 5.
	 */
	text_zero_run(g, &start, &len);
	for (int i = 0; i < n;) {
		if (i == start) {
			*p++ = ':';
			*p++ = ':';
			i += len;
			continue;
		}
		if (i > 0 && i != start + len) /* right after "::" no separator */
			*p++ = ':';
		p = text_group(p, g[i]);
		i++;
	}
	if (n == 6) {
		*p++ = ':'; /* after "ffff", which is never part of the run */
		flowrec_addr_str(addr_low_ipv4(addr), p);
		return buf;
	}
	*p = '\0';
	return buf;
}

char *flowrec_addr_text(uint8_t family, const uint8_t addr[static 16],
			char buf[static FLOWREC_ADDR_TEXT_MAX])
{
	if (family == FLOWREC_FAMILY_IPV4 && flowrec_addr_is_mapped(addr))
		return flowrec_addr_str(addr_low_ipv4(addr), buf);
	return text_ipv6(addr, buf);
}
