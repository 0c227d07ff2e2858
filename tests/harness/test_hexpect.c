// SPDX-License-Identifier: Apache-2.0
/*
 * Expectation checking: every matcher and every expectation kind, each holding and failing,
 * the one-line failure messages, exact u64 comparison, hostile observations (bad UTF-8,
 * truncated frames, huge lines) as FAILs, and ERRORs for what the check itself cannot do.
 * Cases come from JSON texts through hcase_from_json, like the runner's.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcase.h"
#include "hdnsmsg.h"
#include "hexpect.h"
#include "tap.h"
#include "util.h"

#define NS "dev.cellos.events.cell.observability.v1."

/* One observed process "p" (the case's only start step unless a test says otherwise). */
struct fx {
	struct hobs_proc procs[2];
	struct hobs_resp resps[2];
	struct hobs o;
	json_t *vars;
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->procs[0].name = "p";
	f->procs[0].exited = true;
	f->o.procs = f->procs;
	f->o.n_procs = 1;
	f->o.resps = f->resps;
	f->o.upstream_queries = UINT64_MAX;
	f->o.srcdir = getenv("CELLCHECK_SRCDIR");
	f->vars = json_object();
	f->o.vars = f->vars;
}

static void fx_done(struct fx *f)
{
	json_decref(f->vars);
}

static void set_out(struct fx *f, const char *s)
{
	f->procs[0].out = s;
	f->procs[0].out_len = strlen(s);
}

static void set_events(struct fx *f, const char *s)
{
	f->procs[0].events = s;
	f->procs[0].events_len = strlen(s);
}

static const char DEFAULT_STEPS[] =
	"[{\"action\": \"start\", \"name\": \"p\"},"
	" {\"action\": \"driver\", \"name\": \"q1\", \"ns\": \"cell\", \"op\": \"udp_send\","
	"  \"args\": {\"dst\": \"10.0.0.1:53\"}},"
	" {\"action\": \"stop\", \"target\": \"p\"}]";

/* Load a case around the expectations (and steps), check it against f. */
static int check_case(const char *steps, const char *expect, struct fx *f, char **msg)
{
	_cleanup_free_ char *text = NULL;
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;
	json_error_t jerr;
	json_t *doc;
	int r;

	*msg = NULL;
	if (asprintf(&text,
		     "{\"id\": \"t.expect\", \"title\": \"t\", \"component\": \"flow-monitor\","
		     " \"uses\": [\"decoder\"],"
		     " \"requirements\": [{\"id\": \"FLOW-REC-001\", \"level\": \"MUST\"}],"
		     " \"fault\": \"flow.pad_nonzero\", \"topology\": {\"namespaces\": [\"cell\"]},"
		     " \"steps\": %s, \"expect\": %s}",
		     steps ?: DEFAULT_STEPS, expect) < 0)
		return -ENOMEM;
	doc = json_loads(text, 0, &jerr);
	if (!doc) {
		tap_diag("test case JSON does not parse: %s", jerr.text);
		return -EBADMSG;
	}
	r = hcase_from_json(doc, "mem.json", "$", &c, &err);
	json_decref(doc);
	if (r < 0) {
		tap_diag("test case does not load: %s: %s", err.path, err.msg);
		return -EBADMSG;
	}
	r = hexp_check(c, &f->o, msg);
	hcase_free(c);
	return r;
}

static bool outcome(const char *file, int line, const char *steps, const char *expect, struct fx *f,
		    int want_r, const char *want, bool exact)
{
	char *msg = NULL;
	int r = check_case(steps, expect, f, &msg);
	bool ok;

	ok = tap_check(r == want_r, file, line, "result %d, want %d (message: %s)", r, want_r,
		       msg ?: "(none)");
	if (ok && want)
		ok = tap_check(msg && (exact ? strcmp(msg, want) == 0 : strstr(msg, want) != NULL),
			       file, line, "message \"%s\" %s \"%s\"", msg ?: "(null)",
			       exact ? "is" : "contains", want);
	if (ok && msg)
		ok = tap_check(!strchr(msg, '\n'), file, line, "message is one line");
	free(msg);
	return ok;
}

#define PASS(e, f)	      outcome(__FILE__, __LINE__, NULL, e, f, 0, NULL, false)
#define FAILS(e, f, want)     outcome(__FILE__, __LINE__, NULL, e, f, 1, want, false)
#define FAILS_EXACT(e, f, w)  outcome(__FILE__, __LINE__, NULL, e, f, 1, w, true)
#define ERRORS(e, f, r, want) outcome(__FILE__, __LINE__, NULL, e, f, r, want, false)

/* ---- stdout / stderr ------------------------------------------------------------------------ */

TEST(output_empty_and_regex)
{
	struct fx f;

	fx_init(&f);
	PASS("{\"stdout\": {\"empty\": true}, \"stderr\": {\"empty\": true}}", &f);
	set_out(&f, "usage: x\n");
	FAILS_EXACT("{\"stdout\": {\"empty\": true}}", &f,
		    "expect.stdout: expected empty, got 9 bytes: \"usage: x\\n\"");
	PASS("{\"stdout\": {\"regex\": \"^usage: [a-z]+\"}}", &f);
	FAILS_EXACT("{\"stdout\": {\"regex\": \"^error\"}}", &f,
		    "expect.stdout: expected regex \"^error\", got \"usage: x\\n\"");
	f.procs[0].err = "boom";
	f.procs[0].err_len = 4;
	FAILS("{\"stderr\": {\"empty\": true}}", &f, "expect.stderr: expected empty, got 4 bytes");
	fx_done(&f);
}

TEST(output_hostile_bytes_are_escaped_and_cut)
{
	static const char bad[] = "a\xff\xc3(\x01\"\\\n\xe2\x82\xac";
	char big[1000];
	char *msg = NULL;
	struct fx f;
	int r;

	fx_init(&f);
	f.procs[0].out = bad;
	f.procs[0].out_len = sizeof(bad) - 1;
	FAILS_EXACT("{\"stdout\": {\"empty\": true}}", &f,
		    "expect.stdout: expected empty, got 11 bytes: "
		    "\"a\\xff\\xc3(\\x01\\\"\\\\\\n\xe2\x82\xac\"");
	memset(big, 'z', sizeof(big));
	f.procs[0].out = big;
	f.procs[0].out_len = sizeof(big);
	r = check_case(NULL, "{\"stdout\": {\"empty\": true}}", &f, &msg);
	ASSERT_EQ(r, 1);
	ASSERT_TRUE(msg && strstr(msg, "...\""));
	/* The prefix, the quotes and "..." around at most 200 bytes of the observed value. */
	ASSERT_LE(strlen(msg),
		  strlen("expect.stdout: expected empty, got 1000 bytes: \"") + 200 + 4);
	free(msg);
	fx_done(&f);
}

TEST(output_file_bytes)
{
	struct fx f;

	fx_init(&f);
	if (!f.o.srcdir)
		tap_skip("CELLCHECK_SRCDIR is not set (run through meson test)");
	set_out(&f, "");
	PASS("{\"stdout\": {\"file\": \"fixtures/records/empty.expected.jsonl\"}}", &f);
	set_out(&f, "x\n");
	FAILS_EXACT("{\"stdout\": {\"file\": \"fixtures/records/empty.expected.jsonl\"}}", &f,
		    "expect.stdout: differs from fixtures/records/empty.expected.jsonl at byte 0 "
		    "(line 1): expected end of output, got \"x\\n\"");
	ERRORS("{\"stdout\": {\"file\": \"fixtures/records/no-such-file\"}}", &f, -ENOENT,
	       "expect.stdout: cannot read");
	fx_done(&f);
}

