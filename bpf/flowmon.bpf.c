// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Egress flow classifier (SPEC.md chapter 6), attached as a cls_bpf direct-action filter on the
 * clsact egress hook of the cell's interface:
 *
 *   cell netns                                   monitor (userspace)
 *   workload -> IP stack -> [clsact egress] -> veth ...
 *                               |  FLOWS (LRU 5-tuple -> count, first seen)
 *                               +-> FLOW_EVENTS ring buffer --> drain thread -> events
 *                               +-> FLOW_STATS per-CPU counters (lost, packets, ...)
 *
 * One record per new 5-tuple; later packets only bump the table's count. Records are submitted
 * without a wakeup unless the ring is filling up: userspace drains on a short timer, which keeps
 * the per-packet cost near 100 ns instead of a wakeup per new flow.
 *
 * A packet the classifier does not consider (not IPv4 TCP/UDP/ICMP with its L4 header) is never
 * invisible: it bumps the FLOW_STATS slot of its class (non-IP, IPv6, other protocol, fragment,
 * malformed), so nothing leaves a cell uncounted.
 *
 * Observability only: every packet leaves with TC_ACT_OK, except that with drop_unconsidered
 * set the unconsidered ones are dropped (TC_ACT_SHOT) after being counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "flowmon_fault.h"
#include "flowrec.h"

#ifndef EEXIST
#define EEXIST 17
#endif

#define IP_OFFSET_MASK 0x1FFF

/* Set by the loader before load: link-layer header length (14 on Ethernet, 0 on raw IP). */
const volatile __u32 l2_len = ETH_HLEN;
/* Wake the consumer only once this many bytes wait in the ring. */
const volatile __u64 wakeup_bytes = 64 * 1024;
/* Set by the loader: drop what the classifier does not consider instead of passing it. */
const volatile __u32 drop_unconsidered = 0;

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

/* 0 when the packet is considered (key filled but ports), else its FLOW_STATS class. */
static __always_inline int key_from(struct flowrec_key *key, const struct iphdr *iph)
{
	if (iph->version != 4 || iph->ihl < 5)
		return FLOWREC_STAT_MALFORMED;
	/* A non-first fragment has no L4 header to key on. */
	if (iph->frag_off & bpf_htons(IP_OFFSET_MASK))
		return FLOWREC_STAT_FRAGMENT;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP &&
	    iph->protocol != IPPROTO_ICMP)
		return FLOWREC_STAT_OTHER_PROTO;
	key->src_ip = bpf_ntohl(iph->saddr);
	key->dst_ip = bpf_ntohl(iph->daddr);
	key->proto = iph->protocol;
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

SEC("tc")
int flowmon_egress(struct __sk_buff *skb)
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
