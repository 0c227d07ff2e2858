// SPDX-License-Identifier: Apache-2.0
#include "hclause.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int load_clause(json_t *cl, const char *path, struct hjson_err *err)
{
	static const char *const keys[] = { "clause", "checks", "tests", "fault",
					    "gap",    "note",	NULL };
	char p[HJSON_PATH_MAX];
	const char *s;
	json_t *checks = NULL, *tests = NULL, *e;
	size_t i;
	int r;

	if (!json_is_object(cl))
		return hjson_fail(err, path, "expected an object");
	r = hjson_only_keys(cl, path, keys, err);
	r = r ?: hjson_str(cl, path, "clause", true, &s, err);
	r = r ?: hjson_arr(cl, path, "checks", true, &checks, err);
	r = r ?: hjson_arr(cl, path, "tests", false, &tests, err);
	r = r ?: hjson_str(cl, path, "fault", false, &s, err);
	r = r ?: hjson_str(cl, path, "gap", false, &s, err);
	r = r ?: hjson_str(cl, path, "note", false, &s, err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "checks");
	json_array_foreach(checks, i, e)
	{
		char q[HJSON_PATH_MAX];

		hjson_path_idx(q, p, i);
		if (!json_is_string(e) || !json_string_length(e))
			return hjson_fail(err, q, "expected a case ID or CASE-ID#PATH");
	}
	hjson_path_key(p, path, "tests");
	json_array_foreach(tests, i, e)
	{
		char q[HJSON_PATH_MAX];

		hjson_path_idx(q, p, i);
		if (!json_is_string(e) || !json_string_length(e))
			return hjson_fail(err, q, "expected FILE or FILE:NAME of the source tree");
	}
	if ((json_array_size(checks) || json_array_size(tests)) && json_object_get(cl, "gap"))
		return hjson_fail(err, path,
				  "a clause with checks is not a gap: drop \"gap\" or the checks");
	return 0;
}

int hclause_load(const char *file, json_t **ret, struct hjson_err *err)
{
	static const char *const keys[] = { "clauseMapVersion", "comment", "requirements", NULL };
	json_auto_t *doc = NULL;
	json_t *reqs = NULL, *v;
	const char *id, *s;
	uint32_t version;
	int r;

	r = hjson_load_file(file, &doc, err);
	if (r < 0)
		return r;
	if (!json_is_object(doc))
		return hjson_fail(err, "$", "expected an object");
	r = hjson_only_keys(doc, "$", keys, err);
	r = r ?: hjson_u32(doc, "$", "clauseMapVersion", true, 1, 1, &version, err);
	r = r ?: hjson_str(doc, "$", "comment", false, &s, err);
	r = r ?: hjson_obj(doc, "$", "requirements", true, &reqs, err);
	if (r < 0)
		return r;
	json_object_foreach(reqs, id, v)
	{
		char p[HJSON_PATH_MAX];
		json_t *cl;
		size_t i;

		hjson_path_key(p, "$.requirements", id);
		if (!hcase_req_id_valid(id))
			return hjson_fail(err, p, "not a requirement ID");
		if (!json_is_array(v))
			return hjson_fail(err, p, "expected an array of clauses");
		json_array_foreach(v, i, cl)
		{
			char q[HJSON_PATH_MAX];

			hjson_path_idx(q, p, i);
			r = load_clause(cl, q, err);
			if (r < 0)
				return r;
		}
	}
	*ret = TAKE_PTR(doc);
	return 0;
}

bool hclause_req_mapped(const struct hspec_req *q)
{
	return q->level == HCASE_MUST && !q->withdrawn && q->in_body;
}

/* Walk rest (".key...", "[N]...") from node; see hclause_path_exists. */
static bool walk(json_t *node, const char *rest)
{
	while (*rest) {
		if (*rest == '[') {
			char *end;
			unsigned long idx = strtoul(rest + 1, &end, 10);

			if (!json_is_array(node) || end == rest + 1 || *end != ']')
				return false;
			node = json_array_get(node, idx);
			if (!node)
				return false;
			rest = end + 1;
		} else if (*rest == '.') {
			const char *key, *best = NULL;
			size_t best_len = 0;
			json_t *v, *next = NULL;

			rest++;
			if (!json_is_object(node))
				return false;
			json_object_foreach(node, key, v)
			{
				size_t n = strlen(key);

				if (strncmp(rest, key, n) == 0 &&
				    (rest[n] == '\0' || rest[n] == '.' || rest[n] == '[') &&
				    n > best_len) {
					best = key;
					best_len = n;
					next = v;
				}
			}
			if (!best)
				return false;
			node = next;
			rest += best_len;
		} else {
			return false;
		}
	}
	return true;
}

