// SPDX-License-Identifier: Apache-2.0
/* Profiles: the reference profile loads; mistakes are errors naming their JSON path; a missing
 * component is legal; placeholders expand at load and at start time; SHA-256 is right. */
#include "hprof.h"
#include "hrep.h"
#include "hsha256.h"
#include "htest.h"
#include "tap.h"
#include "util.h"

static int load(const char *dir, const char *text, struct hprof **ret, struct hjson_err *err)
{
	_cleanup_free_ char *path = htest_write(dir, "p.json", text);

	if (!path)
		return -EIO;
	return hprof_load(path, "/B", "/S", ret, err);
}

static bool expect_error(const char *text, const char *want_path, const char *want_msg)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	struct hjson_err err = { 0 };
	struct hprof *p = NULL;
	bool ok;
	int r;

	r = load(dir, text, &p, &err);
	hprof_free(p);
	ok = ASSERT_ERR(r, -EINVAL);
	ok = ok && ASSERT_STREQ(err.path, want_path);
	ok = ok && tap_check(strstr(err.msg, want_msg) != NULL, __FILE__, __LINE__,
			     "message \"%s\" contains \"%s\"", err.msg, want_msg);
	return ok;
}

TEST(reference_profile_loads)
{
	_cleanup_free_ char *path = NULL, *missing = NULL;
	const char *src = getenv("CELLCHECK_SRCDIR");
	struct hjson_err err = { 0 };
	struct hprof *p = NULL;
	struct hprof_var vars[] = { { "ifname", "eth0" },   { "netns", "/proc/self/fd/7" },
				    { "events", "/tmp/e" }, { "records", "/tmp/r" },
				    { "ready_fd", "5" },    { "cell_id", "c" },
				    { "run_id", "r" } };
	char *extra[] = { (char *)"--drain-interval-ms", (char *)"10", NULL };
	char **argv = NULL;

	if (!src)
		tap_skip("CELLCHECK_SRCDIR is not set");
	if (asprintf(&path, "%s/fixtures/profiles/reference.json", src) < 0)
		return;
	if (!ASSERT_OK(hprof_load(path, "/build", NULL, &p, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(p->name, "reference");
	for (int c = 0; c < _HCASE_COMPONENT_MAX; c++)
		ASSERT_TRUE(p->comp[c].present);
	ASSERT_STREQ(p->comp[HCASE_DECODER].argv[0], "/build/ref/cellref");
	ASSERT_FALSE(p->comp[HCASE_DECODER].ready_fd);
	ASSERT_TRUE(p->comp[HCASE_FLOW_MONITOR].ready_fd);
	ASSERT_STREQ(p->comp[HCASE_FLOW_MONITOR].bpf_object, "/build/bpf/flowmon.bpf.o");
	ASSERT_STREQ(p->comp[HCASE_FLOW_MONITOR].binaries[0], "/build/ref/cellref");
	ASSERT_EQ(strlen(p->sha256), 64);
	if (ASSERT_OK(hprof_argv(p, HCASE_FLOW_MONITOR, vars, ARRAY_SIZE(vars), extra, &argv,
				 &missing))) {
		ASSERT_STREQ(argv[1], "flow-monitor");
		ASSERT_STREQ(argv[3], "eth0");
		ASSERT_STREQ(argv[5], "/proc/self/fd/7");
		ASSERT_STREQ(argv[17], "10");
		ASSERT_TRUE(argv[18] == NULL);
		hjson_strv_free(argv);
	}
	/* A per-case value the case did not give is named. */
	ASSERT_ERR(hprof_argv(p, HCASE_FLOW_MONITOR, vars, 2, NULL, &argv, &missing), -ENOENT);
	ASSERT_STREQ(missing, "events");
	/* The supervisor's cleanup command, with the case's extra arguments. */
	if (ASSERT_OK(hprof_cmd_argv(p, HCASE_SUPERVISOR, "cleanup", vars, ARRAY_SIZE(vars), extra,
				     &argv, &missing))) {
		ASSERT_STREQ(argv[0], "/build/ref/cellref");
		ASSERT_STREQ(argv[1], "cleanup");
		ASSERT_STREQ(argv[2], "--drain-interval-ms");
		hjson_strv_free(argv);
	}
	ASSERT_ERR(hprof_cmd_argv(p, HCASE_DECODER, "cleanup", vars, 0, NULL, &argv, &missing),
		   -ENOENT);
	hprof_free(p);
}

TEST(missing_component_is_legal)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	struct hjson_err err = { 0 };
	struct hprof *p = NULL;
	char **argv = NULL;

	if (!ASSERT_OK(load(dir,
			    "{\"profileVersion\": 1, \"name\": \"decoder-only\", \"components\": "
			    "{\"decoder\": {\"argv\": [\"{profiledir}/dec\", \"--x={{lit}}\"]}}}",
			    &p, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_TRUE(p->comp[HCASE_DECODER].present);
	ASSERT_FALSE(p->comp[HCASE_DNS_PROXY].present);
	ASSERT_TRUE(strstr(p->comp[HCASE_DECODER].argv[0], "/cellcheck-test.") != NULL);
	ASSERT_ERR(hprof_argv(p, HCASE_DNS_PROXY, NULL, 0, NULL, &argv, NULL), -ENOENT);
	if (ASSERT_OK(hprof_argv(p, HCASE_DECODER, NULL, 0, NULL, &argv, NULL))) {
		ASSERT_STREQ(argv[1], "--x={lit}");
		hjson_strv_free(argv);
	}
	hprof_free(p);
}

TEST(profile_errors_name_paths)
{
	expect_error("{\"profileVersion\": 2, \"name\": \"x\", \"components\": {}}",
		     "$.profileVersion", "out of range");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": {}, \"extra\": 1}",
		     "$.extra", "unknown key");
	expect_error("{\"profileVersion\": 1, \"components\": {}}", "$.name",
		     "required key missing");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"resolver\": {\"argv\": [\"a\"]}}}",
		     "$.components.resolver", "unknown component");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"decoder\": {\"argv\": [\"a\", \"{nope}\"]}}}",
		     "$.components.decoder.argv[1]", "unknown placeholder {nope}");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"decoder\": {\"argv\": [\"a\", \"{open\"]}}}",
		     "$.components.decoder.argv[1]", "unbalanced brace");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"supervisor\": {\"argv\": [\"a\"], \"commands\": {\"purge\": [\"b\"]}}}}",
		     "$.components.supervisor.commands.purge", "unknown key");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"supervisor\": {\"argv\": [\"a\"], \"commands\": {\"cleanup\": "
		     "[\"b\", \"{nope}\"]}}}}",
		     "$.components.supervisor.commands.cleanup[1]", "unknown placeholder {nope}");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"decoder\": {\"argv\": []}}}",
		     "$.components.decoder.argv", "empty array");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"dns-proxy\": {\"argv\": [\"a\"], \"ready\": \"fd\"}}}",
		     "$.components.dns-proxy", "never passes {ready_fd}");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"flow-monitor\": {\"argv\": [\"a\"], \"artifacts\": {\"btf\": \"x\"}}}}",
		     "$.components.flow-monitor.artifacts.btf", "unknown key");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"vars\": {\"events\": \"x\"}, "
		     "\"components\": {}}",
		     "$.vars.events", "built-in placeholder");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"vars\": {\"a\": \"{b}\"}, "
		     "\"components\": {}}",
		     "$.vars.a", "only {builddir}");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\",", "$", "invalid JSON at line 1");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"flow-monitor\": {\"argv\": [\"a\"], \"record_versions\": [1, 3]}}}",
		     "$.components.flow-monitor.record_versions[1]", "flow record version, 1 to 2");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"flow-monitor\": {\"argv\": [\"a\"], \"record_versions\": [2, 2]}}}",
		     "$.components.flow-monitor.record_versions[1]", "listed twice");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"flow-monitor\": {\"argv\": [\"a\"], \"record_versions\": []}}}",
		     "$.components.flow-monitor.record_versions", "at least one");
	expect_error("{\"profileVersion\": 1, \"name\": \"x\", \"components\": "
		     "{\"flow-monitor\": {\"argv\": [\"a\"], \"record_versions\": [\"2\"]}}}",
		     "$.components.flow-monitor.record_versions[0]", "flow record version");
}

