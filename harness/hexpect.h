/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checking a case's expectations (cases/README.md, "Expectations") against what the runner
 * observed. A pure function of its inputs: the runner collects, this module judges, so it is
 * unit-tested without a kernel. Record frames are decoded here from SPEC.md chapters 1 and 3,
 * never by ref/ code (DESIGN.md 8).
 */
#ifndef CELLCHECK_HEXPECT_H
#define CELLCHECK_HEXPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcase.h"

/* One started component, after it stopped (or was killed at the case's end). */
struct hobs_proc {
	const char *name; /* its start step's name */
	enum hcase_component component;
	const char *out; /* stdout bytes */
	size_t out_len;
	const char *err; /* stderr bytes */
	size_t err_len;
	const char *events; /* its event file (JSONL), NULL when it has none */
	size_t events_len;
	const char *records; /* its --records file (framed records), NULL when none */
	size_t records_len;
	bool exited;	 /* false: it had to be killed */
	int exit_status; /* exit code, or 128+signal */
};

/* What a driver or client step got back. */
struct hobs_resp {
	const char *step; /* the step's name */
	json_t *result;	  /* driver: its "result" object; client: {"exit":N,"stdout":"..."} */
};

struct hobs {
	const struct hobs_proc *procs;
	size_t n_procs;
	const struct hobs_resp *resps;
	size_t n_resps;
	/* Runner variables for {placeholders} in matchers: "case.start_ns" (CLOCK_MONOTONIC
	 * at the first step), "case.end_ns" (after the last), and per-case ones the runner
	 * adds ("link.<ns>.<ifname>.tx_packets" ...). String values; numbers as decimal text. */
	json_t *vars;
	uint64_t upstream_queries; /* queries the upstream saw (UINT64_MAX: no upstream) */
	const char *srcdir;	   /* for stdout.file and the schemas in fixtures/schemas */
	const char *bpf_object;	   /* the profile's artifacts.bpf_object (expect.btf), or NULL */
};

/* One expectation that does not hold: 1 (a FAIL) or -errno (the check could not run). */
struct hexp_problem {
	int r;
	char *msg;	/* one line: the check's path, expected and observed (long values cut) */
	char *expected; /* what was expected, in full (never cut), or NULL */
	char *got;	/* what was observed, in full, or NULL */
};

void hexp_problems_free(struct hexp_problem *p, size_t n);

/*
 * Every expectation, each judged on its own (SPEC CHK-RUN-004): every output, response
 * item, event and record stream, count and layout is checked even after another one failed.
 * 0: all hold (*ret NULL, *ret_n 0). Else *ret (malloc'd) lists the problems in the order of
 * the expectations, and the return is -errno when one check could not run (an ERROR, which
 * outranks a FAIL), else 1. -ENOMEM alone leaves *ret NULL.
 */
int hexp_check_all(const struct hcase *c, const struct hobs *o, struct hexp_problem **ret,
		   size_t *ret_n);

/*
 * The same, as one line: *msg (malloc'd) is the first problem, followed by " (and N more)"
 * when there are more.
 */
int hexp_check(const struct hcase *c, const struct hobs *o, char **msg);

#endif
