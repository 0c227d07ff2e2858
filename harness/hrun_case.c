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
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "hexpect.h"
#include "hrun.h"
#include "htime.h"
#include "netcfg.h"
#include "util.h"

#define READY_FD 3 /* where a started component finds its ready pipe */
#define MAX_FDS	 1024

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

/*
 * The line another writer puts into a "shared" or prefilled "stalled" sink. Exactly these
 * lines are removed before the expectations read the stream; anything else is parsed
 * strictly, so an IUT line that another writer's line split fails the case.
 */
#define NOISE_LINE \
	"{\"cellcheck\":\"another writer of this sink\",\"pad\":\"0123456789abcdef0123456789\"}\n"
#define SINK_PIPE_BYTES 4096

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

static uint64_t now_ns(void)
{
	return util_now_monotonic_ns();
}

/*
 * Add a problem (SPEC CHK-RUN-004): a case reports every problem it finds, and its status is
 * the worst (ERROR over FAIL). Steps stop at the first one (what follows would be a
 * consequence); the expectations and the audit still add theirs.
 */
__attribute__((format(printf, 3, 4))) static void verdict(struct run *r, enum hrep_status s,
							  const char *fmt, ...)
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
static uint32_t scaled(const struct run *r, uint32_t ms)
{
	return htime_scale_ms(r->ctx->time_scale, ms);
}

static bool timed_out(struct run *r)
{
	if (now_ns() < r->deadline_ns)
		return false;
	if (!r->timeout_noted)
		verdict(r, HREP_ERROR, "TIMEOUT: case exceeded %u ms", scaled(r, r->c->timeout_ms));
	r->timeout_noted = true;
	return true;
}

/* Milliseconds left before the case's deadline, capped by cap_ms scaled (0: no cap). */
static int remaining_ms(struct run *r, uint32_t cap_ms)
{
	uint64_t now = now_ns();
	/* Rounded up: a wait that ends on time must find the deadline passed. */
	uint64_t left = now >= r->deadline_ns ? 0 : (r->deadline_ns - now + 999999) / 1000000;

	cap_ms = scaled(r, cap_ms);
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
	for (size_t i = 0; i < c->n_steps; i++)
		if (c->steps[i].command && !j->prof->comp[c->steps[i].component].cleanup_argv) {
			if (asprintf(&s, "profile %s has no command %s for component %s",
				     j->prof->name, c->steps[i].command,
				     hcase_component_names[c->steps[i].component]) < 0)
				s = NULL;
			return s ?: strdup("command missing");
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

/* ---- fds, files ---- */

static size_t fd_snapshot(int *fds, size_t max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && n < max)
			fds[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

static bool fd_in(const int *fds, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

static char *slurp(const char *path, size_t *ret_len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	*ret_len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536 + 1);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

static int copy_file(const char *from, const char *to, uint64_t offset)
{
	/* O_NONBLOCK: a FIFO (a stalled sink) must not wait for a writer. */
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	_cleanup_close_ int out = -1;
	struct stat sb;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -errno;
	if (fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode))
		return -EINVAL;
	if (offset && lseek(in, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -errno;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (util_write_all(out, buf, (size_t)n) < 0)
			return -EIO;
	return n < 0 ? -errno : 0;
}

/* A word for sh: single-quoted, a ' inside as '\'' . */
static void sh_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fputc('\'', f);
}

/* The last line or so of a file, quoted on one line, for a message: "(empty)" if none. */
static const char *file_tail(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	char raw[256];
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	ssize_t n, start = 0;
	size_t o = 0;

	if (end <= 0) {
		snprintf(buf, size, "(empty)");
		return buf;
	}
	n = pread(fd, raw, sizeof(raw), end > (off_t)sizeof(raw) ? end - (off_t)sizeof(raw) : 0);
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	buf[o++] = '"';
	/* Cut in the middle of the file: from the first whole line ("..." says so). */
	if (end > (off_t)sizeof(raw) && n > 0) {
		char *nl = memchr(raw, '\n', (size_t)n);

		if (nl && nl + 1 < raw + n)
			start = nl + 1 - raw;
		o += (size_t)snprintf(buf + o, size - o, "...");
	}
	for (ssize_t i = start; i < n && o + 5 < size; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f || c == '"') {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* ---- processes ---- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * A process outcome as wait_exit() reports it: the exit code 0..255, or HSTATUS_SIGNALED | N
 * for a death by signal N, so "exit(143)" and "killed by SIGTERM" stay apart (SPEC CHK-RUN-014).
 */
#define HSTATUS_SIGNALED 0x10000

/* The shell's number for an outcome (128 + N for signal N): what expect_exit compares with. */
static int status_code(int st)
{
	return st & HSTATUS_SIGNALED ? 128 + (st & 0xff) : st;
}

/* "exit status 2" or "killed by signal 15 (SIGTERM)". */
static const char *status_text(int st, char buf[80])
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
static const char *expected_text(int want, char buf[96])
{
	if (want > 128 && want < 128 + 65 && sigabbrev_np(want - 128))
		snprintf(buf, 96, "exit status %d or death by signal %d (SIG%s)", want, want - 128,
			 sigabbrev_np(want - 128));
	else
		snprintf(buf, 96, "exit status %d", want);
	return buf;
}

/* Wait for pid to exit within ms; true and *status (see HSTATUS_SIGNALED) when it did. */
static bool wait_exit(pid_t pid, int ms, int *status)
{
	_cleanup_close_ int pfd = pidfd_open_(pid);
	uint64_t until = now_ns() + (uint64_t)(ms > 0 ? ms : 0) * 1000000;
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
	while ((got = waitpid(pid, &ws, pfd >= 0 ? WNOHANG : 0)) == 0 && now_ns() < until)
		usleep(2000);
	if (got != pid)
		return false;
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : HSTATUS_SIGNALED | WTERMSIG(ws);
	return true;
}

/* SIGKILL a group and reap what of it is ours (the subreaper makes its orphans ours). */
static void kill_group(pid_t pgid)
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

struct spawn_opts {
	char **argv;
	int netns_fd; /* setns before exec; -1: stay */
	const char *stdin_path;
	int stdin_fd; /* a pipe's read end instead of stdin_path; -1: none */
	const char *out_path;
	const char *err_path;
	int ready_wfd; /* dup'ed to READY_FD; -1: none */
	int lis_fd[2]; /* dup'ed to fds 4 and 5 ({udp_fd}, {tcp_fd}); -1: none */
	const char *fault;
	char **env;		/* "NAME=VALUE" added to the environment, or NULL */
	const uint32_t *groups; /* setgroups(2) with these when has_groups */
	int mnt_fd;		/* setns into this mount namespace first; -1: stay */
	uint64_t cap_inh;	/* added to the inheritable set before exec */
	bool mount_ns;		/* or: a mount namespace of its own, made like this */
	bool mount_shared;
	char **mount_type, **mount_source, **mount_target;
	size_t n_groups;
	bool has_groups;
	bool has_user;
	uid_t uid;
	gid_t gid;
};

/*
 * fork+exec in a process group of its own. An exec failure comes back over a CLOEXEC pipe
 * as an errno, so "no such binary" is reported as such, not as a strange exit status.
 */
/* A child in a group of its own: the audit and the timeout address whole groups. */
static void note_group(struct run *r, pid_t pid)
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

static size_t file_lines(const char *path);
static void set_num_var(json_t *vars, const char *k, uint64_t v);

/*
 * In a started child: a mount namespace of its own, private, with the case's mounts, then
 * shared if asked (a host whose mounts are all private still shows propagation this way). It
 * dies with the processes in it.
 */
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

static int mount_ns_make(const struct spawn_opts *o)
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

static int spawn(struct run *r, const struct spawn_opts *o, pid_t *ret)
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
	if (pid == 0) {
		int in, out, err, rf, lf[2] = { -1, -1 }, e;

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
		for (int k = 0; k < 2; k++)
			if (o->lis_fd[k] >= 0 && (lf[k] = fcntl(o->lis_fd[k], F_DUPFD, 200)) < 0)
				goto fail;
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
		    (rf >= 0 && dup2(rf, READY_FD) < 0) || (lf[0] >= 0 && dup2(lf[0], 4) < 0) ||
		    (lf[1] >= 0 && dup2(lf[1], 5) < 0))
			goto fail;
		for (int k = 3; k < 6; k++)
			if ((k == READY_FD && rf >= 0) || (k == 4 && lf[0] >= 0) ||
			    (k == 5 && lf[1] >= 0))
				continue;
			else
				close(k);
		close_range(6, (unsigned int)ep_w - 1, 0);
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
		if (o->has_user && (setresgid(o->gid, o->gid, o->gid) < 0 ||
				    setresuid(o->uid, o->uid, o->uid) < 0))
			goto fail;
		if (o->cap_inh && caps_add_inheritable(o->cap_inh) < 0)
			goto fail;
		execvp(o->argv[0], o->argv);
	fail:
		e = errno;
		(void)!write(ep_w, &e, sizeof(e));
		_exit(127);
	}
	close(TAKE_FD(ep_w));
	/* One group per start: the audit and the timeout address whole groups. */
	note_group(r, pid);
	n = read(ep_r, &child_err, sizeof(child_err));
	if (n == sizeof(child_err)) {
		int st;

		waitpid(pid, &st, 0);
		return -child_err;
	}
	*ret = pid;
	return 0;
}

static struct proc *find_proc(struct run *r, const char *name)
{
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].st->name && strcmp(r->procs[i].st->name, name) == 0)
			return &r->procs[i];
	return NULL;
}

static int ns_index(const struct hcase *c, const char *name)
{
	for (size_t i = 0; name && i < c->topo.n_ns; i++)
		if (strcmp(c->topo.ns[i], name) == 0)
			return (int)i;
	return -1;
}

static int step_ns_fd(struct run *r, const struct hcase_step *st)
{
	int i = ns_index(r->c, st->ns);

	return i < 0 ? -1 : r->ns_fd[i];
}

static char *netns_path(struct run *r, const struct hcase_step *st)
{
	int fd = step_ns_fd(r, st);
	char *p;

	if (fd < 0) {
		if (asprintf(&p, "/proc/%d/ns/net", getpid()) < 0)
			return NULL;
	} else if (asprintf(&p, "/proc/%d/fd/%d", getpid(), fd) < 0) {
		return NULL;
	}
	return p;
}

/* ---- topology ---- */

static int parse_v4(const char *s, uint32_t *ip, unsigned int *plen)
{
	char buf[64];
	char *slash;
	struct in_addr a;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	*plen = 32;
	if (slash) {
		*slash = '\0';
		*plen = (unsigned int)atoi(slash + 1);
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EAFNOSUPPORT; /* IPv6 or garbage */
	*ip = ntohl(a.s_addr);
	return 0;
}

static int netns_new(void)
{
	_cleanup_close_ int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd, r = 0;

	if (home < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	if (setns(home, CLONE_NEWNET) < 0) {
		/* Stranded in the new namespace: the worker cannot go on. */
		_exit(125);
	}
	return fd < 0 ? r : fd;
}

static int addrs_add(struct run *r, struct netcfg *nc, int ifindex, char **addrs)
{
	int e = 0;

	for (char **ad = addrs; !e && ad && *ad; ad++) {
		uint32_t ip;
		unsigned int plen;

		e = parse_v4(*ad, &ip, &plen);
		if (e == -EAFNOSUPPORT) {
			verdict(r, HREP_ERROR, "address %s: only IPv4 addresses are supported yet",
				*ad);
			return e;
		}
		e = e ?: netcfg_addr_add(nc, ifindex, ip, plen);
	}
	return e;
}

/* A bridge with its alias and addresses, up, its ports (earlier links' ends) enslaved. */
static int bridge_up(struct run *r, const struct hcase_link *l)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_bridge_opts bo = { .name = l->end[0].ifname,
					 .alias = l->end[0].alias,
					 .mtu = l->mtu };
	int br = 0, e;

	e = netcfg_open(r->ns_fd[ns_index(r->c, l->end[0].ns)], &nc);
	e = e ?: netcfg_bridge_add(nc, &bo, &br);
	e = e ?: addrs_add(r, nc, br, l->end[0].addrs);
	for (char **pt = l->ports; !e && pt && *pt; pt++) {
		struct netcfg_link_info li;

		e = netcfg_link_get(nc, *pt, &li);
		e = e ?: netcfg_link_set_master(nc, li.ifindex, br);
	}
	e = e ?: netcfg_link_set_up(nc, br);
	if (e < 0 && r->status != HREP_ERROR)
		verdict(r, HREP_ERROR, "bridge %s/%s: %s", l->end[0].ns, l->end[0].ifname,
			util_errno_name(-e));
	return e;
}

/*
 * A lone link: this kernel may lack the dummy driver, so it is a veth whose peer lives in a
 * throwaway namespace only the run holds; closing that namespace removes both ends.
 */
static int dummy_up(struct run *r, const struct hcase_link *l)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_veth_opts vo = {
		.name = l->end[0].ifname, .peer = "peer0", .alias = l->end[0].alias, .mtu = l->mtu
	};
	struct netcfg_link_info li;
	int aux, e;

	if (r->n_aux_ns >= ARRAY_SIZE(r->aux_ns))
		e = -ENOSPC;
	else if ((aux = netns_new()) < 0)
		e = aux;
	else {
		r->aux_ns[r->n_aux_ns++] = aux;
		vo.peer_netns_fd = aux;
		e = netcfg_open(r->ns_fd[ns_index(r->c, l->end[0].ns)], &nc);
		e = e ?: netcfg_veth_add_ex(nc, &vo, NULL);
		e = e ?: netcfg_link_get(nc, l->end[0].ifname, &li);
		e = e ?: addrs_add(r, nc, li.ifindex, l->end[0].addrs);
		e = e ?: netcfg_link_set_up(nc, li.ifindex);
	}
	if (e < 0 && r->status != HREP_ERROR)
		verdict(r, HREP_ERROR, "dummy link %s/%s: %s", l->end[0].ns, l->end[0].ifname,
			util_errno_name(-e));
	return e;
}

static int topo_up(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;
	int e;

	for (size_t i = 0; i < t->n_ns; i++) {
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
		struct netcfg_link_info li;

		r->ns_fd[i] = netns_new();
		if (r->ns_fd[i] < 0) {
			e = r->ns_fd[i];
			verdict(r, HREP_ERROR, "namespace %s: unshare: %s", t->ns[i],
				util_errno_name(-e));
			return e;
		}
		e = netcfg_open(r->ns_fd[i], &nc);
		e = e ?: netcfg_link_get(nc, "lo", &li);
		e = e ?: netcfg_link_set_up(nc, li.ifindex);
		if (e < 0) {
			verdict(r, HREP_ERROR, "namespace %s: lo up: %s", t->ns[i],
				util_errno_name(-e));
			return e;
		}
	}
	for (size_t i = 0; i < t->n_links; i++) {
		const struct hcase_link *l = &t->links[i];
		_cleanup_(netcfg_freep) struct netcfg *nc0 = NULL, *nc1 = NULL;
		int a = ns_index(r->c, l->end[0].ns), b;
		struct netcfg_veth_opts vo;
		struct netcfg *ncs[2];

		if (l->type == HCASE_LINK_BRIDGE) {
			e = bridge_up(r, l);
			if (e < 0)
				return e;
			continue;
		}
		if (l->type == HCASE_LINK_DUMMY) {
			e = dummy_up(r, l);
			if (e < 0)
				return e;
			continue;
		}
		b = ns_index(r->c, l->end[1].ns);
		vo = (struct netcfg_veth_opts){ .name = l->end[0].ifname,
						.peer = l->end[1].ifname,
						.peer_netns_fd = r->ns_fd[b],
						.mtu = l->mtu,
						.alias = l->end[0].alias };
		e = netcfg_open(r->ns_fd[a], &nc0);
		e = e ?: netcfg_open(r->ns_fd[b], &nc1);
		e = e ?: netcfg_veth_add_ex(nc0, &vo, NULL);
		if (e < 0) {
			verdict(r, HREP_ERROR, "link %s/%s-%s/%s: %s", l->end[0].ns,
				l->end[0].ifname, l->end[1].ns, l->end[1].ifname,
				util_errno_name(-e));
			return e;
		}
		ncs[0] = nc0;
		ncs[1] = nc1;
		for (int k = 0; k < 2; k++) {
			struct netcfg_link_info li;

			e = netcfg_link_get(ncs[k], l->end[k].ifname, &li);
			if (!e && k == 1 && l->end[1].alias)
				e = netcfg_link_set_alias(ncs[k], li.ifindex, l->end[1].alias);
			e = e ?: addrs_add(r, ncs[k], li.ifindex, l->end[k].addrs);
			e = e ?: netcfg_link_set_up(ncs[k], li.ifindex);
			if (e < 0) {
				verdict(r, HREP_ERROR, "link end %s/%s: %s", l->end[k].ns,
					l->end[k].ifname, util_errno_name(-e));
				return e;
			}
		}
	}
	for (size_t i = 0; i < t->n_routes; i++) {
		const struct hcase_route *rt = &t->routes[i];
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
		struct netcfg_route ro = { 0 };
		unsigned int plen = 32;

		e = 0;
		if (strcmp(rt->dst, "default") != 0)
			e = parse_v4(rt->dst, &ro.dst, &plen);
		ro.prefixlen = strcmp(rt->dst, "default") == 0 ? 0 : plen;
		e = e ?: parse_v4(rt->via, &ro.gateway, &plen);
		e = e ?: netcfg_open(r->ns_fd[ns_index(r->c, rt->ns)], &nc);
		e = e ?: netcfg_route_add(nc, &ro);
		if (e < 0) {
			verdict(r, HREP_ERROR, "route %s via %s in %s: %s", rt->dst, rt->via,
				rt->ns, util_errno_name(-e));
			return e;
		}
	}
	return 0;
}

/* tx/rx packet counters of every link end, from /proc/self/net/dev inside each netns. */
static void link_counters(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; i < t->n_ns; i++) {
		_cleanup_fclose_ FILE *f = NULL;
		char line[512];

		if (r->ns_fd[i] < 0 || setns(r->ns_fd[i], CLONE_NEWNET) < 0)
			continue;
		f = fopen("/proc/self/net/dev", "re");
		while (f && fgets(line, sizeof(line), f)) {
			char name[32], key[128], val[32];
			unsigned long long v[16];
			char *colon = strchr(line, ':');

			if (!colon || sscanf(line, " %31[^:]:", name) != 1)
				continue;
			if (sscanf(colon + 1,
				   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
				   "%llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
				   &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]) != 16)
				continue;
			snprintf(key, sizeof(key), "link.%s.%s.rx_packets", t->ns[i], name);
			snprintf(val, sizeof(val), "%llu", v[1]);
			json_object_set_new(r->vars, key, json_string(val));
			snprintf(key, sizeof(key), "link.%s.%s.tx_packets", t->ns[i], name);
			snprintf(val, sizeof(val), "%llu", v[9]);
			json_object_set_new(r->vars, key, json_string(val));
		}
		if (setns(r->w->home_ns, CLONE_NEWNET) < 0)
			_exit(125);
	}
}

