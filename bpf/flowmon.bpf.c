// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Egress flow classifier (SPEC.md chapter 6), attached as a cls_bpf direct-action filter on the
 * clsact egress hook of the cell's interface:
 *
 *   cell netns                                   monitor (userspace)
 *   workload -> IP stack -> [clsact egress] -> veth ...
 *                               |  FLOWS or FLOWS_V2 (LRU 5-tuple -> counts, first seen)
 *                               +-> FLOW_EVENTS ring buffer --> drain thread -> events
 *                               +-> FLOW_STATS per-CPU counters (lost, packets, ...)
 *
 * One record per new 5-tuple; later packets only bump the table's counts. Records are
 * submitted without a wakeup unless the ring is filling up: userspace drains on a short timer,
 * which keeps the per-packet cost near 100 ns instead of a wakeup per new flow.
 *
 * The loader picks the record version for the program's whole life (record_version): 1 writes
 * v1 records for IPv4 TCP/UDP/ICMP and counts IPv6 as unconsidered; 2 writes v2 records for
 * IPv4 and for IPv6 TCP/UDP/ICMPv6 behind up to FLOWREC_IPV6_EXT_MAX extension headers. The
 * other version's code is dead once the knob is frozen, and the verifier prunes it.
 *
 * A packet the classifier does not consider is never invisible: it bumps the FLOW_STATS slot
 * of its class (non-IP, IPv6, other protocol, fragment, malformed, extension chain), so
 * nothing leaves a cell uncounted.
 *
 * Observability only: every packet leaves with TC_ACT_OK, except that with drop_unconsidered
 * set the unconsidered ones are dropped (TC_ACT_SHOT) after being counted. With record version 2
 * a dropped packet whose addresses were parsed (other protocol, non-first fragment, too many
 * extension headers) is also a flow of verdict drop, ports 0: a deny record, then counts.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "flowmon_fault.h"
#include "flowrec.h"

#ifndef EEXIST
#define EEXIST 17
#endif

#define IP_OFFSET_MASK 0x1FFF
/* IPv6 fragment header, bytes 2-3: offset in 8-byte units (13 bits), 2 reserved bits, M. */
#define IP6_OFFSET_MASK 0xFFF8
/* Beyond this offset headers are read through the helper only (keeps pointer math bounded). */
#define FAST_OFF_MAX 4096

/* Set by the loader before load: link-layer header length (14 on Ethernet, 0 on raw IP). */
const volatile __u32 l2_len = ETH_HLEN;
/* Wake the consumer only once this many bytes wait in the ring. */
const volatile __u64 wakeup_bytes = 64 * 1024;
/* Set by the loader: drop what the classifier does not consider instead of passing it. */
const volatile __u32 drop_unconsidered = 0;
/* Set by the loader: the record version (1 or 2) written for the program's whole life. */
const volatile __u32 record_version = 1;

/*
 * Puts struct flowrec_v1 and struct flowrec_v2 into the object's BTF (records are only ever
 * locals, which BTF omits), so that a layout check can read them from the object (FLOW-REC-007,
 * FLOW-REC-009). Never read.
 */
const volatile struct flowrec_v1 *const flowrec_v1_btf = 0;
const volatile struct flowrec_v2 *const flowrec_v2_btf = 0;

#ifdef CELLREF_FAULTS
/* Negative controls, FLOWMON_FAULT_* bits set by the loader; absent from a normal build. */
const volatile __u32 cellref_faults = 0;
#define FAULT_ON(bit) (cellref_faults & (bit))
#else
#define FAULT_ON(bit) 0
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} FLOW_EVENTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowrec_key);
	__type(value, struct flowrec_state);
} FLOWS SEC(".maps");

/* The v2 table; the loader shrinks whichever of FLOWS and FLOWS_V2 its version leaves unused. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowrec_key_v2);
	__type(value, struct flowrec_state_v2);
} FLOWS_V2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWREC_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} FLOW_STATS SEC(".maps");

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&FLOW_STATS, &slot);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/*
 * 0 when the packet is considered (key filled but ports), else its FLOW_STATS class. Addresses
 * and protocol are filled for fragment and otherProto too: v2 drop mode records those
 * (FLOW-MON-034).
 */
