// SPDX-License-Identifier: Apache-2.0
#include "flowacc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

/*
 * Open addressing with linear probing; the keys are v2 table keys (family and 16-byte addresses,
 * v1 records as IPv4-mapped), so IPv6 flows that differ only in their upper address bytes stay
 * apart; the used flag lives beside them.
 */
struct slot {
	struct flowrec_key_v2 key;
	bool used;
};

struct flowacc {
	struct slot *slots;
	uint64_t cap; /* power of two */
	uint64_t count;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t key_hash(const struct flowrec_key_v2 *k)
{
	uint64_t w[sizeof(*k) / 8], h = 0;

	memcpy(w, k, sizeof(w));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		h = mix64(h ^ w[i]);
	return h;
}

int flowacc_new(struct flowacc **ret)
{
	struct flowacc *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->cap = 1024;
	a->slots = calloc(a->cap, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

void flowacc_free(struct flowacc *a)
{
	if (!a)
		return;
	free(a->slots);
	free(a);
}

void flowacc_freep(struct flowacc **a)
{
	flowacc_free(*a);
}

/* Find the slot of k: its own if present, else the empty one where it belongs. */
static struct slot *probe(struct slot *slots, uint64_t cap, const struct flowrec_key_v2 *k)
{
	uint64_t i = key_hash(k) & (cap - 1);

	while (slots[i].used && memcmp(&slots[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct flowacc *a)
{
	uint64_t ncap = a->cap * 2, i;
	struct slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (i = 0; i < a->cap; i++) {
		if (a->slots[i].used)
			*probe(ns, ncap, &a->slots[i].key) = a->slots[i];
	}
	free(a->slots);
	a->slots = ns;
	a->cap = ncap;
	return 0;
}

int flowacc_record(struct flowacc *a, const struct flowrec *r, enum flowacc_kind kind)
{
	struct flowrec_key_v2 k;
	struct slot *s;
	int err;

	if (kind != FLOWACC_OPENED)
		return 0;
	memset(&k, 0, sizeof(k));
	if (r->version == 2) {
		k.family = r->family;
		memcpy(k.src_addr, r->src_addr, 16);
		memcpy(k.dst_addr, r->dst_addr, 16);
	} else {
		k.family = FLOWREC_FAMILY_IPV4;
		flowrec_addr_map_ipv4(r->src_ip, k.src_addr);
		flowrec_addr_map_ipv4(r->dst_ip, k.dst_addr);
	}
	k.src_port = r->src_port;
	k.dst_port = r->dst_port;
	k.proto = r->proto;
	/*
	 * v2: a flow of dropped packets is not the allowed flow of the same 5-tuple (FLOW-SUM-013),
	 * as in FLOWS_V2's key; every other flow keeps verdict 0 here, so v1 and allowed v2 flows
	 * are keyed on the 5-tuple alone, as they always were.
	 */
	if (r->version == 2 && r->verdict == FLOWREC_VERDICT_DROP &&
	    !FAULT("flow.unique_verdictless"))
		k.verdict = FLOWREC_VERDICT_DROP;

	/* Keep the load under 1/2 so probes stay short. */
	if ((a->count + 1) * 2 > a->cap) {
		err = grow(a);
		if (err)
			return err;
	}
	s = probe(a->slots, a->cap, &k);
	if (s->used)
		return 0;
	s->key = k;
	s->used = true;
	a->count++;
	return 1;
}

uint64_t flowacc_unique(const struct flowacc *a)
{
	return a->count;
}