/* The golden corpus's first line, with its members reordered and one value changed. */
TEST(output_jsonl_order_free_and_exact)
{
	static const char GOLDEN[] = "fixtures/records/golden.expected.jsonl";
	_cleanup_free_ char *path = NULL, *text = NULL, *changed = NULL;
	char expect[200];
	struct fx f;
	FILE *fp;
	size_t n = 0;
	char *p;

	fx_init(&f);
	if (!f.o.srcdir)
		tap_skip("CELLCHECK_SRCDIR is not set (run through meson test)");
	snprintf(expect, sizeof(expect), "{\"stdout\": {\"file\": \"%s\", \"compare\": \"jsonl\"}}",
		 GOLDEN);
	if (!ASSERT_TRUE(asprintf(&path, "%s/%s", f.o.srcdir, GOLDEN) > 0))
		return;
	fp = fopen(path, "r");
	if (!ASSERT_TRUE(fp))
		return;
	ASSERT_TRUE(getdelim(&text, &n, '\0', fp) > 0);
	fclose(fp);
	set_out(&f, text);
	PASS(expect, &f);

	/* Same first line with "ok" moved to the end: member order is free. */
	changed = strdup(text);
	p = strstr(changed, "\"ok\":true,");
	if (!ASSERT_TRUE(p && p == changed + 1))
		return;
	{
		_cleanup_free_ char *re = NULL;
		char *nl = strchr(changed, '\n');

		*nl = '\0';
		nl[-1] = '\0'; /* the closing brace */
		ASSERT_TRUE(asprintf(&re, "{%s,\"ok\":true}\n%s", changed + 11, nl + 1) > 0);
		set_out(&f, re);
		PASS(expect, &f);
	}
	free(changed);

	/* One port changed: named by its path inside the line. */
	changed = strdup(text);
	p = strstr(changed, "\"srcPort\":40000");
	if (!ASSERT_TRUE(p))
		return;
	memcpy(p, "\"srcPort\":40001", 15);
	set_out(&f, changed);
	FAILS_EXACT(expect, &f, "expect.stdout: line 2: record.srcPort: expected 40000, got 40001");

	/* A missing last line, an extra line, a missing LF, a line that is not JSON. */
	*strrchr(changed, '\n') = '\0';
	*(strrchr(changed, '\n') + 1) = '\0';
	memcpy(p, "\"srcPort\":40000", 15);
	set_out(&f, changed);
	FAILS(expect, &f, "got end of output");
	free(changed);
	ASSERT_TRUE(asprintf(&changed, "%s{}\n", text) > 0);
	set_out(&f, changed);
	FAILS(expect, &f, "expected end of output (47 lines), got \"{}\"");
	changed[strlen(text) - 1] = '\0';
	set_out(&f, changed);
	FAILS(expect, &f, "line 47: expected a terminating LF, got the end of output");
	free(changed);
	ASSERT_TRUE(asprintf(&changed, "{\"ok\":tru\xff}\n") > 0);
	set_out(&f, changed);
	FAILS(expect, &f,
	      "expect.stdout: line 1: expected JSON, got text that is not (unexpected character at byte 6): "
	      "\"{\\\"ok\\\":tru\\xff}\"");
	fx_done(&f);
}

/* 18446744073709551615 and its neighbour differ although a double cannot tell them apart. */
TEST(jsonl_u64_exact)
{
	_cleanup_free_ char *dir = NULL;
	char expect[300];
	struct fx f;
	FILE *fp;

	fx_init(&f);
	if (!f.o.srcdir)
		tap_skip("CELLCHECK_SRCDIR is not set (run through meson test)");
	/* srcdir-relative: "../../tmp/..." reaches a scratch file from the source tree. */
	dir = strdup("/tmp/hexpect.XXXXXX");
	if (!ASSERT_TRUE(dir && mkdtemp(dir)))
		return;
	{
		_cleanup_free_ char *file = NULL;

		ASSERT_TRUE(asprintf(&file, "%s/u64.jsonl", dir) > 0);
		fp = fopen(file, "w");
		if (!ASSERT_TRUE(fp))
			return;
		fputs("{\"n\":18446744073709551615,\"m\":-0,\"r\":0.5}\n", fp);
		fclose(fp);
		f.o.srcdir = "/";
		snprintf(expect, sizeof(expect),
			 "{\"stdout\": {\"file\": \"%s\", \"compare\": \"jsonl\"}}", file + 1);
		set_out(&f, "{\"r\":0.50,\"m\":0,\"n\":18446744073709551615}\n");
		PASS(expect, &f);
		set_out(&f, "{\"r\":0.5,\"m\":0,\"n\":18446744073709551614}\n");
		FAILS_EXACT(expect, &f,
			    "expect.stdout: line 1: n: expected 18446744073709551615, got "
			    "18446744073709551614");
		set_out(&f, "{\"r\":0.5,\"m\":0,\"n\":18446744073709551615.0}\n");
		FAILS(expect, &f, "n: expected 18446744073709551615, got 18446744073709551615.0");
		set_out(&f, "{\"r\":0.5,\"m\":0,\"n\":18446744073709551615,\"x\":[1]}\n");
		FAILS(expect, &f, "line 1: x: expected nothing, got [1]");
		set_out(&f, "{\"r\":0.5,\"m\":0,\"n\":18446744073709551615,\"n\":1}\n");
		FAILS(expect, &f, "duplicate member name");
		unlink(file);
	}
	rmdir(dir);
	fx_done(&f);
}

/* ---- matchers, through events --------------------------------------------------------------- */

static const char EV_Q1[] =
	"{\"type\":\"" NS "dns_query\",\"id\":\"0b4c2a5e-6a7d-4a4e-9e0c-2f1d3c4b5a69\","
	"\"data\":{\"qname\":\"a.example.test\",\"latencyUs\":1500,\"big\":18446744073709551615,"
	"\"answers\":[\"192.0.2.1\"],\"nul\":\"x\\u0000y\"}}\n";

static bool ev_match(struct fx *f, const char *fields, int want, const char *msg, int line)
{
	_cleanup_free_ char *e = NULL;

	if (asprintf(&e,
		     "{\"events\": {\"match\": [{\"type\": \"dns_query\", \"count\": 1, "
		     "\"fields\": %s}]}}",
		     fields) < 0)
		return false;
	return outcome(__FILE__, line, NULL, e, f, want, msg, false);
}

TEST(matchers)
{
	struct fx f;

	fx_init(&f);
	set_events(&f, EV_Q1);
	json_object_set_new(f.vars, "lo", json_string("18446744073709551614"));
	json_object_set_new(f.vars, "hi", json_string("18446744073709551615"));
	json_object_set_new(f.vars, "bad", json_string("12abc"));
	json_object_set_new(f.vars, "n", json_integer(1500));

	ev_match(&f, "{\"data.qname\": {\"exact\": \"a.example.test\"}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.qname\": {\"exact\": \"b.example.test\"}}", 1,
		 "expect.events.match[0] (dns_query): data.qname: expected exact "
		 "\"b.example.test\", got \"a.example.test\"",
		 __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"exact\": 1500}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"exact\": 1500.0}}", 1,
		 "data.latencyUs: expected exact 1500.0, got 1500", __LINE__);
	ev_match(&f, "{\"data.answers\": {\"exact\": [\"192.0.2.1\"]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.answers.0\": {\"exact\": \"192.0.2.1\"}}", 0, NULL, __LINE__);
	/* A container is named by its first differing member. */
	ev_match(&f, "{\"data\": {\"exact\": {}}}", 1,
		 "expect.events.match[0] (dns_query): data.answers: expected absent, got "
		 "[\"192.0.2.1\"]",
		 __LINE__);
	/* The subject has a NUL inside: matched by length, not as a C string. */
	ev_match(&f, "{\"data.nul\": {\"regex\": \"y$\"}}", 0, NULL, __LINE__);

	ev_match(&f, "{\"id\": {\"regex\": \"^[0-9a-f-]{36}$\"}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.qname\": {\"regex\": \"^b\\\\.\"}}", 1,
		 "data.qname: expected regex \"^b\\\\.\", got \"a.example.test\"", __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"regex\": \"^15\"}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.answers\": {\"regex\": \".\"}}", 1, "got [\"192.0.2.1\"]", __LINE__);

	ev_match(&f, "{\"data.latencyUs\": {\"range\": [0, 2000000]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"range\": [1500, 1500]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"range\": [1501, 2000]}}", 1,
		 "data.latencyUs: expected range [1501, 2000], got 1500", __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"range\": [1499.5, 1500.5]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.latencyUs\": {\"range\": [\"{n}\", \"{n}\"]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.big\": {\"range\": [\"{hi}\", \"{hi}\"]}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.big\": {\"range\": [\"{lo}\", \"{lo}\"]}}", 1,
		 "data.big: expected range [{lo}=18446744073709551614, "
		 "{lo}=18446744073709551614], got 18446744073709551615",
		 __LINE__);
	ev_match(&f, "{\"data.qname\": {\"range\": [0, 1]}}", 1,
		 "expected range [0, 1], got \"a.example.test\"", __LINE__);
	ev_match(&f, "{\"data.big\": {\"range\": [\"{nope}\", 1]}}", -ENOENT,
		 "range bound {nope}: no such runner variable", __LINE__);
	ev_match(&f, "{\"data.big\": {\"range\": [\"{bad}\", 1]}}", -EINVAL,
		 "runner variable {bad} is not a number", __LINE__);

	ev_match(&f, "{\"data.qname\": {\"present\": true}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.bogus\": {\"present\": true}}", 1,
		 "data.bogus: expected present, got nothing", __LINE__);
	ev_match(&f, "{\"data.bogus\": {\"absent\": true}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.qname.deeper\": {\"absent\": true}}", 0, NULL, __LINE__);
	ev_match(&f, "{\"data.qname\": {\"absent\": true}}", 1,
		 "data.qname: expected absent, got \"a.example.test\"", __LINE__);
	ev_match(&f, "{\"data.bogus\": {\"exact\": 1}}", 1, "expected exact 1, got nothing",
		 __LINE__);
	fx_done(&f);
}

