// SPDX-License-Identifier: Apache-2.0
/*
 * cellcheck: the conformance harness's command line. This file only parses arguments and
 * dispatches; the work lives in the h* modules (cases, profiles, SPEC index, reports, probe).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "evf.h"
#include "hcase.h"
#include "hclause.h"
#include "hmatrix.h"
#include "hprobe.h"
#include "hprof.h"
#include "hrep.h"
#include "hrun.h"
#include "hspec.h"
#include "hversion.h"
#include "util.h"

#define EXIT_FAILED 1 /* failures, regressions, lint findings */
#define EXIT_USAGE  2 /* usage or setup errors */

static const char USAGE[] =
	"Usage: cellcheck COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  run [--profile FILE] [--filter GLOB]... [--jobs N] [--shard K/N] [--repeat N]\n"
	"      [--known-issues FILE] [--report-dir DIR] [--cases DIR] [--time-scale F|auto]\n"
	"      [--load N]\n"
	"      Run the cases against a profile (default: the reference) and write report.json,\n"
	"      junit.xml, report.tap, report.md and report.html into DIR (reports/latest).\n"
	"      --load N: N CPU hogs beside the whole run, as on a busy CI machine.\n"
	"  selftest [--profile FILE] [--filter GLOB]... [--jobs N] [--cases DIR]\n"
	"      [--faults FILE] [--faults-build] [--own-only] [--matrix-fault GLOB]...\n"
	"      [--time-scale F|auto]\n"
	"      Every case plain (must pass) and under its negative-control fault (must fail),\n"
	"      then (unless --own-only) each fault against the other cases: the fault x case\n"
	"      matrix (--matrix-fault: only the faults matching a GLOB, e.g. new ones). Needs a\n"
	"      -Dfaults=true build: --faults-build or CELLCHECK_FAULTS_BUILD=1.\n"
	"  cleanup\n"
	"      Kill processes and remove temp dirs a killed harness left (state in /run/cellcheck).\n"
	"  list [--cases DIR] [--filter GLOB]...\n"
	"      One line per case, tab-separated: id, component, requirement IDs, level, title.\n"
	"  lint [--cases DIR] [--spec SPEC.md] [--profiles DIR] [--require PREFIX]...\n"
	"      [--clauses FILE] [--faults FILE]\n"
	"      Validate every case file, named topology and profile; cross-check requirement\n"
	"      IDs with SPEC.md; report a case that writes out a named topology.\n"
	"      With --require (FLOW, DNS, SUP...), only IDs of those prefixes must have a case.\n"
	"      The clause map (fixtures/clauses.json) must split every MUST requirement into\n"
	"      clauses, each checked by a named case or test or listed as a known gap.\n"
	"  manifest [--write | --check]\n"
	"      The conformance manifest (SPEC.md Appendix D): every requirement, its level and the\n"
	"      cases covering it. --write regenerates it in SPEC.md; --check exits 1 if it is stale.\n"
	"  probe [--json]\n"
	"      Kernel release, kernel config SHA-256 and the features the suite needs.\n"
	"  compare OLD.json NEW.json\n"
	"      Regressions, fixes, new and removed cases between two reports.\n"
	"  merge -o OUT.json A.json B.json...\n"
	"      Combine shard reports; writes the other formats next to OUT.json.\n"
	"  report --from report.json --dir DIR\n"
	"      (Re)write junit.xml, report.tap, report.md and report.html from report.json.\n"
	"  matrix -o DIR LABEL=REPORT.json... [--console LABEL=FILE]...\n"
	"      One kernel per column (ci/kernel-matrix): matrix.json, matrix.md, matrix.html in\n"
	"      DIR; probe.json and run.json beside each REPORT.json are read when present. A\n"
	"      missing report makes its column ERROR. Exit 1 when a column is ERROR or a case\n"
	"      differs between kernels with a FAIL or ERROR on one of them.\n"
	"  help, --help; version, --version\n"
	"\n"
	"Defaults: --cases SRCDIR/cases, --spec SRCDIR/SPEC.md, --profiles SRCDIR/fixtures/profiles,\n"
	"--clauses SRCDIR/fixtures/clauses.json, --faults SRCDIR/fixtures/faults.json,\n"
	"where SRCDIR is $CELLCHECK_SRCDIR or the source tree cellcheck was built from. Named\n"
	"topologies (\"topology\": \"NAME\" in a case) are SRCDIR/fixtures/topologies/NAME.json.\n"
	"\n"
	"Exit status:\n"
	"  0  success: lint clean, no regression, reports written\n"
	"  1  failures: lint findings (compare: a regression; run: a MUST case failed, or an\n"
	"     ERROR or XPASS; selftest: a case or fault misbehaved)\n"
	"  2  usage or setup errors: bad option, unreadable or invalid input file\n";

