// SPDX-License-Identifier: Apache-2.0
/* Flow records v1 and v2: layouts, decoding rules, errors, address text (SPEC.md 1 and 2). */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* v2, written byte by byte from SPEC.md's v2 table, little-endian host fields. */
static const unsigned char canonical_v2[64] = {
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* src 2001:db8::1 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfe, 0x80,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* dst fe80::1ff:fe23:4567:890a */
	0x01, 0xff, 0xfe, 0x23, 0x45, 0x67, 0x89, 0x0a, 0x34, 0x12, /* src_port 0x1234 */
	0xBB, 0x01,						    /* dst_port 443 */
	0x11,							    /* proto udp */
	0x06,							    /* family 6 */
	0x02,							    /* verdict drop */
	0x00,							    /* pad0 */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,		    /* pkt_count */
	0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21,		    /* byte_count */
	0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,		    /* first_seen_ns */
};

TEST(layout_v2_matches_spec)
{
	ASSERT_EQ(sizeof(struct flowrec_v2), 64);
	ASSERT_EQ(_Alignof(struct flowrec_v2), 8);
	ASSERT_EQ(offsetof(struct flowrec_v2, src_addr), 0);
	ASSERT_EQ(offsetof(struct flowrec_v2, dst_addr), 16);
	ASSERT_EQ(offsetof(struct flowrec_v2, src_port), 32);
	ASSERT_EQ(offsetof(struct flowrec_v2, dst_port), 34);
	ASSERT_EQ(offsetof(struct flowrec_v2, proto), 36);
	ASSERT_EQ(offsetof(struct flowrec_v2, family), 37);
	ASSERT_EQ(offsetof(struct flowrec_v2, verdict), 38);
	ASSERT_EQ(offsetof(struct flowrec_v2, pad0), 39);
	ASSERT_EQ(offsetof(struct flowrec_v2, pkt_count), 40);
	ASSERT_EQ(offsetof(struct flowrec_v2, byte_count), 48);
	ASSERT_EQ(offsetof(struct flowrec_v2, first_seen_ns), 56);
}

TEST(decodes_every_v2_field)
{
	static const uint8_t dst_low[4] = { 0x45, 0x67, 0x89, 0x0a };
	struct flowrec r;

	if (!ASSERT_OK(flowrec_decode(canonical_v2, sizeof(canonical_v2), &r)))
		return;
	ASSERT_EQ(r.version, 2);
	ASSERT_EQ(r.family, 6);
	ASSERT_TRUE(memcmp(r.src_addr, canonical_v2, 16) == 0);
	ASSERT_TRUE(memcmp(r.dst_addr, canonical_v2 + 16, 16) == 0);
	ASSERT_EQ(r.src_ip, 0x00000001);
	ASSERT_TRUE(memcmp(dst_low, canonical_v2 + 28, 4) == 0);
	ASSERT_EQ(r.dst_ip, 0x4567890A);
	ASSERT_EQ(r.src_port, 0x1234);
	ASSERT_EQ(r.dst_port, 443);
	ASSERT_EQ(r.proto, 17);
	ASSERT_EQ(r.verdict, 2);
	ASSERT_EQ(r.pkt_count, 0x0102030405060708ULL);
	ASSERT_EQ(r.byte_count, 0x2122232425262728ULL);
	ASSERT_EQ(r.first_seen_ns, 0x1112131415161718ULL);
}

TEST(v1_decode_fills_mapped_addresses)
{
	static const uint8_t src[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1 };
	static const uint8_t dst[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 2 };
	struct flowrec r;

	if (!ASSERT_OK(flowrec_decode(canonical, sizeof(canonical), &r)))
		return;
	ASSERT_EQ(r.version, 1);
	ASSERT_EQ(r.family, 4);
	ASSERT_TRUE(memcmp(r.src_addr, src, 16) == 0);
	ASSERT_TRUE(memcmp(r.dst_addr, dst, 16) == 0);
	ASSERT_EQ(r.byte_count, 0);
	ASSERT_TRUE(flowrec_addr_is_mapped(r.src_addr));
}

