// SPDX-License-Identifier: Apache-2.0
/*
 * One case, run inside a worker process (hrun.h has the picture):
 *
 *   worker netns (the harness's)          fresh netns per topology name, held by an fd only
 *   +----------------------------+        +--------------------------------+
 *   | IUT: --netns /proc/W/fd/N  |  veth  | ends, addresses, routes, lo up |
 *   | driver: netns per command  |<------>| clients: setns before exec     |
 *   +----------------------------+        +--------------------------------+
 *
 * Every process a case starts leads its own process group and dies with the worker
 * (PR_SET_PDEATHSIG); the worker is a child subreaper so whatever those processes fork comes
 * back to it and can be reaped. After the case the audit checks the worker's fd table, the
 * process groups, the namespaces and the BPF ids; anything left is an ERROR naming it.
 */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bpf/btf.h>

#include "hrun_int.h"
#include "htime.h"

void hrun_result_clear(struct hrun_result *r)
{
	free(r->message);
	for (size_t i = 0; i < r->n_problems; i++)
		free(r->problems[i].message);
	free(r->problems);
	r->problems = NULL;
	r->n_problems = 0;
	free(r->reason);
	free(r->artifacts);
	free(r->bpf_ids);
	memset(r, 0, sizeof(*r));
}

void hrun_worker_free(struct hrun_worker *w)
{
	if (w->drv)
		hdrv_stop(w->drv);
	w->drv = NULL;
	free(w->drv_log);
	w->drv_log = NULL;
	if (w->home_ns >= 0)
		close(w->home_ns);
	w->home_ns = -1;
}

/*
 * Add a problem (SPEC CHK-RUN-004): a case reports every problem it finds, and its status is
 * the worst (ERROR over FAIL). Steps stop at the first one (what follows would be a
 * consequence); the expectations and the audit still add theirs.
 */
void run_verdict(struct run *r, enum hrep_status s, const char *fmt, ...)
{
	struct hrep_problem *np;
	char *m = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (r->status == HREP_PASS || (s == HREP_ERROR && r->status == HREP_FAIL))
		r->status = s;
	np = realloc(r->probs, (r->n_probs + 1) * sizeof(*np));
	if (!np) {
		free(m);
		return;
	}
	r->probs = np;
	r->probs[r->n_probs++] = (struct hrep_problem){ .status = s, .message = m };
}

/* The first problem's message, or NULL. */
static const char *first_message(const struct run *r)
{
	return r->n_probs ? r->probs[0].message : NULL;
}

/* A bound the harness waits up to, times the run's factor (htime.h). */
uint32_t run_scaled(const struct run *r, uint32_t ms)
{
	return htime_scale_ms(r->ctx->time_scale, ms);
}

bool run_timed_out(struct run *r)
{
	if (run_now_ns() < r->deadline_ns)
		return false;
	if (!r->timeout_noted)
		run_verdict(r, HREP_ERROR, "TIMEOUT: case exceeded %u ms",
			    run_scaled(r, r->c->timeout_ms));
	r->timeout_noted = true;
	return true;
}

/* Milliseconds left before the case's deadline, capped by cap_ms run_scaled (0: no cap). */
int run_remaining_ms(struct run *r, uint32_t cap_ms)
{
	uint64_t now = run_now_ns();
	/* Rounded up: a wait that ends on time must find the deadline passed. */
	uint64_t left = now >= r->deadline_ns ? 0 : (r->deadline_ns - now + 999999) / 1000000;

	cap_ms = run_scaled(r, cap_ms);
	if (cap_ms && cap_ms < left)
		left = cap_ms;
	return (int)left;
}

bool hrun_case_needs_root(const struct hcase *c)
{
	if (c->topo.n_ns)
		return true;
	for (char **f = c->features; f && *f; f++)
		if (strcmp(*f, "root") == 0)
			return true;
	return false;
}

