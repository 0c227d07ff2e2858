// SPDX-License-Identifier: Apache-2.0
#include "flowevt.h"

#include <string.h>

#include "evt.h"

/* The family and addresses a record's text follows, v1 or v2 (see flowevt_from_record). */
static void record_addrs(const struct flowrec *r, uint8_t *ret_family, uint8_t src[16],
			 uint8_t dst[16])
{
	if (r->version == 2) {
		*ret_family = r->family;
		memcpy(src, r->src_addr, 16);
		memcpy(dst, r->dst_addr, 16);
	} else {
		*ret_family = FLOWREC_FAMILY_IPV4;
		flowrec_addr_map_ipv4(r->src_ip, src);
		flowrec_addr_map_ipv4(r->dst_ip, dst);
	}
}

void flowevt_from_record(const struct flowrec *r, struct flowevt *ret)
{
	bool v2 = r->version == 2;

	*ret = (struct flowevt){
		.direction = "egress", /* records come from the egress hook only */
		.decision = flowrec_decision_name(r->verdict),
		.reason_code = FLOWEVT_REASON_EBPF,
		.protocol = flowrec_protocol_name(r->proto),
		.src_ip = r->src_ip,
		.dst_ip = r->dst_ip,
		.src_port = r->src_port,
		.dst_port = r->dst_port,
		.packet_count = r->pkt_count,
		.byte_count = r->byte_count,
		.first_seen_ns = r->first_seen_ns,
		.verdict = r->verdict,
		.has_byte_count = v2,
	};
	record_addrs(r, &ret->family, ret->src_addr, ret->dst_addr);
}

static void kv_addr(struct jw *w, const char *key, uint8_t family, const uint8_t addr[16])
{
	char buf[FLOWREC_ADDR_TEXT_MAX];

	jw_kv_str(w, key, flowrec_addr_text(family, addr, buf));
}

static void kv_opt_str(struct jw *w, const char *key, const char *s)
{
	if (s)
		jw_kv_str(w, key, s);
}

void flowevt_write_record_members(struct jw *w, const struct flowrec *r)
{
	uint8_t family, src[16], dst[16];

	record_addrs(r, &family, src, dst);
	kv_addr(w, "srcAddr", family, src);
	kv_addr(w, "dstAddr", family, dst);
	jw_kv_u64(w, "srcPort", r->src_port);
	jw_kv_u64(w, "dstPort", r->dst_port);
	jw_kv_u64(w, "proto", r->proto);
	if (r->version == 2)
		jw_kv_u64(w, "family", r->family);
	jw_kv_u64(w, "pktCount", r->pkt_count);
	if (r->version == 2)
		jw_kv_u64(w, "byteCount", r->byte_count);
	jw_kv_u64(w, "firstSeenNs", r->first_seen_ns);
	jw_kv_u64(w, "verdict", r->verdict);
}

void flowevt_write_flow_members(struct jw *w, const struct flowevt *e)
{
	jw_kv_str(w, "direction", e->direction);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "reasonCode", e->reason_code);
	kv_addr(w, "srcAddr", e->family, e->src_addr);
	jw_kv_u64(w, "srcPort", e->src_port);
	kv_addr(w, "dstAddr", e->family, e->dst_addr);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	if (e->has_byte_count)
		jw_kv_u64(w, "byteCount", e->byte_count);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
}

/* Events only: a v2 record's byte count (FLOW-EVT-010). */
static void kv_byte_count(struct jw *w, const struct flowevt *e)
{
	if (e->has_byte_count)
		jw_kv_u64(w, "byteCount", e->byte_count);
}

void flowevt_write_decision(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m)
{
	jw_obj_open(w);
	evt_data_ids(w, m->cell_id, m->run_id);
	jw_kv_str(w, "decisionId", m->decision_id);
	jw_kv_str(w, "direction", e->direction);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "reasonCode", e->reason_code);
	/* nftRuleRef: the eBPF backend has none; byteCount only from a v2 record (FLOW-EVT-010). */
	kv_addr(w, "dstAddr", e->family, e->dst_addr);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	kv_byte_count(w, e);
	kv_opt_str(w, "policyDigest", m->policy_digest);
	kv_opt_str(w, "keysetId", m->keyset_id);
	kv_opt_str(w, "issuerKid", m->issuer_kid);
	kv_opt_str(w, "correlationId", m->correlation_id);
	jw_kv_str(w, "observedAt", m->observed_at);
	/* Carried although the seed dropped them: the source side and the raw record facts. */
	kv_addr(w, "srcAddr", e->family, e->src_addr);
	jw_kv_u64(w, "srcPort", e->src_port);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
	jw_kv_u64(w, "verdict", e->verdict);
	jw_obj_close(w);
}

void flowevt_write_tally(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m)
{
	jw_obj_open(w);
	evt_data_ids(w, m->cell_id, m->run_id);
	kv_addr(w, "srcAddr", e->family, e->src_addr);
	jw_kv_u64(w, "srcPort", e->src_port);
	kv_addr(w, "dstAddr", e->family, e->dst_addr);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	kv_byte_count(w, e);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "observedAt", m->observed_at);
	jw_obj_close(w);
}

void flowevt_write_unconsidered(struct jw *w, const uint64_t counts[FLOWREC_STAT_UNCONSIDERED_N])
{
	/* Slot order of enum flowrec_stat; the names are SPEC.md 7.4's. */
	static const char *const names[FLOWREC_STAT_UNCONSIDERED_N] = {
		"nonIp", "ipv6", "otherProto", "fragment", "malformed", "extChain",
	};

	jw_key(w, "unconsidered");
	jw_obj_open(w);
	for (unsigned int i = 0; i < FLOWREC_STAT_UNCONSIDERED_N; i++)
		jw_kv_u64(w, names[i], counts[i]);
	jw_obj_close(w);
}
