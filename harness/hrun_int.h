// SPDX-License-Identifier: Apache-2.0
/*
 * The rooms of the runner, for its own files only (hrun.h is the runner's face): one case run
 * inside a worker (hrun_case.c) uses these.
 *
 *   hrun_case.c   the case: skip reasons, the run's problems and clock, expectations, result
 *     steps/        steps as a table of operations, a file per kind (steps/hstep.h)
 *       hrvars.c      the runner's placeholders ({probe}, {case_dir}, {pid.STEP}, ...)
 *       hsink.c       stalled and shared event sinks
 *     hproc.c       processes: spawn into their own group, wait, kill, outcomes
 *     htopo.c       namespaces, links, bridges, routes
 *     hcapture.c    a pcap of every link end
 *     hupstream.c   the DNS peer: start, stop, statistics
 *     haudit.c      leftovers: fds, children, process groups, namespaces, links, BPF ids
 *     hartifact.c   result.json, message.txt, reproduce.sh, copies
 *     hfile.c       read whole, count lines, quote a tail, copy
 *
 * Arrows point down only; `struct run` is the one state they share. Prefixes: run_ for the
 * run's own operations (hrun_case.c), else the file's name.
 */
#ifndef CELLCHECK_HRUN_INT_H
#define CELLCHECK_HRUN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "hexpect.h"
#include "hrun.h"
#include "util.h"

#define READY_FD 3 /* where a started component finds its ready pipe */
#define MAX_FDS	 1024

/* ---- the run (hrun_case.c) ---- */

struct proc {
	const struct hcase_step *st;
	enum hcase_component comp;
	pid_t pid;
	bool running;
	bool exited; /* ended on its own or after a stop step, not killed at the case's end */
	int status;  /* exit code, or 128+signal */
	char *out_path, *err_path, *ev_path, *rec_path;
	char *out, *err, *ev, *rec; /* collected */
	size_t out_len, err_len, ev_len, rec_len;
	int stdin_w; /* write end of its stdin pipe ("stdin_pipe"), or -1 */
	int sink_fd; /* stalled sink: the harness's read end of the FIFO, or -1 */
	char *fifo_path;
	pid_t drain_pid; /* the process copying a stalled sink into ev_path, once drained */
	pid_t noise_pid; /* the other writer of a shared sink */
	int busy_fd;	 /* listeners.tcp_busy: the harness's own listener, or -1 */
};

struct run {
	const struct hrun_ctx *ctx;
	struct hrun_worker *w;
	const struct hrun_job *j;
	const struct hcase *c;
	char *dir; /* the case's temp dir */
	int *ns_fd;
	int *cap_fd;	/* AF_PACKET capture per link end, 2 per link, then lo per namespace */
	int aux_ns[16]; /* throwaway namespaces holding the peers of dummy links */
	size_t n_aux_ns;
	uint64_t deadline_ns;
	struct proc *procs;
	size_t n_procs;
	pid_t *pgids; /* every process group the case started (start steps and clients) */
	size_t n_pgids;
	struct hobs_resp *resps;
	size_t n_resps;
	json_t *vars;
	char *upstream_log;	    /* the upstream's log (its last line counts the queries) */
	pid_t upstream_pid;	    /* 0: none, or stopped */
	enum hrep_status status;    /* PASS until something says otherwise: the worst problem */
	struct hrep_problem *probs; /* every problem, in the order found */
	size_t n_probs;
	bool timeout_noted; /* the TIMEOUT problem is listed once */
	uint64_t drv_log_off;
	json_t *full; /* problem index -> {"expected", "got"} in full, for result.json */
};

static inline uint64_t run_now_ns(void)
{
	return util_now_monotonic_ns();
}

/* CLOCK_REALTIME in ns: the window an event's time must fall in (EVT-ENV-008). */
static inline uint64_t run_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Add a problem (SPEC CHK-RUN-004): a case reports every problem it finds, and its status is
 * the worst (ERROR over FAIL).
 */
