// SPDX-License-Identifier: Apache-2.0
/* The unique-flow accumulator (SPEC.md chapter 7, uniqueFlowCount). */
#include <errno.h>

#include "flowacc.h"
#include "tap.h"

static struct flowrec key(uint16_t sport, uint8_t dst_octet, uint16_t dport, uint8_t proto)
{
	return (struct flowrec){
		.src_ip = 0x0A000002,
		.dst_ip = 0x0A000000 | dst_octet,
		.src_port = sport,
		.dst_port = dport,
		.proto = proto,
		.pkt_count = 1,
	};
}

TEST(empty_counts_zero)
{
	_cleanup_flowacc struct flowacc *a = NULL;

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	ASSERT_EQ(flowacc_unique(a), 0);
}

TEST(duplicates_are_idempotent_and_distinct_flows_count)
{
	_cleanup_flowacc struct flowacc *a = NULL;
	struct flowrec k = key(1000, 1, 443, 6);

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	k.pkt_count = 99; /* counts and times are not part of a flow's identity */
	k.first_seen_ns = 5;
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 0);
	ASSERT_EQ(flowacc_unique(a), 1);

	/* Each element of the 5-tuple on its own makes a different flow. */
	k = key(1001, 1, 443, 6);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	k = key(1000, 2, 443, 6);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	k = key(1000, 1, 444, 6);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	k = key(1000, 1, 443, 17);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	k = key(1000, 1, 443, 6);
	k.src_ip = 0x0A000003;
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	ASSERT_EQ(flowacc_unique(a), 6);
}

TEST(closed_never_counts)
{
	_cleanup_flowacc struct flowacc *a = NULL;
	struct flowrec k = key(1, 1, 1, 17);

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_CLOSED), 0);
	ASSERT_EQ(flowacc_unique(a), 0);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_CLOSED), 0);
	ASSERT_EQ(flowacc_unique(a), 1);
	/* A flow only ever seen closed is still not opened afterwards. */
	k = key(2, 2, 2, 17);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_CLOSED), 0);
	ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1);
	ASSERT_EQ(flowacc_unique(a), 2);
}

TEST(grows_past_its_first_table)
{
	_cleanup_flowacc struct flowacc *a = NULL;
	unsigned n = 200000;

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	for (unsigned i = 0; i < n; i++) {
		struct flowrec k = key((uint16_t)i, (uint8_t)(i >> 16), 53, 17);

		if (!ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 1))
			return;
	}
	/* Every one of them again: nothing new. */
	for (unsigned i = 0; i < n; i++) {
		struct flowrec k = key((uint16_t)i, (uint8_t)(i >> 16), 53, 17);

		if (!ASSERT_EQ(flowacc_record(a, &k, FLOWACC_OPENED), 0))
			return;
	}
	ASSERT_EQ(flowacc_unique(a), n);
}

/* v2 (SPEC FLOW-SUM-007): the whole 16-byte addresses and the family make the 5-tuple. */
TEST(v2_flows_keyed_on_full_addresses_and_family)
{
	_cleanup_flowacc struct flowacc *a = NULL;
	struct flowrec r6 = key(40000, 1, 443, 17), r4 = key(40000, 1, 443, 17);

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	r6.version = 2;
	r6.family = FLOWREC_FAMILY_IPV6;
	r6.src_addr[0] = 0xfd, r6.src_addr[15] = 2;
	r6.dst_addr[0] = 0xfd, r6.dst_addr[15] = 1;
	ASSERT_EQ(flowacc_record(a, &r6, FLOWACC_OPENED), 1);
	/* The same low 4 bytes under another prefix: another flow. */
	r6.dst_addr[0] = 0xfe;
	ASSERT_EQ(flowacc_record(a, &r6, FLOWACC_OPENED), 1);
	/* An IPv4 flow as a v1 and as a v2 record (mapped addresses, family 4): one flow. */
	ASSERT_EQ(flowacc_record(a, &r4, FLOWACC_OPENED), 1);
	r4.version = 2;
	r4.family = FLOWREC_FAMILY_IPV4;
	flowrec_addr_map_ipv4(r4.src_ip, r4.src_addr);
	flowrec_addr_map_ipv4(r4.dst_ip, r4.dst_addr);
	ASSERT_EQ(flowacc_record(a, &r4, FLOWACC_OPENED), 0);
	/* The mapped address in an IPv6 packet (family 6) is not the IPv4 flow. */
	r4.family = FLOWREC_FAMILY_IPV6;
	ASSERT_EQ(flowacc_record(a, &r4, FLOWACC_OPENED), 1);
	ASSERT_EQ(flowacc_unique(a), 4);
}

/* v2 drop mode (SPEC FLOW-SUM-013): a flow of dropped packets is apart from the allowed one. */
TEST(v2_dropped_flow_apart_from_allowed_one)
{
	_cleanup_flowacc struct flowacc *a = NULL;
	struct flowrec r = key(0, 1, 0, 58);

	if (!ASSERT_OK(flowacc_new(&a)))
		return;
	r.version = 2;
	r.family = FLOWREC_FAMILY_IPV6;
	r.src_addr[0] = 0xfe, r.src_addr[1] = 0x80, r.src_addr[15] = 2;
	r.dst_addr[0] = 0xfe, r.dst_addr[1] = 0x80, r.dst_addr[15] = 1;
	r.verdict = FLOWREC_VERDICT_ACCEPT;
	ASSERT_EQ(flowacc_record(a, &r, FLOWACC_OPENED), 1);
	r.verdict = FLOWREC_VERDICT_DROP;
	ASSERT_EQ(flowacc_record(a, &r, FLOWACC_OPENED), 1);
	ASSERT_EQ(flowacc_record(a, &r, FLOWACC_OPENED), 0);
	/* Verdicts other than drop are all allow: the allowed flow again. */
	r.verdict = FLOWREC_VERDICT_UNKNOWN;
	ASSERT_EQ(flowacc_record(a, &r, FLOWACC_OPENED), 0);
	ASSERT_EQ(flowacc_unique(a), 2);
}
