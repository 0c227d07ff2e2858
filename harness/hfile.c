// SPDX-License-Identifier: Apache-2.0
/*
 * Small file helpers the runner's rooms share (hrun_int.h): read a file whole, count its
 * lines, quote its tail for a message, copy it for the artifacts.
 */
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "hrun_int.h"

char *hfile_slurp(const char *path, size_t *ret_len)
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

int hfile_copy(const char *from, const char *to, uint64_t offset)
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

/* The last line or so of a file, quoted on one line, for a message: "(empty)" if none. */
const char *hfile_tail(const char *path, char *buf, size_t size)
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