static __always_inline int key_from(struct flowrec_key *key, const struct iphdr *iph)
{
	if (iph->version != 4 || iph->ihl < 5)
		return FLOWREC_STAT_MALFORMED;
	key->src_ip = bpf_ntohl(iph->saddr);
	key->dst_ip = bpf_ntohl(iph->daddr);
	key->proto = iph->protocol;
	/* A non-first fragment has no L4 header to key on. */
	if (iph->frag_off & bpf_htons(IP_OFFSET_MASK))
		return FLOWREC_STAT_FRAGMENT;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP &&
	    iph->protocol != IPPROTO_ICMP)
		return FLOWREC_STAT_OTHER_PROTO;
	return 0; /* ICMP flows are keyed by addresses only; ports stay 0 */
}

static __always_inline void ports_from(struct flowrec_key *key, const __u16 *ports)
{
	key->src_port = bpf_ntohs(ports[0]);
	key->dst_port = bpf_ntohs(ports[1]);
}

/* 0 with the key filled for a considered packet, else the class it is counted in. */
static __always_inline int parse(struct __sk_buff *skb, struct flowrec_key *key)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + l2_len, copy;
	__u16 ports[2], *p;
	__u32 l4;
	int cls;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return skb->protocol == bpf_htons(ETH_P_IPV6) ? FLOWREC_STAT_IPV6
							      : FLOWREC_STAT_NON_IP;

	/* Fast path: headers in the linear area, read in place. */
	if ((void *)(iph + 1) <= end) {
		cls = key_from(key, iph);
		if (cls || key->proto == IPPROTO_ICMP)
			return cls;
		p = (void *)iph + (iph->ihl & 0xF) * 4;
		if ((void *)(p + 2) <= end) {
			ports_from(key, p);
			return 0;
		}
	}

	/* Slow path: headers split across fragments of the skb, or a packet cut short. */
	if (bpf_skb_load_bytes(skb, l2_len, &copy, sizeof(copy)) < 0)
		return FLOWREC_STAT_MALFORMED;
	cls = key_from(key, &copy);
	if (cls || key->proto == IPPROTO_ICMP)
		return cls;
	l4 = l2_len + (copy.ihl & 0xF) * 4;
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
		return FLOWREC_STAT_MALFORMED;
	ports_from(key, ports);
	return 0;
}

/* Counted in its class, then passed, or dropped in drop mode (FLOW-MON-026, FLOW-MON-027). */
static __always_inline int unconsidered(int cls)
{
	if (!FAULT_ON(FLOWMON_FAULT_UNCONSIDERED_UNCOUNTED))
		stat_inc(cls);
	if (drop_unconsidered && !FAULT_ON(FLOWMON_FAULT_UNCONSIDERED_PASS))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

static __always_inline void submit(const struct flowrec_key *key, const struct flowrec_state *st)
{
	struct flowrec_v1 *rec;
	__u64 flags;

	rec = bpf_ringbuf_reserve(&FLOW_EVENTS, sizeof(*rec), 0);
	if (!rec) {
		stat_inc(FLOWREC_STAT_LOST);
		return;
	}
	__builtin_memset(rec, 0, sizeof(*rec)); /* padding must leave the kernel zeroed */
	rec->src_ip = key->src_ip;
	rec->dst_ip = key->dst_ip;
	rec->src_port = key->src_port;
	rec->dst_port = key->dst_port;
	rec->proto = key->proto;
	rec->pkt_count = st->pkt_count;
	rec->first_seen_ns = st->first_seen_ns;
	rec->verdict = st->verdict;
	if (FAULT_ON(FLOWMON_FAULT_PAD_NONZERO)) {
		__builtin_memset(rec->pad0, 0xAA, sizeof(rec->pad0));
		__builtin_memset(rec->pad1, 0xAA, sizeof(rec->pad1));
	}
	if (FAULT_ON(FLOWMON_FAULT_PORT_ORDER)) {
		rec->src_port = bpf_htons(key->src_port);
		rec->dst_port = bpf_htons(key->dst_port);
	}
	if (FAULT_ON(FLOWMON_FAULT_ADDR_ORDER)) {
		rec->src_ip = bpf_htonl(key->src_ip);
		rec->dst_ip = bpf_htonl(key->dst_ip);
	}
	if (FAULT_ON(FLOWMON_FAULT_ICMP_PROTO_ZERO) && key->proto == IPPROTO_ICMP)
		rec->proto = 0;

	flags = bpf_ringbuf_query(&FLOW_EVENTS, BPF_RB_AVAIL_DATA) >= wakeup_bytes
			? BPF_RB_FORCE_WAKEUP
			: BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
	stat_inc(FLOWREC_STAT_RECORDS);
}

/* A later packet of a known flow: count it (FLOW-MON-009). */
static __always_inline void count(const struct flowrec_key *key, struct flowrec_state *st)
{
	__sync_fetch_and_add(&st->pkt_count, FAULT_ON(FLOWMON_FAULT_PKT_COUNT_DOUBLE) ? 2 : 1);
	if (FAULT_ON(FLOWMON_FAULT_RECORD_PER_PACKET))
		submit(key, st);
}

static __always_inline int egress_v1(struct __sk_buff *skb)
{
	struct flowrec_key key = {};
	struct flowrec_state fresh = {}, *st;
	long err;
	int cls;

	cls = parse(skb, &key);
	if (cls)
		return unconsidered(cls);
	stat_inc(FLOWREC_STAT_PACKETS);

	st = bpf_map_lookup_elem(&FLOWS, &key);
	if (st) {
		count(&key, st);
		return TC_ACT_OK;
	}

	fresh.pkt_count = 1;
	fresh.first_seen_ns = bpf_ktime_get_ns();
	fresh.verdict = FLOWREC_VERDICT_ACCEPT;
	if (FAULT_ON(FLOWMON_FAULT_FIRST_SEEN_SKEW))
		fresh.first_seen_ns -= FLOWMON_FAULT_SKEW_NS;
	if (FAULT_ON(FLOWMON_FAULT_VERDICT_DROP))
		fresh.verdict = FLOWREC_VERDICT_DROP; /* a claim only: the packet still passes */
	err = bpf_map_update_elem(&FLOWS, &key, &fresh, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the same flow first: it owns the record. */
		st = bpf_map_lookup_elem(&FLOWS, &key);
		if (st)
			count(&key, st);
		return TC_ACT_OK;
	}
	if (err) {
		stat_inc(FLOWREC_STAT_TABLE_FULL);
		return TC_ACT_OK;
	}
	submit(&key, &fresh);
	return TC_ACT_OK;
}

/* ------------------------------------------------------------------ record version 2 */

/*
 * Copies n bytes at off into buf: in place when the linear area holds them (the fast path),
 * else through bpf_skb_load_bytes (headers in paged fragments, or a packet cut short).
 */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *buf, __u32 n)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	if (off <= FAST_OFF_MAX && data + off + n <= end) {
		__builtin_memcpy(buf, data + off, n);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, buf, n) < 0 ? -1 : 0;
}

