/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flow record wire ABI, versions 1 and 2: the single source of truth for the layouts shared by
 * the BPF producer (flowmon.bpf.c) and every userspace consumer. SPEC.md chapter 1 describes
 * the same bytes in prose; the static asserts below keep the two from drifting.
 *
 * Ports and counters are in host byte order: the producer converts from network order before
 * it writes. v2 addresses are byte strings in network order (there is no "host order" of an
 * IPv6 address). Padding is zeroed by the producer and ignored by decoders.
 *
 * Record versions are told apart by length alone (v1 is 40 bytes, v2 64), so a later version
 * must have a size of its own; never change either struct. A producer emits one version for
 * its whole life (the loader chooses), so a v1 consumer is never handed a v2 record.
 */
#ifndef CELLCHECK_FLOWREC_H
#define CELLCHECK_FLOWREC_H

#include <linux/types.h>

#define FLOWREC_V1_SIZE 40
#define FLOWREC_V2_SIZE 64

/* v2 address families: the IP version, not the host's AF_* numbers. */
#define FLOWREC_FAMILY_IPV4 4
#define FLOWREC_FAMILY_IPV6 6

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

/*
 * v2: both families in one layout. An IPv4 address is written as the IPv4-mapped IPv6 address
 * ::ffff:a.b.c.d (RFC 4291 2.5.5.2), so a consumer that ignores family still reads a correct
 * address; family tells an IPv4 packet from an IPv6 packet that carries a mapped address.
 */
struct flowrec_v2 {
	__u8 src_addr[16]; /* network order */
	__u8 dst_addr[16];
	__u16 src_port; /* host order; 0 for ICMP and ICMPv6 */
	__u16 dst_port;
	__u8 proto;   /* IANA number of the transport header (after IPv6 extension headers) */
	__u8 family;  /* FLOWREC_FAMILY_IPV4 or FLOWREC_FAMILY_IPV6 */
	__u8 verdict; /* enum flowrec_verdict */
	__u8 pad0;    /* producer zeroes, decoder ignores */
	__u64 pkt_count;
	__u64 byte_count;    /* IP bytes (from the IP header on) of the packets in pkt_count */
	__u64 first_seen_ns; /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
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

/*
 * Key of the v2 FLOWS table: family and the verdict join the 5-tuple, so that a flow of dropped
 * packets (drop mode, FLOW-MON-034) never merges with an allowed flow of the same 5-tuple (an
 * ICMP echo and the non-first fragments of a larger one); pad zeroed so equal keys hash equal.
 */
struct flowrec_key_v2 {
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
	__u8 family;
	__u8 verdict; /* enum flowrec_verdict: ACCEPT for considered flows, DROP for dropped ones */
	__u8 pad;
};

/* Value of the FLOWS table. pkt_count is updated atomically from every CPU. */
struct flowrec_state {
	__u64 pkt_count;
	__u64 first_seen_ns;
	__u8 verdict;
	__u8 pad[7];
};

/* Value of the v2 FLOWS_V2 table: byte_count joins, updated atomically like pkt_count. */
struct flowrec_state_v2 {
	__u64 pkt_count;
	__u64 byte_count;
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
	FLOWREC_STAT_IPV6 = 5,	      /* IPv6 in v1 mode: no v1 record can carry it */
	FLOWREC_STAT_OTHER_PROTO = 6, /* transport not TCP, UDP, ICMP (IPv4) or ICMPv6 (IPv6) */
	FLOWREC_STAT_FRAGMENT = 7,    /* non-first fragment: no L4 header */
	FLOWREC_STAT_MALFORMED = 8,   /* a header or the ports not readable, version or IHL wrong */
	FLOWREC_STAT_EXT_CHAIN = 9,   /* IPv6 (v2 mode) with more extension headers than followed */
	FLOWREC_STAT_MAX = 10,
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

#define FLOWREC_V2_ASSERT_OFF(field, off)                                     \
	_Static_assert(__builtin_offsetof(struct flowrec_v2, field) == (off), \
		       "flowrec_v2." #field " must be at offset " #off)

_Static_assert(sizeof(struct flowrec_v2) == FLOWREC_V2_SIZE, "flowrec_v2 must be 64 bytes");
_Static_assert(_Alignof(struct flowrec_v2) == 8, "flowrec_v2 must be 8-byte aligned");
FLOWREC_V2_ASSERT_OFF(src_addr, 0);
FLOWREC_V2_ASSERT_OFF(dst_addr, 16);
FLOWREC_V2_ASSERT_OFF(src_port, 32);
FLOWREC_V2_ASSERT_OFF(dst_port, 34);
FLOWREC_V2_ASSERT_OFF(proto, 36);
FLOWREC_V2_ASSERT_OFF(family, 37);
FLOWREC_V2_ASSERT_OFF(verdict, 38);
FLOWREC_V2_ASSERT_OFF(pad0, 39);
FLOWREC_V2_ASSERT_OFF(pkt_count, 40);
FLOWREC_V2_ASSERT_OFF(byte_count, 48);
FLOWREC_V2_ASSERT_OFF(first_seen_ns, 56);
_Static_assert(sizeof(struct flowrec_key_v2) == 40, "flowrec_key_v2 must be 40 bytes, no holes");
_Static_assert(sizeof(struct flowrec_state_v2) == 32, "flowrec_state_v2 must be 32 bytes");

/* v2 mode: how many IPv6 extension headers the classifier follows before the transport. */
#define FLOWREC_IPV6_EXT_MAX 8

#endif
