// SPDX-License-Identifier: Apache-2.0
/*
 * The file step (hstep.h): a file planted below {case_dir}/ (a lease, a tripwire script), its
 * parents created, runner placeholders filled in "path" and "content".
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "hrun_int.h"
#include "hstep.h"

static int file_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		      struct hcase_step *s)
{
	struct hstep_file *f = &s->file;
	char pk[HJSON_PATH_MAX];
	int r;

	r = hcase_dup_str(e, pi, "path", true, &f->path, v->err);
	r = r ?: hcase_dup_str(e, pi, "content", true, &f->content, v->err);
	if (r < 0)
		return r;
	hjson_path_key(pk, pi, "path");
	if (strncmp(f->path, "{case_dir}/", 11) != 0 || strstr(f->path, "/../"))
		return hjson_fail(v->err, pk, "a file step writes below {case_dir}/ only");
	return 0;
}

static void file_run(struct run *r, const struct hcase_step *st)
{
	_cleanup_free_ char *path = NULL, *content = NULL;
	_cleanup_close_ int fd = -1;
	struct hrvars rv;
	size_t len;

	hrvars_build(r, st, &rv);
	path = hrvars_expand(&rv, st->file.path);
	content = hrvars_expand(&rv, st->file.content);
	hrvars_free(&rv);
	if (!path || !content) {
		run_verdict(r, HREP_ERROR, "file: out of memory");
		return;
	}
	for (char *sl = strchr(path + strlen(r->dir) + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
		*sl = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			run_verdict(r, HREP_ERROR, "file %s: mkdir: %s", path,
				    util_errno_name(errno));
			return;
		}
		*sl = '/';
	}
	len = strlen(content);
	/* A script (tripwire) must be executable by whoever the case starts. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  strncmp(content, "#!", 2) == 0 ? 0755 : 0644);
	if (fd < 0 || write(fd, content, len) != (ssize_t)len)
		run_verdict(r, HREP_ERROR, "file %s: %s", path, util_errno_name(errno));
}

static void file_free(struct hcase_step *s)
{
	free(s->file.path);
	free(s->file.content);
}

static const char *const file_keys[] = { "path", "content", NULL };

const struct hstep_kind hstep_kind_file = {
	.name = "file",
	.keys = file_keys,
	.parse = file_parse,
	.run = file_run,
	.free = file_free,
};
