/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run reports (reports/README.md, reports/report.schema.json). report.json is the source of
 * truth; junit.xml, report.tap, report.md and report.html are derived from it by the same
 * writers whether the runner just finished or `cellcheck report` / `merge` rebuild them.
 *
 * Every string the model holds is valid UTF-8: hrep_case_add() and the loader make it so, and
 * the writers escape for their format, so a hostile case message cannot break any report.
 */
#ifndef CELLCHECK_HREP_H
#define CELLCHECK_HREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hcase.h"
#include "hjson.h"

#define HREP_VERSION 1

enum hrep_status {
	HREP_PASS,
	HREP_FAIL,
	HREP_SKIP,
	HREP_ERROR,
	HREP_XFAIL,
	HREP_XPASS,
	_HREP_STATUS_MAX
};

extern const char *const hrep_status_names[]; /* "PASS", ... NULL */
int hrep_status_from_name(const char *s);     /* enum value or -EINVAL */

struct hrep_req {
	char *id;
	enum hcase_level level;
};

/* A file of the implementation under test, hashed so a report says exactly what ran. */
struct hrep_file {
	char *component; /* "decoder", ...; or "profile" */
	char *role;	 /* "binary", "bpf_object" */
	char *path;
	char *sha256; /* hex, or "unavailable" */
};

/* One problem of a case (SPEC CHK-RUN-004): a case lists every one it found. */
struct hrep_problem {
	enum hrep_status status; /* FAIL or ERROR */
	char *message;
};

struct hrep_case {
	char *id;
	char *title;
	char *component;
	struct hrep_req *reqs;
	size_t n_reqs;
	enum hrep_status status;
	uint64_t duration_ms;
	char *message; /* why it failed or erred: the first problem, "(and N more)"; or NULL */
	struct hrep_problem *problems; /* every problem, in the order found */
	size_t n_problems;
	char *reason;	      /* SKIP reason or known-issue reason; may be NULL */
	char *artifacts;      /* directory relative to the report's directory; may be NULL */
	char *reproduce;      /* one shell command line; may be NULL */
	char *category;	      /* first-cause category (hrep_category()); NULL: none */
	uint32_t runs;	      /* --repeat: runs made (0: not repeated, no runs/flakes in JSON) */
	uint32_t flakes;      /* runs whose status differed from the reported one */
	uint64_t slowest_ms;  /* the slowest of its runs */
	uint64_t deadline_ms; /* its deadline in this run (timeout_ms scaled); 0: not recorded */
};

/*
 * The first-cause category of a problem message (reports/README.md), what a vendor sorts 90
 * failures by: "leftover", "timeout", "start", "stop", "client", "driver", "upstream", "setup",
 * "expect.X" (X the expectation kind: "expect.events.match[0] (...)" is "expect.events") or
 * "other". NULL for a NULL message. The result is a static string or buf.
 */
#define HREP_CATEGORY_MAX 48
const char *hrep_category(const char *message, char buf[HREP_CATEGORY_MAX]);

/*
 * A case's category: that of its first problem; of its message when an older report has no
 * problem list and the case is FAIL or ERROR; NULL when it has neither (PASS, SKIP, XPASS).
 */
const char *hrep_case_category(const struct hrep_case *c, char buf[HREP_CATEGORY_MAX]);

/* A requirement's title (SPEC.md Appendix C's summary), so a report reads without the SPEC. */
struct hrep_title {
	char *id;
	char *title;
};

struct hrep {
	char *kernel_release;
	char *kernel_config_sha256;
	double time_scale;     /* the run's deadline factor; 0: not recorded (older reports) */
	char *time_scale_from; /* "calibrated" or "option" */
	char *harness_version;
	char *harness_git_revision;
	char *profile_name;
	char *profile_path;
	char *profile_sha256;
	struct hrep_file *files;
	size_t n_files;
	char *started_at; /* RFC 3339 UTC */
	char *ended_at;
	bool has_shard;
	uint32_t shard_index; /* 1-based, as in --shard K/N */
	uint32_t shard_count;
	struct hrep_case *cases;
	size_t n_cases;
	struct hrep_title *titles; /* report.json "requirements": {ID: title} */
	size_t n_titles;
};