static const char *srcdir(void)
{
	return getenv("CELLCHECK_SRCDIR") ?: CELLCHECK_SRCDIR_DEFAULT;
}

static char *default_path(const char *given, const char *rel)
{
	char *p;

	if (given)
		return strdup(given);
	if (asprintf(&p, "%s/%s", srcdir(), rel) < 0)
		return NULL;
	return p;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cellcheck: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'cellcheck --help'.\n", stderr);
	return EXIT_USAGE;
}

static void print_err(const char *file, const struct hjson_err *err, void *userdata)
{
	size_t *count = userdata;

	fprintf(stderr, "%s: %s: %s\n", file, err->path, err->msg);
	if (count)
		(*count)++;
}

/* ---- list ---- */

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = { { "cases", required_argument, NULL, 'c' },
					      { "filter", required_argument, NULL, 'f' },
					      {} };
	_cleanup_free_ char **globs = NULL;
	_cleanup_free_ char *dir = NULL;
	const char *cases = NULL;
	struct hcase_set set = { 0 };
	size_t n_globs = 0, errors = 0;
	int c, r;

	globs = calloc((size_t)argc + 1, sizeof(*globs));
	if (!globs)
		return EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			cases = optarg;
		else if (c == 'f')
			globs[n_globs++] = optarg;
		else
			return usage_error("%s", "list: bad option");
	}
	if (optind < argc)
		return usage_error("list: unexpected operand '%s'", argv[optind]);
	dir = default_path(cases, "cases");
	if (!dir)
		return EXIT_USAGE;
	r = hcase_load_dir(&set, dir, print_err, &errors);
	if (r < 0) {
		fprintf(stderr, "cellcheck: %s: %s\n", dir, strerror(-r));
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < set.n; i++) {
		const struct hcase *k = set.cases[i];

		if (!hcase_match(k, globs, n_globs))
			continue;
		printf("%s\t%s\t", k->id, hcase_component_names[k->component]);
		for (size_t j = 0; j < k->n_reqs; j++)
			printf("%s%s", j ? "," : "", k->reqs[j].id);
		printf("\t%s\t%s\n", hcase_level_names[hcase_level(k)], k->title);
	}
	hcase_set_free(&set);
	/* Listing what loaded is still useful; the exit status says something did not. */
	return errors ? EXIT_USAGE : 0;
}

/* ---- lint ---- */

static int lint_profiles(const char *dir, size_t *n_profiles, size_t *errors)
{
	struct dirent **ents = NULL;
	int n;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", dir, strerror(errno));
		(*errors)++;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		struct hjson_err err = { 0 };
		struct hprof *p = NULL;
		int r;

		if (len <= 5 || strcmp(name + len - 5, ".json") != 0 || name[0] == '.' ||
		    asprintf(&path, "%s/%s", dir, name) < 0) {
			free(ents[i]);
			continue;
		}
		free(ents[i]);
		(*n_profiles)++;
		r = hprof_load(path, NULL, NULL, &p, &err);
		if (r < 0) {
			if (err.msg[0])
				fprintf(stderr, "%s: %s: %s\n", path, err.path, err.msg);
			else
				fprintf(stderr, "%s: %s\n", path, strerror(-r));
			(*errors)++;
			continue;
		}
		/* A binary not built yet is a setup matter for `run`, not a profile error. */
		for (int k = 0; k < _HCASE_COMPONENT_MAX; k++)
			for (size_t b = 0; p->comp[k].present && p->comp[k].binaries[b]; b++)
				if (access(p->comp[k].binaries[b], X_OK) < 0)
					fprintf(stderr, "%s: warning: %s binary %s: %s\n", path,
						hcase_component_names[k], p->comp[k].binaries[b],
						strerror(errno));
		hprof_free(p);
	}
	free(ents);
	return 0;
}

struct named_topo {
	char *name;
	json_t *topo; /* the file without description and diagram: what a case would write */
};

/* The inline topology of case k, from its file (doc is the loaded file); NULL: none or named. */
static json_t *inline_topology(const struct hcase *k, json_t *doc)
{
	json_t *t = json_object_get(k->family ? json_array_get(doc, k->index) : doc, "topology");

	return json_is_object(t) ? t : NULL;
}

/*
 * Named topologies (SPEC CHK-CASE-008): every file of the folder is valid, and no case writes
 * inline a topology that has a name (it says "topology": "NAME" instead, so the catalogue has
 * one definition to read and fix). A folder that does not exist holds no topology.
 */
