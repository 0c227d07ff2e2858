// SPDX-License-Identifier: Apache-2.0
#include "hprof.h"

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hrep.h"
#include "hsha256.h"
#include "util.h"

#ifndef CELLCHECK_SRCDIR_DEFAULT
#define CELLCHECK_SRCDIR_DEFAULT "."
#endif

const char *const hprof_runtime_vars[] = { "events",  "listen", "upstream", "ifname",
					   "netns",   "spec",	"ready_fd", "records",
					   "cell_id", "run_id", NULL };

struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *ns = realloc(b->s, cap);

		if (!ns) {
			b->err = -ENOMEM;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static bool in_list(const char *s, size_t n, const char *const *list)
{
	for (; list && *list; list++)
		if (strlen(*list) == n && strncmp(s, *list, n) == 0)
			return true;
	return false;
}

/*
 * Fill placeholders from vars. keep: names left verbatim (with "{{"/"}}" kept and braces in
 * values doubled), so a later pass can fill them; NULL for the final pass.
 */
static int expand(const char *tmpl, const struct hprof_var *vars, size_t n_vars,
		  const char *const *keep, char **ret, char **ret_missing)
{
	struct sbuf b = { 0 };
	const char *p = tmpl;

	sb_add(&b, "", 0);
	while (*p) {
		const char *close;
		bool found = false;
		size_t n;

		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			sb_add(&b, p, keep ? 2 : 1);
			p += 2;
			continue;
		}
		if (*p == '}') {
			free(b.s);
			return -EINVAL;
		}
		if (*p != '{') {
			n = strcspn(p, "{}");
			sb_add(&b, p, n);
			p += n;
			continue;
		}
		close = strchr(p + 1, '}');
		n = close ? (size_t)(close - p - 1) : 0;
		if (!close || n == 0 || memchr(p + 1, '{', n)) {
			free(b.s);
			return -EINVAL;
		}
		for (size_t i = 0; i < n_vars; i++) {
			if (strlen(vars[i].name) != n || strncmp(vars[i].name, p + 1, n) != 0)
				continue;
			if (keep) {
				for (const char *v = vars[i].value; *v; v++) {
					sb_add(&b, v, 1);
					if (*v == '{' || *v == '}')
						sb_add(&b, v, 1);
				}
			} else {
				sb_add(&b, vars[i].value, strlen(vars[i].value));
			}
			found = true;
			break;
		}
		if (!found && keep && in_list(p + 1, n, keep)) {
			sb_add(&b, p, n + 2);
			found = true;
		}
		if (!found) {
			if (ret_missing)
				*ret_missing = strndup(p + 1, n);
			free(b.s);
			return -ENOENT;
		}
		p = close + 1;
	}
	if (b.err) {
		free(b.s);
		return b.err;
	}
	*ret = b.s;
	return 0;
}

int hprof_expand(const char *tmpl, const struct hprof_var *vars, size_t n_vars, char **ret,
		 char **ret_missing)
{
	return expand(tmpl, vars, n_vars, NULL, ret, ret_missing);
}

int hprof_default_dirs(char **ret_builddir, char **ret_srcdir)
{
	char exe[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	/* BUILDDIR/harness/cellcheck */
	*ret_builddir = strdup(dirname(dirname(exe)));
	*ret_srcdir = strdup(CELLCHECK_SRCDIR_DEFAULT);
	if (!*ret_builddir || !*ret_srcdir) {
		free(*ret_builddir);
		free(*ret_srcdir);
		return -ENOMEM;
	}
	return 0;
}

void hprof_free(struct hprof *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->description);
	free(p->path);
	free(p->builddir);
	free(p->srcdir);
	for (int i = 0; i < _HCASE_COMPONENT_MAX; i++) {
		hjson_strv_free(p->comp[i].argv);
		hjson_strv_free(p->comp[i].cleanup_argv);
		free(p->comp[i].bpf_object);
		hjson_strv_free(p->comp[i].binaries);
	}
	free(p);
}

/* Load-time expansion of one template, with an error naming its path. */
static int expand_load(const char *tmpl, const struct hprof_var *vars, size_t n_vars,
		       const char *path, char **ret, struct hjson_err *err)
{
	_cleanup_free_ char *missing = NULL;
	int r;

	r = expand(tmpl, vars, n_vars, hprof_runtime_vars, ret, &missing);
	if (r == -ENOENT)
		return hjson_fail(err, path,
				  "unknown placeholder {%s} (profile vars, builddir, srcdir, "
				  "profiledir, or one filled per case: events, listen, upstream, "
				  "ifname, netns, spec, ready_fd, records, cell_id, run_id)",
				  missing);
	if (r == -EINVAL)
		return hjson_fail(err, path,
				  "unbalanced brace in \"%s\" (write {{ or }} for a "
				  "literal brace)",
				  tmpl);
	return r;
}

