/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel matrix (ci/kernel-matrix, `cellcheck matrix`): the same suite's reports from
 * several kernels side by side. One row per case, one column per kernel; rows whose results
 * differ between kernels come first, because a difference is what a kernel upgrade changes.
 *
 * A column is built from LABEL=REPORT.json plus two optional files beside the report, written by
 * ci/kernel-matrix: probe.json (`cellcheck probe --json` in that kernel: its features) and
 * run.json (where and how the suite ran: VM or host, accelerator, seconds, or why it did not).
 * A kernel with no readable report.json is a column that is ERROR as a whole, with the reason,
 * not a failure to build the matrix: one guest that panics must not hide the others.
 */
#ifndef CELLCHECK_HMATRIX_H
#define CELLCHECK_HMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "hrep.h"

#define HMATRIX_VERSION 1

struct hmatrix_feature {
	char *name; /* "btf", ... as cellcheck probe names them */
	char *state;
	char *evidence;
};

struct hmatrix_kernel {
	char *label;
	char *report_path;   /* as given */
	struct hrep *rep;    /* NULL: no usable report, the whole column is ERROR */
	char *error;	     /* why rep is NULL: run.json's "error", else the load error */
	char *release;	     /* report.json, else run.json, else probe.json; may be NULL */
	char *config_sha256; /* same order */
	char *source;	     /* what was booted (package, image), from run.json; may be NULL */
	char *where;	     /* "vm" or "host"; NULL when not known */
	char *accelerator;   /* "kvm", "tcg", "none"; NULL when not known */
	double seconds;	     /* wall time for this kernel; < 0 when not known */
	double boot_seconds; /* guest uptime when the suite started; < 0 when not known */
	int run_status;	     /* exit status of cellcheck run; -1 when not known */
	char *console;	     /* console log path or NULL */
	char *note;	     /* a side file that could not be read, or NULL */
	struct hmatrix_feature *features;
	size_t n_features;
	int regressions; /* hrep_compare() against the first kernel with a report; -1: none */
};

struct hmatrix_row {
	const struct hrep_case **cells; /* one per kernel; NULL: not in that kernel's report */
	const struct hrep_case *any;	/* the first non-NULL cell: id, title, component */
	bool differs; /* status differs, a kernel lacks it, or SKIP reasons differ */
	bool failing; /* differs, and one of the statuses is FAIL or ERROR */
};

struct hmatrix {
	struct hmatrix_kernel *kernels;
	size_t n_kernels;
	struct hmatrix_row *rows; /* after hmatrix_build(): failing, differing, then the rest */
	size_t n_rows;
	char generated_at[32];
};

struct hmatrix *hmatrix_new(void);
void hmatrix_free(struct hmatrix *m);

/*
 * Add a column. A missing or invalid report makes it ERROR (kernel->error says why); only a bad
 * or repeated label (-EINVAL, -EEXIST) or -ENOMEM fail.
 */
int hmatrix_add(struct hmatrix *m, const char *label, const char *report_path);
/* Name the console log of a column; -ENOENT when no column has that label. */
int hmatrix_set_console(struct hmatrix *m, const char *label, const char *path);

/* Build the rows (and the regression counts) once every column is added. */
int hmatrix_build(struct hmatrix *m);

/* true when a column is ERROR as a whole, or a case differs with a FAIL or ERROR in it. */
bool hmatrix_failed(const struct hmatrix *m);

/* The formats; dir is where the output goes, so paths to the columns' files are relative. */
int hmatrix_write_json(const struct hmatrix *m, FILE *f, const char *dir);
int hmatrix_write_md(const struct hmatrix *m, FILE *f, const char *dir);
int hmatrix_write_html(const struct hmatrix *m, FILE *f, const char *dir);

/* matrix.json, matrix.md and matrix.html into dir (created if needed), each atomically. */
int hmatrix_write_all(const struct hmatrix *m, const char *dir);

#endif
