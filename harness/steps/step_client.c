// SPDX-License-Identifier: Apache-2.0
/*
 * The client step (hstep.h): a real program ("argv": dig, kdig, getent, the probe) run to its
 * end in the step's namespace, or in the mount namespace of a start step's process ("mnt_of");
 * its response is {"exit": N, "stdout": "..."}, its status checked against "expect_exit".
 */
#include <fcntl.h>
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

static int client_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
			struct hcase_step *s)
{
	struct hstep_client *k = &s->client;
	uint32_t code;
	char pk[HJSON_PATH_MAX];
	int r;

	k->expect_exit = -1;
	r = hjson_strv(e, pi, "argv", true, true, &k->argv, NULL, v->err);
	r = r ?: hcase_dup_str(e, pi, "mnt_of", false, &k->mnt_of, v->err);
	if (r < 0)
		return r;
	if (k->mnt_of) {
		const struct hcase_step *t = hcase_step_find(v->c, idx, k->mnt_of);

		hjson_path_key(pk, pi, "mnt_of");
		if (!t || t->action != HCASE_ACT_START)
			return hjson_fail(v->err, pk, "\"%s\" names no earlier start step",
					  k->mnt_of);
	}
	if (json_object_get(e, "expect_exit")) {
		r = hjson_u32(e, pi, "expect_exit", false, 0, 255, &code, v->err);
		if (r < 0)
			return r;
		k->expect_exit = (int)code;
	}
	return 0;
}

/* The mount namespace of the mnt_of step's process, as an fd; -1 and a problem noted. */
static int client_mnt_fd(struct run *r, const struct hcase_step *st)
{
	const struct proc *t = hproc_find(r, st->client.mnt_of);
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", t && t->running ? t->pid : 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		run_verdict(r, HREP_ERROR, "client %s: mount namespace of %s: %s",
			    st->name ?: "client", st->client.mnt_of, util_errno_name(errno));
	return fd;
}

static void client_run(struct run *r, const struct hcase_step *st)
{
	const struct hstep_client *k = &st->client;
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

	if (k->mnt_of && (mnt_fd = client_mnt_fd(r, st)) < 0)
		return;
	o.mnt_fd = mnt_fd;
	pid_t pid;
	int status = -1, e;
	size_t len;
	const char *nm = st->name ?: "client";

	while (k->argv[argc])
		argc++;
	argv = calloc(argc + 1, sizeof(*argv));
	hrvars_build(r, st, &rv);
	for (size_t i = 0; argv && i < argc; i++)
		argv[i] = hrvars_expand(&rv, k->argv[i]);
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
			    argv[0] ?: k->argv[0], util_errno_name(-e));
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
				nm, k->argv[0], run_scaled(r, st->timeout_ms),
				k->expect_exit >= 0 ? hproc_expected_text(k->expect_exit, want)
						    : "it to end",
				hfile_tail(errp, tail, sizeof(tail)));
		return;
	}
	data = hfile_slurp(out, &len);
	if (st->name)
		hstep_add_resp(r, st->name,
			       json_pack("{s:i, s:s%}", "exit", hproc_status_code(status), "stdout",
					 data ?: "", len));
	if (k->expect_exit >= 0 && hproc_status_code(status) != k->expect_exit) {
		char got[80], want[96], tail[320];

		run_verdict(r, HREP_FAIL, "client %s (%s): %s, expected %s; stderr ends: %s", nm,
			    k->argv[0], hproc_status_text(status, got),
			    hproc_expected_text(k->expect_exit, want),
			    hfile_tail(errp, tail, sizeof(tail)));
	}
}

static void client_free(struct hcase_step *s)
{
	hjson_strv_free(s->client.argv);
	free(s->client.mnt_of);
}

static const char *const client_keys[] = { "argv", "expect_exit", "mnt_of", NULL };

const struct hstep_kind hstep_kind_client = {
	.name = "client",
	.keys = client_keys,
	.parse = client_parse,
	.run = client_run,
	.free = client_free,
};
