/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flow record wire ABI, version 1: the single source of truth for the layout shared by the
 * BPF producer (flowmon.bpf.c) and every userspace consumer. SPEC.md section 2 describes the
 * same bytes in prose; the static asserts below keep the two from drifting.
 *
 * Multi-byte fields are in host byte order: the producer converts from network order before
 * it writes. Padding is zeroed by the producer and ignored by decoders.
 *
 * Record versions are told apart by length alone (v1 is 40 bytes), so a later version must
 * have a different size; never change this struct.
 */
#ifndef CELLCHECK_FLOWREC_H
#define CELLCHECK_FLOWREC_H

#include <linux/types.h>

#define FLOWREC_V1_SIZE 40

/* IANA protocol numbers a v1 record may carry. */
#define FLOWREC_PROTO_ICMP   1
#define FLOWREC_PROTO_TCP    6
#define FLOWREC_PROTO_UDP    17
#define FLOWREC_PROTO_ICMPV6 58

enum flowrec_verdict {
	FLOWREC_VERDICT_UNKNOWN = 0,
	FLOWREC_VERDICT_ACCEPT = 1,
	FLOWREC_VERDICT_DROP = 2,
};

struct flowrec_v1 {
	__u32 src_ip; /* IPv4, host order: 10.0.0.1 == 0x0A000001 */
	__u32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 pad0[3]; /* producer zeroes, decoder ignores */
	__u64 pkt_count;
	__u64 first_seen_ns; /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u8 verdict;
	__u8 pad1[7]; /* producer zeroes, decoder ignores */
};

/* Key of the FLOWS table: the 5-tuple, host order, pad zeroed so equal tuples hash equal. */
struct flowrec_key {
	__u32 src_ip;
	__u32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 pad[3];
};

/* Value of the FLOWS table. pkt_count is updated atomically from every CPU. */
struct flowrec_state {
	__u64 pkt_count;
	__u64 first_seen_ns;
	__u8 verdict;
	__u8 pad[7];
};

/* Slots of the per-CPU FLOW_STATS array; userspace sums over CPUs. */
enum flowrec_stat {
	FLOWREC_STAT_RECORDS = 0,    /* records reserved and submitted */
	FLOWREC_STAT_LOST = 1,	     /* new flows whose record could not be reserved */
	FLOWREC_STAT_PACKETS = 2,    /* IPv4 TCP/UDP/ICMP packets seen */
	FLOWREC_STAT_TABLE_FULL = 3, /* new flows the FLOWS table could not take */
	/* Packets the classifier did not consider, by class (FLOW-MON-026): */
	FLOWREC_STAT_NON_IP = 4,      /* skb protocol neither IPv4 nor IPv6 (ARP, ...) */
	FLOWREC_STAT_IPV6 = 5,	      /* IPv6: no v1 record can carry it */
	FLOWREC_STAT_OTHER_PROTO = 6, /* IPv4, protocol not TCP, UDP or ICMP */
	FLOWREC_STAT_FRAGMENT = 7,    /* IPv4 non-first fragment: no L4 header */
	FLOWREC_STAT_MALFORMED = 8,   /* IPv4 header or ports not readable, version or IHL wrong */
	FLOWREC_STAT_MAX = 9,
};

/* The first unconsidered class and how many there are, in slot order. */
#define FLOWREC_STAT_UNCONSIDERED_FIRST FLOWREC_STAT_NON_IP
#define FLOWREC_STAT_UNCONSIDERED_N	(FLOWREC_STAT_MAX - FLOWREC_STAT_UNCONSIDERED_FIRST)

#define FLOWREC_ASSERT_OFF(field, off)                                        \
	_Static_assert(__builtin_offsetof(struct flowrec_v1, field) == (off), \
		       "flowrec_v1." #field " must be at offset " #off)

_Static_assert(sizeof(struct flowrec_v1) == FLOWREC_V1_SIZE, "flowrec_v1 must be 40 bytes");
_Static_assert(_Alignof(struct flowrec_v1) == 8, "flowrec_v1 must be 8-byte aligned");
FLOWREC_ASSERT_OFF(src_ip, 0);
FLOWREC_ASSERT_OFF(dst_ip, 4);
FLOWREC_ASSERT_OFF(src_port, 8);
FLOWREC_ASSERT_OFF(dst_port, 10);
FLOWREC_ASSERT_OFF(proto, 12);
FLOWREC_ASSERT_OFF(pad0, 13);
FLOWREC_ASSERT_OFF(pkt_count, 16);
FLOWREC_ASSERT_OFF(first_seen_ns, 24);
FLOWREC_ASSERT_OFF(verdict, 32);
FLOWREC_ASSERT_OFF(pad1, 33);
_Static_assert(sizeof(struct flowrec_key) == 16, "flowrec_key must be 16 bytes, no holes");

#endif
