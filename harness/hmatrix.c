// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel matrix (hmatrix.h): columns from report.json files (read by hrep_load, the same
 * validation as compare and merge), rows by case ID, and the three formats: matrix.json for
 * machines, matrix.md and a self-contained matrix.html (no script, nothing fetched) for people.
 */
#include "hmatrix.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hesc.h"
#include "hjson.h"
#include "util.h"

struct hmatrix *hmatrix_new(void)
{
	struct hmatrix *m = calloc(1, sizeof(*m));

	if (m)
		hrep_now(m->generated_at);
	return m;
}

static void kernel_clear(struct hmatrix_kernel *k)
{
	free(k->label);
	free(k->report_path);
	hrep_free(k->rep);
	free(k->error);
	free(k->release);
	free(k->config_sha256);
	free(k->source);
	free(k->where);
	free(k->accelerator);
	free(k->console);
	free(k->note);
	for (size_t i = 0; i < k->n_features; i++) {
		free(k->features[i].name);
		free(k->features[i].state);
		free(k->features[i].evidence);
	}
	free(k->features);
}

void hmatrix_free(struct hmatrix *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_kernels; i++)
		kernel_clear(&m->kernels[i]);
	free(m->kernels);
	for (size_t i = 0; i < m->n_rows; i++)
		free(m->rows[i].cells);
	free(m->rows);
	free(m);
}

/* ---- columns ---- */

/* A string member of a side file, if it is one (side files are ours: read leniently). */
static int side_str(json_t *o, const char *key, char **field)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || *field)
		return 0;
	return hrep_set(field, json_string_value(v));
}

static double side_num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : -1;
}

static int note(struct hmatrix_kernel *k, const char *file, const struct hjson_err *err, int r)
{
	char buf[768];

	if (k->note)
		return 0; /* the first problem is enough */
	snprintf(buf, sizeof(buf), "%s: %s", file, err->msg[0] ? err->msg : util_errno_name(-r));
	return hrep_set(&k->note, buf);
}

/* run.json, written by ci/kernel-matrix beside report.json. */
static int read_run_info(struct hmatrix_kernel *k, const char *dir)
{
	_cleanup_free_ char *path = NULL;
	struct hjson_err err = { 0 };
	json_t *doc = NULL, *kern;
	int r;

	if (asprintf(&path, "%s/run.json", dir) < 0)
		return -ENOMEM;
	if (access(path, F_OK) < 0)
		return 0; /* a report from elsewhere has none: nothing to add */
	r = hjson_load_file(path, &doc, &err);
	if (r < 0)
		return note(k, "run.json", &err, r);
	kern = json_object_get(doc, "kernel");
	r = side_str(doc, "error", &k->error);
	r = r ?: side_str(doc, "where", &k->where);
	r = r ?: side_str(doc, "accelerator", &k->accelerator);
	r = r ?: side_str(doc, "console", &k->console);
	r = r ?: side_str(kern, "source", &k->source);
	r = r ?: side_str(kern, "release", &k->release);
	r = r ?: side_str(kern, "configSha256", &k->config_sha256);
	k->seconds = side_num(doc, "seconds");
	k->boot_seconds = side_num(doc, "bootSeconds");
	if (json_is_integer(json_object_get(doc, "runStatus")))
		k->run_status = (int)json_integer_value(json_object_get(doc, "runStatus"));
	json_decref(doc);
	if (r == 0 && k->console && k->console[0] != '/') {
		/* Relative to the column's folder; keep it usable from anywhere. */
		char *p;

		if (asprintf(&p, "%s/%s", dir, k->console) < 0)
			return -ENOMEM;
		free(k->console);
		k->console = p;
	}
	return r;
}

/* probe.json: `cellcheck probe --json` run in that kernel. */
static int read_probe(struct hmatrix_kernel *k, const char *dir)
{
	_cleanup_free_ char *path = NULL;
	struct hjson_err err = { 0 };
	json_t *doc = NULL, *feat, *v;
	const char *name;
	int r;

	if (asprintf(&path, "%s/probe.json", dir) < 0)
		return -ENOMEM;
	if (access(path, F_OK) < 0)
		return 0;
	r = hjson_load_file(path, &doc, &err);
	if (r < 0)
		return note(k, "probe.json", &err, r);
	r = side_str(json_object_get(doc, "kernel"), "release", &k->release);
	r = r ?: side_str(json_object_get(doc, "kernel"), "configSha256", &k->config_sha256);
	feat = json_object_get(doc, "features");
	k->features = calloc(json_object_size(feat) + 1, sizeof(*k->features));
	if (!k->features)
		r = -ENOMEM;
	json_object_foreach(feat, name, v)
	{
		struct hmatrix_feature *f = &k->features[k->n_features];

		if (r < 0)
			break;
		k->n_features++;
		r = hrep_set(&f->name, name);
		r = r ?: side_str(v, "state", &f->state);
		r = r ?: side_str(v, "evidence", &f->evidence);
	}
	json_decref(doc);
	return r;
}