bool hclause_path_exists(const struct hcase *c, const char *path)
{
	if (strncmp(path, "expect", 6) == 0 && (path[6] == '.' || path[6] == '\0'))
		return c->expect && walk(c->expect, path + 6);
	if (strncmp(path, "steps[", 6) == 0) {
		char *end;
		unsigned long i = strtoul(path + 6, &end, 10);

		if (end == path + 6 || *end != ']' || i >= c->n_steps)
			return false;
		if (end[1] == '\0')
			return true;
		return strcmp(end + 1, ".expect_exit") == 0 &&
		       hcase_step_expect_exit(&c->steps[i]) >= 0;
	}
	if (strncmp(path, "steps.", 6) == 0) {
		const char *name = path + 6, *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		if (dot && strcmp(dot, ".expect_exit") != 0)
			return false;
		for (size_t i = 0; i < c->n_steps; i++) {
			const struct hcase_step *st = &c->steps[i];

			if (st->name && strlen(st->name) == n && strncmp(st->name, name, n) == 0)
				return !dot || hcase_step_expect_exit(st) >= 0;
		}
	}
	return false;
}

static const struct hcase *find_case(const struct hcase_set *set, const char *id, size_t len)
{
	for (size_t i = 0; i < set->n; i++)
		if (strlen(set->cases[i]->id) == len && strncmp(set->cases[i]->id, id, len) == 0)
			return set->cases[i];
	return NULL;
}

static bool case_names(const struct hcase *c, const char *req)
{
	for (size_t j = 0; j < c->n_reqs; j++)
		if (strcmp(c->reqs[j].id, req) == 0)
			return true;
	return false;
}

static json_t *find_fault(json_t *faults, const char *name)
{
	json_t *f;
	size_t i;

	json_array_foreach(faults, i, f) if (json_is_string(json_object_get(f, "name")) &&
					     strcmp(json_string_value(json_object_get(f, "name")),
						    name) == 0) return f;
	return NULL;
}

static bool fault_names(json_t *fault, const char *req)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(fault, "requirements"), i,
			   r) if (json_is_string(r) &&
				  strcmp(json_string_value(r), req) == 0) return true;
	return false;
}

struct ctx {
	hclause_report_fn report;
	void *userdata;
	struct hclause_stats *st;
	const char *srcdir;
};

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/*
 * A test reference: FILE (relative to the source tree) must be readable and, with ":NAME",
 * hold NAME as a whole identifier (a test function, a TAP test's name). 0 when it does, 1 when
 * the file lacks NAME, -errno when the file cannot be read.
 */
static int test_ref(const char *srcdir, const char *ref)
{
	_cleanup_free_ char *file = NULL, *path = NULL, *text = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	const char *colon = strchr(ref, ':'), *name = colon ? colon + 1 : NULL;
	size_t cap = 0;

	file = colon ? strndup(ref, (size_t)(colon - ref)) : strdup(ref);
	if (!file || asprintf(&path, "%s/%s", srcdir, file) < 0)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!name)
		return 0;
	if (getdelim(&text, &cap, '\0', f) < 0)
		return 1;
	for (const char *p = text; (p = strstr(p, name)); p++)
		if ((p == text || !ident_char(p[-1])) && !ident_char(p[strlen(name)]))
			return 0;
	return 1;
}

__attribute__((format(printf, 4, 5))) static void say(struct ctx *x, bool finding, const char *path,
						      const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (finding)
		x->st->findings++;
	x->report(finding, path, msg, x->userdata);
}