static void lint_topologies(const struct hcase_set *set, size_t *n_named, size_t *errors)
{
	_cleanup_free_ char *dir = hcase_topology_dir();
	struct named_topo *named = NULL;
	struct dirent **ents = NULL;
	json_t *doc = NULL;
	const char *doc_file = NULL;
	int n;

	n = dir ? scandir(dir, &ents, NULL, alphasort) : -1;
	if (n < 0) {
		if (!dir || errno != ENOENT) {
			fprintf(stderr, "%s: cannot read: %s\n", dir ?: "fixtures/topologies",
				strerror(dir ? errno : ENOMEM));
			(*errors)++;
		}
		return;
	}
	named = calloc((size_t)n + 1, sizeof(*named));
	if (!named) {
		fprintf(stderr, "%s: %s\n", dir, strerror(ENOMEM));
		(*errors)++;
	}
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		struct hjson_err err = { 0 };
		json_t *t = NULL;

		if (named && len > 5 && strcmp(name + len - 5, ".json") == 0 && name[0] != '.' &&
		    asprintf(&path, "%s/%s", dir, name) >= 0) {
			if (hcase_topology_check(path, &err) < 0) {
				print_err(path, &err, errors);
			} else if (hjson_load_file(path, &t, &err) == 0) {
				json_object_del(t, "description");
				json_object_del(t, "diagram");
				named[*n_named].topo = t;
				named[(*n_named)++].name = strndup(name, len - 5);
			}
		}
		free(ents[i]);
	}
	free(ents);
	for (size_t i = 0; named && i < set->n; i++) {
		const struct hcase *k = set->cases[i];
		struct hjson_err err = { 0 };
		json_t *t;

		if (!doc_file || strcmp(doc_file, k->file) != 0) {
			json_decref(doc);
			doc = NULL;
			doc_file = k->file;
			if (hjson_load_file(k->file, &doc, &err) < 0)
				continue;
		}
		t = inline_topology(k, doc);
		for (size_t j = 0; t && j < *n_named; j++) {
			if (!json_equal(t, named[j].topo))
				continue;
			fprintf(stderr,
				"%s: case %s: its topology is the named topology %s written out: say "
				"\"topology\": \"%s\" (SPEC CHK-CASE-008)\n",
				k->file, k->id, named[j].name, named[j].name);
			(*errors)++;
		}
	}
	json_decref(doc);
	for (size_t j = 0; named && j < *n_named; j++) {
		free(named[j].name);
		json_decref(named[j].topo);
	}
	free(named);
}

static size_t lint_file(const struct hcase *k, const char *what, const char *rel)
{
	_cleanup_free_ char *path = NULL;

	if (!rel || asprintf(&path, "%s/%s", srcdir(), rel) < 0)
		return 0;
	if (access(path, R_OK) == 0)
		return 0;
	fprintf(stderr, "%s: case %s: %s %s: %s\n", k->file, k->id, what, path, strerror(errno));
	return 1;
}

static void print_clause(bool finding, const char *path, const char *msg, void *userdata)
{
	const char *file = userdata;

	fprintf(stderr, "%s: %s: %s%s\n", file, path, finding ? "" : "warning: ", msg);
}

/*
 * SPEC 10.8: a fault's kind is env, artifact or filter, and a filter fault is in the output-fault
 * table of cellcheck-evfilter (harness/filter/evf.c), which the selftest applies. Findings.
 */
static size_t lint_fault_kinds(const char *faults_path, json_t *faults)
{
	size_t i, n = 0;
	json_t *f;

	json_array_foreach(faults, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name")) ?: "?";
		const char *kind = json_string_value(json_object_get(f, "kind")) ?: "";

		if (strcmp(kind, "env") && strcmp(kind, "artifact") && strcmp(kind, "filter")) {
			fprintf(stderr,
				"%s: $[%zu]: fault %s: kind \"%s\" is none of env, artifact, "
				"filter\n",
				faults_path, i, name, kind);
			n++;
		} else if (!strcmp(kind, "filter") && !evf_find(name)) {
			fprintf(stderr,
				"%s: $[%zu]: fault %s has kind filter but cellcheck-evfilter's table "
				"has no such output fault\n",
				faults_path, i, name);
			n++;
		}
	}
	return n;
}

/*
 * The clause map (SPEC CHK-CASE-007): every MUST requirement split into clauses, each checked
 * by a case or listed as a known gap. Returns the number of findings; an unreadable map or
 * fault registry is one.
 */
static size_t lint_clauses(const char *map_path, const char *faults_path, const struct hspec *sp,
			   const struct hcase_set *set, struct hclause_stats *st)
{
	json_auto_t *map = NULL;
	json_auto_t *faults = NULL;
	struct hjson_err err = { 0 };
	size_t extra = 0;
	int r;

	r = hclause_load(map_path, &map, &err);
	if (r < 0) {
		if (err.msg[0])
			fprintf(stderr, "%s: %s: %s\n", map_path, err.path, err.msg);
		else
			fprintf(stderr, "%s: %s\n", map_path, strerror(-r));
		return 1;
	}
	memset(&err, 0, sizeof(err));
	r = hjson_load_file(faults_path, &faults, &err);
	if (r < 0 || !json_is_array(faults)) {
		fprintf(stderr, "%s: %s: %s\n", faults_path, err.msg[0] ? err.path : "$",
			err.msg[0] ? err.msg
			: r < 0	   ? strerror(-r)
				   : "expected an array of faults");
		json_decref(TAKE_PTR(faults));
		extra++;
	}
	hclause_lint(map, sp, set, faults, srcdir(), print_clause, (void *)map_path, st);
	extra += lint_fault_kinds(faults_path, faults);
	return st->findings + extra;
}

