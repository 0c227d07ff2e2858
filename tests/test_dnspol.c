// SPDX-License-Identifier: Apache-2.0
/* The DNS allowlist (SPEC.md 8.3): suffixes on label boundaries, ASCII case-insensitive. */
#include <errno.h>
#include <string.h>

#include "dnspol.h"
#include "tap.h"
#include "util.h"

/* Wire form of a dotted name without escapes, into buf; its length. */
static size_t wire(const char *text, unsigned char *buf)
{
	size_t o = 0;

	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);

		buf[o++] = (unsigned char)l;
		memcpy(buf + o, text, l);
		o += l;
		text += l + (dot ? 1 : 0);
	}
	buf[o++] = 0;
	return o;
}

static bool allows(const struct dnspol *p, const char *name)
{
	unsigned char buf[300];
	size_t n = wire(name, buf);

	return dnspol_allows(p, buf, n);
}

TEST(no_allowlist_allows_everything)
{
	_cleanup_(dnspol_freep) struct dnspol *p = NULL;

	if (!ASSERT_OK(dnspol_new(&p)))
		return;
	ASSERT_FALSE(dnspol_active(p));
	ASSERT_TRUE(allows(p, "anything.example"));
	ASSERT_TRUE(allows(p, ""));
}

TEST(suffix_matches_itself_and_below_only_on_label_boundaries)
{
	_cleanup_(dnspol_freep) struct dnspol *p = NULL;

	if (!ASSERT_OK(dnspol_new(&p)) || !ASSERT_OK(dnspol_allow(p, "example.test")))
		return;
	ASSERT_TRUE(allows(p, "example.test"));
	ASSERT_TRUE(allows(p, "www.example.test"));
	ASSERT_TRUE(allows(p, "a.b.c.example.test"));
	ASSERT_FALSE(allows(p, "evil-example.test"));
	ASSERT_FALSE(allows(p, "example.test.evil"));
	ASSERT_FALSE(allows(p, "test"));
	ASSERT_FALSE(allows(p, "xexample.test"));
	ASSERT_FALSE(allows(p, ""));
}

TEST(matching_ignores_ascii_case_only)
{
	_cleanup_(dnspol_freep) struct dnspol *p = NULL;
	unsigned char latin[] = { 3,   'w', 'w',  'w', 7,   'e', 'x', 'a', 'm',
				  'p', 'l', 0xC9, 4,   't', 'e', 's', 't', 0 };

	if (!ASSERT_OK(dnspol_new(&p)) || !ASSERT_OK(dnspol_allow(p, "EXAMPLE.Test.")))
		return;
	ASSERT_TRUE(allows(p, "WWW.example.TEST"));
	ASSERT_TRUE(allows(p, "www.ExAmPlE.test"));
	/* 0xC9 is not 'E' or 'e': only A-Z fold (RFC 4343). */
	ASSERT_FALSE(dnspol_allows(p, latin, sizeof(latin)));
	ASSERT_STREQ(dnspol_suffix(p, 0), "example.test.");
}

TEST(several_suffixes_and_the_root)
{
	_cleanup_(dnspol_freep) struct dnspol *p = NULL, *all = NULL;

	if (!ASSERT_OK(dnspol_new(&p)) || !ASSERT_OK(dnspol_allow(p, "a.test")) ||
	    !ASSERT_OK(dnspol_allow(p, "b.test")) || !ASSERT_OK(dnspol_new(&all)) ||
	    !ASSERT_OK(dnspol_allow(all, ".")))
		return;
	ASSERT_TRUE(allows(p, "x.a.test"));
	ASSERT_TRUE(allows(p, "x.b.test"));
	ASSERT_FALSE(allows(p, "x.c.test"));
	ASSERT_TRUE(allows(all, "anything.at.all"));
	ASSERT_TRUE(allows(all, ""));
	ASSERT_STREQ(dnspol_suffix(all, 0), ".");
	ASSERT_TRUE(dnspol_suffix(p, 2) == NULL);
}

TEST(bad_suffixes_are_refused)
{
	_cleanup_(dnspol_freep) struct dnspol *p = NULL;
	char long_label[80], long_name[300];

	if (!ASSERT_OK(dnspol_new(&p)))
		return;
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	for (int i = 0; i < 128; i++)
		memcpy(long_name + 2 * i, "a.", 2);
	long_name[256] = '\0';
	ASSERT_ERR(dnspol_allow(p, "a..b"), -EINVAL);
	ASSERT_ERR(dnspol_allow(p, ".a"), -EINVAL);
	ASSERT_ERR(dnspol_allow(p, long_label), -EINVAL);
	ASSERT_ERR(dnspol_allow(p, long_name), -EINVAL);
	ASSERT_FALSE(dnspol_active(p));
}