/* ---- capture ---- */

/*
 * A pcap of every link end: an AF_PACKET socket born inside the end's namespace and bound
 * to it collects the packets in its receive buffer while the case runs; it is drained into
 * DIR/<ns>.<ifname>.pcap at the end (no thread, nothing in the data path). The sockets hold
 * their namespaces, so they are closed before the namespace audit.
 */
struct pcap_hdr {
	uint32_t magic;
	uint16_t major, minor;
	int32_t zone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_rec {
	uint32_t sec, usec, caplen, len;
};

static int capture_open(struct run *r, int ns_fd, const char *ifname)
{
	int fd = -1, one = 1, sz = 4 << 20;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };

	if (setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (setns(r->w->home_ns, CLONE_NEWNET) < 0)
		_exit(125);
	if (fd < 0)
		return -errno;
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -ENODEV;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one));
	return fd;
}

static void capture_drain(struct run *r, int fd, const char *ns, const char *ifname)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	struct pcap_hdr h = { 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1 /* LINKTYPE_ETHERNET */ };
	static uint8_t buf[65536];
	/* A loopback packet passes a packet socket twice, going out and coming in: keep one. */
	bool lo = strcmp(ifname, "lo") == 0;

	if (asprintf(&path, "%s/%s.%s.pcap", r->dir, ns, ifname) < 0)
		return;
	f = fopen(path, "we");
	if (!f || fwrite(&h, sizeof(h), 1, f) != 1)
		return;
	for (int i = 0; i < 100000; i++) {
		char cbuf[CMSG_SPACE(sizeof(struct timeval))];
		struct iovec iov = { buf, sizeof(buf) };
		struct sockaddr_ll from = { 0 };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct pcap_rec rec = { 0 };
		struct cmsghdr *cm;
		ssize_t n = recvmsg(fd, &mh, MSG_TRUNC);

		if (n < 0)
			break;
		if (lo && from.sll_pkttype == PACKET_OUTGOING)
			continue;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMP) {
				struct timeval tv;

				memcpy(&tv, CMSG_DATA(cm), sizeof(tv));
				rec.sec = (uint32_t)tv.tv_sec;
				rec.usec = (uint32_t)tv.tv_usec;
			}
		rec.len = (uint32_t)n;
		rec.caplen = (uint32_t)((size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
		if (fwrite(&rec, sizeof(rec), 1, f) != 1 || fwrite(buf, rec.caplen, 1, f) != 1)
			break;
	}
}

static void capture_start(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; i < t->n_links; i++)
		for (int k = 0; k < 2; k++) {
			int ns = ns_index(r->c, t->links[i].end[k].ns);

			r->cap_fd[2 * i + (size_t)k] =
				ns < 0 ? -1
				       : capture_open(r, r->ns_fd[ns], t->links[i].end[k].ifname);
		}
	/* Client <-> proxy traffic inside a namespace never leaves its loopback. */
	for (size_t i = 0; i < t->n_ns; i++)
		r->cap_fd[2 * t->n_links + i] = capture_open(r, r->ns_fd[i], "lo");
}

static void capture_stop(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; r->cap_fd && i < 2 * t->n_links; i++) {
		const struct hcase_endpoint *e = &t->links[i / 2].end[i % 2];

		if (r->cap_fd[i] < 0)
			continue;
		capture_drain(r, r->cap_fd[i], e->ns, e->ifname);
		close(r->cap_fd[i]);
		r->cap_fd[i] = -1;
	}
	for (size_t i = 0; r->cap_fd && i < t->n_ns; i++) {
		int *fd = &r->cap_fd[2 * t->n_links + i];

		if (*fd < 0)
			continue;
		capture_drain(r, *fd, t->ns[i], "lo");
		close(*fd);
		*fd = -1;
	}
}

/* ---- upstream ---- */

