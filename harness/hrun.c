// SPDX-License-Identifier: Apache-2.0
/*
 * `cellcheck run` and `cellcheck selftest`: select cases, hand them to forked workers through
 * a shared queue, collect their JSON-line answers, show progress, and turn the results into a
 * report (run) or the fault x case matrix (selftest). hrun.h has the process picture.
 *
 * BPF leftovers with --jobs > 1: a worker cannot tell its case's programs from those of a case
 * running beside it, so each worker reports the program and link ids that appeared during its
 * case and still exist at its end, and the parent confirms a leak only if the id still exists
 * once every case has finished (a superset of "once every case that ran concurrently has
 * finished"). With --jobs 1 that check is immediate and exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evf.h"
#include "hrun.h"
#include "htime.h"
#include "hversion.h"
#include "netcfg.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE  2

static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t interrupted_by; /* the sender's pid, 0 when the kernel sent it */
static unsigned int worker_trouble; /* workers that ended badly between cases (ASan, ...) */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	if (!interrupted)
		interrupted_by = si && si->si_code <= 0 ? si->si_pid : 0;
	interrupted = sig;
}

/*
 * "interrupted by SIGTERM from pid 4242 (cellref)": who sent it is the first thing to know
 * when a run ends this way unasked (a selftest once did, and nothing said why).
 */
static void interrupted_note(const char *what)
{
	char path[64], comm[64] = "";
	_cleanup_fclose_ FILE *f = NULL;

	if (interrupted_by > 0) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)interrupted_by);
		f = fopen(path, "re");
		if (!f || !fgets(comm, sizeof(comm), f))
			snprintf(comm, sizeof(comm), "gone\n");
		comm[strcspn(comm, "\n")] = '\0';
		fprintf(stderr, "cellcheck: interrupted by SIG%s from pid %d (%s): %s\n",
			sigabbrev_np(interrupted) ?: "?", (int)interrupted_by, comm, what);
	} else {
		fprintf(stderr, "cellcheck: interrupted by SIG%s: %s\n",
			sigabbrev_np(interrupted) ?: "?", what);
	}
}

__attribute__((format(printf, 1, 2))) static int setup_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cellcheck: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static const char *srcdir(void)
{
	return getenv("CELLCHECK_SRCDIR") ?: CELLCHECK_SRCDIR_DEFAULT;
}

static uint64_t mono_ms(void)
{
	return util_now_monotonic_ns() / 1000000;
}

/* ---- options shared by run and selftest ---- */

struct opts {
	const char *profile;
	const char *cases;
	const char *report_dir;
	const char *known_issues;
	const char *faults;
	char **globs;
	size_t n_globs;
	char **mfaults; /* selftest --matrix-fault: only these faults against the other cases */
	size_t n_mfaults;
	unsigned int jobs;
	unsigned int repeat;
	unsigned int load; /* run: CPU hogs beside the run (issue 13) */
	unsigned int shard_k, shard_n;
	bool faults_build;
	bool own_only;	   /* selftest: each case plain and under its own fault, no cross matrix */
	double time_scale; /* --time-scale F; 0: calibrate */
};

/* One case per option, each checking its own value: the switch stays long. */
static int parse_opts(int argc, char **argv, bool selftest, struct opts *o)
{
	static const struct option lopts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "filter", required_argument, NULL, 'f' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "shard", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "known-issues", required_argument, NULL, 'k' },
		{ "report-dir", required_argument, NULL, 'd' },
		{ "cases", required_argument, NULL, 'c' },
		{ "faults-build", no_argument, NULL, 'F' },
		{ "faults", required_argument, NULL, 'R' },
		{ "own-only", no_argument, NULL, 'O' },
		{ "time-scale", required_argument, NULL, 'T' },
		{ "load", required_argument, NULL, 'L' },
		{ "matrix-fault", required_argument, NULL, 'M' },
		{},
	};
	const char *cmd = selftest ? "selftest" : "run";
	unsigned long long v;
	int c;

	o->jobs = 1;
	o->repeat = 1;
	o->globs = calloc((size_t)argc + 1, sizeof(*o->globs));
	o->mfaults = calloc((size_t)argc + 1, sizeof(*o->mfaults));
	if (!o->globs || !o->mfaults)
		return -ENOMEM;
	while ((c = getopt_long(argc, argv, "j:", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->profile = optarg;
			break;
		case 'f':
			o->globs[o->n_globs++] = optarg;
			break;
		case 'j':
			if (util_parse_u64(optarg, 1, 64, &v) < 0)
				return setup_error("%s: --jobs wants 1 to 64, not '%s'", cmd,
						   optarg);
			o->jobs = (unsigned int)v;
			break;
		case 'c':
			o->cases = optarg;
			break;
		case 's':
			if (selftest || sscanf(optarg, "%u/%u", &o->shard_k, &o->shard_n) != 2 ||
			    o->shard_n < 1 || o->shard_k < 1 || o->shard_k > o->shard_n)
				return setup_error(
					"%s: --shard wants K/N with 1 <= K <= N, not '%s'", cmd,
					optarg);
			break;
		case 'r':
			if (selftest || util_parse_u64(optarg, 1, 10000, &v) < 0)
				return setup_error("%s: --repeat wants 1 to 10000, not '%s'", cmd,
						   optarg);
			o->repeat = (unsigned int)v;
			break;
		case 'L':
			if (selftest || util_parse_u64(optarg, 0, 256, &v) < 0)
				return setup_error("%s: --load wants 0 to 256 CPU hogs, not '%s'",
						   cmd, optarg);
			o->load = (unsigned int)v;
			break;
		case 'k':
			if (selftest)
				return setup_error("%s", "selftest: no --known-issues");
			o->known_issues = optarg;
			break;
		case 'd':
			if (selftest)
				return setup_error("%s", "selftest: no --report-dir");
			o->report_dir = optarg;
			break;
		case 'F':
			o->faults_build = true;
			break;
		case 'R':
			o->faults = optarg;
			break;
		case 'O':
			o->own_only = true;
			break;
		case 'M':
			if (!selftest)
				return setup_error("%s", "run: --matrix-fault belongs to selftest");
			o->mfaults[o->n_mfaults++] = optarg;
			break;
		case 'T':
			if (strcmp(optarg, "auto") == 0)
				o->time_scale = 0;
			else if (htime_parse(optarg, &o->time_scale) < 0)
				return setup_error("%s: --time-scale wants auto or a number from 1 "
						   "to %g, not '%s'",
						   cmd, HTIME_SCALE_MAX, optarg);
			break;
		default:
			return setup_error("%s: bad option (see cellcheck --help)", cmd);
		}
	}
	if (optind < argc)
		return setup_error("%s: unexpected operand '%s'", cmd, argv[optind]);
	if (!selftest && (o->faults_build || o->faults || o->own_only))
		return setup_error("%s", "run: --faults-build, --faults and --own-only belong to "
					 "selftest");
	return 0;
}

/* ---- setup: profile, cases, selection ---- */

struct setup {
	struct opts o;
	struct hprof *prof;
	char *profile_path;
	char *cases_path; /* --cases made absolute, for reproducers; NULL: the default */
	struct hcase_set set;
	const struct hcase **sel;
	size_t n_sel;
	struct hrun_ctx ctx;
	char *run_dir;
	char *state_path;
	int run_lock; /* flock on run_dir while it exists (hrun_state.c) */
	char *report_dir;
};

static void load_err(const char *file, const struct hjson_err *err, void *userdata)
{
	size_t *n = userdata;

	fprintf(stderr, "cellcheck: %s: %s: %s\n", file, err->path, err->msg);
	(*n)++;
}

