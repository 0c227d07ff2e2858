// SPDX-License-Identifier: Apache-2.0
/*
 * Processes a case starts (hrun_int.h): fork+exec into a process group of its own that dies
 * with the worker, a wait bounded by a pidfd, a kill that takes the whole group, and an outcome
 * that keeps "exit(143)" and "killed by SIGTERM" apart (SPEC CHK-RUN-014). Every group is noted
 * in the run and in the state file, so the timeout, the audit and `cellcheck cleanup` find it.
 */
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "hrun_int.h"

int hproc_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The shell's number for an outcome (128 + N for signal N): what expect_exit compares with. */
int hproc_status_code(int st)
{
	return st & HSTATUS_SIGNALED ? 128 + (st & 0xff) : st;
}

/* "exit status 2" or "killed by signal 15 (SIGTERM)". */
const char *hproc_status_text(int st, char buf[80])
{
	if (st < 0)
		snprintf(buf, 80, "no exit status");
	else if (st & HSTATUS_SIGNALED)
		snprintf(buf, 80, "killed by signal %d (SIG%s)", st & 0xff,
			 sigabbrev_np(st & 0xff) ?: "?");
	else
		snprintf(buf, 80, "exit status %d", st);
	return buf;
}

/* What a case's expect_exit asks for, in the same words. */
const char *hproc_expected_text(int want, char buf[96])
{
	if (want > 128 && want < 128 + 65 && sigabbrev_np(want - 128))
		snprintf(buf, 96, "exit status %d or death by signal %d (SIG%s)", want, want - 128,
			 sigabbrev_np(want - 128));
	else
		snprintf(buf, 96, "exit status %d", want);
	return buf;
}

/* Wait for pid to exit within ms; true and *status (see HSTATUS_SIGNALED) when it did. */
bool hproc_wait_exit(pid_t pid, int ms, int *status)
{
	_cleanup_close_ int pfd = hproc_pidfd_open(pid);
	uint64_t until = run_now_ns() + (uint64_t)(ms > 0 ? ms : 0) * 1000000;
	pid_t got;
	int ws;

	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		if (ms > 0)
			while (poll(&p, 1, ms) < 0 && errno == EINTR)
				;
	}
	/*
	 * The pidfd is readable once the process died, but a tracer (a case running its IUT under
	 * strace) may not have let the zombie go to us yet: retry until the deadline.
	 */
	while ((got = waitpid(pid, &ws, pfd >= 0 ? WNOHANG : 0)) == 0 && run_now_ns() < until)
		usleep(2000);
	if (got != pid)
		return false;
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : HSTATUS_SIGNALED | WTERMSIG(ws);
	return true;
}

/* SIGKILL a group and reap what of it is ours (the subreaper makes its orphans ours). */
void hproc_kill_group(pid_t pgid)
{
	int ws;

	kill(-pgid, SIGKILL);
	for (int i = 0; i < 200; i++) {
		while (waitpid(-pgid, &ws, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) < 0 && errno == ESRCH)
			return;
		usleep(1000);
	}
}

/* A child in a group of its own: the audit and the timeout address whole groups. */
void hproc_note_group(struct run *r, pid_t pid)
{
	pid_t *np;

	setpgid(pid, pid);
	hrun_state_note_proc(r->ctx->state_path, pid);
	np = realloc(r->pgids, (r->n_pgids + 1) * sizeof(*np));
	if (np) {
		r->pgids = np;
		r->pgids[r->n_pgids++] = pid;
	}
}