/* Files a case names are relative to the source tree and must exist there. */
static size_t lint_case_files(const struct hcase *k)
{
	static const char *const outputs[] = { "stdout", "stderr" };
	size_t n = 0;

	for (size_t i = 0; i < k->n_steps; i++)
		if (k->steps[i].action == HCASE_ACT_START)
			n += lint_file(k, "stdin file", k->steps[i].start.stdin_file);
	for (size_t i = 0; i < ARRAY_SIZE(outputs); i++) {
		json_t *o = json_object_get(k->expect, outputs[i]);

		n += lint_file(k, "expected output file",
			       json_string_value(json_object_get(o, "file")));
	}
	return n;
}

/*
 * Every requirement both defined and in Appendix C; a withdrawn one keeps only its index row
 * (SPEC 0.2). Returns the number of findings.
 */
static size_t lint_spec_index(const char *spec_path, const struct hspec *sp)
{
	size_t errors = 0;

	for (size_t i = 0; i < sp->n; i++) {
		const struct hspec_req *q = &sp->reqs[i];

		if (q->in_body != q->in_index && !(q->withdrawn && q->in_index)) {
			fprintf(stderr, "%s:%u: %s is %s\n", spec_path, q->line, q->id,
				q->in_body ? "defined but missing from Appendix C"
					   : "in Appendix C but defined nowhere");
			errors++;
		}
	}
	return errors;
}

/*
 * One case: its files, a positive expectation, its requirement IDs known to SPEC.md at the
 * level SPEC.md gives them. Returns the findings other than unknown IDs and level mismatches,
 * which are counted in *unknown and *mismatched.
 */
static size_t lint_case(const struct hspec *sp, const struct hcase *k, size_t *unknown,
			size_t *mismatched)
{
	size_t errors = lint_case_files(k);

	if (!hcase_positive_expectation(k)) {
		fprintf(stderr,
			"%s: case %s: every expectation is an absence; a case needs one that "
			"only an implementation doing the work can satisfy (SPEC CHK-CASE-006)\n",
			k->file, k->id);
		errors++;
	}
	for (size_t j = 0; j < k->n_reqs; j++) {
		const struct hspec_req *q = hspec_find(sp, k->reqs[j].id);
		char path[64];

		if (k->family)
			snprintf(path, sizeof(path), "$[%zu].requirements[%zu]", k->index, j);
		else
			snprintf(path, sizeof(path), "$.requirements[%zu]", j);
		if (!q || q->withdrawn) {
			fprintf(stderr, "%s: %s: case %s names %s, which SPEC.md %s\n", k->file,
				path, k->id, k->reqs[j].id, q ? "marks withdrawn" : "lacks");
			(*unknown)++;
		} else if (q->level != k->reqs[j].level) {
			fprintf(stderr, "%s: %s.level: case %s says %s for %s, SPEC.md says %s\n",
				k->file, path, k->id, hcase_level_names[k->reqs[j].level],
				k->reqs[j].id, hcase_level_names[q->level]);
			(*mismatched)++;
		}
	}
	return errors;
}

/* --require PREFIX: only those IDs must have a case; the others are listed as pending. */
struct lint_require {
	const char *prefix[16];
	size_t n;
};

struct lint_coverage {
	size_t active, uncovered, pending;
};

static bool lint_required(const struct lint_require *req, const char *id)
{
	bool required = !req->n;

	for (size_t k = 0; k < req->n && !required; k++)
		required = strncmp(id, req->prefix[k], strlen(req->prefix[k])) == 0 &&
			   id[strlen(req->prefix[k])] == '-';
	return required;
}

/* Every active requirement named by a case; one line for each that is not. */
static void lint_coverage(const char *spec_path, const struct hspec *sp,
			  const struct hcase_set *set, const struct lint_require *req,
			  struct lint_coverage *ret)
{
	for (size_t i = 0; i < sp->n; i++) {
		const struct hspec_req *q = &sp->reqs[i];
		bool covered = false, required;

		if (q->withdrawn)
			continue;
		/* CHK requirements bind the harness itself; its own tests verify them (SPEC 10.0).
		 */
		if (strncmp(q->id, "CHK-", 4) == 0 || q->consumer)
			continue;
		ret->active++;
		for (size_t k = 0; k < set->n && !covered; k++)
			for (size_t j = 0; j < set->cases[k]->n_reqs && !covered; j++)
				covered = strcmp(set->cases[k]->reqs[j].id, q->id) == 0;
		if (covered)
			continue;
		required = lint_required(req, q->id);
		fprintf(stderr, "%s:%u: %s (%s) has no case%s\n", spec_path, q->line, q->id,
			hcase_level_names[q->level], required ? "" : " (not required yet)");
		if (required)
			ret->uncovered++;
		else
			ret->pending++;
	}
}

