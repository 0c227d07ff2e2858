/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The step kinds of a case as a table of operations (cases/README.md "Steps"). Each kind is one
 * file of this directory, step_KIND.c, that defines its row: the name a case file's "action"
 * gives, the keys it takes besides the common ones, and its parse, run and free functions.
 *
 *   hcase.c      checks the common keys (action, name, ns, timeout_ms), then the kind's parse;
 *                hcase_free() calls the kind's free
 *   hstep.c      the table, and the runner's loop (hstep_run_all) over a case's steps
 *   step_*.c     one kind each; its typed members are struct hstep_KIND in hcase.h
 *
 * A new kind: its file here, its struct, union member and enum value in hcase.h, its row in
 * hstep_kinds (hstep.c), its source in harness/meson.build and its keys in cases/README.md.
 */
#ifndef CELLCHECK_HSTEP_H
#define CELLCHECK_HSTEP_H

#include <jansson.h>
#include <stddef.h>

#include "hcase.h"
#include "hjson.h"

struct run; /* the runner's state (hrun_int.h) */

/* What a kind's parser sees: the case so far (component, uses, earlier steps), where errors go. */
struct hstep_pctx {
	const struct hcase *c;
	struct hjson_err *err;
};

struct hstep_kind {
	const char *name;	 /* the step's "action" */
	const char *const *keys; /* its keys besides the common ones; NULL-terminated */
	/*
	 * Fill the kind's union member of s (zeroed, the common members set) from e, the idx-th
	 * step at path; 0, or -errno with v->err naming the path.
	 */
	int (*parse)(struct hstep_pctx *v, json_t *e, const char *path, size_t idx,
		     struct hcase_step *s);
	/* Do the step; a problem is a run_verdict(), which ends the steps (hstep_run_all). */
	void (*run)(struct run *r, const struct hcase_step *st);
	/* Free what parse allocated, also after it stopped half way. */
	void (*free)(struct hcase_step *s);
};

extern const struct hstep_kind hstep_kind_start, hstep_kind_driver, hstep_kind_client,
	hstep_kind_wait, hstep_kind_signal, hstep_kind_stop, hstep_kind_feed, hstep_kind_drain,
	hstep_kind_file;

/* By enum hcase_action. */
extern const struct hstep_kind *const hstep_kinds[_HCASE_ACT_MAX];

#endif
