// SPDX-License-Identifier: Apache-2.0
/*
 * Event sinks a start step may ask for besides a plain file (hrun_int.h, cases/README.md
 * "sink"): "stalled", a FIFO the harness holds open and does not read until a drain step or the
 * stop; "shared", a file another writer appends whole lines to (NOISE_LINE).
 */
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "evf.h"
#include "hrun_int.h"

/*
 * The line another writer puts into a "shared" or prefilled "stalled" sink. Exactly these
 * lines are removed before the expectations read the stream; anything else is parsed
 * strictly, so an IUT line that another writer's line split fails the case.
 */
#define NOISE_LINE \
	"{\"cellcheck\":\"another writer of this sink\",\"pad\":\"0123456789abcdef0123456789\"}\n"
#define SINK_PIPE_BYTES 4096

/*
 * A stalled sink: a FIFO of SINK_PIPE_BYTES the harness holds open for reading (so the IUT's
 * open for writing does not block) and does not read until a drain step or the stop.
 */
int hsink_stalled(struct run *r, struct proc *p)
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
	if (p->st->start.prefill) {
		_cleanup_close_ int w = open(p->fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (w < 0)
			return -errno;
		/* Whole lines only: a pipe write of at most PIPE_BUF bytes is all or nothing. */
		while (write(w, NOISE_LINE, sizeof(NOISE_LINE) - 1) > 0)
			;
	}
	return 0;
}

/* The other writer of a shared sink: one whole line per write(2), O_APPEND, until killed. */
pid_t hsink_noise_start(struct run *r, const char *path)
{
	pid_t pid = hproc_fork_helper(r);

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

/* Copy the stalled sink into the event file until every writer closed it. */
void hsink_drain(struct run *r, struct proc *p)
{
	pid_t pid;

	if (!p || p->sink_fd < 0 || p->drain_pid > 0)
		return;
	pid = hproc_fork_helper(r);
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
void hsink_finish(struct run *r, struct proc *p)
{
	int st;

	if (p->drain_pid > 0) {
		if (!hproc_wait_exit(p->drain_pid, (int)run_scaled(r, 2000), &st))
			hproc_kill_group(p->drain_pid);
		p->drain_pid = 0;
	}
	if (p->noise_pid > 0) {
		hproc_kill_group(p->noise_pid);
		p->noise_pid = 0;
	}
}

/* What a drainer did not get (the IUT was killed first), then the filler lines out. */
void hsink_collect(struct proc *p)
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
	if (p->st->start.sink != HCASE_SINK_STALLED && p->st->start.sink != HCASE_SINK_SHARED)
		return;
	p->ev = hfile_slurp(p->ev_path, &p->ev_len);
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

int hsink_filter(const struct run *r, char **buf, size_t *len)
{
	char *out;
	size_t n;
	int e;

	if (!r->j->filter || !r->j->fault || !*buf)
		return 0;
	e = evf_buffer(r->j->fault, *buf, *len, &out, &n);
	if (e < 0)
		return e;
	free(*buf);
	*buf = out;
	*len = n;
	return 0;
}

char *hsink_read(const struct run *r, const char *path, size_t *ret_len)
{
	size_t len = 0;
	char *buf = hfile_slurp(path, &len);

	if (hsink_filter(r, &buf, &len) < 0) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

size_t hsink_lines(const struct run *r, const char *path)
{
	size_t len = 0, n = 0;
	_cleanup_free_ char *buf = hsink_read(r, path, &len);

	for (size_t i = 0; buf && i < len; i++)
		n += buf[i] == '\n';
	return n;
}
