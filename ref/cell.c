// SPDX-License-Identifier: Apache-2.0
#include "cell.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *const step_names[CELL_STEP_COUNT_] = {
	[CELL_STEP_EXEC] = "exec",
	[CELL_STEP_SYNC] = "sync",
	[CELL_STEP_CGROUPNS] = "cgroup_namespace",
	[CELL_STEP_MOUNT_PRIVATE] = "mount_private",
	[CELL_STEP_ROOT_READONLY] = "root_readonly",
	[CELL_STEP_DEV] = "dev",
	[CELL_STEP_RESOLV_CONF] = "resolv_conf",
	[CELL_STEP_TMPFS] = "tmpfs",
	[CELL_STEP_PROC_MOUNT] = "proc_mount",
	[CELL_STEP_MASKED_PATHS] = "masked_paths",
	[CELL_STEP_MOUNTS] = "mounts",
	[CELL_STEP_PIVOT_ROOT] = "pivot_root",
	[CELL_STEP_HOSTNAME] = "hostname",
	[CELL_STEP_RLIMIT] = "rlimits",
	[CELL_STEP_CLOSE_FDS] = "close_fds",
	[CELL_STEP_SETSID] = "setsid",
	[CELL_STEP_CAP_BOUND] = "capability_bounding_set",
	[CELL_STEP_IDENTITY] = "identity",
	[CELL_STEP_CAPS] = "capabilities",
	[CELL_STEP_NO_NEW_PRIVS] = "no_new_privs",
};

const char *cell_step_name(int step)
{
	if (step < 0 || step >= CELL_STEP_COUNT_)
		return "unknown";
	return step_names[step];
}

/* ---- the child: system calls only ---------------------------------------------------------- */

/*
 * Negative controls of the child path (fault.h, fixtures/faults.json), one hook per step
 * boundary. A step in skip_fault makes none of its system calls; a step in wrong_fault does
 * the one wrong thing its fault describes, at the boundary where the hook stands.
 */
static const char *const skip_fault[CELL_STEP_COUNT_] = {
	[CELL_STEP_MOUNT_PRIVATE] = "sup.mount_not_private", /* host's propagation */
	[CELL_STEP_HOSTNAME] = "sup.hostname_skipped",
	[CELL_STEP_RLIMIT] = "sup.rlimits_skipped",  /* the supervisor's limits */
	[CELL_STEP_CAP_BOUND] = "sup.bounding_kept", /* the bounding set stays full */
	[CELL_STEP_NO_NEW_PRIVS] = "sup.nnp_skipped",
};

static const char *const wrong_fault[CELL_STEP_COUNT_] = {
	[CELL_STEP_SYNC] = "sup.sync_eof_runs",		   /* no guard against the parent's death */
	[CELL_STEP_PROC_MOUNT] = "sup.proc_mount_fatal",   /* fatal, not a degradation */
	[CELL_STEP_MOUNTS] = "sup.mounts_failure_ignored", /* a failed bind mount left out */
	[CELL_STEP_HOSTNAME] = "sup.hostname_after_identity", /* taken after the identity */
	[CELL_STEP_CLOSE_FDS] = "sup.fd_leak",		      /* fd 0 copied onto fd 5 */
	[CELL_STEP_IDENTITY] = "sup.gid_not_set",	      /* no setresgid */
	[CELL_STEP_EXEC] = "sup.exec_supervisor_path",	      /* the supervisor's PATH searched */
};

#define fault_skip(step)  FAULT_HOOK(skip_fault, step)
#define fault_wrong(step) FAULT_HOOK(wrong_fault, step)

/* The error pipe sits on fd 3 once the fds are cleaned up; before that, wherever it was. */
static int child_report_fd;

static void child_report(int kind, int step, int err)
{
	struct cell_report r = { .kind = kind, .step = step, .err = err };

	/* A single write below PIPE_BUF is atomic; the parent reads whole records. */
	(void)!write(child_report_fd, &r, sizeof(r));
}

__attribute__((noreturn)) static void child_fatal(int step, int err)
{
	child_report(CELL_REPORT_FATAL, step, err);
	_exit(126);
}

/*
 * The supervisor blocks the signals it forwards and ignores SIGPIPE, and whoever started it may
 * have ignored others (nohup: SIGHUP): an ignored signal survives exec, so every disposition goes
 * back to the default and the workload starts as a fresh process would.
 */
static void child_default_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
}

