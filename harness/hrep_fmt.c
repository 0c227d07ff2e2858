// SPDX-License-Identifier: Apache-2.0
/*
 * The derived report formats: JUnit XML (the Jenkins junit-10.xsd shape: testsuites, one
 * testsuite per component, testcase with failure | error | skipped, suite properties), TAP 13
 * with YAML diagnostics, Markdown and a self-contained HTML page (inline CSS, no scripts, no
 * network: a Content-Security-Policy forbids loading anything).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hesc.h"
#include "hrep.h"
#include "util.h"

/* Worst first: the order failures are listed in, and how a requirement's result is chosen. */
static int rank(enum hrep_status s)
{
	static const int r[_HREP_STATUS_MAX] = {
		[HREP_ERROR] = 5, [HREP_FAIL] = 4, [HREP_XPASS] = 3,
		[HREP_XFAIL] = 2, [HREP_SKIP] = 1, [HREP_PASS] = 0,
	};
	return r[s];
}

static bool is_failure(enum hrep_status s)
{
	return s == HREP_FAIL || s == HREP_ERROR || s == HREP_XPASS;
}

/* Components present in the report, in the canonical order, then unknown ones as found. */
static size_t components(const struct hrep *r, const char **out, size_t max)
{
	size_t n = 0;

	for (int c = 0; hcase_component_names[c] && n < max; c++)
		for (size_t i = 0; i < r->n_cases; i++)
			if (strcmp(r->cases[i].component, hcase_component_names[c]) == 0) {
				out[n++] = hcase_component_names[c];
				break;
			}
	for (size_t i = 0; i < r->n_cases && n < max; i++) {
		bool known = false;

		for (size_t j = 0; j < n; j++)
			known |= strcmp(out[j], r->cases[i].component) == 0;
		if (!known)
			out[n++] = r->cases[i].component;
	}
	return n;
}

static uint64_t total_ms(const struct hrep *r, const char *component)
{
	uint64_t t = 0;

	for (size_t i = 0; i < r->n_cases; i++)
		if (!component || strcmp(r->cases[i].component, component) == 0)
			t += r->cases[i].duration_ms;
	return t;
}

static void secs(FILE *f, uint64_t ms)
{
	fprintf(f, "%llu.%03llu", (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
}

/* ---- requirement index ---- */

struct req_row {
	const char *id;
	enum hcase_level level;
	enum hrep_status worst;
	size_t n_cases;
	size_t n[_HREP_STATUS_MAX]; /* cases citing it, per status */
};

static int req_cmp(const void *a, const void *b)
{
	return strcmp(((const struct req_row *)a)->id, ((const struct req_row *)b)->id);
}

static struct req_row *req_rows(const struct hrep *r, size_t *ret_n)
{
	struct req_row *rows = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];

		for (size_t j = 0; j < c->n_reqs; j++) {
			struct req_row *row = NULL;

			for (size_t k = 0; k < n && !row; k++)
				if (strcmp(rows[k].id, c->reqs[j].id) == 0)
					row = &rows[k];
			if (!row) {
				if (n == cap) {
					struct req_row *nr;

					cap = cap ? cap * 2 : 64;
					nr = realloc(rows, cap * sizeof(*nr));
					if (!nr) {
						free(rows);
						return NULL;
					}
					rows = nr;
				}
				row = &rows[n++];
				*row = (struct req_row){ .id = c->reqs[j].id,
							 .level = c->reqs[j].level,
							 .worst = c->status };
			}
			if (rank(c->status) > rank(row->worst))
				row->worst = c->status;
			row->n_cases++;
			row->n[c->status]++;
		}
	}
	if (n)
		qsort(rows, n, sizeof(*rows), req_cmp);
	*ret_n = n;
	return rows ?: calloc(1, sizeof(*rows));
}

/* The statuses a failure summary counts, in column order. */
static const enum hrep_status bad_cols[] = { HREP_FAIL, HREP_ERROR, HREP_XFAIL, HREP_XPASS };

static bool counted_bad(enum hrep_status s)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		if (bad_cols[i] == s)
			return true;
	return false;
}

static size_t n_bad(const size_t n[_HREP_STATUS_MAX])
{
	size_t t = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		t += n[bad_cols[i]];
	return t;
}

/* Most failing first (XFAIL last: it is acknowledged), then by ID. */
static int req_bad_cmp(const void *a, const void *b)
{
	const struct req_row *x = a, *y = b;
	size_t fx = n_bad(x->n) - x->n[HREP_XFAIL], fy = n_bad(y->n) - y->n[HREP_XFAIL];

	if (fx != fy)
		return fx > fy ? -1 : 1;
	if (n_bad(x->n) != n_bad(y->n))
		return n_bad(x->n) > n_bad(y->n) ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The requirements with at least one failing case, most failing first (a copy of rows). */
static struct req_row *req_bad_rows(const struct req_row *rows, size_t n, size_t *ret_n)
{
	struct req_row *out = calloc(n + 1, sizeof(*out));
	size_t k = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (n_bad(rows[i].n))
			out[k++] = rows[i];
	if (k)
		qsort(out, k, sizeof(*out), req_bad_cmp);
	*ret_n = k;
	return out;
}

/* ---- first-cause categories ---- */

struct cat_row {
	const char *name; /* points into a case */
	size_t total;
	size_t n[_HREP_STATUS_MAX];
};

static int cat_cmp(const void *a, const void *b)
{
	const struct cat_row *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Categories of the report's cases, most frequent first. */
static struct cat_row *cat_rows(const struct hrep *r, size_t *ret_n)
{
	struct cat_row *rows = calloc(r->n_cases + 1, sizeof(*rows));
	size_t n = 0;

	if (!rows)
		return NULL;
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];
		struct cat_row *row = NULL;

		if (!c->category)
			continue;
		for (size_t k = 0; k < n && !row; k++)
			if (strcmp(rows[k].name, c->category) == 0)
				row = &rows[k];
		if (!row) {
			row = &rows[n++];
			row->name = c->category;
		}
		row->total++;
		row->n[c->status]++;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), cat_cmp);
	*ret_n = n;
	return rows;
}

static bool case_cites(const struct hrep_case *c, const char *req)
{
	for (size_t j = 0; j < c->n_reqs; j++)
		if (strcmp(c->reqs[j].id, req) == 0)
			return true;
	return false;
}

/* Case indexes, failures first (worst first), then the rest in report order. */
static size_t *case_order(const struct hrep *r)
{
	size_t *order = calloc(r->n_cases + 1, sizeof(*order)), k = 0;

	if (!order)
		return NULL;
	for (int rk = 5; rk >= 0; rk--)
		for (size_t i = 0; i < r->n_cases; i++)
			if (rank(r->cases[i].status) == rk)
				order[k++] = i;
	return order;
}

/* ---- JUnit XML ---- */