/* ---- events ------------------------------------------------------------------------------------
 */

#define EV(t, extra) "{\"type\":\"" NS t "\",\"data\":{" extra "}}\n"

static const char STREAM[] = EV("flow_monitor_started", "")
	EV("network_flow_decision", "\"dstPort\":53") EV("network_flow_decision", "\"dstPort\":443")
		EV("flow_monitor_summary", "\"recordsLost\":0");

TEST(events_unordered_counts_and_closest_miss)
{
	struct fx f;

	fx_init(&f);
	set_events(&f, STREAM);
	PASS("{\"events\": {\"match\": [{\"type\": \"flow_monitor_summary\"},"
	     " {\"type\": \"network_flow_decision\", \"count\": 2},"
	     " {\"type\": \"" NS
	     "network_flow_decision\", \"fields\": {\"data.dstPort\": {\"exact\": 443}}},"
	     " {\"type\": \"dns_query\", \"count\": 0}]}}",
	     &f);
	FAILS_EXACT(
		"{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"count\": 1}]}}",
		&f,
		"expect.events.match[0] (network_flow_decision): expected 1 matching events, "
		"got 2 (first: line 2)");
	FAILS_EXACT("{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"fields\":"
		    " {\"data.dstPort\": {\"exact\": 80}}}]}}",
		    &f,
		    "expect.events.match[0] (network_flow_decision): data.dstPort: expected exact "
		    "80, got 53");
	FAILS_EXACT(
		"{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"count\": 3}]}}",
		&f,
		"expect.events.match[0] (network_flow_decision): expected 3 matching events, "
		"got 2");
	FAILS_EXACT(
		"{\"events\": {\"match\": [{\"type\": \"dns_query\"}]}}", &f,
		"expect.events.match[0] (dns_query): expected a dns_query event, got none among 4 "
		"events");
	/* Fewer than wanted: the closest miss is the candidate with most fields right. */
	FAILS_EXACT("{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"count\": 2,"
		    " \"fields\": {\"data.dstPort\": {\"range\": [1, 100]}}}]}}",
		    &f,
		    "expect.events.match[0] (network_flow_decision): expected 2 matching events, "
		    "got 1; closest miss (line 3): data.dstPort: expected range [1, 100], got 443");
	fx_done(&f);
}

/*
 * EVT-ENV-014 and EVT-ENV-019 bind consumers; cellcheck is the consumer this project ships
 * (SPEC Appendix C names this test). Integers are read exactly over the whole u64 range, and an
 * event with members, attributes and enum or open-set values the reader does not know is read,
 * not rejected: matchers see the members they name.
 */
TEST(consumer_exact_u64_and_unknown_members)
{
	struct fx f;

	fx_init(&f);
	set_events(&f, "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/x\",\"type\":\"" NS
		       "network_flow_decision\",\"time\":\"2026-01-01T00:00:00Z\","
		       "\"datacontenttype\":\"application/json\",\"xfuture\":\"attr\","
		       "\"data\":{\"packetCount\":18446744073709551615,"
		       "\"firstSeenNs\":9223372036854775807,\"verdict\":\"quarantined\","
		       "\"reasonCode\":\"brand_new_code\",\"futureMember\":{\"n\":[1,2]}}}\n");
	/* A count above INT64_MAX does not make the event unreadable (the case file itself, read
	 * with jansson, cannot hold one: jsonl_u64_exact compares such values). */
	PASS("{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"fields\": {"
	     "\"data.packetCount\": {\"present\": true},"
	     "\"data.firstSeenNs\": {\"exact\": 9223372036854775807},"
	     "\"data.verdict\": {\"exact\": \"quarantined\"},"
	     "\"data.reasonCode\": {\"exact\": \"brand_new_code\"}}}]}}",
	     &f);
	/* Through binary64 these two would compare equal. */
	FAILS("{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"fields\": {"
	      "\"data.firstSeenNs\": {\"exact\": 9223372036854775806}}}]}}",
	      &f, "data.firstSeenNs: expected exact 9223372036854775806");
	PASS("{\"events\": {\"match\": [{\"type\": \"network_flow_decision\", \"fields\": {"
	     "\"data.firstSeenNs\": {\"range\": [9223372036854775807, 9223372036854775807]}}}]}}",
	     &f);
	fx_done(&f);
}

TEST(events_ordered)
{
	struct fx f;

	fx_init(&f);
	set_events(&f, STREAM);
	PASS("{\"events\": {\"order\": \"ordered\", \"match\": ["
	     " {\"type\": \"flow_monitor_started\"},"
	     " {\"type\": \"network_flow_decision\", \"fields\": {\"data.dstPort\": {\"exact\": 53}}},"
	     " {\"type\": \"network_flow_decision\", \"fields\": {\"data.dstPort\": {\"exact\": 443}}},"
	     " {\"type\": \"flow_monitor_summary\"}]}}",
	     &f);
	PASS("{\"events\": {\"order\": \"ordered\", \"match\": ["
	     " {\"type\": \"flow_monitor_started\"}, {\"type\": \"network_flow_decision\", \"count\": 2},"
	     " {\"type\": \"flow_monitor_summary\"}]}}",
	     &f);
	FAILS_EXACT(
		"{\"events\": {\"order\": \"ordered\", \"match\": ["
		" {\"type\": \"flow_monitor_summary\"}, {\"type\": \"flow_monitor_started\"}]}}",
		&f,
		"expect.events.match[1] (flow_monitor_started): out of order: expected 1 "
		"matching events after line 4 (matched by match[0]), found 0");
	/* The same items unordered hold. */
	PASS("{\"events\": {\"order\": \"unordered\", \"match\": ["
	     " {\"type\": \"flow_monitor_summary\"}, {\"type\": \"flow_monitor_started\"}]}}",
	     &f);
	fx_done(&f);
}

TEST(events_exhaustive)
{
	struct fx f;

	fx_init(&f);
	set_events(&f, STREAM);
	PASS("{\"events\": {\"exhaustive\": true, \"match\": ["
	     " {\"type\": \"flow_monitor_started\"}, {\"type\": \"network_flow_decision\", \"count\": 2},"
	     " {\"type\": \"flow_monitor_summary\"}]}}",
	     &f);
	FAILS_EXACT(
		"{\"events\": {\"exhaustive\": true, \"match\": ["
		" {\"type\": \"flow_monitor_started\"}, {\"type\": \"flow_monitor_summary\"},"
		" {\"type\": \"network_flow_decision\", \"fields\": {\"data.dstPort\": {\"exact\": 53}}}]}}",
		&f,
		"expect.events.exhaustive: expected every event to match an item of "
		"expect.events.match, got line 3 (" NS "network_flow_decision) matching none");
	/* Not exhaustive: the extra events are fine. */
	PASS("{\"events\": {\"match\": [{\"type\": \"flow_monitor_started\"}]}}", &f);
	fx_done(&f);
}

TEST(events_hostile_streams)
{
	static const char expect[] = "{\"events\": {\"match\": []}}";
	char *huge;
	struct fx f;

	fx_init(&f);
	FAILS_EXACT(expect, &f,
		    "expect.events: expected an event stream from start step \"p\", got none");
	set_events(&f, "");
	PASS(expect, &f);
	set_events(&f, EV("a", "") "{\"type\":\"x\",\"data\":{\"s\":\"\xc0\xaf\"}}\n");
	FAILS(expect, &f,
	      "expect.events: line 2: expected JSON, got text that is not (invalid UTF-8 at byte 25)");
	set_events(&f, "{\"type\":5}\n");
	FAILS(expect, &f,
	      "expect.events: line 1: expected an event with a string \"type\", got {\"type\":5}");
	set_events(&f, "[1,2]\n");
	FAILS(expect, &f, "line 1: expected an event with a string \"type\", got [1,2]");
	set_events(&f, "{\"type\":\"x\"}");
	FAILS(expect, &f, "line 1: expected a terminating LF, got the end of output");
	set_events(&f, "{\"type\":\"x\",\"d\":\"\\ud800\"}\n");
	FAILS(expect, &f, "lone high surrogate");
	set_events(&f, "{\"type\":\"x\",\"d\":[1,]}\n");
	FAILS(expect, &f, "line 1: expected JSON, got text that is not (bad number");
	set_events(&f, "{\"type\":\"x\",\"d\":\"abc\\");
	FAILS(expect, &f, "unterminated string");
	/* Deep nesting is a FAIL, not a stack overflow. */
	huge = malloc(200001);
	if (!ASSERT_TRUE(huge))
		return;
	memset(huge, '[', 200000);
	huge[200000] = '\0';
	set_events(&f, huge);
	FAILS(expect, &f, "nested too deep");
	free(huge);
	/* A line over 16 MiB is refused before parsing. */
	huge = malloc((17u << 20) + 2);
	if (!ASSERT_TRUE(huge))
		return;
	memset(huge, ' ', 17u << 20);
	huge[17u << 20] = '\n';
	huge[(17u << 20) + 1] = '\0';
	f.procs[0].events = huge;
	f.procs[0].events_len = (17u << 20) + 1;
	FAILS(expect, &f, "expect.events: line 1: expected at most 16777216 bytes, got 17825792");
	free(huge);
	fx_done(&f);
}