static int expand_strv(char **v, const struct hprof_var *vars, size_t n_vars, const char *path,
		       struct hjson_err *err)
{
	for (size_t i = 0; v && v[i]; i++) {
		char p[HJSON_PATH_MAX], *out;
		int r;

		hjson_path_idx(p, path, i);
		r = expand_load(v[i], vars, n_vars, p, &out, err);
		if (r < 0)
			return r;
		free(v[i]);
		v[i] = out;
	}
	return 0;
}

/*
 * record_versions (SPEC 10.2): the flow record versions the component may emit, a non-empty
 * array of distinct known versions; absent means [1]. Kept as a bit per version.
 */
static int load_record_versions(json_t *o, const char *path, uint32_t *ret, struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *arr = NULL, *v;
	uint32_t bits = 0;
	size_t i;
	int r;

	*ret = 1u << 1;
	r = hjson_arr(o, path, "record_versions", false, &arr, err);
	if (r < 0 || !arr)
		return r;
	hjson_path_key(p, path, "record_versions");
	if (json_array_size(arr) == 0)
		return hjson_fail(err, p, "expected at least one record version");
	json_array_foreach(arr, i, v)
	{
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
		char pi[HJSON_PATH_MAX];

		hjson_path_idx(pi, p, i);
		if (n < HPROF_RECORD_VERSION_MIN || n > HPROF_RECORD_VERSION_MAX)
			return hjson_fail(err, pi, "expected a flow record version, %d to %d",
					  HPROF_RECORD_VERSION_MIN, HPROF_RECORD_VERSION_MAX);
		if (bits & (1u << n))
			return hjson_fail(err, pi, "record version %lld listed twice",
					  (long long)n);
		bits |= 1u << n;
	}
	*ret = bits;
	return 0;
}

static int load_comp(json_t *o, const char *path, struct hprof_comp *c,
		     const struct hprof_var *vars, size_t n_vars, struct hjson_err *err)
{
	static const char *const keys[] = { "argv",
					    "ready",
					    "artifacts",
					    "binaries",
					    "start_timeout_ms",
					    "stop_timeout_ms",
					    "commands",
					    "record_versions",
					    NULL };
	static const char *const art_keys[] = { "bpf_object", NULL };
	static const char *const cmd_keys[] = { "cleanup", NULL };
	static const char *const readies[] = { "fd", "none", NULL };
	char p[HJSON_PATH_MAX];
	json_t *art = NULL, *cmds = NULL;
	const char *bpf = NULL;
	int ready = -1, r;

	c->start_timeout_ms = 5000;
	c->stop_timeout_ms = 5000;
	r = hjson_only_keys(o, path, keys, err);
	r = r ?: load_record_versions(o, path, &c->record_versions, err);
	r = r ?: hjson_strv(o, path, "argv", true, true, &c->argv, &c->n_argv, err);
	r = r ?: hjson_enum(o, path, "ready", false, readies, &ready, err);
	r = r ?: hjson_obj(o, path, "artifacts", false, &art, err);
	r = r ?: hjson_obj(o, path, "commands", false, &cmds, err);
	r = r ?: hjson_strv(o, path, "binaries", false, true, &c->binaries, NULL, err);
	r = r
		    ?: hjson_u32(o, path, "start_timeout_ms", false, 1, 600000,
				 &c->start_timeout_ms, err);
	r = r ?: hjson_u32(o, path, "stop_timeout_ms", false, 1, 600000, &c->stop_timeout_ms, err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "argv");
	r = expand_strv(c->argv, vars, n_vars, p, err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "binaries");
	r = expand_strv(c->binaries, vars, n_vars, p, err);
	if (r < 0)
		return r;
	if (cmds) {
		char pc[HJSON_PATH_MAX];

		hjson_path_key(p, path, "commands");
		r = hjson_only_keys(cmds, p, cmd_keys, err);
		r = r
			    ?: hjson_strv(cmds, p, "cleanup", false, true, &c->cleanup_argv,
					  &c->n_cleanup_argv, err);
		if (r < 0)
			return r;
		hjson_path_key(pc, p, "cleanup");
		r = c->cleanup_argv ? expand_strv(c->cleanup_argv, vars, n_vars, pc, err) : 0;
		if (r < 0)
			return r;
	}
	if (art) {
		hjson_path_key(p, path, "artifacts");
		r = hjson_only_keys(art, p, art_keys, err);
		r = r ?: hjson_str(art, p, "bpf_object", false, &bpf, err);
		if (r < 0)
			return r;
		if (bpf) {
			char pb[HJSON_PATH_MAX];

			hjson_path_key(pb, p, "bpf_object");
			r = expand_load(bpf, vars, n_vars, pb, &c->bpf_object, err);
			if (r < 0)
				return r;
		}
	}
	/* A template that passes {ready_fd} promises the byte; "none" must not ask for it. */
	bool has_fd = false;
	for (size_t i = 0; i < c->n_argv; i++)
		if (strstr(c->argv[i], "{ready_fd}"))
			has_fd = true;
	if (ready == 1 && has_fd)
		return hjson_fail(err, path, "\"ready\": \"none\" but argv passes {ready_fd}");
	if (ready == 0 && !has_fd)
		return hjson_fail(err, path, "\"ready\": \"fd\" but argv never passes {ready_fd}");
	c->ready_fd = ready == -1 ? has_fd : ready == 0;
	if (!c->binaries) {
		c->binaries = calloc(2, sizeof(char *));
		if (!c->binaries || !(c->binaries[0] = strdup(c->argv[0])))
			return -ENOMEM;
	}
	c->present = true;
	return 0;
}

