/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cell's processes: the workload cloned into its namespaces, and the helper workers (DNS
 * proxy, flow monitor) re-executed from the supervisor's own image. SPEC.md chapter 9.
 *
 *   supervisor                               cell (clone3, new namespaces, CLONE_PIDFD)
 *   cell_clone() ---------------------------> waits on the sync pipe (PDEATHSIG=KILL)
 *   maps, cgroup, affinity, network, workers
 *   cell_release() -- 1 byte --------------->  cgroupns, / private, read-only root, /dev,
 *                                              resolv.conf, tmpfs places, /proc, masks,
 *                                              bind mounts, pivot_root (cellfs.h),
 *                                              hostname, rlimits, fds 0-2 only, setsid,
 *                                              capabilities, no_new_privs, exec
 *   cell_read_reports() <-- error pipe ------  {kind, step, errno} records; EOF = exec done
 *
 * Everything the child needs is prepared before clone: between clone and exec the child only
 * makes system calls (the supervisor has threads, so no malloc, no stdio there).
 */
#ifndef CELLREF_CELL_H
#define CELLREF_CELL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cellfs.h"
#include "cellspec.h"

enum cell_step {
	CELL_STEP_EXEC = 0,
	CELL_STEP_SYNC,
	CELL_STEP_CGROUPNS,
	CELL_STEP_MOUNT_PRIVATE,
	CELL_STEP_ROOT_READONLY,
	CELL_STEP_DEV,
	CELL_STEP_RESOLV_CONF,
	CELL_STEP_TMPFS,
	CELL_STEP_PROC_MOUNT,
	CELL_STEP_MASKED_PATHS,
	CELL_STEP_MOUNTS,
	CELL_STEP_PIVOT_ROOT,
	CELL_STEP_HOSTNAME,
	CELL_STEP_RLIMIT,
	CELL_STEP_CLOSE_FDS,
	CELL_STEP_SETSID,
	CELL_STEP_CAP_BOUND,
	CELL_STEP_IDENTITY,
	CELL_STEP_CAPS,
	CELL_STEP_NO_NEW_PRIVS,
	CELL_STEP_COUNT_
};

enum cell_report_kind {
	CELL_REPORT_DEGRADED = 1, /* the child went on without this step */
	CELL_REPORT_FATAL = 2,	  /* the child stopped before exec */
	CELL_REPORT_EXEC = 3,	  /* execve failed */
};

struct cell_report {
	int32_t kind;
	int32_t step;
	int32_t err; /* positive errno */
};

struct cell_child_cfg {
	unsigned long ns_flags; /* CLONE_NEW*; CLONE_NEWCGROUP is unshared after the cgroup move */
	char *const *argv;
	char *const *envp;
	const char *hostname; /* NULL: leave it */
	const struct cellspec_rlimit *rlimits;
	size_t n_rlimits;
	uid_t uid;
	gid_t gid;
	uint64_t cap_keep;
	int cap_last; /* /proc/sys/kernel/cap_last_cap */
	bool no_new_privs;
	int resolv_fd; /* cell_file_mount()'s tmpfs: its resolv.conf goes over /etc's, or -1 */
	/* With a rootfs, under it: where that tmpfs is staged and the file it covers. */
	const char *resolv_stage, *resolv_target;
	const struct cellfs_cfg *fs; /* the filesystem view, with a mount namespace */
	bool strict;
	bool stdout_to_stderr; /* the supervisor's stdout carries the events */
};

struct cell_proc {
	pid_t pid;
	int pidfd;
	int sync_fd;   /* write end; closing it without a byte kills the child's setup */
	int report_fd; /* read end of the CLOEXEC error pipe */
};

const char *cell_step_name(int step);

/*
 * A detached, read-only private tmpfs holding one file @name with @text, for the child to
 * put that file over a path of its mount namespace. The mount fd, or -errno.
 */
int cell_file_mount(const char *name, const char *text);

/* Clone the child into its namespaces; it blocks until cell_release(). 0 or -errno. */
int cell_clone(const struct cell_child_cfg *cfg, struct cell_proc *ret);
/* Let the child go on to exec; ids_unmapped: the maps failed, it keeps the ids it has. */
int cell_release(struct cell_proc *p, bool ids_unmapped);
/*
 * Read the child's reports until the error pipe closes (exec happened, or the child died).
 * Each report goes to fn. 0, or -errno of reading.
 */
int cell_read_reports(struct cell_proc *p, void (*fn)(void *ctx, const struct cell_report *r),
		      void *ctx);
/* Signal through the pidfd: a recycled PID can never be hit. */
int cell_signal(const struct cell_proc *p, int sig);
/* Reap without blocking: 1 and *info when the child exited, 0 while it runs, -errno. */
int cell_try_wait(struct cell_proc *p, siginfo_t *info);
void cell_proc_close(struct cell_proc *p);

/*
 * A worker: `cellref SUBCOMMAND --args-fd N` re-executed through exe_fd (an O_PATH fd on
 * /proc/self/exe), its remaining arguments in a sealed memfd, fds[i] inherited as fd 3 + i.
 * It dies with the supervisor (PDEATHSIG). *args_fd_out is the number the memfd gets.
 */
struct cell_worker {
	pid_t pid;
	int pidfd;
};

int cell_worker_spawn(int exe_fd, const char *subcommand, const char *const *args, size_t nargs,
		      const int *fds, size_t nfds, struct cell_worker *ret);
int cell_worker_signal(const struct cell_worker *w, int sig);
/* Wait up to timeout_ms, then SIGKILL and reap. The exit status as waitid() gave it. */
int cell_worker_stop(struct cell_worker *w, unsigned int timeout_ms, siginfo_t *info);

/* Arguments from a memfd written by cell_worker_spawn (NUL-separated). */
int cell_args_from_fd(int fd, int *argc, char ***argv);

#endif