/* The raw capget/capset calls (no libcap): version 3, two 32-bit words per set. */
static int caps_add_inheritable(uint64_t bits)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[0].inheritable |= (uint32_t)bits;
	d[1].inheritable |= (uint32_t)(bits >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/*
 * In a started child: a mount namespace of its own, private, with the case's mounts, then
 * shared if asked (a host whose mounts are all private still shows propagation this way). It
 * dies with the processes in it.
 */
static int mount_ns_make(const struct hproc_spawn_opts *o)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	for (size_t i = 0; o->mount_target && o->mount_target[i]; i++) {
		bool bind = strcmp(o->mount_type[i], "bind") == 0;

		if (mount(o->mount_source[i], o->mount_target[i], bind ? NULL : "tmpfs",
			  bind ? MS_BIND | MS_REC : 0, NULL) < 0)
			return -errno;
	}
	if (o->mount_shared && mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * The child's path from fork to exec: a single sequence (signals, namespaces, fds, environment,
 * ids, capabilities) whose first failure goes back over ep_w as an errno. One function on
 * purpose: it reads best top to bottom, as bubblewrap's does.
 */
static _Noreturn void spawn_child(const struct hproc_spawn_opts *o, pid_t parent, int ep_w)
{
	int in, out, err, rf, lf[4] = { -1, -1, -1, -1 }, e;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/*
	 * What the harness ignores or blocks (SIGPIPE here; SIGHUP under nohup or a CI
	 * runner) is not the IUT's business: every process it starts gets the defaults.
	 */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	/* Before close_range: the namespace fd is one of those it closes. */
	if (o->netns_fd >= 0 && setns(o->netns_fd, CLONE_NEWNET) < 0)
		goto fail;
	if (o->mnt_fd >= 0 && setns(o->mnt_fd, CLONE_NEWNS) < 0)
		goto fail;
	if (o->mount_ns && mount_ns_make(o) < 0)
		goto fail;
	if (o->uts_ns && unshare(CLONE_NEWUTS) < 0)
		goto fail;
	in = o->stdin_fd >= 0 ? o->stdin_fd : open(o->stdin_path ?: "/dev/null", O_RDONLY);
	out = open(o->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	err = open(o->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0 || err < 0)
		goto fail;
	/*
	 * Park every fd we keep above 200 first: any of them may sit on 0..3 (a harness
	 * started with stdin closed), and dup2 onto a low number would clobber it.
	 */
	e = fcntl(ep_w, F_DUPFD_CLOEXEC, 200);
	if (e < 0)
		goto fail;
	ep_w = e;
	in = fcntl(in, F_DUPFD, 200);
	out = fcntl(out, F_DUPFD, 200);
	err = fcntl(err, F_DUPFD, 200);
	rf = o->ready_wfd >= 0 ? fcntl(o->ready_wfd, F_DUPFD, 200) : -1;
	if (in < 0 || out < 0 || err < 0 || (o->ready_wfd >= 0 && rf < 0))
		goto fail;
	for (int k = 0; k < 4; k++)
		if (o->lis_fd[k] >= 0 && (lf[k] = fcntl(o->lis_fd[k], F_DUPFD, 200)) < 0)
			goto fail;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
	    (rf >= 0 && dup2(rf, READY_FD) < 0))
		goto fail;
	/* Listener k on fd 4 + k, every other fd from 3 to 7 closed. */
	for (int k = 0; k < 4; k++)
		if (lf[k] >= 0 && dup2(lf[k], 4 + k) < 0)
			goto fail;
	for (int k = 3; k < 8; k++)
		if ((k == READY_FD && rf >= 0) || (k >= 4 && lf[k - 4] >= 0))
			continue;
		else
			close(k);
	close_range(8, (unsigned int)ep_w - 1, 0);
	close_range((unsigned int)ep_w + 1, ~0u, 0);
	if (o->fault)
		setenv("CELLREF_FAULT", o->fault, 1);
	else
		unsetenv("CELLREF_FAULT");
	for (char **ev = o->env; ev && *ev; ev++)
		if (putenv(*ev) < 0)
			goto fail;
	/* Groups, then the gid while still allowed to change it, then the uid. */
	if ((o->has_groups || o->has_user) &&
	    setgroups(o->has_groups ? o->n_groups : 0, (const gid_t *)o->groups) < 0)
		goto fail;
	if (o->has_user &&
	    (setresgid(o->gid, o->gid, o->gid) < 0 || setresuid(o->uid, o->uid, o->uid) < 0))
		goto fail;
	if (o->cap_inh && caps_add_inheritable(o->cap_inh) < 0)
		goto fail;
	execvp(o->argv[0], o->argv);
fail:
	e = errno;
	(void)!write(ep_w, &e, sizeof(e));
	_exit(127);
}

/*
 * fork+exec in a process group of its own. An exec failure comes back over a CLOEXEC pipe
 * as an errno, so "no such binary" is reported as such, not as a strange exit status.
 */
int hproc_spawn(struct run *r, const struct hproc_spawn_opts *o, pid_t *ret)
{
	_cleanup_close_ int ep_r = -1, ep_w = -1;
	int ep[2], child_err = 0;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	ep_r = ep[0];
	ep_w = ep[1];
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		spawn_child(o, parent, ep_w);
	close(TAKE_FD(ep_w));
	/* One group per start: the audit and the timeout address whole groups. */
	hproc_note_group(r, pid);
	n = read(ep_r, &child_err, sizeof(child_err));
	if (n == sizeof(child_err)) {
		int st;

		waitpid(pid, &st, 0);
		return -child_err;
	}
	*ret = pid;
	return 0;
}

/* A child of the runner in a group of its own, noted like every start. */
pid_t hproc_fork_helper(struct run *r)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		return 0;
	}
	if (pid < 0)
		return -1;
	hproc_note_group(r, pid);
	return pid;
}

struct proc *hproc_find(struct run *r, const char *name)
{
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].st->name && strcmp(r->procs[i].st->name, name) == 0)
			return &r->procs[i];
	return NULL;
}
