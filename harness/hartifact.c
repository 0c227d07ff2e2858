// SPDX-License-Identifier: Apache-2.0
/*
 * Artifacts of a case that did not pass (hrun_int.h): the case dir copied under
 * REPORT_DIR/artifacts/ID with the driver's log since the case began, message.txt (every
 * problem), result.json (problems, outcomes and responses in full) and reproduce.sh (the same
 * run again, from any directory).
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "hrun_int.h"

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
				      p->exited, "outcome", hproc_status_text(p->status, got)));
	}
	for (size_t i = 0; i < r->n_resps; i++) {
		const struct hcase_step *st = step_named(r, r->resps[i].step);
		json_t *o = json_pack("{s:s?, s:O?}", "step", r->resps[i].step, "result",
				      r->resps[i].result);

		if (st && st->action == HCASE_ACT_DRIVER) {
			json_object_set_new(o, "op", json_string(st->driver.op));
			if (st->driver.args)
				json_object_set(o, "args", st->driver.args);
		} else if (st && st->action == HCASE_ACT_CLIENT) {
			json_t *av = json_array();

			for (char **a = st->client.argv; *a; a++)
				json_array_append_new(av, json_string(*a));
			json_object_set_new(o, "argv", av);
		}
		json_array_append_new(ra, o);
	}
	json_dump_file(doc, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(doc);
}

char *hartifact_keep(struct run *r)
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
			hfile_copy(from, to, 0);
	}
	if (d)
		closedir(d);
	if (r->w->drv_log) {
		_cleanup_free_ char *to = NULL;

		if (asprintf(&to, "%s/driver.log", dir) >= 0)
			hfile_copy(r->w->drv_log, to, r->drv_log_off);
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