static bool tool_on_path(const char *name)
{
	const char *path = getenv("PATH") ?: "/usr/bin:/bin";
	_cleanup_free_ char *copy = strdup(path);
	char *save = NULL;

	if (!copy)
		return false;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s/%s", d, name) >= 0 && access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/*
 * expect.btf with record_version N (SPEC 10.2, record_versions): a profile that does not declare
 * version N and whose object has no such struct is an implementation without that version, a
 * SKIP. One that declares N, or whose BTF describes the struct anyway, is checked. An object
 * whose BTF cannot be read is not skipped: the check reports it.
 */
static char *btf_version_skip(const struct hrun_job *j)
{
	const struct hcase *c = j->c;
	const struct hprof_comp *pc = &j->prof->comp[c->component];
	json_t *btf = json_object_get(c->expect, "btf");
	json_t *ver = btf ? json_object_get(btf, "record_version") : NULL;
	const char *name = btf ? json_string_value(json_object_get(btf, "struct")) : NULL;
	json_int_t n = ver ? json_integer_value(ver) : 0;
	struct btf *b;
	char *s = NULL;
	int id;

	if (!ver || !name || !pc->bpf_object || (pc->record_versions & (1u << n)))
		return NULL;
	b = btf__parse_elf(pc->bpf_object, NULL);
	if (!b)
		return NULL;
	id = btf__find_by_name_kind(b, name, BTF_KIND_STRUCT);
	btf__free(b);
	if (id >= 0)
		return NULL;
	if (asprintf(&s,
		     "profile %s declares no record version %lld for component %s "
		     "(record_versions) and the BTF of %s has no struct %s",
		     j->prof->name, (long long)n, hcase_component_names[c->component],
		     pc->bpf_object, name) < 0)
		s = NULL;
	return s ?: strdup("record version not provided");
}

/* NULL when the case can run here, else the SKIP reason (malloc'd). */
static char *skip_reason(const struct hrun_ctx *ctx, const struct hrun_job *j)
{
	const struct hcase *c = j->c;
	char *s = NULL;

	for (int k = 0; k < _HCASE_COMPONENT_MAX; k++)
		if (((c->uses & (1u << k)) || (int)c->component == k) &&
		    !j->prof->comp[k].present) {
			if (asprintf(&s, "profile %s has no component %s", j->prof->name,
				     hcase_component_names[k]) < 0)
				s = NULL;
			return s ?: strdup("component missing");
		}
	for (size_t i = 0; i < c->n_steps; i++) {
		const struct hstep_start *st = &c->steps[i].start;

		if (c->steps[i].action == HCASE_ACT_START && st->command &&
		    !j->prof->comp[st->component].cleanup_argv) {
			if (asprintf(&s, "profile %s has no command %s for component %s",
				     j->prof->name, st->command,
				     hcase_component_names[st->component]) < 0)
				s = NULL;
			return s ?: strdup("command missing");
		}
	}
	/* An artifact the case inspects is like a component: the profile provides it or not. */
	json_t *btf = json_object_get(c->expect, "btf");

	if (btf && !j->prof->comp[c->component].bpf_object) {
		if (asprintf(&s, "profile %s names no artifacts.%s for component %s", j->prof->name,
			     json_string_value(json_object_get(btf, "artifact")) ?: "bpf_object",
			     hcase_component_names[c->component]) < 0)
			s = NULL;
		return s ?: strdup("artifact missing");
	}
	s = btf_version_skip(j);
	if (s)
		return s;
	/* A case of a record version the profile does not declare is a feature it lacks. */
	if (c->record_version &&
	    !(j->prof->comp[c->component].record_versions & (1u << c->record_version))) {
		if (asprintf(&s,
			     "profile %s declares no record version %u for component %s "
			     "(record_versions)",
			     j->prof->name, c->record_version,
			     hcase_component_names[c->component]) < 0)
			s = NULL;
		return s ?: strdup("record version not provided");
	}
	for (char **f = c->features; f && *f; f++) {
		int fe;

		if (strcmp(*f, "root") == 0) {
			if (geteuid() != 0)
				return strdup("needs root");
			continue;
		}
		if (strncmp(*f, "tool:", 5) == 0) {
			if (!tool_on_path(*f + 5) && asprintf(&s, "%s not on PATH", *f + 5) >= 0)
				return s;
			continue;
		}
		fe = hprobe_feature_from_name(*f);
		if (fe >= 0 && ctx->probed && ctx->probe.feat[fe].state != HPROBE_PRESENT) {
			if (asprintf(&s, "kernel feature %s %s: %s", *f,
				     hprobe_state_names[ctx->probe.feat[fe].state],
				     ctx->probe.feat[fe].evidence) < 0)
				s = NULL;
			return s ?: strdup("kernel feature missing");
		}
	}
	if (c->topo.n_ns && geteuid() != 0)
		return strdup("needs root (network namespaces)");
	return NULL;
}

static void collect(struct run *r, struct hobs_proc *op)
{
	for (size_t i = 0; i < r->n_procs; i++) {
		struct proc *p = &r->procs[i];

		p->out = hfile_slurp(p->out_path, &p->out_len);
		p->err = hfile_slurp(p->err_path, &p->err_len);
		hsink_collect(p);
		if (!p->ev)
			p->ev = hfile_slurp(p->ev_path, &p->ev_len);
		/* An output fault changes what the case reads, never what the IUT did. */
		if (hsink_filter(r, &p->ev, &p->ev_len) < 0 ||
		    hsink_filter(r, &p->out, &p->out_len) < 0)
			run_verdict(r, HREP_ERROR, "output fault %s: out of memory", r->j->fault);
		p->rec = hfile_slurp(p->rec_path, &p->rec_len);
		op[i] = (struct hobs_proc){ .name = p->st->name,
					    .component = p->comp,
					    .out = p->out ?: "",
					    .out_len = p->out_len,
					    .err = p->err ?: "",
					    .err_len = p->err_len,
					    .events = p->ev,
					    .events_len = p->ev_len,
					    .records = p->rec,
					    .records_len = p->rec_len,
					    .exited = p->exited,
					    .exit_status = hproc_status_code(p->status) };
	}
}

void run_set_num(json_t *vars, const char *k, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	json_object_set_new(vars, k, json_string(buf));
}

/*
 * Probe lines on a start step's stdout become variables for matchers: every integer member of
 * the first line of each probe command, as "probe.STEP.CMD.MEMBER" (the e2e cases bound a
 * flow's firstSeenNs by the time the probe's resolution returned).
 */
static void probe_vars(json_t *vars, const struct hobs_proc *op, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = op[i].out, *end = s + op[i].out_len;

		while (s && s < end && op[i].name) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
			json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
			const char *cmd = json_string_value(json_object_get(j, "probe")), *k;
			json_t *v;

			json_object_foreach(cmd ? j : NULL, k, v)
			{
				char name[256];

				if (!json_is_integer(v) || json_integer_value(v) < 0)
					continue;
				snprintf(name, sizeof(name), "probe.%s.%s.%s", op[i].name, cmd, k);
				if (!json_object_get(vars, name))
					run_set_num(vars, name, (uint64_t)json_integer_value(v));
			}
			json_decref(j);
			s = nl ? nl + 1 : end;
		}
	}
}