static const char EV_SUMMARY_OK[] =
	"{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/cellref/flow-monitor\","
	"\"type\":\"" NS "flow_monitor_summary\",\"time\":\"2026-01-01T00:00:00Z\","
	"\"datacontenttype\":\"application/json\",\"data\":{\"schemaVersion\":\"1.0.0\","
	"\"cellId\":\"c\",\"runId\":\"r\",\"recordsSeen\":1,\"recordsLost\":0,"
	"\"uniqueFlowCount\":1,\"packetsSeen\":3,\"tableFull\":0,\"decodeErrors\":0,"
	"\"flowsTallied\":0,\"unconsidered\":{\"nonIp\":0,\"ipv6\":0,\"otherProto\":0,"
	"\"fragment\":0,\"malformed\":0,\"extChain\":0},\"eventsDropped\":0,\"durationMs\":5,"
	"\"observedAt\":\"2026-01-01T00:00:00Z\"}}\n";

TEST_TIMEOUT(events_schema, 60)
{
	_cleanup_free_ char *bad = NULL;
	static const char expect[] = "{\"events\": {\"schema\": true, \"match\": ["
				     "{\"type\": \"flow_monitor_summary\"}]}}";
	struct fx f;
	char *p;

	fx_init(&f);
	if (!f.o.srcdir)
		tap_skip("CELLCHECK_SRCDIR is not set (run through meson test)");
	if (access("/usr/bin/python3", X_OK) < 0)
		tap_skip("/usr/bin/python3 is missing");
	set_events(&f, EV_SUMMARY_OK);
	PASS(expect, &f);
	bad = strdup(EV_SUMMARY_OK);
	p = strstr(bad, "\"recordsLost\":0,");
	memcpy(p, "\"recordsLast\"", 13);
	set_events(&f, bad);
	FAILS(expect, &f, "expect.events.schema: events:1: ");
	FAILS(expect, &f, "recordsLost");
	f.o.srcdir = "/nonexistent";
	ERRORS(expect, &f, -ENOENT, "expect.events.schema: cannot read");
	fx_done(&f);
}

/* ---- records ----------------------------------------------------------------------------------
 */

struct recbuf {
	unsigned char b[1024];
	size_t len;
};

static void put_rec(struct recbuf *rb, uint32_t sip, uint32_t dip, uint16_t sp, uint16_t dp,
		    uint8_t proto, uint64_t pkts, uint64_t first, uint8_t verdict)
{
	unsigned char *p = rb->b + rb->len;

	/* Length little-endian (FLOW-FRM-001), body in host order (FLOW-REC-002). */
	p[0] = 40, p[1] = p[2] = p[3] = 0;
	p += 4;
	memset(p, 0, 40);
	memcpy(p, &sip, 4);
	memcpy(p + 4, &dip, 4);
	memcpy(p + 8, &sp, 2);
	memcpy(p + 10, &dp, 2);
	p[12] = proto;
	memcpy(p + 16, &pkts, 8);
	memcpy(p + 24, &first, 8);
	p[32] = verdict;
	rb->len += 44;
}

static void set_records(struct fx *f, const struct recbuf *rb)
{
	f->procs[0].records = (const char *)rb->b;
	f->procs[0].records_len = rb->len;
}

TEST(records_match_pad_monotonic)
{
	struct recbuf rb = { 0 };
	struct fx f;

	fx_init(&f);
	FAILS("{\"records\": {\"pad_zero\": true}}", &f,
	      "expect.records: expected a record stream from start step \"p\", got none");
	set_records(&f, &rb);
	PASS("{\"records\": {\"pad_zero\": true, \"match\": [{\"count\": 0}]}}", &f);
	FAILS_EXACT("{\"records\": {\"match\": [{\"count\": 1}]}}", &f,
		    "expect.records.match[0]: expected 1 matching records, got an empty stream");
	put_rec(&rb, 0x0A630002, 0x0A630001, 40000, 5353, 17, 3, 1000, 1);
	put_rec(&rb, 0x0A630002, 0x0A630001, 40001, 443, 6, UINT64_MAX, 2000, 1);
	set_records(&f, &rb);
	json_object_set_new(f.vars, "case.start_ns", json_string("900"));
	json_object_set_new(f.vars, "case.end_ns", json_string("2500"));
	PASS("{\"records\": {\"pad_zero\": true, \"monotonic\": [\"first_seen_ns\"],"
	     " \"order\": \"ordered\", \"exhaustive\": true, \"match\": ["
	     " {\"count\": 1, \"fields\": {\"src_ip\": {\"exact\": \"10.99.0.2\"},"
	     "   \"dst_ip\": {\"exact\": 174260225}, \"src_port\": {\"exact\": 40000},"
	     "   \"dst_port\": {\"exact\": 5353}, \"proto\": {\"exact\": 17}, \"pad0\": {\"exact\": 0},"
	     "   \"pkt_count\": {\"exact\": 3}, \"verdict\": {\"exact\": 1}, \"pad1\": {\"exact\": 0},"
	     "   \"first_seen_ns\": {\"range\": [\"{case.start_ns}\", \"{case.end_ns}\"]}}},"
	     " {\"fields\": {\"pkt_count\": {\"regex\": \"^18446744073709551615$\"},"
	     "   \"dst_ip\": {\"regex\": \"^10\\\\.99\\\\.\"}}}]}}",
	     &f);
	FAILS_EXACT(
		"{\"records\": {\"match\": [{\"count\": 1, \"fields\": {\"src_port\": {\"exact\": 41000}}}]}}",
		&f, "expect.records.match[0]: src_port: expected exact 41000, got 40000");
	FAILS_EXACT(
		"{\"records\": {\"match\": [{\"fields\": {\"src_ip\": {\"exact\": \"10.99.0.1\"}}}]}}",
		&f,
		"expect.records.match[0]: src_ip: expected exact \"10.99.0.1\", got \"10.99.0.2\"");
	FAILS_EXACT(
		"{\"records\": {\"order\": \"ordered\", \"match\": ["
		" {\"fields\": {\"dst_port\": {\"exact\": 443}}}, {\"fields\": {\"dst_port\": {\"exact\": 5353}}}]}}",
		&f,
		"expect.records.match[1]: out of order: expected 1 matching records after "
		"record 1 (matched by match[0]), found 0");
	FAILS_EXACT("{\"records\": {\"exhaustive\": true, \"match\": ["
		    " {\"fields\": {\"dst_port\": {\"exact\": 443}}}]}}",
		    &f,
		    "expect.records.exhaustive: expected every record to match an item of "
		    "expect.records.match, got record 0 matching none");

	/* first_seen_ns going backwards, then one padding byte set. */
	put_rec(&rb, 1, 2, 3, 4, 1, 1, 1500, 0);
	set_records(&f, &rb);
	FAILS_EXACT(
		"{\"records\": {\"monotonic\": [\"pkt_count\", \"first_seen_ns\"]}}", &f,
		"expect.records.monotonic: record 2: expected pkt_count 18446744073709551615 or "
		"more (record 1's), got 1");
	PASS("{\"records\": {\"pad_zero\": true, \"monotonic\": [\"pad0\"]}}", &f);
	rb.b[44 + 4 + 35] = 0xAA;
	set_records(&f, &rb);
	FAILS_EXACT(
		"{\"records\": {\"pad_zero\": true}}", &f,
		"expect.records.pad_zero: record 1: pad1: expected zeros, got 00 00 aa 00 00 00 00");
	FAILS("{\"records\": {\"match\": [{\"fields\": {\"pad1\": {\"exact\": 0}}, \"count\": 3}]}}",
	      &f,
	      "expected 3 matching records, got 2; closest miss (record 1): pad1: expected exact 0, got 730144440320");
	rb.b[44 + 4 + 35] = 0;
	rb.b[4 + 13] = 0xAA;
	rb.b[4 + 14] = 0xAA;
	rb.b[4 + 15] = 0xAA;
	set_records(&f, &rb);
	FAILS_EXACT("{\"records\": {\"pad_zero\": true}}", &f,
		    "expect.records.pad_zero: record 0: pad0: expected zeros, got aa aa aa");
	fx_done(&f);
}