static int by_id(const void *a, const void *b)
{
	return strcmp((*(const struct hcase *const *)a)->id, (*(const struct hcase *const *)b)->id);
}

static void make_uuid(char out[40])
{
	uint8_t b[16] = { 0 };

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(util_now_realtime_ns() >> (i % 8));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/*
 * A cell gets a private /tmp (and /var/tmp, /dev/shm: SPEC 9.9), so the in-cell probe next to
 * this binary cannot run in a cell when the build tree lives there: every supervisor case that
 * runs it would fail for the harness's placement, not the implementation's behaviour. Said
 * once, up front, instead of as many puzzling failures.
 */
static void warn_private_build_dir(const struct setup *s)
{
	static const char *const private_dirs[] = { "/tmp/", "/var/tmp/", "/dev/shm/" };
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	bool cells = false;

	for (size_t i = 0; i < s->n_sel && !cells; i++)
		cells = s->sel[i]->component == HCASE_SUPERVISOR;
	if (n <= 0 || !cells)
		return;
	exe[n] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(private_dirs); i++)
		if (!strncmp(exe, private_dirs[i], strlen(private_dirs[i])))
			fprintf(stderr,
				"cellcheck: warning: %s is under %s, which every cell sees as a private "
				"directory of its own: supervisor cases that run the probe in a cell will "
				"fail; build outside %s\n",
				exe, private_dirs[i], private_dirs[i]);
}

/* The profile (--profile or the reference's). */
static int setup_profile(struct setup *s)
{
	struct hjson_err err = { 0 };
	int e;

	if (s->o.profile)
		s->profile_path = realpath(s->o.profile, NULL) ?: strdup(s->o.profile);
	else if (asprintf(&s->profile_path, "%s/fixtures/profiles/reference.json", srcdir()) < 0)
		s->profile_path = NULL;
	if (!s->profile_path)
		return EXIT_USAGE;
	e = hprof_load(s->profile_path, NULL, NULL, &s->prof, &err);
	if (e < 0) {
		if (err.msg[0])
			return setup_error("bad profile %s: %s: %s", s->profile_path, err.path,
					   err.msg);
		return setup_error("bad profile %s: %s", s->profile_path, strerror(-e));
	}
	return 0;
}

/* The cases, and the sorted selection of this run (--filter, then this --shard's part). */
static int setup_select(struct setup *s)
{
	_cleanup_free_ char *cases_dir = NULL;
	size_t errors = 0, n = 0;
	int e;

	if (s->o.cases) {
		cases_dir = strdup(s->o.cases);
		s->cases_path = realpath(s->o.cases, NULL) ?: strdup(s->o.cases);
	} else if (asprintf(&cases_dir, "%s/cases", srcdir()) < 0)
		cases_dir = NULL;
	if (!cases_dir)
		return EXIT_USAGE;
	e = hcase_load_dir(&s->set, cases_dir, load_err, &errors);
	if (e < 0)
		return setup_error("cases %s: %s", cases_dir, strerror(-e));
	if (errors)
		return setup_error("%zu invalid case files in %s (cellcheck lint explains)", errors,
				   cases_dir);
	for (size_t g = 0; g < s->o.n_globs; g++) {
		bool any = false;

		for (size_t i = 0; i < s->set.n && !any; i++)
			any = fnmatch(s->o.globs[g], s->set.cases[i]->id, 0) == 0;
		if (!any)
			fprintf(stderr, "cellcheck: warning: --filter '%s' matches no case\n",
				s->o.globs[g]);
	}
	s->sel = calloc(s->set.n + 1, sizeof(*s->sel));
	if (!s->sel)
		return EXIT_USAGE;
	for (size_t i = 0; i < s->set.n; i++)
		if (hcase_match(s->set.cases[i], s->o.globs, s->o.n_globs))
			s->sel[n++] = s->set.cases[i];
	qsort(s->sel, n, sizeof(*s->sel), by_id);
	/* Shards split the sorted list by index, so every machine agrees without talking. */
	s->n_sel = 0;
	for (size_t i = 0; i < n; i++)
		if (!s->o.shard_n || i % s->o.shard_n == s->o.shard_k - 1)
			s->sel[s->n_sel++] = s->sel[i];
	return 0;
}

/* What the selected cases need: root, the profile's binaries, the kernel probed. */
static int setup_check_needs(struct setup *s)
{
	bool need_probe = false;
	int e;

	if (geteuid() != 0 && s->n_sel) {
		size_t need = 0;

		for (size_t i = 0; i < s->n_sel; i++)
			need += hrun_case_needs_root(s->sel[i]);
		if (need == s->n_sel)
			return setup_error("not root: every selected case (%zu) needs root "
					   "(network namespaces); run with sudo or --filter",
					   need);
	}
	warn_private_build_dir(s);
	/* A binary the selected cases need but cannot run is a bad profile, not N errors. */
	for (int k = 0; k < _HCASE_COMPONENT_MAX; k++) {
		bool used = false;

		for (size_t i = 0; i < s->n_sel && !used; i++)
			used = (int)s->sel[i]->component == k || (s->sel[i]->uses & (1u << k));
		for (size_t b = 0; used && s->prof->comp[k].present && s->prof->comp[k].binaries[b];
		     b++)
			if (access(s->prof->comp[k].binaries[b], X_OK) < 0)
				return setup_error("bad profile %s: %s binary %s: %s",
						   s->profile_path, hcase_component_names[k],
						   s->prof->comp[k].binaries[b], strerror(errno));
	}
	for (size_t i = 0; i < s->n_sel && !need_probe; i++)
		for (char **f = s->sel[i]->features; f && *f && !need_probe; f++)
			need_probe = hprobe_feature_from_name(*f) >= 0;
	e = need_probe ? hprobe_run(&s->ctx.probe) : hprobe_kernel(&s->ctx.probe);
	if (e < 0)
		return setup_error("probing the kernel: %s", strerror(-e));
	s->ctx.probed = need_probe;
	return 0;
}

/* The run's temp dir, its state file for cleanup, and (run) the report dir. */
static int setup_dirs(struct setup *s, bool selftest)
{
	int e;

	s->run_lock = -1;
	if (asprintf(&s->run_dir, "%s/cellcheck-run.%d.XXXXXX", getenv("TMPDIR") ?: "/tmp",
		     getpid()) < 0 ||
	    !mkdtemp(s->run_dir))
		return setup_error("temp dir: %s", strerror(errno));
	e = hrun_state_open(s->run_dir, &s->state_path, &s->run_lock);
	if (e < 0)
		fprintf(stderr, "cellcheck: warning: no state file for cleanup: %s\n",
			strerror(-e));
	if (!selftest) {
		if (s->o.report_dir)
			s->report_dir = strdup(s->o.report_dir);
		else if (asprintf(&s->report_dir, "%s/reports/latest", srcdir()) < 0)
			s->report_dir = NULL;
		if (!s->report_dir)
			return EXIT_USAGE;
	}
	return 0;
}

/* The deadline factor: --time-scale, or calibrated on this machine. */
static int setup_time_scale(struct setup *s)
{
	int e;

	if (s->o.time_scale) {
		s->ctx.time_scale = s->o.time_scale;
		s->ctx.time_scale_from = "option";
	} else {
		e = htime_calibrate(&s->ctx.time_scale, &s->ctx.calib_round_ns);
		if (e < 0)
			return setup_error("timing calibration: %s", strerror(-e));
		s->ctx.time_scale_from = "calibrated";
	}
	if (s->ctx.time_scale > 1.0 && s->ctx.calib_round_ns)
		fprintf(stderr,
			"cellcheck: a slow machine: every deadline is %.1f times longer (calibrated: "
			"16 process spawns took %.1f ms; --time-scale sets the factor)\n",
			s->ctx.time_scale, (double)s->ctx.calib_round_ns / 1e6);
	return 0;
}

