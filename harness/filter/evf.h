/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Output faults: negative controls that only change what an implementation writes, applied to
 * its lines from outside instead of from inside ref/ (SPEC 10.8, fault kind "filter").
 *
 *   IUT --events/stdout--> lines --evf_line(fault)--> what the case reads
 *
 * A table maps each fault name to one line transformation (rename or drop a member, change a
 * value, duplicate or drop an event, change the line end). A line the fault does not apply to
 * comes out byte-identical; so does every byte of a changed line outside the edited spans.
 * Used by cellcheck-evfilter (a stdin to stdout filter) and by the runner where it reads a
 * case's events. Nothing here is shared with ref/: the filter is the harness's own.
 */
#ifndef CELLCHECK_EVF_H
#define CELLCHECK_EVF_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line a fault edits; a longer one passes through unchanged. */
#define EVF_LINE_MAX (1u << 20)

struct evf_fault;

/* Per-stream state of a fault (the first envelope id of each producer, evt.id_reused). */
struct evf {
	const struct evf_fault *f;
	size_t n_src;
	struct {
		char *source; /* the source member's value text, quotes included */
		char *id;     /* its first id's value text */
	} src[16];
	unsigned long long seq; /* evt.source_numbered, dns.run_id_per_event: events seen */
	char listen[64];	/* dns.query_listen_first: dns_proxy_started's listen, quoted */
	/*
	 * A value text kept from an earlier line, quotes included: dns.query_id_reused's first
	 * queryId, dns.v6_*'s upstream, sup.relay_source_own's source of the sink's first event.
	 */
	char *first;
};

/* The fault of that name in the table, or NULL. */
const struct evf_fault *evf_find(const char *name);
/* The table's size and its i-th name (for lint and tests). */
size_t evf_count(void);
const char *evf_name(size_t i);

/* A stream's state for one fault; 0, or -ENOENT for a name the table does not hold. */
int evf_init(struct evf *x, const char *name);
void evf_done(struct evf *x);

/*
 * One line (len bytes, its '\n' included when it has one) through the fault: the text that
 * replaces it in *ret (malloc'd, NUL-terminated, possibly empty: the line is dropped) and its
 * length; 0 when the line stays as it is (*ret untouched), 1 when replaced, -ENOMEM.
 */
int evf_line(struct evf *x, const char *line, size_t len, char **ret, size_t *ret_len);

/*
 * A whole buffer of lines through the fault: a new buffer (malloc'd, NUL-terminated) and its
 * length; -ENOMEM. The state starts fresh, so the same bytes always give the same result.
 */
int evf_buffer(const char *name, const char *buf, size_t len, char **ret, size_t *ret_len);

#endif
