// SPDX-License-Identifier: Apache-2.0
/*
 * The stop step (hstep.h): "signal" (SIGTERM by default, "none" to only wait) to an earlier
 * start step, a wait for its exit bounded by the profile's stop timeout, and its status against
 * "expect_exit".
 */
#include <signal.h>
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

static int stop_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		      struct hcase_step *s)
{
	struct hstep_stop *p = &s->stop;
	const struct hcase_step *t;
	char pk[HJSON_PATH_MAX];
	const char *str = NULL;
	int r;

	p->signo = SIGTERM;
	p->expect_exit = -1;
	r = hcase_dup_str(e, pi, "target", true, &p->target, v->err);
	r = r ?: hjson_str(e, pi, "signal", false, &str, v->err);
	if (r < 0)
		return r;
	hjson_path_key(pk, pi, "signal");
	if (str && hcase_signal_from_name(str, &p->signo) < 0)
		return hjson_fail(v->err, pk, "\"%s\" is not a signal name or \"none\"", str);
	if (json_object_get(e, "expect_exit")) {
		uint32_t code;

		r = hjson_u32(e, pi, "expect_exit", false, 0, 255, &code, v->err);
		if (r < 0)
			return r;
		p->expect_exit = (int)code;
	}
	t = hcase_step_find(v->c, idx, p->target);
	hjson_path_key(pk, pi, "target");
	if (!t || t->action != HCASE_ACT_START)
		return hjson_fail(v->err, pk, "\"%s\" names no earlier start step", p->target);
	return 0;
}

/*
 * Every stop message says what was expected and what happened, with the end of the process's
 * stderr: why it exited 1, or what it was doing when it would not end.
 */
static void stop_run(struct run *r, const struct hcase_step *st)
{
	const struct hstep_stop *sp = &st->stop;
	struct proc *p = hproc_find(r, sp->target);
	char got[80], want[96], tail[320], sig[48];
	uint32_t cap;
	int ms;

	if (p)
		hsink_drain(r, p);
	if (!p) {
		run_verdict(r, HREP_ERROR, "stop %s: no process was started under that name",
			    sp->target);
		return;
	}
	if (!p->running) {
		hsink_finish(r, p);
		if (sp->expect_exit >= 0 && hproc_status_code(p->status) != sp->expect_exit)
			run_verdict(r, HREP_FAIL,
				    "stop %s: %s before the stop, expected %s; stderr ends: %s",
				    sp->target, hproc_status_text(p->status, got),
				    hproc_expected_text(sp->expect_exit, want),
				    hfile_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	cap = st->timeout_ms ?: r->j->prof->comp[p->comp].stop_timeout_ms;
	if (sp->signo)
		kill(p->pid, sp->signo);
	ms = run_remaining_ms(r, cap ?: 10000);
	if (!hproc_wait_exit(p->pid, ms, &p->status)) {
		if (sp->signo)
			snprintf(sig, sizeof(sig), "signal %d (SIG%s)", sp->signo,
				 sigabbrev_np(sp->signo) ?: "?");
		if (!run_timed_out(r))
			run_verdict(
				r, HREP_FAIL,
				"stop %s: still running %d ms after %s, expected %s by then; "
				"stderr ends: %s",
				sp->target, ms, sp->signo ? sig : "waiting for it to end by itself",
				sp->expect_exit >= 0 ? hproc_expected_text(sp->expect_exit, want)
						     : "it to end",
				hfile_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	p->running = false;
	p->exited = true;
	hsink_finish(r, p);
	if (sp->expect_exit >= 0 && hproc_status_code(p->status) != sp->expect_exit)
		run_verdict(r, HREP_FAIL, "stop %s: %s, expected %s; stderr ends: %s", sp->target,
			    hproc_status_text(p->status, got),
			    hproc_expected_text(sp->expect_exit, want),
			    hfile_tail(p->err_path, tail, sizeof(tail)));
}

static void stop_free(struct hcase_step *s)
{
	free(s->stop.target);
}

static const char *const stop_keys[] = { "target", "signal", "expect_exit", NULL };

const struct hstep_kind hstep_kind_stop = {
	.name = "stop",
	.keys = stop_keys,
	.parse = stop_parse,
	.run = stop_run,
	.free = stop_free,
};
