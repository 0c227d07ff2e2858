// SPDX-License-Identifier: Apache-2.0
/*
 * The steps of a case (hrun_int.h), in order, as a table of operations: one run function per
 * step kind, found by the kind the case file names (hcase.h's action). A step that finds a
 * problem reports it and the steps stop there (what follows would be a consequence); the
 * expectations and the audit still run. The start step has its own file, hstep_start.c.
 */
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "hrun_int.h"

/*
 * Every stop message says what was expected and what happened, with the end of the process's
 * stderr: why it exited 1, or what it was doing when it would not end.
 */
static void step_stop(struct run *r, const struct hcase_step *st)
{
	struct proc *p = hproc_find(r, st->target);
	char got[80], want[96], tail[320], sig[48];
	uint32_t cap;
	int ms;

	if (p)
		hsink_drain(r, p);
	if (!p) {
		run_verdict(r, HREP_ERROR, "stop %s: no process was started under that name",
			    st->target);
		return;
	}
	if (!p->running) {
		hsink_finish(r, p);
		if (st->expect_exit >= 0 && hproc_status_code(p->status) != st->expect_exit)
			run_verdict(r, HREP_FAIL,
				    "stop %s: %s before the stop, expected %s; stderr ends: %s",
				    st->target, hproc_status_text(p->status, got),
				    hproc_expected_text(st->expect_exit, want),
				    hfile_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	cap = st->timeout_ms ?: r->j->prof->comp[p->comp].stop_timeout_ms;
	if (st->signo)
		kill(p->pid, st->signo);
	ms = run_remaining_ms(r, cap ?: 10000);
	if (!hproc_wait_exit(p->pid, ms, &p->status)) {
		if (st->signo)
			snprintf(sig, sizeof(sig), "signal %d (SIG%s)", st->signo,
				 sigabbrev_np(st->signo) ?: "?");
		if (!run_timed_out(r))
			run_verdict(
				r, HREP_FAIL,
				"stop %s: still running %d ms after %s, expected %s by then; "
				"stderr ends: %s",
				st->target, ms, st->signo ? sig : "waiting for it to end by itself",
				st->expect_exit >= 0 ? hproc_expected_text(st->expect_exit, want)
						     : "it to end",
				hfile_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	p->running = false;
	p->exited = true;
	hsink_finish(r, p);
	if (st->expect_exit >= 0 && hproc_status_code(p->status) != st->expect_exit)
		run_verdict(r, HREP_FAIL, "stop %s: %s, expected %s; stderr ends: %s", st->target,
			    hproc_status_text(p->status, got),
			    hproc_expected_text(st->expect_exit, want),
			    hfile_tail(p->err_path, tail, sizeof(tail)));
}

static void add_resp(struct run *r, const char *name, json_t *result)
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

int hstep_driver_ensure(const struct hrun_ctx *ctx, struct hrun_worker *w)
{
	_cleanup_free_ char *script = NULL;
	int e;

	if (w->drv)
		return 0;
	if (asprintf(&script, "%s/%s", ctx->srcdir, HDRV_SCRIPT) < 0)
		return -ENOMEM;
	if (!w->drv_log && asprintf(&w->drv_log, "%s/driver.%d.log", ctx->run_dir, getpid()) < 0)
		return -ENOMEM;
	e = hdrv_start(script, w->drv_log, &w->drv);
	if (e == 0)
		hrun_state_note_proc(ctx->state_path, hdrv_pid(w->drv));
	return e;
}

static void step_driver(struct run *r, const struct hcase_step *st)
{
	_cleanup_free_ char *nsp = NULL, *err = NULL;
	json_t *result = NULL;
	int ms, e;

	e = hstep_driver_ensure(r->ctx, r->w);
	if (e < 0) {
		run_verdict(r, HREP_ERROR, "driver: cannot start: %s", util_errno_name(-e));
		return;
	}
	nsp = htopo_step_ns_fd(r, st) >= 0 ? htopo_netns_path(r, st) : NULL;
	ms = run_remaining_ms(r, st->timeout_ms);
	if (ms <= 0) {
		run_timed_out(r);
		return;
	}
	e = hdrv_call(r->w->drv, nsp, st->op, st->op_args, (uint32_t)ms, &result, &err);
	if (e == -ETIMEDOUT) {
		if (!run_timed_out(r))
			run_verdict(r, HREP_ERROR, "driver %s: no answer within %d ms", st->op, ms);
	} else if (e < 0) {
		run_verdict(r, HREP_ERROR, "driver %s%s%s: %s", st->op, st->name ? " " : "",
			    st->name ?: "", err ?: util_errno_name(-e));
	} else if (st->name) {
		add_resp(r, st->name, result);
	} else {
		json_decref(result);
	}
}

static void step_client(struct run *r, const struct hcase_step *st)
{
	_cleanup_free_ char *out = NULL, *errp = NULL, *data = NULL;
	struct hrvars rv;
	size_t argc = 0;
	char **argv;
	struct hproc_spawn_opts o = { .argv = NULL,
				      .netns_fd = htopo_step_ns_fd(r, st),
				      .stdin_fd = -1,
				      .ready_wfd = -1,
				      .lis_fd = { -1, -1, -1, -1 },
				      .mnt_fd = -1,
				      .fault = r->j->filter ? NULL : r->j->fault };
	_cleanup_close_ int mnt_fd = -1;

	if (st->mnt_of) {
		const struct proc *t = hproc_find(r, st->mnt_of);
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", t && t->running ? t->pid : 0);
		mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (mnt_fd < 0) {
			run_verdict(r, HREP_ERROR, "client %s: mount namespace of %s: %s",
				    st->name ?: "client", st->mnt_of, util_errno_name(errno));
			return;
		}
		o.mnt_fd = mnt_fd;
	}
	pid_t pid;
	int status = -1, e;
	size_t len;
	const char *nm = st->name ?: "client";

	while (st->argv[argc])
		argc++;
	argv = calloc(argc + 1, sizeof(*argv));
	hrvars_build(r, st, &rv);
	for (size_t i = 0; argv && i < argc; i++)
		argv[i] = hrvars_expand(&rv, st->argv[i]);
	hrvars_free(&rv);
	o.argv = argv;
	if (!argv || asprintf(&out, "%s/%s.%zu.stdout", r->dir, nm, r->n_resps) < 0 ||
	    asprintf(&errp, "%s/%s.%zu.stderr", r->dir, nm, r->n_resps) < 0) {
		hjson_strv_free(argv);
		return;
	}
	o.out_path = out;
	o.err_path = errp;
	e = hproc_spawn(r, &o, &pid);
	if (e < 0) /* the path it tried, placeholders filled ({probe}) */
		run_verdict(r, HREP_ERROR, "client %s: cannot execute %s: %s", nm,
			    argv[0] ?: st->argv[0], util_errno_name(-e));
	hjson_strv_free(argv);
	if (e < 0)
		return;
	if (!hproc_wait_exit(pid, run_remaining_ms(r, st->timeout_ms), &status)) {
		char want[96], tail[320];

		if (!run_timed_out(r))
			run_verdict(
				r, HREP_FAIL,
				"client %s (%s): still running after %u ms, expected %s by then; "
				"stderr ends: %s",
				nm, st->argv[0], run_scaled(r, st->timeout_ms),
				st->expect_exit >= 0 ? hproc_expected_text(st->expect_exit, want)
						     : "it to end",
				hfile_tail(errp, tail, sizeof(tail)));
		return;
	}
	data = hfile_slurp(out, &len);
	if (st->name)
		add_resp(r, st->name,
			 json_pack("{s:i, s:s%}", "exit", hproc_status_code(status), "stdout",
				   data ?: "", len));
	if (st->expect_exit >= 0 && hproc_status_code(status) != st->expect_exit) {
		char got[80], want[96], tail[320];

		run_verdict(r, HREP_FAIL, "client %s (%s): %s, expected %s; stderr ends: %s", nm,
			    st->argv[0], hproc_status_text(status, got),
			    hproc_expected_text(st->expect_exit, want),
			    hfile_tail(errp, tail, sizeof(tail)));
	}
}

/* Plant a file below the case dir (a lease, a tripwire script); parents are created. */
static void step_file(struct run *r, const struct hcase_step *st)
{
	_cleanup_free_ char *path = NULL, *content = NULL;
	_cleanup_close_ int fd = -1;
	struct hrvars rv;
	size_t len;

	hrvars_build(r, st, &rv);
	path = hrvars_expand(&rv, st->path);
	content = hrvars_expand(&rv, st->content);
	hrvars_free(&rv);
	if (!path || !content) {
		run_verdict(r, HREP_ERROR, "file: out of memory");
		return;
	}
	for (char *sl = strchr(path + strlen(r->dir) + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
		*sl = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			run_verdict(r, HREP_ERROR, "file %s: mkdir: %s", path,
				    util_errno_name(errno));
			return;
		}
		*sl = '/';
	}
	len = strlen(content);
	/* A script (tripwire) must be executable by whoever the case starts. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  strncmp(content, "#!", 2) == 0 ? 0755 : 0644);
	if (fd < 0 || write(fd, content, len) != (ssize_t)len)
		run_verdict(r, HREP_ERROR, "file %s: %s", path, util_errno_name(errno));
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

static void step_wait(struct run *r, const struct hcase_step *st)
{
	uint64_t until;

	if (!st->event_type) {
		/* "scaled": time for the machine to do work, not a protocol timer (CHK-RUN-013). */
		uint32_t ms = st->scaled ? run_scaled(r, st->ms) : st->ms;

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
	while (count_events(r, st->event_type) < (st->count ?: 1)) {
		if (run_now_ns() >= until) {
			run_timed_out(r);
			return; /* not there in time: the expectations say whether it matters */
		}
		usleep(10000);
	}
}

static void step_feed(struct run *r, const struct hcase_step *st)
{
	struct proc *p = hproc_find(r, st->target);
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t len = 0;
	int e;

	if (!p || p->stdin_w < 0) {
		run_verdict(r, HREP_ERROR, "feed %s: its stdin is not an open pipe", st->target);
		return;
	}
	if (st->file) {
		if (asprintf(&path, "%s/%s", r->ctx->srcdir, st->file) < 0)
			return run_verdict(r, HREP_ERROR, "feed: out of memory");
		data = hfile_slurp(path, &len);
		if (!data)
			return run_verdict(r, HREP_ERROR, "feed %s: cannot read %s", st->target,
					   path);
		/* A component that stopped reading is its own failure; the pipe must not stop us.
		 */
		signal(SIGPIPE, SIG_IGN);
		e = util_write_all(p->stdin_w, data, len);
		if (e < 0)
			run_verdict(
				r, HREP_FAIL,
				"feed %s: writing %s (%zu bytes) to its stdin: %s, expected it to "
				"read them all",
				st->target, st->file, len, util_errno_name(-e));
	}
	if (st->close_stdin) {
		close(p->stdin_w);
		p->stdin_w = -1;
	}
}

/* Until the target's stdout has N lines: output that does not come in time is a FAIL. */
static void step_wait_lines(struct run *r, const struct hcase_step *st)
{
	struct proc *p = hproc_find(r, st->target);
	uint64_t t0 = run_now_ns(),
		 until = t0 + (uint64_t)run_remaining_ms(r, st->timeout_ms) * 1000000;
	size_t n = 0;

	if (!p)
		return run_verdict(r, HREP_ERROR, "wait: no started step %s", st->target);
	while ((n = hsink_lines(r, p->out_path)) < st->stdout_lines) {
		if (run_now_ns() >= until) {
			run_verdict(r, HREP_FAIL,
				    "wait %s: %zu lines on stdout after %llu ms, expected %u",
				    st->target, n,
				    (unsigned long long)((run_now_ns() - t0) / 1000000),
				    st->stdout_lines);
			return;
		}
		usleep(2000);
	}
}

/* Start reading a start step's stalled sink (cases/README.md "drain"). */
static void step_drain(struct run *r, const struct hcase_step *st)
{
	hsink_drain(r, hproc_find(r, st->target));
}

static void step_signal(struct run *r, const struct hcase_step *st)
{
	struct proc *p = hproc_find(r, st->target);

	if (p && p->running)
		kill(p->pid, st->signo);
}

/* A wait for stdout lines, or a sleep or a wait for events. */
static void step_wait_any(struct run *r, const struct hcase_step *st)
{
	if (st->stdout_lines)
		step_wait_lines(r, st);
	else
		step_wait(r, st);
}

/*
 * The operations: one run function per step kind, by the kind hcase.c read from the step's
 * "action" (hcase_action_names). A new kind is a function here and a row.
 */
typedef void (*step_run_fn)(struct run *r, const struct hcase_step *st);

static const step_run_fn step_ops[_HCASE_ACT_MAX] = {
	[HCASE_ACT_START] = hstep_start,  [HCASE_ACT_DRIVER] = step_driver,
	[HCASE_ACT_CLIENT] = step_client, [HCASE_ACT_WAIT] = step_wait_any,
	[HCASE_ACT_SIGNAL] = step_signal, [HCASE_ACT_STOP] = step_stop,
	[HCASE_ACT_FEED] = step_feed,	  [HCASE_ACT_DRAIN] = step_drain,
	[HCASE_ACT_FILE] = step_file,
};

/* A TIMEOUT found during step i says which step it interrupted. */
static void timeout_names_step(struct run *r, size_t i, const struct hcase_step *st)
{
	struct hrep_problem *last = r->n_probs ? &r->probs[r->n_probs - 1] : NULL;
	char *m = NULL;

	if (!last || last->status != HREP_ERROR || !last->message ||
	    strncmp(last->message, "TIMEOUT", 7) || strstr(last->message, "(in step "))
		return;
	if (asprintf(&m, "%s (in step %zu, %s)", last->message, i,
		     hcase_action_names[st->action]) >= 0) {
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
		if ((unsigned int)st->action < _HCASE_ACT_MAX && step_ops[st->action])
			step_ops[st->action](r, st);
		else
			run_verdict(r, HREP_ERROR, "step %zu: unknown action", i);
		timeout_names_step(r, i, st);
	}
}