/*
 * "events.STEP.TYPE": how many events of TYPE (the last dotted part of the CloudEvents type)
 * a start step's stream holds, so that one count can bound another (a summary's
 * uniqueFlowCount equals the number of network_flow_decision events relayed with it).
 */
static void event_count_vars(json_t *vars, const struct hobs_proc *op, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = op[i].events, *end = s ? s + op[i].events_len : NULL;
		json_t *counts = json_object(), *v;
		const char *k;

		while (counts && s && s < end && op[i].name) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
			json_t *j = json_loadb(s, len, 0, NULL);
			const char *t = json_string_value(json_object_get(j, "type")), *dot;

			if (t) {
				dot = strrchr(t, '.');
				dot = dot ? dot + 1 : t;
				json_object_set_new(counts, dot,
						    json_integer(json_integer_value(json_object_get(
									 counts, dot)) +
								 1));
			}
			json_decref(j);
			s = nl ? nl + 1 : end;
		}
		json_object_foreach(counts, k, v)
		{
			char name[256];

			snprintf(name, sizeof(name), "events.%s.%s", op[i].name, k);
			run_set_num(vars, name, (uint64_t)json_integer_value(v));
		}
		json_decref(counts);
	}
}

/* Whatever still runs had to be killed (that is what hobs_proc.exited tells), then the upstream
 * stops and every group the case started goes. The upstream's query count, or UINT64_MAX. */
static uint64_t run_stop_all(struct run *r)
{
	uint64_t upstream_queries;

	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].running) {
			int st;

			r->procs[i].status = HSTATUS_SIGNALED | SIGKILL;
			hproc_kill_group(r->procs[i].pid);
			if (hproc_wait_exit(r->procs[i].pid, 100, &st))
				r->procs[i].status = st;
			r->procs[i].running = false;
		}
	upstream_queries = hupstream_stop(r);
	for (size_t i = 0; i < r->n_pgids; i++)
		hproc_kill_group(r->pgids[i]);
	return upstream_queries;
}

