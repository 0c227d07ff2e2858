// SPDX-License-Identifier: Apache-2.0
/*
 * The wait step (hstep.h): a sleep ("ms", "scaled"), until "count" events of a type arrived
 * ("event"), or until a start step's stdout holds "stdout_lines" lines ("target").
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "hrun_int.h"
#include "hstep.h"

static int wait_parse_lines(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
			    struct hstep_wait *w)
{
	const struct hcase_step *t;
	char pk[HJSON_PATH_MAX];
	int r;

	r = hcase_dup_str(e, pi, "target", true, &w->target, v->err);
	r = r ?: hjson_u32(e, pi, "stdout_lines", true, 1, 1000000, &w->stdout_lines, v->err);
	if (r < 0)
		return r;
	t = hcase_step_find(v->c, idx, w->target);
	hjson_path_key(pk, pi, "target");
	if (!t || t->action != HCASE_ACT_START)
		return hjson_fail(v->err, pk, "\"%s\" names no earlier start step", w->target);
	return 0;
}

static int wait_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		      struct hcase_step *s)
{
	bool has_ms = json_object_get(e, "ms"), has_ev = json_object_get(e, "event");
	bool has_lines = json_object_get(e, "stdout_lines");
	struct hstep_wait *w = &s->wait;
	char pk[HJSON_PATH_MAX];
	int r;

	if (has_lines && (has_ms || has_ev))
		return hjson_fail(v->err, pi, "\"stdout_lines\" excludes \"ms\" and \"event\"");
	if (has_lines)
		return wait_parse_lines(v, e, pi, idx, w);
	if (json_object_get(e, "target")) {
		hjson_path_key(pk, pi, "target");
		return hjson_fail(v->err, pk, "\"target\" goes with \"stdout_lines\"");
	}
	if (has_ms == has_ev)
		return hjson_fail(v->err, pi,
				  "a wait step has \"ms\", \"event\" or \"stdout_lines\"");
	w->count = 1;
	r = hjson_u32(e, pi, "ms", false, 1, 600000, &w->ms, v->err);
	r = r ?: hcase_dup_str(e, pi, "event", false, &w->event_type, v->err);
	r = r ?: hjson_u32(e, pi, "count", false, 1, 1000000, &w->count, v->err);
	if (r < 0)
		return r;
	if (has_ms && json_object_get(e, "count")) {
		hjson_path_key(pk, pi, "count");
		return hjson_fail(v->err, pk, "\"count\" goes with \"event\"");
	}
	if (json_object_get(e, "scaled")) {
		hjson_path_key(pk, pi, "scaled");
		if (!has_ms)
			return hjson_fail(v->err, pk, "\"scaled\" goes with \"ms\"");
		r = hjson_bool(e, pi, "scaled", false, &w->scaled, v->err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool type_matches(const char *type, const char *want)
{
	size_t lt = strlen(type), lw = strlen(want);

	return strcmp(type, want) == 0 ||
	       (lt > lw && type[lt - lw - 1] == '.' && strcmp(type + lt - lw, want) == 0);
}

static uint32_t count_events(struct run *r, const char *type)
{
	uint32_t n = 0;

	for (size_t i = 0; i < r->n_procs; i++) {
		size_t len;
		_cleanup_free_ char *buf = hsink_read(r, r->procs[i].ev_path, &len);
		char *save = NULL;

		for (char *l = buf ? strtok_r(buf, "\n", &save) : NULL; l;
		     l = strtok_r(NULL, "\n", &save)) {
			json_t *ev = json_loads(l, 0, NULL);
			const char *t = json_string_value(json_object_get(ev, "type"));

			if (t && type_matches(t, type))
				n++;
			json_decref(ev);
		}
	}
	return n;
}

/* A sleep, or until events of the type arrived. */
static void wait_sleep_or_events(struct run *r, const struct hcase_step *st)
{
	const struct hstep_wait *w = &st->wait;
	uint64_t until;

	if (!w->event_type) {
		/* "scaled": time for the machine to do work, not a protocol timer (CHK-RUN-013). */
		uint32_t ms = w->scaled ? run_scaled(r, w->ms) : w->ms;

		if (run_now_ns() + (uint64_t)ms * 1000000 > r->deadline_ns) {
			usleep((useconds_t)run_remaining_ms(r, 0) * 1000);
			run_timed_out(r);
			return;
		}
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return;
	}
	until = run_now_ns() + (uint64_t)run_remaining_ms(r, st->timeout_ms) * 1000000;
	/* Polling files is crude but keeps the IUT's output exactly as it wrote it. */
	while (count_events(r, w->event_type) < (w->count ?: 1)) {
		if (run_now_ns() >= until) {
			run_timed_out(r);
			return; /* not there in time: the expectations say whether it matters */
		}
		usleep(10000);
	}
}

/* Until the target's stdout has N lines: output that does not come in time is a FAIL. */
static void wait_lines(struct run *r, const struct hcase_step *st)
{
	const struct hstep_wait *w = &st->wait;
	struct proc *p = hproc_find(r, w->target);
	uint64_t t0 = run_now_ns(),
		 until = t0 + (uint64_t)run_remaining_ms(r, st->timeout_ms) * 1000000;
	size_t n = 0;

	if (!p)
		return run_verdict(r, HREP_ERROR, "wait: no started step %s", w->target);
	while ((n = hsink_lines(r, p->out_path)) < w->stdout_lines) {
		if (run_now_ns() >= until) {
			run_verdict(r, HREP_FAIL,
				    "wait %s: %zu lines on stdout after %llu ms, expected %u",
				    w->target, n,
				    (unsigned long long)((run_now_ns() - t0) / 1000000),
				    w->stdout_lines);
			return;
		}
		usleep(2000);
	}
}

static void wait_run(struct run *r, const struct hcase_step *st)
{
	if (st->wait.stdout_lines)
		wait_lines(r, st);
	else
		wait_sleep_or_events(r, st);
}

static void wait_free(struct hcase_step *s)
{
	free(s->wait.event_type);
	free(s->wait.target);
}

static const char *const wait_keys[] = { "ms",	   "scaled",	   "event", "count",
					 "target", "stdout_lines", NULL };

const struct hstep_kind hstep_kind_wait = {
	.name = "wait",
	.keys = wait_keys,
	.parse = wait_parse,
	.run = wait_run,
	.free = wait_free,
};
