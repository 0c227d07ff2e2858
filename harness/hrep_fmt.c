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
				*row = (struct req_row){ c->reqs[j].id, c->reqs[j].level, c->status,
							 0 };
			}
			if (rank(c->status) > rank(row->worst))
				row->worst = c->status;
			row->n_cases++;
		}
	}
	if (n)
		qsort(rows, n, sizeof(*rows), req_cmp);
	*ret_n = n;
	return rows ?: calloc(1, sizeof(*rows));
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

int hrep_write_md(const struct hrep *r, FILE *f, const char *prefix)
{
	_cleanup_free_ struct req_row *rows = NULL;
	_cleanup_free_ size_t *order = NULL;
	const char *comps[64];
	size_t nc = components(r, comps, ARRAY_SIZE(comps)), n_rows = 0, n_fail = 0;
	struct hrep_counts all;

	rows = req_rows(r, &n_rows);
	order = case_order(r);
	if (!rows || !order)
		return -ENOMEM;
	hrep_count(r, NULL, -1, &all);
	fprintf(f, "# cellcheck report\n\n**Verdict: %s**: %zu cases",
		hrep_failed(r) ? "FAIL" : "PASS", all.total);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, ", %zu %s", all.n[s], hrep_status_names[s]);
	fputs(".\n\n## Environment\n\n| Item | Value |\n|---|---|\n", f);
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

	fputs("\n## Summary by component\n\n", f);
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

	fputs("\n## Failures\n\n", f);
	for (size_t k = 0; k < r->n_cases; k++) {
		const struct hrep_case *c = &r->cases[order[k]];

		if (!is_failure(c->status))
			continue;
		n_fail++;
		fputs("### ", f);
		hesc_md(f, c->id);
		fprintf(f, " (%s)\n\n- Title: ", hrep_status_names[c->status]);
		hesc_md(f, c->title);
		fputs("\n- Requirements:", f);
		for (size_t j = 0; j < c->n_reqs; j++) {
			fputc(' ', f);
			hesc_md(f, c->reqs[j].id);
			fprintf(f, " (%s)", hcase_level_names[c->reqs[j].level]);
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
	if (!n_fail)
		fputs("None.\n\n", f);

	fputs("## Requirements\n\n| Requirement | Level | Cases | Result |\n|---|---|--:|---|\n",
	      f);
	for (size_t i = 0; i < n_rows; i++) {
		fputs("| ", f);
		hesc_md(f, rows[i].id);
		fprintf(f, " | %s | %zu | %s |\n", hcase_level_names[rows[i].level],
			rows[i].n_cases, hrep_status_names[rows[i].worst]);
	}
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
	return ferror(f) ? -EIO : 0;
}

/* ---- HTML ---- */

static const char CSS[] =
	"body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
	"table{border-collapse:collapse;margin:1em 0}"
	"th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
	"th{background:#f3f3f3}td.n{text-align:right}"
	"pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;word-break:break-all}"
	".PASS{color:#11772d}.FAIL,.ERROR,.XPASS{color:#b00020;font-weight:bold}"
	".SKIP,.XFAIL{color:#7a5b00}"
	".verdict{font-size:1.3em}section.failure{border-left:4px solid #b00020;"
	"padding-left:1em;margin:1em 0}";

static void h(FILE *f, const char *s)
{
	hesc_xml(f, s ?: "-");
}

static void html_env_row(FILE *f, const char *key, const char *value)
{
	fprintf(f, "<tr><th>%s</th><td>", key);
	h(f, value);
	fputs("</td></tr>\n", f);
}

static void html_counts(FILE *f, const char *first, const char *label, const struct hrep_counts *n,
			bool head)
{
	if (head) {
		fprintf(f, "<tr><th>%s</th><th>Total</th>", first);
		for (int s = 0; s < _HREP_STATUS_MAX; s++)
			fprintf(f, "<th>%s</th>", hrep_status_names[s]);
		fputs("</tr>\n", f);
		return;
	}
	fputs("<tr><td>", f);
	h(f, label);
	fprintf(f, "</td><td class=\"n\">%zu</td>", n->total);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, "<td class=\"n\">%zu</td>", n->n[s]);
	fputs("</tr>\n", f);
}