static int cmd_lint(int argc, char **argv)
{
	static const struct option opts[] = { { "cases", required_argument, NULL, 'c' },
					      { "spec", required_argument, NULL, 's' },
					      { "profiles", required_argument, NULL, 'p' },
					      { "require", required_argument, NULL, 'r' },
					      { "clauses", required_argument, NULL, 'C' },
					      { "faults", required_argument, NULL, 'F' },
					      {} };
	_cleanup_free_ char *cases_dir = NULL, *spec_path = NULL, *prof_dir = NULL,
			    *clauses_path = NULL, *faults_path = NULL;
	const char *cases = NULL, *spec = NULL, *profiles = NULL, *clauses = NULL, *faults = NULL;
	struct lint_require req = { 0 };
	struct lint_coverage cov = { 0 };
	struct hcase_set set = { 0 };
	struct hspec *sp = NULL;
	size_t errors = 0, case_errors = 0, n_profiles = 0, n_topologies = 0, unknown = 0,
	       mismatched = 0, clause_errors;
	struct hclause_stats cst = { 0 };
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			cases = optarg;
		else if (c == 's')
			spec = optarg;
		else if (c == 'p')
			profiles = optarg;
		else if (c == 'r' && req.n < ARRAY_SIZE(req.prefix))
			req.prefix[req.n++] = optarg;
		else if (c == 'C')
			clauses = optarg;
		else if (c == 'F')
			faults = optarg;
		else
			return usage_error("%s", "lint: bad option");
	}
	if (optind < argc)
		return usage_error("lint: unexpected operand '%s'", argv[optind]);
	cases_dir = default_path(cases, "cases");
	spec_path = default_path(spec, "SPEC.md");
	prof_dir = default_path(profiles, "fixtures/profiles");
	clauses_path = default_path(clauses, "fixtures/clauses.json");
	faults_path = default_path(faults, "fixtures/faults.json");
	if (!cases_dir || !spec_path || !prof_dir || !clauses_path || !faults_path)
		return EXIT_USAGE;
	r = hspec_load(spec_path, &sp);
	if (r < 0) {
		fprintf(stderr, "cellcheck: %s: %s\n", spec_path, strerror(-r));
		return EXIT_USAGE;
	}
	r = hcase_load_dir(&set, cases_dir, print_err, &case_errors);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", cases_dir, strerror(-r));
		case_errors++;
	}
	errors += case_errors;
	lint_profiles(prof_dir, &n_profiles, &errors);
	lint_topologies(&set, &n_topologies, &errors);

	errors += lint_spec_index(spec_path, sp);
	for (size_t i = 0; i < set.n; i++)
		errors += lint_case(sp, set.cases[i], &unknown, &mismatched);
	lint_coverage(spec_path, sp, &set, &req, &cov);
	errors += unknown + cov.uncovered + mismatched;
	clause_errors = lint_clauses(clauses_path, faults_path, sp, &set, &cst);
	errors += clause_errors;
	printf("lint: %zu cases (%zu invalid case files), %zu profiles, %zu named topologies; "
	       "SPEC.md: %zu requirements, "
	       "%zu covered, %zu without a case (%zu of them not required by --require); %zu case "
	       "references SPEC.md lacks, %zu level mismatches; clause map: %zu MUST requirements, "
	       "%zu mapped, %zu clauses, %zu checked by a case or test, %zu known gaps, %zu without "
	       "a check or a reason, %zu clause map problems; %zu problems\n",
	       set.n, case_errors, n_profiles, n_topologies, cov.active,
	       cov.active - cov.uncovered - cov.pending, cov.uncovered + cov.pending, cov.pending,
	       unknown, mismatched, cst.reqs, cst.mapped, cst.clauses, cst.checked, cst.gaps,
	       cst.clauses - cst.checked - cst.gaps, clause_errors, errors);
	hcase_set_free(&set);
	hspec_free(sp);
	return errors ? EXIT_FAILED : 0;
}

/* ---- manifest ---- */

#define MANIFEST_BEGIN "<!-- conformance manifest: generated by `cellcheck manifest --write` -->"
#define MANIFEST_END   "<!-- end of the conformance manifest -->"

