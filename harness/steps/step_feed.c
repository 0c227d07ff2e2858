// SPDX-License-Identifier: Apache-2.0
/*
 * The feed step (hstep.h): a file's bytes to an earlier start step's stdin pipe ("stdin_pipe"),
 * then the pipe's close if "close".
 */
#include <signal.h>
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

static int feed_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		      struct hcase_step *s)
{
	struct hstep_feed *f = &s->feed;
	const struct hcase_step *t;
	char pk[HJSON_PATH_MAX];
	int r;

	r = hcase_dup_str(e, pi, "target", true, &f->target, v->err);
	r = r ?: hcase_dup_str(e, pi, "file", false, &f->file, v->err);
	r = r ?: hjson_bool(e, pi, "close", false, &f->close_stdin, v->err);
	if (r < 0)
		return r;
	if (!f->file && !f->close_stdin)
		return hjson_fail(v->err, pi, "a feed step writes a \"file\", closes, or both");
	t = hcase_step_find(v->c, idx, f->target);
	hjson_path_key(pk, pi, "target");
	if (!t || t->action != HCASE_ACT_START || !t->start.stdin_pipe)
		return hjson_fail(v->err, pk,
				  "\"%s\" names no earlier start step with \"stdin_pipe\"",
				  f->target);
	return 0;
}

static void feed_run(struct run *r, const struct hcase_step *st)
{
	const struct hstep_feed *f = &st->feed;
	struct proc *p = hproc_find(r, f->target);
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t len = 0;
	int e;

	if (!p || p->stdin_w < 0) {
		run_verdict(r, HREP_ERROR, "feed %s: its stdin is not an open pipe", f->target);
		return;
	}
	if (f->file) {
		if (asprintf(&path, "%s/%s", r->ctx->srcdir, f->file) < 0)
			return run_verdict(r, HREP_ERROR, "feed: out of memory");
		data = hfile_slurp(path, &len);
		if (!data)
			return run_verdict(r, HREP_ERROR, "feed %s: cannot read %s", f->target,
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
				f->target, f->file, len, util_errno_name(-e));
	}
	if (f->close_stdin) {
		close(p->stdin_w);
		p->stdin_w = -1;
	}
}

static void feed_free(struct hcase_step *s)
{
	free(s->feed.target);
	free(s->feed.file);
}

static const char *const feed_keys[] = { "target", "file", "close", NULL };

const struct hstep_kind hstep_kind_feed = {
	.name = "feed",
	.keys = feed_keys,
	.parse = feed_parse,
	.run = feed_run,
	.free = feed_free,
};