/* 40 is v1, 64 is v2, nothing else decodes; a failed decode leaves the output alone. */
TEST(length_dispatch)
{
	static const size_t bad[] = { 0, 1, 39, 41, 44, 48, 63, 65, 68, 72, 80, 104, 128, 4096 };
	unsigned char big[4096];
	struct flowrec r, before;

	memset(big, 0xAB, sizeof(big));
	memcpy(big, canonical_v2, sizeof(canonical_v2));
	ASSERT_OK(flowrec_decode(big, 64, &r));
	ASSERT_EQ(r.version, 2);
	ASSERT_OK(flowrec_decode(big, 40, &r));
	ASSERT_EQ(r.version, 1);
	memset(&r, 0x5A, sizeof(r));
	before = r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!ASSERT_ERR(flowrec_decode(big, bad[i], &r), -EBADMSG))
			tap_diag("length %zu decoded", bad[i]);
		ASSERT_TRUE(memcmp(&r, &before, sizeof(r)) == 0);
	}
	ASSERT_ERR(flowrec_decode(NULL, 64, &r), -EBADMSG);
}

TEST(v2_pad0_ignored_and_any_family_decodes)
{
	unsigned char b[64];
	struct flowrec a, r;

	ASSERT_OK(flowrec_decode(canonical_v2, 64, &a));
	memcpy(b, canonical_v2, 64);
	b[39] = 0xFF;
	ASSERT_OK(flowrec_decode(b, 64, &r));
	ASSERT_EQ(r.pkt_count, a.pkt_count);
	ASSERT_EQ(r.byte_count, a.byte_count);
	ASSERT_EQ(r.verdict, a.verdict);
	for (unsigned f = 0; f < 256; f++) {
		b[37] = (unsigned char)f;
		if (!ASSERT_OK(flowrec_decode(b, 64, &r)))
			break;
		ASSERT_EQ(r.family, f);
	}
}

TEST(encoder_v2_zeroes_pad0_and_round_trips)
{
	unsigned char noisy[64], out[72];
	struct flowrec r, back;

	memcpy(noisy, canonical_v2, sizeof(noisy));
	noisy[39] = 0x7E;
	ASSERT_OK(flowrec_decode(noisy, 64, &r));
	memset(out, 0xEE, sizeof(out));
	ASSERT_EQ(flowrec_encode(&r, out, sizeof(out)), 64);
	ASSERT_TRUE(memcmp(out, canonical_v2, 64) == 0);
	ASSERT_EQ(out[64], 0xEE); /* nothing written past the record */
	ASSERT_OK(flowrec_decode(out, 64, &back));
	ASSERT_TRUE(memcmp(back.src_addr, r.src_addr, 16) == 0);
	ASSERT_TRUE(memcmp(back.dst_addr, r.dst_addr, 16) == 0);
	ASSERT_EQ(back.family, r.family);
	ASSERT_EQ(back.byte_count, r.byte_count);
	ASSERT_EQ(back.first_seen_ns, r.first_seen_ns);
	ASSERT_ERR(flowrec_encode(&r, out, 63), -ENOBUFS);
	r.version = 3;
	ASSERT_ERR(flowrec_encode(&r, out, sizeof(out)), -EINVAL);
	/* A struct built before versions existed (version 0) is v1. */
	r = (struct flowrec){ .src_ip = 0x0A000001,
			      .dst_ip = 0xC0A80102,
			      .src_port = 0x1234,
			      .dst_port = 443,
			      .proto = 6,
			      .pkt_count = 0x0102030405060708ULL,
			      .first_seen_ns = 0x1112131415161718ULL,
			      .verdict = 2 };
	ASSERT_EQ(flowrec_encode(&r, out, sizeof(out)), 40);
	ASSERT_TRUE(memcmp(out, canonical, 40) == 0);
	ASSERT_ERR(flowrec_encode(&r, out, 39), -ENOBUFS);
}

static const char *text6(const char *given)
{
	static char buf[FLOWREC_ADDR_TEXT_MAX];
	uint8_t a[16];

	if (inet_pton(AF_INET6, given, a) != 1)
		return "(unparsable test input)";
	return flowrec_addr_text(FLOWREC_FAMILY_IPV6, a, buf);
}