static int id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The manifest text: every active requirement, its level, the cases naming it. */
static char *manifest_text(const struct hspec *sp, const struct hcase_set *set)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "%s\n\n| Requirement | Level | Cases |\n|---|---|---|\n", MANIFEST_BEGIN);
	for (size_t i = 0; i < sp->n; i++) {
		const struct hspec_req *q = &sp->reqs[i];
		const char **ids = calloc(set->n + 1, sizeof(*ids));
		size_t n = 0;

		if (q->withdrawn)
			continue;
		for (size_t k = 0; ids && k < set->n; k++)
			for (size_t j = 0; j < set->cases[k]->n_reqs; j++)
				if (strcmp(set->cases[k]->reqs[j].id, q->id) == 0) {
					ids[n++] = set->cases[k]->id;
					break;
				}
		qsort(ids, n, sizeof(*ids), id_cmp);
		fprintf(f, "| %s | %s | ", q->id, hcase_level_names[q->level]);
		for (size_t k = 0; k < n; k++)
			fprintf(f, "%s`%s`", k ? ", " : "", ids[k]);
		fprintf(f, "%s |\n",
			n				 ? ""
			: strncmp(q->id, "CHK-", 4) == 0 ? "the harness's own tests (10.0)"
			: q->consumer ? "a consumer requirement: the harness's own tests (0.2)"
				      : "(none yet)");
		free(ids);
	}
	fprintf(f, "\n%s\n", MANIFEST_END);
	fclose(f);
	return buf;
}

/*
 * SPEC.md's manifest against text: with check, EXIT_FAILED when it differs; otherwise replace
 * it (through a temporary file renamed over SPEC.md).
 */
static int manifest_apply(const char *spec_path, const char *text, bool check)
{
	_cleanup_free_ char *spec = NULL;
	size_t slen = 0;
	char *b, *e;
	int rc = 0;

	{
		FILE *f = fopen(spec_path, "re");

		if (!f || getdelim(&spec, &slen, '\0', f) < 0) {
			fprintf(stderr, "cellcheck: %s: cannot read\n", spec_path);
			if (f)
				fclose(f);
			return EXIT_USAGE;
		}
		fclose(f);
	}
	b = strstr(spec, MANIFEST_BEGIN);
	e = b ? strstr(b, MANIFEST_END) : NULL;
	if (!b || !e) {
		fprintf(stderr, "cellcheck: %s: no manifest markers (\"%s\" ... \"%s\")\n",
			spec_path, MANIFEST_BEGIN, MANIFEST_END);
		return EXIT_FAILED;
	}
	e += strlen(MANIFEST_END) + 1; /* and its newline */
	if (check) {
		bool same = (size_t)(e - b) == strlen(text) && memcmp(b, text, strlen(text)) == 0;

		if (!same)
			fprintf(stderr,
				"%s: the conformance manifest is stale: run `cellcheck "
				"manifest --write`\n",
				spec_path);
		return same ? 0 : EXIT_FAILED;
	}
	{
		_cleanup_free_ char *tmp = NULL;
		FILE *f;

		if (asprintf(&tmp, "%s.tmp", spec_path) < 0)
			return EXIT_FAILED;
		f = fopen(tmp, "we");
		if (!f || fwrite(spec, 1, (size_t)(b - spec), f) != (size_t)(b - spec) ||
		    fputs(text, f) < 0 || fputs(e, f) < 0 || fclose(f) != 0 ||
		    rename(tmp, spec_path) < 0) {
			fprintf(stderr, "cellcheck: %s: cannot write: %s\n", spec_path,
				strerror(errno));
			rc = EXIT_FAILED;
		}
	}
	return rc;
}

/*
 * `cellcheck manifest [--write]`: the generated Appendix D of SPEC.md. Without --write it
 * prints it and exits 1 when SPEC.md's copy differs (lint-style); with --write it replaces it.
 */
static int cmd_manifest(int argc, char **argv)
{
	static const struct option opts[] = { { "cases", required_argument, NULL, 'c' },
					      { "spec", required_argument, NULL, 's' },
					      { "write", no_argument, NULL, 'w' },
					      { "check", no_argument, NULL, 'k' },
					      {} };
	_cleanup_free_ char *cases_dir = NULL, *spec_path = NULL, *text = NULL;
	const char *cases = NULL, *specarg = NULL;
	struct hcase_set set = { 0 };
	struct hspec *sp = NULL;
	size_t case_errors = 0;
	bool write = false, check = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			cases = optarg;
		else if (c == 's')
			specarg = optarg;
		else if (c == 'w')
			write = true;
		else if (c == 'k')
			check = true;
		else
			return usage_error("%s", "manifest: bad option");
	}
	if (optind < argc)
		return usage_error("manifest: unexpected operand '%s'", argv[optind]);
	cases_dir = default_path(cases, "cases");
	spec_path = default_path(specarg, "SPEC.md");
	if (!cases_dir || !spec_path)
		return EXIT_USAGE;
	r = hspec_load(spec_path, &sp);
	if (r < 0) {
		fprintf(stderr, "cellcheck: %s: %s\n", spec_path, strerror(-r));
		return EXIT_USAGE;
	}
	r = hcase_load_dir(&set, cases_dir, print_err, &case_errors);
	if (r < 0 || case_errors) {
		fprintf(stderr, "cellcheck: manifest: the cases do not load (run lint)\n");
		hspec_free(sp);
		hcase_set_free(&set);
		return EXIT_FAILED;
	}
	text = manifest_text(sp, &set);
	hspec_free(sp);
	hcase_set_free(&set);
	if (!text)
		return EXIT_FAILED;
	if (!write && !check) {
		fputs(text, stdout);
		return 0;
	}
	return manifest_apply(spec_path, text, check);
}

