// SPDX-License-Identifier: Apache-2.0
#include "tap.h"

#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TAP_MAX_TESTS 128
#define TAP_EXIT_SKIP 77

static struct {
	const char *name;
	tap_fn fn;
	unsigned int timeout_s;
} tests[TAP_MAX_TESTS];
static int ntests;
static bool failed; /* in the child: some check failed */

void tap_register(const char *name, tap_fn fn, unsigned int timeout_s)
{
	if (ntests == TAP_MAX_TESTS)
		abort();
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	tests[ntests].timeout_s = timeout_s;
	ntests++;
}

__attribute__((format(printf, 1, 0))) static void vdiag(const char *fmt, va_list ap)
{
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(fmt, ap);
	va_end(ap);
}

bool tap_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	failed = true;
	printf("# %s:%d: check failed: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	return false;
}

void tap_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("# SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	_exit(TAP_EXIT_SKIP);
}

/* Wait for pid up to timeout_s; kill its whole process group when it runs over. */
static int wait_bounded(pid_t pid, unsigned int timeout_s, bool *timed_out)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), status = 0;
	struct pollfd p = { .fd = pfd, .events = POLLIN };

	*timed_out = false;
	if (pfd >= 0) {
		int r;

		do {
			r = poll(&p, 1, (int)timeout_s * 1000);
		} while (r < 0 && errno == EINTR);
		close(pfd);
		if (r == 0) {
			*timed_out = true;
			kill(-pid, SIGKILL);
		}
	}
	/* Take down anything the test left in its group, whatever happened. */
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

int tap_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : getenv("TAP_FILTER");
	int run = 0, nfail = 0, nskip = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	for (int i = 0; i < ntests; i++) {
		if (!filter || fnmatch(filter, tests[i].name, 0) == 0)
			run++;
	}
	printf("1..%d\n", run);
	fflush(stdout);
	run = 0;
	for (int i = 0; i < ntests; i++) {
		bool timed_out;
		pid_t pid;
		int status;

		if (filter && fnmatch(filter, tests[i].name, 0) != 0)
			continue;
		run++;
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			printf("not ok %d - %s # fork: %s\n", run, tests[i].name, strerror(errno));
			nfail++;
			continue;
		}
		if (pid == 0) {
			setpgid(0, 0);
			tests[i].fn();
			fflush(stdout);
			_exit(failed ? 1 : 0);
		}
		setpgid(pid, pid);
		status = wait_bounded(pid, tests[i].timeout_s, &timed_out);
		if (timed_out) {
			printf("not ok %d - %s # timed out after %us\n", run, tests[i].name,
			       tests[i].timeout_s);
			nfail++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %d - %s\n", run, tests[i].name);
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == TAP_EXIT_SKIP) {
			printf("ok %d - %s # SKIP\n", run, tests[i].name);
			nskip++;
		} else {
			if (WIFSIGNALED(status))
				printf("# killed by signal %d (%s)\n", WTERMSIG(status),
				       strsignal(WTERMSIG(status)));
			printf("not ok %d - %s\n", run, tests[i].name);
			nfail++;
		}
	}
	if (nfail)
		return 1;
	return run > 0 && nskip == run ? TAP_EXIT_SKIP : 0;
}

int main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
