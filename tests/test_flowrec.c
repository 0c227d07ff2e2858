// SPDX-License-Identifier: Apache-2.0
/* Flow record v1: layout, decoding rules and errors (SPEC.md chapters 1 and 2). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flowrec.h"
#include "tap.h"

/* Written byte by byte from SPEC.md's table, little-endian, not by the encoder under test. */
static const unsigned char canonical[40] = {
	0x01, 0x00, 0x00, 0x0A,				/* src_ip 10.0.0.1 */
	0x02, 0x01, 0xA8, 0xC0,				/* dst_ip 192.168.1.2 */
	0x34, 0x12,					/* src_port 0x1234 */
	0xBB, 0x01,					/* dst_port 443 */
	0x06,						/* proto tcp */
	0x00, 0x00, 0x00,				/* pad */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* pkt_count */
	0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* first_seen_ns */
	0x02,						/* verdict drop */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* pad */
};

/* Field by field: struct flowrec has holes whose bytes mean nothing. */
static bool same(const struct flowrec *a, const struct flowrec *b)
{
	return a->src_ip == b->src_ip && a->dst_ip == b->dst_ip && a->src_port == b->src_port &&
	       a->dst_port == b->dst_port && a->proto == b->proto && a->pkt_count == b->pkt_count &&
	       a->first_seen_ns == b->first_seen_ns && a->verdict == b->verdict;
}

TEST(layout_matches_spec)
{
	ASSERT_EQ(sizeof(struct flowrec_v1), 40);
	ASSERT_EQ(offsetof(struct flowrec_v1, src_ip), 0);
	ASSERT_EQ(offsetof(struct flowrec_v1, dst_ip), 4);
	ASSERT_EQ(offsetof(struct flowrec_v1, src_port), 8);
	ASSERT_EQ(offsetof(struct flowrec_v1, dst_port), 10);
	ASSERT_EQ(offsetof(struct flowrec_v1, proto), 12);
	ASSERT_EQ(offsetof(struct flowrec_v1, pad0), 13);
	ASSERT_EQ(offsetof(struct flowrec_v1, pkt_count), 16);
	ASSERT_EQ(offsetof(struct flowrec_v1, first_seen_ns), 24);
	ASSERT_EQ(offsetof(struct flowrec_v1, verdict), 32);
	ASSERT_EQ(offsetof(struct flowrec_v1, pad1), 33);
	ASSERT_EQ(sizeof(struct flowrec_key), 16);
}

TEST(decodes_every_field)
{
	struct flowrec r;

	if (!ASSERT_OK(flowrec_decode(canonical, sizeof(canonical), &r)))
		return;
	ASSERT_EQ(r.src_ip, 0x0A000001);
	ASSERT_EQ(r.dst_ip, 0xC0A80102);
	ASSERT_EQ(r.src_port, 0x1234);
	ASSERT_EQ(r.dst_port, 443);
	ASSERT_EQ(r.proto, 6);
	ASSERT_EQ(r.pkt_count, 0x0102030405060708ULL);
	ASSERT_EQ(r.first_seen_ns, 0x1112131415161718ULL);
	ASSERT_EQ(r.verdict, 2);
}

TEST(rejects_every_other_length_without_touching_output)
{
	static const size_t lens[] = { 0, 1, 39, 41, 80, 4096 };
	unsigned char big[4096];
	struct flowrec r, before;

	memset(big, 0xAB, sizeof(big));
	memcpy(big, canonical, sizeof(canonical));
	memset(&r, 0x5A, sizeof(r));
	before = r;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		ASSERT_ERR(flowrec_decode(big, lens[i], &r), -EBADMSG);
		ASSERT_TRUE(memcmp(&r, &before, sizeof(r)) == 0);
	}
	ASSERT_ERR(flowrec_decode(NULL, 40, &r), -EBADMSG);
}

TEST(padding_is_ignored)
{
	unsigned char noisy[40];
	struct flowrec a, b;

	memcpy(noisy, canonical, sizeof(noisy));
	memset(noisy + 13, 0xFF, 3);
	memset(noisy + 33, 0xFF, 7);
	ASSERT_OK(flowrec_decode(canonical, 40, &a));
	ASSERT_OK(flowrec_decode(noisy, 40, &b));
	ASSERT_TRUE(same(&a, &b));
}

TEST(encoder_zeroes_padding_and_round_trips)
{
	struct flowrec r, back;
	unsigned char out[40];

	ASSERT_OK(flowrec_decode(canonical, 40, &r));
	memset(out, 0xEE, sizeof(out));
	ASSERT_EQ(flowrec_encode(&r, out, sizeof(out)), 40);
	ASSERT_TRUE(memcmp(out, canonical, sizeof(out)) == 0);
	ASSERT_OK(flowrec_decode(out, 40, &back));
	ASSERT_TRUE(same(&r, &back));
}

TEST(protocol_names_and_unknown)
{
	ASSERT_STREQ(flowrec_protocol_name(1), "icmp");
	ASSERT_STREQ(flowrec_protocol_name(6), "tcp");
	ASSERT_STREQ(flowrec_protocol_name(17), "udp");
	ASSERT_STREQ(flowrec_protocol_name(58), "icmpv6");
	for (unsigned p = 0; p < 256; p++) {
		if (p == 1 || p == 6 || p == 17 || p == 58)
			continue;
		if (!ASSERT_TRUE(flowrec_protocol_name((uint8_t)p) == NULL))
			tap_diag("proto %u got a name", p);
	}
}

TEST(verdict_two_is_deny_everything_else_allow)
{
	for (unsigned v = 0; v < 256; v++)
		ASSERT_STREQ(flowrec_decision_name((uint8_t)v), v == 2 ? "deny" : "allow");
}

TEST(addresses_render_host_order)
{
	char buf[16];

	ASSERT_STREQ(flowrec_addr_str(0x0A000001, buf), "10.0.0.1");
	ASSERT_STREQ(flowrec_addr_str(0xFFFFFFFF, buf), "255.255.255.255");
	ASSERT_STREQ(flowrec_addr_str(0, buf), "0.0.0.0");
	ASSERT_STREQ(flowrec_addr_str(0xC0A80102, buf), "192.168.1.2");
}
