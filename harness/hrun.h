/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runner: `cellcheck run`, `selftest` and `cleanup` (issue 5, DESIGN.md 5-8).
 *
 *   parent (hrun.c)                       workers (hrun_case.c), one per --jobs
 *   +-----------------------------+  job  +--------------------------------------+
 *   | select, shard, known issues | ----> | features -> SKIP; netns held by fds;  |
 *   | queue of job indices (pipe) |       | start/driver/client/wait/stop steps;  |
 *   | progress, hrep, 5 reports   | <---- | hexp_check; audit; artifacts          |
 *   +-----------------------------+ JSONL +--------------------------------------+
 *
 * A case with an upstream gets harness/upstream/cellcheck_upstream.py in the upstream's netns:
 * the scripted fake DNS server, or unbound with the case's local zone.
 *
 * Workers pull 4-byte job indices from one shared pipe (writes of PIPE_BUF or less are atomic,
 * so every read gets a whole index) and answer with one JSON line per job on a pipe of their
 * own. Every process a worker starts gets PR_SET_PDEATHSIG, workers too, so a SIGKILLed
 * harness takes its whole tree down; namespaces are held only by fds; what is left (temp
 * directories, processes that escaped) is listed in a state file for `cellcheck cleanup`.
 */
#ifndef CELLCHECK_HRUN_H
#define CELLCHECK_HRUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hcase.h"
#include "hdrv.h"
#include "hprobe.h"
#include "hprof.h"
#include "hrep.h"

/* Subcommands, called by cellcheck.c with argv[0] the command word; return the exit status. */
int hrun_cmd_run(int argc, char **argv);
int hrun_cmd_selftest(int argc, char **argv);
int hrun_cmd_cleanup(int argc, char **argv);

/* ---- shared between the runner's files ---- */

/* Read-only for workers: set up by the parent before they fork. */
struct hrun_ctx {
	const char *srcdir;
	const char *run_dir;	 /* this run's temp directory */
	const char *report_dir;	 /* NULL: no artifacts (selftest) */
	const char *profile_arg; /* as given, for reproduce.sh */
	const char *cases_arg;	 /* --cases as given, NULL: the default */
	const char *state_path;	 /* the state file `cleanup` reads; NULL: none */
	char run_id[40];
	bool settle_bpf;     /* --jobs 1: wait for the case's BPF ids to go before judging */
	struct hprobe probe; /* features, when probed */
	bool probed;
	double time_scale;	     /* every deadline's factor, >= 1 (htime.h) */
	const char *time_scale_from; /* "calibrated" or "option" */
	uint64_t calib_round_ns;     /* the calibration's median round, 0 with the option */
};

struct hrun_job {
	const struct hcase *c;
	const struct hprof *prof; /* the profile, or a variant with a fault's BPF object */
	const char *fault;	  /* CELLREF_FAULT for every IUT process; NULL: unset */
	bool filter;		  /* fault is an output fault (evf.h): applied to what the runner
				     reads, CELLREF_FAULT stays unset */
	unsigned int rep;	  /* repetition, from 0 */
};

struct hrun_result {
	enum hrep_status status; /* PASS, FAIL, SKIP or ERROR */
	uint64_t duration_ms;
	char *message; /* FAIL/ERROR: the first problem "(and N more)"; malloc'd or NULL */
	struct hrep_problem *problems; /* every problem (malloc'd messages) */
	size_t n_problems;
	char *reason;	   /* SKIP: why */
	char *artifacts;   /* relative to report_dir, or NULL */
	uint32_t *bpf_ids; /* BPF program/link ids made during the case and still present */
	size_t n_bpf_ids;
};

void hrun_result_clear(struct hrun_result *r);

/* One worker's long-lived state: its driver (started lazily) and the driver's log. */
struct hrun_worker {
	struct hdrv *drv;
	char *drv_log;
	int home_ns; /* the worker's own netns, to come back after reading link counters */
};

void hrun_worker_free(struct hrun_worker *w);

/* Run one job in the calling (worker) process. Always fills ret; -ENOMEM only. */
int hrun_case_exec(const struct hrun_ctx *ctx, struct hrun_worker *w, const struct hrun_job *j,
		   struct hrun_result *ret);

/* Does the case need root (its features say so, or it builds a topology)? */
bool hrun_case_needs_root(const struct hcase *c);

/* Ids of BPF programs and links present now that are above the given marks. */
void hrun_bpf_marks(uint32_t *ret_prog, uint32_t *ret_link);
bool hrun_bpf_id_present(uint32_t id);

/* State file for `cleanup`: one line per process or directory the run may leave. */
int hrun_state_open(const char *run_dir, char **ret_path, int *ret_lock);
void hrun_state_note_proc(const char *state_path, pid_t pid);
void hrun_state_close(const char *state_path, int lock);
/* /proc/PID/stat start time (clock ticks since boot), 0 when the process is gone. */
unsigned long long hrun_proc_start_time(pid_t pid);

/*
 * The case's fake DNS upstream, run in a forked child already inside its netns: listens on
 * up.listen, writes one byte to ready_fd once bound, one byte to count_fd per query, answers
 * by up.rules until killed. Returns only on a setup error (the exit status to use).
 */

/* Remove a directory tree (temp dirs, stale artifacts); 0 or -errno. */
int hrun_rmtree(const char *dir);

/* mkdir -p with mode 0755; 0 or -errno. */
int hrun_mkdir_p(const char *path);

#endif