static int setup_load(struct setup *s, bool selftest)
{
	int e = setup_profile(s);

	e = e ?: setup_select(s);
	e = e ?: setup_check_needs(s);
	e = e ?: setup_dirs(s, selftest);
	e = e ?: setup_time_scale(s);
	if (e)
		return e;
	s->ctx.srcdir = srcdir();
	s->ctx.run_dir = s->run_dir;
	s->ctx.profile_arg = s->profile_path;
	s->ctx.cases_arg = s->cases_path;
	s->ctx.settle_bpf = s->o.jobs == 1;
	s->ctx.state_path = s->state_path;
	make_uuid(s->ctx.run_id);
	return 0;
}

static void setup_free(struct setup *s)
{
	if (s->run_dir)
		hrun_rmtree(s->run_dir);
	hrun_state_close(s->state_path, s->run_dir ? s->run_lock : -1);
	free(s->run_dir);
	free(s->state_path);
	free(s->report_dir);
	free(s->profile_path);
	free(s->cases_path);
	free(s->sel);
	free(s->o.globs);
	free(s->o.mfaults);
	hcase_set_free(&s->set);
	hprof_free(s->prof);
}

int hrun_mkdir_p(const char *path)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* ---- the worker pool ---- */

struct slot {
	pid_t pid;
	int fd; /* its result pipe */
	char *buf;
	size_t len;
	long job; /* running job, -1: none */
	uint64_t job_start_ms;
};

typedef void (*result_fn)(void *ud, size_t job, struct hrun_result *res);

static json_t *result_json(size_t job, const struct hrun_result *r)
{
	json_t *o = json_pack("{s:I, s:s, s:I}", "job", (json_int_t)job, "status",
			      hrep_status_names[r->status], "ms", (json_int_t)r->duration_ms);
	json_t *ids = json_array();

	if (!o || !ids) {
		json_decref(o);
		json_decref(ids);
		return NULL;
	}
	if (r->message)
		json_object_set_new(o, "message", json_string(r->message));
	if (r->n_problems) {
		json_t *pa = json_array();

		for (size_t i = 0; pa && i < r->n_problems; i++)
			json_array_append_new(pa,
					      json_pack("{s:s, s:s}", "status",
							hrep_status_names[r->problems[i].status],
							"message", r->problems[i].message ?: ""));
		json_object_set_new(o, "problems", pa);
	}
	if (r->reason)
		json_object_set_new(o, "reason", json_string(r->reason));
	if (r->artifacts)
		json_object_set_new(o, "artifacts", json_string(r->artifacts));
	for (size_t i = 0; i < r->n_bpf_ids; i++)
		json_array_append_new(ids, json_integer(r->bpf_ids[i]));
	json_object_set_new(o, "bpf", ids);
	return o;
}

static void send_line(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s) {
		(void)util_write_all(fd, s, strlen(s));
		(void)util_write_all(fd, "\n", 1);
	}
	free(s);
	json_decref(o);
}

/*
 * A worker's "harness namespace" (steps without "ns") is a network namespace of its own, with lo
 * up: what a case or its IUT leaves there is this worker's to find, and the links of cells,
 * other runs or tests on the host never show up in its audit (SPEC 10.5). Without root, or if
 * the kernel refuses, the worker stays where it is: the cases that need root SKIP anyway.
 */
static void worker_own_netns(void)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;

	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		return;
	if (netcfg_open(-1, &nc) == 0)
		(void)netcfg_link_set_up(nc, 1);
}

static __attribute__((noreturn)) void
worker_main(const struct hrun_ctx *ctx, const struct hrun_job *jobs, int qfd, int rfd, pid_t parent)
{
	struct hrun_worker w = { .home_ns = -1 };
	uint32_t idx;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* Orphans of the IUT come back here, so a case's process groups can be emptied. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	worker_own_netns();
	w.home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	while (read(qfd, &idx, sizeof(idx)) == sizeof(idx)) {
		struct hrun_result res;

		send_line(rfd, json_pack("{s:I}", "start", (json_int_t)idx));
		hrun_case_exec(ctx, &w, &jobs[idx], &res);
		send_line(rfd, result_json(idx, &res));
		hrun_result_clear(&res);
	}
	hrun_worker_free(&w);
	/* exit, not _exit: stdio was flushed before the fork, and under ASan this runs the leak
	 * check over everything the cases did in this worker. */
	exit(0);
}

static int spawn_worker(const struct hrun_ctx *ctx, const struct hrun_job *jobs, int qfd,
			struct slot *slots, size_t n_slots, size_t i)
{
	int p[2];
	pid_t parent = getpid(), pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		close(p[0]);
		for (size_t k = 0; k < n_slots; k++)
			if (slots[k].fd >= 0)
				close(slots[k].fd);
		worker_main(ctx, jobs, qfd, p[1], parent);
	}
	close(p[1]);
	hrun_state_note_proc(ctx->state_path, pid);
	slots[i] = (struct slot){ .pid = pid, .fd = p[0], .job = -1 };
	return 0;
}

static void handle_line(struct slot *sl, const char *line, size_t n_jobs, result_fn cb, void *ud)
{
	json_t *o = json_loads(line, 0, NULL);
	json_t *start = json_object_get(o, "start");
	struct hrun_result res = { 0 };
	json_t *v, *ids;
	size_t job, i;
	int st;

	if (json_is_integer(start)) {
		sl->job = (long)json_integer_value(start);
		sl->job_start_ms = mono_ms();
		json_decref(o);
		return;
	}
	job = (size_t)json_integer_value(json_object_get(o, "job"));
	st = hrep_status_from_name(json_string_value(json_object_get(o, "status")) ?: "");
	if (!o || job >= n_jobs || st < 0) {
		json_decref(o);
		return;
	}
	res.status = (enum hrep_status)st;
	res.duration_ms = (uint64_t)json_integer_value(json_object_get(o, "ms"));
	if ((v = json_object_get(o, "message")))
		res.message = strdup(json_string_value(v));
	if ((v = json_object_get(o, "reason")))
		res.reason = strdup(json_string_value(v));
	if ((v = json_object_get(o, "artifacts")))
		res.artifacts = strdup(json_string_value(v));
	v = json_object_get(o, "problems");
	res.problems = calloc(json_array_size(v) + 1, sizeof(*res.problems));
	for (i = 0; res.problems && i < json_array_size(v); i++) {
		json_t *pi = json_array_get(v, i);
		int ps = hrep_status_from_name(json_string_value(json_object_get(pi, "status"))
						       ?: "");

		res.problems[i].status = ps == HREP_FAIL ? HREP_FAIL : HREP_ERROR;
		res.problems[i].message =
			strdup(json_string_value(json_object_get(pi, "message")) ?: "");
		res.n_problems = i + 1;
	}
	ids = json_object_get(o, "bpf");
	res.bpf_ids = calloc(json_array_size(ids) + 1, sizeof(uint32_t));
	json_array_foreach(ids, i, v) if (res.bpf_ids) res.bpf_ids[res.n_bpf_ids++] =
		(uint32_t)json_integer_value(v);
	sl->job = -1;
	cb(ud, job, &res);
	hrun_result_clear(&res);
	json_decref(o);
}

/* The pool's state while it runs (pool_run). */
struct pool {
	const struct hrun_ctx *ctx;
	const struct hrun_job *jobs;
	size_t n_jobs;
	unsigned int n_workers;
	struct slot *slots;
	int qr; /* the job queue's read end, which every worker inherits */
	result_fn cb;
	void *ud;
	size_t live, done;
};

