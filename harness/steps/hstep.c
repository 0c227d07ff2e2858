// SPDX-License-Identifier: Apache-2.0
/*
 * The step kinds' table (hstep.h), and the steps of a case (hrun_int.h) run in order through
 * it. A step that finds a problem reports it and the steps stop there (what follows would be a
 * consequence); the expectations and the audit still run.
 */
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

const struct hstep_kind *const hstep_kinds[_HCASE_ACT_MAX] = {
	[HCASE_ACT_START] = &hstep_kind_start,	 [HCASE_ACT_DRIVER] = &hstep_kind_driver,
	[HCASE_ACT_CLIENT] = &hstep_kind_client, [HCASE_ACT_WAIT] = &hstep_kind_wait,
	[HCASE_ACT_SIGNAL] = &hstep_kind_signal, [HCASE_ACT_STOP] = &hstep_kind_stop,
	[HCASE_ACT_FEED] = &hstep_kind_feed,	 [HCASE_ACT_DRAIN] = &hstep_kind_drain,
	[HCASE_ACT_FILE] = &hstep_kind_file,
};

void hstep_add_resp(struct run *r, const char *name, json_t *result)
{
	struct hobs_resp *nr = realloc(r->resps, (r->n_resps + 1) * sizeof(*nr));

	if (!nr) {
		json_decref(result);
		return;
	}
	r->resps = nr;
	r->resps[r->n_resps].step = name;
	r->resps[r->n_resps].result = result;
	r->n_resps++;
}

/* A TIMEOUT found during step i says which step it interrupted. */
static void timeout_names_step(struct run *r, size_t i, const struct hcase_step *st)
{
	struct hrep_problem *last = r->n_probs ? &r->probs[r->n_probs - 1] : NULL;
	char *m = NULL;

	if (!last || last->status != HREP_ERROR || !last->message ||
	    strncmp(last->message, "TIMEOUT", 7) || strstr(last->message, "(in step "))
		return;
	if (asprintf(&m, "%s (in step %zu, %s)", last->message, i, hstep_kinds[st->action]->name) >=
	    0) {
		free(last->message);
		last->message = m;
	}
}

void hstep_run_all(struct run *r)
{
	for (size_t i = 0; i < r->c->n_steps && r->status == HREP_PASS; i++) {
		const struct hcase_step *st = &r->c->steps[i];

		if (run_timed_out(r))
			break;
		if ((unsigned int)st->action < _HCASE_ACT_MAX)
			hstep_kinds[st->action]->run(r, st);
		else
			run_verdict(r, HREP_ERROR, "step %zu: unknown action", i);
		timeout_names_step(r, i, st);
	}
}
