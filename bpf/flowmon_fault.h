/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Negative-control fault bits of the classifier, compiled in only with -DCELLREF_FAULTS (meson
 * -Dfaults=true). The program cannot read CELLREF_FAULT, so ref/flowmon.c turns the FAULT()
 * names below into bits of the .rodata knob cellref_faults before load; each bit breaks exactly
 * one rule of SPEC.md (fixtures/faults.json says which).
 */
#ifndef CELLCHECK_FLOWMON_FAULT_H
#define CELLCHECK_FLOWMON_FAULT_H

#define FLOWMON_FAULT_PAD_NONZERO	     (1u << 0)	/* flow.pad_nonzero */
#define FLOWMON_FAULT_PORT_ORDER	     (1u << 1)	/* flow.port_order */
#define FLOWMON_FAULT_ADDR_ORDER	     (1u << 2)	/* flow.addr_order */
#define FLOWMON_FAULT_RECORD_PER_PACKET	     (1u << 3)	/* flow.record_per_packet */
#define FLOWMON_FAULT_PKT_COUNT_DOUBLE	     (1u << 4)	/* flow.pkt_count_double */
#define FLOWMON_FAULT_FIRST_SEEN_SKEW	     (1u << 5)	/* flow.first_seen_skew */
#define FLOWMON_FAULT_VERDICT_DROP	     (1u << 6)	/* flow.verdict_drop */
#define FLOWMON_FAULT_ICMP_PROTO_ZERO	     (1u << 7)	/* flow.icmp_proto_zero */
#define FLOWMON_FAULT_UNCONSIDERED_UNCOUNTED (1u << 8)	/* flow.unconsidered_uncounted */
#define FLOWMON_FAULT_UNCONSIDERED_PASS	     (1u << 9)	/* flow.unconsidered_pass */
#define FLOWMON_FAULT_V6_UNCONSIDERED	     (1u << 10) /* flow.v6_unconsidered */
#define FLOWMON_FAULT_V6_EXT_UNFOLLOWED	     (1u << 11) /* flow.v6_ext_unfollowed */
#define FLOWMON_FAULT_V6_EXT_LIMIT	     (1u << 12) /* flow.v6_ext_limit */
#define FLOWMON_FAULT_V6_FIRST_FRAGMENT	     (1u << 13) /* flow.v6_first_fragment */
#define FLOWMON_FAULT_BYTE_COUNT_L2	     (1u << 14) /* flow.byte_count_l2 */
#define FLOWMON_FAULT_V2_IPV4_UNMAPPED	     (1u << 15) /* flow.v2_ipv4_unmapped */
#define FLOWMON_FAULT_DROP_UNRECORDED	     (1u << 16) /* flow.drop_unrecorded */
#define FLOWMON_FAULT_DROP_VERDICT_ACCEPT    (1u << 17) /* flow.drop_verdict_accept */
#define FLOWMON_FAULT_DROP_KEY_MERGED	     (1u << 18) /* flow.drop_key_merged */
#define FLOWMON_FAULT_DROP_RECORD_ADDRLESS   (1u << 19) /* flow.drop_record_addrless */
#define FLOWMON_FAULT_DROP_RECORD_COUNT_MODE (1u << 20) /* flow.drop_record_count_mode */
#define FLOWMON_FAULT_UDPLITE6_UNCOUNTED     (1u << 21) /* flow.udplite6_uncounted */

/* flow.first_seen_skew moves first_seen_ns this far into the past. */
#define FLOWMON_FAULT_SKEW_NS 1000000000000ULL

#endif
