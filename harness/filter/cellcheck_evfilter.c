// SPDX-License-Identifier: Apache-2.0
/*
 * cellcheck-evfilter FAULT: event lines on stdin, the same lines with one output fault applied
 * on stdout (evf.h has the table). Every byte a fault does not edit passes through unchanged;
 * each line is written as soon as it is complete (readers follow the stream as it comes); a
 * line longer than EVF_LINE_MAX is passed on in pieces, unedited, so memory stays bounded; the
 * program exits 0 when its input ends (1 on a read or write error, 2 on a usage error).
 *
 *   cellcheck-evfilter --list    the fault names, one a line
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evf.h"

static int write_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One complete line (or the unedited piece of an overlong one) out. */
static int emit(struct evf *x, const char *line, size_t n, bool whole)
{
	char *rep = NULL;
	size_t rep_len = 0;
	int r = whole ? evf_line(x, line, n, &rep, &rep_len) : 0;

	if (r < 0)
		return r;
	r = r ? write_all(rep, rep_len) : write_all(line, n);
	free(rep);
	return r;
}

static int filter(struct evf *x)
{
	size_t cap = EVF_LINE_MAX + 1, len = 0;
	char *buf = malloc(cap);
	bool overlong = false; /* inside a line that did not fit: pass the rest through */
	int err = buf ? 0 : -ENOMEM;

	while (!err) {
		ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
		size_t at = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0) /* the end: a last line without its '\n' */
			break;
		len += (size_t)n;
		for (char *nl; !err && (nl = memchr(buf + at, '\n', len - at));) {
			size_t l = (size_t)(nl - buf - at) + 1;

			err = emit(x, buf + at, l, !overlong);
			overlong = false;
			at += l;
		}
		memmove(buf, buf + at, len - at);
		len -= at;
		if (!err && len == cap) {
			err = emit(x, buf, len, false);
			overlong = true;
			len = 0;
		}
	}
	if (!err && len)
		err = emit(x, buf, len, !overlong);
	free(buf);
	return err;
}

int main(int argc, char **argv)
{
	struct evf x;
	int err;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < evf_count(); i++)
			printf("%s\n", evf_name(i));
		return fflush(stdout) ? 1 : 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: cellcheck-evfilter FAULT | --list\n");
		return 2;
	}
	if (evf_init(&x, argv[1]) < 0) {
		fprintf(stderr, "cellcheck-evfilter: no output fault %s (--list names them)\n",
			argv[1]);
		return 2;
	}
	err = filter(&x);
	evf_done(&x);
	if (err) {
		fprintf(stderr, "cellcheck-evfilter: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