/* ---- probe ---- */

static int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, {} };
	struct hprobe p;
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else
			return usage_error("%s", "probe: bad option");
	}
	if (optind < argc)
		return usage_error("probe: unexpected operand '%s'", argv[optind]);
	r = hprobe_run(&p);
	if (r < 0) {
		fprintf(stderr, "cellcheck: probe: %s\n", strerror(-r));
		return EXIT_USAGE;
	}
	if (json) {
		json_t *doc, *feat = json_object();
		int e = 0;

		for (int i = 0; i < _HPROBE_FEATURE_MAX; i++)
			e |= json_object_set_new(feat, hprobe_feature_names[i],
						 json_pack("{s:s, s:s}", "state",
							   hprobe_state_names[p.feat[i].state],
							   "evidence", p.feat[i].evidence));
		doc = json_pack("{s:{s:s, s:s, s:s}, s:b, s:o}", "kernel", "release", p.release,
				"configSha256", p.config_sha256, "configSource", p.config_source,
				"root", p.root, "features", feat);
		if (!doc || e || json_dumpf(doc, stdout, JSON_INDENT(2)) < 0) {
			json_decref(doc);
			return EXIT_USAGE;
		}
		putchar('\n');
		json_decref(doc);
		return 0;
	}
	printf("kernel release: %s\nkernel config sha256: %s (%s)\nroot: %s\n", p.release,
	       p.config_sha256, p.config_source, p.root ? "yes" : "no");
	for (int i = 0; i < _HPROBE_FEATURE_MAX; i++)
		printf("%-8s %-8s %s\n", hprobe_feature_names[i],
		       hprobe_state_names[p.feat[i].state], p.feat[i].evidence);
	return 0;
}

/* ---- compare, merge, report ---- */

static int load_report(const char *path, struct hrep **ret)
{
	struct hjson_err err = { 0 };
	int r;

	r = hrep_load(path, ret, &err);
	if (r < 0) {
		if (err.msg[0])
			fprintf(stderr, "cellcheck: %s: %s: %s\n", path, err.path, err.msg);
		else
			fprintf(stderr, "cellcheck: %s: %s\n", path, strerror(-r));
	}
	return r;
}

static int cmd_compare(int argc, char **argv)
{
	struct hrep *old = NULL, *new = NULL;
	int r;

	if (argc != 3)
		return usage_error("%s", "compare needs exactly OLD.json NEW.json");
	if (load_report(argv[1], &old) < 0 || load_report(argv[2], &new) < 0) {
		hrep_free(old);
		return EXIT_USAGE;
	}
	r = hrep_compare(old, new, stdout);
	hrep_free(old);
	hrep_free(new);
	return r > 0 ? EXIT_FAILED : 0;
}

static int dir_of(const char *path, char **ret)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return -ENOMEM;
	*ret = strdup(dirname(copy));
	return *ret ? 0 : -ENOMEM;
}

static int cmd_merge(int argc, char **argv)
{
	static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, {} };
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ struct hrep **in = NULL;
	const char *out = NULL;
	struct hrep *m = NULL;
	char msg[512] = "";
	size_t n = 0;
	int c, r, status = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return usage_error("%s", "merge: bad option");
	}
	if (!out || optind >= argc)
		return usage_error("%s", "merge needs -o OUT.json and at least one input");
	in = calloc((size_t)(argc - optind), sizeof(*in));
	if (!in)
		return EXIT_USAGE;
	for (int i = optind; i < argc; i++) {
		if (load_report(argv[i], &in[n]) < 0)
			goto out;
		n++;
	}
	r = hrep_merge(in, n, &m, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "cellcheck: merge: %s\n", msg[0] ? msg : strerror(-r));
		goto out;
	}
	if (msg[0])
		fprintf(stderr, "cellcheck: merge: warning: %s\n", msg);
	r = dir_of(out, &dir);
	r = r ?: hrun_mkdir_p(dir); /* -o reports/merged/report.json: the folder may be new */
	r = r ?: hrep_save(m, out);
	r = r ?: hrep_write_all(m, dir, dir);
	if (r < 0) {
		fprintf(stderr, "cellcheck: merge: writing %s: %s\n", out, strerror(-r));
		goto out;
	}
	printf("merged %zu reports, %zu cases into %s\n", n, m->n_cases, out);
	status = 0;