/* A 64-byte v2 frame (SPEC 1.2): addresses network order, the rest host order. */
static void put_rec_v2(struct recbuf *rb, const char *src, const char *dst, uint16_t sp,
		       uint16_t dp, uint8_t proto, uint8_t family, uint64_t pkts, uint64_t bytes)
{
	unsigned char *p = rb->b + rb->len;

	p[0] = 64, p[1] = p[2] = p[3] = 0;
	p += 4;
	memset(p, 0, 64);
	inet_pton(AF_INET6, src, p);
	inet_pton(AF_INET6, dst, p + 16);
	memcpy(p + 32, &sp, 2);
	memcpy(p + 34, &dp, 2);
	p[36] = proto;
	p[37] = family;
	p[38] = 1;
	memcpy(p + 40, &pkts, 8);
	memcpy(p + 48, &bytes, 8);
	rb->len += 68;
}

TEST(records_v2)
{
	struct recbuf rb = { 0 };
	struct fx f;

	fx_init(&f);
	put_rec_v2(&rb, "fd00:99::2", "fd00:99::1", 40101, 7101, 17, 6, 1, 112);
	put_rec_v2(&rb, "::ffff:10.99.0.2", "::ffff:10.99.0.1", 40141, 7141, 17, 4, 1, 37);
	set_records(&f, &rb);
	PASS("{\"records\": {\"pad_zero\": true, \"exhaustive\": true, \"match\": ["
	     " {\"count\": 1, \"fields\": {\"src_addr\": {\"exact\": \"fd00:99::2\"},"
	     "   \"dst_addr\": {\"regex\": \"^fd00:99::1$\"}, \"family\": {\"exact\": 6},"
	     "   \"byte_count\": {\"exact\": 112}, \"src_port\": {\"exact\": 40101}}},"
	     " {\"count\": 1, \"fields\": {\"dst_addr\": {\"exact\": \"::ffff:10.99.0.1\"},"
	     "   \"family\": {\"exact\": 4}, \"pad0\": {\"exact\": 0}}}]}}",
	     &f);
	ERRORS("{\"records\": {\"match\": [{\"fields\": {\"src_ip\": {\"exact\": 1}}}]}}", &f,
	       -EINVAL, "records: \"src_ip\" is not a field of a v2 record");
	rb.b[4 + 39] = 0x5A;
	set_records(&f, &rb);
	FAILS_EXACT("{\"records\": {\"pad_zero\": true}}", &f,
		    "expect.records.pad_zero: record 0: pad0: expected zeros, got 5a");
	rb.b[4 + 39] = 0;
	put_rec(&rb, 1, 2, 3, 4, 6, 1, 1, 1); /* a v1 frame after v2 frames */
	set_records(&f, &rb);
	FAILS_EXACT("{\"records\": {}}", &f,
		    "expect.records: frame 2 at byte 136: length 40 after v2 records: one "
		    "stream mixes record versions");
	fx_done(&f);
}

TEST(records_bad_frames)
{
	static const char expect[] = "{\"records\": {\"pad_zero\": true}}";
	struct recbuf rb = { 0 };
	struct fx f;

	fx_init(&f);
	put_rec(&rb, 1, 2, 3, 4, 6, 1, 1, 1);
	put_rec(&rb, 1, 2, 3, 4, 6, 1, 1, 1);
	rb.len -= 10; /* truncated body */
	set_records(&f, &rb);
	FAILS_EXACT(expect, &f,
		    "expect.records: frame 1 at byte 44: truncated body (30 of 40 bytes)");
	rb.len = 44 + 2; /* truncated length */
	set_records(&f, &rb);
	FAILS_EXACT(expect, &f,
		    "expect.records: frame 1 at byte 44: truncated length (2 of 4 bytes)");
	rb.len = 88;
	rb.b[44] = 0xff, rb.b[45] = 0xff, rb.b[46] = 0xff, rb.b[47] = 0xff; /* 2^32-1 */
	set_records(&f, &rb);
	FAILS_EXACT(expect, &f,
		    "expect.records: frame 1 at byte 44: length 4294967295, a v1 record is 40 "
		    "bytes, a v2 record 64");
	FAILS("{\"counts\": {\"records\": 1}}", &f, "expect.counts.records: frame 1 at byte 44");
	fx_done(&f);
}

/* ---- responses ----------------------------------------------------------------------------------
 */

TEST(responses)
{
	struct fx f;

	fx_init(&f);
	PASS("{\"responses\": [{\"step\": \"q1\", \"none\": true}]}", &f);
	FAILS_EXACT(
		"{\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"present\": true}}}]}",
		&f,
		"expect.responses[0] (q1): expected a response, got none (the step did not record one)");
	f.resps[0].step = "q1";
	f.resps[0].result =
		json_pack("{s:s,s:[],s:{s:i}}", "rcode", "NOERROR", "replies", "dns", "ancount", 1);
	f.o.n_resps = 1;
	PASS("{\"responses\": [{\"step\": \"q1\", \"none\": true}]}", &f);
	PASS("{\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"exact\": \"NOERROR\"},"
	     " \"dns.ancount\": {\"range\": [1, 5]}}}]}",
	     &f);
	FAILS_EXACT(
		"{\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"exact\": \"REFUSED\"}}}]}",
		&f, "expect.responses[0] (q1): rcode: expected exact \"REFUSED\", got \"NOERROR\"");
	/* Every field is judged: a wrong RCODE does not hide a wrong count (CHK-RUN-004). */
	FAILS_EXACT("{\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"exact\": "
		    "\"REFUSED\"}, \"dns.ancount\": {\"range\": [5, 6]}}}]}",
		    &f,
		    "expect.responses[0] (q1): rcode: expected exact \"REFUSED\", got \"NOERROR\" "
		    "(and 1 more)");
	json_object_set_new(f.resps[0].result, "replies", json_pack("[s]", "00ff"));
	FAILS_EXACT("{\"responses\": [{\"step\": \"q1\", \"none\": true}]}", &f,
		    "expect.responses[0] (q1): expected no response, got {\"dns\":{\"ancount\":1},"
		    "\"rcode\":\"NOERROR\",\"replies\":[\"00ff\"]}");
	json_decref(f.resps[0].result);
	/* The driver got nothing: one problem for the answer, not one per field. */
	f.resps[0].result = json_pack("{s:b, s:s}", "none", 1, "error", "ETIMEDOUT");
	FAILS_EXACT(
		"{\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"exact\": "
		"\"NOERROR\"}, \"dns.ancount\": {\"exact\": 1}}}]}",
		&f,
		"expect.responses[0] (q1): expected a response with rcode dns.ancount, got none "
		"(ETIMEDOUT)");
	json_decref(f.resps[0].result);
	fx_done(&f);
}

/* ---- DNS messages compared after decoding, long values by their first difference ---------- */

/* a.example.test A, ID 0x4a21, QR RD RA, one answer: 60 IN A 192.0.2.1. */
#define DNS_HDR	 "4a21858000010001"
#define DNS_Q	 "000000000161076578616d706c6504746573740000010001"
#define DNS_AN1	 "c00c000100010000003c0004c0000201"
#define DNS_RESP DNS_HDR DNS_Q DNS_AN1

/* One response q1 with this result, checked against one field's exact value. */
static bool resp_exact(const char *file, int line, struct fx *f, json_t *result, const char *key,
		       const char *want_json, const char *want_msg)
{
	_cleanup_free_ char *expect = NULL;
	bool ok;

	f->resps[0].step = "q1";
	f->resps[0].result = result;
	f->o.n_resps = 1;
	if (asprintf(&expect,
		     "{\"responses\": [{\"step\": \"q1\", \"fields\": {\"%s\": {\"exact\": %s}}}]}",
		     key, want_json) < 0)
		return false;
	ok = outcome(file, line, NULL, expect, f, 1, want_msg, true);
	json_decref(result);
	f->resps[0].result = NULL;
	return ok;
}

#define RAW_DIFF(f, got, want_msg)                                                       \
	resp_exact(__FILE__, __LINE__, f, json_pack("{s:s}", "raw_hex", got), "raw_hex", \
		   "\"" DNS_RESP "\"", want_msg)

