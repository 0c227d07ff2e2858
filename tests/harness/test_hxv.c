// SPDX-License-Identifier: Apache-2.0
/*
 * The expectations' strict JSON reader (harness/hxv.h) on its own: what it accepts and how it
 * holds it (u64 and beyond as exact text, sorted members, paths), what it refuses and why (the
 * message names the problem and its byte), and value equality (member order free, an integer
 * never equal to a real).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hxv.h"
#include "tap.h"

/* Parse s (its strlen) into v; the arena is the caller's to free. */
static int parse(struct hxv_arena *a, const char *s, struct hxv *v, char *why, size_t why_len)
{
	why[0] = '\0';
	return hxv_parse(a, s, strlen(s), v, why, why_len);
}

/* s must be refused with a message that starts with want. */
static bool refused(const char *s, const char *want)
{
	struct hxv_arena a = { 0 };
	struct hxv v;
	char why[96];
	int r = parse(&a, s, &v, why, sizeof(why));
	bool ok = ASSERT_ERR(r, -EBADMSG);

	ok = ok && tap_check(strncmp(why, want, strlen(want)) == 0, __FILE__, __LINE__,
			     "%s: expected \"%s...\", got \"%s\"", s, want, why);
	hxv_arena_free(&a);
	return ok;
}

static bool same(const char *x, const char *y)
{
	struct hxv_arena a = { 0 };
	struct hxv vx, vy;
	char why[96];
	bool eq = parse(&a, x, &vx, why, sizeof(why)) == 0 &&
		  parse(&a, y, &vy, why, sizeof(why)) == 0 && hxv_equal(&vx, &vy);

	hxv_arena_free(&a);
	return eq;
}

TEST(scalars_keep_their_text)
{
	struct hxv_arena a = { 0 };
	struct hxv v;
	char why[96];

	if (!ASSERT_OK(parse(&a, " 18446744073709551615 ", &v, why, sizeof(why))))
		goto out;
	ASSERT_EQ(v.t, HXV_INT);
	ASSERT_STREQ(v.s, "18446744073709551615");
	/* Beyond u64 too: jansson would refuse it, the reader keeps the digits. */
	if (!ASSERT_OK(parse(&a, "340282366920938463463374607431768211456", &v, why, sizeof(why))))
		goto out;
	ASSERT_EQ(v.t, HXV_INT);
	ASSERT_EQ(v.n, 39);
	if (!ASSERT_OK(parse(&a, "-1.5e3", &v, why, sizeof(why))))
		goto out;
	ASSERT_EQ(v.t, HXV_REAL);
	ASSERT_STREQ(v.s, "-1.5e3");
	if (!ASSERT_OK(parse(&a, "\"a\\u00e9\\ud83d\\ude00\\n\"", &v, why, sizeof(why))))
		goto out;
	ASSERT_EQ(v.t, HXV_STR);
	ASSERT_EQ(v.n, 1 + 2 + 4 + 1);
	ASSERT_TRUE(memcmp(v.s, "a\xc3\xa9\xf0\x9f\x98\x80\n", v.n) == 0);
	ASSERT_OK(parse(&a, "null", &v, why, sizeof(why)));
	ASSERT_EQ(v.t, HXV_NULL);
	ASSERT_OK(parse(&a, "true", &v, why, sizeof(why)));
	ASSERT_EQ(v.t, HXV_TRUE);
out:
	hxv_arena_free(&a);
}