/* Every job's index written into a pipe the workers read: its read end in *ret_fd. */
static int pool_queue(size_t n_jobs, int *ret_fd)
{
	int q[2];

	if (pipe2(q, O_CLOEXEC) < 0)
		return -errno;
	/* The whole queue is written before any worker runs: it must fit in the pipe. */
	if (fcntl(q[1], F_SETPIPE_SZ, (int)(n_jobs * 4 + 4096)) < 0 && n_jobs * 4 > 65536) {
		close(q[0]);
		close(q[1]);
		return -E2BIG;
	}
	for (uint32_t i = 0; i < n_jobs; i++)
		if (util_write_all(q[1], &i, sizeof(i)) < 0) {
			close(q[0]);
			close(q[1]);
			return -EMSGSIZE;
		}
	/* Closed before any fork, so workers see EOF when the queue is empty. */
	close(q[1]);
	*ret_fd = q[0];
	return 0;
}

/* Bytes a worker wrote: each whole line handled (a result line counts its job done). */
static void pool_lines(struct pool *p, struct slot *sl, const char *chunk, size_t n)
{
	char *nb = realloc(sl->buf, sl->len + n + 1), *nl;

	if (!nb)
		return;
	sl->buf = nb;
	memcpy(sl->buf + sl->len, chunk, n);
	sl->len += n;
	sl->buf[sl->len] = '\0';
	while ((nl = memchr(sl->buf, '\n', sl->len))) {
		size_t used = (size_t)(nl - sl->buf) + 1;
		bool was_result;

		*nl = '\0';
		was_result = sl->job >= 0;
		handle_line(sl, sl->buf, p->n_jobs, p->cb, p->ud);
		if (was_result && sl->job < 0)
			p->done++;
		memmove(sl->buf, sl->buf + used, sl->len - used);
		sl->len -= used;
	}
}

/* EOF from worker i: it is done, or died mid-case (an ERROR, and a new worker in its place). */
static void pool_worker_ended(struct pool *p, size_t i)
{
	struct slot *sl = &p->slots[i];
	long job = sl->job;
	int ws = 0;

	close(sl->fd);
	sl->fd = -1;
	free(sl->buf);
	sl->buf = NULL;
	sl->len = 0;
	waitpid(sl->pid, &ws, 0);
	p->live--;
	if (job >= 0) {
		struct hrun_result res = { .status = HREP_ERROR };

		if (asprintf(&res.message, "worker died (%s) during the case",
			     WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) : "exit") < 0)
			res.message = NULL;
		res.duration_ms = mono_ms() - sl->job_start_ms;
		sl->job = -1;
		p->cb(p->ud, (size_t)job, &res);
		hrun_result_clear(&res);
		p->done++;
		if (p->done < p->n_jobs &&
		    spawn_worker(p->ctx, p->jobs, p->qr, p->slots, p->n_workers, i) == 0)
			p->live++;
	} else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr,
			"cellcheck: worker %d ended badly after its cases (%s %d); its stderr above "
			"says why\n",
			sl->pid, WIFSIGNALED(ws) ? "signal" : "status",
			WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
		worker_trouble++;
	}
}

/* One wait (up to a second) for the live workers' lines; false when poll fails. */
static bool pool_poll(struct pool *p)
{
	struct pollfd pfd[64];
	size_t map[64], np = 0;

	for (size_t i = 0; i < p->n_workers; i++)
		if (p->slots[i].fd >= 0) {
			pfd[np] = (struct pollfd){ .fd = p->slots[i].fd, .events = POLLIN };
			map[np++] = i;
		}
	if (poll(pfd, np, 1000) < 0 && errno != EINTR)
		return false;
	for (size_t k = 0; k < np; k++) {
		struct slot *sl = &p->slots[map[k]];
		char chunk[65536];
		ssize_t n;

		/* A case far past its own timeout means a worker stuck in the kernel. */
		if (sl->job >= 0 && mono_ms() - sl->job_start_ms >
					    htime_scale_ms(p->ctx->time_scale,
							   p->jobs[sl->job].c->timeout_ms + 30000u))
			kill(sl->pid, SIGKILL);
		if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(sl->fd, chunk, sizeof(chunk));
		if (n > 0)
			pool_lines(p, sl, chunk, (size_t)n);
		else if (!(n < 0 && errno == EINTR))
			pool_worker_ended(p, map[k]);
	}
	return true;
}

/*
 * Run every job on n_workers workers; cb gets each result in the parent as it arrives. A
 * worker that dies mid-case (or overruns its case timeout by far) turns that case into an
 * ERROR and is replaced while jobs remain.
 */