static void xml_prop(FILE *f, const char *name, const char *value)
{
	fprintf(f, "      <property name=\"%s\" value=\"", name);
	hesc_xml(f, value ?: "");
	fputs("\"/>\n", f);
}

static void junit_body(FILE *f, const struct hrep_case *c)
{
	fputs("requirements:", f);
	for (size_t i = 0; i < c->n_reqs; i++) {
		fputc(' ', f);
		hesc_xml(f, c->reqs[i].id);
		fprintf(f, " (%s)", hcase_level_names[c->reqs[i].level]);
	}
	if (c->message) {
		fputs("&#10;message: ", f);
		hesc_xml(f, c->message);
	}
	if (c->category) {
		fputs("&#10;first cause: ", f);
		hesc_xml(f, c->category);
	}
	for (size_t i = 0; c->n_problems > 1 && i < c->n_problems; i++) {
		fprintf(f, "&#10;problem %zu (%s): ", i + 1,
			hrep_status_names[c->problems[i].status]);
		hesc_xml(f, c->problems[i].message);
	}
	if (c->reproduce) {
		fputs("&#10;reproduce: ", f);
		hesc_xml(f, c->reproduce);
	}
	if (c->artifacts) {
		fputs("&#10;artifacts: ", f);
		hesc_xml(f, c->artifacts);
	}
}

int hrep_write_junit(const struct hrep *r, FILE *f)
{
	const char *comps[64];
	size_t nc = components(r, comps, ARRAY_SIZE(comps));
	struct hrep_counts all;

	hrep_count(r, NULL, -1, &all);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f,
		"<testsuites name=\"cellcheck\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" time=\"",
		all.total, all.n[HREP_FAIL] + all.n[HREP_XPASS], all.n[HREP_ERROR]);
	secs(f, total_ms(r, NULL));
	fputs("\">\n", f);
	for (size_t s = 0; s < nc; s++) {
		struct hrep_counts n;

		hrep_count(r, comps[s], -1, &n);
		fputs("  <testsuite name=\"", f);
		hesc_xml(f, comps[s]);
		fprintf(f,
			"\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"",
			n.total, n.n[HREP_FAIL] + n.n[HREP_XPASS], n.n[HREP_ERROR],
			n.n[HREP_SKIP] + n.n[HREP_XFAIL]);
		secs(f, total_ms(r, comps[s]));
		fprintf(f, "\" id=\"%zu\" package=\"cellcheck.", s);
		hesc_xml(f, comps[s]);
		fputs("\" timestamp=\"", f);
		hesc_xml(f, r->started_at);
		fputs("\">\n    <properties>\n", f);
		xml_prop(f, "kernel.release", r->kernel_release);
		xml_prop(f, "kernel.configSha256", r->kernel_config_sha256);
		xml_prop(f, "harness.version", r->harness_version);
		xml_prop(f, "harness.gitRevision", r->harness_git_revision);
		xml_prop(f, "profile.name", r->profile_name);
		xml_prop(f, "profile.sha256", r->profile_sha256);
		for (size_t i = 0; i < r->n_files; i++) {
			char name[256];

			if (strcmp(r->files[i].component, comps[s]) != 0)
				continue;
			snprintf(name, sizeof(name), "sha256.%s", r->files[i].role);
			xml_prop(f, name, r->files[i].sha256);
		}
		fputs("    </properties>\n", f);
		for (size_t i = 0; i < r->n_cases; i++) {
			const struct hrep_case *c = &r->cases[i];
			const char *tag = NULL;

			if (strcmp(c->component, comps[s]) != 0)
				continue;
			fputs("    <testcase name=\"", f);
			hesc_xml(f, c->id);
			fputs("\" classname=\"cellcheck.", f);
			hesc_xml(f, c->component);
			fputs("\" time=\"", f);
			secs(f, c->duration_ms);
			fputs("\">\n", f);
			switch (c->status) {
			case HREP_FAIL:
			case HREP_XPASS:
				tag = "failure";
				break;
			case HREP_ERROR:
				tag = "error";
				break;
			case HREP_SKIP:
			case HREP_XFAIL:
				tag = "skipped";
				break;
			default:
				break;
			}
			if (tag) {
				const char *msg = c->status == HREP_SKIP || c->status == HREP_XFAIL
							  ? c->reason
							  : c->message;

				fprintf(f, "      <%s type=\"%s\" message=\"", tag,
					hrep_status_names[c->status]);
				if (c->status == HREP_XFAIL)
					fputs("known issue: ", f);
				if (c->status == HREP_XPASS)
					fputs("known issue passed unexpectedly: ", f);
				hesc_xml(f, msg ?: c->message ?: "");
				fputs("\">", f);
				junit_body(f, c);
				fprintf(f, "</%s>\n", tag);
			}
			fputs("      <system-out>", f);
			hesc_xml(f, c->title);
			fputs("&#10;", f);
			junit_body(f, c);
			fputs("</system-out>\n    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	return ferror(f) ? -EIO : 0;
}

/* ---- TAP 13 ---- */

static void yaml_kv(FILE *f, const char *key, const char *value)
{
	if (!value)
		return;
	fprintf(f, "  %s: ", key);
	hesc_yaml(f, value);
	fputc('\n', f);
}

int hrep_write_tap(const struct hrep *r, FILE *f)
{
	fprintf(f, "TAP version 13\n1..%zu\n", r->n_cases);
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];
		bool ok = c->status == HREP_PASS || c->status == HREP_SKIP;

		fprintf(f, "%s %zu - ", ok ? "ok" : "not ok", i + 1);
		hesc_tap(f, c->id);
		if (c->status == HREP_SKIP) {
			fputs(" # SKIP ", f);
			hesc_tap(f, c->reason ?: "");
		} else if (c->status == HREP_XFAIL) {
			/* A known issue: TAP's TODO keeps it from failing the stream. */
			fputs(" # TODO ", f);
			hesc_tap(f, c->reason ?: "known issue");
		}
		fputc('\n', f);
		if (ok || c->status == HREP_XFAIL)
			continue;
		fputs("  ---\n", f);
		yaml_kv(f, "status", hrep_status_names[c->status]);
		yaml_kv(f, "severity", c->status == HREP_ERROR ? "error" : "fail");
		yaml_kv(f, "component", c->component);
		yaml_kv(f, "title", c->title);
		fputs("  requirements:\n", f);
		for (size_t j = 0; j < c->n_reqs; j++) {
			fputs("    - ", f);
			hesc_yaml(f, c->reqs[j].id);
			fprintf(f, " # %s\n", hcase_level_names[c->reqs[j].level]);
		}
		yaml_kv(f, "message", c->message);
		yaml_kv(f, "category", c->category);
		if (c->n_problems) {
			fputs("  problems:\n", f);
			for (size_t j = 0; j < c->n_problems; j++) {
				fprintf(f, "    - status: %s\n      message: ",
					hrep_status_names[c->problems[j].status]);
				hesc_yaml(f, c->problems[j].message ?: "");
				fputc('\n', f);
			}
		}
		yaml_kv(f, "reason", c->reason);
		yaml_kv(f, "reproduce", c->reproduce);
		yaml_kv(f, "artifacts", c->artifacts);
		fprintf(f, "  durationMs: %llu\n", (unsigned long long)c->duration_ms);
		fputs("  ...\n", f);
	}
	return ferror(f) ? -EIO : 0;
}

