// SPDX-License-Identifier: Apache-2.0
#include "dnspol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnswire.h"
#include "fault.h"

#define MAX_LABELS 128 /* a 255-byte name has at most 127 labels */

struct suffix {
	uint8_t wire[DNSWIRE_MAX_NAME]; /* lowercase, root included */
	uint8_t len;
	uint8_t nlabels;
	char text[DNSWIRE_NAME_TEXT];
};

struct dnspol {
	struct suffix *v;
	size_t n;
};

int dnspol_new(struct dnspol **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void dnspol_free(struct dnspol *p)
{
	if (!p)
		return;
	free(p->v);
	free(p);
}

void dnspol_freep(struct dnspol **p)
{
	dnspol_free(*p);
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

int dnspol_allow(struct dnspol *p, const char *text)
{
	struct suffix s, *nv;
	size_t tl = strlen(text), i = 0, o = 0;

	memset(&s, 0, sizeof(s));
	if (tl && text[tl - 1] == '.')
		tl--; /* "example.test." and "example.test" are one suffix */
	while (i < tl) {
		size_t j = i;

		while (j < tl && text[j] != '.')
			j++;
		if (j == i || j - i > DNSWIRE_MAX_LABEL || o + 1 + (j - i) + 1 > DNSWIRE_MAX_NAME)
			return -EINVAL;
		s.wire[o++] = (uint8_t)(j - i);
		/* dns.allow_case_kept: the suffix keeps the letter case it was given. */
		for (; i < j; i++)
			s.wire[o++] = FAULT("dns.allow_case_kept") ? (uint8_t)text[i]
								   : lower((uint8_t)text[i]);
		s.nlabels++;
		i = j + 1;
	}
	s.wire[o++] = 0;
	s.len = (uint8_t)o;
	dnswire_name_text(s.wire, s.len, s.text, sizeof(s.text));

	nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->v = nv;
	p->v[p->n++] = s;
	return 0;
}

bool dnspol_active(const struct dnspol *p)
{
	return p && p->n > 0;
}

const char *dnspol_suffix(const struct dnspol *p, size_t i)
{
	return p && i < p->n ? p->v[i].text : NULL;
}

/* Offsets of the labels of a wire name; the count. */
static size_t label_offsets(const uint8_t *name, size_t len, size_t off[MAX_LABELS])
{
	size_t n = 0, pos = 0;

	while (pos < len && name[pos] && n < MAX_LABELS) {
		off[n++] = pos;
		pos += 1u + name[pos];
	}
	return n;
}

/*
 * The fault dns.policy_substring's matcher: the name's text ends with the suffix's text, as
 * a plain string comparison that ignores where labels start.
 */
/* The fault dns.policy_empty_denies's built-in allowlist: the last label is "test". */
__attribute__((unused)) static bool fault_under_test(const uint8_t *name, size_t name_len)
{
	size_t off[MAX_LABELS], n = label_offsets(name, name_len, off);
	const uint8_t *l = n ? name + off[n - 1] : NULL;

	return l && l[0] == 4 && lower(l[1]) == 't' && lower(l[2]) == 'e' && lower(l[3]) == 's' &&
	       lower(l[4]) == 't';
}

__attribute__((unused)) static bool substring_match(const uint8_t *name, size_t name_len,
						    const struct suffix *x)
{
	char text[DNSWIRE_NAME_TEXT];
	size_t tl = dnswire_name_text(name, name_len, text, sizeof(text));
	size_t sl = strlen(x->text);

	if (sl > tl)
		return false;
	for (size_t i = 0; i < sl; i++) {
		if (lower((uint8_t)text[tl - sl + i]) != (uint8_t)x->text[i])
			return false;
	}
	return true;
}

bool dnspol_allows(const struct dnspol *p, const uint8_t *name, size_t name_len)
{
	size_t off[MAX_LABELS], n;

	/* dns.policy_empty_denies: without --allow, a built-in allowlist of "test" applies. */
	if (!dnspol_active(p))
		return !FAULT("dns.policy_empty_denies") || fault_under_test(name, name_len);
	/* dns.policy_ignored: the allowlist is never consulted. */
	if (FAULT("dns.policy_ignored"))
		return true;
	n = label_offsets(name, name_len, off);
	for (size_t s = 0; s < p->n; s++) {
		const struct suffix *x = &p->v[s];
		size_t start, k;

		/* dns.policy_substring: the suffix may start inside a label ("evil-example"). */
		if (FAULT("dns.policy_substring") && substring_match(name, name_len, x))
			return true;
		if (x->nlabels > n)
			continue;
		/* dns.policy_root_ignored: the suffix "." (no label) allows nothing. */
		if (x->nlabels == 0 && FAULT("dns.policy_root_ignored"))
			continue;
		/* dns.policy_apex_denied: the suffix allows only names strictly below it. */
		if (x->nlabels == n && FAULT("dns.policy_apex_denied"))
			continue;
		/* The name's last nlabels labels, from the label boundary where they start. */
		start = x->nlabels ? off[n - x->nlabels] : name_len - 1;
		if (name_len - start != x->len)
			continue;
		for (k = 0; k < x->len; k++) {
			/* dns.policy_case_sensitive: letters of the name compared as received. */
			uint8_t c = FAULT("dns.policy_case_sensitive") ? name[start + k]
								       : lower(name[start + k]);

			/* dns.policy_high_bit_dropped: name bytes read as 7-bit ASCII. */
			if (FAULT("dns.policy_high_bit_dropped"))
				c = lower(c & 0x7F);

			if (c != x->wire[k])
				break;
		}
		if (k == x->len)
			return true;
	}
	return false;
}
