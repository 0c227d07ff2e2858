/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small test framework in the kselftest shape: every TEST runs in its own forked process
 * group with a timeout that kills the whole group, results are TAP 13, assertions return bool
 * so `if (!ASSERT_OK(x)) return;` reads naturally, and they understand negative errno.
 *
 * A test that cannot run here calls tap_skip() with the reason; a binary whose tests all skip
 * exits 77, which meson reports as SKIP.
 */
#ifndef CELLCHECK_TAP_H
#define CELLCHECK_TAP_H

#include <stdbool.h>
#include <string.h>

typedef void (*tap_fn)(void);

void tap_register(const char *name, tap_fn fn, unsigned int timeout_s);
int tap_main(int argc, char **argv);
bool tap_check(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void tap_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST_TIMEOUT(name, secs)                                      \
	static void name(void);                                       \
	__attribute__((constructor)) static void tap_reg_##name(void) \
	{                                                             \
		tap_register(#name, name, secs);                      \
	}                                                             \
	static void name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

#define ASSERT_TRUE(c)	tap_check(!!(c), __FILE__, __LINE__, "%s", #c)
#define ASSERT_FALSE(c) tap_check(!(c), __FILE__, __LINE__, "!(%s)", #c)

#define ASSERT_EQ(a, b)                                                                        \
	({                                                                                     \
		unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
		tap_check(_a == _b, __FILE__, __LINE__, "%s == %s (%llu vs %llu)", #a, #b, _a, \
			  _b);                                                                 \
	})

#define ASSERT_NE(a, b)                                                                        \
	({                                                                                     \
		unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
		tap_check(_a != _b, __FILE__, __LINE__, "%s != %s (both %llu)", #a, #b, _a);   \
	})

#define ASSERT_GT(a, b)                                                                           \
	({                                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                               \
		tap_check(_a > _b, __FILE__, __LINE__, "%s > %s (%lld vs %lld)", #a, #b, _a, _b); \
	})

#define ASSERT_GE(a, b)                                                                        \
	({                                                                                     \
		long long _a = (long long)(a), _b = (long long)(b);                            \
		tap_check(_a >= _b, __FILE__, __LINE__, "%s >= %s (%lld vs %lld)", #a, #b, _a, \
			  _b);                                                                 \
	})

#define ASSERT_LE(a, b)                                                                        \
	({                                                                                     \
		long long _a = (long long)(a), _b = (long long)(b);                            \
		tap_check(_a <= _b, __FILE__, __LINE__, "%s <= %s (%lld vs %lld)", #a, #b, _a, \
			  _b);                                                                 \
	})

/* 0 or a positive value passes; a negative value is read as -errno. */
#define ASSERT_OK(e)                                                 \
	({                                                           \
		long long _e = (long long)(e);                       \
		tap_check(_e >= 0, __FILE__, __LINE__, "%s: %s", #e, \
			  _e < 0 ? strerror((int)-_e) : "ok");       \
	})

#define ASSERT_ERR(e, want)                                                                        \
	({                                                                                         \
		long long _e = (long long)(e);                                                     \
		tap_check(_e == (want), __FILE__, __LINE__, "%s == %s (got %lld)", #e, #want, _e); \
	})

#define ASSERT_STREQ(a, b)                                                           \
	({                                                                           \
		const char *_a = (a), *_b = (b);                                     \
		tap_check(_a &&_b &&strcmp(_a, _b) == 0, __FILE__, __LINE__,         \
			  "%s == %s (\"%s\" vs \"%s\")", #a, #b, _a ? _a : "(null)", \
			  _b ? _b : "(null)");                                       \
	})

#endif