/* Wait for the release byte: 'G' to go on, 'U' to go on with the unmapped ids. */
static char child_sync(int sync_fd)
{
	char go;

	/* A supervisor that dies before the release (or after) takes the cell with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fatal(CELL_STEP_SYNC, errno);
	child_default_signals();
	if (read(sync_fd, &go, 1) != 1)
		_exit(125); /* the supervisor gave up on the setup: nothing to report to */
	close(sync_fd);
	return go;
}

/* sup.sync_eof_runs: no parent-death signal, and end of file counts as the release. */
static char child_sync_unguarded(int sync_fd)
{
	char go = 'G';

	child_default_signals();
	(void)!read(sync_fd, &go, 1);
	close(sync_fd);
	return go;
}

static void child_cgroupns(const struct cell_child_cfg *c)
{
	if ((c->ns_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		child_fatal(CELL_STEP_CGROUPNS, errno);
}

static void child_hostname(const struct cell_child_cfg *c)
{
	if (fault_skip(CELL_STEP_HOSTNAME))
		return;
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		child_fatal(CELL_STEP_HOSTNAME, errno);
}

static void child_rlimits(const struct cell_child_cfg *c)
{
	if (fault_skip(CELL_STEP_RLIMIT))
		return;
	for (size_t i = 0; i < c->n_rlimits; i++) {
		struct rlimit rl = { .rlim_cur = c->rlimits[i].soft,
				     .rlim_max = c->rlimits[i].hard };

		if (setrlimit(c->rlimits[i].resource, &rl) < 0)
			child_fatal(CELL_STEP_RLIMIT, errno);
	}
}

static void child_close_fds(const struct cell_child_cfg *c, int report_fd)
{
	/* With the events on stdout, the workload writes to stderr: the JSONL stays clean. */
	if (c->stdout_to_stderr && dup2(2, 1) < 0)
		child_fatal(CELL_STEP_CLOSE_FDS, errno);
	/* Park the error pipe on 3 (close-on-exec), then close everything above it. */
	if (report_fd != 3) {
		if (dup3(report_fd, 3, O_CLOEXEC) < 0)
			child_fatal(CELL_STEP_CLOSE_FDS, errno);
		child_report_fd = 3;
	}
	if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
		if (errno != ENOSYS)
			child_fatal(CELL_STEP_CLOSE_FDS, errno);
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	}
}

/* sup.fd_leak: a descriptor the workload inherits besides 0, 1, 2. */
static void child_leak_fd(void)
{
	if (fcntl(0, F_DUPFD, 5) < 0)
		child_fatal(CELL_STEP_CLOSE_FDS, errno);
}

static void child_setsid(void)
{
	if (setsid() < 0)
		child_fatal(CELL_STEP_SETSID, errno);
}

/* Bounding set first: dropping it needs CAP_SETPCAP, which the identity change ends. */
static void child_cap_bound(const struct cell_child_cfg *c)
{
	if (fault_skip(CELL_STEP_CAP_BOUND))
		return;
	for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
		if (!((c->cap_keep >> cap) & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			child_fatal(CELL_STEP_CAP_BOUND, errno);
	}
}

/*
 * The identity step in three system calls. Raw ones: glibc's wrappers broadcast the change to
 * every thread it knows of, and this clone of a threaded process would wait forever for threads
 * it does not have.
 */
static void child_groups(const struct cell_child_cfg *c)
{
	/* In a user namespace setgroups is denied (we wrote "deny"): the list is already empty. */
	if (!(c->ns_flags & CLONE_NEWUSER) && syscall(SYS_setgroups, 0, NULL) < 0)
		child_fatal(CELL_STEP_IDENTITY, errno);
}

static void child_gid(const struct cell_child_cfg *c)
{
	if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
		child_fatal(CELL_STEP_IDENTITY, errno);
}

static void child_uid(const struct cell_child_cfg *c)
{
	if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
		child_fatal(CELL_STEP_IDENTITY, errno);
}

/* A new UID clears the parent-death signal: the cell must still die with the supervisor. */
static void child_rearm_pdeathsig(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fatal(CELL_STEP_IDENTITY, errno);
}

/* The supervisor may have died before the signal was armed again: then nobody is left. */
static void child_check_parent(pid_t parent_at_start)
{
	if (getppid() != parent_at_start)
		_exit(125);
}

static void child_caps(const struct cell_child_cfg *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	uint32_t lo = (uint32_t)c->cap_keep, hi = (uint32_t)(c->cap_keep >> 32);

	d[0].effective = d[0].permitted = d[0].inheritable = lo;
	d[1].effective = d[1].permitted = d[1].inheritable = hi;
	if (syscall(SYS_capset, &h, d) < 0)
		child_fatal(CELL_STEP_CAPS, errno);
	/* A non-root workload keeps its capabilities across exec only as ambient ones. */
	if (c->uid != 0) {
		for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
			if ((c->cap_keep >> cap) & 1 &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
				child_fatal(CELL_STEP_CAPS, errno);
		}
	}
}

static void child_no_new_privs(const struct cell_child_cfg *c)
{
	if (fault_skip(CELL_STEP_NO_NEW_PRIVS))
		return;
	if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fatal(CELL_STEP_NO_NEW_PRIVS, errno);
}

/*
 * Put file @name of the detached tmpfs @fs_fd over @target. Before 6.15 the kernel refuses to
 * clone anything out of a mount that is in no namespace (open_tree(OPEN_TREE_CLONE) and bind
 * mounts give EINVAL on 6.1 and 6.12), so the tmpfs is attached for a moment on @stage (the
 * target's own directory, which exists: no writable place needed), the file is cloned from
 * there, the stage is detached again, and the clone goes onto the target held by an O_PATH fd.
 * The clone keeps the tmpfs mount's read-only flag. One path for every kernel.
 */
static int child_file_mount(int fs_fd, const char *name, const char *stage, const char *target)
{
	_cleanup_close_ int tgt = open(target, O_PATH | O_CLOEXEC);
	_cleanup_close_ int stage_fd = -1, tree = -1;
	int err = 0;

	if (tgt < 0)
		return -errno;
	stage_fd = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (stage_fd < 0 || move_mount(fs_fd, "", stage_fd, "",
				       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return -errno;
	/*
	 * Attached, the tmpfs is a mount of this namespace: its file can be cloned. By path from
	 * the root, so the lookup crosses onto the new mount (stage_fd is the directory under it).
	 */
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", stage, name);
	tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		err = -errno;
	/* Off the stage whatever happened: the workload never sees the tmpfs itself. */
	if (umount2(stage, MNT_DETACH) < 0 && !err)
		err = -errno;
	if (err)
		return err;
	if (move_mount(tree, "", tgt, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static void child_mount_private(void)
{
	if (fault_skip(CELL_STEP_MOUNT_PRIVATE))
		return;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fatal(CELL_STEP_MOUNT_PRIVATE, errno);
}

/* A /proc that shows the cell's own PID namespace; without it ps lies. */
static void child_proc(const struct cell_child_cfg *c)
{
	int err = cellfs_proc(c->fs);

	if (!err)
		return;
	if (fault_wrong(CELL_STEP_PROC_MOUNT))
		child_fatal(CELL_STEP_PROC_MOUNT, -err);
	/* In strict mode the supervisor turns the degradation into the failure. */
	child_report(CELL_REPORT_DEGRADED, CELL_STEP_PROC_MOUNT, -err);
	if (c->strict)
		_exit(126);
}

/* Steps mount_private to pivot_root: the cell's own filesystem view (cellfs.h). */
static void child_fs(const struct cell_child_cfg *c, bool ids_mapped)
{
	struct cellfs_state st;
	int err;

	cellfs_state_init(&st);
	child_mount_private();
	/* What the cell gets from the host is taken while the host's view is still whole. */
	err = cellfs_clone_sources(c->fs, &st);
	if (err)
		child_fatal(CELL_STEP_MOUNTS, -err);
	err = cellfs_clone_devices(&st) ?: cellfs_root(c->fs, &st);
	if (err)
		child_fatal(CELL_STEP_ROOT_READONLY, -err);
	err = cellfs_dev(c->fs, &st);
	if (err)
		child_fatal(CELL_STEP_DEV, -err);
	/* The read-only file of the parent's detached tmpfs goes over the host's file. */
	if (c->resolv_fd >= 0) {
		err = child_file_mount(c->resolv_fd, "resolv.conf", c->resolv_stage,
				       c->resolv_target);
		if (err)
			child_fatal(CELL_STEP_RESOLV_CONF, -err);
	}
	err = cellfs_tmpfs(c->fs, &st, ids_mapped);
	if (err)
		child_fatal(CELL_STEP_TMPFS, -err);
	if (c->fs->new_proc)
		child_proc(c);
	err = cellfs_mask(c->fs, &st);
	if (err)
		child_fatal(CELL_STEP_MASKED_PATHS, -err);
	err = cellfs_binds(c->fs, &st);
	if (err && fault_wrong(CELL_STEP_MOUNTS))
		err = 0;
	if (err)
		child_fatal(CELL_STEP_MOUNTS, -err);
	if (c->fs->rootfs) {
		err = cellfs_pivot(&st);
		if (err)
			child_fatal(CELL_STEP_PIVOT_ROOT, -err);
	}
	/* The fds of st go with close_fds, like every other descriptor but 0 to 2. */
}

/*
 * The cell's process from clone to exec, one step after the other in the order of SPEC's
 * SUP-CHILD steps; every failure is reported with its step and ends the process (child_fatal).
 * The fault hooks stand between the steps (see skip_fault and wrong_fault above).
 */
__attribute__((noreturn)) static void child_main(const struct cell_child_cfg *c, int sync_fd,
						 int report_fd)
{
	pid_t parent_at_start = getppid(); /* 0 inside a new PID namespace: still comparable */
	char go;

	child_report_fd = report_fd;
	if (fault_wrong(CELL_STEP_SYNC))
		go = child_sync_unguarded(sync_fd);
	else
		go = child_sync(sync_fd);
	/* 'U': the id maps could not be written (a degradation): keep the unmapped ids. */
	bool keep_ids = go == 'U';

	child_cgroupns(c);
	if (c->ns_flags & CLONE_NEWNS)
		child_fs(c, !keep_ids);
	if (!fault_wrong(CELL_STEP_HOSTNAME))
		child_hostname(c);
	child_rlimits(c);
	child_close_fds(c, report_fd);
	if (fault_wrong(CELL_STEP_CLOSE_FDS))
		child_leak_fd();
	child_setsid();
	child_cap_bound(c);
	if (c->uid != 0 && c->cap_keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		child_fatal(CELL_STEP_IDENTITY, errno);
	if (!keep_ids) {
		child_groups(c);
		if (!fault_wrong(CELL_STEP_IDENTITY))
			child_gid(c);
		child_uid(c);
	}
	child_rearm_pdeathsig();
	if (!fault_wrong(CELL_STEP_SYNC))
		child_check_parent(parent_at_start);
	if (fault_wrong(CELL_STEP_HOSTNAME))
		child_hostname(c);
	child_caps(c);
	child_no_new_privs(c);

	/*
	 * execvpe() searches the PATH of the caller's environment, not of the one it passes on:
	 * the command is looked up in the cell's PATH (SUP-CHILD-008). This clone has its own
	 * copy of memory, so replacing environ touches nothing of the supervisor.
	 */
	if (!fault_wrong(CELL_STEP_EXEC))
		environ = (char **)c->envp;
	execvpe(c->argv[0], c->argv, c->envp);
	child_report(CELL_REPORT_EXEC, CELL_STEP_EXEC, errno);
	_exit(127);
}

/* ---- the parent ------------------------------------------------------------------------------ */

static pid_t clone_pidfd(unsigned long flags, int *pidfd)
{
	struct clone_args a = {
		.flags = flags | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
	};
	long r = syscall(SYS_clone3, &a, sizeof(a));

	/* clone3 is 5.3; the pidfd flag on plain clone is 5.2. */
	if (r < 0 && errno == ENOSYS)
		r = syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, NULL, pidfd, NULL, NULL);
	return (pid_t)r;
}

/*
 * Fault only (sup.hostname_on_host): whether we are in the machine's UTS namespace, whose inode
 * is the kernel's fixed PROC_UTS_INIT_INO (include/linux/proc_ns.h).
 */
static bool uts_is_init(void)
{
	struct stat self;

	return stat("/proc/self/ns/uts", &self) < 0 || self.st_ino == 0xEFFFFFFEU;
}

int cell_clone(const struct cell_child_cfg *cfg, struct cell_proc *ret)
{
	int sync[2], rep[2], pidfd = -1;
	pid_t pid;

	/* sup.hostname_on_host: our own namespace takes the cell's name too (never PID 1's) */
	if (cfg->hostname && FAULT("sup.hostname_on_host") && !uts_is_init())
		(void)sethostname(cfg->hostname, strlen(cfg->hostname));
	if (pipe2(sync, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(rep, O_CLOEXEC) < 0) {
		int err = -errno;

		close(sync[0]);
		close(sync[1]);
		return err;
	}
	pid = clone_pidfd(cfg->ns_flags & ~(unsigned long)CLONE_NEWCGROUP, &pidfd);
	if (pid == 0) {
		close(sync[1]);
		close(rep[0]);
		child_main(cfg, sync[0], rep[1]);
	}
	int err = pid < 0 ? -errno : 0;

	close(sync[0]);
	close(rep[1]);
	if (err) {
		close(sync[1]);
		close(rep[0]);
		return err;
	}
	ret->pid = pid;
	ret->pidfd = pidfd;
	ret->sync_fd = sync[1];
	ret->report_fd = rep[0];
	return 0;
}

int cell_release(struct cell_proc *p, bool ids_unmapped)
{
	int err = util_write_all(p->sync_fd, ids_unmapped ? "U" : "G", 1);

	util_closep(&p->sync_fd);
	p->sync_fd = -1;
	return err;
}

int cell_read_reports(struct cell_proc *p, void (*fn)(void *ctx, const struct cell_report *r),
		      void *ctx)
{
	struct cell_report r;
	ssize_t n;

	for (;;) {
		n = util_read_full(p->report_fd, &r, sizeof(r));
		if (n == 0)
			break;
		if (n < 0)
			return (int)n;
		if (n == (ssize_t)sizeof(r))
			fn(ctx, &r);
		else
			break;
	}
	util_closep(&p->report_fd);
	p->report_fd = -1;
	return 0;
}

int cell_signal(const struct cell_proc *p, int sig)
{
	return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static int try_wait_pidfd(int pidfd, siginfo_t *info)
{
	memset(info, 0, sizeof(*info));
	if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, info, WEXITED | WNOHANG) < 0)
		return -errno;
	return info->si_pid != 0;
}

int cell_try_wait(struct cell_proc *p, siginfo_t *info)
{
	return try_wait_pidfd(p->pidfd, info);
}

void cell_proc_close(struct cell_proc *p)
{
	util_closep(&p->pidfd);
	util_closep(&p->sync_fd);
	util_closep(&p->report_fd);
	p->pidfd = p->sync_fd = p->report_fd = -1;
}

int cell_file_mount(const char *name, const char *text)
{
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -1, file = -1;
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	int err;

	/*
	 * A tmpfs of its own, never attached anywhere: bind mounts of a memfd are refused
	 * (EINVAL, its internal mount is in no namespace), a detached file mount is not.
	 */
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0)
		return -errno;
	file = openat(mnt, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (file < 0)
		return -errno;
	err = util_write_all(file, text, strlen(text));
	if (err)
		return err;
	/*
	 * Read-only before the cell sees it; the file is cloned out of this mount in the cell
	 * (child_file_mount()), and a clone keeps the flag. Detached mounts take mount_setattr()
	 * on every supported kernel (5.12+), unlike open_tree(OPEN_TREE_CLONE) before 6.15.
	 */
	util_closep(&file); /* an open writer makes the read-only switch EBUSY */
	/* sup.resolv_writable: the file stays writable */
	if (FAULT("sup.resolv_writable"))
		return TAKE_FD(mnt);
	if (mount_setattr(mnt, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return -errno;
	return TAKE_FD(mnt);
}

/* ---- workers --------------------------------------------------------------------------------- */

static int args_memfd(const char *const *args, size_t nargs)
{
	_cleanup_close_ int fd = memfd_create("cellref-args", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int err;

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < nargs; i++) {
		err = util_write_all(fd, args[i], strlen(args[i]) + 1);
		if (err)
			return err;
	}
	/* The worker reads a configuration nobody can change under it. */
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	/* sup.args_unsealed: the memfd goes to the worker without any seal */
	if (FAULT("sup.args_unsealed"))
		return TAKE_FD(fd);
	if (fcntl(fd, F_ADD_SEALS, seals) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static void worker_pdeathsig(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(126);
}

int cell_worker_spawn(int exe_fd, const char *subcommand, const char *const *args, size_t nargs,
		      const int *fds, size_t nfds, struct cell_worker *ret)
{
	_cleanup_close_ int mfd = args_memfd(args, nargs);
	char fdnum[16];
	int pidfd = -1;
	pid_t pid;

	if (mfd < 0)
		return mfd;
	if (nfds > 16)
		return -EINVAL;
	snprintf(fdnum, sizeof(fdnum), "%zu", 3 + nfds);
	char *argv[] = { "cellref", (char *)subcommand, "--args-fd", fdnum, NULL };
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	/* Sanitizer builds need their options in the worker too; a normal build sees none. */
	char *asan = getenv("ASAN_OPTIONS"), *ubsan = getenv("UBSAN_OPTIONS");
	char asan_env[512], ubsan_env[512];
	char *envp_san[5] = { envp[0], NULL, NULL, NULL, NULL };
	int k = 1;

	/*
	 * Faults build only: the one classifier fault a supervisor case controls (SUP-NET-016's
	 * negative control) reaches the monitor worker, which reads CELLREF_FAULT like any IUT.
	 */
	if (FAULT("flow.udplite6_uncounted"))
		envp_san[k++] = "CELLREF_FAULT=flow.udplite6_uncounted";
	if (asan) {
		snprintf(asan_env, sizeof(asan_env), "ASAN_OPTIONS=%s", asan);
		envp_san[k++] = asan_env;
	}
	if (ubsan) {
		snprintf(ubsan_env, sizeof(ubsan_env), "UBSAN_OPTIONS=%s", ubsan);
		envp_san[k++] = ubsan_env;
	}

	pid = clone_pidfd(0, &pidfd);
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int src[19];
		size_t n = 0;

		/* sup.worker_no_pdeathsig: a worker outlives a supervisor that dies */
		if (!FAULT("sup.worker_no_pdeathsig"))
			worker_pdeathsig();
		/*
		 * Move every inherited fd above the target range first, so dup2 into 3.. never
		 * clobbers a source that happens to sit there.
		 */
		for (size_t i = 0; i < nfds; i++)
			src[n++] = fds[i];
		src[n++] = mfd;
		src[n++] = exe_fd; /* last, and close-on-exec again below */
		for (size_t i = 0; i < n; i++) {
			src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64);
			if (src[i] < 0)
				_exit(126);
		}
		for (size_t i = 0; i < n; i++) {
			if (dup2(src[i], (int)(3 + i)) < 0)
				_exit(126);
		}
		if (fcntl((int)(2 + n), F_SETFD, FD_CLOEXEC) < 0 ||
		    syscall(SYS_close_range, (unsigned int)(3 + n), ~0U, 0U) < 0)
			_exit(126);
		/* sup.worker_fd_leak: one more descriptor (a copy of fd 0) survives the exec */
		if (FAULT("sup.worker_fd_leak"))
			(void)fcntl(0, F_DUPFD, (int)(3 + n));
		/* sup.worker_env_leak: the supervisor's whole environment */
		if (FAULT("sup.worker_env_leak"))
			syscall(SYS_execveat, (int)(2 + n), "", argv, environ, AT_EMPTY_PATH);
		/* sup.worker_exec_by_path: the image by its path name, not through the fd */
		if (FAULT("sup.worker_exec_by_path"))
			execve("/proc/self/exe", argv, envp_san);
		syscall(SYS_execveat, (int)(2 + n), "", argv, envp_san, AT_EMPTY_PATH);
		_exit(127);
	}
	ret->pid = pid;
	ret->pidfd = pidfd;
	return 0;
}

int cell_worker_signal(const struct cell_worker *w, int sig)
{
	return syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int cell_worker_stop(struct cell_worker *w, unsigned int timeout_ms, siginfo_t *info)
{
	struct pollfd p = { .fd = w->pidfd, .events = POLLIN };
	int r;

	if (w->pidfd < 0)
		return -EBADF;
	r = poll(&p, 1, (int)timeout_ms);
	if (r == 0)
		(void)cell_worker_signal(w, SIGKILL);
	memset(info, 0, sizeof(*info));
	if (waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, info, WEXITED) < 0)
		r = -errno;
	else
		r = 0;
	util_closep(&w->pidfd);
	w->pidfd = -1;
	return r;
}

int cell_args_from_fd(int fd, int *argc, char ***argv)
{
	char buf[65536];
	ssize_t n = util_read_full(fd, buf, sizeof(buf) - 1);
	size_t count = 0;
	char **v;
	char *p;

	if (n < 0)
		return (int)n;
	if ((size_t)n == sizeof(buf) - 1)
		return -E2BIG;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		count += buf[i] == '\0';
	v = calloc(count + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	p = buf;
	for (size_t i = 0; i < count; i++) {
		v[i] = strdup(p);
		if (!v[i]) {
			while (i--)
				free(v[i]);
			free(v);
			return -ENOMEM;
		}
		p += strlen(p) + 1;
	}
	*argc = (int)count;
	*argv = v;
	return 0;
}
