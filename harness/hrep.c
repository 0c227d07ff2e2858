// SPDX-License-Identifier: Apache-2.0
#include "hrep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hesc.h"
#include "hspec.h"
#include "util.h"

const char *const hrep_status_names[] = { "PASS", "FAIL", "SKIP", "ERROR", "XFAIL", "XPASS", NULL };

int hrep_status_from_name(const char *s)
{
	for (int i = 0; hrep_status_names[i]; i++)
		if (strcmp(hrep_status_names[i], s) == 0)
			return i;
	return -EINVAL;
}

void hrep_now(char buf[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		buf[0] = '\0';
	snprintf(buf + strlen(buf), 8, ".%03uZ", (unsigned int)(ts.tv_nsec / 1000000) % 1000u);
}

/*
 * The message prefixes of the runner's rooms (run_verdict(), hrun_int.h), hrun.c and hexpect.c,
 * by category. "link end " is covered by "link ", "wait:" by "wait"; "temp dir:" is the case's own
 * setup.
 */
static const struct {
	const char *prefix;
	const char *category;
} category_prefixes[] = {
	{ "leftover:", "leftover" }, { "TIMEOUT:", "timeout" },	  { "start ", "start" },
	{ "stop ", "stop" },	     { "client ", "client" },	  { "driver", "driver" },
	{ "upstream:", "upstream" }, { "upstream ", "upstream" }, { "namespace ", "setup" },
	{ "link ", "setup" },	     { "bridge ", "setup" },	  { "dummy link ", "setup" },
	{ "route ", "setup" },	     { "address ", "setup" },	  { "feed", "setup" },
	{ "file", "setup" },	     { "wait:", "setup" },	  { "wait ", "setup" },
	{ "step ", "setup" },	     { "temp dir:", "setup" },
};

const char *hrep_category(const char *message, char buf[HREP_CATEGORY_MAX])
{
	size_t n;

	if (!message)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(category_prefixes); i++)
		if (strncmp(message, category_prefixes[i].prefix,
			    strlen(category_prefixes[i].prefix)) == 0)
			return category_prefixes[i].category;
	if (strncmp(message, "expect.", 7) != 0)
		return "other";
	n = strcspn(message + 7, ".[ :");
	if (n == 0 || n > HREP_CATEGORY_MAX - 8)
		return "other";
	memcpy(buf, message, 7 + n);
	buf[7 + n] = '\0';
	return buf;
}

const char *hrep_case_category(const struct hrep_case *c, char buf[HREP_CATEGORY_MAX])
{
	if (c->n_problems)
		return hrep_category(c->problems[0].message, buf);
	if (c->status == HREP_FAIL || c->status == HREP_ERROR)
		return hrep_category(c->message, buf);
	return NULL;
}

struct hrep *hrep_new(void)
{
	return calloc(1, sizeof(struct hrep));
}

static void case_clear(struct hrep_case *c)
{
	free(c->id);
	free(c->title);
	free(c->component);
	for (size_t i = 0; i < c->n_reqs; i++)
		free(c->reqs[i].id);
	free(c->reqs);
	free(c->message);
	for (size_t i = 0; i < c->n_problems; i++)
		free(c->problems[i].message);
	free(c->problems);
	free(c->reason);
	free(c->artifacts);
	free(c->reproduce);
	free(c->category);
}

void hrep_free(struct hrep *r)
{
	if (!r)
		return;
	free(r->kernel_release);
	free(r->time_scale_from);
	free(r->kernel_config_sha256);
	free(r->harness_version);
	free(r->harness_git_revision);
	free(r->profile_name);
	free(r->profile_path);
	free(r->profile_sha256);
	for (size_t i = 0; i < r->n_files; i++) {
		free(r->files[i].component);
		free(r->files[i].role);
		free(r->files[i].path);
		free(r->files[i].sha256);
	}
	free(r->files);
	free(r->started_at);
	free(r->ended_at);
	for (size_t i = 0; i < r->n_cases; i++)
		case_clear(&r->cases[i]);
	free(r->cases);
	for (size_t i = 0; i < r->n_titles; i++) {
		free(r->titles[i].id);
		free(r->titles[i].title);
	}
	free(r->titles);
	free(r);
}

int hrep_set(char **field, const char *s)
{
	char *n = NULL;

	if (s) {
		n = hesc_utf8_clean(s);
		if (!n)
			return -ENOMEM;
	}
	free(*field);
	*field = n;
	return 0;
}

