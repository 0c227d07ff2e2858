// SPDX-License-Identifier: Apache-2.0
/*
 * Runs a libFuzzer target over files without libFuzzer, so every build (gcc included) replays
 * the seed corpus as a test. Prints TAP.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int one(const char *path, int n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f) {
		printf("not ok %d - %s # cannot open\n", n, path);
		return 1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len); /* a failed check aborts the whole run */
	free(buf);
	printf("ok %d - %s (%zu bytes)\n", n, path, len);
	return 0;
}

int main(int argc, char **argv)
{
	char **paths = NULL;
	int n = 0, fails = 0;

	/* Arguments are files or directories of files. */
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			paths = realloc(paths, sizeof(*paths) * (size_t)(n + 1));
			paths[n++] = strdup(argv[i]);
			continue;
		}
		while ((e = readdir(d))) {
			char p[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
			paths = realloc(paths, sizeof(*paths) * (size_t)(n + 1));
			paths[n++] = strdup(p);
		}
		closedir(d);
	}
	printf("TAP version 13\n1..%d\n", n);
	for (int i = 0; i < n; i++) {
		fails += one(paths[i], i + 1);
		free(paths[i]);
	}
	free(paths);
	return fails ? 1 : 0;
}