static __always_inline int ip6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/*
 * IPv6: follows the extension header chain (at most FLOWREC_IPV6_EXT_MAX headers) to TCP, UDP
 * or ICMPv6. 0 with the key filled, else the class the packet is counted in; for fragment,
 * otherProto and extChain the addresses and proto are filled as FLOW-MON-035 says (drop mode
 * records them), ports stay 0.
 */
static __always_inline int parse6(struct __sk_buff *skb, struct flowrec_key_v2 *key)
{
	struct ipv6hdr ip6;
	__u32 off = l2_len + sizeof(ip6);
	__u16 ports[2];
	__u8 ext[8], nh;

	if (load(skb, l2_len, &ip6, sizeof(ip6)) || ip6.version != 6)
		return FLOWREC_STAT_MALFORMED;
	__builtin_memcpy(key->src_addr, &ip6.saddr, 16);
	__builtin_memcpy(key->dst_addr, &ip6.daddr, 16);
	key->family = FLOWREC_FAMILY_IPV6;
	nh = ip6.nexthdr;

	for (int i = 0; i < FLOWREC_IPV6_EXT_MAX; i++) {
		if (!ip6_ext(nh) || FAULT_ON(FLOWMON_FAULT_V6_EXT_UNFOLLOWED))
			break;
		/* Every extension header this loop follows is at least 8 bytes long. */
		if (load(skb, off, ext, sizeof(ext)))
			return FLOWREC_STAT_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			/* A non-first fragment has no transport header; a first one goes on. */
			if ((ext[2] << 8 | ext[3]) & IP6_OFFSET_MASK ||
			    FAULT_ON(FLOWMON_FAULT_V6_FIRST_FRAGMENT)) {
				/* The fragment header's next header, as IPv4's protocol field. */
				key->proto = ext[0];
				return FLOWREC_STAT_FRAGMENT;
			}
			off += 8;
		} else if (nh == IPPROTO_AH) {
			off += (ext[1] + 2) * 4; /* RFC 4302: 4-byte units, minus 2 */
		} else {
			off += (ext[1] + 1) *
			       8; /* RFC 8200: 8-byte units, not counting the first */
		}
		nh = ext[0];
	}
	/* The next header reached: the ninth extension header's type, or the transport's. */
	key->proto = nh;
	if (ip6_ext(nh) && !FAULT_ON(FLOWMON_FAULT_V6_EXT_LIMIT))
		return FLOWREC_STAT_EXT_CHAIN;
	/* flow.udplite6_uncounted: UDP-Lite gets a class without a slot, so nothing counts it */
	if (nh == IPPROTO_UDPLITE && FAULT_ON(FLOWMON_FAULT_UDPLITE6_UNCOUNTED))
		return FLOWREC_STAT_MAX;
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6)
		return FLOWREC_STAT_OTHER_PROTO;
	if (nh == IPPROTO_ICMPV6)
		return 0; /* keyed by addresses only; ports stay 0 */
	if (load(skb, off, ports, sizeof(ports)))
		return FLOWREC_STAT_MALFORMED;
	key->src_port = bpf_ntohs(ports[0]);
	key->dst_port = bpf_ntohs(ports[1]);
	return 0;
}

