/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The clause map (fixtures/clauses.json, format in cases/README.md "The clause map", rule in
 * SPEC CHK-CASE-007): for every MUST requirement of SPEC.md, its testable statements (clauses)
 * and for each the cases, and optionally the check inside a case, that fail when that clause
 * alone is violated, with the reference fault that violates it; for the requirements cases do
 * not verify (CHK, consumer), the harness's own tests ("tests": FILE:NAME). A requirement named
 * by a case is not yet a requirement checked in full: the map says which part each case checks,
 * and `cellcheck lint` holds it against SPEC.md, the catalogue, the fault registry and the
 * test files.
 *
 *   { "clauseMapVersion": 1,
 *     "requirements": {
 *       "DNS-FWD-004": [
 *         { "clause": "upstream IDs are random", "fault": "dns.sequential_id",
 *           "checks": ["dns.forward.id-random#expect.counts.var:upstream.id_distinct"] },
 *         { "clause": "source ports are random", "checks": [], "gap": "no case yet" } ] } }
 */
#ifndef CELLCHECK_HCLAUSE_H
#define CELLCHECK_HCLAUSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "hcase.h"
#include "hjson.h"
#include "hspec.h"

struct hclause_stats {
	size_t reqs;	 /* MUST requirements the map must hold (SPEC.md) */
	size_t mapped;	 /* of them, with an entry of at least one clause */
	size_t clauses;	 /* clauses of those entries */
	size_t checked;	 /* clauses naming at least one valid case or test */
	size_t gaps;	 /* clauses naming none, with the reason in "gap": warnings */
	size_t findings; /* everything else that is wrong: lint fails */
};

/*
 * One finding (finding true) or warning (a known gap), with the JSON path in the map or, for a
 * requirement missing from the map, "$.requirements" and the requirement's ID in msg.
 */
typedef void (*hclause_report_fn)(bool finding, const char *path, const char *msg, void *userdata);

/* Read and validate the map's shape strictly (unknown keys, types). 0, -errno or -EINVAL. */
int hclause_load(const char *file, json_t **ret, struct hjson_err *err);

/* The requirements the map must hold: defined in SPEC.md's body, MUST, not withdrawn. */
bool hclause_req_mapped(const struct hspec_req *q);

/*
 * Hold the map against SPEC.md, the loaded cases, the fault registry (the parsed
 * fixtures/faults.json array, or NULL when it could not be read: every named fault is then a
 * finding) and the test files under srcdir. Every problem goes to report; ret_stats counts them.
 * Returns 0.
 */
int hclause_lint(json_t *map, const struct hspec *sp, const struct hcase_set *set, json_t *faults,
		 const char *srcdir, hclause_report_fn report, void *userdata,
		 struct hclause_stats *ret_stats);

/*
 * Does path name something inside case c? "expect.KIND..." walks c's expectations (an object
 * key may itself hold dots, such as "data.qname" or "var:upstream.id_distinct": the longest key
 * that fits is taken; "[N]" indexes an array); "steps.NAME" names a step, and
 * "steps.NAME.expect_exit" one that expects an exit status ("steps[N]" for an unnamed step).
 */
bool hclause_path_exists(const struct hcase *c, const char *path);

#endif
