// SPDX-License-Identifier: Apache-2.0
/* Reports: escaping of hostile strings per format, the JSON round trip, the verdict rule,
 * compare (regressions, fixes, new, removed) and merge (conflicts, shards). */
#include "hesc.h"
#include "hrep.h"
#include "htest.h"
#include "tap.h"
#include "util.h"

/* Everything a message must not break: markup, quotes, controls, invalid UTF-8. */
static const char HOSTILE[] = "<script src=\"http://x/y.js\"></script>&amp; ]]> \"'` | *a* "
			      "[l](javascript:alert(1)) # \x01\x1b[31m\x7f \xff\xfe \xc0\xaf "
			      "\xed\xa0\x80 caf\xc3\xa9 \xe2\x82\xac\nline2\r\n\tend \\";

static char *capture(void (*fn)(FILE *, const char *), const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fn(f, s);
	fclose(f);
	return buf;
}

static bool valid_utf8_no_controls(const char *s, const char *allowed)
{
	while (*s) {
		uint32_t cp;
		int n = hesc_utf8_next(s, &cp);

		if (n == 0)
			return false;
		if (cp < 0x20 && !strchr(allowed, (int)cp))
			return false;
		if (cp >= 0x7F && cp <= 0x9F)
			return false;
		s += n;
	}
	return true;
}

static bool valid_utf8(const char *s)
{
	uint32_t cp;
	int n;

	for (; *s; s += n)
		if ((n = hesc_utf8_next(s, &cp)) == 0)
			return false;
	return true;
}

TEST(utf8_decoder)
{
	uint32_t cp;

	ASSERT_EQ(hesc_utf8_next("\xc3\xa9", &cp), 2);
	ASSERT_EQ(cp, 0xE9);
	ASSERT_EQ(hesc_utf8_next("\xf0\x9f\x98\x80", &cp), 4);
	ASSERT_EQ(cp, 0x1F600);
	ASSERT_EQ(hesc_utf8_next("\xc0\xaf", &cp), 0);	       /* overlong */
	ASSERT_EQ(hesc_utf8_next("\xed\xa0\x80", &cp), 0);     /* surrogate */
	ASSERT_EQ(hesc_utf8_next("\xf4\x90\x80\x80", &cp), 0); /* > U+10FFFF */
	ASSERT_EQ(hesc_utf8_next("\xe2\x82", &cp), 0);	       /* truncated at NUL */
	ASSERT_EQ(hesc_utf8_next("\x80", &cp), 0);
}

TEST(hostile_strings_escaped_per_format)
{
	_cleanup_free_ char *clean = hesc_utf8_clean(HOSTILE);
	_cleanup_free_ char *xml = capture(hesc_xml, HOSTILE);
	_cleanup_free_ char *md = capture(hesc_md, HOSTILE);
	_cleanup_free_ char *yaml = capture(hesc_yaml, HOSTILE);
	_cleanup_free_ char *tap = capture(hesc_tap, HOSTILE);
	_cleanup_free_ char *url = capture(hesc_url, "a b/../c:d?e#f\xff");

	if (!ASSERT_TRUE(clean && xml && md && yaml && tap && url))
		return;
	ASSERT_TRUE(valid_utf8(clean));
	ASSERT_TRUE(strstr(clean, "caf\xc3\xa9") != NULL);
	ASSERT_TRUE(strstr(clean, "\xef\xbf\xbd\xef\xbf\xbd") != NULL); /* \xff\xfe */

	ASSERT_TRUE(valid_utf8_no_controls(xml, ""));
	ASSERT_TRUE(strchr(xml, '<') == NULL);
	ASSERT_TRUE(strchr(xml, '>') == NULL);
	ASSERT_TRUE(strchr(xml, '"') == NULL);
	ASSERT_TRUE(strchr(xml, '\'') == NULL);
	ASSERT_TRUE(strstr(xml, "&lt;script") != NULL);
	ASSERT_TRUE(strstr(xml, "&amp;amp;") != NULL);
	ASSERT_TRUE(strstr(xml, "&#10;line2") != NULL);
	ASSERT_TRUE(strstr(xml, "caf\xc3\xa9 \xe2\x82\xac") != NULL);

	ASSERT_TRUE(valid_utf8_no_controls(md, ""));
	ASSERT_TRUE(strchr(md, '<') == NULL);
	ASSERT_TRUE(strchr(md, '\n') == NULL);
	ASSERT_TRUE(strstr(md, "\\|") != NULL);
	ASSERT_TRUE(strstr(md, "\\[l\\]\\(") != NULL);
	ASSERT_TRUE(strstr(md, "\\*a\\*") != NULL);

	ASSERT_TRUE(valid_utf8_no_controls(yaml, ""));
	ASSERT_EQ(yaml[0], '"');
	ASSERT_EQ(yaml[strlen(yaml) - 1], '"');
	ASSERT_TRUE(strstr(yaml, "\\nline2") != NULL);
	ASSERT_TRUE(strstr(yaml, "\\\"http") != NULL);
	ASSERT_TRUE(strstr(yaml, "end \\\\\"") != NULL);

	ASSERT_TRUE(valid_utf8_no_controls(tap, ""));
	ASSERT_TRUE(strstr(tap, "\\#") != NULL);

	ASSERT_STREQ(url, "a%20b/../c%3Ad%3Fe%23f%FF");
}