/* An IPv4 address (host order) as the IPv4-mapped IPv6 address ::ffff:a.b.c.d. */
static __always_inline void map4(__u8 addr[16], __u32 ip)
{
	__u32 be = bpf_htonl(ip);

	if (!FAULT_ON(FLOWMON_FAULT_V2_IPV4_UNMAPPED))
		addr[10] = addr[11] = 0xff;
	__builtin_memcpy(addr + 12, &be, 4);
}

/* The classes whose packets have addresses a dropped flow is keyed on (FLOW-MON-034). */
static __always_inline int has_addrs(int cls)
{
	return cls == FLOWREC_STAT_OTHER_PROTO || cls == FLOWREC_STAT_FRAGMENT ||
	       cls == FLOWREC_STAT_EXT_CHAIN;
}

/*
 * 0 with the v2 key filled for a considered packet, else the class it is counted in (with the
 * key filled but ports when has_addrs(class)).
 */
static __always_inline int parse_v2(struct __sk_buff *skb, struct flowrec_key_v2 *key)
{
	struct flowrec_key k4 = {};
	int cls;

	if (skb->protocol == bpf_htons(ETH_P_IPV6) && !FAULT_ON(FLOWMON_FAULT_V6_UNCONSIDERED))
		return parse6(skb, key);
	/* IPv4 exactly as in v1 (and non-IP, IPv6 under the fault), then mapped. */
	cls = parse(skb, &k4);
	if (cls && !has_addrs(cls))
		return cls;
	map4(key->src_addr, k4.src_ip);
	map4(key->dst_addr, k4.dst_ip);
	key->src_port = k4.src_port;
	key->dst_port = k4.dst_port;
	key->proto = k4.proto;
	key->family = FLOWREC_FAMILY_IPV4;
	return cls;
}

static __always_inline void submit_v2(const struct flowrec_key_v2 *key,
				      const struct flowrec_state_v2 *st)
{
	struct flowrec_v2 *rec;
	__u64 flags;

	rec = bpf_ringbuf_reserve(&FLOW_EVENTS, sizeof(*rec), 0);
	if (!rec) {
		stat_inc(FLOWREC_STAT_LOST);
		return;
	}
	__builtin_memset(rec, 0, sizeof(*rec)); /* pad0 must leave the kernel zeroed */
	__builtin_memcpy(rec->src_addr, key->src_addr, 16);
	__builtin_memcpy(rec->dst_addr, key->dst_addr, 16);
	rec->src_port = key->src_port;
	rec->dst_port = key->dst_port;
	rec->proto = key->proto;
	rec->family = key->family;
	rec->verdict = st->verdict;
	rec->pkt_count = st->pkt_count;
	rec->byte_count = st->byte_count;
	rec->first_seen_ns = st->first_seen_ns;
	if (FAULT_ON(FLOWMON_FAULT_PAD_NONZERO))
		rec->pad0 = 0xAA;
	if (FAULT_ON(FLOWMON_FAULT_PORT_ORDER)) {
		rec->src_port = bpf_htons(key->src_port);
		rec->dst_port = bpf_htons(key->dst_port);
	}

	flags = bpf_ringbuf_query(&FLOW_EVENTS, BPF_RB_AVAIL_DATA) >= wakeup_bytes
			? BPF_RB_FORCE_WAKEUP
			: BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
	stat_inc(FLOWREC_STAT_RECORDS);
}