TEST(containers_sorted_and_found_by_path)
{
	static const char DOC[] = "{\"z\": 1, \"a\": {\"list\": [10, {\"k\": \"v\"}]}, \"m\": []}";
	struct hxv_arena a = { 0 };
	struct hxv v;
	const struct hxv *f;
	char why[96];

	if (!ASSERT_OK(parse(&a, DOC, &v, why, sizeof(why))))
		goto out;
	ASSERT_EQ(v.t, HXV_OBJ);
	ASSERT_EQ(v.n, 3);
	/* Members sorted by key, bytewise. */
	ASSERT_STREQ(v.mem[0].key, "a");
	ASSERT_STREQ(v.mem[1].key, "m");
	ASSERT_STREQ(v.mem[2].key, "z");
	f = hxv_path(&v, "a.list.1.k");
	if (ASSERT_TRUE(f))
		ASSERT_TRUE(f->t == HXV_STR && f->n == 1 && f->s[0] == 'v');
	f = hxv_path(&v, "a.list.0");
	if (ASSERT_TRUE(f))
		ASSERT_STREQ(f->s, "10");
	ASSERT_TRUE(hxv_path(&v, "a.list.2") == NULL);
	ASSERT_TRUE(hxv_path(&v, "z.x") == NULL);
	ASSERT_TRUE(hxv_get(&v, "zz", 2) == NULL);
	ASSERT_TRUE(hxv_get(f, "a", 1) == NULL); /* not an object */
	f = hxv_get(&v, "m", 1);
	if (ASSERT_TRUE(f))
		ASSERT_TRUE(f->t == HXV_ARR && f->n == 0);
out:
	hxv_arena_free(&a);
}

TEST(refusals_name_the_problem_and_byte)
{
	refused("{\"a\": 1, \"a\": 2}", "duplicate member name");
	refused("{\"a\": 1} x", "trailing data at byte 9");
	refused("[1, 2", "expected ',' or ']'");
	refused("{\"a\" 1}", "expected ':'");
	refused("{1: 2}", "expected a member name");
	refused("01", "trailing data"); /* a number does not start with 0 then a digit */
	refused("1.", "bad number");
	refused("-", "bad number");
	refused("+1", "bad number at byte 0"); /* anything else is read as a number */
	refused("", "unexpected end");
	refused("\"abc", "unterminated string");
	refused("\"a\tb\"", "control character in string");
	refused("\"\\x\"", "bad escape");
	refused("\"\\u12g4\"", "bad \\u escape");
	refused("\"\\ud83d\"", "lone high surrogate");
	refused("\"\\ude00\"", "lone low surrogate");
	refused("\"\xc3\x28\"", "invalid UTF-8");
	refused("\"\xed\xa0\x80\"", "invalid UTF-8"); /* an encoded surrogate */
	refused("nul", "unexpected character at byte 0");
	refused("[1,]", "bad number at byte 3");
}

TEST(depth_is_bounded)
{
	char deep[HXV_DEPTH + 3], ok[HXV_DEPTH + 1 + HXV_DEPTH + 1];
	struct hxv_arena a = { 0 };
	struct hxv v;
	char why[96];

	memset(deep, '[', HXV_DEPTH + 1);
	deep[HXV_DEPTH + 1] = '\0';
	refused(deep, "nested too deep");
	memset(ok, '[', HXV_DEPTH);
	memset(ok + HXV_DEPTH, ']', HXV_DEPTH);
	ok[2 * HXV_DEPTH] = '\0';
	ASSERT_OK(parse(&a, ok, &v, why, sizeof(why)));
	hxv_arena_free(&a);
}

TEST(buffer_need_not_end_in_nul)
{
	static const char BUF[] = "[1,2]garbage";
	struct hxv_arena a = { 0 };
	struct hxv v;
	char why[96];

	if (ASSERT_OK(hxv_parse(&a, BUF, 5, &v, why, sizeof(why))))
		ASSERT_TRUE(v.t == HXV_ARR && v.n == 2);
	hxv_arena_free(&a);
}

TEST(equality_exact_and_order_free)
{
	ASSERT_TRUE(same("{\"a\": 1, \"b\": [true, null]}", "{\"b\": [true, null], \"a\": 1}"));
	ASSERT_FALSE(same("[1, 2]", "[2, 1]"));
	ASSERT_TRUE(same("18446744073709551615", "18446744073709551615"));
	ASSERT_FALSE(same("18446744073709551615", "18446744073709551614"));
	ASSERT_TRUE(same("-0", "0"));
	/* An integer never equals a number with a fraction or exponent (EVT-ENV-013). */
	ASSERT_FALSE(same("1", "1.0"));
	ASSERT_FALSE(same("100", "1e2"));
	ASSERT_TRUE(same("1.0", "1.00"));
	ASSERT_FALSE(same("\"a\"", "\"a\\u0000\""));
	ASSERT_FALSE(same("{\"a\": 1}", "{\"a\": 1, \"b\": 2}"));
}