/* ---- Markdown ---- */

static void md_counts_row(FILE *f, const char *label, const struct hrep_counts *n)
{
	fputs("| ", f);
	hesc_md(f, label);
	fprintf(f, " | %zu |", n->total);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, " %zu |", n->n[s]);
	fputc('\n', f);
}

static void md_counts_head(FILE *f, const char *first)
{
	fprintf(f, "| %s | Total |", first);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, " %s |", hrep_status_names[s]);
	fputs("\n|---|--:|", f);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fputs("--:|", f);
	fputc('\n', f);
}

static void md_env_row(FILE *f, const char *key, const char *value)
{
	fprintf(f, "| %s | ", key);
	hesc_md(f, value ?: "-");
	fputs(" |\n", f);
}

static void md_bad_counts(FILE *f, const size_t n[_HREP_STATUS_MAX])
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		fprintf(f, " %zu |", n[bad_cols[i]]);
}

/* Up to max failing case IDs matching (requirement or category), then "and N more". */
static void md_case_list(FILE *f, const struct hrep *r, const size_t *order, const char *req,
			 const char *cat, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[order[i]];

		if (!counted_bad(c->status))
			continue;
		if ((req && !case_cites(c, req)) ||
		    (cat && (!c->category || strcmp(c->category, cat) != 0)))
			continue;
		if (k < max) {
			fputs(k ? ", " : " ", f);
			hesc_md(f, c->id);
		}
		k++;
	}
	if (k > max)
		fprintf(f, " and %zu more", k - max);
	fputs(" |\n", f);
}

static void md_by_requirement(FILE *f, const struct hrep *r, const size_t *order,
			      const struct req_row *bad, size_t n_bad_rows)
{
	fputs("## Failures by requirement\n\n", f);
	if (!n_bad_rows) {
		fputs("None.\n\n", f);
	} else {
		fputs("A case counts under each requirement it cites.\n\n"
		      "| Requirement | Title | Level |",
		      f);
		for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
			fprintf(f, " %s |", hrep_status_names[bad_cols[i]]);
		fputs(" Cases |\n|---|---|---|--:|--:|--:|--:|---|\n", f);
		for (size_t i = 0; i < n_bad_rows; i++) {
			fputs("| ", f);
			hesc_md(f, bad[i].id);
			fputs(" | ", f);
			hesc_md(f, hrep_title(r, bad[i].id) ?: "-");
			fprintf(f, " | %s |", hcase_level_names[bad[i].level]);
			md_bad_counts(f, bad[i].n);
			md_case_list(f, r, order, bad[i].id, NULL, 8);
		}
		fputc('\n', f);
	}
}

static void md_by_category(FILE *f, const struct hrep *r, const size_t *order,
			   const struct cat_row *cats, size_t n_cats)
{
	fputs("## Failures by first cause\n\n", f);
	if (!n_cats) {
		fputs("None.\n\n", f);
		return;
	}
	fputs("The category of a case's first problem (reports/README.md).\n\n"
	      "| First cause | Cases |",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		fprintf(f, " %s |", hrep_status_names[bad_cols[i]]);
	fputs(" Examples |\n|---|--:|--:|--:|--:|--:|---|\n", f);
	for (size_t i = 0; i < n_cats; i++) {
		fputs("| ", f);
		hesc_md(f, cats[i].name);
		fprintf(f, " | %zu |", cats[i].total);
		md_bad_counts(f, cats[i].n);
		md_case_list(f, r, order, NULL, cats[i].name, 5);
	}
	fputc('\n', f);
}

/*
 * The cases that came closest to their deadline, slowest fraction first (at most max; issue
 * 13): a case that needs 80% of its time budget flakes on the next slower machine. Returns how
 * many, 0 when the report records no deadlines (older reports, merged ones without them).
 */
#define NEAR_DEADLINE_MAX 10

static size_t near_deadline(const struct hrep *r, size_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];
		size_t k;

		if (!c->deadline_ms || c->status == HREP_SKIP)
			continue;
		/* Insertion by slowest/deadline, compared without division. */
		for (k = n; k > 0; k--) {
			const struct hrep_case *o = &r->cases[out[k - 1]];

			if ((double)o->slowest_ms * (double)c->deadline_ms >=
			    (double)c->slowest_ms * (double)o->deadline_ms)
				break;
			if (k < max)
				out[k] = out[k - 1];
		}
		if (k < max) {
			out[k] = i;
			if (n < max)
				n++;
		}
	}
	return n;
}

static double used_pct(const struct hrep_case *c)
{
	return 100.0 * (double)c->slowest_ms / (double)c->deadline_ms;
}

static void md_near_deadline(FILE *f, const struct hrep *r)
{
	size_t idx[NEAR_DEADLINE_MAX], n = near_deadline(r, idx, NEAR_DEADLINE_MAX);

	if (!n)
		return;
	size_t n_all;
	double med = hrep_deadline_median(r, &n_all);

	fprintf(f,
		"## Closest to their deadline\n\nMedian use of the deadline: %.0f%% over %zu "
		"cases.\n\n| Case | Slowest run | Deadline | Used |\n|---|--:|--:|--:|\n",
		med, n_all);
	for (size_t i = 0; i < n; i++) {
		const struct hrep_case *c = &r->cases[idx[i]];

		fputs("| ", f);
		hesc_md(f, c->id);
		fprintf(f, " | %llu ms | %llu ms | %.0f%% |\n", (unsigned long long)c->slowest_ms,
			(unsigned long long)c->deadline_ms, used_pct(c));
	}
	fputc('\n', f);
}

/* What both the Markdown and the HTML report are built from, computed once per report. */
struct views {
	struct req_row *rows, *bad; /* every requirement; those with a failing case */
	size_t n_rows, n_bad_rows;
	struct cat_row *cats; /* failures by first cause */
	size_t n_cats;
	size_t *order; /* cases, failures first */
};

static void views_clear(struct views *v)
{
	free(v->rows);
	free(v->bad);
	free(v->cats);
	free(v->order);
}

static int views_build(const struct hrep *r, struct views *v)
{
	v->rows = req_rows(r, &v->n_rows);
	v->order = case_order(r);
	v->cats = cat_rows(r, &v->n_cats);
	if (!v->rows || !v->order || !v->cats)
		return -ENOMEM;
	v->bad = req_bad_rows(v->rows, v->n_rows, &v->n_bad_rows);
	return v->bad ? 0 : -ENOMEM;
}