static void lint_clause(struct ctx *x, const char *req, json_t *cl, const char *path,
			const struct hcase_set *set, json_t *faults)
{
	const char *text = json_string_value(json_object_get(cl, "clause"));
	const char *fault = json_string_value(json_object_get(cl, "fault"));
	const char *gap = json_string_value(json_object_get(cl, "gap"));
	json_t *checks = json_object_get(cl, "checks"), *tests = json_object_get(cl, "tests"), *e;
	bool fault_cased = false; /* the fault is the negative control of a named case */
	size_t i, good = 0;

	x->st->clauses++;
	json_array_foreach(checks, i, e)
	{
		const char *s = json_string_value(e), *hash = strchr(s, '#');
		size_t len = hash ? (size_t)(hash - s) : strlen(s);
		const struct hcase *c = find_case(set, s, len);
		char p[HJSON_PATH_MAX], q[HJSON_PATH_MAX];

		hjson_path_key(q, path, "checks");
		hjson_path_idx(p, q, i);
		if (!c) {
			say(x, true, p, "%s clause \"%s\": no case %.*s in the catalogue", req,
			    text, (int)len, s);
			continue;
		}
		if (!case_names(c, req)) {
			say(x, true, p,
			    "%s clause \"%s\": case %s does not list %s in its requirements", req,
			    text, c->id, req);
			continue;
		}
		if (hash && !hclause_path_exists(c, hash + 1)) {
			say(x, true, p, "%s clause \"%s\": case %s has no check %s", req, text,
			    c->id, hash + 1);
			continue;
		}
		if (fault && c->fault && strcmp(c->fault, fault) == 0)
			fault_cased = true;
		good++;
	}
	json_array_foreach(tests, i, e)
	{
		const char *ref = json_string_value(e), *colon = strchr(ref, ':');
		char p[HJSON_PATH_MAX], q[HJSON_PATH_MAX];
		int r = test_ref(x->srcdir, ref);

		hjson_path_key(q, path, "tests");
		hjson_path_idx(p, q, i);
		if (r > 0)
			say(x, true, p, "%s clause \"%s\": no test %s in %.*s", req, text,
			    colon + 1, (int)(colon - ref), ref);
		else if (r < 0)
			say(x, true, p, "%s clause \"%s\": test file %.*s: %s", req, text,
			    (int)strcspn(ref, ":"), ref, strerror(-r));
		else
			good++;
	}
	if (fault) {
		json_t *f = faults ? find_fault(faults, fault) : NULL;

		if (!f)
			say(x, true, path, "%s clause \"%s\": no fault %s in fixtures/faults.json",
			    req, text, fault);
		else if (!fault_names(f, req) && !fault_cased)
			say(x, true, path,
			    "%s clause \"%s\": fault %s neither lists %s nor is the fault of a "
			    "case the clause names",
			    req, text, fault, req);
	}
	if (good)
		x->st->checked++;
	else if (!json_array_size(checks) && !json_array_size(tests) && gap) {
		x->st->gaps++;
		say(x, false, path, "%s clause \"%s\" has no check (known gap: %s)", req, text,
		    gap);
	} else if (!json_array_size(checks) && !json_array_size(tests)) {
		say(x, true, path,
		    "%s clause \"%s\" names no case and no test; name one, or say why there is "
		    "none in \"gap\"",
		    req, text);
	}
}

int hclause_lint(json_t *map, const struct hspec *sp, const struct hcase_set *set, json_t *faults,
		 const char *srcdir, hclause_report_fn report, void *userdata,
		 struct hclause_stats *ret_stats)
{
	struct ctx x = { report, userdata, ret_stats, srcdir };
	json_t *reqs = json_object_get(map, "requirements"), *v;
	const char *id;

	memset(ret_stats, 0, sizeof(*ret_stats));
	for (size_t i = 0; i < sp->n; i++) {
		const struct hspec_req *q = &sp->reqs[i];
		json_t *cls = json_object_get(reqs, q->id);

		if (!hclause_req_mapped(q))
			continue;
		ret_stats->reqs++;
		if (!cls)
			say(&x, true, "$.requirements",
			    "%s (MUST, SPEC.md line %u) has no entry in the clause map", q->id,
			    q->line);
		else if (!json_array_size(cls))
			say(&x, true, "$.requirements", "%s has an entry without a clause", q->id);
		else
			ret_stats->mapped++;
	}
	json_object_foreach(reqs, id, v)
	{
		const struct hspec_req *q = hspec_find(sp, id);
		char p[HJSON_PATH_MAX];
		json_t *cl;
		size_t i;

		hjson_path_key(p, "$.requirements", id);
		if (!q || !hclause_req_mapped(q)) {
			say(&x, true, p, "%s is %s", id,
			    !q		   ? "not a requirement of SPEC.md"
			    : q->withdrawn ? "withdrawn"
			    : !q->in_body  ? "defined nowhere in SPEC.md's body"
					   : "not a MUST requirement; the map holds MUST ones");
			continue;
		}
		json_array_foreach(v, i, cl)
		{
			char c[HJSON_PATH_MAX];

			hjson_path_idx(c, p, i);
			lint_clause(&x, id, cl, c, set, faults);
		}
	}
	return 0;
}