TEST(numbers_compare_exactly)
{
	struct hxv_arena a = { 0 };
	struct hxv x, y;
	char why[96];

	if (!ASSERT_OK(parse(&a, "18446744073709551616", &x, why, sizeof(why))) ||
	    !ASSERT_OK(parse(&a, "18446744073709551615", &y, why, sizeof(why))))
		goto out;
	ASSERT_TRUE(hxv_is_num(&x));
	ASSERT_EQ(hxv_num_cmp(&x, &y), 1);
	ASSERT_EQ(hxv_num_cmp(&y, &x), (unsigned long long)-1);
	if (!ASSERT_OK(parse(&a, "-5", &x, why, sizeof(why))) ||
	    !ASSERT_OK(parse(&a, "-40", &y, why, sizeof(why))))
		goto out;
	ASSERT_EQ(hxv_num_cmp(&x, &y), 1);
	if (!ASSERT_OK(parse(&a, "2.5", &x, why, sizeof(why))) ||
	    !ASSERT_OK(parse(&a, "3", &y, why, sizeof(why))))
		goto out;
	ASSERT_EQ(hxv_num_cmp(&x, &y), (unsigned long long)-1);
	ASSERT_FALSE(hxv_is_num(hxv_path(&x, "a")));
out:
	hxv_arena_free(&a);
}

TEST(from_json_matches_the_reader)
{
	struct hxv_arena a = { 0 };
	json_t *js = json_loads("{\"n\": 9007199254740993, \"r\": 1500.0, \"s\": \"x\", "
				"\"l\": [1, {\"b\": false, \"a\": null}]}",
				0, NULL);
	struct hxv vj, vp;
	char why[96];

	if (!ASSERT_TRUE(js))
		return;
	if (ASSERT_OK(hxv_from_json(&a, js, &vj)) &&
	    ASSERT_OK(
		    parse(&a,
			  "{\"l\": [1, {\"a\": null, \"b\": false}], \"s\": \"x\", \"r\": 1500.0, "
			  "\"n\": 9007199254740993}",
			  &vp, why, sizeof(why)))) {
		ASSERT_TRUE(hxv_equal(&vj, &vp));
		/* A real keeps a fraction in its text, so it still reads as a real. */
		ASSERT_STREQ(hxv_path(&vj, "r")->s, "1500.0");
	}
	json_decref(js);
	hxv_arena_free(&a);
}

TEST(hex_strings_and_utf8)
{
	struct hxv_arena a = { 0 };
	struct hxv v;
	char why[96];

	if (ASSERT_OK(parse(&a, "\"00fFa9\"", &v, why, sizeof(why))))
		ASSERT_TRUE(hxv_is_hex(&v));
	if (ASSERT_OK(parse(&a, "\"0f0\"", &v, why, sizeof(why))))
		ASSERT_FALSE(hxv_is_hex(&v));
	if (ASSERT_OK(parse(&a, "\"0g\"", &v, why, sizeof(why))))
		ASSERT_FALSE(hxv_is_hex(&v));
	if (ASSERT_OK(parse(&a, "\"\"", &v, why, sizeof(why))))
		ASSERT_FALSE(hxv_is_hex(&v));
	ASSERT_EQ(hxv_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	ASSERT_EQ(hxv_utf8_len((const unsigned char *)"\xf0\x9f\x98", 3), 0);
	ASSERT_EQ(hxv_utf8_len((const unsigned char *)"\xc0\x80", 2), 0); /* overlong */
	hxv_arena_free(&a);
}
