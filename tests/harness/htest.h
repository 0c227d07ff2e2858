/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the harness unit tests: a scratch directory made with mkdtemp and removed
 * (recursively) when the variable holding it goes out of scope, pass or fail, and small file
 * writers.
 */
#ifndef CELLCHECK_HTEST_H
#define CELLCHECK_HTEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int htest_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void htest_rmtreep(char **dir)
{
	if (!*dir)
		return;
	nftw(*dir, htest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(*dir);
}

#define _cleanup_tmpdir_ __attribute__((cleanup(htest_rmtreep)))

static inline char *htest_mkdtemp(void)
{
	char tmpl[] = "/tmp/cellcheck-test.XXXXXX";

	return mkdtemp(tmpl) ? strdup(tmpl) : NULL;
}

/* Write text to DIR/NAME; returns the malloc'd path or NULL. */
static inline char *htest_write(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	f = fopen(path, "w");
	if (!f) {
		free(path);
		return NULL;
	}
	fputs(text, f);
	if (fclose(f) != 0) {
		free(path);
		return NULL;
	}
	return path;
}

#endif
