// SPDX-License-Identifier: Apache-2.0
/* The signal step (hstep.h): "signal" (required, not "none") to an earlier start step. */
#include <signal.h>
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

static int signal_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
			struct hcase_step *s)
{
	struct hstep_signal *g = &s->signal;
	const struct hcase_step *t;
	char pk[HJSON_PATH_MAX];
	const char *str = NULL;
	int r;

	g->signo = SIGTERM;
	r = hcase_dup_str(e, pi, "target", true, &g->target, v->err);
	r = r ?: hjson_str(e, pi, "signal", true, &str, v->err);
	if (r < 0)
		return r;
	hjson_path_key(pk, pi, "signal");
	if (hcase_signal_from_name(str, &g->signo) < 0 || g->signo == 0)
		return hjson_fail(v->err, pk, "\"%s\" is not a signal name", str);
	t = hcase_step_find(v->c, idx, g->target);
	hjson_path_key(pk, pi, "target");
	if (!t || t->action != HCASE_ACT_START)
		return hjson_fail(v->err, pk, "\"%s\" names no earlier start step", g->target);
	return 0;
}

static void signal_run(struct run *r, const struct hcase_step *st)
{
	struct proc *p = hproc_find(r, st->signal.target);

	if (p && p->running)
		kill(p->pid, st->signal.signo);
}

static void signal_free(struct hcase_step *s)
{
	free(s->signal.target);
}

static const char *const signal_keys[] = { "target", "signal", NULL };

const struct hstep_kind hstep_kind_signal = {
	.name = "signal",
	.keys = signal_keys,
	.parse = signal_parse,
	.run = signal_run,
	.free = signal_free,
};