/* What every process left (malloc'd, one per process; NULL when out of memory), its values. */
static struct hobs_proc *run_collect(struct run *r)
{
	struct hobs_proc *op = calloc(r->n_procs + 1, sizeof(*op));

	if (!op)
		run_verdict(r, HREP_ERROR, "out of memory");
	else
		collect(r, op);
	if (op) {
		probe_vars(r->vars, op, r->n_procs);
		event_count_vars(r->vars, op, r->n_procs);
	}
	for (size_t i = 0; i < r->n_procs; i++) {
		if (r->procs[i].sink_fd >= 0)
			close(r->procs[i].sink_fd);
		if (r->procs[i].busy_fd >= 0)
			close(r->procs[i].busy_fd);
		r->procs[i].sink_fd = r->procs[i].busy_fd = -1;
	}
	return op;
}

/* Every expectation that can still be judged: a failed step does not hide them. */
static void run_expectations(struct run *r, const struct hobs_proc *op, uint64_t upstream_queries)
{
	const struct hcase *c = r->c;
	struct hobs o = { .procs = op,
			  .n_procs = r->n_procs,
			  .resps = r->resps,
			  .n_resps = r->n_resps,
			  .vars = r->vars,
			  .upstream_queries = upstream_queries,
			  .srcdir = r->ctx->srcdir,
			  /* For an artifact fault, the variant's object (selftest). */
			  .bpf_object = r->j->prof->comp[c->component].bpf_object };
	struct hexp_problem *xp = NULL;
	size_t n_xp = 0;
	int e = hexp_check_all(c, &o, &xp, &n_xp);

	if (e == -ENOMEM && !n_xp)
		run_verdict(r, HREP_ERROR, "expectations could not be checked: out of memory");
	for (size_t i = 0; i < n_xp; i++) {
		if (xp[i].r < 0)
			run_verdict(r, HREP_ERROR, "expectations could not be checked: %s",
				    xp[i].msg ?: util_errno_name(-xp[i].r));
		else
			run_verdict(r, HREP_FAIL, "%s", xp[i].msg ?: "expectation not met");
		/* The message may cut long values; result.json has them whole. */
		if (xp[i].expected || xp[i].got) {
			char idx[24];

			snprintf(idx, sizeof(idx), "%zu", r->n_probs - 1);
			if (!r->full)
				r->full = json_object();
			json_object_set_new(r->full, idx,
					    json_pack("{s:s?, s:s?}", "expected", xp[i].expected,
						      "got", xp[i].got));
		}
	}
	hexp_problems_free(xp, n_xp);
}

/* The case's arrays, sized by its topology and steps; -ENOMEM. */
static int run_alloc(struct run *r)
{
	const struct hcase *c = r->c;

	r->ns_fd = calloc(c->topo.n_ns + 1, sizeof(int));
	r->procs = calloc(c->n_steps + 1, sizeof(*r->procs));
	r->cap_fd = calloc(2 * c->topo.n_links + c->topo.n_ns + 1, sizeof(int));
	r->vars = json_object();
	if (!r->ns_fd || !r->procs || !r->vars || !r->cap_fd)
		return -ENOMEM;
	for (size_t i = 0; i < c->topo.n_ns; i++)
		r->ns_fd[i] = -1;
	for (size_t i = 0; i < 2 * c->topo.n_links + c->topo.n_ns; i++)
		r->cap_fd[i] = -1;
	return 0;
}

/* The case's outcome: its status, the first problem's message, every problem, artifacts. */
static void run_result(struct run *r, struct hrun_result *ret, uint64_t t0)
{
	if ((r->status == HREP_FAIL || r->status == HREP_ERROR) && r->dir)
		ret->artifacts = hartifact_keep(r);
	ret->status = r->status;
	if (r->n_probs > 1) {
		if (asprintf(&ret->message, "%s (and %zu more)", first_message(r) ?: "",
			     r->n_probs - 1) < 0)
			ret->message = NULL;
	} else if (r->n_probs == 1) {
		ret->message = r->probs[0].message ? strdup(r->probs[0].message) : NULL;
	}
	ret->problems = TAKE_PTR(r->probs);
	ret->n_problems = r->n_probs;
	r->n_probs = 0;
	ret->duration_ms = (run_now_ns() - t0) / 1000000;
}

