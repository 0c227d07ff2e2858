// SPDX-License-Identifier: Apache-2.0
#include "flowrec.h"

#include <errno.h>
#include <string.h>

int flowrec_decode(const void *buf, size_t len, struct flowrec *ret)
{
	struct flowrec_v1 v1;

	/* Record versions are told apart by length; v1 is the only one so far. */
	if (len != sizeof(v1) || !buf)
		return -EBADMSG;
	memcpy(&v1, buf, sizeof(v1));
	*ret = (struct flowrec){
		.src_ip = v1.src_ip,
		.dst_ip = v1.dst_ip,
		.src_port = v1.src_port,
		.dst_port = v1.dst_port,
		.proto = v1.proto,
		.pkt_count = v1.pkt_count,
		.first_seen_ns = v1.first_seen_ns,
		.verdict = v1.verdict,
	};
	return 0;
}

void flowrec_encode(const struct flowrec *r, unsigned char out[FLOWREC_V1_SIZE])
{
	struct flowrec_v1 v1;

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
