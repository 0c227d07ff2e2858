// SPDX-License-Identifier: Apache-2.0
/*
 * Client of the traffic driver (hdrv.h): a child /usr/bin/python3 running the driver script,
 * fed JSON lines through a pipe and read back through another. The child sits in a process
 * group of its own, so the runner killing a case's group never takes the driver down, and it
 * dies with us (PR_SET_PDEATHSIG). After a timeout or a death the child is killed and reaped
 * at once (it may pin a case's namespace) and a fresh one starts on the next call.
 */
#include "hdrv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define HDRV_PYTHON	    "/usr/bin/python3"
#define HDRV_HELLO_MS	    10000
#define HDRV_SLACK_MS	    1000
#define HDRV_STOP_MS	    2000
#define HDRV_DEFAULT_TMO_MS 5000
/* The driver's own bound (cellcheck_driver.py): a scaled case deadline can exceed it. */
#define HDRV_MAX_TMO_MS 600000
#define HDRV_LINE_MAX	(64u << 20) /* a reply longer than this is a broken driver */

struct hdrv {
	char *script;
	char *log_path;
	pid_t pid;   /* 0: not running (start on the next call) */
	int to_fd;   /* its stdin */
	int from_fd; /* its stdout */
	uint64_t next_id;
	char *buf; /* bytes read from from_fd, not yet consumed as lines */
	size_t len, cap;
};

static uint64_t now_ms(void)
{
	return util_now_monotonic_ns() / 1000000u;
}

/* Kill (when asked) and reap the child; close our ends of its pipes. */
static void drv_reap(struct hdrv *d, bool kill_it, int grace_ms)
{
	if (d->to_fd >= 0)
		close(TAKE_FD(d->to_fd));
	if (d->pid > 0) {
		uint64_t until = now_ms() + (uint64_t)grace_ms;
		bool gone = false;

		if (kill_it)
			kill(d->pid, SIGKILL);
		/* EOF on stdin makes the driver exit; give it grace_ms to do so. */
		while (!gone) {
			pid_t r = waitpid(d->pid, NULL, WNOHANG);

			if (r == d->pid || (r < 0 && errno != EINTR)) {
				gone = true;
			} else if (now_ms() >= until) {
				kill(d->pid, SIGKILL);
				while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
					;
				gone = true;
			} else {
				nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
			}
		}
		d->pid = 0;
	}
	if (d->from_fd >= 0)
		close(TAKE_FD(d->from_fd));
	d->len = 0;
}

/*
 * One line from the driver, NUL-terminated in place (valid until the next read), within
 * deadline (monotonic ms). 0, -ETIMEDOUT, -EPIPE (EOF or read error) or -EPROTO (too long).
 */
static int drv_read_line(struct hdrv *d, uint64_t deadline, char **ret_line, size_t *consumed)
{
	for (;;) {
		char *nl = d->len ? memchr(d->buf, '\n', d->len) : NULL;

		if (nl) {
			*nl = '\0';
			*ret_line = d->buf;
			*consumed = (size_t)(nl - d->buf) + 1;
			return 0;
		}
		if (d->len >= HDRV_LINE_MAX)
			return -EPROTO;
		if (d->cap - d->len < 4096) {
			size_t ncap = d->cap ? d->cap * 2 : 16384;
			char *nb = realloc(d->buf, ncap);

			if (!nb)
				return -ENOMEM;
			d->buf = nb;
			d->cap = ncap;
		}
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = d->from_fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(d->from_fd, d->buf + d->len, d->cap - d->len);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -EPIPE;
		d->len += (size_t)n;
	}
}

static void drv_consume(struct hdrv *d, size_t n)
{
	memmove(d->buf, d->buf + n, d->len - n);
	d->len -= n;
}

/*
 * Write all of buf to the driver without risking SIGPIPE for the whole process: block it on
 * this thread, and swallow the one a write to a dead driver leaves pending.
 */
static int drv_write(struct hdrv *d, const char *buf, size_t len)
{
	sigset_t pipe_set, old;
	int r;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = util_write_all(d->to_fd, buf, len);
	if (r == -EPIPE && !sigismember(&old, SIGPIPE)) {
		sigset_t pending;

		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &(struct timespec){ 0 });
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* Runs between fork and exec: async-signal-safe calls only. */
static __attribute__((noreturn)) void drv_child(int in_fd, int out_fd, int log_fd, int err_fd,
						pid_t parent, char *const argv[])
{
	int e;

	/* Our own process group: the runner kills a case's group, never its driver. */
	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != parent) /* the parent died before PDEATHSIG was armed */
		_exit(127);
	/*
	 * Lift the three above stdio first: a runner with a closed stdio fd may have been handed
	 * fd 0..2 for a pipe, and dup2 onto itself would neither move it nor clear CLOEXEC.
	 */
	in_fd = fcntl(in_fd, F_DUPFD, 3);
	out_fd = fcntl(out_fd, F_DUPFD, 3);
	log_fd = fcntl(log_fd, F_DUPFD, 3);
	if (in_fd < 0 || out_fd < 0 || log_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(log_fd, 2) < 0)
		goto fail;
	/* Everything else closes on exec, whatever the runner forgot to mark CLOEXEC. */
	if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != err_fd)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	execv(argv[0], argv);
fail:
	e = errno;
	(void)!write(err_fd, &e, sizeof(e));
	_exit(127);
}