/* record_versions: absent is v1 only; a list sets one bit per version (SPEC 10.2). */
TEST(record_versions_declared)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	struct hjson_err err = { 0 };
	struct hprof *p = NULL;

	if (!ASSERT_OK(load(dir,
			    "{\"profileVersion\": 1, \"name\": \"v\", \"components\": "
			    "{\"flow-monitor\": {\"argv\": [\"m\"], \"record_versions\": [2, 1]}, "
			    "\"decoder\": {\"argv\": [\"d\"]}}}",
			    &p, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_EQ(p->comp[HCASE_FLOW_MONITOR].record_versions, (1u << 1) | (1u << 2));
	ASSERT_EQ(p->comp[HCASE_DECODER].record_versions, 1u << 1);
	hprof_free(p);
}

TEST(expand_rules)
{
	struct hprof_var v[] = { { "a", "1" }, { "b", "{x}" } };
	_cleanup_free_ char *missing = NULL;
	char *out = NULL;

	ASSERT_OK(hprof_expand("x{a}y{b}{{z}}", v, 2, &out, NULL));
	ASSERT_STREQ(out, "x1y{x}{z}");
	free(out);
	ASSERT_ERR(hprof_expand("{c}", v, 2, &out, &missing), -ENOENT);
	ASSERT_STREQ(missing, "c");
	ASSERT_ERR(hprof_expand("a}b", v, 2, &out, NULL), -EINVAL);
	ASSERT_ERR(hprof_expand("{}", v, 2, &out, NULL), -EINVAL);
	ASSERT_ERR(hprof_expand("{a{b}}", v, 2, &out, NULL), -EINVAL);
}

TEST(sha256_vectors)
{
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	struct hsha256 s;
	char hex[65];

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		hsha256_init(&s);
		/* Byte by byte, to cross every block boundary path. */
		for (const char *p = v[i].in; *p; p++)
			hsha256_update(&s, p, 1);
		hsha256_final_hex(&s, hex);
		ASSERT_STREQ(hex, v[i].hex);
	}
	hsha256_init(&s);
	for (int i = 0; i < 1000000 / 1000; i++) {
		char a[1000];

		memset(a, 'a', sizeof(a));
		hsha256_update(&s, a, sizeof(a));
	}
	hsha256_final_hex(&s, hex);
	ASSERT_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	ASSERT_ERR(hsha256_file("/nonexistent", hex), -ENOENT);
}

TEST(profile_recorded_in_report)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *bin = NULL, *text = NULL;
	struct hjson_err err = { 0 };
	struct hprof *p = NULL;
	struct hrep *r = hrep_new();

	bin = htest_write(dir, "iut", "abc");
	if (!ASSERT_TRUE(bin && r) ||
	    asprintf(&text,
		     "{\"profileVersion\": 1, \"name\": \"v\", \"components\": {"
		     "\"decoder\": {\"argv\": [\"%s\"]},"
		     "\"flow-monitor\": {\"argv\": [\"%s\", \"{ready_fd}\"], "
		     "\"artifacts\": {\"bpf_object\": \"{profiledir}/missing.bpf.o\"}}}}",
		     bin, bin) < 0)
		return;
	if (!ASSERT_OK(load(dir, text, &p, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_OK(hprof_fill_report(p, r));
	ASSERT_STREQ(r->profile_name, "v");
	ASSERT_STREQ(r->profile_sha256, p->sha256);
	ASSERT_EQ(r->n_files, 3);
	ASSERT_STREQ(r->files[0].component, "decoder");
	ASSERT_STREQ(r->files[0].sha256,
		     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ASSERT_STREQ(r->files[2].role, "bpf_object");
	ASSERT_STREQ(r->files[2].sha256, "unavailable");
	hprof_free(p);
	hrep_free(r);
}