TEST(responses_dns_decoded)
{
	struct fx f;

	fx_init(&f);
	RAW_DIFF(
		&f, "4a22858000010001" DNS_Q DNS_AN1,
		"expect.responses[0] (q1): raw_hex: differs at header.id: expected 18977 (0x4a21), "
		"got 18978 (0x4a22)");
	RAW_DIFF(
		&f, "4a21858200010001" DNS_Q DNS_AN1,
		"expect.responses[0] (q1): raw_hex: differs at header.rcode: expected 0 (NOERROR), "
		"got 2 (SERVFAIL)");
	RAW_DIFF(
		&f, DNS_HDR DNS_Q "c00c0001000100000d050004c0000201",
		"expect.responses[0] (q1): raw_hex: differs at answer[0].ttl: expected 60, got 3333");
	RAW_DIFF(
		&f, DNS_HDR DNS_Q "c00c000100010000003c0004c0000209",
		"expect.responses[0] (q1): raw_hex: differs at answer[0].rdata: expected 192.0.2.1, "
		"got 192.0.2.9");
	/* The client's case is kept by a forwarder (0x20): names compare byte for byte. */
	RAW_DIFF(&f, DNS_HDR "000000000161076578616d706c6504544553540000010001" DNS_AN1,
		 "expect.responses[0] (q1): raw_hex: differs at question[0].name: expected "
		 "a.example.test., got a.example.TEST.");
	RAW_DIFF(&f, "4a21858000010002" DNS_Q DNS_AN1 "c00c000100010000003c0004c0000202",
		 "expect.responses[0] (q1): raw_hex: differs at answer: expected 1 record, got 2 "
		 "records (answer[1]: a.example.test. 60 IN A 192.0.2.2)");
	/* An EDNS OPT the expected message does not have, then one with another UDP size. */
	RAW_DIFF(&f,
		 "4a21858000010001000000010161076578616d706c6504746573740000010001" DNS_AN1
		 "0000290fa0000000000000",
		 "expect.responses[0] (q1): raw_hex: differs at additional: expected 0 records, "
		 "got 1 record (additional[0]: . OPT udp_size 4000 ext_rcode 0 version 0 do 0 "
		 "rdata )");
	/* A side that does not decode: said so, then the first differing byte. */
	RAW_DIFF(&f, "4a2185800001000100",
		 "expect.responses[0] (q1): raw_hex: got a message that does not decode as DNS (9 "
		 "bytes, shorter than the 12-byte header); first differing byte at offset 9: "
		 "expected 0x00, got the end (9 bytes)");
	RAW_DIFF(&f, DNS_HDR DNS_Q "c00c000100010000003c0009c0000201",
		 "expect.responses[0] (q1): raw_hex: got a message that does not decode as DNS "
		 "(answer[0]: rdata: 9 bytes, 4 left); first differing byte at offset 43: expected "
		 "0x04, got 0x09");
	/* Equal when decoded (the answer's owner written out instead of a pointer). */
	RAW_DIFF(&f,
		 DNS_HDR DNS_Q "0161076578616d706c6504746573740000010001"
			       "0000003c0004c0000201",
		 "expect.responses[0] (q1): raw_hex: every decoded field is equal (name "
		 "compression differs?); first differing byte at offset 32: expected 0xc0, got "
		 "0x01");
	fx_done(&f);
}

TEST(responses_dns_edns_frames_and_streams)
{
	static const char opt_1232[] =
		"\"4a21000000010000000000010141074578616d706c650454455354000001"
		"000100002904d0000000000000\"";
	struct fx f;

	fx_init(&f);
	/* The client's EDNS UDP size (1232) rewritten to 4000 by a forwarder. */
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:s}", "raw_hex",
			     "4a21000000010000000000010141074578616d706c650454455354000001"
			     "00010000290fa0000000000000"),
		   "raw_hex", opt_1232,
		   "expect.responses[0] (q1): raw_hex: differs at edns.udp_size: expected 1232, "
		   "got 4000");
	/* frames: the array's item, then the message inside it. */
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:[s,s]}", "frames", DNS_RESP, "4a21858500010001" DNS_Q DNS_AN1),
		   "frames", "[\"" DNS_RESP "\", \"" DNS_RESP "\"]",
		   "expect.responses[0] (q1): frames[1]: differs at header.rcode: expected 0 "
		   "(NOERROR), got 5 (REFUSED)");
	/* A tcp_send result's hex is the stream: frame by frame. */
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:s}", "hex",
			     "0030" DNS_RESP "0030" DNS_HDR DNS_Q
			     "c00c000100010000003c0004c0000202"),
		   "hex", "\"0030" DNS_RESP "0030" DNS_RESP "\"",
		   "expect.responses[0] (q1): hex: frame[1] differs at answer[0].rdata: expected "
		   "192.0.2.1, got 192.0.2.2");
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:s}", "hex", "0030" DNS_RESP), "hex",
		   "\"0030" DNS_RESP "0030" DNS_RESP "\"",
		   "expect.responses[0] (q1): hex: expected 2 frames, got 1");
	/* A frame or a message that never came: what it would have been, in a few words. */
	resp_exact(
		__FILE__, __LINE__, &f, json_pack("{s:[]}", "frames"), "frames",
		"[\"" DNS_RESP "\"]",
		"expect.responses[0] (q1): frames: expected 1 item, got 0 (missing [0]: a DNS "
		"response ID 18977 (0x4a21) NOERROR, a.example.test. IN A, 1 answer, 0 authority, "
		"0 additional)");
	resp_exact(
		__FILE__, __LINE__, &f, json_pack("{s:s}", "raw_hex", ""), "raw_hex",
		"\"" DNS_RESP "\"",
		"expect.responses[0] (q1): raw_hex: expected a DNS response ID 18977 (0x4a21) "
		"NOERROR, a.example.test. IN A, 1 answer, 0 authority, 0 additional, got nothing "
		"(0 bytes)");
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:s}", "hex", ""), "hex",
		   "\"0030" DNS_RESP "\"",
		   "expect.responses[0] (q1): hex: expected 50 bytes, got nothing (0 bytes)");
	fx_done(&f);
}

/* The decoder's text of each record type it knows, names through compression pointers. */
TEST(dns_records_as_text)
{
	static const char hex[] =
		"1234818000010006000000000174076578616d706c650000ff0001"
		"c00c000f00010000012c0007000a026d78c00e"
		"c00c000600010000012c0020026e73c00e04686f7374c00e0000000100000e100000070800093a80"
		"0000003c"
		"c00c001000010000012c000d0568656c6c6f06776f22726c64"
		"c00c001c00010000012c001020010db8000000000000000000000001"
		"c00c002100010000012c000b000a00140035027376c00e"
		"c00cff0000010000012c0003010203";
	static const char *const want[] = {
		"t.example. 300 IN MX 10 mx.example.",
		"t.example. 300 IN SOA ns.example. host.example. 1 3600 1800 604800 60",
		"t.example. 300 IN TXT \"hello\" \"wo\\\"rld\"",
		"t.example. 300 IN AAAA 2001:db8::1",
		"t.example. 300 IN SRV 10 20 53 sv.example.",
		"t.example. 300 IN TYPE65280 \\# 3 010203",
	};
	_cleanup_free_ uint8_t *b = NULL;
	struct hdns_msg m;
	struct hdns_diff d;
	char why[160];
	size_t n;

	ASSERT_OK(hdns_unhex(hex, strlen(hex), &b, &n));
	if (!ASSERT_OK(hdns_decode(b, n, &m, why, sizeof(why))))
		tap_diag("%s", why);
	ASSERT_EQ(m.count[HDNS_AN], ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < m.count[HDNS_AN]; i++) {
		_cleanup_free_ char *t = hdns_rr_text(&m, HDNS_AN, i);

		if (!ASSERT_TRUE(t && strcmp(t, want[i]) == 0))
			tap_diag("answer[%zu]: \"%s\", want \"%s\"", i, t, want[i]);
	}
	{
		_cleanup_free_ char *q = hdns_rr_text(&m, HDNS_QD, 0);

		ASSERT_TRUE(q && strcmp(q, "t.example. IN ANY") == 0);
	}
	ASSERT_EQ(hdns_diff(&m, &m, &d), 0);
	hdns_msg_free(&m);
	/* A pointer loop and a pointer past the end do not decode, and say where. */
	ASSERT_LE(n, 255);
	b[n - 15] = 0xc0, b[n - 14] = (uint8_t)(n - 15); /* the last owner points at itself */
	ASSERT_EQ(hdns_decode(b, n, &m, why, sizeof(why)), -EBADMSG);
	ASSERT_TRUE(strstr(why, "answer[5]: name: pointer loop at byte"));
	b[n - 14] = 0xff; /* past the end */
	ASSERT_EQ(hdns_decode(b, n, &m, why, sizeof(why)), -EBADMSG);
	ASSERT_TRUE(strstr(why, "answer[5]: name: message ends at byte"));
	ASSERT_EQ(hdns_unhex("0g", 2, &b, &n), -EINVAL);
	ASSERT_EQ(hdns_unhex("abc", 3, &b, &n), -EINVAL);
}

