// SPDX-License-Identifier: Apache-2.0
/* Translation of records into flow observations and event data (SPEC.md chapters 2, 5, 7). */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "flowevt.h"
#include "tap.h"

static struct flowrec sample(uint8_t proto, uint8_t verdict)
{
	return (struct flowrec){
		.src_ip = 0x0A000002,
		.dst_ip = 0x0A000001,
		.src_port = 40000,
		.dst_port = 443,
		.proto = proto,
		.pkt_count = 7,
		.first_seen_ns = 123456789,
		.verdict = verdict,
	};
}

static json_t *parse(struct jw *w)
{
	json_error_t err;
	json_t *j;

	/* Strict parse by a different library than the writer under test. */
	j = json_loads(jw_text(w), JSON_REJECT_DUPLICATES, &err);
	if (!j)
		tap_diag("unparseable: %s: %s", err.text, jw_text(w));
	return j;
}

static const struct flowevt_meta meta = {
	.cell_id = "cell-1",
	.run_id = "run-1",
	.decision_id = "dec-1",
	.observed_at = "2026-11-22T00:00:00.000000Z",
};

TEST(translation_keeps_both_sides_and_maps_enums)
{
	struct flowrec r = sample(6, 2);
	struct flowevt e;

	flowevt_from_record(&r, &e);
	ASSERT_STREQ(e.direction, "egress");
	ASSERT_STREQ(e.decision, "deny");
	ASSERT_STREQ(e.reason_code, "ebpf_xdp_drop");
	ASSERT_STREQ(e.protocol, "tcp");
	ASSERT_EQ(e.src_ip, 0x0A000002);
	ASSERT_EQ(e.src_port, 40000);
	ASSERT_EQ(e.dst_ip, 0x0A000001);
	ASSERT_EQ(e.dst_port, 443);
	ASSERT_EQ(e.packet_count, 7);
	ASSERT_EQ(e.first_seen_ns, 123456789);

	r = sample(17, 1);
	flowevt_from_record(&r, &e);
	ASSERT_STREQ(e.decision, "allow");
	ASSERT_STREQ(e.protocol, "udp");
	r = sample(99, 0);
	flowevt_from_record(&r, &e);
	ASSERT_TRUE(e.protocol == NULL);
	ASSERT_STREQ(e.decision, "allow");
}

TEST(decision_data_has_required_fields_and_carries_source)
{
	struct flowrec r = sample(17, 1);
	struct flowevt e;
	struct jw w;
	json_t *j;

	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &meta);
	j = parse(&w);
	if (!ASSERT_TRUE(j))
		goto out;
	ASSERT_STREQ(json_string_value(json_object_get(j, "schemaVersion")), "1.0.0");
	ASSERT_STREQ(json_string_value(json_object_get(j, "cellId")), "cell-1");
	ASSERT_STREQ(json_string_value(json_object_get(j, "runId")), "run-1");
	ASSERT_STREQ(json_string_value(json_object_get(j, "decisionId")), "dec-1");
	ASSERT_STREQ(json_string_value(json_object_get(j, "direction")), "egress");
	ASSERT_STREQ(json_string_value(json_object_get(j, "decision")), "allow");
	ASSERT_STREQ(json_string_value(json_object_get(j, "reasonCode")), "ebpf_xdp_drop");
	ASSERT_STREQ(json_string_value(json_object_get(j, "dstAddr")), "10.0.0.1");
	ASSERT_EQ(json_integer_value(json_object_get(j, "dstPort")), 443);
	ASSERT_STREQ(json_string_value(json_object_get(j, "protocol")), "udp");
	ASSERT_EQ(json_integer_value(json_object_get(j, "packetCount")), 7);
	ASSERT_STREQ(json_string_value(json_object_get(j, "srcAddr")), "10.0.0.2");
	ASSERT_EQ(json_integer_value(json_object_get(j, "srcPort")), 40000);
	ASSERT_EQ(json_integer_value(json_object_get(j, "firstSeenNs")), 123456789);
	ASSERT_STREQ(json_string_value(json_object_get(j, "observedAt")), meta.observed_at);
	/* Nothing to say, so absent: no nulls standing in for values. */
	ASSERT_TRUE(json_object_get(j, "byteCount") == NULL);
	ASSERT_TRUE(json_object_get(j, "nftRuleRef") == NULL);
	ASSERT_TRUE(json_object_get(j, "policyDigest") == NULL);
	ASSERT_TRUE(json_object_get(j, "correlationId") == NULL);
	json_decref(j);
out:
	jw_free(&w);
}