/*
 * The profile's own vars after the built-ins already in vars[0..*n_vars): each expanded with the
 * built-ins, its text kept in var_values[] (freed by the caller).
 */
static int load_vars(json_t *jvars, struct hprof_var *vars, size_t max, size_t *n_vars,
		     char **var_values, struct hjson_err *err)
{
	const char *key;
	json_t *val;
	int r;

	json_object_foreach(jvars, key, val)
	{
		char pv[HJSON_PATH_MAX];
		size_t base = 3;

		hjson_path_key(pv, "$.vars", key);
		if (*n_vars == max)
			return hjson_fail(err, pv, "too many vars (at most %zu)", max - base);
		if (!json_is_string(val))
			return hjson_fail(err, pv, "expected a string");
		if (in_list(key, strlen(key), hprof_runtime_vars) || strcmp(key, "builddir") == 0 ||
		    strcmp(key, "srcdir") == 0 || strcmp(key, "profiledir") == 0)
			return hjson_fail(err, pv, "\"%s\" is a built-in placeholder", key);
		/* A var may use the built-ins only, so there is no order or cycle to resolve. */
		r = hprof_expand(json_string_value(val), vars, base, &var_values[*n_vars], NULL);
		if (r == -ENOENT || r == -EINVAL)
			return hjson_fail(err, pv,
					  "a var may use only {builddir}, {srcdir}, {profiledir}");
		if (r < 0)
			return r;
		vars[*n_vars] = (struct hprof_var){ key, var_values[*n_vars] };
		(*n_vars)++;
	}
	return 0;
}

/* Each component of the profile, its templates expanded with vars. */
static int load_comps(json_t *comps, struct hprof *p, const struct hprof_var *vars, size_t n_vars,
		      struct hjson_err *err)
{
	const char *key;
	json_t *val;
	int r;

