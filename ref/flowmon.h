/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The eBPF flow monitor: loads bpf/flowmon.bpf.c, attaches it to an interface's clsact egress
 * hook, drains the FLOW_EVENTS ring buffer, reads the in-kernel counters and the FLOWS table.
 * This is the only module that sees libbpf or the skeleton.
 *
 * flowmon_attach() and flowmon_detach() talk rtnetlink and must run on a thread that is inside
 * the interface's network namespace; everything else works from any thread.
 */
#ifndef CELLREF_FLOWMON_H
#define CELLREF_FLOWMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flowrec.h"

#define FLOWMON_RINGBUF_DEFAULT	 (256u * 1024u)
#define FLOWMON_TABLE_DEFAULT	 65536u
#define FLOWMON_DRAIN_MS_DEFAULT 100u

struct flowmon;

struct flowmon_opts {
	int ifindex;
	unsigned int l2_len;	/* link-layer header bytes before the IP header */
	uint32_t ringbuf_bytes; /* power of two, multiple of the page size */
	uint32_t table_entries;
	bool drop_unconsidered;	     /* drop, not pass, what the classifier does not consider */
	unsigned int record_version; /* 1 or 2 (0 counts as 1), for the program's whole life */
	/* Called for each drained record with its raw bytes; return < 0 to stop the drain. */
	int (*on_record)(void *ctx, const void *data, size_t len);
	void *ctx;
};

struct flowmon_stats {
	uint64_t records; /* submitted by the kernel */
	uint64_t lost;	  /* could not be reserved */
	uint64_t packets;
	uint64_t table_full;
	/* Packets not considered, by class: FLOWREC_STAT_NON_IP.. minus FLOWREC_STAT_NON_IP. */
	uint64_t unconsidered[FLOWREC_STAT_UNCONSIDERED_N];
};

/*
 * 1 when the kernel has BPF ring buffers, 0 when not, -EPERM when this process lacks
 * CAP_NET_ADMIN or CAP_BPF (CAP_SYS_ADMIN), other -errno when it cannot tell.
 */
int flowmon_ringbuf_supported(void);

/*
 * Open and load. On a verifier rejection *ret_log (when non-NULL) gets the verifier's log,
 * which the caller frees; it stays NULL for other failures.
 */
int flowmon_open(const struct flowmon_opts *o, struct flowmon **ret, char **ret_log);
int flowmon_attach(struct flowmon *m);
int flowmon_detach(struct flowmon *m);
void flowmon_free(struct flowmon *m);
void flowmon_freep(struct flowmon **m);

/* Whether attach created the clsact qdisc (and so detach removes it). */
bool flowmon_qdisc_created(const struct flowmon *m);
uint32_t flowmon_prog_id(const struct flowmon *m);

/* Readable when the kernel woke the consumer; drain with flowmon_consume() either way. */
int flowmon_epoll_fd(const struct flowmon *m);
/* Records handled, or -errno. */
int flowmon_consume(struct flowmon *m);

int flowmon_read_stats(struct flowmon *m, struct flowmon_stats *ret);

/*
 * Visit every flow in the table of the record version (FLOWS or FLOWS_V2) as a record of that
 * version with its current counts.
 */
int flowmon_foreach_flow(struct flowmon *m, int (*fn)(void *ctx, const struct flowrec *r),
			 void *ctx);

#endif