/* Both sides in full go with the problem (result.json), whatever the message shows. */
TEST(problems_carry_both_values_in_full)
{
	_cleanup_free_ char *text = NULL, *big = NULL, *big2 = NULL;
	struct hexp_problem *p = NULL;
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;
	size_t n = 0;
	json_t *doc;
	struct fx f;

	fx_init(&f);
	big = malloc(1001);
	big2 = malloc(1001);
	memset(big, 'a', 1000);
	big[1000] = '\0';
	memcpy(big2, big, 1001);
	big2[700] = 'b';
	f.resps[0].step = "q1";
	f.resps[0].result =
		json_pack("{s:s, s:s}", "raw_hex", "4a21858200010001" DNS_Q DNS_AN1, "long", big2);
	f.o.n_resps = 1;
	ASSERT_TRUE(asprintf(&text,
			     "{\"id\": \"t.full\", \"title\": \"t\", \"component\": \"dns-proxy\","
			     " \"uses\": [\"dns-proxy\"],"
			     " \"requirements\": [{\"id\": \"DNS-FWD-001\", \"level\": \"MUST\"}],"
			     " \"fault\": \"dns.x\", \"topology\": {\"namespaces\": [\"cell\"]},"
			     " \"steps\": %s, \"expect\": {\"responses\": [{\"step\": \"q1\","
			     " \"fields\": {\"raw_hex\": {\"exact\": \"%s\"},"
			     " \"long\": {\"exact\": \"%s\"}}}]}}",
			     DEFAULT_STEPS, DNS_RESP, big) >= 0);
	doc = json_loads(text, 0, NULL);
	ASSERT_TRUE(doc);
	if (!ASSERT_OK(hcase_from_json(doc, "mem.json", "$", &c, &err)))
		tap_diag("%s: %s", err.path, err.msg);
	json_decref(doc);
	ASSERT_EQ(hexp_check_all(c, &f.o, &p, &n), 1);
	if (ASSERT_EQ(n, 2)) {
		/* In the case's order: raw_hex, then long. */
		ASSERT_TRUE(strstr(p[0].msg, "differs at header.rcode"));
		ASSERT_FALSE(strstr(p[0].msg, DNS_Q));
		ASSERT_TRUE(p[0].expected && strcmp(p[0].expected, DNS_RESP) == 0);
		ASSERT_TRUE(p[0].got && strcmp(p[0].got, "4a21858200010001" DNS_Q DNS_AN1) == 0);
		ASSERT_TRUE(strstr(p[1].msg, "long: differs at byte 700: expected \"...aaaa"));
		ASSERT_LE(strlen(p[1].msg), 300);
		ASSERT_TRUE(p[1].expected && strlen(p[1].expected) == 1002);
		ASSERT_TRUE(p[1].got && strlen(p[1].got) == 1002 && p[1].got[701] == 'b');
	}
	hexp_problems_free(p, n);
	hcase_free(c);
	json_decref(f.resps[0].result);
	fx_done(&f);
}

TEST(long_values_named_by_first_difference)
{
	char exp[400], got[400], want[600], want2[400];
	struct fx f;
	int o;

	fx_init(&f);
	/* A client's stdout: the line that differs, not the whole text. */
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:i, s:s}", "exit", 0, "stdout", "ok\nname: a\nttl: 300\nend\n"),
		   "stdout", "\"ok\\nname: a\\nttl: 3333\\nend\\n\"",
		   "expect.responses[0] (q1): stdout line 3: expected \"ttl: 3333\", got \"ttl: "
		   "300\"");
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:s}", "stdout", "ok\n"), "stdout",
		   "\"ok\\nmore\\n\"",
		   "expect.responses[0] (q1): stdout line 2: expected \"more\", got end of text (1 "
		   "lines)");
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:s}", "stdout", "ok"), "stdout",
		   "\"ok\\n\"",
		   "expect.responses[0] (q1): stdout line 1: expected \"ok\" then a line end, got "
		   "\"ok\" then the end of text");
	/* One long line: cut around the difference, its offset named. */
	memset(exp, 'x', 300);
	exp[300] = '\0';
	memcpy(got, exp, 301);
	got[250] = 'Y';
	snprintf(want, sizeof(want), "\"%s\"", exp);
	/* From a third of the window before the difference (byte 217) to the end. */
	o = snprintf(want2, sizeof(want2),
		     "expect.responses[0] (q1): text: differs at byte 250: expected \"...%.83s\", "
		     "got \"...",
		     exp);
	snprintf(want2 + o, sizeof(want2) - (size_t)o, "%.83s\"", got + 217);
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:s}", "text", got), "text", want, want2);
	/* Arrays and objects: the first differing member by its path. */
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:[s,s]}", "answers", "a.example.test. 60 IN A 192.0.2.1",
			     "a.example.test. 300 IN A 192.0.2.2"),
		   "answers",
		   "[\"a.example.test. 60 IN A 192.0.2.1\", \"a.example.test. 60 IN A 192.0.2.2\"]",
		   "expect.responses[0] (q1): answers[1]: expected \"a.example.test. 60 IN A "
		   "192.0.2.2\", got \"a.example.test. 300 IN A 192.0.2.2\"");
	resp_exact(__FILE__, __LINE__, &f,
		   json_pack("{s:[s]}", "answers", "a.example.test. 60 IN A 192.0.2.1"), "answers",
		   "[\"a.example.test. 60 IN A 192.0.2.1\", \"a.example.test. 60 IN A 192.0.2.2\"]",
		   "expect.responses[0] (q1): answers: expected 2 items, got 1 (missing [1]: "
		   "\"a.example.test. 60 IN A 192.0.2.2\")");
	resp_exact(__FILE__, __LINE__, &f, json_pack("{s:{s:{s:i}}}", "edns", "opt", "udp", 1232),
		   "edns", "{\"opt\": {\"udp\": 4000}}",
		   "expect.responses[0] (q1): edns.opt.udp: expected 4000, got 1232");
	fx_done(&f);
}

/* A regex over a long output: the first literal it needs that is not there, and where its start is.
 */
TEST(regex_over_long_output_names_what_is_missing)
{
	static const char re[] = "^\\\\{\\\"probe\\\":\\\"proc\\\",.*\\\"threads\\\":\\\\[\\\\{"
				 "\\\"tid\\\":[0-9]+,[^{}]*\\\"nonewprivs\\\":1,[^{}]*\\\\}";
	_cleanup_free_ char *out = NULL, *expect = NULL;
	char pad[301];
	struct fx f;

	fx_init(&f);
	memset(pad, 'x', 300);
	pad[300] = '\0';
	ASSERT_TRUE(
		asprintf(
			&out,
			"{\"probe\":\"proc\",\"pid\":1,\"cmdline\":[\"%s\"],\"threads\":[{\"tid\":7,"
			"\"uid\":[0,0,0],\"nonewprivs\":0,\"seccomp\":2}],\"fds\":[]}\n",
			pad) > 0);
	set_out(&f, out);
	ASSERT_TRUE(asprintf(&expect, "{\"stdout\": {\"regex\": \"%s\"}}", re) > 0);
	FAILS(expect, &f,
	      ", got 412 bytes without \"\\\"nonewprivs\\\":1,\"; its start "
	      "\"\\\"nonewprivs\\\":\" is at byte 373: \"...id\\\":7,");
	FAILS(expect, &f, "\\\"nonewprivs\\\":0,\\\"seccomp\\\":2}],\\\"fds\\\":[]}\\n\"");
	/* Literals under a quantifier, in brackets, groups or alternatives are not required. */
	static const char *const odd[] = {
		"absentx*",	    "[]absent]{2}qqq", "[[:alpha:]absent]zzz$",
		"(absent)?nothere", "nope|absent",     "x{1,2}yabsent"
	};
	static const char *const miss[] = {
		"without \"absent\"",  "without \"qqq\"", "without \"zzz\"",
		"without \"nothere\"", "got \"{",	  "without \"yabsent\""
	};

	/* Every literal is there: where it stops matching (the second thread), what it wants. */
	free(expect);
	free(out);
	ASSERT_TRUE(asprintf(&out,
			     "{\"probe\":\"proc\",\"cmdline\":[\"%s\"],\"threads\":[{\"tid\":7,"
			     "\"CapInh\":\"0000000000000000\",\"x\":1},{\"tid\":8,\"CapInh\":"
			     "\"0000000000000400\",\"x\":1}],\"fds\":[]}\n",
			     pad) > 0);
	set_out(&f, out);
	ASSERT_TRUE(asprintf(&expect,
			     "{\"stdout\": {\"regex\": \"^\\\\{.*\\\"threads\\\":\\\\[\\\\{"
			     "\\\"tid\\\":[0-9]+,\\\"CapInh\\\":\\\"0{16}\\\",[^{}]*\\\\}"
			     "(,\\\\{\\\"tid\\\":[0-9]+,\\\"CapInh\\\":\\\"0{16}\\\",[^{}]*\\\\})*"
			     "\\\\],\\\"fds\\\":\"}}") > 0);
	FAILS(expect, &f,
	      ", got 441 bytes; the regex matches up to byte 385, then expects \"\\\\]\", "
	      "where the output reads \"...");
	FAILS(expect, &f, "{\\\"tid\\\":8,\\\"CapInh\\\":\\\"0000000000000400\\\"");
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		free(expect);
		ASSERT_TRUE(asprintf(&expect, "{\"stdout\": {\"regex\": \"%s\"}}", odd[i]) > 0);
		FAILS(expect, &f, miss[i]);
	}
	fx_done(&f);
}