int hrep_case_add(struct hrep *r, const struct hrep_case *c)
{
	struct hrep_case *n, nc = { 0 };
	char cat[HREP_CATEGORY_MAX];
	int e = 0;

	n = realloc(r->cases, (r->n_cases + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->cases = n;
	nc.status = c->status;
	nc.duration_ms = c->duration_ms;
	nc.runs = c->runs;
	nc.flakes = c->flakes;
	nc.slowest_ms = c->slowest_ms;
	nc.deadline_ms = c->deadline_ms;
	e = e ?: hrep_set(&nc.id, c->id);
	e = e ?: hrep_set(&nc.title, c->title);
	e = e ?: hrep_set(&nc.component, c->component);
	e = e ?: hrep_set(&nc.message, c->message);
	e = e ?: hrep_set(&nc.reason, c->reason);
	e = e ?: hrep_set(&nc.artifacts, c->artifacts);
	e = e ?: hrep_set(&nc.reproduce, c->reproduce);
	/* Kept as the run wrote it; derived for a report from before categories. */
	e = e ?: hrep_set(&nc.category, c->category ?: hrep_case_category(c, cat));
	if (!e && c->n_problems) {
		nc.problems = calloc(c->n_problems, sizeof(*nc.problems));
		if (!nc.problems)
			e = -ENOMEM;
		for (size_t i = 0; !e && i < c->n_problems; i++) {
			nc.n_problems = i + 1;
			nc.problems[i].status = c->problems[i].status;
			e = hrep_set(&nc.problems[i].message, c->problems[i].message);
		}
	}
	if (!e && c->n_reqs) {
		nc.reqs = calloc(c->n_reqs, sizeof(*nc.reqs));
		if (!nc.reqs)
			e = -ENOMEM;
		for (size_t i = 0; !e && i < c->n_reqs; i++) {
			nc.n_reqs = i + 1;
			nc.reqs[i].level = c->reqs[i].level;
			e = hrep_set(&nc.reqs[i].id, c->reqs[i].id);
		}
	}
	if (e) {
		case_clear(&nc);
		return e;
	}
	r->cases[r->n_cases++] = nc;
	return 0;
}

int hrep_file_add(struct hrep *r, const char *component, const char *role, const char *path,
		  const char *sha256)
{
	struct hrep_file *n, nf = { 0 };
	int e = 0;

	n = realloc(r->files, (r->n_files + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->files = n;
	e = e ?: hrep_set(&nf.component, component);
	e = e ?: hrep_set(&nf.role, role);
	e = e ?: hrep_set(&nf.path, path);
	e = e ?: hrep_set(&nf.sha256, sha256);
	if (e) {
		free(nf.component);
		free(nf.role);
		free(nf.path);
		free(nf.sha256);
		return e;
	}
	r->files[r->n_files++] = nf;
	return 0;
}

const char *hrep_title(const struct hrep *r, const char *id)
{
	for (size_t i = 0; i < r->n_titles; i++)
		if (strcmp(r->titles[i].id, id) == 0)
			return r->titles[i].title;
	return NULL;
}

int hrep_title_set(struct hrep *r, const char *id, const char *title)
{
	struct hrep_title *n, nt = { 0 };
	int e = 0;

	for (size_t i = 0; i < r->n_titles; i++)
		if (strcmp(r->titles[i].id, id) == 0)
			return hrep_set(&r->titles[i].title, title);
	n = realloc(r->titles, (r->n_titles + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->titles = n;
	e = e ?: hrep_set(&nt.id, id);
	e = e ?: hrep_set(&nt.title, title);
	if (e) {
		free(nt.id);
		free(nt.title);
		return e;
	}
	r->titles[r->n_titles++] = nt;
	return 0;
}

int hrep_titles_from_spec(struct hrep *r, const char *spec_path)
{
	struct hspec *sp = NULL;
	int e;

	e = hspec_load(spec_path, &sp);
	if (e < 0)
		return e;
	for (size_t i = 0; e == 0 && i < r->n_cases; i++)
		for (size_t j = 0; e == 0 && j < r->cases[i].n_reqs; j++) {
			const char *id = r->cases[i].reqs[j].id;
			const struct hspec_req *q = hspec_find(sp, id);

			if (q && q->summary && !hrep_title(r, id))
				e = hrep_title_set(r, id, q->summary);
		}
	hspec_free(sp);
	return e;
}

const struct hrep_case *hrep_case_find(const struct hrep *r, const char *id)
{
	for (size_t i = 0; i < r->n_cases; i++)
		if (strcmp(r->cases[i].id, id) == 0)
			return &r->cases[i];
	return NULL;
}

enum hcase_level hrep_case_level(const struct hrep_case *c)
{
	enum hcase_level best = HCASE_MAY;

	for (size_t i = 0; i < c->n_reqs; i++)
		if (c->reqs[i].level < best)
			best = c->reqs[i].level;
	return best;
}

void hrep_count(const struct hrep *r, const char *component, int level, struct hrep_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];

		if (component && strcmp(c->component, component) != 0)
			continue;
		if (level >= 0 && (int)hrep_case_level(c) != level)
			continue;
		ret->total++;
		ret->n[c->status]++;
	}
}

bool hrep_failed(const struct hrep *r)
{
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct hrep_case *c = &r->cases[i];

		if (c->status == HREP_ERROR || c->status == HREP_XPASS)
			return true;
		if (c->status == HREP_FAIL && hrep_case_level(c) == HCASE_MUST)
			return true;
	}
	return false;
}

/* ---- report.json ---- */

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static int get_str(json_t *o, const char *path, const char *key, bool required, char **field,
		   struct hjson_err *err)
{
	const char *s = NULL;
	int r;

	r = hjson_str(o, path, key, required, &s, err);
	if (r < 0 || !s)
		return r;
	return hrep_set(field, s);
}

static int get_hash(json_t *o, const char *path, const char *key, char **field,
		    struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	int r;

	r = get_str(o, path, key, true, field, err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, key);
	if (strcmp(*field, "unavailable") != 0 && !hex64(*field))
		return hjson_fail(err, p, "expected 64 lowercase hex digits or \"unavailable\"");
	return 0;
}

/* An optional non-negative integer member (0 when absent). */
static int get_u64(json_t *o, const char *path, const char *key, uint64_t *ret,
		   struct hjson_err *err)
{
	json_t *v = json_object_get(o, key);
	char p[HJSON_PATH_MAX];

	if (!v)
		return 0;
	hjson_path_key(p, path, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return hjson_fail(err, p, "expected a non-negative integer");
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/* A case's "problems": each FAIL or ERROR with a message. */
static int load_problems(json_t *probs, const char *path, struct hrep_case *c,
			 struct hjson_err *err)
{
	static const char *const prob_keys[] = { "status", "message", NULL };
	size_t i;
	json_t *q;
	int r;

	if (json_array_size(probs)) {
		c->problems = calloc(json_array_size(probs), sizeof(*c->problems));
		if (!c->problems)
			return -ENOMEM;
	}
	json_array_foreach(probs, i, q)
	{
		char pi[HJSON_PATH_MAX], pp[HJSON_PATH_MAX];
		int ps = 0;

		hjson_path_key(pp, path, "problems");
		hjson_path_idx(pi, pp, i);
		c->n_problems = i + 1;
		r = hjson_only_keys(q, pi, prob_keys, err);
		r = r ?: hjson_enum(q, pi, "status", true, hrep_status_names, &ps, err);
		r = r ?: get_str(q, pi, "message", true, &c->problems[i].message, err);
		if (r < 0)
			return r;
		if (ps != HREP_FAIL && ps != HREP_ERROR) {
			hjson_path_key(pp, pi, "status");
			return hjson_fail(err, pp, "a problem is FAIL or ERROR");
		}
		c->problems[i].status = ps;
	}
	return 0;
}

/* A case's "requirements": IDs with their levels. */
static int load_reqs(json_t *reqs, const char *path, struct hrep_case *c, struct hjson_err *err)
{
	static const char *const req_keys[] = { "id", "level", NULL };
	char p[HJSON_PATH_MAX];
	size_t i;
	json_t *q;
	int r;

	hjson_path_key(p, path, "requirements");
	c->reqs = calloc(json_array_size(reqs) ?: 1, sizeof(*c->reqs));
	if (!c->reqs)
		return -ENOMEM;
	json_array_foreach(reqs, i, q)
	{
		char pi[HJSON_PATH_MAX];
		int level = 0;

		c->n_reqs = i + 1;
		hjson_path_idx(pi, p, i);
		r = hjson_only_keys(q, pi, req_keys, err);
		r = r ?: get_str(q, pi, "id", true, &c->reqs[i].id, err);
		r = r ?: hjson_enum(q, pi, "level", true, hcase_level_names, &level, err);
		if (r < 0)
			return r;
		c->reqs[i].level = level;
		if (!hcase_req_id_valid(c->reqs[i].id)) {
			char pid[HJSON_PATH_MAX];

			hjson_path_key(pid, pi, "id");
			return hjson_fail(err, pid, "\"%s\" is not a requirement ID",
					  c->reqs[i].id);
		}
	}
	return 0;
}

static int load_case(json_t *o, const char *path, struct hrep *rep, struct hjson_err *err)
{
	static const char *const keys[] = { "id",	 "title",      "component", "requirements",
					    "status",	 "durationMs", "message",   "reason",
					    "artifacts", "reproduce",  "runs",	    "flakes",
					    "problems",	 "category",   "slowestMs", "deadlineMs",
					    NULL };
	json_t *probs = NULL;
	struct hrep_case c = { 0 };
	char p[HJSON_PATH_MAX];
	json_t *reqs = NULL, *dur;
	int status = 0, r;

	r = hjson_only_keys(o, path, keys, err);
	r = r ?: get_str(o, path, "id", true, &c.id, err);
	r = r ?: get_str(o, path, "title", true, &c.title, err);
	r = r ?: get_str(o, path, "component", true, &c.component, err);
	r = r ?: hjson_arr(o, path, "requirements", true, &reqs, err);
	r = r ?: hjson_enum(o, path, "status", true, hrep_status_names, &status, err);
	r = r ?: get_str(o, path, "message", false, &c.message, err);
	r = r ?: get_str(o, path, "reason", false, &c.reason, err);
	r = r ?: get_str(o, path, "artifacts", false, &c.artifacts, err);
	r = r ?: get_str(o, path, "reproduce", false, &c.reproduce, err);
	r = r ?: get_str(o, path, "category", false, &c.category, err);
	r = r ?: hjson_u32(o, path, "runs", false, 1, UINT32_MAX, &c.runs, err);
	r = r ?: hjson_u32(o, path, "flakes", false, 0, UINT32_MAX, &c.flakes, err);
	r = r ?: hjson_arr(o, path, "problems", false, &probs, err);
	r = r ?: get_u64(o, path, "slowestMs", &c.slowest_ms, err);
	r = r ?: get_u64(o, path, "deadlineMs", &c.deadline_ms, err);
	if (r < 0)
		goto out;
	c.status = status;
	r = load_problems(probs, path, &c, err);
	if (r < 0)
		goto out;
	hjson_path_key(p, path, "id");
	if (!hcase_id_valid(c.id)) {
		r = hjson_fail(err, p, "\"%s\" is not a case ID", c.id);
		goto out;
	}
	hjson_path_key(p, path, "durationMs");
	dur = json_object_get(o, "durationMs");
	if (!json_is_integer(dur) || json_integer_value(dur) < 0) {
		r = hjson_fail(err, p, "expected a non-negative integer");
		goto out;
	}
	c.duration_ms = (uint64_t)json_integer_value(dur);
	if (!!json_object_get(o, "runs") != !!json_object_get(o, "flakes") || c.flakes > c.runs) {
		r = hjson_fail(err, path, "\"runs\" and \"flakes\" come together, flakes <= runs");
		goto out;
	}
	r = load_reqs(reqs, path, &c, err);
	if (r < 0)
		goto out;
	if (hrep_case_find(rep, c.id)) {
		hjson_path_key(p, path, "id");
		r = hjson_fail(err, p, "case \"%s\" appears twice", c.id);
		goto out;
	}
	r = hrep_case_add(rep, &c);
out:
	case_clear(&c);
	return r;
}

/* The profile's files: component, role, path and hash of each. */
static int load_files(json_t *files, struct hrep *rep, struct hjson_err *err)
{
	static const char *const file_keys[] = { "component", "role", "path", "sha256", NULL };
	size_t i;
	json_t *e;
	int r;

	json_array_foreach(files, i, e)
	{
		_cleanup_free_ char *comp = NULL, *role = NULL, *fpath = NULL, *hash = NULL;
		char pi[HJSON_PATH_MAX];

		hjson_path_idx(pi, "$.profile.files", i);
		r = hjson_only_keys(e, pi, file_keys, err);
		r = r ?: get_str(e, pi, "component", true, &comp, err);
		r = r ?: get_str(e, pi, "role", true, &role, err);
		r = r ?: get_str(e, pi, "path", true, &fpath, err);
		r = r ?: get_hash(e, pi, "sha256", &hash, err);
		r = r ?: hrep_file_add(rep, comp, role, fpath, hash);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "timing" (optional): the deadline factor and where it came from. */
static int load_timing(json_t *tm, struct hrep *rep, struct hjson_err *err)
{
	static const char *const timing_keys[] = { "scale", "source", NULL };
	json_t *sc = json_object_get(tm, "scale");
	int r;

	if (!tm)
		return 0;
	r = hjson_only_keys(tm, "$.timing", timing_keys, err);
	r = r ?: get_str(tm, "$.timing", "source", true, &rep->time_scale_from, err);
	if (r == 0 && (!json_is_number(sc) || json_number_value(sc) < 1.0))
		r = hjson_fail(err, "$.timing.scale", "expected a number >= 1");
	if (r < 0)
		return r;
	rep->time_scale = json_number_value(sc);
	return 0;
}

/* "requirements" (optional): requirement ID -> title. */
static int load_titles(json_t *titles, struct hrep *rep, struct hjson_err *err)
{
	const char *key;
	json_t *e;
	int r;

	json_object_foreach(titles, key, e)
	{
		char pk[HJSON_PATH_MAX];

		hjson_path_key(pk, "$.requirements", key);
		if (!hcase_req_id_valid(key))
			r = hjson_fail(err, pk, "\"%s\" is not a requirement ID", key);
		else if (!json_is_string(e))
			r = hjson_fail(err, pk, "expected a string");
		else
			r = hrep_title_set(rep, key, json_string_value(e));
		if (r < 0)
			return r;
	}
	return 0;
}

/* "shard" (optional): index of count. */
static int load_shard(json_t *sh, struct hrep *rep, struct hjson_err *err)
{
	static const char *const shard_keys[] = { "index", "count", NULL };
	int r;

	if (!sh)
		return 0;
	r = hjson_only_keys(sh, "$.shard", shard_keys, err);
	r = r ?: hjson_u32(sh, "$.shard", "count", true, 1, 100000, &rep->shard_count, err);
	r = r
		    ?: hjson_u32(sh, "$.shard", "index", true, 1, rep->shard_count,
				 &rep->shard_index, err);
	if (r < 0)
		return r;
	rep->has_shard = true;
	return 0;
}

int hrep_load(const char *path, struct hrep **ret, struct hjson_err *err)
{
	static const char *const keys[] = { "reportVersion", "kernel",	"harness",	"profile",
					    "startedAt",     "endedAt", "shard",	"summary",
					    "cases",	     "timing",	"requirements", NULL };
	static const char *const kernel_keys[] = { "release", "configSha256", NULL };
	static const char *const harness_keys[] = { "version", "gitRevision", NULL };
	static const char *const profile_keys[] = { "name", "path", "sha256", "files", NULL };
	json_t *doc = NULL, *k = NULL, *h = NULL, *pr = NULL, *sh = NULL, *files = NULL,
	       *cases = NULL, *sum = NULL, *tm = NULL, *titles = NULL, *e;
	struct hrep *rep = NULL;
	uint32_t version;
	size_t i;
	int r;

	r = hjson_load_file(path, &doc, err);
	if (r < 0)
		return r;
	rep = hrep_new();
	if (!rep) {
		r = -ENOMEM;
		goto out;
	}
	if (!json_is_object(doc)) {
		r = hjson_fail(err, "$", "expected a report object");
		goto out;
	}
	r = hjson_u32(doc, "$", "reportVersion", true, 0, UINT32_MAX, &version, err);
	if (r < 0)
		goto out;
	if (version != HREP_VERSION) {
		r = hjson_fail(err, "$.reportVersion",
			       "report version %u; this cellcheck reads version %d", version,
			       HREP_VERSION);
		goto out;
	}
	r = hjson_only_keys(doc, "$", keys, err);
	r = r ?: hjson_obj(doc, "$", "kernel", true, &k, err);
	r = r ?: hjson_obj(doc, "$", "harness", true, &h, err);
	r = r ?: hjson_obj(doc, "$", "profile", true, &pr, err);
	r = r ?: hjson_obj(doc, "$", "shard", false, &sh, err);
	r = r ?: hjson_obj(doc, "$", "summary", false, &sum, err);
	r = r ?: hjson_obj(doc, "$", "timing", false, &tm, err);
	r = r ?: hjson_arr(doc, "$", "cases", true, &cases, err);
	r = r ?: hjson_obj(doc, "$", "requirements", false, &titles, err);
	r = r ?: get_str(doc, "$", "startedAt", true, &rep->started_at, err);
	r = r ?: get_str(doc, "$", "endedAt", true, &rep->ended_at, err);
	r = r ?: hjson_only_keys(k, "$.kernel", kernel_keys, err);
	r = r ?: get_str(k, "$.kernel", "release", true, &rep->kernel_release, err);
	r = r ?: get_hash(k, "$.kernel", "configSha256", &rep->kernel_config_sha256, err);
	r = r ?: hjson_only_keys(h, "$.harness", harness_keys, err);
	r = r ?: get_str(h, "$.harness", "version", true, &rep->harness_version, err);
	r = r ?: get_str(h, "$.harness", "gitRevision", true, &rep->harness_git_revision, err);
	r = r ?: hjson_only_keys(pr, "$.profile", profile_keys, err);
	r = r ?: get_str(pr, "$.profile", "name", true, &rep->profile_name, err);
	r = r ?: get_str(pr, "$.profile", "path", true, &rep->profile_path, err);
	r = r ?: get_hash(pr, "$.profile", "sha256", &rep->profile_sha256, err);
	r = r ?: hjson_arr(pr, "$.profile", "files", true, &files, err);
	r = r ?: load_files(files, rep, err);
	r = r ?: load_timing(tm, rep, err);
	r = r ?: load_titles(titles, rep, err);
	r = r ?: load_shard(sh, rep, err);
	if (r < 0)
		goto out;
	json_array_foreach(cases, i, e)
	{
		char pi[HJSON_PATH_MAX];

		hjson_path_idx(pi, "$.cases", i);
		r = load_case(e, pi, rep, err);
		if (r < 0)
			goto out;
	}
	/* The summary is derived; it is rewritten on save and never trusted on load. */
	*ret = TAKE_PTR(rep);
out:
	hrep_free(rep);
	json_decref(doc);
	return r;
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* One case of report.json (SPEC 10.6); NULL when out of memory. */
static json_t *case_to_json(const struct hrep_case *c)
{
	json_t *o, *reqs = json_array();
	int e = 0;

	for (size_t j = 0; reqs && j < c->n_reqs; j++)
		e |= json_array_append_new(reqs,
					   json_pack("{s:s, s:s}", "id", c->reqs[j].id, "level",
						     hcase_level_names[c->reqs[j].level]));
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I}", "id", c->id, "title", c->title, "component",
		      c->component, "requirements", reqs, "status", hrep_status_names[c->status],
		      "durationMs", (json_int_t)c->duration_ms);
	if (!o)
		return NULL;
	if (c->message)
		e |= json_object_set_new(o, "message", json_string(c->message));
	if (c->n_problems) {
		json_t *pa = json_array();

		for (size_t j = 0; pa && j < c->n_problems; j++)
			e |= json_array_append_new(
				pa, json_pack("{s:s, s:s}", "status",
					      hrep_status_names[c->problems[j].status], "message",
					      c->problems[j].message ?: ""));
		e |= json_object_set_new(o, "problems", pa ?: json_array());
	}
	if (c->category)
		e |= json_object_set_new(o, "category", json_string(c->category));
	if (c->reason)
		e |= json_object_set_new(o, "reason", json_string(c->reason));
	if (c->artifacts)
		e |= json_object_set_new(o, "artifacts", json_string(c->artifacts));
	if (c->reproduce)
		e |= json_object_set_new(o, "reproduce", json_string(c->reproduce));
	if (c->runs) {
		e |= json_object_set_new(o, "runs", json_integer(c->runs));
		e |= json_object_set_new(o, "flakes", json_integer(c->flakes));
	}
	if (c->deadline_ms) {
		e |= json_object_set_new(o, "slowestMs", json_integer((json_int_t)c->slowest_ms));
		e |= json_object_set_new(o, "deadlineMs", json_integer((json_int_t)c->deadline_ms));
	}
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *to_json(const struct hrep *r)
{
	json_t *doc, *files, *cases, *sum;
	struct hrep_counts counts;
	int e = 0;

	doc = json_object();
	files = json_array();
	cases = json_array();
	sum = json_object();
	if (!doc || !files || !cases || !sum) {
		json_decref(doc);
		json_decref(files);
		json_decref(cases);
		json_decref(sum);
		return NULL;
	}
	e |= json_object_set_new(doc, "reportVersion", json_integer(HREP_VERSION));
	e |= json_object_set_new(doc, "kernel",
				 json_pack("{s:s?, s:s?}", "release", r->kernel_release,
					   "configSha256", r->kernel_config_sha256));
	if (r->time_scale >= 1.0)
		e |= json_object_set_new(doc, "timing",
					 json_pack("{s:f, s:s?}", "scale", r->time_scale, "source",
						   r->time_scale_from));
	e |= json_object_set_new(doc, "harness",
				 json_pack("{s:s?, s:s?}", "version", r->harness_version,
					   "gitRevision", r->harness_git_revision));
	for (size_t i = 0; i < r->n_files; i++)
		e |= json_array_append_new(
			files, json_pack("{s:s, s:s, s:s, s:s}", "component", r->files[i].component,
					 "role", r->files[i].role, "path", r->files[i].path,
					 "sha256", r->files[i].sha256));
	e |= json_object_set_new(doc, "profile",
				 json_pack("{s:s?, s:s?, s:s?, s:o}", "name", r->profile_name,
					   "path", r->profile_path, "sha256", r->profile_sha256,
					   "files", files));
	e |= json_object_set_new(doc, "startedAt", jstr(r->started_at));
	e |= json_object_set_new(doc, "endedAt", jstr(r->ended_at));
	if (r->has_shard)
		e |= json_object_set_new(doc, "shard",
					 json_pack("{s:i, s:i}", "index", (int)r->shard_index,
						   "count", (int)r->shard_count));
	hrep_count(r, NULL, -1, &counts);
	for (int s = 0; s < _HREP_STATUS_MAX; s++)
		e |= json_object_set_new(sum, hrep_status_names[s],
					 json_integer((json_int_t)counts.n[s]));
	e |= json_object_set_new(sum, "total", json_integer((json_int_t)r->n_cases));
	e |= json_object_set_new(sum, "verdict", json_string(hrep_failed(r) ? "FAIL" : "PASS"));
	e |= json_object_set_new(doc, "summary", sum);
	for (size_t i = 0; !e && i < r->n_cases; i++) {
		json_t *o = case_to_json(&r->cases[i]);

		e = o ? json_array_append_new(cases, o) : -1;
	}
	e |= json_object_set_new(doc, "cases", cases);
	if (r->n_titles) {
		json_t *t = json_object();

		for (size_t i = 0; t && i < r->n_titles; i++)
			e |= json_object_set_new(t, r->titles[i].id,
						 json_string(r->titles[i].title));
		e |= json_object_set_new(doc, "requirements", t ?: json_object());
	}
	if (e) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

int hrep_atomic_write(const char *path, int (*fn)(const void *arg, FILE *f, const void *arg2),
		      const void *arg, const void *arg2)
{
	_cleanup_free_ char *tmp = NULL;
	FILE *f;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	(void)fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	r = fn(arg, f, arg2);
	if (r >= 0 && (fflush(f) != 0 || ferror(f)))
		r = -EIO;
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r < 0 ? r : 0;
}

static int dump_json(const void *arg, FILE *f, const void *unused)
{
	json_t *doc = to_json(arg);
	int r;

	if (!doc)
		return -ENOMEM;
	r = json_dumpf(doc, f, JSON_INDENT(2)) == 0 ? 0 : -EIO;
	fputc('\n', f);
	json_decref(doc);
	return r;
}

int hrep_save(const struct hrep *r, const char *path)
{
	return hrep_atomic_write(path, dump_json, r, NULL);
}

/* ---- compare ---- */

static bool is_bad(enum hrep_status s)
{
	return s == HREP_FAIL || s == HREP_ERROR;
}

static void line(FILE *out, const char *tag, const struct hrep_case *o, const struct hrep_case *n)
{
	const struct hrep_case *c = n ?: o;

	fprintf(out, "  %-10s %s: %s -> %s", tag, c->id, o ? hrep_status_names[o->status] : "-",
		n ? hrep_status_names[n->status] : "-");
	if (n && n->message && (is_bad(n->status) || n->status == HREP_XPASS))
		fprintf(out, " (%s)", n->message);
	else if (n && n->reason && n->status == HREP_SKIP)
		fprintf(out, " (%s)", n->reason);
	fputc('\n', out);
}

int hrep_compare(const struct hrep *old, const struct hrep *new, FILE *out)
{
	enum { REG, FIX, NEW, GONE, CHANGED, _KINDS };
	static const char *const titles[_KINDS] = { "regressions", "fixes", "new cases",
						    "removed cases", "other status changes" };
	static const char *const tags[_KINDS] = { "REGRESSION", "FIXED", "NEW", "REMOVED",
						  "CHANGED" };
	size_t n[_KINDS] = { 0 };

	/* What changed underneath first: it usually explains everything below it. */
	if (strcmp(old->kernel_release, new->kernel_release) != 0)
		fprintf(out, "kernel: %s -> %s\n", old->kernel_release, new->kernel_release);
	else
		fprintf(out, "kernel: %s (unchanged)\n", new->kernel_release);
	if (strcmp(old->kernel_config_sha256, new->kernel_config_sha256) != 0)
		fprintf(out, "kernel config: %s -> %s\n", old->kernel_config_sha256,
			new->kernel_config_sha256);
	else
		fprintf(out, "kernel config: unchanged\n");
	if (strcmp(old->harness_version, new->harness_version) ||
	    strcmp(old->harness_git_revision, new->harness_git_revision))
		fprintf(out, "harness: %s (%s) -> %s (%s)\n", old->harness_version,
			old->harness_git_revision, new->harness_version, new->harness_git_revision);
	if (strcmp(old->profile_name, new->profile_name) ||
	    strcmp(old->profile_sha256, new->profile_sha256))
		fprintf(out, "profile: %s -> %s\n", old->profile_name, new->profile_name);
	for (size_t i = 0; i < new->n_files; i++) {
		const struct hrep_file *f = &new->files[i];

		for (size_t j = 0; j < old->n_files; j++) {
			const struct hrep_file *g = &old->files[j];

			if (strcmp(f->component, g->component) == 0 &&
			    strcmp(f->role, g->role) == 0 && strcmp(f->sha256, g->sha256) != 0)
				fprintf(out, "%s %s changed: %s\n", f->component, f->role, f->path);
		}
	}

	for (int kind = 0; kind < _KINDS; kind++) {
		bool header = false;

		for (size_t i = 0; i < new->n_cases + old->n_cases; i++) {
			const struct hrep_case *o, *nw;
			int k;

			if (i < new->n_cases) {
				nw = &new->cases[i];
				o = hrep_case_find(old, nw->id);
			} else {
				o = &old->cases[i - new->n_cases];
				if (hrep_case_find(new, o->id))
					continue;
				nw = NULL;
			}
			if (!o)
				k = NEW;
			else if (!nw)
				k = GONE;
			else if (o->status == HREP_PASS && is_bad(nw->status))
				k = REG;
			else if (is_bad(o->status) && nw->status == HREP_PASS)
				k = FIX;
			else if (o->status != nw->status)
				k = CHANGED;
			else
				continue;
			if (k != kind)
				continue;
			if (!header) {
				fprintf(out, "%s:\n", titles[kind]);
				header = true;
			}
			line(out, tags[kind], o, nw);
			n[kind]++;
		}
	}
	fprintf(out,
		"summary: %zu regressions, %zu fixes, %zu new, %zu removed, %zu other changes "
		"(%zu cases before, %zu now)\n",
		n[REG], n[FIX], n[NEW], n[GONE], n[CHANGED], old->n_cases, new->n_cases);
	return (int)n[REG];
}

/* ---- merge ---- */

__attribute__((format(printf, 3, 4))) static int merr(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int hrep_merge(struct hrep *const *in, size_t n, struct hrep **ret, char *errbuf, size_t errlen)
{
	const struct hrep *a = in[0];
	struct hrep *m;
	bool seen[4096] = { false };
	int r = 0;

	if (n == 0)
		return merr(errbuf, errlen, "nothing to merge");
	for (size_t i = 1; i < n; i++) {
		const struct hrep *b = in[i];

		if (strcmp(a->harness_version, b->harness_version) ||
		    strcmp(a->harness_git_revision, b->harness_git_revision))
			return merr(errbuf, errlen, "input %zu: harness %s (%s), input 1: %s (%s)",
				    i + 1, b->harness_version, b->harness_git_revision,
				    a->harness_version, a->harness_git_revision);
		if (strcmp(a->profile_name, b->profile_name) ||
		    strcmp(a->profile_sha256, b->profile_sha256))
			return merr(errbuf, errlen,
				    "input %zu: profile %s (sha256 %.12s), input 1: %s (%.12s)",
				    i + 1, b->profile_name, b->profile_sha256, a->profile_name,
				    a->profile_sha256);
		/* One report describes one kernel; compare relies on it. */
		if (strcmp(a->kernel_release, b->kernel_release) ||
		    strcmp(a->kernel_config_sha256, b->kernel_config_sha256))
			return merr(errbuf, errlen, "input %zu: kernel %s, input 1: kernel %s",
				    i + 1, b->kernel_release, a->kernel_release);
	}
	for (size_t i = 0; i < n; i++) {
		const struct hrep *b = in[i];

		if (!b->has_shard)
			continue;
		if (b->shard_count != a->shard_count || !a->has_shard)
			return merr(errbuf, errlen,
				    "input %zu: shard %u/%u does not fit the others", i + 1,
				    b->shard_index, b->shard_count);
		if (b->shard_index < ARRAY_SIZE(seen)) {
			if (seen[b->shard_index])
				return merr(errbuf, errlen, "input %zu: shard %u/%u given twice",
					    i + 1, b->shard_index, b->shard_count);
			seen[b->shard_index] = true;
		}
	}

	m = hrep_new();
	if (!m)
		return -ENOMEM;
	r = r ?: hrep_set(&m->kernel_release, a->kernel_release);
	r = r ?: hrep_set(&m->kernel_config_sha256, a->kernel_config_sha256);
	r = r ?: hrep_set(&m->time_scale_from, a->time_scale_from);
	m->time_scale = a->time_scale;
	r = r ?: hrep_set(&m->harness_version, a->harness_version);
	r = r ?: hrep_set(&m->harness_git_revision, a->harness_git_revision);
	r = r ?: hrep_set(&m->profile_name, a->profile_name);
	r = r ?: hrep_set(&m->profile_path, a->profile_path);
	r = r ?: hrep_set(&m->profile_sha256, a->profile_sha256);
	r = r ?: hrep_set(&m->started_at, a->started_at);
	r = r ?: hrep_set(&m->ended_at, a->ended_at);
	for (size_t i = 0; r == 0 && i < a->n_files; i++)
		r = hrep_file_add(m, a->files[i].component, a->files[i].role, a->files[i].path,
				  a->files[i].sha256);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct hrep *b = in[i];

		for (size_t j = 0; r == 0 && j < b->n_titles; j++)
			if (!hrep_title(m, b->titles[j].id))
				r = hrep_title_set(m, b->titles[j].id, b->titles[j].title);
		/* RFC 3339 UTC timestamps of one format order as strings. */
		if (strcmp(b->started_at, m->started_at) < 0)
			r = hrep_set(&m->started_at, b->started_at);
		if (r == 0 && strcmp(b->ended_at, m->ended_at) > 0)
			r = hrep_set(&m->ended_at, b->ended_at);
		for (size_t j = 0; r == 0 && j < b->n_cases; j++) {
			const struct hrep_case *c = &b->cases[j], *prev = hrep_case_find(m, c->id);

			if (prev && prev->status != c->status)
				r = merr(errbuf, errlen,
					 "case %s is %s in one input and %s in input %zu", c->id,
					 hrep_status_names[prev->status],
					 hrep_status_names[c->status], i + 1);
			else if (!prev)
				r = hrep_case_add(m, c);
		}
	}
	if (r < 0) {
		hrep_free(m);
		return r;
	}
	if (a->has_shard)
		for (uint32_t k = 1; k <= a->shard_count && k < ARRAY_SIZE(seen); k++)
			if (!seen[k]) {
				/* Not fatal: a CI may merge what it has, but say so. */
				snprintf(errbuf, errlen, "shard %u/%u missing", k, a->shard_count);
				break;
			}
	*ret = m;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double hrep_deadline_median(const struct hrep *r, size_t *ret_n)
{
	_cleanup_free_ double *v = calloc(r->n_cases ?: 1, sizeof(*v));
	size_t n = 0;

	*ret_n = 0;
	if (!v)
		return -1;
	for (size_t i = 0; i < r->n_cases; i++)
		if (r->cases[i].deadline_ms && r->cases[i].status != HREP_SKIP)
			v[n++] = 100.0 * (double)r->cases[i].slowest_ms /
				 (double)r->cases[i].deadline_ms;
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), cmp_double);
	*ret_n = n;
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
