// SPDX-License-Identifier: Apache-2.0
#include "hspec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hspec_free(struct hspec *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].id);
		free(s->reqs[i].summary);
	}
	free(s->reqs);
	free(s);
}

const struct hspec_req *hspec_find(const struct hspec *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->reqs[i].id, id) == 0)
			return &s->reqs[i];
	return NULL;
}

static struct hspec_req *get(struct hspec *s, const char *id, size_t len, int *err)
{
	struct hspec_req *n;

	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->reqs[i].id) == len && strncmp(s->reqs[i].id, id, len) == 0)
			return &s->reqs[i];
	n = realloc(s->reqs, (s->n + 1) * sizeof(*n));
	if (!n) {
		*err = -ENOMEM;
		return NULL;
	}
	s->reqs = n;
	n = &s->reqs[s->n];
	memset(n, 0, sizeof(*n));
	n->id = strndup(id, len);
	n->level = HCASE_MAY;
	if (!n->id) {
		*err = -ENOMEM;
		return NULL;
	}
	s->n++;
	return n;
}

/* The first level keyword in text (MUST NOT counts as MUST, SHOULD NOT as SHOULD). */
static int level_in(const char *text)
{
	const char *best = NULL;
	int level = -1;

	for (int l = 0; l < _HCASE_LEVEL_MAX; l++) {
		const char *p = strstr(text, hcase_level_names[l]);

		if (p && (!best || p < best)) {
			best = p;
			level = l;
		}
	}
	return level;
}

/* The third cell of an index row "| ID | LEVEL | summary | verified by |", trimmed. */
static char *row_summary(const char *bar)
{
	const char *p = strstr(bar + 3, " | "), *end;

	if (!p)
		return NULL;
	p += 3;
	end = strstr(p, " |");
	if (!end || end == p)
		return NULL;
	return strndup(p, (size_t)(end - p));
}

int hspec_load(const char *path, struct hspec **ret)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	struct hspec *s;
	struct hspec_req *para = NULL; /* a body definition whose level is still unknown */
	size_t cap = 0;
	unsigned int lineno = 0;
	bool appendix_c = false;
	int err = 0;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	while (getline(&line, &cap, f) > 0) {
		char idbuf[40];
		size_t n;

		lineno++;
		if (strncmp(line, "## ", 3) == 0)
			appendix_c = strncmp(line, "## Appendix C", 13) == 0;
		if (line[0] == '\n') {
			para = NULL;
			continue;
		}
		if (strncmp(line, "**", 2) == 0) {
			const char *end = strstr(line + 2, "**");

			n = end ? (size_t)(end - line - 2) : 0;
			if (n && n < sizeof(idbuf)) {
				memcpy(idbuf, line + 2, n);
				idbuf[n] = '\0';
				if (hcase_req_id_valid(idbuf)) {
					para = get(s, idbuf, n, &err);
					if (!para)
						break;
					para->in_body = true;
					para->line = lineno;
					line[0] =
						' '; /* search the rest of the line for the level */
				}
			}
		}
		if (para && !para->in_index) {
			int l = level_in(line);

			if (l >= 0) {
				para->level = l;
				para = NULL;
			}
		}
		/* Appendix C rows: "| ID | LEVEL | summary | verified by |" */
		if (strncmp(line, "| ", 2) == 0) {
			const char *id = line + 2, *bar = strchr(id, ' ');
			struct hspec_req *q;
			int l;

			n = bar ? (size_t)(bar - id) : 0;
			if (!n || n >= sizeof(idbuf) || strncmp(bar, " | ", 3) != 0)
				continue;
			memcpy(idbuf, id, n);
			idbuf[n] = '\0';
			if (!hcase_req_id_valid(idbuf))
				continue;
			q = get(s, idbuf, n, &err);
			if (!q)
				break;
			l = level_in(bar);
			if (l >= 0)
				q->level = l;
			q->in_index = true;
			q->withdrawn = strstr(bar, "withdrawn") != NULL;
			/* Appendix D's generated rows follow and must not clear it. */
			if (strstr(bar, "| consumer:"))
				q->consumer = true;
			if (!q->line)
				q->line = lineno;
			if (appendix_c && !q->summary)
				q->summary = row_summary(bar);
		}
	}
	if (err < 0) {
		hspec_free(s);
		return err;
	}
	*ret = s;
	return 0;
}