/*
 * The upstream (harness/upstream/cellcheck_upstream.py: the scripted fake, or unbound with a
 * local zone) in the upstream's namespace. Forged replies from "another address" come from
 * listen+1, which is added to the interface holding the listen address.
 */
static int upstream_alt_addr(struct run *r, int nsi, const char *ip, char alt[INET_ADDRSTRLEN])
{
	const char *ns = r->c->topo.ns[nsi];
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_link_info li;
	struct in_addr a;
	size_t iplen = strlen(ip);

	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EAFNOSUPPORT;
	a.s_addr = htonl(ntohl(a.s_addr) + 1);
	inet_ntop(AF_INET, &a, alt, INET_ADDRSTRLEN);
	for (size_t l = 0; l < r->c->topo.n_links; l++) {
		for (int e = 0; e < 2; e++) {
			const struct hcase_endpoint *ep = &r->c->topo.links[l].end[e];

			if (!ep->ns || strcmp(ep->ns, ns) != 0)
				continue;
			for (char **ad = ep->addrs; ad && *ad; ad++) {
				if (strncmp(*ad, ip, iplen) != 0 || (*ad)[iplen] != '/')
					continue;
				int err = netcfg_open(r->ns_fd[nsi], &nc);

				err = err ?: netcfg_link_get(nc, ep->ifname, &li);
				err = err ?: netcfg_addr_add(nc, li.ifindex, ntohl(a.s_addr), 32);
				return err == -EEXIST ? 0 : err;
			}
		}
	}
	return -ENODEV;
}

static bool forges_saddr(json_t *up)
{
	json_t *rule;
	size_t i;

	json_array_foreach(json_object_get(up, "rules"), i, rule)
	{
		const char *f = json_string_value(json_object_get(rule, "forge"));

		if (f && strcmp(f, "saddr") == 0)
			return true;
	}
	return false;
}

static int upstream_start(struct run *r)
{
	const char *ns = json_string_value(json_object_get(r->c->upstream, "ns"));
	const char *listen = json_string_value(json_object_get(r->c->upstream, "listen"));
	int nsi = ns_index(r->c, ns), rp[2], st, err;
	pid_t parent = getpid(), pid;
	_cleanup_free_ char *jpath = NULL, *lpath = NULL, *script = NULL, *nspath = NULL;
	char alt[INET_ADDRSTRLEN] = "", ip[INET6_ADDRSTRLEN];
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	struct pollfd pf;
	char b;

	if (nsi < 0 || !colon || asprintf(&jpath, "%s/upstream.json", r->dir) < 0 ||
	    asprintf(&lpath, "%s/upstream.log", r->dir) < 0 ||
	    asprintf(&script, "%s/harness/upstream/cellcheck_upstream.py", r->ctx->srcdir) < 0 ||
	    asprintf(&nspath, "/proc/%d/fd/%d", (int)parent, r->ns_fd[nsi]) < 0)
		return -ENOMEM;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - listen), listen);
	if (json_dump_file(r->c->upstream, jpath, JSON_COMPACT) < 0) {
		verdict(r, HREP_ERROR, "upstream: cannot write %s", jpath);
		return -EIO;
	}
	if (forges_saddr(r->c->upstream)) {
		err = upstream_alt_addr(r, nsi, ip, alt);
		if (err < 0) {
			verdict(r, HREP_ERROR, "upstream: alternate address for %s: %s", ip,
				util_errno_name(-err));
			return err;
		}
	}
	if (pipe2(rp, O_CLOEXEC) < 0) {
		verdict(r, HREP_ERROR, "upstream: %s", util_errno_name(errno));
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char *argv[] = {
			"/usr/bin/python3", "-I", script, "--netns", nspath, "--upstream-json",
			jpath, "--ready-fd", "3", "--log", lpath,
			/* unbound's files: the case dir goes, whatever kills the upstream */
			"--tmp-dir", r->dir, alt[0] ? "--alt-addr" : NULL, alt, NULL
		};

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || dup2(rp[1], 3) < 0)
			_exit(1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(rp[1]);
	if (pid < 0) {
		close(rp[0]);
		verdict(r, HREP_ERROR, "upstream: fork: %s", util_errno_name(errno));
		return -EAGAIN;
	}
	note_group(r, pid);
	r->upstream_pid = pid;
	pf = (struct pollfd){ .fd = rp[0], .events = POLLIN };
	if (poll(&pf, 1, remaining_ms(r, 5000)) != 1 || read(rp[0], &b, 1) != 1) {
		close(rp[0]);
		if (wait_exit(pid, 100, &st))
			verdict(r, HREP_ERROR, "upstream: cannot serve %s (status %d, see %s)",
				listen, st, lpath);
		else
			verdict(r, HREP_ERROR, "upstream: not serving %s within %u ms", listen,
				scaled(r, 5000));
		return -EIO;
	}
	close(rp[0]);
	r->upstream_log = TAKE_PTR(lpath);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t distinct_u32(uint32_t *v, size_t n)
{
	size_t d = 0;

	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < n; i++)
		d += i == 0 || v[i] != v[i - 1];
	return d;
}

/*
 * Statistics over the queries the upstream logged (their DNS IDs and source ports), as runner
 * values for counts "var:upstream.*": RFC 5452 asks for IDs and ports nobody can predict; a
 * counter or a fixed port shows up here. id_bit_min/max_permille: the rarest and the
 * commonest 1-bit among the 16 ID bits, per mille of queries; id_delta_top: how often the
 * most common difference between consecutive IDs occurs.
 */
static void upstream_stats(struct run *r, const char *log)
{
	_cleanup_free_ uint32_t *ids = NULL, *ports = NULL, *deltas = NULL;
	size_t n = 0, cap = 0, ones[16] = { 0 }, bmin = SIZE_MAX, bmax = 0, top = 0;
	size_t emin = SIZE_MAX, emax = 0;

	for (const char *l = log; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		json_t *j = json_loadb(l, len, 0, NULL);
		json_t *id = json_object_get(j, "id"), *sp = json_object_get(j, "sport");
		json_t *es = json_object_get(j, "edns_udp_size");

		/* The EDNS sizes the upstream received: a forwarder must not rewrite them. */
		if (json_is_integer(es)) {
			size_t v = (size_t)json_integer_value(es);

			emin = v < emin ? v : emin;
			emax = v > emax ? v : emax;
		}

		if (json_is_integer(id) && json_is_integer(sp) &&
		    !json_object_get(j, "malformed")) {
			if (n == cap) {
				uint32_t *ni, *np;

				cap = cap ? 2 * cap : 1024;
				ni = realloc(ids, cap * sizeof(*ni));
				if (ni)
					ids = ni;
				np = realloc(ports, cap * sizeof(*np));
				if (np)
					ports = np;
				if (!ni || !np) {
					json_decref(j);
					return;
				}
			}
			ids[n] = (uint32_t)json_integer_value(id) & 0xffff;
			ports[n++] = (uint32_t)json_integer_value(sp);
		}
		json_decref(j);
		l = nl ? nl + 1 : l + len;
	}
	set_num_var(r->vars, "upstream.logged", n);
	if (emax) {
		set_num_var(r->vars, "upstream.edns_udp_size_min", emin);
		set_num_var(r->vars, "upstream.edns_udp_size_max", emax);
	}
	if (!n)
		return;
	deltas = calloc(n, sizeof(*deltas));
	if (!deltas)
		return;
	for (size_t i = 0; i < n; i++) {
		for (int b = 0; b < 16; b++)
			ones[b] += (ids[i] >> b) & 1;
		if (i)
			deltas[i - 1] = (ids[i] - ids[i - 1]) & 0xffff;
	}
	for (int b = 0; b < 16; b++) {
		bmin = ones[b] < bmin ? ones[b] : bmin;
		bmax = ones[b] > bmax ? ones[b] : bmax;
	}
	qsort(deltas, n - 1, sizeof(*deltas), cmp_u32);
	for (size_t i = 0, run = 0; i + 1 < n; i++) {
		run = i && deltas[i] == deltas[i - 1] ? run + 1 : 1;
		top = run > top ? run : top;
	}
	set_num_var(r->vars, "upstream.id_bit_min_permille", bmin * 1000 / n);
	set_num_var(r->vars, "upstream.id_bit_max_permille", bmax * 1000 / n);
	set_num_var(r->vars, "upstream.id_delta_top", top);
	set_num_var(r->vars, "upstream.id_distinct", distinct_u32(ids, n));
	set_num_var(r->vars, "upstream.sport_distinct", distinct_u32(ports, n));
}

/* SIGTERM: the upstream writes its summary line; its "queries" is upstream_queries. */
static uint64_t upstream_stop(struct run *r)
{
	_cleanup_free_ char *log = NULL;
	uint64_t n = UINT64_MAX;
	size_t len;
	int st;

	bool ended;

	if (r->upstream_pid <= 0)
		return UINT64_MAX;
	kill(r->upstream_pid, SIGTERM);
	ended = wait_exit(r->upstream_pid, (int)scaled(r, 2000), &st);
	if (!ended)
		kill_group(r->upstream_pid);
	r->upstream_pid = 0;
	log = r->upstream_log ? slurp(r->upstream_log, &len) : NULL;
	upstream_stats(r, log);
	for (char *l = log ? strstr(log, "{\"summary\"") : NULL; l;
	     l = strstr(l + 1, "{\"summary\"")) {
		json_t *j = json_loads(l, JSON_DISABLE_EOF_CHECK, NULL);
		json_t *q = json_object_get(json_object_get(j, "summary"), "queries");

		if (json_is_integer(q))
			n = (uint64_t)json_integer_value(q);
		json_decref(j);
	}
	/* The harness's own peer failed: the case cannot be judged on it (not the IUT's fault). */
	if (n == UINT64_MAX)
		verdict(r, HREP_ERROR,
			"upstream: no summary line at its stop (%s within %u ms of SIGTERM; see "
			"upstream.log)",
			ended ? "it exited" : "it did not exit, killed", scaled(r, 2000));
	return n;
}

/* ---- steps ---- */

static int add_var(struct hprof_var *v, size_t *n, const char *name, const char *value)
{
	v[*n].name = name;
	v[*n].value = value;
	(*n)++;
	return 0;
}

static bool argv_mentions(char **argv, const char *ph)
{
	for (; argv && *argv; argv++)
		if (strstr(*argv, ph))
			return true;
	return false;
}

/*
 * Runner placeholders a start step's args and a client's argv may use besides the profile's:
 * {probe} (the harness's in-cell probe, next to this binary), {case_dir} (the case's temp dir,
 * e.g. for a supervisor's --state-dir) and {host_ns} ("net:INO,mnt:INO,...": the namespaces a
 * process started by the step is in, for the probe's ns= command).
 */
static char *probe_path(void)
{
	char exe[4096], *slash, *p = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (asprintf(&p, "%s/cellcheck-probe", exe) < 0)
		return NULL;
	return p;
}

static char *host_ns(struct run *r, const struct hcase_step *st)
{
	static const char *const names[] = { "mnt", "pid", "uts", "ipc", "user", "cgroup" };
	int nfd = step_ns_fd(r, st);
	struct stat sb;
	char buf[512];
	size_t o;

	if (nfd >= 0 ? fstat(nfd, &sb) : stat("/proc/self/ns/net", &sb))
		return NULL;
	o = (size_t)snprintf(buf, sizeof(buf), "net:%lu", (unsigned long)sb.st_ino);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
		if (stat(path, &sb) == 0 && o < sizeof(buf))
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",%s:%lu", names[i],
					      (unsigned long)sb.st_ino);
	}
	return strdup(buf);
}

