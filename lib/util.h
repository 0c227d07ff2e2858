/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers every module of ref/ and harness/ uses (lib/, linked by both): scope-bound cleanup
 * of memory and fds, ownership transfer, errno names for messages.
 */
#ifndef CELLLIB_UTIL_H
#define CELLLIB_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void util_freep(void *p)
{
	free(*(void **)p);
}

/* Also forgets the number: a later closep or a "fd >= 0" test must not reach a reused fd. */
static inline void util_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

static inline void util_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_	 _cleanup_(util_freep)
#define _cleanup_close_	 _cleanup_(util_closep)
#define _cleanup_fclose_ _cleanup_(util_fclosep)

/* Hand ownership out of a cleanup-scoped variable. */
#define TAKE_PTR(p)                     \
	({                              \
		__typeof__(p) _p = (p); \
		(p) = NULL;             \
		_p;                     \
	})

#define TAKE_FD(fd)             \
	({                      \
		int _fd = (fd); \
		(fd) = -1;      \
		_fd;            \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* "ENODEV" for 19; "E<number>" for values without a symbolic name. Never NULL. */
const char *util_errno_name(int err);

/* Parse a decimal unsigned integer in [min, max]; 0 or -EINVAL / -ERANGE. */
int util_parse_u64(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *ret);

/* Write all of buf, retrying on EINTR and partial writes. 0 or -errno. */
int util_write_all(int fd, const void *buf, size_t len);

/* Read up to len bytes, retrying until len, EOF or error. Bytes read, or -errno. */
ssize_t util_read_full(int fd, void *buf, size_t len);

/* CLOCK_REALTIME and CLOCK_MONOTONIC in nanoseconds. */
unsigned long long util_now_realtime_ns(void);
unsigned long long util_now_monotonic_ns(void);

#endif