/* ---- counts
 * ----------------------------------------------------------------------------------------- */

TEST(counts)
{
	struct recbuf rb = { 0 };
	struct fx f;

	fx_init(&f);
	set_events(&f, STREAM);
	put_rec(&rb, 1, 2, 3, 4, 6, 1, 1, 1);
	set_records(&f, &rb);
	PASS("{\"counts\": {\"records\": 1, \"events\": 4, \"events:network_flow_decision\": 2,"
	     " \"events:" NS "flow_monitor_started\": {\"range\": [1, 1]}, \"events:dns_query\": 0,"
	     " \"lost\": 0}}",
	     &f);
	FAILS_EXACT("{\"counts\": {\"records\": 2}}", &f,
		    "expect.counts.records: expected exact 2, got 1");
	FAILS_EXACT("{\"counts\": {\"events:network_flow_decision\": {\"range\": [3, 9]}}}", &f,
		    "expect.counts.events:network_flow_decision: expected range [3, 9], got 2");
	FAILS_EXACT("{\"counts\": {\"lost\": {\"range\": [1, 100]}}}", &f,
		    "expect.counts.lost: expected range [1, 100], got 0");
	set_events(&f, EV("flow_monitor_summary", "\"recordsLost\":18446744073709551615"));
	json_object_set_new(f.vars, "max", json_string("18446744073709551615"));
	PASS("{\"counts\": {\"lost\": {\"range\": [\"{max}\", \"{max}\"]}}}", &f);
	set_events(&f, EV("flow_monitor_started", ""));
	FAILS_EXACT("{\"counts\": {\"lost\": 0}}", &f,
		    "expect.counts.lost: expected one flow_monitor_summary event, got 0");
	set_events(&f, EV("flow_monitor_summary", "\"recordsLost\":\"0\""));
	FAILS_EXACT("{\"counts\": {\"lost\": 0}}", &f,
		    "expect.counts.lost: expected data.recordsLost of flow_monitor_summary to be a "
		    "number, got \"0\"");
	ERRORS("{\"counts\": {\"upstream_queries\": 0}}", &f, -EINVAL,
	       "expect.counts.upstream_queries: the case has no upstream");
	f.o.upstream_queries = 3;
	PASS("{\"counts\": {\"upstream_queries\": 3}}", &f);
	FAILS_EXACT("{\"counts\": {\"upstream_queries\": {\"range\": [0, 0]}}}", &f,
		    "expect.counts.upstream_queries: expected range [0, 0], got 3");
	fx_done(&f);
}

TEST(counts_summed)
{
	struct recbuf rb = { 0 };
	struct fx f;

	fx_init(&f);
	set_events(&f, EV("flow_monitor_summary", "\"recordsLost\":5"));
	put_rec(&rb, 1, 2, 3, 4, 6, 1, 1, 1);
	put_rec(&rb, 1, 2, 3, 5, 6, 1, 1, 1);
	set_records(&f, &rb);
	PASS("{\"counts\": {\"records+lost\": 7}}", &f);
	PASS("{\"counts\": {\"records+lost+events\": {\"range\": [8, 8]}}}", &f);
	FAILS_EXACT("{\"counts\": {\"records+lost\": 8}}", &f,
		    "expect.counts.records+lost: expected exact 8, got 7");
	fx_done(&f);
}

/* expect.btf against the build's own BPF object (the reference's record layout). */
TEST(btf_layout_of_the_bpf_object)
{
	static const char members[] = "[{\"name\": \"src_ip\", \"offset\": 0, \"size\": 4},"
				      " {\"name\": \"dst_ip\", \"offset\": 4, \"size\": 4},"
				      " {\"name\": \"src_port\", \"offset\": 8, \"size\": 2},"
				      " {\"name\": \"dst_port\", \"offset\": 10, \"size\": 2},"
				      " {\"name\": \"proto\", \"offset\": 12, \"size\": 1},"
				      " {\"name\": \"pad0\", \"offset\": 13, \"size\": 3},"
				      " {\"name\": \"pkt_count\", \"offset\": 16, \"size\": 8},"
				      " {\"name\": \"first_seen_ns\", \"offset\": 24, \"size\": 8},"
				      " {\"name\": \"verdict\", \"offset\": 32, \"size\": 1},"
				      " {\"name\": \"pad1\", \"offset\": 33, \"size\": 7}]";
	char expect[2048];
	struct fx f;

	fx_init(&f);
	f.o.bpf_object = getenv("FLOWMON_BPF_O");
	if (!f.o.bpf_object)
		tap_skip("FLOWMON_BPF_O is not set (run through meson test)");
	snprintf(
		expect, sizeof(expect),
		"{\"btf\": {\"artifact\": \"bpf_object\", \"struct\": \"flowrec_v1\", \"size\": 40,"
		" \"exhaustive\": true, \"members\": %s}}",
		members);
	PASS(expect, &f);
	snprintf(
		expect, sizeof(expect),
		"{\"btf\": {\"artifact\": \"bpf_object\", \"struct\": \"flowrec_v1\", \"size\": 48,"
		" \"members\": []}}");
	FAILS_EXACT(expect, &f, "expect.btf: struct flowrec_v1: size 40, expected 48");
	snprintf(expect, sizeof(expect),
		 "{\"btf\": {\"artifact\": \"bpf_object\", \"struct\": \"flowrec_v1\","
		 " \"members\": [{\"name\": \"dst_port\", \"offset\": 8, \"size\": 2}]}}");
	FAILS_EXACT(expect, &f,
		    "expect.btf: struct flowrec_v1: dst_port: offset 10 size 2, expected offset 8 "
		    "size 2");
	snprintf(
		expect, sizeof(expect),
		"{\"btf\": {\"artifact\": \"bpf_object\", \"struct\": \"nosuch\", \"members\": []}}");
	FAILS(expect, &f, "expect.btf: expected struct nosuch in the BTF of");
	/* struct flowrec_v2 is in the object too (FLOW-REC-009); record_version is the skip
	 * rule's (hrun_case.c), the check itself ignores it. */
	snprintf(
		expect, sizeof(expect),
		"{\"btf\": {\"artifact\": \"bpf_object\", \"struct\": \"flowrec_v2\", \"size\": 64,"
		" \"record_version\": 2, \"members\": [{\"name\": \"src_addr\", \"offset\": 0,"
		" \"size\": 16}, {\"name\": \"family\", \"offset\": 37, \"size\": 1},"
		" {\"name\": \"byte_count\", \"offset\": 48, \"size\": 8}]}}");
	PASS(expect, &f);
	f.o.bpf_object = NULL;
	ERRORS(expect, &f, -ENOENT, "expect.btf: the profile names no artifacts.bpf_object");
	fx_done(&f);
}

/* ---- which process
 * ------------------------------------------------------------------------------------ */

TEST(expectations_read_the_named_step)
{
	static const char steps[] = "[{\"action\": \"start\", \"name\": \"dec\", \"component\": "
				    "\"decoder\"},"
				    " {\"action\": \"start\", \"name\": \"mon\"}]";
	char *msg = NULL;
	struct fx f;
	int r;

	fx_init(&f);
	f.procs[0].name = "dec";
	f.procs[0].out = "decoded\n";
	f.procs[0].out_len = 8;
	f.procs[1].name = "mon";
	f.o.n_procs = 2;
	/* No "step": the case's component is the flow monitor, so "mon" is read. */
	r = check_case(steps, "{\"stdout\": {\"step\": \"mon\", \"empty\": true}}", &f, &msg);
	ASSERT_EQ(r, 0);
	free(msg);
	r = check_case(steps, "{\"stdout\": {\"step\": \"dec\", \"empty\": true}}", &f, &msg);
	ASSERT_EQ(r, 1);
	free(msg);
	r = check_case(steps, "{\"counts\": {\"events\": 0}}", &f, &msg);
	ASSERT_EQ(r, 1);
	ASSERT_STREQ(
		msg,
		"expect.counts.events: expected an event stream from start step \"mon\", got none");
	free(msg);
	f.o.n_procs = 1;
	r = check_case(steps, "{\"stdout\": {\"step\": \"mon\", \"empty\": true}}", &f, &msg);
	ASSERT_ERR(r, -ENOENT);
	ASSERT_STREQ(msg, "expect.stdout: nothing observed of start step \"mon\"");
	free(msg);
	fx_done(&f);
}