int hmatrix_add(struct hmatrix *m, const char *label, const char *report_path)
{
	_cleanup_free_ char *copy = NULL;
	struct hmatrix_kernel *n, *k;
	struct hjson_err err = { 0 };
	const char *dir;
	int r;

	if (!label[0] || strchr(label, '='))
		return -EINVAL;
	for (size_t i = 0; i < m->n_kernels; i++)
		if (strcmp(m->kernels[i].label, label) == 0)
			return -EEXIST;
	copy = strdup(report_path);
	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	n = realloc(m->kernels, (m->n_kernels + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->kernels = n;
	k = &m->kernels[m->n_kernels++];
	*k = (struct hmatrix_kernel){
		.seconds = -1, .boot_seconds = -1, .run_status = -1, .regressions = -1
	};
	r = hrep_set(&k->label, label);
	r = r ?: hrep_set(&k->report_path, report_path);
	if (r < 0)
		return r;
	r = access(report_path, F_OK) < 0 ? -errno : hrep_load(report_path, &k->rep, &err);
	if (r < 0) {
		char buf[1024];

		k->rep = NULL;
		if (r == -ENOMEM)
			return r;
		if (r == -ENOENT)
			snprintf(buf, sizeof(buf), "no report (%s does not exist)", report_path);
		else if (err.msg[0])
			snprintf(buf, sizeof(buf), "report unreadable: %s: %s: %s", report_path,
				 err.path, err.msg);
		else
			snprintf(buf, sizeof(buf), "report unreadable: %s: %s", report_path,
				 util_errno_name(-r));
		/* run.json's reason (a panic, a hang) is better; this one is the fallback. */
		r = read_run_info(k, dir);
		r = r ?: k->error ? 0 : hrep_set(&k->error, buf);
	} else {
		r = hrep_set(&k->release, k->rep->kernel_release);
		r = r ?: hrep_set(&k->config_sha256, k->rep->kernel_config_sha256);
		r = r ?: read_run_info(k, dir);
		/* A report exists, so the kernel ran; a stale reason must not say otherwise. */
		r = r ?: hrep_set(&k->error, NULL);
	}
	return r ?: read_probe(k, dir);
}

int hmatrix_set_console(struct hmatrix *m, const char *label, const char *path)
{
	for (size_t i = 0; i < m->n_kernels; i++)
		if (strcmp(m->kernels[i].label, label) == 0)
			return hrep_set(&m->kernels[i].console, path);
	return -ENOENT;
}

/* ---- rows ---- */

static bool is_bad(enum hrep_status s)
{
	return s == HREP_FAIL || s == HREP_ERROR;
}

static bool same_reason(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int row_rank(const struct hmatrix_row *r)
{
	return r->failing ? 0 : r->differs ? 1 : 2;
}

static int row_cmp(const void *a, const void *b)
{
	const struct hmatrix_row *x = a, *y = b;

	if (row_rank(x) != row_rank(y))
		return row_rank(x) - row_rank(y);
	return strcmp(x->any->id, y->any->id);
}

static struct hmatrix_row *row_find(struct hmatrix *m, const char *id)
{
	for (size_t i = 0; i < m->n_rows; i++)
		if (strcmp(m->rows[i].any->id, id) == 0)
			return &m->rows[i];
	return NULL;
}

static int count_regressions(struct hmatrix *m)
{
	const struct hrep *base = NULL;
	FILE *sink;

	for (size_t i = 0; i < m->n_kernels && !base; i++)
		base = m->kernels[i].rep;
	if (!base)
		return 0;
	/* hrep_compare() decides what a regression is; only its count is wanted here. */
	sink = fopen("/dev/null", "we");
	if (!sink)
		return -errno;
	for (size_t i = 0; i < m->n_kernels; i++)
		if (m->kernels[i].rep && m->kernels[i].rep != base)
			m->kernels[i].regressions = hrep_compare(base, m->kernels[i].rep, sink);
	fclose(sink);
	return 0;
}

int hmatrix_build(struct hmatrix *m)
{
	for (size_t k = 0; k < m->n_kernels; k++) {
		const struct hrep *rep = m->kernels[k].rep;

		for (size_t i = 0; rep && i < rep->n_cases; i++) {
			struct hmatrix_row *row = row_find(m, rep->cases[i].id), *n;

			if (!row) {
				n = realloc(m->rows, (m->n_rows + 1) * sizeof(*n));
				if (!n)
					return -ENOMEM;
				m->rows = n;
				row = &m->rows[m->n_rows];
				*row = (struct hmatrix_row){ .any = &rep->cases[i] };
				row->cells = calloc(m->n_kernels, sizeof(*row->cells));
				if (!row->cells)
					return -ENOMEM;
				m->n_rows++;
			}
			row->cells[k] = &rep->cases[i];
		}
	}
	for (size_t i = 0; i < m->n_rows; i++) {
		struct hmatrix_row *row = &m->rows[i];
		const struct hrep_case *first = NULL;
		bool bad = false;

		/* Only kernels that ran take part: an ERROR column is reported as a whole. */
		for (size_t k = 0; k < m->n_kernels; k++) {
			const struct hrep_case *c = row->cells[k];

			if (!m->kernels[k].rep)
				continue;
			if (!c) {
				row->differs = true;
				continue;
			}
			bad |= is_bad(c->status);
			if (!first)
				first = c;
			else if (c->status != first->status ||
				 (c->status == HREP_SKIP && !same_reason(c->reason, first->reason)))
				row->differs = true;
		}
		row->failing = row->differs && bad;
	}
	if (m->n_rows)
		qsort(m->rows, m->n_rows, sizeof(*m->rows), row_cmp);
	return count_regressions(m);
}

bool hmatrix_failed(const struct hmatrix *m)
{
	for (size_t k = 0; k < m->n_kernels; k++)
		if (!m->kernels[k].rep)
			return true;
	for (size_t i = 0; i < m->n_rows; i++)
		if (m->rows[i].failing)
			return true;
	return false;
}

static void counts(const struct hmatrix *m, size_t *ret_differ, size_t *ret_failing,
		   size_t *ret_error)
{
	*ret_differ = *ret_failing = *ret_error = 0;
	for (size_t i = 0; i < m->n_rows; i++) {
		*ret_differ += m->rows[i].differs;
		*ret_failing += m->rows[i].failing;
	}
	for (size_t k = 0; k < m->n_kernels; k++)
		*ret_error += !m->kernels[k].rep;
}

/* A path as seen from the output directory: relative when it lies under it. */
static const char *rel_to(const char *path, const char *dir)
{
	size_t n = dir ? strlen(dir) : 0;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (path && n && strncmp(path, dir, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* ---- matrix.json ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jnum(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

static json_t *kernel_json(const struct hmatrix_kernel *k, const char *dir)
{
	json_t *o, *feat = json_object(), *sum = NULL, *harness = json_null();
	int e = 0;

	if (!feat)
		return NULL;
	for (size_t i = 0; i < k->n_features; i++)
		e |= json_object_set_new(feat, k->features[i].name,
					 json_pack("{s:o, s:o}", "state",
						   jstr(k->features[i].state), "evidence",
						   jstr(k->features[i].evidence)));
	if (k->rep) {
		struct hrep_counts n;

		hrep_count(k->rep, NULL, -1, &n);
		sum = json_object();
		for (int s = 0; sum && s < _HREP_STATUS_MAX; s++)
			e |= json_object_set_new(sum, hrep_status_names[s],
						 json_integer((json_int_t)n.n[s]));
		if (sum)
			e |= json_object_set_new(sum, "total", json_integer((json_int_t)n.total));
		json_decref(harness);
		harness = json_pack("{s:s, s:s}", "version", k->rep->harness_version, "gitRevision",
				    k->rep->harness_git_revision);
	}
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "label", k->label, "status", k->rep ? "ran" : "ERROR", "error",
		      jstr(k->rep ? NULL : k->error), "release", jstr(k->release), "configSha256",
		      jstr(k->config_sha256), "source", jstr(k->source), "where", jstr(k->where),
		      "accelerator", jstr(k->accelerator), "seconds", jnum(k->seconds),
		      "bootSeconds", jnum(k->boot_seconds), "report",
		      jstr(k->rep ? rel_to(k->report_path, dir) : NULL), "console",
		      jstr(rel_to(k->console, dir)), "harness", harness, "features", feat);
	if (!o || e) {
		json_decref(o);
		json_decref(sum);
		return NULL;
	}
	e |= json_object_set_new(o, "verdict",
				 k->rep ? json_string(hrep_failed(k->rep) ? "FAIL" : "PASS")
					: json_null());
	e |= json_object_set_new(o, "summary", sum ?: json_null());
	e |= json_object_set_new(o, "runStatus",
				 k->run_status >= 0 ? json_integer(k->run_status) : json_null());
	e |= json_object_set_new(o, "timeScale",
				 k->rep && k->rep->time_scale >= 1.0 ? json_real(k->rep->time_scale)
								     : json_null());
	e |= json_object_set_new(o, "regressions",
				 k->regressions >= 0 ? json_integer(k->regressions) : json_null());
	e |= json_object_set_new(o, "note", jstr(k->note));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *matrix_json(const struct hmatrix *m, const char *dir)
{
	json_t *doc, *kernels = json_array(), *cases = json_array();
	size_t n_diff, n_fail, n_err;
	int e = 0;

	counts(m, &n_diff, &n_fail, &n_err);
	doc = json_pack("{s:i, s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "matrixVersion",
			HMATRIX_VERSION, "generatedAt", m->generated_at, "verdict",
			hmatrix_failed(m) ? "FAIL" : "PASS", "summary", "kernels",
			(int)m->n_kernels, "kernelsWithoutReport", (int)n_err, "cases",
			(int)m->n_rows, "differing", (int)n_diff, "failingDifferences",
			(int)n_fail);
	if (!doc || !kernels || !cases) {
		json_decref(doc);
		json_decref(kernels);
		json_decref(cases);
		return NULL;
	}
	for (size_t k = 0; k < m->n_kernels; k++) {
		json_t *o = kernel_json(&m->kernels[k], dir);

		e |= o ? json_array_append_new(kernels, o) : -1;
	}
	for (size_t i = 0; i < m->n_rows && !e; i++) {
		const struct hmatrix_row *row = &m->rows[i];
		json_t *res = json_object(), *o;

		for (size_t k = 0; res && k < m->n_kernels; k++) {
			const struct hrep_case *c = row->cells[k];
			json_t *cell;

			if (!c) {
				e |= json_object_set_new(res, m->kernels[k].label, json_null());
				continue;
			}
			cell = json_pack("{s:s}", "status", hrep_status_names[c->status]);
			if (cell && c->message && c->status != HREP_PASS)
				e |= json_object_set_new(cell, "message", json_string(c->message));
			if (cell && c->reason)
				e |= json_object_set_new(cell, "reason", json_string(c->reason));
			e |= cell ? json_object_set_new(res, m->kernels[k].label, cell) : -1;
		}
		o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:o}", "id", row->any->id, "title",
			      row->any->title, "component", row->any->component, "differs",
			      row->differs, "failingDifference", row->failing, "results", res);
		e |= o ? json_array_append_new(cases, o) : -1;
	}
	e |= json_object_set_new(doc, "kernels", kernels);
	e |= json_object_set_new(doc, "cases", cases);
	if (e) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

int hmatrix_write_json(const struct hmatrix *m, FILE *f, const char *dir)
{
	json_t *doc = matrix_json(m, dir);
	int r;

	if (!doc)
		return -ENOMEM;
	r = json_dumpf(doc, f, JSON_INDENT(2)) == 0 ? 0 : -EIO;
	fputc('\n', f);
	json_decref(doc);
	return r ?: ferror(f) ? -EIO : 0;
}

/* ---- the human formats: one walk, two syntaxes ---- */

/*
 * md and html say the same things in the same order; these callbacks are the only difference,
 * so the two pages cannot drift apart.
 */
struct out {
	FILE *f;
	bool html;
};

static void text(const struct out *o, const char *s)
{
	if (o->html)
		hesc_xml(o->f, s ?: "-");
	else
		hesc_md(o->f, s ?: "-");
}

static void heading(const struct out *o, int level, const char *s)
{
	if (o->html)
		fprintf(o->f, "<h%d>%s</h%d>\n", level, s, level);
	else
		fprintf(o->f, "\n%.*s %s\n\n", level, "####", s);
}

static void table_start(const struct out *o, const char *const *head, size_t n,
			const struct hmatrix *m)
{
	if (o->html)
		fputs("<table>\n<tr>", o->f);
	else
		fputc('|', o->f);
	for (size_t i = 0; i < n; i++)
		fprintf(o->f, o->html ? "<th>%s</th>" : " %s |", head[i]);
	for (size_t k = 0; m && k < m->n_kernels; k++) {
		fputs(o->html ? "<th>" : " ", o->f);
		text(o, m->kernels[k].label);
		fputs(o->html ? "</th>" : " |", o->f);
	}
	if (o->html) {
		fputs("</tr>\n", o->f);
		return;
	}
	fputs("\n|", o->f);
	for (size_t i = 0; i < n + (m ? m->n_kernels : 0); i++)
		fputs("---|", o->f);
	fputc('\n', o->f);
}

static void row_start(const struct out *o)
{
	fputs(o->html ? "<tr>" : "|", o->f);
}

static void row_end(const struct out *o)
{
	fputs(o->html ? "</tr>\n" : "\n", o->f);
}

/* A cell: class is a status name for the page's colours (or NULL). */
static void cell_start(const struct out *o, const char *cls)
{
	if (o->html && cls)
		fprintf(o->f, "<td class=\"%s\">", cls);
	else
		fputs(o->html ? "<td>" : " ", o->f);
}

static void cell_end(const struct out *o)
{
	fputs(o->html ? "</td>" : " |", o->f);
}

static void cell(const struct out *o, const char *cls, const char *s)
{
	cell_start(o, cls);
	text(o, s);
	cell_end(o);
}

static void table_end(const struct out *o)
{
	fputs(o->html ? "</table>\n" : "", o->f);
}

static void path_link(const struct out *o, const char *path, const char *dir)
{
	const char *rel = rel_to(path, dir);

	if (!path) {
		text(o, NULL);
		return;
	}
	if (o->html) {
		/* "./"-rooted and percent-encoded: never a scheme, as in report.html. */
		fputs(rel[0] == '/' ? "<a href=\"file://" : "<a href=\"./", o->f);
		hesc_url(o->f, rel);
		fputs("\">", o->f);
		hesc_xml(o->f, rel);
		fputs("</a>", o->f);
	} else {
		text(o, rel);
	}
}

static void fmt_secs(char *buf, size_t len, double s)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.0f s", s);
}

/* Rows of the kernels table computed per kernel into buf: NULL for an empty cell. */
static const char *row_time(const struct hmatrix_kernel *k, char *buf, size_t size)
{
	fmt_secs(buf, size, k->seconds);
	if (k->boot_seconds >= 0)
		snprintf(buf + strlen(buf), size - strlen(buf),
			 " (suite started at %.1f s of guest uptime)", k->boot_seconds);
	return buf;
}

static const char *row_factor(const struct hmatrix_kernel *k, char *buf, size_t size)
{
	const struct hrep *r = k->rep;

	if (!r || r->time_scale < 1.0)
		return NULL;
	snprintf(buf, size, "%.1f (%s)", r->time_scale, r->time_scale_from ?: "-");
	return buf;
}

static const char *row_cases(const struct hmatrix_kernel *k, char *buf, size_t size)
{
	struct hrep_counts n;
	size_t len;

	if (!k->rep)
		return NULL;
	hrep_count(k->rep, NULL, -1, &n);
	len = (size_t)snprintf(buf, size, "%zu:", n.total);
	for (int s = 0; s < _HREP_STATUS_MAX && len < size; s++)
		if (n.n[s])
			len += (size_t)snprintf(buf + len, size - len, " %zu %s", n.n[s],
						hrep_status_names[s]);
	return buf;
}

static const char *row_regressions(const struct hmatrix_kernel *k, char *buf, size_t size)
{
	if (k->regressions < 0)
		return NULL;
	snprintf(buf, size, "%d", k->regressions);
	return buf;
}

static const struct {
	const char *title;
	const char *(*value)(const struct hmatrix_kernel *k, char *buf, size_t size);
} kernel_rows[] = {
	{ "Time taken", row_time },
	{ "Deadline factor", row_factor },
	{ "Cases", row_cases },
	{ "Regressions against the first column", row_regressions },
};

static void kernels_table(const struct out *o, const struct hmatrix *m, const char *dir)
{
	static const char *const head[] = { "Item" };
	char buf[128];

	table_start(o, head, ARRAY_SIZE(head), m);
	row_start(o);
	cell(o, NULL, "Result");
	for (size_t k = 0; k < m->n_kernels; k++) {
		const struct hmatrix_kernel *kn = &m->kernels[k];
		const char *v = !kn->rep ? "ERROR" : hrep_failed(kn->rep) ? "FAIL" : "PASS";

		cell_start(o, v);
		if (kn->rep)
			fprintf(o->f, "ran, verdict %s", v);
		else
			fprintf(o->f, "ERROR: ");
		if (!kn->rep)
			text(o, kn->error);
		cell_end(o);
	}
	row_end(o);
#define KROW(title, expr)                                                 \
	do {                                                              \
		row_start(o);                                             \
		cell(o, NULL, title);                                     \
		for (size_t k = 0; k < m->n_kernels; k++) {               \
			const struct hmatrix_kernel *kn = &m->kernels[k]; \
			cell(o, NULL, (expr));                            \
		}                                                         \
		row_end(o);                                               \
	} while (0)
	KROW("Kernel release", kn->release);
	KROW("Kernel config SHA-256", kn->config_sha256);
	KROW("Booted", kn->source);
	KROW("Where", !kn->where		       ? NULL
		      : strcmp(kn->where, "vm") == 0   ? "VM (qemu)"
		      : strcmp(kn->where, "host") == 0 ? "directly on the host"
						       : kn->where);
	KROW("Accelerator", kn->accelerator);
	KROW("Harness revision", kn->rep ? kn->rep->harness_git_revision : NULL);
#undef KROW
	for (size_t i = 0; i < ARRAY_SIZE(kernel_rows); i++) {
		row_start(o);
		cell(o, NULL, kernel_rows[i].title);
		for (size_t k = 0; k < m->n_kernels; k++)
			cell(o, NULL, kernel_rows[i].value(&m->kernels[k], buf, sizeof(buf)));
		row_end(o);
	}
	row_start(o);
	cell(o, NULL, "Report");
	for (size_t k = 0; k < m->n_kernels; k++) {
		cell_start(o, NULL);
		path_link(o, m->kernels[k].rep ? m->kernels[k].report_path : NULL, dir);
		cell_end(o);
	}
	row_end(o);
	row_start(o);
	cell(o, NULL, "Console log");
	for (size_t k = 0; k < m->n_kernels; k++) {
		cell_start(o, NULL);
		path_link(o, m->kernels[k].console, dir);
		cell_end(o);
	}
	row_end(o);
	for (size_t k = 0; k < m->n_kernels; k++)
		if (m->kernels[k].note) {
			row_start(o);
			cell(o, NULL, "Note");
			for (size_t j = 0; j < m->n_kernels; j++)
				cell(o, NULL, m->kernels[j].note);
			row_end(o);
			break;
		}
	table_end(o);
}

static const struct hmatrix_feature *feature(const struct hmatrix_kernel *k, const char *name)
{
	for (size_t i = 0; i < k->n_features; i++)
		if (strcmp(k->features[i].name, name) == 0)
			return &k->features[i];
	return NULL;
}

static void features_table(const struct out *o, const struct hmatrix *m)
{
	static const char *const head[] = { "Feature" };
	bool any = false;

	for (size_t k = 0; k < m->n_kernels; k++)
		any |= m->kernels[k].n_features > 0;
	if (!any) {
		fputs(o->html ? "<p>No kernel has a probe.json.</p>\n"
			      : "No kernel has a probe.json.\n",
		      o->f);
		return;
	}
	table_start(o, head, ARRAY_SIZE(head), m);
	/* Every feature any kernel names, in the order the first kernel that names it lists it. */
	for (size_t k = 0; k < m->n_kernels; k++)
		for (size_t i = 0; i < m->kernels[k].n_features; i++) {
			const char *name = m->kernels[k].features[i].name;
			bool seen = false;

			for (size_t j = 0; j < k && !seen; j++)
				seen = feature(&m->kernels[j], name) != NULL;
			if (seen)
				continue;
			row_start(o);
			cell(o, NULL, name);
			for (size_t j = 0; j < m->n_kernels; j++) {
				const struct hmatrix_feature *f = feature(&m->kernels[j], name);

				cell_start(o, f && f->state && strcmp(f->state, "present") == 0
						      ? "PASS"
						      : "SKIP");
				text(o, f ? f->state : NULL);
				if (f && f->evidence) {
					fputs(o->html ? "<br/><small>" : ": ", o->f);
					text(o, f->evidence);
					fputs(o->html ? "</small>" : "", o->f);
				}
				cell_end(o);
			}
			row_end(o);
		}
	table_end(o);
}

static void cases_table(const struct out *o, const struct hmatrix *m)
{
	static const char *const head[] = { "Case", "Component" };

	table_start(o, head, ARRAY_SIZE(head), m);
	for (size_t i = 0; i < m->n_rows; i++) {
		const struct hmatrix_row *row = &m->rows[i];

		row_start(o);
		cell_start(o, row->failing ? "FAIL" : NULL);
		text(o, row->any->id);
		if (row->differs)
			fputs(o->html ? " <small>(differs)</small>" : " (differs)", o->f);
		cell_end(o);
		cell(o, NULL, row->any->component);
		for (size_t k = 0; k < m->n_kernels; k++) {
			const struct hrep_case *c = row->cells[k];

			if (!m->kernels[k].rep) {
				cell(o, "ERROR", "(no report)");
				continue;
			}
			if (!c) {
				cell(o, NULL, "(not run)");
				continue;
			}
			cell_start(o, hrep_status_names[c->status]);
			fputs(hrep_status_names[c->status], o->f);
			/* A SKIP only some kernels have is explained where it is seen. */
			if (c->status == HREP_SKIP && row->differs && c->reason) {
				fputs(": ", o->f);
				text(o, c->reason);
			}
			cell_end(o);
		}
		row_end(o);
	}
	table_end(o);
}

/* Each row that differs or has a FAIL or ERROR, with every kernel's message or reason. */
static void details(const struct out *o, const struct hmatrix *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_rows; i++) {
		const struct hmatrix_row *row = &m->rows[i];
		bool bad = false;

		for (size_t k = 0; k < m->n_kernels; k++)
			bad |= row->cells[k] && is_bad(row->cells[k]->status);
		if (!row->differs && !bad)
			continue;
		n++;
		if (o->html) {
			fprintf(o->f, "<section class=\"%s\">\n<h3>",
				row->failing ? "failure" : "difference");
			hesc_xml(o->f, row->any->id);
			fputs("</h3>\n<p>", o->f);
			hesc_xml(o->f, row->any->title);
			fputs("</p>\n<ul>\n", o->f);
		} else {
			fputs("### ", o->f);
			hesc_md(o->f, row->any->id);
			fputs("\n\n", o->f);
			hesc_md(o->f, row->any->title);
			fputs("\n\n", o->f);
		}
		for (size_t k = 0; k < m->n_kernels; k++) {
			const struct hrep_case *c = row->cells[k];
			const char *st = !m->kernels[k].rep ? "ERROR"
					 : c		    ? hrep_status_names[c->status]
							    : "not run";
			const char *why = !c ? NULL
					  : c->status == HREP_SKIP || c->status == HREP_XFAIL
						  ? c->reason
					  : c->status != HREP_PASS ? c->message
								   : NULL;

			if (!m->kernels[k].rep)
				why = "the kernel has no report";
			fputs(o->html ? "<li>" : "- ", o->f);
			text(o, m->kernels[k].label);
			if (o->html)
				fprintf(o->f, ": <span class=\"%s\">%s</span>", st, st);
			else
				fprintf(o->f, ": **%s**", st);
			if (why) {
				fputs(o->html ? " <pre>" : ": ", o->f);
				text(o, why);
				fputs(o->html ? "</pre>" : "", o->f);
			}
			fputs(o->html ? "</li>\n" : "\n", o->f);
		}
		fputs(o->html ? "</ul>\n</section>\n" : "\n", o->f);
	}
	if (!n)
		fputs(o->html ? "<p>None.</p>\n" : "None.\n", o->f);
}

/* hrep_compare() of each kernel against the first one that ran: what changed, and why. */
static int compares(const struct out *o, const struct hmatrix *m)
{
	const struct hmatrix_kernel *base = NULL;

	for (size_t k = 0; k < m->n_kernels && !base; k++)
		if (m->kernels[k].rep)
			base = &m->kernels[k];
	for (size_t k = 0; k < m->n_kernels; k++) {
		const struct hmatrix_kernel *kn = &m->kernels[k];
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		FILE *mem;

		if (!base || !kn->rep || kn == base)
			continue;
		mem = open_memstream(&buf, &len);
		if (!mem)
			return -ENOMEM;
		hrep_compare(base->rep, kn->rep, mem);
		if (fclose(mem) != 0)
			return -ENOMEM;
		if (o->html) {
			fputs("<h3>", o->f);
			hesc_xml(o->f, base->label);
			fputs(" &#8594; ", o->f);
			hesc_xml(o->f, kn->label);
			fputs("</h3>\n<pre>", o->f);
			hesc_xml(o->f, buf);
			fputs("</pre>\n", o->f);
		} else {
			/* A fence longer than any backquote run in the text cannot be closed by it.
			 */
			fputs("### ", o->f);
			hesc_md(o->f, base->label);
			fputs(" -> ", o->f);
			hesc_md(o->f, kn->label);
			fputs("\n\n~~~~~~~~\n", o->f);
			for (const char *p = buf; *p; p++)
				fputc(*p == '~' ? '-' : *p, o->f);
			fputs("~~~~~~~~\n\n", o->f);
		}
	}
	if (!base || m->n_kernels < 2)
		fputs(o->html ? "<p>Nothing to compare.</p>\n" : "Nothing to compare.\n", o->f);
	return 0;
}

static const char CSS[] =
	"body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
	"table{border-collapse:collapse;margin:1em 0}"
	"th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
	"th{background:#f3f3f3}"
	"pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;word-break:break-all;margin:.2em 0}"
	".PASS{color:#11772d}.FAIL,.ERROR,.XPASS{color:#b00020;font-weight:bold}"
	".SKIP,.XFAIL{color:#7a5b00}.verdict{font-size:1.3em}"
	"section.failure{border-left:4px solid #b00020;padding-left:1em;margin:1em 0}"
	"section.difference{border-left:4px solid #7a5b00;padding-left:1em;margin:1em 0}";

static int write_human(const struct hmatrix *m, FILE *f, const char *dir, bool html)
{
	const struct out o = { f, html };
	const char *verdict = hmatrix_failed(m) ? "FAIL" : "PASS";
	size_t n_diff, n_fail, n_err;
	int r;

	counts(m, &n_diff, &n_fail, &n_err);
	if (html)
		/* The policy makes "no network, no scripts" hold even if escaping had a hole. */
		fprintf(f,
			"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
			"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
			"style-src 'unsafe-inline'\"/>\n<title>cellcheck kernel matrix</title>\n"
			"<style>%s</style>\n</head>\n<body>\n<h1>cellcheck kernel matrix</h1>\n"
			"<p class=\"verdict\">Verdict: <span class=\"%s\">%s</span>: ",
			CSS, verdict, verdict);
	else
		fprintf(f, "# cellcheck kernel matrix\n\n**Verdict: %s**: ", verdict);
	fprintf(f,
		"%zu kernels (%zu without a report), %zu cases, %zu differ between kernels, %zu of "
		"them with a FAIL or ERROR. Generated %s.",
		m->n_kernels, n_err, m->n_rows, n_diff, n_fail, m->generated_at);
	fputs(html ? "</p>\n" : "\n", f);
	heading(&o, 2, "Kernels");
	kernels_table(&o, m, dir);
	heading(&o, 2, "Kernel features (cellcheck probe)");
	features_table(&o, m);
	heading(&o, 2, "Cases (differences first)");
	cases_table(&o, m);
	heading(&o, 2, "Differences and failures");
	details(&o, m);
	heading(&o, 2, "Compared with the first column (cellcheck compare)");
	r = compares(&o, m);
	if (html)
		fputs("</body>\n</html>\n", f);
	return r ?: ferror(f) ? -EIO : 0;
}

int hmatrix_write_md(const struct hmatrix *m, FILE *f, const char *dir)
{
	return write_human(m, f, dir, false);
}

int hmatrix_write_html(const struct hmatrix *m, FILE *f, const char *dir)
{
	return write_human(m, f, dir, true);
}

static int w_json(const void *m, FILE *f, const void *dir)
{
	return hmatrix_write_json(m, f, dir);
}

static int w_md(const void *m, FILE *f, const void *dir)
{
	return hmatrix_write_md(m, f, dir);
}

static int w_html(const void *m, FILE *f, const void *dir)
{
	return hmatrix_write_html(m, f, dir);
}

int hmatrix_write_all(const struct hmatrix *m, const char *dir)
{
	static const struct {
		const char *name;
		int (*fn)(const void *, FILE *, const void *);
	} outs[] = { { "matrix.json", w_json }, { "matrix.md", w_md }, { "matrix.html", w_html } };

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++) {
		_cleanup_free_ char *path = NULL;
		int r;

		if (asprintf(&path, "%s/%s", dir, outs[i].name) < 0)
			return -ENOMEM;
		r = hrep_atomic_write(path, outs[i].fn, m, dir);
		if (r < 0)
			return r;
	}
	return 0;
}
