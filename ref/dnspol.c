// SPDX-License-Identifier: Apache-2.0
#include "dnspol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnswire.h"

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
		for (; i < j; i++)
			s.wire[o++] = lower((uint8_t)text[i]);
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

bool dnspol_allows(const struct dnspol *p, const uint8_t *name, size_t name_len)
{
	size_t off[MAX_LABELS], n;

	if (!dnspol_active(p))
		return true;
	n = label_offsets(name, name_len, off);
	for (size_t s = 0; s < p->n; s++) {
		const struct suffix *x = &p->v[s];
		size_t start, k;

		if (x->nlabels > n)
			continue;
		/* The name's last nlabels labels, from the label boundary where they start. */
		start = x->nlabels ? off[n - x->nlabels] : name_len - 1;
		if (name_len - start != x->len)
			continue;
		for (k = 0; k < x->len; k++) {
			if (lower(name[start + k]) != x->wire[k])
				break;
		}
		if (k == x->len)
			return true;
	}
	return false;
}