static void fill(struct hrep *r, const char *kernel)
{
	hrep_set(&r->kernel_release, kernel);
	hrep_set(&r->kernel_config_sha256, "unavailable");
	hrep_set(&r->harness_version, "0.1.0");
	hrep_set(&r->harness_git_revision, "abc");
	hrep_set(&r->profile_name, "reference");
	hrep_set(&r->profile_path, "fixtures/profiles/reference.json");
	hrep_set(&r->profile_sha256,
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hrep_set(&r->started_at, "2026-01-01T00:00:00Z");
	hrep_set(&r->ended_at, "2026-01-01T00:01:00Z");
}

static void add(struct hrep *r, const char *id, enum hrep_status st, enum hcase_level level,
		const char *msg)
{
	struct hrep_req q = { .id = (char *)"FLOW-REC-001", .level = level };
	struct hrep_case c = {
		.id = (char *)id,
		.title = (char *)"t",
		.component = (char *)"decoder",
		.reqs = &q,
		.n_reqs = 1,
		.status = st,
		.duration_ms = 5,
		.message = (char *)msg,
	};

	hrep_case_add(r, &c);
}

TEST(json_round_trip_keeps_everything)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *path = NULL;
	struct hrep *r = hrep_new(), *back = NULL;
	struct hjson_err err = { 0 };
	struct hrep_case c = { 0 };

	if (!ASSERT_TRUE(r && dir) || asprintf(&path, "%s/report.json", dir) < 0)
		return;
	fill(r, "6.1.0-test");
	r->has_shard = true;
	r->shard_index = 2;
	r->shard_count = 3;
	hrep_file_add(r, "decoder", "binary", "/b/ref/cellref",
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	add(r, "a.one", HREP_FAIL, HCASE_MUST, HOSTILE);
	c = r->cases[0];
	ASSERT_TRUE(valid_utf8(c.message));
	r->cases[0].runs = 5;
	r->cases[0].flakes = 2;
	hrep_set(&r->cases[0].artifacts, "artifacts/a.one");
	hrep_set(&r->cases[0].reproduce, "cellcheck run --filter 'a.one'");
	add(r, "a.two", HREP_SKIP, HCASE_SHOULD, NULL);
	hrep_set(&r->cases[1].reason, "needs tool:kdig");
	if (!ASSERT_OK(hrep_save(r, path)))
		return;
	if (!ASSERT_OK(hrep_load(path, &back, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(back->kernel_release, "6.1.0-test");
	ASSERT_TRUE(back->has_shard);
	ASSERT_EQ(back->shard_index, 2);
	ASSERT_EQ(back->n_files, 1);
	ASSERT_EQ(back->n_cases, 2);
	ASSERT_STREQ(back->cases[0].message, r->cases[0].message);
	ASSERT_EQ(back->cases[0].runs, 5);
	ASSERT_EQ(back->cases[0].flakes, 2);
	ASSERT_EQ(back->cases[1].reqs[0].level, HCASE_SHOULD);
	ASSERT_STREQ(back->cases[1].reason, "needs tool:kdig");
	ASSERT_EQ(back->cases[0].duration_ms, 5);
	hrep_free(back);
	hrep_free(r);
}

/* Issue 13: the slowest run against the deadline, kept by report.json, ranked in report.md. */
TEST(deadline_margin_kept_and_ranked)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *path = NULL;
	struct hrep *r = hrep_new(), *back = NULL;
	struct hjson_err err = { 0 };
	char *md = NULL, *a, *b;
	size_t len = 0;
	FILE *f;

	if (!ASSERT_TRUE(r && dir) || asprintf(&path, "%s/report.json", dir) < 0)
		return;
	fill(r, "k");
	add(r, "a.fast", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.tight", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.old", HREP_PASS, HCASE_MUST, NULL); /* no deadline recorded: not ranked */
	r->cases[0].slowest_ms = 900, r->cases[0].deadline_ms = 10000;
	r->cases[1].slowest_ms = 800, r->cases[1].deadline_ms = 1000;
	if (!ASSERT_OK(hrep_save(r, path)) || !ASSERT_OK(hrep_load(path, &back, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_EQ(back->cases[1].slowest_ms, 800);
	ASSERT_EQ(back->cases[1].deadline_ms, 1000);
	ASSERT_EQ(back->cases[2].deadline_ms, 0);
	f = open_memstream(&md, &len);
	if (!ASSERT_TRUE(f))
		return;
	ASSERT_OK(hrep_write_md(back, f, ""));
	fclose(f);
	a = strstr(md, "| a.tight | 800 ms | 1000 ms | 80% |");
	b = strstr(md, "| a.fast | 900 ms | 10000 ms | 9% |");
	ASSERT_TRUE(a && b && a < b);
	/* Median of 80% and 9% (a.old has no deadline): 44.5%, printed rounded. */
	ASSERT_TRUE(strstr(md, "Median use of the deadline: 44% over 2 cases.") ||
		    strstr(md, "Median use of the deadline: 45% over 2 cases."));
	/* The section ends at the next heading; a.old is not in it. */
	a = strstr(md, "## Closest to their deadline");
	b = a ? strstr(a + 2, "\n## ") : NULL;
	if (ASSERT_TRUE(a && b)) {
		*b = '\0';
		ASSERT_TRUE(strstr(a, "a.old") == NULL);
	}
	free(md);
	hrep_free(back);
	hrep_free(r);
}

TEST(deadline_median)
{
	struct hrep *r = hrep_new();
	size_t n = 99;

	if (!ASSERT_TRUE(r))
		return;
	fill(r, "k");
	ASSERT_TRUE(hrep_deadline_median(r, &n) < 0);
	ASSERT_EQ(n, 0);
	add(r, "a.one", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.two", HREP_FAIL, HCASE_MUST, NULL);
	add(r, "a.three", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.skip", HREP_SKIP, HCASE_MUST, NULL); /* a deadline, but skipped: left out */
	r->cases[0].slowest_ms = 100, r->cases[0].deadline_ms = 1000; /* 10% */
	r->cases[1].slowest_ms = 900, r->cases[1].deadline_ms = 1000; /* 90% */
	r->cases[2].slowest_ms = 300, r->cases[2].deadline_ms = 1000; /* 30% */
	r->cases[3].slowest_ms = 1000, r->cases[3].deadline_ms = 1000;
	ASSERT_TRUE(hrep_deadline_median(r, &n) == 30.0);
	ASSERT_EQ(n, 3);
	hrep_free(r);
}

TEST(loader_rejects_bad_reports_with_paths)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	static const struct {
		const char *text, *path, *msg;
	} bad[] = {
		{ "{\"reportVersion\": 2}", "$.reportVersion", "version 2" },
		{ "[]", "$", "expected a report object" },
		{ "{\"reportVersion\": 1, \"kernel\": {\"release\": \"x\", \"configSha256\": \"zz\"}, "
		  "\"harness\": {\"version\": \"1\", \"gitRevision\": \"a\"}, \"profile\": {\"name\": "
		  "\"p\", \"path\": \"p\", \"sha256\": \"unavailable\", \"files\": []}, \"startedAt\": "
		  "\"s\", \"endedAt\": \"e\", \"cases\": []}",
		  "$.kernel.configSha256", "64 lowercase hex" },
		{ "{\"reportVersion\": 1, \"kernel\": {\"release\": \"x\", \"configSha256\": "
		  "\"unavailable\"}, \"harness\": {\"version\": \"1\", \"gitRevision\": \"a\"}, "
		  "\"profile\": {\"name\": \"p\", \"path\": \"p\", \"sha256\": \"unavailable\", "
		  "\"files\": []}, \"startedAt\": \"s\", \"endedAt\": \"e\", \"cases\": [{\"id\": "
		  "\"a.b\", \"title\": \"t\", \"component\": \"decoder\", \"requirements\": [], "
		  "\"status\": \"BROKEN\", \"durationMs\": 1}]}",
		  "$.cases[0].status", "is not one of" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *path = htest_write(dir, "r.json", bad[i].text);
		struct hjson_err err = { 0 };
		struct hrep *r = NULL;

		ASSERT_ERR(hrep_load(path, &r, &err), -EINVAL);
		ASSERT_STREQ(err.path, bad[i].path);
		tap_check(strstr(err.msg, bad[i].msg) != NULL, __FILE__, __LINE__,
			  "\"%s\" has \"%s\"", err.msg, bad[i].msg);
	}
}

TEST(verdict_rule)
{
	struct hrep *r = hrep_new();

	fill(r, "k");
	add(r, "a.pass", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.skip", HREP_SKIP, HCASE_MUST, NULL);
	add(r, "a.xfail", HREP_XFAIL, HCASE_MUST, NULL);
	add(r, "a.should", HREP_FAIL, HCASE_SHOULD, "warning only");
	ASSERT_FALSE(hrep_failed(r));
	add(r, "a.must", HREP_FAIL, HCASE_MUST, "m");
	ASSERT_TRUE(hrep_failed(r));
	r->cases[4].status = HREP_XPASS;
	ASSERT_TRUE(hrep_failed(r));
	r->cases[4].status = HREP_ERROR;
	r->cases[4].reqs[0].level = HCASE_MAY;
	ASSERT_TRUE(hrep_failed(r));
	hrep_free(r);
}

TEST(compare_counts_regressions)
{
	struct hrep *a = hrep_new(), *b = hrep_new();
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	fill(a, "6.1.0");
	fill(b, "6.6.0");
	add(a, "c.reg", HREP_PASS, HCASE_MUST, NULL);
	add(b, "c.reg", HREP_FAIL, HCASE_MUST, "wrong port");
	add(a, "c.err", HREP_PASS, HCASE_MUST, NULL);
	add(b, "c.err", HREP_ERROR, HCASE_MUST, "timeout");
	add(a, "c.fix", HREP_FAIL, HCASE_MUST, "x");
	add(b, "c.fix", HREP_PASS, HCASE_MUST, NULL);
	add(a, "c.gone", HREP_PASS, HCASE_MUST, NULL);
	add(b, "c.new", HREP_PASS, HCASE_MUST, NULL);
	add(a, "c.skip", HREP_PASS, HCASE_MUST, NULL);
	add(b, "c.skip", HREP_SKIP, HCASE_MUST, NULL);
	ASSERT_EQ(hrep_compare(a, b, f), 2);
	fclose(f);
	ASSERT_EQ(strncmp(out, "kernel: 6.1.0 -> 6.6.0\n", 23), 0);
	ASSERT_TRUE(strstr(out, "REGRESSION c.reg: PASS -> FAIL (wrong port)") != NULL);
	ASSERT_TRUE(strstr(out, "REGRESSION c.err: PASS -> ERROR") != NULL);
	ASSERT_TRUE(strstr(out, "FIXED      c.fix: FAIL -> PASS") != NULL);
	ASSERT_TRUE(strstr(out, "NEW        c.new: - -> PASS") != NULL);
	ASSERT_TRUE(strstr(out, "REMOVED    c.gone: PASS -> -") != NULL);
	ASSERT_TRUE(strstr(out, "CHANGED    c.skip: PASS -> SKIP") != NULL);
	free(out);
	/* The other way round: c.fix becomes the one regression. */
	f = open_memstream(&out, &len);
	ASSERT_EQ(hrep_compare(b, a, f), 1);
	fclose(f);
	free(out);
	hrep_free(a);
	hrep_free(b);
}

TEST(merge_rules)
{
	struct hrep *a = hrep_new(), *b = hrep_new(), *c = hrep_new(), *m = NULL;
	char msg[256] = "";

	fill(a, "k");
	fill(b, "k");
	fill(c, "k");
	a->has_shard = b->has_shard = c->has_shard = true;
	a->shard_count = b->shard_count = c->shard_count = 3;
	a->shard_index = 1;
	b->shard_index = 2;
	c->shard_index = 3;
	hrep_set(&b->ended_at, "2026-01-01T00:05:00Z");
	add(a, "m.one", HREP_PASS, HCASE_MUST, NULL);
	add(b, "m.two", HREP_FAIL, HCASE_MUST, "x");
	add(b, "m.one", HREP_PASS, HCASE_MUST, NULL); /* same status twice: fine */
	if (ASSERT_OK(hrep_merge((struct hrep *[]){ a, b, c }, 3, &m, msg, sizeof(msg)))) {
		ASSERT_EQ(m->n_cases, 2);
		ASSERT_FALSE(m->has_shard);
		ASSERT_STREQ(m->ended_at, "2026-01-01T00:05:00Z");
		ASSERT_STREQ(msg, "");
		hrep_free(m);
	}
	/* A missing shard is only a warning. */
	ASSERT_OK(hrep_merge((struct hrep *[]){ a, b }, 2, &m, msg, sizeof(msg)));
	ASSERT_STREQ(msg, "shard 3/3 missing");
	hrep_free(m);
	/* Conflicting statuses. */
	add(c, "m.two", HREP_PASS, HCASE_MUST, NULL);
	ASSERT_ERR(hrep_merge((struct hrep *[]){ a, b, c }, 3, &m, msg, sizeof(msg)), -EINVAL);
	ASSERT_STREQ(msg, "case m.two is FAIL in one input and PASS in input 3");
	/* The same shard twice, another profile, another kernel. */
	ASSERT_ERR(hrep_merge((struct hrep *[]){ a, a }, 2, &m, msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "given twice") != NULL);
	hrep_set(&c->profile_name, "vendor");
	ASSERT_ERR(hrep_merge((struct hrep *[]){ a, c }, 2, &m, msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "profile vendor") != NULL);
	hrep_set(&c->profile_name, "reference");
	hrep_set(&c->kernel_release, "other");
	ASSERT_ERR(hrep_merge((struct hrep *[]){ a, c }, 2, &m, msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "kernel other") != NULL);
	hrep_free(a);
	hrep_free(b);
	hrep_free(c);
}

TEST(now_is_rfc3339_utc)
{
	char buf[32];
	int y, mo, d, h, mi, sec, ms;
	char z = 0;

	hrep_now(buf);
	ASSERT_EQ(strlen(buf), 24);
	ASSERT_EQ(sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z),
		  8);
	ASSERT_EQ(z, 'Z');
	ASSERT_GE(y, 2024);
}

/* Messages in the formats of hrun_case.c, hrun.c and hexpect.c, one or more per rule. */
TEST(category_rules)
{
	static const struct {
		const char *msg, *cat;
	} t[] = {
		{ "leftover: process group 4242 still has processes", "leftover" },
		{ "leftover: BPF program id 17 still loaded", "leftover" },
		{ "TIMEOUT: case exceeded 20000 ms", "timeout" },
		{ "start proxy: ended before its ready byte (exit status 1), expected a byte on the "
		  "ready fd; stderr ends: x",
		  "start" },
		{ "start proxy: not ready within 5000 ms", "start" },
		{ "stop proxy: killed by signal 15 (SIGTERM), expected exit status 0", "stop" },
		{ "client dig (dig @10.0.0.1): exit status 9, expected 0; stderr ends: ",
		  "client" },
		{ "driver: cannot start: ENOENT", "driver" },
		{ "driver dns_query q: no answer within 3000 ms", "driver" },
		{ "upstream: not serving 10.0.0.2:53 within 3000 ms", "upstream" },
		{ "upstream cannot serve", "upstream" },
		{ "namespace cell: unshare: EPERM", "setup" },
		{ "link cell/veth0-host/veth1: EEXIST", "setup" },
		{ "link end cell/veth0: ENODEV", "setup" },
		{ "bridge host/br0: EPERM", "setup" },
		{ "dummy link host/d0: EPERM", "setup" },
		{ "route 0.0.0.0/0 via 10.0.0.1 in cell: ENETUNREACH", "setup" },
		{ "address 2001:db8::1: only IPv4 addresses are supported yet", "setup" },
		{ "feed proxy: its stdin is not an open pipe", "setup" },
		{ "feed: out of memory", "setup" },
		{ "file /tmp/x: EACCES", "setup" },
		{ "file: out of memory", "setup" },
		{ "wait: no started step proxy", "setup" },
		{ "wait proxy: 0 lines on stdout after 100 ms, expected 1", "setup" },
		{ "step 3: unknown action", "setup" },
		{ "temp dir: ENOSPC", "setup" },
		{ "expect.events.match[0] (dns_proxy_stats): no event matches", "expect.events" },
		{ "expect.responses.q.rcode: 0 (NOERROR), expected 2 (SERVFAIL)",
		  "expect.responses" },
		{ "expect.responses[1] (q2): no response", "expect.responses" },
		{ "expect.counts.upstream_queries: 2, expected 1", "expect.counts" },
		{ "expect.btf: struct flow_record: size 48, expected 40", "expect.btf" },
		{ "expect.stdout: does not match", "expect.stdout" },
		{ "expect.", "other" },
		{ "expect.:", "other" },
		{ "expectations could not be checked: out of memory", "other" },
		{ "worker died (Segmentation fault) during the case", "other" },
		{ "out of memory", "other" },
		{ "", "other" },
		{ "Start proxy: case matters", "other" },
	};
	char buf[HREP_CATEGORY_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		const char *got = hrep_category(t[i].msg, buf);

		tap_check(got && strcmp(got, t[i].cat) == 0, __FILE__, __LINE__,
			  "\"%s\": category %s, expected %s", t[i].msg, got ?: "(none)", t[i].cat);
	}
	ASSERT_TRUE(hrep_category(NULL, buf) == NULL);
	/* An expectation kind too long for the buffer is not cut: "other". */
	ASSERT_STREQ(
		hrep_category("expect.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: x", buf),
		"other");
}

TEST(case_category_from_first_problem)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *path = NULL, *old = NULL;
	struct hrep_problem probs[] = {
		{ .status = HREP_FAIL,
		  .message = (char *)"stop proxy: exit status 143, expected 0" },
		{ .status = HREP_ERROR, .message = (char *)"leftover: harness fd 9 (pipe:[1])" },
	};
	struct hrep *r = hrep_new(), *back = NULL;
	struct hjson_err err = { 0 };
	char buf[HREP_CATEGORY_MAX];

	if (!ASSERT_TRUE(r && dir) || asprintf(&path, "%s/report.json", dir) < 0)
		return;
	fill(r, "k");
	add(r, "a.pass", HREP_PASS, HCASE_MUST, NULL);
	add(r, "a.skip", HREP_SKIP, HCASE_MUST, NULL);
	hrep_set(&r->cases[1].reason, "needs tool:kdig");
	{
		struct hrep_req q = { .id = (char *)"DNS-SHD-001", .level = HCASE_MUST };
		struct hrep_case c = { .id = (char *)"a.two",
				       .title = (char *)"t",
				       .component = (char *)"dns-proxy",
				       .reqs = &q,
				       .n_reqs = 1,
				       .status = HREP_ERROR,
				       .message = (char *)"stop proxy: ... (and 1 more)",
				       .problems = probs,
				       .n_problems = 2 };

		hrep_case_add(r, &c);
	}
	/* No problem list (a report from before it): the message's category. */
	add(r, "a.old", HREP_FAIL, HCASE_MUST, "expect.events.exhaustive: 1 event too many");
	add(r, "a.xpass", HREP_XPASS, HCASE_MUST, "passes although listed as a known issue: x");
	if (!ASSERT_EQ(r->n_cases, 5))
		return;
	ASSERT_TRUE(r->cases[0].category == NULL);
	ASSERT_TRUE(r->cases[1].category == NULL);
	ASSERT_STREQ(r->cases[2].category, "stop"); /* the first problem, not the worst */
	ASSERT_STREQ(r->cases[3].category, "expect.events");
	ASSERT_TRUE(r->cases[4].category == NULL);
	ASSERT_STREQ(hrep_case_category(&r->cases[2], buf), "stop");
	if (!ASSERT_OK(hrep_save(r, path)))
		return;
	if (!ASSERT_OK(hrep_load(path, &back, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(back->cases[2].category, "stop");
	ASSERT_TRUE(back->cases[0].category == NULL);
	hrep_free(back);
	back = NULL;

	/* An older report.json without "category": derived on load; a stored one is kept. */
	old = htest_write(
		dir, "old.json",
		"{\"reportVersion\": 1, \"kernel\": {\"release\": \"x\", \"configSha256\": "
		"\"unavailable\"}, \"harness\": {\"version\": \"1\", \"gitRevision\": "
		"\"a\"}, \"profile\": {\"name\": \"p\", \"path\": \"p\", \"sha256\": "
		"\"unavailable\", \"files\": []}, \"startedAt\": \"s\", \"endedAt\": \"e\", "
		"\"cases\": [{\"id\": \"a.b\", \"title\": \"t\", \"component\": "
		"\"dns-proxy\", \"requirements\": [], \"status\": \"FAIL\", \"durationMs\": "
		"1, \"message\": \"client dig: exit status 9, expected 0 (and 1 more)\", "
		"\"problems\": [{\"status\": \"FAIL\", \"message\": \"client dig: exit "
		"status 9, expected 0\"}, {\"status\": \"FAIL\", \"message\": "
		"\"expect.responses.q.rcode: x\"}]}, {\"id\": \"a.c\", \"title\": \"t\", "
		"\"component\": \"dns-proxy\", \"requirements\": [], \"status\": \"FAIL\", "
		"\"durationMs\": 1, \"message\": \"TIMEOUT: case exceeded 1 ms\", "
		"\"category\": \"future-kind\"}]}");
	if (!ASSERT_OK(hrep_load(old, &back, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(back->cases[0].category, "client");
	ASSERT_STREQ(back->cases[1].category, "future-kind");
	hrep_free(back);
	hrep_free(r);
}

/* Titles from SPEC.md's Appendix C, kept in report.json, merged, and used by the pages. */
TEST(requirement_titles)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *spec = NULL, *path = NULL, *bad = NULL;
	struct hrep *r = hrep_new(), *back = NULL, *m = NULL;
	struct hjson_err err = { 0 };
	char msg[256] = "", *html = NULL, *md = NULL;
	size_t len = 0;
	FILE *f;

	if (!ASSERT_TRUE(r && dir) || asprintf(&path, "%s/report.json", dir) < 0)
		return;
	/* A body paragraph and a table row elsewhere must not give the title. */
	spec = htest_write(dir, "SPEC.md",
			   "# S\n\n## 1 Things\n\n**FLOW-REC-001** A record MUST be 40 bytes.\n\n"
			   "| FLOW-REC-001 | MUST | not this | x |\n\n"
			   "## Appendix C: requirement index\n\n"
			   "| ID | Level | Summary | Verified by |\n|----|----|----|----|\n"
			   "| FLOW-REC-001 | MUST | v1 record is 40 bytes <b> | unit |\n"
			   "| FLOW-REC-002 | MUST | other | unit |\n\n"
			   "## Appendix D: manifest\n\n| FLOW-REC-001 | MUST | nor this |\n");
	fill(r, "k");
	add(r, "a.one", HREP_FAIL, HCASE_MUST, "expect.records: x");
	ASSERT_OK(hrep_titles_from_spec(r, spec));
	ASSERT_STREQ(hrep_title(r, "FLOW-REC-001"), "v1 record is 40 bytes <b>");
	ASSERT_TRUE(hrep_title(r, "FLOW-REC-002") == NULL); /* no case cites it */
	ASSERT_EQ(hrep_titles_from_spec(r, "/nonexistent/SPEC.md"), -ENOENT);
	ASSERT_EQ(r->n_titles, 1);

	if (!ASSERT_OK(hrep_save(r, path)))
		return;
	if (!ASSERT_OK(hrep_load(path, &back, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(hrep_title(back, "FLOW-REC-001"), "v1 record is 40 bytes <b>");

	/* Escaped on the page, in both summaries. */
	f = open_memstream(&html, &len);
	if (f) {
		ASSERT_OK(hrep_write_html(back, f, ""));
		fclose(f);
	}
	f = open_memstream(&md, &len);
	if (f) {
		ASSERT_OK(hrep_write_md(back, f, ""));
		fclose(f);
	}
	if (ASSERT_TRUE(html && md)) {
		ASSERT_TRUE(strstr(html, "v1 record is 40 bytes &lt;b&gt;") != NULL);
		ASSERT_TRUE(strstr(html, "40 bytes <b>") == NULL);
		ASSERT_TRUE(strstr(html, "id=\"req-FLOW-REC-001\"") != NULL);
		ASSERT_TRUE(strstr(html, "href=\"#req-FLOW-REC-001\"") != NULL);
		ASSERT_TRUE(strstr(html, "id=\"category-expect.records\"") != NULL);
		ASSERT_TRUE(strstr(html, "id=\"status-FAIL\"") != NULL);
		ASSERT_TRUE(strstr(html, "id=\"component-decoder\"") != NULL);
		ASSERT_TRUE(strstr(html, "<details class=\"case st-FAIL\" id=\"case-a.one\"") !=
			    NULL);
		ASSERT_TRUE(strstr(md, "## Failures by requirement") != NULL);
		ASSERT_TRUE(strstr(md, "| FLOW-REC-001 | v1 record is 40 bytes") != NULL);
		ASSERT_TRUE(strstr(md, "| expect.records | 1 | 1 | 0 | 0 | 0 | a.one |") != NULL);
	}
	free(html);
	free(md);

	/* merge keeps the titles of every input. */
	hrep_title_set(back, "FLOW-REC-009", "from the other shard");
	if (ASSERT_OK(hrep_merge((struct hrep *[]){ r, back }, 1, &m, msg, sizeof(msg)))) {
		ASSERT_TRUE(hrep_title(m, "FLOW-REC-009") == NULL);
		hrep_free(m);
		m = NULL;
	}
	hrep_free(r);
	r = hrep_new();
	fill(r, "k");
	add(r, "b.two", HREP_PASS, HCASE_MUST, NULL);
	if (ASSERT_OK(hrep_merge((struct hrep *[]){ r, back }, 2, &m, msg, sizeof(msg)))) {
		ASSERT_STREQ(hrep_title(m, "FLOW-REC-009"), "from the other shard");
		ASSERT_STREQ(hrep_title(m, "FLOW-REC-001"), "v1 record is 40 bytes <b>");
		hrep_free(m);
	}
	hrep_free(back);
	back = NULL;

	/* A key that is no requirement ID, or a title that is no string, is rejected. */
	bad = htest_write(
		dir, "bad.json",
		"{\"reportVersion\": 1, \"kernel\": {\"release\": \"x\", \"configSha256\": "
		"\"unavailable\"}, \"harness\": {\"version\": \"1\", \"gitRevision\": "
		"\"a\"}, \"profile\": {\"name\": \"p\", \"path\": \"p\", \"sha256\": "
		"\"unavailable\", \"files\": []}, \"startedAt\": \"s\", \"endedAt\": \"e\", "
		"\"cases\": [], \"requirements\": {\"FLOW-REC-001\": 3}}");
	ASSERT_ERR(hrep_load(bad, &back, &err), -EINVAL);
	ASSERT_STREQ(err.path, "$.requirements.FLOW-REC-001");
	free(bad);
	bad = htest_write(
		dir, "bad2.json",
		"{\"reportVersion\": 1, \"kernel\": {\"release\": \"x\", \"configSha256\": "
		"\"unavailable\"}, \"harness\": {\"version\": \"1\", \"gitRevision\": "
		"\"a\"}, \"profile\": {\"name\": \"p\", \"path\": \"p\", \"sha256\": "
		"\"unavailable\", \"files\": []}, \"startedAt\": \"s\", \"endedAt\": \"e\", "
		"\"cases\": [], \"requirements\": {\"nope\": \"t\"}}");
	memset(&err, 0, sizeof(err));
	ASSERT_ERR(hrep_load(bad, &back, &err), -EINVAL);
	if (!ASSERT_TRUE(strstr(err.msg, "not a requirement ID") != NULL))
		tap_diag("%s: %s", err.path, err.msg);
	hrep_free(r);
}

/* Beyond 20 failing requirements the rest are folded, never dropped. */
TEST(html_folds_long_requirement_list)
{
	struct hrep *r = hrep_new();
	char *html = NULL, *p;
	size_t len = 0, rows = 0;
	FILE *f;

	if (!ASSERT_TRUE(r))
		return;
	fill(r, "k");
	for (int i = 0; i < 22; i++) {
		char id[32], req[32];
		struct hrep_req q = { .id = req, .level = HCASE_MUST };
		struct hrep_case c = { .id = id,
				       .title = (char *)"t",
				       .component = (char *)"decoder",
				       .reqs = &q,
				       .n_reqs = 1,
				       .status = HREP_FAIL,
				       .message = (char *)"stop x: exit status 1, expected 0" };

		snprintf(id, sizeof(id), "a.c%02d", i);
		snprintf(req, sizeof(req), "FLOW-REC-%03d", 100 + i);
		hrep_case_add(r, &c);
	}
	f = open_memstream(&html, &len);
	if (!ASSERT_TRUE(f))
		return;
	ASSERT_OK(hrep_write_html(r, f, ""));
	fclose(f);
	for (p = html; (p = strstr(p, "<tr data-requirement=")); p++)
		rows++;
	ASSERT_EQ(rows, 22);
	ASSERT_TRUE(strstr(html, "<summary>2 more requirements, 1 failing case or fewer each") !=
		    NULL);
	ASSERT_TRUE(strstr(html, "id=\"category-stop\"") != NULL);
	free(html);
	hrep_free(r);
}