	json_object_foreach(comps, key, val)
	{
		char pc[HJSON_PATH_MAX];
		int c = hcase_component_from_name(key);

		hjson_path_key(pc, "$.components", key);
		if (c < 0)
			return hjson_fail(
				err, pc,
				"unknown component \"%s\" (decoder, flow-monitor, dns-proxy, "
				"supervisor)",
				key);
		if (!json_is_object(val))
			return hjson_fail(err, pc, "expected an object");
		r = load_comp(val, pc, &p->comp[c], vars, n_vars, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int hprof_load(const char *path, const char *builddir, const char *srcdir, struct hprof **ret,
	       struct hjson_err *err)
{
	static const char *const keys[] = { "profileVersion", "name",	    "description",
					    "vars",	      "components", NULL };
	struct hprof_var vars[64];
	_cleanup_free_ char *def_build = NULL, *def_src = NULL, *pathcopy = NULL;
	char *var_values[64] = { 0 };
	json_t *doc = NULL, *jvars = NULL, *comps = NULL;
	const char *name = NULL, *desc = NULL;
	struct hprof *p = NULL;
	size_t n_vars = 0;
	uint32_t version;
	int r;

	r = hprof_default_dirs(&def_build, &def_src);
	if (r < 0)
		return r;
	builddir = builddir ?: getenv("CELLCHECK_BUILDDIR") ?: def_build;
	srcdir = srcdir ?: getenv("CELLCHECK_SRCDIR") ?: def_src;

	r = hjson_load_file(path, &doc, err);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	pathcopy = strdup(path);
	if (!p || !pathcopy) {
		r = -ENOMEM;
		goto out;
	}
	p->path = strdup(path);
	p->builddir = strdup(builddir);
	p->srcdir = strdup(srcdir);
	if (!p->path || !p->builddir || !p->srcdir) {
		r = -ENOMEM;
		goto out;
	}
	r = hsha256_file(path, p->sha256);
	if (r < 0)
		goto out;

	r = hjson_only_keys(doc, "$", keys, err);
	r = r ?: hjson_u32(doc, "$", "profileVersion", true, 1, 1, &version, err);
	r = r ?: hjson_str(doc, "$", "name", true, &name, err);
	r = r ?: hjson_str(doc, "$", "description", false, &desc, err);
	r = r ?: hjson_obj(doc, "$", "vars", false, &jvars, err);
	r = r ?: hjson_obj(doc, "$", "components", true, &comps, err);
	if (r < 0)
		goto out;
	p->name = strdup(name);
	p->description = desc ? strdup(desc) : NULL;
	if (!p->name || (desc && !p->description)) {
		r = -ENOMEM;
		goto out;
	}

	vars[n_vars++] = (struct hprof_var){ "builddir", p->builddir };
	vars[n_vars++] = (struct hprof_var){ "srcdir", p->srcdir };
	vars[n_vars++] = (struct hprof_var){ "profiledir", dirname(pathcopy) };
	r = load_vars(jvars, vars, ARRAY_SIZE(vars), &n_vars, var_values, err);
	r = r ?: load_comps(comps, p, vars, n_vars, err);
	if (r < 0)
		goto out;
	*ret = TAKE_PTR(p);
	r = 0;
out:
	for (size_t i = 0; i < ARRAY_SIZE(var_values); i++)
		free(var_values[i]);
	hprof_free(p);
	json_decref(doc);
	return r;
}

static int argv_fill(char *const *tmpl, size_t n_tmpl, const struct hprof_var *vars, size_t n_vars,
		     char *const *extra, char ***ret, char **ret_missing)
{
	size_t n_extra = 0, k = 0;
	char **argv;
	int r = 0;

	while (extra && extra[n_extra])
		n_extra++;
	argv = calloc(n_tmpl + n_extra + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < n_tmpl && r >= 0; i++)
		r = hprof_expand(tmpl[i], vars, n_vars, &argv[k++], ret_missing);
	for (size_t i = 0; i < n_extra && r >= 0; i++)
		r = hprof_expand(extra[i], vars, n_vars, &argv[k++], ret_missing);
	if (r < 0) {
		hjson_strv_free(argv);
		return r;
	}
	*ret = argv;
	return 0;
}

int hprof_argv(const struct hprof *p, enum hcase_component c, const struct hprof_var *vars,
	       size_t n_vars, char *const *extra, char ***ret, char **ret_missing)
{
	const struct hprof_comp *pc = &p->comp[c];

	if (!pc->present)
		return -ENOENT;
	return argv_fill(pc->argv, pc->n_argv, vars, n_vars, extra, ret, ret_missing);
}

int hprof_cmd_argv(const struct hprof *p, enum hcase_component c, const char *cmd,
		   const struct hprof_var *vars, size_t n_vars, char *const *extra, char ***ret,
		   char **ret_missing)
{
	const struct hprof_comp *pc = &p->comp[c];

	if (!pc->present || strcmp(cmd, "cleanup") != 0 || !pc->cleanup_argv)
		return -ENOENT;
	return argv_fill(pc->cleanup_argv, pc->n_cleanup_argv, vars, n_vars, extra, ret,
			 ret_missing);
}

static int add_file(struct hrep *r, const char *component, const char *role, const char *path)
{
	char hex[65];

	/* One binary serves several components in the reference: hash it once per component. */
	for (size_t i = 0; i < r->n_files; i++)
		if (strcmp(r->files[i].component, component) == 0 &&
		    strcmp(r->files[i].role, role) == 0 && strcmp(r->files[i].path, path) == 0)
			return 0;
	if (hsha256_file(path, hex) < 0)
		snprintf(hex, sizeof(hex), "unavailable");
	return hrep_file_add(r, component, role, path, hex);
}

int hprof_fill_report(const struct hprof *p, struct hrep *r)
{
	int e = 0;

	e = e ?: hrep_set(&r->profile_name, p->name);
	e = e ?: hrep_set(&r->profile_path, p->path);
	e = e ?: hrep_set(&r->profile_sha256, p->sha256);
	for (int c = 0; !e && c < _HCASE_COMPONENT_MAX; c++) {
		const struct hprof_comp *pc = &p->comp[c];

		if (!pc->present)
			continue;
		for (size_t i = 0; !e && pc->binaries[i]; i++)
			e = add_file(r, hcase_component_names[c], "binary", pc->binaries[i]);
		if (!e && pc->bpf_object)
			e = add_file(r, hcase_component_names[c], "bpf_object", pc->bpf_object);
	}
	return e;
}