int hrep_write_html(const struct hrep *r, FILE *f, const char *prefix)
{
	_cleanup_free_ struct req_row *rows = NULL;
	_cleanup_free_ size_t *order = NULL;
	const char *comps[64];
	size_t nc = components(r, comps, ARRAY_SIZE(comps)), n_rows = 0, n_fail = 0;
	struct hrep_counts all;
	bool failed = hrep_failed(r);

	rows = req_rows(r, &n_rows);
	order = case_order(r);
	if (!rows || !order)
		return -ENOMEM;
	hrep_count(r, NULL, -1, &all);
	/* The policy makes "no network, no scripts" hold even if escaping had a hole. */
	fprintf(f,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"style-src 'unsafe-inline'\"/>\n<title>cellcheck report</title>\n<style>%s</style>\n"
		"</head>\n<body>\n<h1>cellcheck report</h1>\n",
		CSS);
	fprintf(f, "<p class=\"verdict\">Verdict: <span class=\"%s\">%s</span>, %zu cases",
		failed ? "FAIL" : "PASS", failed ? "FAIL" : "PASS", all.total);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		fprintf(f, ", %zu <span class=\"%s\">%s</span>", all.n[s], hrep_status_names[s],
			hrep_status_names[s]);
	fputs(".</p>\n", f);

	fputs("<h2>Failures</h2>\n", f);
	for (size_t k = 0; k < r->n_cases; k++) {
		const struct hrep_case *c = &r->cases[order[k]];

		if (!is_failure(c->status))
			continue;
		n_fail++;
		fputs("<section class=\"failure\">\n<h3>", f);
		h(f, c->id);
		fprintf(f, " <span class=\"%s\">%s</span></h3>\n<p>", hrep_status_names[c->status],
			hrep_status_names[c->status]);
		h(f, c->title);
		fputs("</p>\n<p>Requirements:", f);
		for (size_t j = 0; j < c->n_reqs; j++) {
			fputc(' ', f);
			h(f, c->reqs[j].id);
			fprintf(f, " (%s)", hcase_level_names[c->reqs[j].level]);
		}
		fputs("</p>\n<pre class=\"message\">", f);
		h(f, c->message);
		fputs("</pre>\n", f);
		if (c->n_problems > 1) {
			fprintf(f, "<p>Problems (%zu):</p>\n<ol class=\"problems\">\n",
				c->n_problems);
			for (size_t j = 0; j < c->n_problems; j++) {
				fprintf(f, "<li><span class=\"%s\">%s</span> <code>",
					hrep_status_names[c->problems[j].status],
					hrep_status_names[c->problems[j].status]);
				h(f, c->problems[j].message);
				fputs("</code></li>\n", f);
			}
			fputs("</ol>\n", f);
		}
		if (c->reproduce) {
			fputs("<p>Reproduce:</p>\n<pre class=\"reproduce\">", f);
			h(f, c->reproduce);
			fputs("</pre>\n", f);
		}
		if (c->artifacts) {
			/* Percent-encoded and "./"-rooted: never a scheme, never outside the text.
			 */
			fputs("<p>Artifacts: <a href=\"./", f);
			hesc_url(f, prefix);
			hesc_url(f, c->artifacts);
			fputs("/\">", f);
			h(f, c->artifacts);
			fputs("</a></p>\n", f);
		}
		fputs("</section>\n", f);
	}
	if (!n_fail)
		fputs("<p>None.</p>\n", f);

	fputs("<h2>Summary by component</h2>\n<table>\n", f);
	html_counts(f, "Component", NULL, NULL, true);
	for (size_t s = 0; s < nc; s++) {
		struct hrep_counts n;

		hrep_count(r, comps[s], -1, &n);
		html_counts(f, NULL, comps[s], &n, false);
	}
	fputs("</table>\n<h2>Summary by level</h2>\n<table>\n", f);
	html_counts(f, "Level", NULL, NULL, true);
	for (int l = 0; l < _HCASE_LEVEL_MAX; l++) {
		struct hrep_counts n;

		hrep_count(r, NULL, l, &n);
		html_counts(f, NULL, hcase_level_names[l], &n, false);
	}
	fputs("</table>\n<h2>Requirements</h2>\n<table>\n"
	      "<tr><th>Requirement</th><th>Level</th><th>Cases</th><th>Result</th></tr>\n",
	      f);
	for (size_t i = 0; i < n_rows; i++) {
		fputs("<tr><td>", f);
		h(f, rows[i].id);
		fprintf(f,
			"</td><td>%s</td><td class=\"n\">%zu</td><td class=\"%s\">%s</td></tr>\n",
			hcase_level_names[rows[i].level], rows[i].n_cases,
			hrep_status_names[rows[i].worst], hrep_status_names[rows[i].worst]);
	}
	fputs("</table>\n<h2>Cases</h2>\n<table>\n<tr><th>Case</th><th>Component</th><th>Level</th>"
	      "<th>Status</th><th>Duration (ms)</th><th>Note</th></tr>\n",
	      f);
	for (size_t k = 0; k < r->n_cases; k++) {
		const struct hrep_case *c = &r->cases[order[k]];

		fputs("<tr><td>", f);
		h(f, c->id);
		fputs("</td><td>", f);
		h(f, c->component);
		fprintf(f, "</td><td>%s</td><td class=\"%s\">%s</td><td class=\"n\">%llu</td><td>",
			hcase_level_names[hrep_case_level(c)], hrep_status_names[c->status],
			hrep_status_names[c->status], (unsigned long long)c->duration_ms);
		hesc_xml(f, c->status == HREP_SKIP || c->status == HREP_XFAIL ? c->reason
									      : c->message);
		if (c->runs)
			fprintf(f, " (%u flaky of %u runs)", c->flakes, c->runs);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n<h2>Environment</h2>\n<table>\n", f);
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
	fputs("</table>\n</body>\n</html>\n", f);
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