/* A later packet of a known v2 flow: count it and its bytes. */
static __always_inline void count_v2(const struct flowrec_key_v2 *key, struct flowrec_state_v2 *st,
				     __u64 bytes)
{
	__sync_fetch_and_add(&st->pkt_count, FAULT_ON(FLOWMON_FAULT_PKT_COUNT_DOUBLE) ? 2 : 1);
	__sync_fetch_and_add(&st->byte_count, bytes);
	if (FAULT_ON(FLOWMON_FAULT_RECORD_PER_PACKET))
		submit_v2(key, st);
}

/*
 * A packet of the flow key (verdict included) with its IP bytes: a new flow gets a record
 * (FLOW-MON-008 for considered flows, FLOW-MON-036 for dropped ones), a known one its counts.
 */
static __always_inline void track_v2(struct flowrec_key_v2 *key, __u64 bytes)
{
	struct flowrec_state_v2 fresh = {}, *st;
	long err;

	st = bpf_map_lookup_elem(&FLOWS_V2, key);
	if (st) {
		count_v2(key, st, bytes);
		return;
	}

	fresh.pkt_count = 1;
	fresh.byte_count = bytes;
	fresh.first_seen_ns = bpf_ktime_get_ns();
	fresh.verdict = key->verdict;
	if (FAULT_ON(FLOWMON_FAULT_FIRST_SEEN_SKEW))
		fresh.first_seen_ns -= FLOWMON_FAULT_SKEW_NS;
	if (FAULT_ON(FLOWMON_FAULT_VERDICT_DROP))
		fresh.verdict = FLOWREC_VERDICT_DROP;
	err = bpf_map_update_elem(&FLOWS_V2, key, &fresh, BPF_NOEXIST);
	if (err == -EEXIST) {
		st = bpf_map_lookup_elem(&FLOWS_V2, key);
		if (st)
			count_v2(key, st, bytes);
		return;
	}
	if (err) {
		stat_inc(FLOWREC_STAT_TABLE_FULL);
		return;
	}
	submit_v2(key, &fresh);
}

/*
 * Drop mode: a dropped packet with addresses is a flow of verdict drop, ports 0 (FLOW-MON-034,
 * FLOW-MON-035). drop_unconsidered is a frozen knob: in count mode the verifier prunes the call.
 */
static __always_inline void track_dropped_v2(struct flowrec_key_v2 *key, int cls, __u64 bytes)
{
	/* The fault records a packet without addresses, with a zeroed key. */
	if (FAULT_ON(FLOWMON_FAULT_DROP_RECORD_ADDRLESS) && !has_addrs(cls)) {
		__builtin_memset(key, 0, sizeof(*key));
		cls = FLOWREC_STAT_OTHER_PROTO;
	}
	if (!has_addrs(cls) || FAULT_ON(FLOWMON_FAULT_DROP_UNRECORDED))
		return;
	key->src_port = key->dst_port = 0;
	key->verdict = FAULT_ON(FLOWMON_FAULT_DROP_VERDICT_ACCEPT) ? FLOWREC_VERDICT_ACCEPT
								   : FLOWREC_VERDICT_DROP;
	/* The fault keys it as, and so merges it into, an allowed flow of the same tuple. */
	if (FAULT_ON(FLOWMON_FAULT_DROP_KEY_MERGED))
		key->verdict = FLOWREC_VERDICT_ACCEPT;
	track_v2(key, bytes);
}

static __always_inline int egress_v2(struct __sk_buff *skb)
{
	struct flowrec_key_v2 key = {};
	/* IP bytes: the skb from the IP header on (a GSO skb counts all of its segments). */
	__u64 bytes = FAULT_ON(FLOWMON_FAULT_BYTE_COUNT_L2) ? skb->len : skb->len - l2_len;
	int cls;

	cls = parse_v2(skb, &key);
	if (cls) {
		if (drop_unconsidered || FAULT_ON(FLOWMON_FAULT_DROP_RECORD_COUNT_MODE))
			track_dropped_v2(&key, cls, bytes);
		return unconsidered(cls);
	}
	stat_inc(FLOWREC_STAT_PACKETS);
	key.verdict = FLOWREC_VERDICT_ACCEPT;
	track_v2(&key, bytes);
	return TC_ACT_OK;
}

SEC("tc")
int flowmon_egress(struct __sk_buff *skb)
{
	/* A frozen knob: the verifier sees a constant and drops the other version's code. */
	if (record_version == 2)
		return egress_v2(skb);
	return egress_v1(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