/* A v2 record (FLOW-EVT-010, FLOW-SUM-012): RFC 5952 text and byteCount, decision and tally. */
TEST(v2_events_carry_ipv6_text_and_byte_count)
{
	static const uint8_t src[16] = { 0xfe, 0x80, [15] = 2 }, dst[16] = { 0xfe, 0x80, [15] = 1 };
	struct flowrec r = sample(17, 1);
	struct flowevt e;
	struct jw w;
	json_t *j;

	r.version = 2;
	r.family = FLOWREC_FAMILY_IPV6;
	memcpy(r.src_addr, src, 16);
	memcpy(r.dst_addr, dst, 16);
	r.byte_count = 112;
	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &meta);
	j = parse(&w);
	if (ASSERT_TRUE(j)) {
		ASSERT_STREQ(json_string_value(json_object_get(j, "srcAddr")), "fe80::2");
		ASSERT_STREQ(json_string_value(json_object_get(j, "dstAddr")), "fe80::1");
		ASSERT_EQ(json_integer_value(json_object_get(j, "byteCount")), 112);
		ASSERT_EQ(json_integer_value(json_object_get(j, "packetCount")), 7);
		json_decref(j);
	}
	jw_reset(&w);
	flowevt_write_tally(&w, &e, &meta);
	j = parse(&w);
	if (ASSERT_TRUE(j)) {
		ASSERT_STREQ(json_string_value(json_object_get(j, "dstAddr")), "fe80::1");
		ASSERT_EQ(json_integer_value(json_object_get(j, "byteCount")), 112);
		json_decref(j);
	}
	/* An IPv4 flow in a v2 record reads as a dotted quad, like v1. */
	r.family = FLOWREC_FAMILY_IPV4;
	flowrec_addr_map_ipv4(0x0A000001, r.dst_addr);
	flowevt_from_record(&r, &e);
	jw_reset(&w);
	flowevt_write_decision(&w, &e, &meta);
	j = parse(&w);
	if (ASSERT_TRUE(j)) {
		ASSERT_STREQ(json_string_value(json_object_get(j, "dstAddr")), "10.0.0.1");
		json_decref(j);
	}
	jw_free(&w);
}

/* v1 events are byte for byte what they were before v2 (FLOW-EVT-010's note). */
TEST(v1_decision_bytes_unchanged)
{
	struct flowrec r = sample(17, 1);
	struct flowevt e;
	struct jw w;

	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &meta);
	ASSERT_STREQ(jw_text(&w),
		     "{\"schemaVersion\":\"1.0.0\",\"cellId\":\"cell-1\",\"runId\":\"run-1\","
		     "\"decisionId\":\"dec-1\",\"direction\":\"egress\",\"decision\":\"allow\","
		     "\"reasonCode\":\"ebpf_xdp_drop\",\"dstAddr\":\"10.0.0.1\",\"dstPort\":443,"
		     "\"protocol\":\"udp\",\"packetCount\":7,"
		     "\"observedAt\":\"2026-11-22T00:00:00.000000Z\",\"srcAddr\":\"10.0.0.2\","
		     "\"srcPort\":40000,\"firstSeenNs\":123456789,\"verdict\":1}");
	jw_free(&w);
}

TEST(unknown_protocol_is_absent_not_guessed)
{
	struct flowrec r = sample(200, 1);
	struct flowevt e;
	struct jw w;
	json_t *j;

	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &meta);
	j = parse(&w);
	if (ASSERT_TRUE(j)) {
		ASSERT_TRUE(json_object_get(j, "protocol") == NULL);
		json_decref(j);
	}
	jw_free(&w);
}

TEST(optional_metadata_is_carried_when_given)
{
	struct flowevt_meta m = meta;
	struct flowrec r = sample(6, 1);
	struct flowevt e;
	struct jw w;
	json_t *j;

	m.policy_digest = "sha256:abc";
	m.keyset_id = "ks-1";
	m.issuer_kid = "kid-1";
	m.correlation_id = "corr-1";
	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &m);
	j = parse(&w);
	if (ASSERT_TRUE(j)) {
		ASSERT_STREQ(json_string_value(json_object_get(j, "policyDigest")), "sha256:abc");
		ASSERT_STREQ(json_string_value(json_object_get(j, "keysetId")), "ks-1");
		ASSERT_STREQ(json_string_value(json_object_get(j, "issuerKid")), "kid-1");
		ASSERT_STREQ(json_string_value(json_object_get(j, "correlationId")), "corr-1");
		json_decref(j);
	}
	jw_free(&w);
}

TEST(full_range_counters_stay_exact)
{
	struct flowrec r = sample(6, 1);
	struct flowevt e;
	struct jw w;

	r.pkt_count = UINT64_MAX;
	r.first_seen_ns = (1ULL << 63) + 1;
	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_tally(&w, &e, &meta);
	ASSERT_TRUE(strstr(jw_text(&w), "\"packetCount\":18446744073709551615") != NULL);
	ASSERT_TRUE(strstr(jw_text(&w), "\"firstSeenNs\":9223372036854775809") != NULL);
	jw_free(&w);
}

TEST(unique_count_saturates_at_u32_max)
{
	ASSERT_EQ(flowevt_saturate_u32(0), 0);
	ASSERT_EQ(flowevt_saturate_u32(4294967294ULL), 4294967294ULL);
	ASSERT_EQ(flowevt_saturate_u32(4294967295ULL), 4294967295ULL);
	ASSERT_EQ(flowevt_saturate_u32(4294967296ULL), 4294967295ULL);
	ASSERT_EQ(flowevt_saturate_u32(UINT64_MAX), 4294967295ULL);
}