/* One table of counts per component, then one per level. */
static void md_summaries(FILE *f, const struct hrep *r)
{
	const char *comps[64];
	size_t nc = components(r, comps, ARRAY_SIZE(comps));

	fputs("## Summary by component\n\n", f);
	md_counts_head(f, "Component");
	for (size_t s = 0; s < nc; s++) {
		struct hrep_counts n;

		hrep_count(r, comps[s], -1, &n);
		md_counts_row(f, comps[s], &n);
	}
	fputs("\n## Summary by level\n\n", f);
	md_counts_head(f, "Level");
	for (int l = 0; l < _HCASE_LEVEL_MAX; l++) {
		struct hrep_counts n;

		hrep_count(r, NULL, l, &n);
		md_counts_row(f, hcase_level_names[l], &n);
	}
	fputc('\n', f);
}

static void md_environment(FILE *f, const struct hrep *r)
{
	fputs("## Environment\n\n| Item | Value |\n|---|---|\n", f);
	md_env_row(f, "Kernel release", r->kernel_release);
	md_env_row(f, "Kernel config SHA-256", r->kernel_config_sha256);
	if (r->time_scale >= 1.0) {
		char ts[64];

		snprintf(ts, sizeof(ts), "%.1f (%s)", r->time_scale, r->time_scale_from ?: "-");
		md_env_row(f, "Deadline factor", ts);
	}
	md_env_row(f, "Harness version", r->harness_version);
	md_env_row(f, "Harness revision", r->harness_git_revision);
	md_env_row(f, "Profile", r->profile_name);
	md_env_row(f, "Profile path", r->profile_path);
	md_env_row(f, "Profile SHA-256", r->profile_sha256);
	for (size_t i = 0; i < r->n_files; i++) {
		fputs("| ", f);
		hesc_md(f, r->files[i].component);
		fputc(' ', f);
		hesc_md(f, r->files[i].role);
		fputs(" | ", f);
		hesc_md(f, r->files[i].path);
		fputs(" (SHA-256 ", f);
		hesc_md(f, r->files[i].sha256);
		fputs(") |\n", f);
	}
	md_env_row(f, "Started", r->started_at);
	md_env_row(f, "Ended", r->ended_at);
	if (r->has_shard)
		fprintf(f, "| Shard | %u of %u |\n", r->shard_index, r->shard_count);
}

/* One failing case: what it checks, its first cause, every problem, how to reproduce it. */
static void md_failure(FILE *f, const struct hrep *r, const struct hrep_case *c, const char *prefix)
{
	fputs("### ", f);
	hesc_md(f, c->id);
	fprintf(f, " (%s)\n\n- Title: ", hrep_status_names[c->status]);
	hesc_md(f, c->title);
	fputs("\n- Component: ", f);
	hesc_md(f, c->component);
	fputs("\n- Requirements:", f);
	for (size_t j = 0; j < c->n_reqs; j++) {
		const char *t = hrep_title(r, c->reqs[j].id);

		fputs(j ? "; " : " ", f);
		hesc_md(f, c->reqs[j].id);
		fprintf(f, " (%s)", hcase_level_names[c->reqs[j].level]);
		if (t) {
			fputs(" ", f);
			hesc_md(f, t);
		}
	}
	if (c->category) {
		fputs("\n- First cause: ", f);
		hesc_md(f, c->category);
	}
	fputs("\n- Message: ", f);
	hesc_md(f, c->message ?: "-");
	if (c->n_problems > 1) {
		fprintf(f, "\n- Problems (%zu):", c->n_problems);
		for (size_t j = 0; j < c->n_problems; j++) {
			fprintf(f, "\n  %zu. %s: ", j + 1,
				hrep_status_names[c->problems[j].status]);
			hesc_md(f, c->problems[j].message ?: "");
		}
	}
	if (c->reproduce) {
		fputs("\n- Reproduce: ", f);
		hesc_md(f, c->reproduce);
	}
	if (c->artifacts) {
		fputs("\n- Artifacts: [", f);
		hesc_md(f, c->artifacts);
		fputs("](./", f);
		hesc_url(f, prefix);
		hesc_url(f, c->artifacts);
		fputs("/)", f);
	}
	fputs("\n\n", f);
}

static void md_requirements(FILE *f, const struct hrep *r, const struct req_row *rows,
			    size_t n_rows)
{
	fputs("## Requirements\n\n| Requirement | Title | Level | Cases | Result |\n"
	      "|---|---|---|--:|---|\n",
	      f);
	for (size_t i = 0; i < n_rows; i++) {
		fputs("| ", f);
		hesc_md(f, rows[i].id);
		fputs(" | ", f);
		hesc_md(f, hrep_title(r, rows[i].id) ?: "-");
		fprintf(f, " | %s | %zu | %s |\n", hcase_level_names[rows[i].level],
			rows[i].n_cases, hrep_status_names[rows[i].worst]);
	}
}

static void md_cases(FILE *f, const struct hrep *r)
{
	fputs("\n## Cases\n\n| Case | Component | Level | Status | Duration (ms) | Note |\n"
	      "|---|---|---|---|--:|---|\n",
	      f);
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];

		fputs("| ", f);
		hesc_md(f, c->id);
		fputs(" | ", f);
		hesc_md(f, c->component);
		fprintf(f, " | %s | %s | %llu | ", hcase_level_names[hrep_case_level(c)],
			hrep_status_names[c->status], (unsigned long long)c->duration_ms);
		hesc_md(f,
			c->status == HREP_SKIP || c->status == HREP_XFAIL ? c->reason : c->message);
		if (c->runs)
			fprintf(f, " (%u flaky of %u runs)", c->flakes, c->runs);
		fputs(" |\n", f);
	}
}

/* The verdict first, then what failed and why, then the summaries and every case. */
int hrep_write_md(const struct hrep *r, FILE *f, const char *prefix)
{
	_cleanup_(views_clear) struct views v = { 0 };
	size_t n_fail = 0;
	struct hrep_counts all;

	if (views_build(r, &v) < 0)
		return -ENOMEM;
	hrep_count(r, NULL, -1, &all);
	fprintf(f, "# cellcheck report\n\n**Verdict: %s**: %zu cases",
		hrep_failed(r) ? "FAIL" : "PASS", all.total);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, ", %zu %s", all.n[s], hrep_status_names[s]);
	fputs(". Profile ", f);
	hesc_md(f, r->profile_name ?: "-");
	fputs(", kernel ", f);
	hesc_md(f, r->kernel_release ?: "-");
	fputs(".\n\n", f);
	md_by_category(f, r, v.order, v.cats, v.n_cats);
	md_by_requirement(f, r, v.order, v.bad, v.n_bad_rows);
	md_summaries(f, r);
	md_near_deadline(f, r);
	md_environment(f, r);

	fputs("\n## Failures\n\n", f);
	for (size_t k = 0; k < r->n_cases; k++) {
		const struct hrep_case *c = &r->cases[v.order[k]];

		if (!is_failure(c->status))
			continue;
		n_fail++;
		md_failure(f, r, c, prefix);
	}
	if (!n_fail)
		fputs("None.\n\n", f);
	md_requirements(f, r, v.rows, v.n_rows);
	md_cases(f, r);
	return ferror(f) ? -EIO : 0;
}