static int pool_run(const struct hrun_ctx *ctx, const struct hrun_job *jobs, size_t n_jobs,
		    unsigned int n_workers, result_fn cb, void *ud)
{
	_cleanup_free_ struct slot *slots = NULL;
	_cleanup_close_ int qr = -1;
	struct pool p;
	int e;

	if (!n_jobs)
		return 0;
	if (n_workers > n_jobs)
		n_workers = (unsigned int)n_jobs;
	e = pool_queue(n_jobs, &qr);
	if (e < 0)
		return e;
	slots = calloc(n_workers, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	p = (struct pool){ .ctx = ctx,
			   .jobs = jobs,
			   .n_jobs = n_jobs,
			   .n_workers = n_workers,
			   .slots = slots,
			   .qr = qr,
			   .cb = cb,
			   .ud = ud };
	for (size_t i = 0; i < n_workers; i++)
		slots[i].fd = -1;
	for (size_t i = 0; i < n_workers; i++)
		if (spawn_worker(ctx, jobs, qr, slots, n_workers, i) == 0)
			p.live++;
	if (!p.live)
		return -EAGAIN;
	while (p.live && !interrupted)
		if (!pool_poll(&p))
			break;
	for (size_t i = 0; i < n_workers; i++)
		if (slots[i].fd >= 0) {
			kill(slots[i].pid, SIGKILL);
			waitpid(slots[i].pid, NULL, 0);
			close(slots[i].fd);
			free(slots[i].buf);
		}
	return interrupted ? -EINTR : 0;
}

/* ---- progress ---- */

struct progress {
	bool tty;
	size_t done, total;
};

static void progress_line(struct progress *p, const char *id, const char *what,
			  const struct hrun_result *res)
{
	const char *st = hrep_status_names[res->status];

	p->done++;
	if (p->tty) {
		printf("\r\033[K[%zu/%zu] %s%s%s ... %s %llu ms", p->done, p->total, id,
		       what ? " " : "", what ?: "", st, (unsigned long long)res->duration_ms);
		if (res->status == HREP_FAIL || res->status == HREP_ERROR)
			printf("\n    %s\n", res->message ?: "");
		fflush(stdout);
		return;
	}
	printf("[%zu/%zu] %s%s%s ... %s %llu ms%s%s\n", p->done, p->total, id, what ? " " : "",
	       what ?: "", st, (unsigned long long)res->duration_ms,
	       res->message || res->reason ? ": " : "", res->message ?: res->reason ?: "");
	fflush(stdout);
}

/* ---- run ---- */

struct run_state {
	struct setup *s;
	const struct hrun_job *jobs;
	struct hrun_result *res; /* per job */
	struct progress prog;
};

static void run_result(void *ud, size_t job, struct hrun_result *res)
{
	struct run_state *rs = ud;

	progress_line(&rs->prog, rs->jobs[job].c->id, NULL, res);
	rs->res[job] = *res;
	memset(res, 0, sizeof(*res));
}

struct known {
	json_t *doc;
};

static int known_load(const char *path, json_t **ret)
{
	struct hjson_err err = { 0 };
	json_t *doc = NULL, *arr;
	size_t i;
	json_t *e;
	int r;

	*ret = NULL;
	if (!path)
		return 0;
	r = hjson_load_file(path, &doc, &err);
	if (r < 0)
		return setup_error("known issues %s: %s: %s", path, err.path,
				   err.msg[0] ? err.msg : strerror(-r));
	arr = json_is_array(doc) ? doc : json_object_get(doc, "issues");
	if (!json_is_array(arr)) {
		json_decref(doc);
		return setup_error("known issues %s: $.issues: expected an array", path);
	}
	json_array_foreach(arr, i, e)
	{
		static const char *const keys[] = { "case", "reason", "link", "expires", NULL };
		const char *exp = json_string_value(json_object_get(e, "expires"));
		char p[64];
		int y, m, d;

		snprintf(p, sizeof(p), "$.issues[%zu]", i);
		if (!json_is_object(e) || hjson_only_keys(e, p, keys, &err) < 0 ||
		    !json_string_value(json_object_get(e, "case")) ||
		    !json_string_value(json_object_get(e, "reason")) ||
		    (exp && (strlen(exp) != 10 || sscanf(exp, "%4d-%2d-%2d", &y, &m, &d) != 3))) {
			json_decref(doc);
			return setup_error("known issues %s: %s: needs case and reason (strings), "
					   "optional link and expires YYYY-MM-DD%s%s",
					   path, p, err.msg[0] ? "; " : "", err.msg);
		}
	}
	*ret = json_incref(arr);
	json_decref(doc);
	return 0;
}

/* The known issue covering id, or NULL; *expired when its date has passed (UTC). */
static json_t *known_find(json_t *arr, const char *id, bool *expired)
{
	char today[16];
	time_t t = time(NULL);
	struct tm tm;
	size_t i;
	json_t *e;

	gmtime_r(&t, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	json_array_foreach(arr, i, e)
	{
		const char *exp = json_string_value(json_object_get(e, "expires"));

		if (fnmatch(json_string_value(json_object_get(e, "case")), id, 0) != 0)
			continue;
		*expired = exp && strcmp(today, exp) > 0;
		return e;
	}
	return NULL;
}

static bool failing(enum hrep_status s)
{
	return s == HREP_FAIL || s == HREP_ERROR;
}

/*
 * With --repeat, the reported status is the most frequent one (ties go to the failing one) and
 * flakes counts the runs that differ, so a 1-in-20 failure shows as a flake rate, not a pass.
 */
static size_t pick_run(const struct hrun_result *res, size_t first, size_t n, uint32_t *flakes)
{
	size_t cnt[_HREP_STATUS_MAX] = { 0 }, best = first;
	int bs = -1;

	for (size_t i = 0; i < n; i++)
		cnt[res[first + i].status]++;
	for (int st = 0; st < _HREP_STATUS_MAX; st++)
		if (cnt[st] && (bs < 0 || cnt[st] > cnt[bs] ||
				(cnt[st] == cnt[bs] && failing((enum hrep_status)st))))
			bs = st;
	for (size_t i = 0; i < n; i++)
		if ((int)res[first + i].status == bs) {
			best = first + i;
			break;
		}
	*flakes = (uint32_t)(n - cnt[bs]);
	return best;
}

static int add_case(struct setup *s, struct hrep *rep, const struct hcase *c,
		    const struct hrun_result *res, size_t n_runs, uint32_t flakes,
		    uint64_t total_ms, uint64_t slowest_ms, json_t *known)
{
	_cleanup_free_ struct hrep_req *reqs = calloc(c->n_reqs + 1, sizeof(*reqs));
	_cleanup_free_ char *repro = NULL, *msg = NULL, *reason = NULL;
	_cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
	struct hrep_case rc = { 0 };
	bool expired = false;
	json_t *ki;

	if (!reqs)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_reqs; i++)
		reqs[i] = (struct hrep_req){ .id = c->reqs[i].id, .level = c->reqs[i].level };
	rc.id = c->id;
	rc.title = c->title;
	rc.component = (char *)hcase_component_names[c->component];
	rc.reqs = reqs;
	rc.n_reqs = c->n_reqs;
	rc.status = res->status;
	rc.duration_ms = n_runs ? total_ms / n_runs : res->duration_ms;
	rc.message = res->message;
	rc.problems = res->problems;
	rc.n_problems = res->n_problems;
	rc.reason = res->reason;
	rc.artifacts = res->artifacts;
	if (s->o.repeat > 1) {
		rc.runs = (uint32_t)n_runs;
		rc.flakes = flakes;
	}
	/* How close to its deadline the case came (issue 13): a case at 80% flakes next. */
	rc.slowest_ms = slowest_ms;
	rc.deadline_ms = htime_scale_ms(s->ctx.time_scale, c->timeout_ms);
	ki = known_find(known, c->id, &expired);
	if (ki && expired) {
		fprintf(stderr,
			"cellcheck: warning: known issue for %s expired on %s: plain status\n",
			c->id, json_string_value(json_object_get(ki, "expires")));
	} else if (ki && (failing(res->status) || res->status == HREP_PASS)) {
		const char *why = json_string_value(json_object_get(ki, "reason"));
		const char *link = json_string_value(json_object_get(ki, "link"));

		if (asprintf(&reason, "%s%s%s", why, link ? " " : "", link ?: "") < 0)
			return -ENOMEM;
		rc.reason = reason;
		if (res->status == HREP_PASS) {
			rc.status = HREP_XPASS;
			if (asprintf(&msg, "passes although listed as a known issue: %s", why) < 0)
				return -ENOMEM;
			rc.message = msg;
		} else {
			rc.status = HREP_XFAIL;
		}
	}
	if (failing(rc.status) || rc.status == HREP_XPASS || rc.status == HREP_XFAIL) {
		/* Absolute paths; root itself needs no sudo (and may have none). */
		if (asprintf(&repro, "%s%s run --profile %s%s%s --filter %s",
			     hrun_case_needs_root(c) && geteuid() != 0 ? "sudo " : "",
			     self ?: "cellcheck", s->profile_path, s->cases_path ? " --cases " : "",
			     s->cases_path ?: "", c->id) < 0)
			return -ENOMEM;
		rc.reproduce = repro;
	}
	return hrep_case_add(rep, &rc);
}

static void summary_table(const struct hrep *rep)
{
	printf("\n%-14s %5s %5s %5s %5s %5s %5s %5s\n", "component", "total", "PASS", "FAIL",
	       "SKIP", "ERROR", "XFAIL", "XPASS");
	for (int k = -1; k < _HCASE_COMPONENT_MAX; k++) {
		struct hrep_counts n;

		hrep_count(rep, k < 0 ? NULL : hcase_component_names[k], -1, &n);
		if (!n.total && k >= 0)
			continue;
		printf("%-14s %5zu %5zu %5zu %5zu %5zu %5zu %5zu\n",
		       k < 0 ? "all" : hcase_component_names[k], n.total, n.n[HREP_PASS],
		       n.n[HREP_FAIL], n.n[HREP_SKIP], n.n[HREP_ERROR], n.n[HREP_XFAIL],
		       n.n[HREP_XPASS]);
	}
	for (size_t i = 0; i < rep->n_cases; i++) {
		const struct hrep_case *c = &rep->cases[i];
		bool warn = c->status == HREP_FAIL && hrep_case_level(c) != HCASE_MUST;

		if (c->flakes)
			printf("flaky:   %s: %u of %u runs differ from %s\n", c->id, c->flakes,
			       c->runs, hrep_status_names[c->status]);
		if (!failing(c->status) && c->status != HREP_XPASS)
			continue;
		printf("%s %s %s: %s\n", warn ? "warning:" : "failed: ", c->id,
		       hrep_status_names[c->status], c->message ?: "");
	}
	/* The case nearest its deadline: how much slower a machine the run would survive. */
	const struct hrep_case *near = NULL;

	for (size_t i = 0; i < rep->n_cases; i++) {
		const struct hrep_case *c = &rep->cases[i];

		if (c->deadline_ms && c->status != HREP_SKIP &&
		    (!near || (double)c->slowest_ms * (double)near->deadline_ms >
				      (double)near->slowest_ms * (double)c->deadline_ms))
			near = c;
	}
	if (near) {
		size_t n;
		double med = hrep_deadline_median(rep, &n);

		printf("closest to its deadline: %s, %llu of %llu ms (%.0f%%); median %.0f%% over "
		       "%zu cases\n",
		       near->id, (unsigned long long)near->slowest_ms,
		       (unsigned long long)near->deadline_ms,
		       100.0 * (double)near->slowest_ms / (double)near->deadline_ms, med, n);
	}
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * A BPF object the case left, found after every case ended: an ERROR that keeps the case's
 * other problems (SPEC CHK-AUDIT-001), listed after them.
 */
static void leftover_bpf(struct hrun_result *res, uint32_t id)
{
	struct hrep_problem *np = realloc(res->problems, (res->n_problems + 1) * sizeof(*np));
	char *m = NULL, *line = NULL;

	if (asprintf(&m, "leftover: BPF %s id %u still loaded",
		     id & 0x80000000u ? "link" : "program", id & 0x7fffffffu) < 0 ||
	    !np) {
		free(m);
		if (np)
			res->problems = np;
		return;
	}
	res->problems = np;
	res->problems[res->n_problems++] =
		(struct hrep_problem){ .status = HREP_ERROR, .message = m };
	res->status = HREP_ERROR;
	if (res->n_problems == 1)
		line = strdup(m);
	else if (asprintf(&line, "%s (and %zu more)", res->problems[0].message ?: "",
			  res->n_problems - 1) < 0)
		line = NULL;
	if (line) {
		free(res->message);
		res->message = line;
	}
}

/*
 * --load N: N processes spinning at normal priority for the whole run, calibration included, as
 * other jobs on a shared CI machine would (issue 13; ci/load does the same for any command).
 * They die with the harness (PR_SET_PDEATHSIG) and are killed and reaped at its end.
 */
static pid_t *load_start(unsigned int n)
{
	pid_t *pids = calloc(n + 1, sizeof(*pids)), parent = getpid();

	for (unsigned int i = 0; pids && i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			volatile unsigned long x = 0;

			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
				_exit(0);
			for (;;)
				x++;
		}
		if (pid > 0)
			pids[i] = pid;
	}
	return pids;
}

static void load_stop(pid_t *pids)
{
	for (size_t i = 0; pids && pids[i] > 0; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	free(pids);
}

/*
 * Deferred BPF audit (see the top of this file): ids that outlived every case, given the kernel
 * up to 2 s to finish tearing down the last namespaces.
 */
static void run_audit_bpf(struct run_state *rs, size_t n_jobs)
{
	for (int w = 0; w < 400; w++) {
		bool any = false;

		for (size_t j = 0; j < n_jobs && !any; j++)
			for (size_t k = 0; k < rs->res[j].n_bpf_ids && !any; k++)
				any = hrun_bpf_id_present(rs->res[j].bpf_ids[k]);
		if (!any)
			break;
		usleep(5000);
	}
	for (size_t j = 0; j < n_jobs; j++)
		for (size_t k = 0; k < rs->res[j].n_bpf_ids; k++)
			if (hrun_bpf_id_present(rs->res[j].bpf_ids[k]) &&
			    rs->res[j].status != HREP_SKIP)
				leftover_bpf(&rs->res[j], rs->res[j].bpf_ids[k]);
}

/* Each selected case into the report: the run picked among its --repeat runs, their times. */
static int run_add_cases(struct run_state *rs, struct hrep *rep, json_t *known)
{
	struct setup *s = rs->s;

	for (size_t i = 0; i < s->n_sel; i++) {
		uint32_t flakes = 0;
		uint64_t total = 0, slowest = 0;
		size_t best = pick_run(rs->res, i * s->o.repeat, s->o.repeat, &flakes);

		for (unsigned int k = 0; k < s->o.repeat; k++) {
			uint64_t d = rs->res[i * s->o.repeat + k].duration_ms;

			total += d;
			slowest = d > slowest ? d : slowest;
		}
		if (add_case(s, rep, s->sel[i], &rs->res[best], s->o.repeat, flakes, total, slowest,
			     known) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The report's run-wide fields: end time, kernel, time scale, versions, shard, profile. */
static int run_fill_report(const struct setup *s, struct hrep *rep)
{
	_cleanup_free_ char *spec = NULL;
	char ts[32];
	int e;

	hrep_now(ts);
	hrep_set(&rep->ended_at, ts);
	hrep_set(&rep->kernel_release, s->ctx.probe.release);
	hrep_set(&rep->kernel_config_sha256, s->ctx.probe.config_sha256);
	rep->time_scale = s->ctx.time_scale;
	hrep_set(&rep->time_scale_from, s->ctx.time_scale_from);
	hrep_set(&rep->harness_version, CELLCHECK_VERSION);
	hrep_set(&rep->harness_git_revision, CELLCHECK_GIT_REVISION);
	if (s->o.shard_n) {
		rep->has_shard = true;
		rep->shard_index = s->o.shard_k;
		rep->shard_count = s->o.shard_n;
	}
	e = hprof_fill_report(s->prof, rep);
	/* Requirement titles, so `report --from` needs no SPEC.md; none when it is missing. */
	if (e == 0 && asprintf(&spec, "%s/SPEC.md", srcdir()) >= 0 &&
	    hrep_titles_from_spec(rep, spec) == -ENOMEM)
		e = -ENOMEM;
	return e;
}

int hrun_cmd_run(int argc, char **argv)
{
	pid_t *hogs = NULL;
	struct setup s = { 0 };
	struct run_state rs = { .s = &s };
	_cleanup_free_ struct hrun_job *jobs = NULL;
	_cleanup_free_ char *art = NULL, *json_path = NULL;
	json_t *known = NULL;
	struct hrep *rep = NULL;
	char ts[32];
	size_t n_jobs;
	int status = EXIT_USAGE, e;

	e = parse_opts(argc, argv, false, &s.o);
	if (e)
		goto out;
	if (s.o.load) {
		hogs = load_start(s.o.load);
		fprintf(stderr, "cellcheck: --load: %u CPU hogs beside the run\n", s.o.load);
	}
	e = setup_load(&s, false);
	if (e)
		goto out;
	if (known_load(s.o.known_issues, &known))
		goto out;
	e = hrun_mkdir_p(s.report_dir);
	if (e < 0 || asprintf(&art, "%s/artifacts", s.report_dir) < 0 ||
	    asprintf(&json_path, "%s/report.json", s.report_dir) < 0) {
		setup_error("report dir %s: %s", s.report_dir, strerror(-e));
		goto out;
	}
	/* Artifacts of an earlier run would be mistaken for this one's. */
	hrun_rmtree(art);
	mkdir(art, 0755);
	s.ctx.report_dir = s.report_dir;
	rep = hrep_new();
	if (!rep)
		goto out;
	hrep_now(ts);
	hrep_set(&rep->started_at, ts);
	n_jobs = s.n_sel * s.o.repeat;
	jobs = calloc(n_jobs + 1, sizeof(*jobs));
	rs.res = calloc(n_jobs + 1, sizeof(*rs.res));
	if (!jobs || !rs.res)
		goto out;
	/* Case-major with --repeat: a case's runs sit together in the queue. */
	for (size_t i = 0; i < s.n_sel; i++)
		for (unsigned int k = 0; k < s.o.repeat; k++)
			jobs[i * s.o.repeat + k] =
				(struct hrun_job){ .c = s.sel[i], .prof = s.prof, .rep = k };
	rs.jobs = jobs;
	rs.prog = (struct progress){ .tty = isatty(STDOUT_FILENO), .total = n_jobs };
	install_signals();
	e = pool_run(&s.ctx, jobs, n_jobs, s.o.jobs, run_result, &rs);
	load_stop(hogs);
	hogs = NULL;
	if (rs.prog.tty)
		printf("\r\033[K");
	if (e == -EINTR) {
		interrupted_note("no report written");
		status = 128 + interrupted;
		goto out;
	}
	if (e < 0) {
		setup_error("running cases: %s", strerror(-e));
		goto out;
	}
	run_audit_bpf(&rs, n_jobs);
	if (run_add_cases(&rs, rep, known) < 0)
		goto out;
	e = run_fill_report(&s, rep);
	e = e ?: hrep_save(rep, json_path);
	e = e ?: hrep_write_all(rep, s.report_dir, s.report_dir);
	if (e < 0) {
		setup_error("writing reports into %s: %s", s.report_dir, strerror(-e));
		goto out;
	}
	summary_table(rep);
	printf("reports: %s/{report.json,junit.xml,report.tap,report.md,report.html}\n",
	       s.report_dir);
	status = hrep_failed(rep) || worker_trouble ? EXIT_FAILED : 0;
	printf("verdict: %s%s\n", status ? "FAIL" : "PASS",
	       worker_trouble ? " (a worker ended badly)" : "");
out:
	if (rs.res)
		for (size_t j = 0; j < s.n_sel * s.o.repeat; j++)
			hrun_result_clear(&rs.res[j]);
	free(rs.res);
	json_decref(known);
	hrep_free(rep);
	setup_free(&s);
	load_stop(hogs);
	return status;
}

/* ---- selftest ---- */

struct fault {
	const char *name;
	int component; /* -1: unknown */
	bool artifact;
	bool filter;  /* an output fault (evf.h), applied to what the runner reads */
	json_t *reqs; /* array of requirement id strings, or NULL */
	struct hprof variant;
};

struct selftest {
	struct setup *s;
	const struct hrun_job *jobs;
	enum hrep_status *st;
	char **msg;
	struct progress prog;
};

static void selftest_result(void *ud, size_t job, struct hrun_result *res)
{
	struct selftest *t = ud;
	const struct hrun_job *j = &t->jobs[job];

	progress_line(&t->prog, j->c->id, j->fault ?: "(plain)", res);
	t->st[job] = res->status;
	t->msg[job] = TAKE_PTR(res->message);
}

static bool fault_targets(const struct fault *f, const struct hcase *c, const struct setup *s)
{
	size_t i;
	json_t *v;

	if (f->reqs) {
		json_array_foreach(f->reqs, i,
				   v) for (size_t r = 0; r < c->n_reqs;
					   r++) if (strcmp(json_string_value(v) ?: "",
							   c->reqs[r].id) == 0) return true;
		return false;
	}
	/* No registry entry: the requirements of the cases that name the fault. */
	for (size_t k = 0; k < s->set.n; k++) {
		const struct hcase *o = s->set.cases[k];

		if (strcmp(o->fault, f->name) != 0)
			continue;
		for (size_t a = 0; a < o->n_reqs; a++)
			for (size_t b = 0; b < c->n_reqs; b++)
				if (strcmp(o->reqs[a].id, c->reqs[b].id) == 0)
					return true;
	}
	return false;
}

/* Faults the selected cases name, with their registry entry when there is one; their count. */
static size_t selftest_faults_named(struct setup *s, json_t *reg, char *variant_obj,
				    struct fault *faults)
{
	size_t n_faults = 0, idx;
	json_t *e;
	int r;

	for (size_t i = 0; i < s->n_sel; i++) {
		struct fault *f = NULL;

		for (size_t k = 0; k < n_faults && !f; k++)
			if (strcmp(faults[k].name, s->sel[i]->fault) == 0)
				f = &faults[k];
		if (f)
			continue;
		f = &faults[n_faults++];
		f->name = s->sel[i]->fault;
		f->component = (int)s->sel[i]->component;
		json_array_foreach(reg, idx, e)
		{
			const char *kind = json_string_value(json_object_get(e, "kind"));

			if (strcmp(json_string_value(json_object_get(e, "name")) ?: "", f->name))
				continue;
			f->reqs = json_object_get(e, "requirements");
			f->artifact = kind && strcmp(kind, "artifact") == 0;
			f->filter = kind && strcmp(kind, "filter") == 0;
			r = hcase_component_from_name(
				json_string_value(json_object_get(e, "component")) ?: "");
			if (r >= 0)
				f->component = r;
		}
		f->variant = *s->prof;
		if (f->artifact)
			f->variant.comp[f->component].bpf_object = variant_obj;
	}
	return n_faults;
}

/*
 * Registry faults no selected case names still run against the cases of their component: they
 * must stay targeted too, and one that breaks nothing is a gap. The new count of faults.
 */
static size_t selftest_faults_other(struct setup *s, json_t *reg, char *variant_obj,
				    struct fault *faults, size_t n_faults)
{
	size_t idx;
	json_t *e;

	json_array_foreach(reg, idx, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *kind = json_string_value(json_object_get(e, "kind"));
		int comp = hcase_component_from_name(
			json_string_value(json_object_get(e, "component")) ?: "");
		bool have = false, used = false;

		for (size_t k = 0; name && k < n_faults && !have; k++)
			have = strcmp(faults[k].name, name) == 0;
		for (size_t i = 0; comp >= 0 && i < s->n_sel && !used; i++)
			used = (int)s->sel[i]->component == comp;
		if (!name || have || !used)
			continue;
		faults[n_faults] = (struct fault){ .name = name,
						   .component = comp,
						   .artifact = kind && !strcmp(kind, "artifact"),
						   .filter = kind && !strcmp(kind, "filter"),
						   .reqs = json_object_get(e, "requirements"),
						   .variant = *s->prof };
		if (faults[n_faults].artifact)
			faults[n_faults].variant.comp[comp].bpf_object = variant_obj;
		n_faults++;
	}
	return n_faults;
}

/* Jobs: each case plain and under its own fault, then every fault on the others. */
/* --matrix-fault GLOB...: a fault against the other cases only if it matches one; default all. */
static bool matrix_fault_selected(const struct opts *o, const char *name)
{
	for (size_t i = 0; i < o->n_mfaults; i++)
		if (fnmatch(o->mfaults[i], name, 0) == 0)
			return true;
	return o->n_mfaults == 0;
}

static size_t selftest_jobs(const struct setup *s, const struct fault *faults, size_t n_faults,
			    struct hrun_job *jobs)
{
	size_t n_jobs = 0;

	for (size_t i = 0; i < s->n_sel; i++) {
		const struct fault *f = NULL;

		for (size_t k = 0; k < n_faults; k++)
			if (strcmp(faults[k].name, s->sel[i]->fault) == 0)
				f = &faults[k];
		if (!f)
			continue; /* cannot happen: every selected case's fault was added above */
		jobs[n_jobs++] = (struct hrun_job){ .c = s->sel[i], .prof = s->prof };
		jobs[n_jobs++] = (struct hrun_job){
			.c = s->sel[i], .prof = &f->variant, .fault = f->name, .filter = f->filter
		};
	}
	for (size_t k = 0; k < n_faults && !s->o.own_only; k++) {
		if (!matrix_fault_selected(&s->o, faults[k].name))
			continue;
		for (size_t i = 0; i < s->n_sel; i++)
			if ((int)s->sel[i]->component == faults[k].component &&
			    strcmp(s->sel[i]->fault, faults[k].name) != 0)
				jobs[n_jobs++] = (struct hrun_job){ .c = s->sel[i],
								    .prof = &faults[k].variant,
								    .fault = faults[k].name,
								    .filter = faults[k].filter };
	}
	return n_jobs;
}

/* Plain must PASS, own fault must fail; the number of problems (printed). */
static size_t selftest_verdicts(const struct setup *s, const struct selftest *t)
{
	const struct hrun_job *jobs = t->jobs;
	size_t problems = 0;

	for (size_t j = 0; j < 2 * s->n_sel; j += 2) {
		const char *id = jobs[j].c->id;

		if (t->st[j] == HREP_SKIP)
			continue;
		if (t->st[j] != HREP_PASS) {
			printf("problem: %s fails without a fault: %s %s\n", id,
			       hrep_status_names[t->st[j]], t->msg[j] ?: "");
			problems++;
		}
		if (t->st[j + 1] == HREP_PASS) {
			printf("problem: %s passes under its own fault %s\n", id,
			       jobs[j + 1].fault);
			problems++;
		}
	}
	return problems;
}

/*
 * The matrix: rows faults, columns cases (numbered; the legend follows). Other faults fail only
 * where targeted; the number of untargeted failures (each printed as a problem).
 */
static size_t selftest_matrix(const struct setup *s, const struct selftest *t,
			      const struct fault *faults, size_t n_faults, size_t n_jobs)
{
	const struct hrun_job *jobs = t->jobs;
	size_t problems = 0;

	printf("\nfault x case matrix (F: fails under its own fault, x: fails, targeted, "
	       "!: fails, untargeted, P: passes under its own fault, .: passes, s: skip, "
	       "blank: other component)\n");
	printf("%-28s", "");
	for (size_t i = 0; i < s->n_sel; i++)
		printf("%zu", (i + 1) % 10);
	printf("\n");
	for (size_t k = 0; k < n_faults; k++) {
		size_t caught = 0;

		printf("%-28s", faults[k].name);
		for (size_t i = 0; i < s->n_sel; i++) {
			char ch = ' ';

			for (size_t j = 0; j < n_jobs; j++) {
				if (jobs[j].c != s->sel[i] || !jobs[j].fault ||
				    strcmp(jobs[j].fault, faults[k].name) != 0)
					continue;
				if (t->st[j] == HREP_SKIP)
					ch = 's';
				else if (strcmp(s->sel[i]->fault, faults[k].name) == 0)
					ch = t->st[j] == HREP_PASS ? 'P' : 'F';
				else if (t->st[j] == HREP_PASS)
					ch = '.';
				else if (fault_targets(&faults[k], s->sel[i], s))
					ch = 'x';
				else
					ch = '!';
				if (ch == '!') {
					problems++;
					fprintf(stderr,
						"problem: fault %s is untargeted: it breaks %s (%s), "
						"none of whose requirements it names: %s\n",
						faults[k].name, s->sel[i]->id,
						hrep_status_names[t->st[j]], t->msg[j] ?: "");
				}
			}
			putchar(ch);
			caught += ch == 'F' || ch == 'x' || ch == '!';
		}
		putchar('\n');
		/* Only over the whole catalogue: a filtered run leaves most faults uncaught. */
		if (!caught && !s->o.n_globs && !s->o.n_mfaults && !s->o.cases && !s->o.own_only)
			fprintf(stderr, "warning: fault %s makes no selected case fail\n",
				faults[k].name);
	}
	return problems;
}

int hrun_cmd_selftest(int argc, char **argv)
{
	struct setup s = { 0 };
	struct selftest t = { .s = &s };
	_cleanup_free_ struct hrun_job *jobs = NULL;
	_cleanup_free_ struct fault *faults = NULL;
	_cleanup_free_ char *reg_path = NULL, *variant_obj = NULL;
	json_t *reg = NULL;
	struct hjson_err err = { 0 };
	size_t n_faults = 0, n_jobs = 0, problems = 0;
	int status = EXIT_USAGE, r;
	const char *fb = getenv("CELLCHECK_FAULTS_BUILD");

	r = parse_opts(argc, argv, true, &s.o);
	if (r)
		goto out;
	if (!s.o.faults_build && !(fb && strcmp(fb, "1") == 0)) {
		setup_error("%s", "selftest needs the reference built with -Dfaults=true; say so "
				  "with --faults-build or CELLCHECK_FAULTS_BUILD=1 (a normal build "
				  "ignores CELLREF_FAULT and every negative control would 'pass')");
		goto out;
	}
	r = setup_load(&s, true);
	if (r)
		goto out;
	if (s.o.faults)
		reg_path = strdup(s.o.faults);
	else if (asprintf(&reg_path, "%s/fixtures/faults.json", srcdir()) < 0)
		reg_path = NULL;
	if (!reg_path || (r = hjson_load_file(reg_path, &reg, &err)) < 0 || !json_is_array(reg)) {
		setup_error("fault registry %s: %s", reg_path ?: "?",
			    err.msg[0] ? err.msg : "expected an array of faults");
		goto out;
	}
	if (asprintf(&variant_obj, "%s/bpf/flowmon_fault_layout.bpf.o", s.prof->builddir) < 0)
		goto out;
	faults = calloc(json_array_size(reg) + s.n_sel + 1, sizeof(*faults));
	if (!faults)
		goto out;
	n_faults = selftest_faults_named(&s, reg, variant_obj, faults);
	if (!s.o.own_only)
		n_faults = selftest_faults_other(&s, reg, variant_obj, faults, n_faults);
	for (size_t k = 0; k < n_faults; k++)
		if (faults[k].filter && !evf_find(faults[k].name)) {
			setup_error(
				"fault registry %s: %s has kind filter but cellcheck-evfilter's "
				"table has no such output fault",
				reg_path, faults[k].name);
			goto out;
		}
	jobs = calloc(s.n_sel * (2 + n_faults) + 1, sizeof(*jobs));
	if (!jobs)
		goto out;
	n_jobs = selftest_jobs(&s, faults, n_faults, jobs);
	t.jobs = jobs;
	t.st = calloc(n_jobs + 1, sizeof(*t.st));
	t.msg = calloc(n_jobs + 1, sizeof(*t.msg));
	if (!t.st || !t.msg)
		goto out;
	t.prog = (struct progress){ .tty = isatty(STDOUT_FILENO), .total = n_jobs };
	install_signals();
	r = pool_run(&s.ctx, jobs, n_jobs, s.o.jobs, selftest_result, &t);
	if (t.prog.tty)
		printf("\r\033[K");
	if (r == -EINTR) {
		interrupted_note("selftest stopped, no verdict");
		status = 128 + interrupted;
		goto out;
	}
	if (r < 0) {
		setup_error("selftest: %s", strerror(-r));
		goto out;
	}

	printf("\nselftest: %zu cases, %zu faults, %zu runs\n", s.n_sel, n_faults, n_jobs);
	problems += selftest_verdicts(&s, &t);
	problems += selftest_matrix(&s, &t, faults, n_faults, n_jobs);
	printf("\ncases:\n");
	for (size_t i = 0; i < s.n_sel; i++)
		printf("%4zu %s (%s)\n", i + 1, s.sel[i]->id, s.sel[i]->fault);
	problems += worker_trouble;
	printf("selftest: %zu problems\n", problems);
	status = problems ? EXIT_FAILED : 0;
out:
	if (t.msg)
		for (size_t j = 0; j < n_jobs; j++)
			free(t.msg[j]);
	free(t.msg);
	free(t.st);
	json_decref(reg);
	setup_free(&s);
	return status;
}
