// SPDX-License-Identifier: Apache-2.0
/* The drain step (hstep.h): start reading an earlier start step's stalled sink. */
#include "hrun_int.h"
#include "hstep.h"

static int drain_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		       struct hcase_step *s)
{
	struct hstep_drain *d = &s->drain;
	const struct hcase_step *t;
	char pk[HJSON_PATH_MAX];
	int r;

	r = hcase_dup_str(e, pi, "target", true, &d->target, v->err);
	if (r < 0)
		return r;
	t = hcase_step_find(v->c, idx, d->target);
	hjson_path_key(pk, pi, "target");
	if (!t || t->action != HCASE_ACT_START || t->start.sink != HCASE_SINK_STALLED)
		return hjson_fail(v->err, pk,
				  "\"%s\" names no earlier start step with a stalled sink",
				  d->target);
	return 0;
}

/* cases/README.md "drain": a process of the runner copies the sink to the step's event file. */
static void drain_run(struct run *r, const struct hcase_step *st)
{
	hsink_drain(r, hproc_find(r, st->drain.target));
}

static void drain_free(struct hcase_step *s)
{
	free(s->drain.target);
}

static const char *const drain_keys[] = { "target", NULL };

const struct hstep_kind hstep_kind_drain = {
	.name = "drain",
	.keys = drain_keys,
	.parse = drain_parse,
	.run = drain_run,
	.free = drain_free,
};