/* ---- HTML ---- */

static const char CSS[] =
	"body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:90em}"
	"table{border-collapse:collapse;margin:1em 0}"
	"th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
	"th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	"td.z{color:#bbb}"
	"pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;overflow-wrap:anywhere}"
	"code{overflow-wrap:anywhere}"
	"a{color:#0b57d0}"
	".PASS{color:#11772d}.FAIL,.ERROR,.XPASS{color:#b00020;font-weight:bold}"
	".SKIP,.XFAIL{color:#7a5b00}"
	".verdict{font-size:1.3em}.env{color:#555}"
	"nav a{margin-right:1em}"
	"td.cases{font-size:.85em;max-width:45em}td.cases a{margin-right:.6em;font-weight:normal}"
	"td.cases summary{cursor:pointer;color:#0b57d0}"
	"td.note{font-size:.85em;max-width:50em;overflow-wrap:anywhere}"
	".cat{font-family:monospace;background:#eef0ff;padding:0 .3em;border-radius:3px}"
	"details.case{border-left:4px solid #b00020;margin:.25em 0;padding:.2em .6em}"
	"details.case.st-XFAIL{border-left-color:#c9a227}"
	"details.case>summary{cursor:pointer;white-space:nowrap;overflow:hidden;"
	"text-overflow:ellipsis}"
	"details.case[open]>summary{white-space:normal}"
	"details.case>summary .msg{color:#555}details.case>summary b{color:#222}"
	"ol.problems li{margin:.2em 0}"
	"details.more>summary{cursor:pointer;color:#0b57d0;margin:.5em 0}"
	":target{background:#fff6cc}";

static void h(FILE *f, const char *s)
{
	hesc_xml(f, s ?: "-");
}

/* An id or fragment: prefix then s with anything but [A-Za-z0-9._-] as '_'. */
static void anchor(FILE *f, const char *prefix, const char *s)
{
	fputs(prefix, f);
	for (; *s; s++) {
		char ch = *s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			ch = '_';
		fputc(ch, f);
	}
}

static void link_to(FILE *f, const char *prefix, const char *s, const char *cls)
{
	fputs("<a href=\"#", f);
	anchor(f, prefix, s);
	if (cls)
		fprintf(f, "\" class=\"%s", cls);
	fputs("\">", f);
	h(f, s);
	fputs("</a>", f);
}

static void html_env_row(FILE *f, const char *key, const char *value)
{
	fprintf(f, "<tr><th>%s</th><td>", key);
	h(f, value);
	fputs("</td></tr>\n", f);
}

static void html_count(FILE *f, enum hrep_status s, size_t n)
{
	fprintf(f, "<td class=\"n%s\" data-status=\"%s\">%zu</td>", n ? "" : " z",
		hrep_status_names[s], n);
}

/* The status names as column heads, each a link to its section when it has cases. */
static void html_status_head(FILE *f, const struct hrep_counts *all, enum hrep_status s)
{
	if (all->n[s])
		fprintf(f, "<th><a href=\"#status-%s\" class=\"%s\">%s</a></th>",
			hrep_status_names[s], hrep_status_names[s], hrep_status_names[s]);
	else
		fprintf(f, "<th>%s</th>", hrep_status_names[s]);
}

static void html_counts_table(FILE *f, const struct hrep *r, const char *first,
			      const struct hrep_counts *all, const char **labels, size_t n_labels,
			      bool by_component)
{
	fprintf(f, "<table class=\"counts\">\n<tr><th>%s</th><th>Total</th>", first);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		html_status_head(f, all, s);
	fputs("</tr>\n", f);
	for (size_t i = 0; i < n_labels; i++) {
		struct hrep_counts n;

		hrep_count(r, by_component ? labels[i] : NULL, by_component ? -1 : (int)i, &n);
		if (by_component) {
			fputs("<tr data-component=\"", f);
			h(f, labels[i]);
			fputs("\"><td>", f);
			link_to(f, "component-", labels[i], NULL);
		} else {
			fprintf(f, "<tr data-level=\"%s\"><td>%s", labels[i], labels[i]);
		}
		fprintf(f, "</td><td class=\"n\" data-status=\"total\">%zu</td>", n.total);
		for (int s = 0; s < _HREP_STATUS_MAX; s++)
			html_count(f, s, n.n[s]);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* Links to the failing cases citing req or of category cat, worst first (f NULL: count). */
static size_t html_case_links(FILE *f, const struct hrep *r, const size_t *order, const char *req,
			      const char *cat)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[order[i]];

		if (!counted_bad(c->status))
			continue;
		if ((req && !case_cites(c, req)) ||
		    (cat && (!c->category || strcmp(c->category, cat) != 0)))
			continue;
		if (f) {
			link_to(f, "case-", c->id, hrep_status_names[c->status]);
			fputc('\n', f);
		}
		k++;
	}
	return k;
}

/* A few links inline; more folded, so that one requirement cited by 70 cases stays a row. */
static void html_case_cell(FILE *f, const struct hrep *r, const size_t *order, const char *req,
			   const char *cat)
{
	size_t n = html_case_links(NULL, r, order, req, cat);

	fputs("<td class=\"cases\">", f);
	if (n > 3)
		fprintf(f, "<details><summary>%zu cases</summary>\n", n);
	html_case_links(f, r, order, req, cat);
	if (n > 3)
		fputs("</details>", f);
	fputs("</td>", f);
}

/* The requirements with failing cases, most failing first, with their titles. */
static void html_req_head(FILE *f)
{
	fputs("<table class=\"by-requirement\">\n<tr><th>Requirement</th><th>Title</th>"
	      "<th>Level</th>",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		fprintf(f, "<th>%s</th>", hrep_status_names[bad_cols[i]]);
	fputs("<th>Cases</th></tr>\n", f);
}

/* Rows past this many are folded: 90 failures touch 80 requirements, most of them once. */
#define HTML_REQ_SHOWN 20

static void html_by_requirement(FILE *f, const struct hrep *r, const size_t *order,
				const struct req_row *bad, size_t n_bad_rows)
{
	fputs("<h2 id=\"by-requirement\">Failures by requirement</h2>\n", f);
	if (!n_bad_rows) {
		fputs("<p>None.</p>\n", f);
		return;
	}
	fputs("<p>Every requirement with a failing case, most failures first; a case counts "
	      "under each requirement it cites.</p>\n",
	      f);
	html_req_head(f);
	for (size_t i = 0; i < n_bad_rows; i++) {
		if (i == HTML_REQ_SHOWN) {
			fprintf(f,
				"</table>\n<details class=\"more\"><summary>%zu more requirements, "
				"%zu failing case%s or fewer each</summary>\n",
				n_bad_rows - i, n_bad(bad[i].n), n_bad(bad[i].n) == 1 ? "" : "s");
			html_req_head(f);
		}
		fputs("<tr data-requirement=\"", f);
		h(f, bad[i].id);
		fputs("\"><td>", f);
		link_to(f, "req-", bad[i].id, NULL);
		fputs("</td><td>", f);
		h(f, hrep_title(r, bad[i].id));
		fprintf(f, "</td><td>%s</td>", hcase_level_names[bad[i].level]);
		for (size_t j = 0; j < ARRAY_SIZE(bad_cols); j++)
			html_count(f, bad_cols[j], bad[i].n[bad_cols[j]]);
		html_case_cell(f, r, order, bad[i].id, NULL);
		fputs("</tr>\n", f);
	}
	fputs(n_bad_rows > HTML_REQ_SHOWN ? "</table>\n</details>\n" : "</table>\n", f);
}

/* The first-cause categories of the failing cases, most frequent first. */
static void html_near_deadline(FILE *f, const struct hrep *r)
{
	size_t idx[NEAR_DEADLINE_MAX], n = near_deadline(r, idx, NEAR_DEADLINE_MAX);

	if (!n)
		return;
	size_t n_all;
	double med = hrep_deadline_median(r, &n_all);

	fprintf(f,
		"<h2 id=\"near-deadline\">Closest to their deadline</h2>\n<p>The slowest run of "
		"each case against its deadline (timeout times the deadline factor): a case that "
		"needs most of its budget fails on the next slower machine. Median use: "
		"<span id=\"deadline-median\">%.0f%%</span> over %zu cases.</p>\n<table>\n"
		"<tr><th>Case</th><th>Slowest run</th><th>Deadline</th><th>Used</th></tr>\n",
		med, n_all);
	for (size_t i = 0; i < n; i++) {
		const struct hrep_case *c = &r->cases[idx[i]];

		fputs("<tr><td><a href=\"#", f);
		anchor(f, "case-", c->id);
		fputs("\">", f);
		h(f, c->id);
		fprintf(f,
			"</a></td><td class=\"n\">%llu ms</td><td class=\"n\">%llu ms</td>"
			"<td class=\"n\">%.0f%%</td></tr>\n",
			(unsigned long long)c->slowest_ms, (unsigned long long)c->deadline_ms,
			used_pct(c));
	}
	fputs("</table>\n", f);
}

static void html_by_category(FILE *f, const struct hrep *r, const size_t *order,
			     const struct cat_row *cats, size_t n_cats)
{
	fputs("<h2 id=\"by-category\">Failures by first cause</h2>\n", f);
	if (!n_cats) {
		fputs("<p>None.</p>\n", f);
		return;
	}
	fputs("<p>The category of each case's first problem: <span class=\"cat\">stop</span> a "
	      "process's outcome at stop, <span class=\"cat\">start</span> a component not started "
	      "or not ready, <span class=\"cat\">expect.X</span> an expectation of kind X, "
	      "<span class=\"cat\">leftover</span> what the audit found left behind "
	      "(reports/README.md).</p>\n<table class=\"by-category\">\n"
	      "<tr><th>First cause</th><th>Cases</th>",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(bad_cols); i++)
		fprintf(f, "<th>%s</th>", hrep_status_names[bad_cols[i]]);
	fputs("<th>Which</th></tr>\n", f);
	for (size_t i = 0; i < n_cats; i++) {
		fputs("<tr id=\"", f);
		anchor(f, "category-", cats[i].name);
		fputs("\" data-category=\"", f);
		h(f, cats[i].name);
		fputs("\"><td><span class=\"cat\">", f);
		h(f, cats[i].name);
		fprintf(f, "</span></td><td class=\"n\" data-status=\"total\">%zu</td>",
			cats[i].total);
		for (size_t j = 0; j < ARRAY_SIZE(bad_cols); j++)
			html_count(f, bad_cols[j], cats[i].n[bad_cols[j]]);
		html_case_cell(f, r, order, NULL, cats[i].name);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* One failing (or XFAIL) case: collapsed to its first problem, everything inside. */
static void html_case_details(FILE *f, const struct hrep *r, const struct hrep_case *c,
			      const char *prefix)
{
	const char *st = hrep_status_names[c->status];

	fprintf(f, "<details class=\"case st-%s\" id=\"", st);
	anchor(f, "case-", c->id);
	fprintf(f, "\" data-status=\"%s\">\n<summary><span class=\"%s\">%s</span> <b>", st, st, st);
	h(f, c->id);
	fputs("</b>", f);
	if (c->category) {
		fputs(" <span class=\"cat\">", f);
		h(f, c->category);
		fputs("</span>", f);
	}
	if (c->message || c->reason) {
		fputs(" <span class=\"msg\">", f);
		h(f, c->status == HREP_XFAIL ? c->reason : c->message);
		fputs("</span>", f);
	}
	fputs("</summary>\n<p>", f);
	h(f, c->title);
	fputs("</p>\n<p>Component: ", f);
	link_to(f, "component-", c->component, NULL);
	fputs("</p>\n<ul class=\"reqs\">\n", f);
	for (size_t j = 0; j < c->n_reqs; j++) {
		const char *t = hrep_title(r, c->reqs[j].id);

		fputs("<li>", f);
		link_to(f, "req-", c->reqs[j].id, NULL);
		fprintf(f, " (%s)", hcase_level_names[c->reqs[j].level]);
		if (t) {
			fputs(": ", f);
			h(f, t);
		}
		fputs("</li>\n", f);
	}
	fputs("</ul>\n", f);
	if (c->reason && c->status != HREP_SKIP) {
		fputs("<p>Known issue: ", f);
		h(f, c->reason);
		fputs("</p>\n", f);
	}
	if (c->n_problems) {
		fprintf(f, "<p>Problems (%zu):</p>\n<ol class=\"problems\">\n", c->n_problems);
		for (size_t j = 0; j < c->n_problems; j++) {
			fprintf(f, "<li><span class=\"%s\">%s</span> <code>",
				hrep_status_names[c->problems[j].status],
				hrep_status_names[c->problems[j].status]);
			h(f, c->problems[j].message);
			fputs("</code></li>\n", f);
		}
		fputs("</ol>\n", f);
	} else if (c->message) {
		fputs("<pre class=\"message\">", f);
		h(f, c->message);
		fputs("</pre>\n", f);
	}
	if (c->runs)
		fprintf(f, "<p>%u of %u runs differed from %s.</p>\n", c->flakes, c->runs, st);
	if (c->reproduce) {
		fputs("<p>Reproduce:</p>\n<pre class=\"reproduce\">", f);
		h(f, c->reproduce);
		fputs("</pre>\n", f);
	}
	if (c->artifacts) {
		/* Percent-encoded and "./"-rooted: never a scheme, never outside the text. */
		fputs("<p>Artifacts: <a href=\"./", f);
		hesc_url(f, prefix);
		hesc_url(f, c->artifacts);
		fputs("/\">", f);
		h(f, c->artifacts);
		fputs("</a></p>\n", f);
	}
	fputs("</details>\n", f);
}

/* A PASS or SKIP case: one table row. */
static void html_case_row(FILE *f, const struct hrep_case *c)
{
	fputs("<tr class=\"case\" id=\"", f);
	anchor(f, "case-", c->id);
	fprintf(f, "\" data-status=\"%s\"><td>", hrep_status_names[c->status]);
	h(f, c->id);
	fputs("</td><td>", f);
	link_to(f, "component-", c->component, NULL);
	fprintf(f, "</td><td>%s</td><td class=\"n\">%llu</td><td class=\"note\">",
		hcase_level_names[hrep_case_level(c)], (unsigned long long)c->duration_ms);
	hesc_xml(f, c->status == HREP_SKIP ? c->reason : c->message);
	if (c->runs)
		fprintf(f, " (%u flaky of %u runs)", c->flakes, c->runs);
	fputs("</td></tr>\n", f);
}

/* The order the statuses are listed in: worst first. */
static const enum hrep_status html_by_rank[] = { HREP_ERROR, HREP_FAIL, HREP_XPASS,
						 HREP_XFAIL, HREP_SKIP, HREP_PASS };

/* The document head, the verdict line with a link per status, and the navigation. */
static void html_head(FILE *f, const struct hrep *r, const struct hrep_counts *all)
{
	bool failed = hrep_failed(r);

	/* The policy makes "no network, no scripts" hold even if escaping had a hole. */
	fprintf(f,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"style-src 'unsafe-inline'\"/>\n<title>cellcheck report</title>\n<style>%s</style>\n"
		"</head>\n<body>\n<h1>cellcheck report</h1>\n",
		CSS);
	fprintf(f,
		"<p class=\"verdict\">Verdict: <span class=\"%s\" id=\"verdict\">%s</span>, "
		"<span data-status=\"total\">%zu</span> cases",
		failed ? "FAIL" : "PASS", failed ? "FAIL" : "PASS", all->total);
	for (size_t i = 0; i < ARRAY_SIZE(html_by_rank); i++) {
		enum hrep_status s = html_by_rank[i];

		if (all->n[s])
			fprintf(f,
				", <a href=\"#status-%s\" class=\"count\"><span data-status=\"%s\">"
				"%zu</span> <span class=\"%s\">%s</span></a>",
				hrep_status_names[s], hrep_status_names[s], all->n[s],
				hrep_status_names[s], hrep_status_names[s]);
		else
			fprintf(f, ", <span data-status=\"%s\">0</span> %s", hrep_status_names[s],
				hrep_status_names[s]);
	}
	fputs(".</p>\n<p class=\"env\">Profile ", f);
	h(f, r->profile_name);
	fputs(", kernel ", f);
	h(f, r->kernel_release);
	fputs(", harness ", f);
	h(f, r->harness_version);
	fputs(" (", f);
	h(f, r->harness_git_revision);
	fputs("), started ", f);
	h(f, r->started_at);
	fputs(".</p>\n<nav><a href=\"#by-category\">Failures by first cause</a>"
	      "<a href=\"#by-requirement\">Failures by requirement</a>"
	      "<a href=\"#by-component\">Summary by component</a>"
	      "<a href=\"#by-status\">Cases by status</a>"
	      "<a href=\"#cases-by-component\">Cases by component</a>"
	      "<a href=\"#requirements\">Requirements</a>"
	      "<a href=\"#environment\">Environment</a></nav>\n",
	      f);
}

/* Worst status first; failures as folded details, passes and skips as table rows. */
static void html_by_status(FILE *f, const struct hrep *r, const size_t *order,
			   const struct hrep_counts *all, const char *prefix)
{
	fputs("<h2 id=\"by-status\">Cases by status</h2>\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(html_by_rank); i++) {
		enum hrep_status s = html_by_rank[i];
		bool rows_table = s == HREP_PASS || s == HREP_SKIP;

		if (!all->n[s])
			continue;
		fprintf(f, "<h3 id=\"status-%s\"><span class=\"%s\">%s</span> (%zu)</h3>\n",
			hrep_status_names[s], hrep_status_names[s], hrep_status_names[s],
			all->n[s]);
		if (rows_table)
			fprintf(f,
				"<table class=\"cases\">\n<tr><th>Case</th><th>Component</th>"
				"<th>Level</th><th>Duration (ms)</th><th>%s</th></tr>\n",
				s == HREP_SKIP ? "Reason" : "Note");
		for (size_t k = 0; k < r->n_cases; k++) {
			const struct hrep_case *c = &r->cases[order[k]];

			if (c->status != s)
				continue;
			if (rows_table)
				html_case_row(f, c);
			else
				html_case_details(f, r, c, prefix);
		}
		if (rows_table)
			fputs("</table>\n", f);
	}
}

static void html_component_row(FILE *f, const struct hrep_case *c)
{
	fputs("<tr><td>", f);
	link_to(f, "case-", c->id, NULL);
	fprintf(f, "</td><td>%s</td><td class=\"%s\">%s</td><td>",
		hcase_level_names[hrep_case_level(c)], hrep_status_names[c->status],
		hrep_status_names[c->status]);
	if (c->category) {
		fputs("<span class=\"cat\">", f);
		h(f, c->category);
		fputs("</span>", f);
	}
	fprintf(f, "</td><td class=\"n\">%llu</td><td class=\"note\">",
		(unsigned long long)c->duration_ms);
	hesc_xml(f, c->status == HREP_SKIP || c->status == HREP_XFAIL ? c->reason : c->message);
	fputs("</td></tr>\n", f);
}

static void html_by_component(FILE *f, const struct hrep *r, const size_t *order,
			      const char *const *comps, size_t nc)
{
	fputs("<h2 id=\"cases-by-component\">Cases by component</h2>\n", f);
	for (size_t s = 0; s < nc; s++) {
		struct hrep_counts n;

		hrep_count(r, comps[s], -1, &n);
		fputs("<h3 id=\"", f);
		anchor(f, "component-", comps[s]);
		fputs("\">", f);
		h(f, comps[s]);
		fprintf(f,
			" (%zu)</h3>\n<table class=\"cases\">\n<tr><th>Case</th><th>Level</th>"
			"<th>Status</th><th>First cause</th><th>Duration (ms)</th><th>Note</th>"
			"</tr>\n",
			n.total);
		for (size_t k = 0; k < r->n_cases; k++) {
			const struct hrep_case *c = &r->cases[order[k]];

			if (strcmp(c->component, comps[s]) == 0)
				html_component_row(f, c);
		}
		fputs("</table>\n", f);
	}
}

static void html_requirements(FILE *f, const struct hrep *r, const struct req_row *rows,
			      size_t n_rows)
{
	fputs("<h2 id=\"requirements\">Requirements</h2>\n<table>\n"
	      "<tr><th>Requirement</th><th>Title</th><th>Level</th><th>Cases</th><th>Result</th>"
	      "</tr>\n",
	      f);
	for (size_t i = 0; i < n_rows; i++) {
		fputs("<tr id=\"", f);
		anchor(f, "req-", rows[i].id);
		fputs("\"><td>", f);
		h(f, rows[i].id);
		fputs("</td><td>", f);
		h(f, hrep_title(r, rows[i].id));
		fprintf(f,
			"</td><td>%s</td><td class=\"n\">%zu</td><td class=\"%s\">%s</td></tr>\n",
			hcase_level_names[rows[i].level], rows[i].n_cases,
			hrep_status_names[rows[i].worst], hrep_status_names[rows[i].worst]);
	}
	fputs("</table>\n", f);
}

static void html_environment(FILE *f, const struct hrep *r)
{
	fputs("<h2 id=\"environment\">Environment</h2>\n<table>\n", f);
	html_env_row(f, "Kernel release", r->kernel_release);
	html_env_row(f, "Kernel config SHA-256", r->kernel_config_sha256);
	if (r->time_scale >= 1.0) {
		char ts[64];

		snprintf(ts, sizeof(ts), "%.1f (%s)", r->time_scale, r->time_scale_from ?: "-");
		html_env_row(f, "Deadline factor", ts);
	}
	html_env_row(f, "Harness version", r->harness_version);
	html_env_row(f, "Harness revision", r->harness_git_revision);
	html_env_row(f, "Profile", r->profile_name);
	html_env_row(f, "Profile path", r->profile_path);
	html_env_row(f, "Profile SHA-256", r->profile_sha256);
	for (size_t i = 0; i < r->n_files; i++) {
		fputs("<tr><th>", f);
		h(f, r->files[i].component);
		fputc(' ', f);
		h(f, r->files[i].role);
		fputs("</th><td>", f);
		h(f, r->files[i].path);
		fputs("<br/>SHA-256 ", f);
		h(f, r->files[i].sha256);
		fputs("</td></tr>\n", f);
	}
	html_env_row(f, "Started", r->started_at);
	html_env_row(f, "Ended", r->ended_at);
	if (r->has_shard)
		fprintf(f, "<tr><th>Shard</th><td>%u of %u</td></tr>\n", r->shard_index,
			r->shard_count);
	fputs("</table>\n", f);
}

/* One self-contained page: what failed and why first, then summaries, every case, context. */
int hrep_write_html(const struct hrep *r, FILE *f, const char *prefix)
{
	_cleanup_(views_clear) struct views v = { 0 };
	const char *comps[64], *levels[_HCASE_LEVEL_MAX];
	size_t nc = components(r, comps, ARRAY_SIZE(comps));
	struct hrep_counts all;

	if (views_build(r, &v) < 0)
		return -ENOMEM;
	for (int l = 0; l < _HCASE_LEVEL_MAX; l++)
		levels[l] = hcase_level_names[l];
	hrep_count(r, NULL, -1, &all);
	html_head(f, r, &all);
	html_by_category(f, r, v.order, v.cats, v.n_cats);
	html_by_requirement(f, r, v.order, v.bad, v.n_bad_rows);
	fputs("<h2 id=\"by-component\">Summary by component</h2>\n", f);
	html_counts_table(f, r, "Component", &all, comps, nc, true);
	fputs("<h2 id=\"by-level\">Summary by level</h2>\n", f);
	html_counts_table(f, r, "Level", &all, levels, _HCASE_LEVEL_MAX, false);
	html_near_deadline(f, r);
	html_by_status(f, r, v.order, &all, prefix);
	html_by_component(f, r, v.order, comps, nc);
	html_requirements(f, r, v.rows, v.n_rows);
	html_environment(f, r);
	fputs("</body>\n</html>\n", f);
	return ferror(f) ? -EIO : 0;
}

/* ---- all formats ---- */

static int w_junit(const void *r, FILE *f, const void *unused)
{
	return hrep_write_junit(r, f);
}

static int w_tap(const void *r, FILE *f, const void *unused)
{
	return hrep_write_tap(r, f);
}

static int w_md(const void *r, FILE *f, const void *prefix)
{
	return hrep_write_md(r, f, prefix);
}

static int w_html(const void *r, FILE *f, const void *prefix)
{
	return hrep_write_html(r, f, prefix);
}

/* Relative path from directory `from` to directory `to` (both absolute, canonical), "/"-ended. */
static char *relpath(const char *from, const char *to)
{
	size_t i = 0, last = 0, ups = 0;
	const char *fr, *tr;
	char *out, *p;

	while (from[i] && from[i] == to[i]) {
		if (from[i] == '/')
			last = i;
		i++;
	}
	if ((from[i] == '\0' || from[i] == '/') && (to[i] == '\0' || to[i] == '/'))
		last = i;
	fr = from + last;
	tr = to + last;
	for (; *fr; fr++)
		if (*fr == '/' && fr[1] && fr[1] != '/')
			ups++;
	while (*tr == '/')
		tr++;
	out = malloc(ups * 3 + strlen(tr) + 2);
	if (!out)
		return NULL;
	p = out;
	for (i = 0; i < ups; i++)
		p = stpcpy(p, "../");
	p = stpcpy(p, tr);
	if (*tr)
		p = stpcpy(p, "/");
	return out;
}

int hrep_write_all(const struct hrep *r, const char *dir, const char *json_dir)
{
	static const struct {
		const char *name;
		int (*fn)(const void *, FILE *, const void *);
	} outs[] = { { "junit.xml", w_junit },
		     { "report.tap", w_tap },
		     { "report.md", w_md },
		     { "report.html", w_html } };
	_cleanup_free_ char *prefix = NULL;
	char a[PATH_MAX], b[PATH_MAX];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (json_dir && realpath(dir, a) && realpath(json_dir, b) && strcmp(a, b) != 0)
		prefix = relpath(a, b);
	else
		prefix = strdup("");
	if (!prefix)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++) {
		_cleanup_free_ char *path = NULL;
		int e;

		if (asprintf(&path, "%s/%s", dir, outs[i].name) < 0)
			return -ENOMEM;
		e = hrep_atomic_write(path, outs[i].fn, r, prefix);
		if (e < 0)
			return e;
	}
	return 0;
}
