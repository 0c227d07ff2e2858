// SPDX-License-Identifier: Apache-2.0
/* JSON writing and escaping of everything (SPEC.md chapter 4, EVT-ENV escaping rules). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>

#include "jw.h"
#include "tap.h"

/* The text the writer makes for one string value. */
static const char *str_out(struct jw *w, const char *s, size_t n)
{
	jw_reset(w);
	jw_strn(w, s, n);
	return jw_text(w);
}

TEST(quotes_backslashes_and_controls_are_escaped)
{
	struct jw w;

	jw_init(&w);
	ASSERT_STREQ(str_out(&w, "a\"b", 3), "\"a\\\"b\"");
	ASSERT_STREQ(str_out(&w, "a\\b", 3), "\"a\\\\b\"");
	ASSERT_STREQ(str_out(&w, "\n\r\t", 3), "\"\\n\\r\\t\"");
	ASSERT_STREQ(str_out(&w, "\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
	ASSERT_STREQ(str_out(&w, "a\0b", 3), "\"a\\u0000b\"");
	ASSERT_STREQ(str_out(&w, "\xe2\x80\xa8", 3), "\"\\u2028\"");
	jw_free(&w);
}

TEST(valid_utf8_passes_through)
{
	struct jw w;

	jw_init(&w);
	ASSERT_STREQ(str_out(&w, "\xc3\xa9", 2), "\"\xc3\xa9\"");		  /* é */
	ASSERT_STREQ(str_out(&w, "\xe2\x82\xac", 3), "\"\xe2\x82\xac\"");	  /* € */
	ASSERT_STREQ(str_out(&w, "\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
	jw_free(&w);
}

TEST(invalid_utf8_becomes_replacement_characters)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
		{ "\xff", 1, "\"\xef\xbf\xbd\"" },
		{ "a\x80z", 3, "\"a\xef\xbf\xbdz\"" },
		{ "\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" }, /* overlong '/' */
		{ "\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" }, /* surrogate */
		{ "\xf4\x90\x80\x80", 4,
		  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" }, /* > U+10FFFF */
		{ "\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },	    /* truncated */
	};
	struct jw w;

	jw_init(&w);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!ASSERT_STREQ(str_out(&w, cases[i].in, cases[i].n), cases[i].out))
			tap_diag("case %zu", i);
	}
	jw_free(&w);
}

TEST(every_byte_string_yields_valid_json)
{
	unsigned char buf[64];
	uint32_t x = 12345;
	struct jw w;

	jw_init(&w);
	for (int round = 0; round < 20000; round++) {
		size_t n = (x >> 7) % sizeof(buf);
		json_error_t err;
		json_t *j;

		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
		}
		jw_reset(&w);
		jw_arr_open(&w);
		jw_strn(&w, (const char *)buf, n);
		jw_arr_close(&w);
		j = json_loads(jw_text(&w), 0, &err);
		if (!ASSERT_TRUE(j)) {
			tap_diag("round %d: %s", round, err.text);
			break;
		}
		json_decref(j);
	}
	jw_free(&w);
}

TEST(structure_and_numbers)
{
	struct jw w;

	jw_init(&w);
	jw_obj_open(&w);
	jw_kv_u64(&w, "max", UINT64_MAX);
	jw_kv_i64(&w, "min", INT64_MIN);
	jw_kv_bool(&w, "t", true);
	jw_key(&w, "a");
	jw_arr_open(&w);
	jw_u64(&w, 1);
	jw_null(&w);
	jw_obj_open(&w);
	jw_obj_close(&w);
	jw_arr_close(&w);
	jw_kv_str(&w, "s", "x");
	jw_obj_close(&w);
	ASSERT_STREQ(jw_text(&w), "{\"max\":18446744073709551615,\"min\":-9223372036854775808,"
				  "\"t\":true,\"a\":[1,null,{}],\"s\":\"x\"}");
	ASSERT_EQ(jw_error(&w), 0);
	jw_free(&w);
}

TEST(deep_nesting_is_an_error_not_a_overflow)
{
	struct jw w;

	jw_init(&w);
	for (int i = 0; i < 100; i++)
		jw_arr_open(&w);
	ASSERT_ERR(jw_error(&w), -E2BIG);
	jw_free(&w);
}