/* Start a driver and wait for its greeting line. 0 or -errno. */
static int drv_spawn(struct hdrv *d)
{
	_cleanup_close_ int log_fd = -1, err_r = -1, err_w = -1;
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, errp[2];
	char *argv[] = { (char *)HDRV_PYTHON, (char *)"-I", d->script, NULL };
	pid_t parent = getpid(), pid;
	int r, child_err;
	ssize_t n;

	log_fd = open(d->log_path ? d->log_path : "/dev/null",
		      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
	if (log_fd < 0)
		return -errno;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	err_r = errp[0];
	err_w = errp[1];
	if (pipe2(in_p, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out_p, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail_pipes;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto fail_pipes;
	}
	if (pid == 0)
		drv_child(in_p[0], out_p[1], log_fd, err_w, parent, argv);
	setpgid(pid, pid); /* both sides set it: no window where a group kill reaches it */
	close(in_p[0]);
	close(out_p[1]);
	close(TAKE_FD(err_w));
	d->pid = pid;
	d->to_fd = in_p[1];
	d->from_fd = out_p[0];
	d->len = 0;

	do
		n = read(err_r, &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(child_err)) {
		drv_reap(d, true, 0);
		return -child_err;
	}

	char *line;
	size_t used;

	r = drv_read_line(d, now_ms() + HDRV_HELLO_MS, &line, &used);
	if (r == 0) {
		json_t *hello = json_loads(line, 0, NULL);
		json_t *res = json_object_get(hello, "result");

		r = json_is_true(json_object_get(hello, "ok")) &&
				    json_is_string(json_object_get(res, "driver"))
			    ? 0
			    : -EPROTO;
		json_decref(hello);
		drv_consume(d, used);
	} else if (r == -EPIPE) {
		r = -EPROTO; /* the interpreter ran but the script is not a driver */
	}
	if (r < 0)
		drv_reap(d, true, 0);
	return r;

fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (in_p[i] >= 0)
			close(in_p[i]);
		if (out_p[i] >= 0)
			close(out_p[i]);
	}
	return r;
}

void hdrv_stop(struct hdrv *d)
{
	if (!d)
		return;
	drv_reap(d, false, HDRV_STOP_MS);
	free(d->buf);
	free(d->script);
	free(d->log_path);
	free(d);
}

int hdrv_start(const char *script, const char *log_path, struct hdrv **ret)
{
	struct hdrv *d;
	int r;

	if (!script || !ret)
		return -EINVAL;
	if (access(script, R_OK) < 0)
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->to_fd = d->from_fd = -1;
	d->script = strdup(script);
	d->log_path = log_path ? strdup(log_path) : NULL;
	if (!d->script || (log_path && !d->log_path)) {
		hdrv_stop(d);
		return -ENOMEM;
	}
	r = drv_spawn(d);
	if (r < 0) {
		hdrv_stop(d);
		return r;
	}
	*ret = d;
	return 0;
}

pid_t hdrv_pid(const struct hdrv *d)
{
	return d ? d->pid : 0;
}

int hdrv_call(struct hdrv *d, const char *netns_path, const char *op, json_t *args,
	      uint32_t timeout_ms, json_t **result, char **error)
{
	_cleanup_free_ char *req = NULL;
	uint64_t id, deadline;
	json_t *msg;
	int r;

	if (!d || !op)
		return -EINVAL;
	if (timeout_ms == 0)
		timeout_ms = HDRV_DEFAULT_TMO_MS;
	if (timeout_ms > HDRV_MAX_TMO_MS)
		timeout_ms = HDRV_MAX_TMO_MS;
	if (d->pid == 0) {
		r = drv_spawn(d);
		if (r < 0)
			return r;
	}
	id = ++d->next_id;
	/* "o" steals: each value below is a new reference. */
	msg = json_pack("{sIsssosIso}", "id", (json_int_t)id, "op", op, "netns",
			netns_path ? json_string(netns_path) : json_null(), "timeout_ms",
			(json_int_t)timeout_ms, "args", args ? json_incref(args) : json_object());
	if (!msg)
		return -ENOMEM;
	req = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(msg);
	if (!req)
		return -ENOMEM;
	/* JSON_ENSURE_ASCII escapes every control character: the request is one line. */
	size_t len = strlen(req);
	char *line = realloc(req, len + 2);

	if (!line)
		return -ENOMEM;
	req = line;
	memcpy(req + len, "\n", 2);
	r = drv_write(d, req, len + 1);
	if (r < 0) {
		drv_reap(d, true, 0);
		return -EPIPE;
	}

	deadline = now_ms() + timeout_ms + HDRV_SLACK_MS;
	for (;;) {
		char *text;
		size_t used;

		r = drv_read_line(d, deadline, &text, &used);
		if (r < 0) {
			/* A wedged or dead driver: kill it now, it may pin a case's netns. */
			drv_reap(d, true, 0);
			return r == -ETIMEDOUT ? -ETIMEDOUT : r == -ENOMEM ? -ENOMEM : -EPIPE;
		}
		json_t *reply = json_loads(text, 0, NULL);
		drv_consume(d, used);
		json_t *rid = json_object_get(reply, "id");

		/* Lines of other ids (a greeting, a stray late answer) are not ours. */
		if (!json_is_integer(rid) || (uint64_t)json_integer_value(rid) != id) {
			json_decref(reply);
			continue;
		}
		if (json_is_true(json_object_get(reply, "ok"))) {
			json_t *res = json_object_get(reply, "result");

			if (result)
				*result = res ? json_incref(res) : json_object();
			json_decref(reply);
			return 0;
		}
		if (error) {
			const char *e = json_string_value(json_object_get(reply, "error"));

			*error = strdup(e ? e : "driver error without a message");
		}
		json_decref(reply);
		return -EREMOTEIO;
	}
}