/* RFC 5952 4 and 5, one line per rule (expected text written by hand). */
TEST(address_text_rfc5952)
{
	ASSERT_STREQ(text6("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2:3:4:5:6");
	ASSERT_STREQ(text6("2001:db8:0:1:2:3:4:5"), "2001:db8:0:1:2:3:4:5");
	ASSERT_STREQ(text6("2001:0:0:1:0:0:2:3"), "2001::1:0:0:2:3");
	ASSERT_STREQ(text6("2001:0:0:1:0:0:0:2"), "2001:0:0:1::2");
	ASSERT_STREQ(text6("::"), "::");
	ASSERT_STREQ(text6("::1"), "::1");
	ASSERT_STREQ(text6("1::"), "1::");
	ASSERT_STREQ(text6("2001:db8::"), "2001:db8::");
	ASSERT_STREQ(text6("::2:3:4:5:6"), "::2:3:4:5:6");
	ASSERT_STREQ(text6("1:2:3:4:5:6:0:0"), "1:2:3:4:5:6::");
	ASSERT_STREQ(text6("0:1:2:3:4:5:6:7"), "0:1:2:3:4:5:6:7");
	ASSERT_STREQ(text6("1:2:3:4:5:6:7:0"), "1:2:3:4:5:6:7:0");
	ASSERT_STREQ(text6("2001:0DB8:00A0:000B:0C00:D000:0001:0010"),
		     "2001:db8:a0:b:c00:d000:1:10");
	ASSERT_STREQ(text6("fe80::1ff:fe23:4567:890a"), "fe80::1ff:fe23:4567:890a");
	ASSERT_STREQ(text6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	ASSERT_STREQ(text6("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
	ASSERT_STREQ(text6("::ffff:0.0.0.0"), "::ffff:0.0.0.0");
	ASSERT_STREQ(text6("::ffff:255.255.255.255"), "::ffff:255.255.255.255");
	/* Only ::ffff:0:0/96 gets mixed notation. */
	ASSERT_STREQ(text6("::192.0.2.1"), "::c000:201");
	ASSERT_STREQ(text6("64:ff9b::192.0.2.1"), "64:ff9b::c000:201");
	ASSERT_STREQ(text6("::fffe:c000:201"), "::fffe:c000:201");
	ASSERT_STREQ(text6("1::ffff:c000:201"), "1::ffff:c000:201");
}

TEST(address_text_family_rules)
{
	char buf[FLOWREC_ADDR_TEXT_MAX];
	uint8_t a[16];

	flowrec_addr_map_ipv4(0x0A000001, a);
	ASSERT_STREQ(flowrec_addr_text(4, a, buf), "10.0.0.1");
	ASSERT_STREQ(flowrec_addr_text(6, a, buf), "::ffff:10.0.0.1");
	ASSERT_STREQ(flowrec_addr_text(0, a, buf), "::ffff:10.0.0.1");
	ASSERT_STREQ(flowrec_addr_text(255, a, buf), "::ffff:10.0.0.1");
	flowrec_addr_map_ipv4(0, a);
	ASSERT_STREQ(flowrec_addr_text(4, a, buf), "0.0.0.0");
	flowrec_addr_map_ipv4(0xFFFFFFFF, a);
	ASSERT_STREQ(flowrec_addr_text(4, a, buf), "255.255.255.255");
	/* Family 4 without the mapped prefix: every byte kept, as IPv6 text. */
	a[10] = 0;
	ASSERT_STREQ(flowrec_addr_text(4, a, buf), "::ff:ffff:ffff"); /* byte 10 cleared */
	memset(a, 0, sizeof(a));
	a[15] = 1;
	ASSERT_STREQ(flowrec_addr_text(4, a, buf), "::1");
}

/*
 * Differential test against glibc's inet_ntop, an independent implementation that follows
 * RFC 5952 except for one class: it writes an address whose first 96 bits are zero and whose
 * group 6 is not (the deprecated IPv4-compatible form) in mixed notation. Addresses are drawn
 * with many zero groups, so runs, ties and single zeros are frequent.
 */
TEST(address_text_matches_inet_ntop)
{
	char mine[FLOWREC_ADDR_TEXT_MAX], ref[INET6_ADDRSTRLEN];
	unsigned int seed = 5952, compared = 0;
	uint8_t a[16];

	for (int n = 0; n < 300000; n++) {
		bool compat;

		for (int g = 0; g < 8; g++) {
			int k = rand_r(&seed) % 4;
			uint16_t v = k < 2    ? 0
				     : k == 2 ? (uint16_t)(rand_r(&seed) % 16)
					      : (uint16_t)rand_r(&seed);

			a[2 * g] = (uint8_t)(v >> 8);
			a[2 * g + 1] = (uint8_t)v;
		}
		if (n % 7 == 0) /* mapped addresses, often */
			memcpy(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
		compat = memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0 && (a[12] | a[13]);
		if (compat || !inet_ntop(AF_INET6, a, ref, sizeof(ref)))
			continue;
		flowrec_addr_text(FLOWREC_FAMILY_IPV6, a, mine);
		compared++;
		if (!ASSERT_STREQ(mine, ref))
			break;
	}
	ASSERT_GT(compared, 250000u);
}
