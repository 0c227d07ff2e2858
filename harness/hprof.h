/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profiles: how to start each implementation under test (DESIGN.md 5). A profile names, per
 * component, an argv template and the artifacts the suite may inspect. Templates hold
 * placeholders in braces: {builddir}, {srcdir} and {profiledir} and the profile's own "vars"
 * are filled at load time; the per-case ones (hprof_runtime_vars) when a case starts the
 * component. "{{" and "}}" stand for literal braces. A component the profile lacks is legal:
 * its cases SKIP.
 */
#ifndef CELLCHECK_HPROF_H
#define CELLCHECK_HPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hcase.h"
#include "hjson.h"

struct hrep;

/* Placeholders a case fills when it starts a component; NULL-terminated. */
extern const char *const hprof_runtime_vars[];

struct hprof_var {
	const char *name; /* without braces */
	const char *value;
};

/* Flow record versions a profile may declare (record_versions, SPEC 10.2). */
#define HPROF_RECORD_VERSION_MIN 1
#define HPROF_RECORD_VERSION_MAX 2

struct hprof_comp {
	bool present;
	char **argv; /* load-time placeholders filled, runtime ones kept; NULL-terminated */
	size_t n_argv;
	char **cleanup_argv; /* commands.cleanup (supervisor): removes what dead runs left; or NULL
			      */
	size_t n_cleanup_argv;
	bool ready_fd;		  /* readiness is a byte on {ready_fd}; otherwise started = ready */
	char *bpf_object;	  /* artifacts.bpf_object, or NULL */
	uint32_t record_versions; /* bit N: may emit flow record version N (default: bit 1) */
	char **binaries;	  /* files whose SHA-256 goes into reports (default: argv[0]) */
	uint32_t start_timeout_ms; /* bound on readiness */
	uint32_t stop_timeout_ms;  /* bound on exit after SIGTERM */
};

struct hprof {
	char *name;
	char *description;
	char *path; /* as given */
	char *builddir;
	char *srcdir;
	char sha256[65]; /* of the profile file */
	struct hprof_comp comp[_HCASE_COMPONENT_MAX];
};

/*
 * builddir and srcdir: NULL means $CELLCHECK_BUILDDIR / $CELLCHECK_SRCDIR, else the defaults
 * hprof_default_dirs() found. Errors name the JSON path.
 */
int hprof_load(const char *path, const char *builddir, const char *srcdir, struct hprof **ret,
	       struct hjson_err *err);
void hprof_free(struct hprof *p);

/*
 * Defaults: builddir is the directory above the running cellcheck binary (it lives in
 * BUILDDIR/harness/), srcdir the source tree meson configured. Caller frees.
 */
int hprof_default_dirs(char **ret_builddir, char **ret_srcdir);

/*
 * Fill placeholders of tmpl from vars. -ENOENT when a placeholder has no value (its name is
 * returned in *ret_missing when not NULL, caller frees), -EINVAL for an unbalanced brace.
 */
int hprof_expand(const char *tmpl, const struct hprof_var *vars, size_t n_vars, char **ret,
		 char **ret_missing);

/* The full argv for one start: the template expanded with vars, then extra (also expanded). */
int hprof_argv(const struct hprof *p, enum hcase_component c, const struct hprof_var *vars,
	       size_t n_vars, char *const *extra, char ***ret, char **ret_missing);

/* The same for a named command of the component ("cleanup"); -ENOENT when it has none. */
int hprof_cmd_argv(const struct hprof *p, enum hcase_component c, const char *cmd,
		   const struct hprof_var *vars, size_t n_vars, char *const *extra, char ***ret,
		   char **ret_missing);

/*
 * Record the profile in a report: name, path, the profile file's hash, and one file entry per
 * component binary and BPF object with its SHA-256 ("unavailable" for a file that cannot be
 * read: the run decides whether that matters). 0 or -ENOMEM.
 */
int hprof_fill_report(const struct hprof *p, struct hrep *r);

#endif