/* Replace the runner placeholders in one word; the caller frees. */
static char *expand_word(const char *w, const char *const *names, const char *const *values,
			 size_t n)
{
	char *out = strdup(w);

	for (size_t i = 0; out && i < n; i++) {
		char ph[160], *at;

		snprintf(ph, sizeof(ph), "{%s}", names[i]);
		while (out && values[i] && (at = strstr(out, ph))) {
			char *nw = NULL;

			if (asprintf(&nw, "%.*s%s%s", (int)(at - out), out, values[i],
				     at + strlen(ph)) < 0)
				nw = NULL;
			free(out);
			out = nw;
		}
	}
	return out;
}

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or 0. */
static unsigned long long pid_start(pid_t pid)
{
	_cleanup_free_ char *st = NULL;
	char path[64], *p;
	unsigned long long v = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	st = slurp(path, &len);
	/* comm may hold spaces and parentheses: fields count from the last ')'. */
	p = st ? strrchr(st, ')') : NULL;
	if (p && sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			"%*d %*d %llu",
			&v) != 1)
		v = 0;
	return v;
}

/*
 * The runner's placeholders, for start args and vars, client argv, env and file steps:
 * {probe}, {case_dir}, {host_ns}, {harness_pid}, and {pid.STEP}, {pidstart.STEP} of every
 * process an earlier start step started.
 */
struct rvars {
	const char *names[80];
	const char *values[80];
	char *owned[80];
	size_t n, n_owned;
};

static void rvars_add(struct rvars *rv, char *name, char *value)
{
	if (rv->n >= ARRAY_SIZE(rv->names) || rv->n_owned + 2 > ARRAY_SIZE(rv->owned) || !name ||
	    !value) {
		free(name);
		free(value);
		return;
	}
	rv->owned[rv->n_owned++] = name;
	rv->owned[rv->n_owned++] = value;
	rv->names[rv->n] = name;
	rv->values[rv->n++] = value;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void rvars_build(struct run *r, const struct hcase_step *st, struct rvars *rv)
{
	memset(rv, 0, sizeof(*rv));
	rvars_add(rv, strdup("probe"), probe_path());
	rvars_add(rv, strdup("case_dir"), strdup(r->dir));
	rvars_add(rv, strdup("host_ns"), host_ns(r, st));
	rvars_add(rv, strdup("harness_pid"), xprintf("%d", getpid()));
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct proc *p = &r->procs[i];

		if (p->pid <= 0 || !p->st->name)
			continue;
		rvars_add(rv, xprintf("pid.%s", p->st->name), xprintf("%d", p->pid));
		rvars_add(rv, xprintf("pidstart.%s", p->st->name),
			  xprintf("%llu", pid_start(p->pid)));
	}
}

static void rvars_free(struct rvars *rv)
{
	for (size_t i = 0; i < rv->n_owned; i++)
		free(rv->owned[i]);
	rv->n = rv->n_owned = 0;
}

static char *rvars_expand(const struct rvars *rv, const char *w)
{
	return expand_word(w, rv->names, rv->values, rv->n);
}

/* A socket bound (and listening, for TCP) on IP:PORT inside the step's namespace. */
static int listener_in_ns(struct run *r, const struct hcase_step *st, const char *hostport,
			  int type)
{
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char ip[64];
	const char *colon = strrchr(hostport, ':');
	int nfd = step_ns_fd(r, st), fd = -1, one = 1, e = 0;

	if (!colon || (size_t)(colon - hostport) >= sizeof(ip) || self < 0)
		return -EINVAL;
	memcpy(ip, hostport, (size_t)(colon - hostport));
	ip[colon - hostport] = '\0';
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return -EAFNOSUPPORT;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (nfd >= 0 && setns(nfd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    (type == SOCK_STREAM &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0))
		e = -errno;
	/* The runner's own namespace back before anything else happens. */
	if (nfd >= 0 && setns(self, CLONE_NEWNET) < 0 && !e)
		e = -errno;
	if (e < 0) {
		if (fd >= 0)
			close(fd);
		return e;
	}
	return fd;
}

/* A child of the runner in a group of its own, noted like every start. */
static pid_t fork_helper(struct run *r)
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
	note_group(r, pid);
	return pid;
}

/* The other writer of a shared sink: one whole line per write(2), O_APPEND, until killed. */
static pid_t noise_start(struct run *r, const char *path)
{
	pid_t pid = fork_helper(r);

	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		struct timespec ts = { 0, 20000 };

		if (fd < 0)
			_exit(1);
		close_range(3, (unsigned int)fd - 1, 0);
		close_range((unsigned int)fd + 1, ~0u, 0);
		for (;;) {
			if (write(fd, NOISE_LINE, sizeof(NOISE_LINE) - 1) < 0)
				_exit(1);
			nanosleep(&ts, NULL);
		}
	}
	return pid;
}

/*
 * A stalled sink: a FIFO of SINK_PIPE_BYTES the harness holds open for reading (so the IUT's
 * open for writing does not block) and does not read until a drain step or the stop.
 */