out:
	for (size_t i = 0; i < n; i++)
		hrep_free(in[i]);
	hrep_free(m);
	return status;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = { { "from", required_argument, NULL, 'f' },
					      { "dir", required_argument, NULL, 'd' },
					      {} };
	_cleanup_free_ char *json_dir = NULL, *spec = NULL;
	const char *from = NULL, *dir = NULL;
	struct hrep *rep = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			from = optarg;
		else if (c == 'd')
			dir = optarg;
		else
			return usage_error("%s", "report: bad option");
	}
	if (!from || !dir || optind < argc)
		return usage_error("%s", "report needs --from report.json --dir DIR");
	if (load_report(from, &rep) < 0)
		return EXIT_USAGE;
	/* A report from before requirement titles: from this checkout's SPEC.md, if there. */
	spec = default_path(NULL, "SPEC.md");
	if (!rep->n_titles && spec)
		(void)hrep_titles_from_spec(rep, spec);
	r = dir_of(from, &json_dir);
	r = r ?: hrep_write_all(rep, dir, json_dir);
	hrep_free(rep);
	if (r < 0) {
		fprintf(stderr, "cellcheck: report: writing into %s: %s\n", dir, strerror(-r));
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_matrix(int argc, char **argv)
{
	static const struct option opts[] = { { "output", required_argument, NULL, 'o' },
					      { "console", required_argument, NULL, 'c' },
					      {} };
	_cleanup_free_ char **consoles = NULL;
	struct hmatrix *m = NULL;
	const char *out = NULL;
	size_t n_consoles = 0;
	int c, r, status = EXIT_USAGE;

	consoles = calloc((size_t)argc + 1, sizeof(*consoles));
	if (!consoles)
		return EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'c')
			consoles[n_consoles++] = optarg;
		else
			return usage_error("%s", "matrix: bad option");
	}
	if (!out || optind >= argc)
		return usage_error("%s", "matrix needs -o DIR and at least one LABEL=REPORT.json");
	m = hmatrix_new();
	if (!m)
		return EXIT_USAGE;
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *label = strdup(argv[i]);
		char *eq = label ? strchr(label, '=') : NULL;

		if (!eq || eq == label || !eq[1]) {
			usage_error("matrix: '%s' is not LABEL=REPORT.json", argv[i]);
			goto out;
		}
		*eq = '\0';
		r = hmatrix_add(m, label, eq + 1);
		if (r < 0) {
			fprintf(stderr, "cellcheck: matrix: %s: %s\n", argv[i],
				r == -EEXIST ? "label given twice" : strerror(-r));
			goto out;
		}
	}
	for (size_t i = 0; i < n_consoles; i++) {
		_cleanup_free_ char *label = strdup(consoles[i]);
		char *eq = label ? strchr(label, '=') : NULL;

		if (!eq || !eq[1]) {
			usage_error("matrix: --console '%s' is not LABEL=FILE", consoles[i]);
			goto out;
		}
		*eq = '\0';
		if (hmatrix_set_console(m, label, eq + 1) < 0) {
			usage_error("matrix: --console: no kernel labelled '%s'", label);
			goto out;
		}
	}
	r = hmatrix_build(m);
	r = r ?: hrun_mkdir_p(out);
	r = r ?: hmatrix_write_all(m, out);
	if (r < 0) {
		fprintf(stderr, "cellcheck: matrix: writing into %s: %s\n", out, strerror(-r));
		goto out;
	}
	for (size_t k = 0; k < m->n_kernels; k++)
		if (!m->kernels[k].rep)
			fprintf(stderr, "cellcheck: matrix: %s: ERROR: %s\n", m->kernels[k].label,
				m->kernels[k].error);
	printf("matrix: %zu kernels, %zu cases: %s/matrix.{json,md,html}\n", m->n_kernels,
	       m->n_rows, out);
	status = hmatrix_failed(m) ? EXIT_FAILED : 0;
out:
	hmatrix_free(m);
	return status;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "list", cmd_list },
		{ "lint", cmd_lint },
		{ "manifest", cmd_manifest },
		{ "probe", cmd_probe },
		{ "compare", cmd_compare },
		{ "merge", cmd_merge },
		{ "report", cmd_report },
		{ "matrix", cmd_matrix },
		{ "run", hrun_cmd_run },
		{ "selftest", hrun_cmd_selftest },
		{ "cleanup", hrun_cmd_cleanup },
	};

	if (argc < 2)
		return usage_error("%s", "missing command");
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("cellcheck %s (%s)\n", CELLCHECK_VERSION, CELLCHECK_GIT_REVISION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(argv[1], cmds[i].name) == 0) {
			/* Subcommand options start after the command word; "--" ends them. */
			optind = 1;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	return usage_error("unknown command '%s'", argv[1]);
}
