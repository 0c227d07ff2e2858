// SPDX-License-Identifier: Apache-2.0
#include "flowevt.h"

void flowevt_from_record(const struct flowrec *r, struct flowevt *ret)
{
	*ret = (struct flowevt){
		.direction = "egress", /* v1 records come from the egress hook only */
		.decision = flowrec_decision_name(r->verdict),
		.reason_code = FLOWEVT_REASON_EBPF,
		.protocol = flowrec_protocol_name(r->proto),
		.src_ip = r->src_ip,
		.dst_ip = r->dst_ip,
		.src_port = r->src_port,
		.dst_port = r->dst_port,
		.packet_count = r->pkt_count,
		.first_seen_ns = r->first_seen_ns,
		.verdict = r->verdict,
	};
}

static void kv_addr(struct jw *w, const char *key, uint32_t ip)
{
	char buf[16];

	jw_kv_str(w, key, flowrec_addr_str(ip, buf));
}

static void kv_opt_str(struct jw *w, const char *key, const char *s)
{
	if (s)
		jw_kv_str(w, key, s);
}

void flowevt_write_record_members(struct jw *w, const struct flowrec *r)
{
	kv_addr(w, "srcAddr", r->src_ip);
	kv_addr(w, "dstAddr", r->dst_ip);
	jw_kv_u64(w, "srcPort", r->src_port);
	jw_kv_u64(w, "dstPort", r->dst_port);
	jw_kv_u64(w, "proto", r->proto);
	jw_kv_u64(w, "pktCount", r->pkt_count);
	jw_kv_u64(w, "firstSeenNs", r->first_seen_ns);
	jw_kv_u64(w, "verdict", r->verdict);
}

void flowevt_write_flow_members(struct jw *w, const struct flowevt *e)
{
	jw_kv_str(w, "direction", e->direction);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "reasonCode", e->reason_code);
	kv_addr(w, "srcAddr", e->src_ip);
	jw_kv_u64(w, "srcPort", e->src_port);
	kv_addr(w, "dstAddr", e->dst_ip);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
}

static void write_ids(struct jw *w, const struct flowevt_meta *m)
{
	jw_kv_str(w, "schemaVersion", FLOWEVT_SCHEMA_VERSION);
	jw_kv_str(w, "cellId", m->cell_id);
	jw_kv_str(w, "runId", m->run_id);
}

void flowevt_write_decision(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m)
{
	jw_obj_open(w);
	write_ids(w, m);
	jw_kv_str(w, "decisionId", m->decision_id);
	jw_kv_str(w, "direction", e->direction);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "reasonCode", e->reason_code);
	/* nftRuleRef and byteCount: an eBPF v1 record has neither, so they are left out. */
	kv_addr(w, "dstAddr", e->dst_ip);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	kv_opt_str(w, "policyDigest", m->policy_digest);
	kv_opt_str(w, "keysetId", m->keyset_id);
	kv_opt_str(w, "issuerKid", m->issuer_kid);
	kv_opt_str(w, "correlationId", m->correlation_id);
	jw_kv_str(w, "observedAt", m->observed_at);
	/* Carried although the seed dropped them: the source side and the raw record facts. */
	kv_addr(w, "srcAddr", e->src_ip);
	jw_kv_u64(w, "srcPort", e->src_port);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
	jw_kv_u64(w, "verdict", e->verdict);
	jw_obj_close(w);
}

void flowevt_write_tally(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m)
{
	jw_obj_open(w);
	write_ids(w, m);
	kv_addr(w, "srcAddr", e->src_ip);
	jw_kv_u64(w, "srcPort", e->src_port);
	kv_addr(w, "dstAddr", e->dst_ip);
	jw_kv_u64(w, "dstPort", e->dst_port);
	kv_opt_str(w, "protocol", e->protocol);
	jw_kv_u64(w, "packetCount", e->packet_count);
	jw_kv_u64(w, "firstSeenNs", e->first_seen_ns);
	jw_kv_str(w, "decision", e->decision);
	jw_kv_str(w, "observedAt", m->observed_at);
	jw_obj_close(w);
}

void flowevt_write_unconsidered(struct jw *w, const uint64_t counts[FLOWREC_STAT_UNCONSIDERED_N])
{
	/* Slot order of enum flowrec_stat; the names are SPEC.md 7.4's. */
	static const char *const names[FLOWREC_STAT_UNCONSIDERED_N] = {
		"nonIp", "ipv6", "otherProto", "fragment", "malformed",
	};

	jw_key(w, "unconsidered");
	jw_obj_open(w);
	for (unsigned int i = 0; i < FLOWREC_STAT_UNCONSIDERED_N; i++)
		jw_kv_u64(w, names[i], counts[i]);
	jw_obj_close(w);
}