void run_verdict(struct run *r, enum hrep_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A bound the harness waits up to, times the run's factor (htime.h). */
uint32_t run_scaled(const struct run *r, uint32_t ms);
/* Whether the case's deadline passed; the TIMEOUT problem is added once. */
bool run_timed_out(struct run *r);
/* Milliseconds left before the case's deadline, capped by cap_ms scaled (0: no cap). */
int run_remaining_ms(struct run *r, uint32_t cap_ms);
/* A runner value for matchers ("var:NAME"), as the decimal string of v. */
void run_set_num(json_t *vars, const char *k, uint64_t v);

/* ---- processes (hproc.c) ---- */

/*
 * A process outcome as wait_exit() reports it: the exit code 0..255, or HSTATUS_SIGNALED | N
 * for a death by signal N, so "exit(143)" and "killed by SIGTERM" stay apart (SPEC CHK-RUN-014).
 */
#define HSTATUS_SIGNALED 0x10000

struct hproc_spawn_opts {
	char **argv;
	int netns_fd; /* setns before exec; -1: stay */
	const char *stdin_path;
	int stdin_fd; /* a pipe's read end instead of stdin_path; -1: none */
	const char *out_path;
	const char *err_path;
	int ready_wfd; /* dup'ed to READY_FD; -1: none */
	int lis_fd[4]; /* dup'ed to fds 4 to 7 ({udp_fd}, {tcp_fd}, {udp_fd2}, {tcp_fd2}); -1: none
			*/
	const char *fault;
	char **env;		/* "NAME=VALUE" added to the environment, or NULL */
	const uint32_t *groups; /* setgroups(2) with these when has_groups */
	int mnt_fd;		/* setns into this mount namespace first; -1: stay */
	uint64_t cap_inh;	/* added to the inheritable set before exec */
	bool mount_ns;		/* or: a mount namespace of its own, made like this */
	bool uts_ns;		/* a UTS namespace of its own */
	bool mount_shared;
	char **mount_type, **mount_source, **mount_target;
	size_t n_groups;
	bool has_groups;
	bool has_user;
	uid_t uid;
	gid_t gid;
};

int hproc_pidfd_open(pid_t pid);
/* The shell's number for an outcome (128 + N for signal N): what expect_exit compares with. */
int hproc_status_code(int st);
/* "exit status 2" or "killed by signal 15 (SIGTERM)". */
const char *hproc_status_text(int st, char buf[80]);
/* What a case's expect_exit asks for, in the same words. */
const char *hproc_expected_text(int want, char buf[96]);
/* Wait for pid to exit within ms; true and *status (see HSTATUS_SIGNALED) when it did. */
bool hproc_wait_exit(pid_t pid, int ms, int *status);
/* SIGKILL a group and reap what of it is ours (the subreaper makes its orphans ours). */
void hproc_kill_group(pid_t pgid);
/* A child in a group of its own: the audit and the timeout address whole groups. */
void hproc_note_group(struct run *r, pid_t pid);
/* fork+exec in a process group of its own; an exec failure comes back as its -errno. */
int hproc_spawn(struct run *r, const struct hproc_spawn_opts *o, pid_t *ret);
/* A child of the runner in a group of its own, noted like every start: 0 in the child. */
pid_t hproc_fork_helper(struct run *r);
/* The process a start step of that name started, or NULL. */
struct proc *hproc_find(struct run *r, const char *name);

/* ---- files (hfile.c) ---- */

/* A whole file, NUL-terminated (malloc'd), or NULL. */
char *hfile_slurp(const char *path, size_t *ret_len);
/* Copy a regular file from offset on; 0 or -errno. */
int hfile_copy(const char *from, const char *to, uint64_t offset);
/* The last line or so of a file, quoted on one line, for a message: "(empty)" if none. */
const char *hfile_tail(const char *path, char *buf, size_t size);

/* ---- topology (htopo.c) ---- */

/* The index of a topology namespace by name, or -1. */
int htopo_ns_index(const struct hcase *c, const char *name);
/* The fd of the step's namespace, or -1 (the worker's own). */
int htopo_step_ns_fd(struct run *r, const struct hcase_step *st);
/* "/proc/PID/fd/N" of the step's namespace, or the worker's own (malloc'd). */
char *htopo_netns_path(struct run *r, const struct hcase_step *st);
/* Namespaces, links, routes; an ERROR problem names what failed. */
int htopo_up(struct run *r);
/* Close the case's namespaces, noting each one's inode for the audit (inos[i], 0: none). */
void htopo_down(struct run *r, ino_t *inos);
/* link.NS.IF.rx_packets / tx_packets of every link end, as runner values. */
void htopo_link_counters(struct run *r);

/* ---- capture (hcapture.c) ---- */

void hcapture_start(struct run *r);
void hcapture_stop(struct run *r);

/* ---- upstream (hupstream.c) ---- */

int hupstream_start(struct run *r);
/* SIGTERM: the upstream writes its summary line; its "queries", or UINT64_MAX. */
uint64_t hupstream_stop(struct run *r);

/* ---- placeholders (hrvars.c) ---- */

/* The runner's placeholders for one step (hrvars.c). */
struct hrvars {
	const char *names[80];
	const char *values[80];
	char *owned[80];
	size_t n, n_owned;
};

void hrvars_build(struct run *r, const struct hcase_step *st, struct hrvars *rv);
void hrvars_free(struct hrvars *rv);
/* Replace the runner placeholders in one word; the caller frees. */
char *hrvars_expand(const struct hrvars *rv, const char *w);

/* ---- sinks (hsink.c) ---- */

int hsink_stalled(struct run *r, struct proc *p);
pid_t hsink_noise_start(struct run *r, const char *path);
void hsink_drain(struct run *r, struct proc *p);
void hsink_finish(struct run *r, struct proc *p);
void hsink_collect(struct proc *p);
/*
 * Under an output fault (selftest, fault kind "filter"), what the case reads of an IUT's events
 * or stdout passes through the fault's line transformation (harness/filter/evf.h) first; the
 * buffer is replaced in place. Without one, nothing changes. 0 or -ENOMEM.
 */
int hsink_filter(const struct run *r, char **buf, size_t *len);
/* An event file as the case reads it (hsink_filter applied); malloc'd, or NULL. */
char *hsink_read(const struct run *r, const char *path, size_t *ret_len);
/* Its number of lines. */
size_t hsink_lines(const struct run *r, const char *path);

/* ---- steps (steps/hstep.c; a file per kind, steps/hstep.h) ---- */

/* The worker's driver process, started at its first driver step (steps/step_driver.c). */
int hstep_driver_ensure(const struct hrun_ctx *ctx, struct hrun_worker *w);
/* A driver or client step's response, under its name, for the expectations (result: taken). */
void hstep_add_resp(struct run *r, const char *name, json_t *result);
/* Every step in order until the first problem or the deadline. */
void hstep_run_all(struct run *r);

/* ---- audit (haudit.c) ---- */

/* What the worker held before the case, to compare with after it. */
struct haudit {
	int *fds_before, *fds_after;
	size_t n_before;
	char *links_before; /* " lo eth0 ... " */
	uint32_t prog_mark, link_mark;
	ino_t *inos; /* the case's namespaces as they closed (htopo_down) */
};

int haudit_alloc(struct haudit *a, size_t n_ns);
/* The fds, links and BPF ids before the case. */
void haudit_begin(struct haudit *a);
/* Every leftover an ERROR naming it; BPF ids made during the case into ret->bpf_ids. */
void haudit_end(struct run *r, struct haudit *a, struct hrun_result *ret);
void haudit_free(struct haudit *a);

/* ---- artifacts (hartifact.c) ---- */

/* Copies and reports under REPORT_DIR/artifacts/ID; the relative path (malloc'd) or NULL. */
char *hartifact_keep(struct run *r);

#endif