static void run_free(struct run *r)
{
	if (r->dir)
		hrun_rmtree(r->dir);
	free(r->dir);
	for (size_t i = 0; i < r->n_procs; i++) {
		struct proc *p = &r->procs[i];

		if (p->stdin_w >= 0)
			close(p->stdin_w);
		free(p->fifo_path);
		free(p->out_path);
		free(p->err_path);
		free(p->ev_path);
		free(p->rec_path);
		free(p->out);
		free(p->err);
		free(p->ev);
		free(p->rec);
	}
	for (size_t i = 0; i < r->n_resps; i++)
		json_decref(r->resps[i].result);
	free(r->resps);
	free(r->procs);
	free(r->pgids);
	free(r->ns_fd);
	free(r->cap_fd);
	free(r->upstream_log);
	for (size_t i = 0; i < r->n_probs; i++)
		free(r->probs[i].message);
	free(r->probs);
	json_decref(r->vars);
	json_decref(r->full);
}

/*
 * One case: its topology, capture and upstream, the steps, everything stopped, the
 * expectations, then the audit (whatever happened before) and the result.
 */
int hrun_case_exec(const struct hrun_ctx *ctx, struct hrun_worker *w, const struct hrun_job *j,
		   struct hrun_result *ret)
{
	const struct hcase *c = j->c;
	uint64_t t0 = run_now_ns();
	struct run r = { .ctx = ctx, .w = w, .j = j, .c = c, .status = HREP_PASS };
	_cleanup_free_ struct hobs_proc *op = NULL;
	struct haudit a = { 0 };
	uint64_t upstream_queries;
	bool steps_ran = false;
	struct stat sb;
	char tmpl[4096];

	memset(ret, 0, sizeof(*ret));
	ret->reason = skip_reason(ctx, j);
	if (ret->reason) {
		ret->status = HREP_SKIP;
		return 0;
	}
	for (size_t i = 0; i < c->n_steps; i++)
		if (c->steps[i].action == HCASE_ACT_DRIVER && hstep_driver_ensure(ctx, w) < 0)
			break; /* the step reports it */
	if (w->drv_log && stat(w->drv_log, &sb) == 0)
		r.drv_log_off = (uint64_t)sb.st_size;
	if (haudit_alloc(&a, c->topo.n_ns) < 0 || run_alloc(&r) < 0) {
		ret->status = HREP_ERROR;
		ret->message = strdup("out of memory");
		goto free;
	}
	haudit_begin(&a);

	snprintf(tmpl, sizeof(tmpl), "%s/case.XXXXXX", ctx->run_dir);
	if (!mkdtemp(tmpl)) {
		run_verdict(&r, HREP_ERROR, "temp dir: %s", util_errno_name(errno));
		goto audit;
	}
	r.dir = strdup(tmpl);
	r.deadline_ns = t0 + (uint64_t)run_scaled(&r, c->timeout_ms) * 1000000;
	if (htopo_up(&r) < 0)
		goto end;
	hcapture_start(&r);
	if (c->upstream && hupstream_start(&r) < 0)
		goto end;
	run_set_num(r.vars, "case.start_ns", run_now_ns());
	run_set_num(r.vars, "case.start_unix_ns", run_wall_ns());
	json_object_set_new(r.vars, "run.id", json_string(ctx->run_id));
	steps_ran = true;
	hstep_run_all(&r);
end:
	run_set_num(r.vars, "case.end_ns", run_now_ns());
	htopo_link_counters(&r);
	upstream_queries = run_stop_all(&r);
	/* After the stop: a producer's last events (its summary) are written while it stops. */
	run_set_num(r.vars, "case.end_unix_ns", run_wall_ns());
	op = run_collect(&r);
	if (steps_ran)
		run_expectations(&r, op, upstream_queries);
audit:
	hcapture_stop(&r);
	htopo_down(&r, a.inos);
	haudit_end(&r, &a, ret);
	run_result(&r, ret, t0);
free:
	run_free(&r);
	haudit_free(&a);
	return 0;
}