struct hrep *hrep_new(void);
void hrep_free(struct hrep *r);

/* The current time as RFC 3339 UTC with milliseconds, "2026-01-01T00:00:00.000Z". */
void hrep_now(char buf[32]);

/* Set a string member to a UTF-8-clean copy of s (NULL clears it). 0 or -ENOMEM. */
int hrep_set(char **field, const char *s);

/* Append a deep, UTF-8-clean copy of c. */
int hrep_case_add(struct hrep *r, const struct hrep_case *c);
int hrep_file_add(struct hrep *r, const char *component, const char *role, const char *path,
		  const char *sha256);
const struct hrep_case *hrep_case_find(const struct hrep *r, const char *id);

/* Set (or replace) a requirement's title. 0 or -ENOMEM. */
int hrep_title_set(struct hrep *r, const char *id, const char *title);
/* The requirement's title, or NULL. */
const char *hrep_title(const struct hrep *r, const char *id);
/*
 * Give every requirement the cases cite that has no title yet its summary from the SPEC.md at
 * spec_path (Appendix C). 0, -errno for an unreadable SPEC (the report keeps what it had).
 */
int hrep_titles_from_spec(struct hrep *r, const char *spec_path);

/* The strictest level among the case's requirements (MAY when it lists none). */
enum hcase_level hrep_case_level(const struct hrep_case *c);

/* Load and validate a report.json (errors name the JSON path). */
int hrep_load(const char *path, struct hrep **ret, struct hjson_err *err);
/* Write report.json atomically (temporary file + rename). */
int hrep_save(const struct hrep *r, const char *path);

/* Write path through fn into a temporary file beside it, then rename: never a torn file. */
int hrep_atomic_write(const char *path, int (*fn)(const void *arg, FILE *f, const void *arg2),
		      const void *arg, const void *arg2);

struct hrep_counts {
	size_t total;
	size_t n[_HREP_STATUS_MAX];
};

/* Counts over cases of one component and/or level (NULL / -1: any). */
void hrep_count(const struct hrep *r, const char *component, int level, struct hrep_counts *ret);

/*
 * The run's verdict (SPEC ch.10 exit status): true when a MUST case FAILs, or any case is an
 * ERROR or XPASS. SHOULD and MAY failures are warnings.
 */
bool hrep_failed(const struct hrep *r);

/*
 * The median over the cases with a deadline (SKIP left out) of slowest run / deadline, in
 * percent; *ret_n gets how many cases that is. -1 when there is none.
 */
double hrep_deadline_median(const struct hrep *r, size_t *ret_n);

/*
 * Derived formats. artifacts_prefix is prepended to each case's artifacts path in links (""
 * when the output sits next to report.json).
 */
int hrep_write_junit(const struct hrep *r, FILE *f);
int hrep_write_tap(const struct hrep *r, FILE *f);
int hrep_write_md(const struct hrep *r, FILE *f, const char *artifacts_prefix);
int hrep_write_html(const struct hrep *r, FILE *f, const char *artifacts_prefix);

/*
 * Write junit.xml, report.tap, report.md and report.html into dir (each atomically).
 * json_dir is the directory of the report.json the artifacts paths are relative to (NULL:
 * dir itself).
 */
int hrep_write_all(const struct hrep *r, const char *dir, const char *json_dir);

/*
 * Compare two runs (the kernel-upgrade workflow): writes the kernel change first, then
 * regressions (PASS -> FAIL/ERROR), fixes, new and removed cases and other status changes.
 * Returns the number of regressions.
 */
int hrep_compare(const struct hrep *old, const struct hrep *new, FILE *out);

/*
 * Combine shard reports. They must share harness version and revision, profile, and kernel;
 * a case in two inputs is an error unless both say the same status. On error, errbuf says why;
 * on success errbuf holds a warning (a shard missing) or is left untouched.
 */
int hrep_merge(struct hrep *const *in, size_t n, struct hrep **ret, char *errbuf, size_t errlen);

#endif