static int stalled_sink(struct run *r, struct proc *p)
{
	int fd;

	if (asprintf(&p->fifo_path, "%s/%s.events.fifo", r->dir, p->st->name) < 0)
		return -ENOMEM;
	if (mkfifo(p->fifo_path, 0600) < 0)
		return -errno;
	fd = open(p->fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	p->sink_fd = fd;
	if (fcntl(fd, F_SETPIPE_SZ, SINK_PIPE_BYTES) < 0)
		return -errno;
	if (p->st->prefill) {
		_cleanup_close_ int w = open(p->fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (w < 0)
			return -errno;
		/* Whole lines only: a pipe write of at most PIPE_BUF bytes is all or nothing. */
		while (write(w, NOISE_LINE, sizeof(NOISE_LINE) - 1) > 0)
			;
	}
	return 0;
}

/* Copy the stalled sink into the event file until every writer closed it. */
static void drain_start(struct run *r, struct proc *p)
{
	pid_t pid;

	if (!p || p->sink_fd < 0 || p->drain_pid > 0)
		return;
	pid = fork_helper(r);
	if (pid == 0) {
		int out = open(p->ev_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		char buf[65536];
		ssize_t n;

		if (out < 0 || fcntl(p->sink_fd, F_SETFL, 0) < 0)
			_exit(1);
		/* Nothing else of the runner's: a pipe end kept here would hide an EOF. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != out && fd != p->sink_fd)
				close(fd);
		while ((n = read(p->sink_fd, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				_exit(1);
		_exit(0);
	}
	if (pid > 0)
		p->drain_pid = pid;
}

/* After the IUT ended: the drainer sees end of file; the other writer stops. */
static void sink_finish(struct run *r, struct proc *p)
{
	int st;

	if (p->drain_pid > 0) {
		if (!wait_exit(p->drain_pid, (int)scaled(r, 2000), &st))
			kill_group(p->drain_pid);
		p->drain_pid = 0;
	}
	if (p->noise_pid > 0) {
		kill_group(p->noise_pid);
		p->noise_pid = 0;
	}
}

/* What a drainer did not get (the IUT was killed first), then the filler lines out. */
static void sink_collect(struct proc *p)
{
	char *w, *rd, *end;

	if (p->sink_fd >= 0) {
		_cleanup_close_ int out =
			open(p->ev_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		char buf[65536];
		ssize_t n;

		while (out >= 0 && (n = read(p->sink_fd, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
	}
	if (p->st->sink != HCASE_SINK_STALLED && p->st->sink != HCASE_SINK_SHARED)
		return;
	p->ev = slurp(p->ev_path, &p->ev_len);
	if (!p->ev)
		return;
	end = p->ev + p->ev_len;
	for (w = rd = p->ev; rd < end;) {
		char *nl = memchr(rd, '\n', (size_t)(end - rd));
		size_t len = nl ? (size_t)(nl - rd) + 1 : (size_t)(end - rd);

		if (len != sizeof(NOISE_LINE) - 1 || memcmp(rd, NOISE_LINE, len) != 0) {
			memmove(w, rd, len);
			w += len;
		}
		rd += len;
	}
	p->ev_len = (size_t)(w - p->ev);
	*w = '\0';
}

/*
 * A start step's "vars" value that is an object (an inline cell spec) is written to
 * CASE_DIR/STEP.VAR.json and the placeholder names that file; the supervisor's "spec" given as
 * a relative path is relative to the source tree.
 */
static char *var_value(struct run *r, const struct hcase_step *st, const struct rvars *rv,
		       const char *k, json_t *v)
{
	char *p = NULL;

	if (json_is_object(v)) {
		if (asprintf(&p, "%s/%s.%s.json", r->dir, st->name, k) < 0)
			return NULL;
		if (json_dump_file(v, p, JSON_COMPACT) < 0 ||
		    (st->has_user && chown(p, st->uid, st->gid) < 0)) {
			free(p);
			return NULL;
		}
		return p;
	}
	/* Expanded first: "{case_dir}/spec.json" (a spec a file step wrote) is absolute. */
	p = rvars_expand(rv, json_string_value(v));
	if (p && st->component == HCASE_SUPERVISOR && strcmp(k, "spec") == 0 && p[0] != '/') {
		char *q = NULL;

		if (asprintf(&q, "%s/%s", r->ctx->srcdir, p) < 0)
			q = NULL;
		free(p);
		return q;
	}
	return p;
}

/*
 * {hex:HH...} in a start step's args becomes those bytes, before the other placeholders: the
 * only way a case (JSON, so UTF-8) can hand a program an argument that is not UTF-8.
 */
static char **args_unhex(char *const *args)
{
	size_t n = 0;
	char **out;

	while (args && args[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		const char *a = args[i];
		char *o = malloc(strlen(a) + 1), *w = o;

		if (!o) {
			hjson_strv_free(out);
			return NULL;
		}
		out[i] = o;
		while (*a) {
			unsigned int b;

			if (strncmp(a, "{hex:", 5) != 0) {
				*w++ = *a++;
				continue;
			}
			a += 5;
			while (isxdigit((unsigned char)a[0]) && isxdigit((unsigned char)a[1]) &&
			       sscanf(a, "%2x", &b) == 1) {
				*w++ = (char)b;
				a += 2;
			}
			if (*a == '}')
				a++;
		}
		*w = '\0';
	}
	return out;
}

static void step_start(struct run *r, const struct hcase_step *st)
{
	const struct hprof_comp *pc = &r->j->prof->comp[st->component];
	struct hprof_var vars[128];
	struct rvars rv;
	size_t nv = 0;
	_cleanup_free_ char *nsp = netns_path(r, st), *missing = NULL, *stdin_path = NULL;
	char **argv = NULL, **env = NULL, **args = args_unhex(st->args), **mnt_src = NULL,
	     **mnt_tgt = NULL;
	char ready_s[8], cell_id[96];
	struct proc *p = &r->procs[r->n_procs];
	int rp[2] = { -1, -1 }, ip[2] = { -1, -1 }, lis[2] = { -1, -1 }, e;
	bool want_ready = pc->ready_fd && !st->argv && !st->command;
	const char *k, *listen = json_string_value(json_object_get(st->vars, "listen"));
	json_t *v;
	char *owned[64] = { 0 };
	size_t n_owned = 0, n_env = 0;

	memset(p, 0, sizeof(*p));
	p->st = st;
	p->comp = st->component;
	p->stdin_w = -1;
	p->sink_fd = -1;
	p->busy_fd = -1;
	rvars_build(r, st, &rv);
	if (asprintf(&p->out_path, "%s/%s.stdout", r->dir, st->name) < 0 ||
	    asprintf(&p->err_path, "%s/%s.stderr", r->dir, st->name) < 0 ||
	    asprintf(&p->ev_path, "%s/%s.events.jsonl", r->dir, st->name) < 0 ||
	    asprintf(&p->rec_path, "%s/%s.records", r->dir, st->name) < 0 || !nsp) {
		verdict(r, HREP_ERROR, "start %s: out of memory", st->name);
		rvars_free(&rv);
		return;
	}
	r->n_procs++;
	snprintf(ready_s, sizeof(ready_s), "%d", READY_FD);
	snprintf(cell_id, sizeof(cell_id), "cc-%s", r->c->id);
	/* The case's vars first: a case may name its own {events} (a file it planted, "-"). */
	json_object_foreach(st->vars, k, v)
	{
		if (nv >= ARRAY_SIZE(vars) - ARRAY_SIZE(rv.names) - 12 ||
		    n_owned >= ARRAY_SIZE(owned) - 4)
			break;
		owned[n_owned] = var_value(r, st, &rv, k, v);
		if (!owned[n_owned]) {
			verdict(r, HREP_ERROR, "start %s: vars.%s: cannot prepare its value",
				st->name, k);
			goto out;
		}
		add_var(vars, &nv, k, owned[n_owned++]);
	}
	for (size_t i = 0; i < rv.n; i++)
		add_var(vars, &nv, rv.names[i], rv.values[i]);
	if (r->c->upstream && !json_object_get(st->vars, "upstream"))
		add_var(vars, &nv, "upstream",
			json_string_value(json_object_get(r->c->upstream, "listen")));
	if (st->sink == HCASE_SINK_STALLED && (e = stalled_sink(r, p)) < 0) {
		verdict(r, HREP_ERROR, "start %s: stalled sink: %s", st->name, util_errno_name(-e));
		goto out;
	}
	if (st->sink == HCASE_SINK_SHARED && (p->noise_pid = noise_start(r, p->ev_path)) < 0) {
		verdict(r, HREP_ERROR, "start %s: shared sink writer: %s", st->name,
			util_errno_name(errno));
		goto out;
	}
	/*
	 * A step run as another user must reach what it is given: the case dir is searchable,
	 * its event file (made here) and inline vars files (var_value) are that user's.
	 */
	if (st->has_user) {
		_cleanup_close_ int efd =
			open(p->ev_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (chmod(r->ctx->run_dir, 0711) < 0 || chmod(r->dir, 0711) < 0 || efd < 0 ||
		    fchown(efd, st->uid, st->gid) < 0) {
			verdict(r, HREP_ERROR, "start %s: files for user %u: %s", st->name, st->uid,
				util_errno_name(errno));
			goto out;
		}
	}
	/* A sink that fails every write (ENOSPC), for the failing-sink cases. */
	add_var(vars, &nv, "events",
		st->sink == HCASE_SINK_FULL	 ? "/dev/full"
		: st->sink == HCASE_SINK_STALLED ? p->fifo_path
						 : p->ev_path);
	add_var(vars, &nv, "records", p->rec_path);
	add_var(vars, &nv, "netns", nsp);
	add_var(vars, &nv, "ready_fd", ready_s);
	add_var(vars, &nv, "cell_id", cell_id);
	add_var(vars, &nv, "run_id", r->ctx->run_id);
	add_var(vars, &nv, "udp_fd", "4");
	add_var(vars, &nv, "tcp_fd", "5");
	if (st->argv) {
		size_t n = 0;

		while (st->argv[n])
			n++;
		argv = calloc(n + 1, sizeof(*argv));
		for (size_t i = 0; argv && i < n; i++)
			if (hprof_expand(st->argv[i], vars, nv, &argv[i], &missing) < 0) {
				e = -ENOENT;
				break;
			}
		e = !argv ? -ENOMEM : missing ? -ENOENT : 0;
	} else if (st->command) {
		e = hprof_cmd_argv(r->j->prof, st->component, st->command, vars, nv, args, &argv,
				   &missing);
	} else {
		e = hprof_argv(r->j->prof, st->component, vars, nv, args, &argv, &missing);
	}
	if (e < 0) {
		verdict(r, HREP_ERROR, "start %s: argv template: %s%s%s%s", st->name,
			util_errno_name(-e), missing ? ": no value for {" : "", missing ?: "",
			missing ? "}" : "");
		goto out;
	}
	if (st->mount_ns) {
		size_t n = 0;

		while (st->mount_target[n])
			n++;
		mnt_src = calloc(n + 1, sizeof(*mnt_src));
		mnt_tgt = calloc(n + 1, sizeof(*mnt_tgt));
		for (size_t i = 0; mnt_src && mnt_tgt && i < n; i++) {
			mnt_src[i] = rvars_expand(&rv, st->mount_source[i]);
			mnt_tgt[i] = rvars_expand(&rv, st->mount_target[i]);
		}
	}
	if (st->env) {
		env = calloc(json_object_size(st->env) + 1, sizeof(*env));
		json_object_foreach(env ? st->env : NULL, k, v)
		{
			_cleanup_free_ char *val = NULL;

			if (hprof_expand(json_string_value(v), vars, nv, &val, &missing) < 0 ||
			    asprintf(&env[n_env], "%s=%s", k, val) < 0) {
				verdict(r, HREP_ERROR, "start %s: env.%s: cannot prepare its value",
					st->name, k);
				goto out;
			}
			n_env++;
		}
	}
	for (int t = 0; t < 2; t++) {
		bool want = t == 0 ? st->lis_udp : st->lis_tcp;

		if (want && (lis[t] = listener_in_ns(r, st, listen,
						     t == 0 ? SOCK_DGRAM : SOCK_STREAM)) < 0) {
			verdict(r, HREP_ERROR, "start %s: %s listener on %s: %s", st->name,
				t == 0 ? "UDP" : "TCP", listen, util_errno_name(-lis[t]));
			goto out;
		}
	}
	if (st->lis_tcp_busy && (p->busy_fd = listener_in_ns(r, st, listen, SOCK_STREAM)) < 0) {
		verdict(r, HREP_ERROR, "start %s: busy TCP listener on %s: %s", st->name, listen,
			util_errno_name(-p->busy_fd));
		p->busy_fd = -1;
		goto out;
	}
	if (st->stdin_file && asprintf(&stdin_path, "%s/%s", r->ctx->srcdir, st->stdin_file) < 0)
		goto out;
	if (want_ready && st->ready && pipe2(rp, O_CLOEXEC) < 0) {
		verdict(r, HREP_ERROR, "start %s: pipe: %s", st->name, util_errno_name(errno));
		goto out;
	}
	/* Not waited for: {ready_fd} still names an open fd (a sink), as the option demands. */
	if (want_ready && !st->ready && (rp[1] = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		verdict(r, HREP_ERROR, "start %s: /dev/null: %s", st->name, util_errno_name(errno));
		goto out;
	}
	if (st->stdin_pipe && pipe2(ip, O_CLOEXEC) < 0) {
		verdict(r, HREP_ERROR, "start %s: pipe: %s", st->name, util_errno_name(errno));
		goto out;
	}
	{
		/* The profile passes the netns as {netns}; one that does not gets it by setns. */
		struct spawn_opts o = {
			.argv = argv,
			.netns_fd = !st->argv && !st->command && argv_mentions(pc->argv, "{netns}")
					    ? -1
					    : step_ns_fd(r, st),
			.stdin_path = stdin_path,
			.stdin_fd = ip[0],
			.out_path = p->out_path,
			.err_path = p->err_path,
			.ready_wfd = rp[1],
			.lis_fd = { lis[0], lis[1] },
			.fault = r->j->fault,
			.env = env,
			.has_user = st->has_user,
			.mnt_fd = -1,
			.cap_inh = st->cap_inh,
			.mount_ns = st->mount_ns,
			.mount_shared = st->mount_shared,
			.mount_type = st->mount_type,
			.mount_source = mnt_src,
			.mount_target = mnt_tgt,
			.groups = st->groups,
			.n_groups = st->n_groups,
			.has_groups = st->has_groups,
			.uid = st->uid,
			.gid = st->gid,
		};

		e = spawn(r, &o, &p->pid);
	}
	if (rp[1] >= 0)
		close(rp[1]);
	if (ip[0] >= 0)
		close(ip[0]);
	/* Kept (close-on-exec) for the feed steps; closed at the latest with the case. */
	p->stdin_w = ip[1];
	if (e < 0) {
		verdict(r, HREP_ERROR, "start %s: cannot execute %s: %s", st->name, argv[0],
			util_errno_name(-e));
		goto out;
	}
	p->running = true;
	if (rp[0] >= 0) {
		uint32_t cap = st->timeout_ms ?: pc->start_timeout_ms;
		_cleanup_close_ int pidfd = pidfd_open_(p->pid);
		/* The process's death ends the wait too: its ready fd may live on in a child. */
		struct pollfd pf[2] = { { .fd = rp[0], .events = POLLIN },
					{ .fd = pidfd, .events = POLLIN } };
		int ms = remaining_ms(r, cap), n;
		char b;

		n = poll(pf, pidfd >= 0 ? 2 : 1, ms);
		if (n > 0 && !(pf[0].revents & (POLLIN | POLLHUP))) {
			/* Exited: a byte written just before the end is still in the pipe. */
			struct pollfd last = { .fd = rp[0], .events = POLLIN };

			if (poll(&last, 1, 0) == 1)
				pf[0].revents = last.revents;
		}
		if (n == 0) {
			char tail[320];

			if (timed_out(r))
				;
			else if (st->expect_no_ready)
				verdict(r, HREP_FAIL,
					"start %s: ready fd neither written nor closed within %d ms, "
					"expected it closed without a byte; stderr ends: %s",
					st->name, ms, file_tail(p->err_path, tail, sizeof(tail)));
			else
				verdict(r, HREP_FAIL,
					"start %s: not ready within %d ms, expected a byte on the "
					"ready fd; stderr ends: %s",
					st->name, ms, file_tail(p->err_path, tail, sizeof(tail)));
		} else if (n > 0 &&
			   (!(pf[0].revents & (POLLIN | POLLHUP)) || read(rp[0], &b, 1) != 1)) {
			char got[80], tail[320];
			int status = -1;

			if (wait_exit(p->pid, (int)scaled(r, 1000), &status)) {
				p->running = false;
				p->exited = true;
				p->status = status;
			}
			if (!st->expect_no_ready)
				verdict(r, HREP_FAIL,
					"start %s: ended before its ready byte (%s), expected a byte "
					"on the ready fd; stderr ends: %s",
					st->name, status_text(status, got),
					file_tail(p->err_path, tail, sizeof(tail)));
		} else if (n > 0 && st->expect_no_ready) {
			verdict(r, HREP_FAIL, "start %s: wrote a ready byte, expected none",
				st->name);
		} else if (n > 0) {
			/* What the sink held when the byte came: ready.STEP.events. */
			char name[160];

			snprintf(name, sizeof(name), "ready.%s.events", st->name);
			set_num_var(r->vars, name, file_lines(p->ev_path));
		}
	}
out:
	for (int t = 0; t < 2; t++)
		if (lis[t] >= 0)
			close(lis[t]);
	if (rp[0] >= 0)
		close(rp[0]);
	hjson_strv_free(argv);
	hjson_strv_free(env);
	hjson_strv_free(args);
	hjson_strv_free(mnt_src);
	hjson_strv_free(mnt_tgt);
	for (size_t i = 0; i < n_owned; i++)
		free(owned[i]);
	rvars_free(&rv);
}

/*
 * Every stop message says what was expected and what happened, with the end of the process's
 * stderr: why it exited 1, or what it was doing when it would not end.
 */
static void step_stop(struct run *r, const struct hcase_step *st)
{
	struct proc *p = find_proc(r, st->target);
	char got[80], want[96], tail[320], sig[48];
	uint32_t cap;
	int ms;

	if (p)
		drain_start(r, p);
	if (!p) {
		verdict(r, HREP_ERROR, "stop %s: no process was started under that name",
			st->target);
		return;
	}
	if (!p->running) {
		sink_finish(r, p);
		if (st->expect_exit >= 0 && status_code(p->status) != st->expect_exit)
			verdict(r, HREP_FAIL,
				"stop %s: %s before the stop, expected %s; stderr ends: %s",
				st->target, status_text(p->status, got),
				expected_text(st->expect_exit, want),
				file_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	cap = st->timeout_ms ?: r->j->prof->comp[p->comp].stop_timeout_ms;
	if (st->signo)
		kill(p->pid, st->signo);
	ms = remaining_ms(r, cap ?: 10000);
	if (!wait_exit(p->pid, ms, &p->status)) {
		if (st->signo)
			snprintf(sig, sizeof(sig), "signal %d (SIG%s)", st->signo,
				 sigabbrev_np(st->signo) ?: "?");
		if (!timed_out(r))
			verdict(r, HREP_FAIL,
				"stop %s: still running %d ms after %s, expected %s by then; "
				"stderr ends: %s",
				st->target, ms, st->signo ? sig : "waiting for it to end by itself",
				st->expect_exit >= 0 ? expected_text(st->expect_exit, want)
						     : "it to end",
				file_tail(p->err_path, tail, sizeof(tail)));
		return;
	}
	p->running = false;
	p->exited = true;
	sink_finish(r, p);
	if (st->expect_exit >= 0 && status_code(p->status) != st->expect_exit)
		verdict(r, HREP_FAIL, "stop %s: %s, expected %s; stderr ends: %s", st->target,
			status_text(p->status, got), expected_text(st->expect_exit, want),
			file_tail(p->err_path, tail, sizeof(tail)));
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

static int ensure_driver(const struct hrun_ctx *ctx, struct hrun_worker *w)
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

	e = ensure_driver(r->ctx, r->w);
	if (e < 0) {
		verdict(r, HREP_ERROR, "driver: cannot start: %s", util_errno_name(-e));
		return;
	}
	nsp = step_ns_fd(r, st) >= 0 ? netns_path(r, st) : NULL;
	ms = remaining_ms(r, st->timeout_ms);
	if (ms <= 0) {
		timed_out(r);
		return;
	}
	e = hdrv_call(r->w->drv, nsp, st->op, st->op_args, (uint32_t)ms, &result, &err);
	if (e == -ETIMEDOUT) {
		if (!timed_out(r))
			verdict(r, HREP_ERROR, "driver %s: no answer within %d ms", st->op, ms);
	} else if (e < 0) {
		verdict(r, HREP_ERROR, "driver %s%s%s: %s", st->op, st->name ? " " : "",
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
	struct rvars rv;
	size_t argc = 0;
	char **argv;
	struct spawn_opts o = { .argv = NULL,
				.netns_fd = step_ns_fd(r, st),
				.stdin_fd = -1,
				.ready_wfd = -1,
				.lis_fd = { -1, -1 },
				.mnt_fd = -1,
				.fault = r->j->fault };
	_cleanup_close_ int mnt_fd = -1;

	if (st->mnt_of) {
		const struct proc *t = find_proc(r, st->mnt_of);
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", t && t->running ? t->pid : 0);
		mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (mnt_fd < 0) {
			verdict(r, HREP_ERROR, "client %s: mount namespace of %s: %s",
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
	rvars_build(r, st, &rv);
	for (size_t i = 0; argv && i < argc; i++)
		argv[i] = rvars_expand(&rv, st->argv[i]);
	rvars_free(&rv);
	o.argv = argv;
	if (!argv || asprintf(&out, "%s/%s.%zu.stdout", r->dir, nm, r->n_resps) < 0 ||
	    asprintf(&errp, "%s/%s.%zu.stderr", r->dir, nm, r->n_resps) < 0) {
		hjson_strv_free(argv);
		return;
	}
	o.out_path = out;
	o.err_path = errp;
	e = spawn(r, &o, &pid);
	if (e < 0) /* the path it tried, placeholders filled ({probe}) */
		verdict(r, HREP_ERROR, "client %s: cannot execute %s: %s", nm,
			argv[0] ?: st->argv[0], util_errno_name(-e));
	hjson_strv_free(argv);
	if (e < 0)
		return;
	if (!wait_exit(pid, remaining_ms(r, st->timeout_ms), &status)) {
		char want[96], tail[320];

		if (!timed_out(r))
			verdict(r, HREP_FAIL,
				"client %s (%s): still running after %u ms, expected %s by then; "
				"stderr ends: %s",
				nm, st->argv[0], scaled(r, st->timeout_ms),
				st->expect_exit >= 0 ? expected_text(st->expect_exit, want)
						     : "it to end",
				file_tail(errp, tail, sizeof(tail)));
		return;
	}
	data = slurp(out, &len);
	if (st->name)
		add_resp(r, st->name,
			 json_pack("{s:i, s:s%}", "exit", status_code(status), "stdout", data ?: "",
				   len));
	if (st->expect_exit >= 0 && status_code(status) != st->expect_exit) {
		char got[80], want[96], tail[320];

		verdict(r, HREP_FAIL, "client %s (%s): %s, expected %s; stderr ends: %s", nm,
			st->argv[0], status_text(status, got), expected_text(st->expect_exit, want),
			file_tail(errp, tail, sizeof(tail)));
	}
}

/* Plant a file below the case dir (a lease, a tripwire script); parents are created. */
static void step_file(struct run *r, const struct hcase_step *st)
{
	_cleanup_free_ char *path = NULL, *content = NULL;
	_cleanup_close_ int fd = -1;
	struct rvars rv;
	size_t len;

	rvars_build(r, st, &rv);
	path = rvars_expand(&rv, st->path);
	content = rvars_expand(&rv, st->content);
	rvars_free(&rv);
	if (!path || !content) {
		verdict(r, HREP_ERROR, "file: out of memory");
		return;
	}
	for (char *sl = strchr(path + strlen(r->dir) + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
		*sl = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			verdict(r, HREP_ERROR, "file %s: mkdir: %s", path, util_errno_name(errno));
			return;
		}
		*sl = '/';
	}
	len = strlen(content);
	/* A script (tripwire) must be executable by whoever the case starts. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  strncmp(content, "#!", 2) == 0 ? 0755 : 0644);
	if (fd < 0 || write(fd, content, len) != (ssize_t)len)
		verdict(r, HREP_ERROR, "file %s: %s", path, util_errno_name(errno));
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
		_cleanup_free_ char *buf = slurp(r->procs[i].ev_path, &len);
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
		uint32_t ms = st->scaled ? scaled(r, st->ms) : st->ms;

		if (now_ns() + (uint64_t)ms * 1000000 > r->deadline_ns) {
			usleep((useconds_t)remaining_ms(r, 0) * 1000);
			timed_out(r);
			return;
		}
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return;
	}
	until = now_ns() + (uint64_t)remaining_ms(r, st->timeout_ms) * 1000000;
	/* Polling files is crude but keeps the IUT's output exactly as it wrote it. */
	while (count_events(r, st->event_type) < (st->count ?: 1)) {
		if (now_ns() >= until) {
			timed_out(r);
			return; /* not there in time: the expectations say whether it matters */
		}
		usleep(10000);
	}
}

static void step_feed(struct run *r, const struct hcase_step *st)
{
	struct proc *p = find_proc(r, st->target);
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t len = 0;
	int e;

	if (!p || p->stdin_w < 0) {
		verdict(r, HREP_ERROR, "feed %s: its stdin is not an open pipe", st->target);
		return;
	}
	if (st->file) {
		if (asprintf(&path, "%s/%s", r->ctx->srcdir, st->file) < 0)
			return verdict(r, HREP_ERROR, "feed: out of memory");
		data = slurp(path, &len);
		if (!data)
			return verdict(r, HREP_ERROR, "feed %s: cannot read %s", st->target, path);
		/* A component that stopped reading is its own failure; the pipe must not stop us.
		 */
		signal(SIGPIPE, SIG_IGN);
		e = util_write_all(p->stdin_w, data, len);
		if (e < 0)
			verdict(r, HREP_FAIL,
				"feed %s: writing %s (%zu bytes) to its stdin: %s, expected it to "
				"read them all",
				st->target, st->file, len, util_errno_name(-e));
	}
	if (st->close_stdin) {
		close(p->stdin_w);
		p->stdin_w = -1;
	}
}

static size_t file_lines(const char *path)
{
	size_t len, n = 0;
	_cleanup_free_ char *buf = slurp(path, &len);

	for (size_t i = 0; buf && i < len; i++)
		n += buf[i] == '\n';
	return n;
}

/* Until the target's stdout has N lines: output that does not come in time is a FAIL. */
static void step_wait_lines(struct run *r, const struct hcase_step *st)
{
	struct proc *p = find_proc(r, st->target);
	uint64_t t0 = now_ns(), until = t0 + (uint64_t)remaining_ms(r, st->timeout_ms) * 1000000;
	size_t n = 0;

	if (!p)
		return verdict(r, HREP_ERROR, "wait: no started step %s", st->target);
	while ((n = file_lines(p->out_path)) < st->stdout_lines) {
		if (now_ns() >= until) {
			verdict(r, HREP_FAIL,
				"wait %s: %zu lines on stdout after %llu ms, expected %u",
				st->target, n, (unsigned long long)((now_ns() - t0) / 1000000),
				st->stdout_lines);
			return;
		}
		usleep(2000);
	}
}

static void run_steps(struct run *r)
{
	for (size_t i = 0; i < r->c->n_steps && r->status == HREP_PASS; i++) {
		const struct hcase_step *st = &r->c->steps[i];

		if (timed_out(r))
			break;
		switch (st->action) {
		case HCASE_ACT_START:
			step_start(r, st);
			break;
		case HCASE_ACT_DRIVER:
			step_driver(r, st);
			break;
		case HCASE_ACT_CLIENT:
			step_client(r, st);
			break;
		case HCASE_ACT_WAIT:
			if (st->stdout_lines)
				step_wait_lines(r, st);
			else
				step_wait(r, st);
			break;
		case HCASE_ACT_FILE:
			step_file(r, st);
			break;
		case HCASE_ACT_DRAIN:
			drain_start(r, find_proc(r, st->target));
			break;
		case HCASE_ACT_FEED:
			step_feed(r, st);
			break;
		case HCASE_ACT_SIGNAL: {
			struct proc *p = find_proc(r, st->target);

			if (p && p->running)
				kill(p->pid, st->signo);
			break;
		}
		case HCASE_ACT_STOP:
			step_stop(r, st);
			break;
		default:
			verdict(r, HREP_ERROR, "step %zu: unknown action", i);
		}
		struct hrep_problem *last = r->n_probs ? &r->probs[r->n_probs - 1] : NULL;

		if (last && last->status == HREP_ERROR && last->message &&
		    !strncmp(last->message, "TIMEOUT", 7) && !strstr(last->message, "(in step ")) {
			char *m = NULL;

			if (asprintf(&m, "%s (in step %zu, %s)", last->message, i,
				     hcase_action_names[st->action]) >= 0) {
				free(last->message);
				last->message = m;
			}
		}
	}
}

/* ---- audit ---- */

static bool ns_inode_alive(ino_t ino)
{
	char want[64], buf[64], path[300], line[1024];
	_cleanup_fclose_ FILE *mi = fopen("/proc/self/mountinfo", "re");
	DIR *d;
	struct dirent *e;
	bool alive = false;

	snprintf(want, sizeof(want), "net:[%lu]", (unsigned long)ino);
	while (mi && fgets(line, sizeof(line), mi))
		if (strstr(line, want))
			return true;
	d = opendir("/proc");
	while (d && (e = readdir(d)) && !alive) {
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
		n = readlink(path, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			alive = strcmp(buf, want) == 0;
		}
	}
	if (d)
		closedir(d);
	return alive;
}

/*
 * Processes that left their group (setsid, setpgid) still come back to the worker, the
 * subreaper, once their parent is gone: any child but the driver is a leftover. Killed and
 * reaped so the next case starts clean.
 */
static void leftover_children(struct run *r)
{
	pid_t self = getpid(), drv = r->w->drv ? hdrv_pid(r->w->drv) : 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], buf[512], comm[64] = "?";
		_cleanup_fclose_ FILE *f = NULL;
		pid_t pid = atoi(e->d_name), ppid = 0;
		char *p;

		if (pid <= 0 || pid == drv)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')))
			continue;
		if (sscanf(p + 2, "%*c %d", &ppid) != 1 || ppid != self)
			continue;
		sscanf(buf, "%*d (%63[^)]", comm);
		if (strchr(p + 2, 'Z') == p + 2) {
			waitpid(pid, NULL, WNOHANG);
			continue;
		}
		verdict(r, HREP_ERROR, "leftover: process %d (%s) escaped its process group", pid,
			comm);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (d)
		closedir(d);
}

static void bpf_walk(int (*next)(__u32, __u32 *), uint32_t *max)
{
	__u32 id = 0;

	*max = 0;
	while (next(id, &id) == 0)
		*max = id;
}

void hrun_bpf_marks(uint32_t *ret_prog, uint32_t *ret_link)
{
	bpf_walk(bpf_prog_get_next_id, ret_prog);
	bpf_walk(bpf_link_get_next_id, ret_link);
}

bool hrun_bpf_id_present(uint32_t id)
{
	/* Ids above 2^31 mark links (see collect_bpf); both come from the kernel's idr. */
	int fd = (id & 0x80000000u) ? bpf_link_get_fd_by_id(id & 0x7fffffffu)
				    : bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return errno != ENOENT;
	close(fd);
	return true;
}

/* Whether pid descends from (or is) the process anc. */
static bool descends_from(pid_t pid, pid_t anc)
{
	for (int depth = 0; pid > 1 && depth < 64; depth++) {
		char path[64], buf[512];
		_cleanup_fclose_ FILE *f = NULL;
		char *p;

		if (pid == anc)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')) ||
		    sscanf(p + 2, "%*c %d", &pid) != 1)
			return false;
	}
	return pid == anc;
}

/*
 * BPF programs and links held open by a process that is not this worker's: another run's, a
 * test's, a daemon's (SPEC CHK-AUDIT-003: runs side by side). A program that appeared during the
 * case is not its leftover when someone else holds it. Ids as in collect_bpf (links | 2^31).
 */
static size_t foreign_bpf(uint32_t **ret)
{
	pid_t self = getpid();
	uint32_t *ids = NULL;
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300];
		pid_t pid = atoi(e->d_name);
		DIR *fds;
		struct dirent *fe;
		bool mine = false, checked = false;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		while (fds && (fe = readdir(fds))) {
			char lpath[600], target[64], line[128];
			_cleanup_fclose_ FILE *f = NULL;
			ssize_t l;
			unsigned int id;
			bool link;

			snprintf(lpath, sizeof(lpath), "/proc/%d/fd/%s", pid, fe->d_name);
			l = readlink(lpath, target, sizeof(target) - 1);
			if (l <= 0)
				continue;
			target[l] = '\0';
			link = strcmp(target, "anon_inode:bpf_link") == 0;
			if (!link && strcmp(target, "anon_inode:bpf-prog") != 0)
				continue;
			if (!checked) {
				mine = descends_from(pid, self);
				checked = true;
			}
			if (mine)
				break;
			snprintf(lpath, sizeof(lpath), "/proc/%d/fdinfo/%s", pid, fe->d_name);
			f = fopen(lpath, "re");
			while (f && fgets(line, sizeof(line), f)) {
				uint32_t *m;

				if (sscanf(line, link ? "link_id: %u" : "prog_id: %u", &id) != 1)
					continue;
				m = realloc(ids, (n + 1) * sizeof(*m));
				if (m) {
					ids = m;
					ids[n++] = link ? id | 0x80000000u : id;
				}
				break;
			}
		}
		if (fds)
			closedir(fds);
	}
	if (d)
		closedir(d);
	*ret = ids;
	return n;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * Programs made after the mark and still there, unless another process holds them; cgroup
 * programs are the init system's.
 */
static void collect_bpf(struct hrun_result *res, uint32_t prog_mark, uint32_t link_mark)
{
	_cleanup_free_ uint32_t *foreign = NULL;
	size_t n_foreign = foreign_bpf(&foreign);
	__u32 id = prog_mark;

	while (bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int fd;
		uint32_t *n;

		if (id_in(foreign, n_foreign, id))
			continue;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    (info.type == BPF_PROG_TYPE_CGROUP_SKB ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCK ||
		     info.type == BPF_PROG_TYPE_CGROUP_DEVICE ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR ||
		     info.type == BPF_PROG_TYPE_CGROUP_SYSCTL ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCKOPT)) {
			close(fd);
			continue;
		}
		close(fd);
		n = realloc(res->bpf_ids, (res->n_bpf_ids + 1) * sizeof(*n));
		if (!n)
			return;
		res->bpf_ids = n;
		res->bpf_ids[res->n_bpf_ids++] = id;
	}
	id = link_mark;
	while (bpf_link_get_next_id(id, &id) == 0) {
		uint32_t *n;

		if (id_in(foreign, n_foreign, id | 0x80000000u))
			continue;
		n = realloc(res->bpf_ids, (res->n_bpf_ids + 1) * sizeof(*n));
		if (!n)
			return;
		res->bpf_ids = n;
		res->bpf_ids[res->n_bpf_ids++] = id | 0x80000000u;
	}
}

/* Interface names in the worker's own namespace, "lo eth0 ... ": links a case must not add. */
static char *host_links(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/net/dev", "re");
	char line[512], name[64], *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	if (!m)
		return NULL;
	while (f && fgets(line, sizeof(line), f))
		if (strchr(line, ':') && sscanf(line, " %63[^:]:", name) == 1)
			fprintf(m, " %s ", name);
	fclose(m);
	return out;
}

static void audit_host_links(struct run *r, const char *before)
{
	_cleanup_free_ char *after = host_links();
	char *save = NULL, key[80];

	if (!before || !after)
		return;
	for (char *n = strtok_r(after, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
		snprintf(key, sizeof(key), " %s ", n);
		if (!strstr(before, key))
			verdict(r, HREP_ERROR, "leftover: link %s in the harness's namespace", n);
	}
}

/* ---- artifacts ---- */

/* The step a response came from (by name), for what was asked. */
static const struct hcase_step *step_named(const struct run *r, const char *name)
{
	for (size_t i = 0; name && i < r->c->n_steps; i++)
		if (r->c->steps[i].name && strcmp(r->c->steps[i].name, name) == 0)
			return &r->c->steps[i];
	return NULL;
}

/*
 * result.json: the case's problems, each process's outcome and every response in full (what
 * was asked, what came back), so a failure is understood without running it again.
 */
static void write_result_json(const struct run *r, const char *path)
{
	json_t *doc = json_pack("{s:s, s:s, s:[], s:[], s:[]}", "case", r->c->id, "status",
				hrep_status_names[r->status], "problems", "processes", "responses");
	json_t *pa = json_object_get(doc, "problems"), *pr = json_object_get(doc, "processes"),
	       *ra = json_object_get(doc, "responses");

	if (!doc)
		return;
	for (size_t i = 0; i < r->n_probs; i++) {
		json_t *po =
			json_pack("{s:s, s:s}", "status", hrep_status_names[r->probs[i].status],
				  "message", r->probs[i].message ?: "");
		char idx[24];

		/* Both sides of an expectation in full (both hex dumps of a DNS message). */
		snprintf(idx, sizeof(idx), "%zu", i);
		if (po && json_object_get(r->full, idx))
			json_object_update(po, json_object_get(r->full, idx));
		json_array_append_new(pa, po);
	}
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct proc *p = &r->procs[i];
		char got[80];

		json_array_append_new(
			pr, json_pack("{s:s?, s:s, s:b, s:s}", "step", p->st ? p->st->name : NULL,
				      "component", hcase_component_names[p->comp], "endedByItself",
				      p->exited, "outcome", status_text(p->status, got)));
	}
	for (size_t i = 0; i < r->n_resps; i++) {
		const struct hcase_step *st = step_named(r, r->resps[i].step);
		json_t *o = json_pack("{s:s?, s:O?}", "step", r->resps[i].step, "result",
				      r->resps[i].result);

		if (st && st->op) {
			json_object_set_new(o, "op", json_string(st->op));
			if (st->op_args)
				json_object_set(o, "args", st->op_args);
		} else if (st && st->argv) {
			json_t *av = json_array();

			for (char **a = st->argv; *a; a++)
				json_array_append_new(av, json_string(*a));
			json_object_set_new(o, "argv", av);
		}
		json_array_append_new(ra, o);
	}
	json_dump_file(doc, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(doc);
}

static char *keep_artifacts(struct run *r)
{
	_cleanup_free_ char *dir = NULL, *rel = NULL, *path = NULL, *self = NULL;
	DIR *d;
	struct dirent *e;
	FILE *f;

	if (!r->ctx->report_dir || asprintf(&rel, "artifacts/%s", r->c->id) < 0 ||
	    asprintf(&dir, "%s/%s", r->ctx->report_dir, rel) < 0)
		return NULL;
	hrun_rmtree(dir);
	if (mkdir(dir, 0755) < 0)
		return NULL;
	d = opendir(r->dir);
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *from = NULL, *to = NULL;

		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&from, "%s/%s", r->dir, e->d_name) >= 0 &&
		    asprintf(&to, "%s/%s", dir, e->d_name) >= 0)
			copy_file(from, to, 0);
	}
	if (d)
		closedir(d);
	if (r->w->drv_log) {
		_cleanup_free_ char *to = NULL;

		if (asprintf(&to, "%s/driver.log", dir) >= 0)
			copy_file(r->w->drv_log, to, r->drv_log_off);
	}
	if (asprintf(&path, "%s/message.txt", dir) >= 0 && (f = fopen(path, "we"))) {
		fprintf(f, "%s: %zu problem%s\n", hrep_status_names[r->status], r->n_probs,
			r->n_probs == 1 ? "" : "s");
		for (size_t i = 0; i < r->n_probs; i++)
			fprintf(f, "%s: %s\n", hrep_status_names[r->probs[i].status],
				r->probs[i].message ?: "");
		fclose(f);
	}
	free(path);
	path = NULL;
	if (asprintf(&path, "%s/result.json", dir) >= 0)
		write_result_json(r, path);
	free(path);
	path = NULL;
	self = realpath("/proc/self/exe", NULL);
	if (asprintf(&path, "%s/reproduce.sh", dir) >= 0 && (f = fopen(path, "we"))) {
		/* Absolute paths and the environment the run had: it works from anywhere. */
		static const char *const env_keep[] = { "CELLCHECK_BUILDDIR", "CELLCHECK_SRCDIR",
							"CELLREF_FAULT", NULL };

		fprintf(f, "#!/bin/sh\n# Reproduce %s (%s: see message.txt), from any directory.\n",
			r->c->id, hrep_status_names[r->status]);
		if (hrun_case_needs_root(r->c))
			fputs("[ \"$(id -u)\" = 0 ] || exec sudo -- \"$0\" \"$@\"\n", f);
		for (const char *const *k = env_keep; *k; k++)
			if (getenv(*k)) {
				fprintf(f, "%s=", *k);
				sh_quote(f, getenv(*k));
				fprintf(f, "\nexport %s\n", *k);
			}
		fputs("exec ", f);
		sh_quote(f, self ?: "cellcheck");
		fputs(" run --profile ", f);
		sh_quote(f, r->ctx->profile_arg);
		if (r->ctx->cases_arg) {
			fputs(" --cases ", f);
			sh_quote(f, r->ctx->cases_arg);
		}
		fputs(" --filter ", f);
		sh_quote(f, r->c->id);
		fputs(" \"$@\"\n", f);
		fclose(f);
		chmod(path, 0755);
	}
	return TAKE_PTR(rel);
}

/* ---- the case ---- */

static void collect(struct run *r, struct hobs_proc *op)
{
	for (size_t i = 0; i < r->n_procs; i++) {
		struct proc *p = &r->procs[i];

		p->out = slurp(p->out_path, &p->out_len);
		p->err = slurp(p->err_path, &p->err_len);
		sink_collect(p);
		if (!p->ev)
			p->ev = slurp(p->ev_path, &p->ev_len);
		p->rec = slurp(p->rec_path, &p->rec_len);
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
					    .exit_status = status_code(p->status) };
	}
}

static void set_num_var(json_t *vars, const char *k, uint64_t v)
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
					set_num_var(vars, name, (uint64_t)json_integer_value(v));
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
			set_num_var(vars, name, (uint64_t)json_integer_value(v));
		}
		json_decref(counts);
	}
}

int hrun_case_exec(const struct hrun_ctx *ctx, struct hrun_worker *w, const struct hrun_job *j,
		   struct hrun_result *ret)
{
	const struct hcase *c = j->c;
	uint64_t t0 = now_ns();
	struct run r = { .ctx = ctx, .w = w, .j = j, .c = c, .status = HREP_PASS };
	_cleanup_free_ struct hobs_proc *op = NULL;
	_cleanup_free_ int *fds_before = NULL, *fds_after = NULL;
	_cleanup_free_ char *links_before = NULL;
	size_t n_before, n_after;
	uint32_t prog_mark, link_mark;
	uint64_t upstream_queries = UINT64_MAX;
	bool steps_ran = false;
	ino_t *inos = NULL;
	struct stat sb;
	char tmpl[4096];

	memset(ret, 0, sizeof(*ret));
	ret->reason = skip_reason(ctx, j);
	if (ret->reason) {
		ret->status = HREP_SKIP;
		return 0;
	}
	for (size_t i = 0; i < c->n_steps; i++)
		if (c->steps[i].action == HCASE_ACT_DRIVER && ensure_driver(ctx, w) < 0)
			break; /* the step reports it */
	if (w->drv_log && stat(w->drv_log, &sb) == 0)
		r.drv_log_off = (uint64_t)sb.st_size;
	fds_before = calloc(MAX_FDS, sizeof(int));
	fds_after = calloc(MAX_FDS, sizeof(int));
	r.ns_fd = calloc(c->topo.n_ns + 1, sizeof(int));
	inos = calloc(c->topo.n_ns + 1, sizeof(*inos));
	r.procs = calloc(c->n_steps + 1, sizeof(*r.procs));
	r.cap_fd = calloc(2 * c->topo.n_links + c->topo.n_ns + 1, sizeof(int));
	r.vars = json_object();
	if (!fds_before || !fds_after || !r.ns_fd || !inos || !r.procs || !r.vars || !r.cap_fd)
		goto oom;
	n_before = fd_snapshot(fds_before, MAX_FDS);
	links_before = host_links();
	hrun_bpf_marks(&prog_mark, &link_mark);
	for (size_t i = 0; i < c->topo.n_ns; i++)
		r.ns_fd[i] = -1;
	for (size_t i = 0; i < 2 * c->topo.n_links + c->topo.n_ns; i++)
		r.cap_fd[i] = -1;

	snprintf(tmpl, sizeof(tmpl), "%s/case.XXXXXX", ctx->run_dir);
	if (!mkdtemp(tmpl)) {
		verdict(&r, HREP_ERROR, "temp dir: %s", util_errno_name(errno));
		goto audit;
	}
	r.dir = strdup(tmpl);
	r.deadline_ns = t0 + (uint64_t)scaled(&r, c->timeout_ms) * 1000000;
	if (topo_up(&r) < 0)
		goto end;
	capture_start(&r);
	if (c->upstream && upstream_start(&r) < 0)
		goto end;
	set_num_var(r.vars, "case.start_ns", now_ns());
	steps_ran = true;
	run_steps(&r);
end:
	set_num_var(r.vars, "case.end_ns", now_ns());
	link_counters(&r);
	/* Whatever still runs had to be killed: that is what hobs_proc.exited tells. */
	for (size_t i = 0; i < r.n_procs; i++)
		if (r.procs[i].running) {
			int st;

			r.procs[i].status = HSTATUS_SIGNALED | SIGKILL;
			kill_group(r.procs[i].pid);
			if (wait_exit(r.procs[i].pid, 100, &st))
				r.procs[i].status = st;
			r.procs[i].running = false;
		}
	upstream_queries = upstream_stop(&r);
	for (size_t i = 0; i < r.n_pgids; i++)
		kill_group(r.pgids[i]);
	op = calloc(r.n_procs + 1, sizeof(*op));
	if (!op)
		verdict(&r, HREP_ERROR, "out of memory");
	else
		collect(&r, op);
	if (op) {
		probe_vars(r.vars, op, r.n_procs);
		event_count_vars(r.vars, op, r.n_procs);
	}
	for (size_t i = 0; i < r.n_procs; i++) {
		if (r.procs[i].sink_fd >= 0)
			close(r.procs[i].sink_fd);
		if (r.procs[i].busy_fd >= 0)
			close(r.procs[i].busy_fd);
		r.procs[i].sink_fd = r.procs[i].busy_fd = -1;
	}

	/* Every expectation that can still be judged: a failed step does not hide them. */
	if (steps_ran) {
		struct hobs o = { .procs = op,
				  .n_procs = r.n_procs,
				  .resps = r.resps,
				  .n_resps = r.n_resps,
				  .vars = r.vars,
				  .upstream_queries = upstream_queries,
				  .srcdir = ctx->srcdir,
				  /* For an artifact fault, the variant's object (selftest). */
				  .bpf_object = j->prof->comp[c->component].bpf_object };
		struct hexp_problem *xp = NULL;
		size_t n_xp = 0;
		int e = hexp_check_all(c, &o, &xp, &n_xp);

		if (e == -ENOMEM && !n_xp)
			verdict(&r, HREP_ERROR, "expectations could not be checked: out of memory");
		for (size_t i = 0; i < n_xp; i++) {
			if (xp[i].r < 0)
				verdict(&r, HREP_ERROR, "expectations could not be checked: %s",
					xp[i].msg ?: util_errno_name(-xp[i].r));
			else
				verdict(&r, HREP_FAIL, "%s", xp[i].msg ?: "expectation not met");
			/* The message may cut long values; result.json has them whole. */
			if (xp[i].expected || xp[i].got) {
				char idx[24];

				snprintf(idx, sizeof(idx), "%zu", r.n_probs - 1);
				if (!r.full)
					r.full = json_object();
				json_object_set_new(r.full, idx,
						    json_pack("{s:s?, s:s?}", "expected",
							      xp[i].expected, "got", xp[i].got));
			}
		}
		hexp_problems_free(xp, n_xp);
	}
audit:
	capture_stop(&r);
	for (size_t i = 0; i < c->topo.n_ns; i++)
		if (r.ns_fd[i] >= 0) {
			if (fstat(r.ns_fd[i], &sb) == 0)
				inos[i] = sb.st_ino;
			close(r.ns_fd[i]);
			r.ns_fd[i] = -1;
		}
	for (size_t i = 0; i < r.n_aux_ns; i++)
		close(r.aux_ns[i]);
	r.n_aux_ns = 0;
	leftover_children(&r);
	audit_host_links(&r, links_before);
	for (size_t i = 0; i < r.n_pgids; i++)
		if (kill(-r.pgids[i], 0) == 0)
			verdict(&r, HREP_ERROR, "leftover: process group %d still has processes",
				r.pgids[i]);
	for (size_t i = 0; i < c->topo.n_ns; i++)
		if (inos[i] && ns_inode_alive(inos[i]))
			verdict(&r, HREP_ERROR,
				"leftover: network namespace %s (inode %lu) lives on",
				c->topo.ns[i], (unsigned long)inos[i]);
	n_after = fd_snapshot(fds_after, MAX_FDS);
	for (size_t i = 0; i < n_after; i++)
		if (!fd_in(fds_before, n_before, fds_after[i])) {
			char p[64], t[256] = "?";
			ssize_t n;

			snprintf(p, sizeof(p), "/proc/self/fd/%d", fds_after[i]);
			n = readlink(p, t, sizeof(t) - 1);
			t[n > 0 ? n : 1] = '\0';
			verdict(&r, HREP_ERROR, "leftover: harness fd %d (%s)", fds_after[i], t);
		}
	collect_bpf(ret, prog_mark, link_mark);
	/* A closed netns is torn down by a kernel work queue: its filters' programs go a little
	 * later. Alone on the machine, wait for that; with concurrent cases the parent does. */
	for (int i = 0; ctx->settle_bpf && ret->n_bpf_ids && i < 1000; i++) {
		usleep(2000);
		ret->n_bpf_ids = 0;
		collect_bpf(ret, prog_mark, link_mark);
	}
	if ((r.status == HREP_FAIL || r.status == HREP_ERROR) && r.dir)
		ret->artifacts = keep_artifacts(&r);
	ret->status = r.status;
	if (r.n_probs > 1) {
		if (asprintf(&ret->message, "%s (and %zu more)", first_message(&r) ?: "",
			     r.n_probs - 1) < 0)
			ret->message = NULL;
	} else if (r.n_probs == 1) {
		ret->message = r.probs[0].message ? strdup(r.probs[0].message) : NULL;
	}
	ret->problems = TAKE_PTR(r.probs);
	ret->n_problems = r.n_probs;
	r.n_probs = 0;
	ret->duration_ms = (now_ns() - t0) / 1000000;
	goto free;
oom:
	ret->status = HREP_ERROR;
	ret->message = strdup("out of memory");
free:
	if (r.dir)
		hrun_rmtree(r.dir);
	free(r.dir);
	for (size_t i = 0; i < r.n_procs; i++) {
		struct proc *p = &r.procs[i];

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
	for (size_t i = 0; i < r.n_resps; i++)
		json_decref(r.resps[i].result);
	free(r.resps);
	free(r.procs);
	free(r.pgids);
	free(r.ns_fd);
	free(r.cap_fd);
	free(r.upstream_log);
	for (size_t i = 0; i < r.n_probs; i++)
		free(r.probs[i].message);
	free(r.probs);
	free(inos);
	json_decref(r.vars);
	json_decref(r.full);
	return 0;
}
