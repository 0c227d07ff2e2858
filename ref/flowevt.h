/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Translation of decoded flow records into flow observations and into the data of the
 * network_flow_decision, network_flow_tally events (SPEC.md chapters 2, 5 and 7).
 */
#ifndef CELLREF_FLOWEVT_H
#define CELLREF_FLOWEVT_H

#include <stdbool.h>
#include <stdint.h>

#include "flowrec.h"
#include "jw.h"

#define FLOWEVT_REASON_EBPF	 "ebpf_xdp_drop"
#define FLOWEVT_REASON_NFLOG	 "nflog_match"
#define FLOWEVT_UNIQUE_COUNT_MAX 4294967295ULL

/* A backend-neutral observation of one flow, the seed's FlowEvent with the source side kept. */
struct flowevt {
	const char *direction;	 /* "egress" */
	const char *decision;	 /* "allow" | "deny" */
	const char *reason_code; /* FLOWEVT_REASON_* */
	const char *protocol;	 /* NULL when the record's number is not one SPEC names */
	uint32_t src_ip;	 /* host order, as struct flowrec's */
	uint32_t dst_ip;
	uint8_t family;	      /* as struct flowrec's; what the address text follows */
	uint8_t src_addr[16]; /* network order; the text of events and decoder lines */
	uint8_t dst_addr[16];
	uint16_t src_port;
	uint16_t dst_port;
	uint64_t packet_count;
	uint64_t byte_count; /* valid when has_byte_count (a v2 record) */
	uint64_t first_seen_ns;
	uint8_t verdict;
	bool has_byte_count;
};

/* Who and when, stamped by the emitter; NULL optional fields are left out. */
struct flowevt_meta {
	const char *cell_id;
	const char *run_id;
	const char *decision_id;
	const char *observed_at;
	const char *policy_digest;
	const char *keyset_id;
	const char *issuer_kid;
	const char *correlation_id;
};

/*
 * A record of version 2 gives its own family and addresses; any other (v1, or a struct built
 * with version 0 from src_ip/dst_ip) gives family 4 and the IPv4-mapped src_ip/dst_ip.
 */
void flowevt_from_record(const struct flowrec *r, struct flowevt *ret);

/*
 * `cellref decode` output objects: members only, the caller opens and closes the object. A v2
 * record adds family and byteCount to record, byteCount to flow (SPEC.md FLOW-FRM-012).
 */
void flowevt_write_record_members(struct jw *w, const struct flowrec *r);
void flowevt_write_flow_members(struct jw *w, const struct flowevt *e);

/* Complete data objects of the events. */
void flowevt_write_decision(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m);
void flowevt_write_tally(struct jw *w, const struct flowevt *e, const struct flowevt_meta *m);

/*
 * The summary's `unconsidered` member: counts[] in FLOW_STATS slot order from
 * FLOWREC_STAT_NON_IP (nonIp, ipv6, otherProto, fragment, malformed, extChain).
 */
void flowevt_write_unconsidered(struct jw *w, const uint64_t counts[FLOWREC_STAT_UNCONSIDERED_N]);

/* uniqueFlowCount is a u32 on the wire: saturate, never wrap. */
static inline uint32_t flowevt_saturate_u32(uint64_t v)
{
	return v > FLOWEVT_UNIQUE_COUNT_MAX ? (uint32_t)FLOWEVT_UNIQUE_COUNT_MAX : (uint32_t)v;
}

#endif
