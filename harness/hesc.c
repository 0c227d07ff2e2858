// SPDX-License-Identifier: Apache-2.0
#include "hesc.h"

#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

int hesc_utf8_next(const char *s, uint32_t *ret_cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp, min;
	int n;

	if (p[0] < 0x80) {
		*ret_cp = p[0];
		return 1;
	}
	if ((p[0] & 0xE0) == 0xC0) {
		n = 2, cp = p[0] & 0x1F, min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		n = 3, cp = p[0] & 0x0F, min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		n = 4, cp = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL terminator */
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	*ret_cp = cp;
	return n;
}

char *hesc_utf8_clean(const char *s)
{
	size_t len, o = 0;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s);
	/* Worst case: every byte becomes three. */
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	while (*s) {
		uint32_t cp;
		int n = hesc_utf8_next(s, &cp);

		if (n == 0) {
			memcpy(out + o, REPLACEMENT, 3);
			o += 3;
			s++;
		} else {
			memcpy(out + o, s, (size_t)n);
			o += (size_t)n;
			s += n;
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * Walk s by code point; cb gets each valid one with its bytes, invalid bytes come as U+FFFD.
 * C0 and C1 controls other than TAB and LF, DEL and the noncharacters U+FFFE/U+FFFF are also
 * handed over as U+FFFD: XML 1.0 forbids most of them and none of them belongs in a report.
 */
typedef void (*cp_fn)(FILE *f, uint32_t cp, const char *bytes, int n);

static void walk(FILE *f, const char *s, cp_fn cb)
{
	if (!s)
		return;
	while (*s) {
		uint32_t cp;
		int n = hesc_utf8_next(s, &cp);

		if (n == 0) {
			cb(f, 0xFFFD, REPLACEMENT, 3);
			s++;
			continue;
		}
		if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == '\r' ||
		    (cp >= 0x7F && cp <= 0x9F) || cp == 0xFFFE || cp == 0xFFFF)
			cb(f, 0xFFFD, REPLACEMENT, 3);
		else
			cb(f, cp, s, n);
		s += n;
	}
}

static void xml_cp(FILE *f, uint32_t cp, const char *bytes, int n)
{
	switch (cp) {
	case '&':
		fputs("&amp;", f);
		break;
	case '<':
		fputs("&lt;", f);
		break;
	case '>':
		fputs("&gt;", f);
		break;
	case '"':
		fputs("&quot;", f);
		break;
	case '\'':
		fputs("&#39;", f);
		break;
	case '\n': /* character references survive attribute-value normalisation */
		fputs("&#10;", f);
		break;
	case '\t':
		fputs("&#9;", f);
		break;
	default:
		fwrite(bytes, 1, (size_t)n, f);
	}
}

void hesc_xml(FILE *f, const char *s)
{
	walk(f, s, xml_cp);
}

static void md_cp(FILE *f, uint32_t cp, const char *bytes, int n)
{
	if (cp == '\n' || cp == '\t') {
		fputc(' ', f);
	} else if (cp == '<') {
		fputs("&lt;", f);
	} else if (cp == '>') {
		fputs("&gt;", f);
	} else if (cp == '&') {
		fputs("&amp;", f);
	} else if (cp < 0x80 && strchr("\\`*_[]()#|~!$", (int)cp)) {
		/*
		 * The punctuation that starts inline markup or ends a table cell. Block markup
		 * (lists, headings) cannot start: the writers never put text at a line start.
		 */
		fputc('\\', f);
		fputc((int)cp, f);
	} else {
		fwrite(bytes, 1, (size_t)n, f);
	}
}

void hesc_md(FILE *f, const char *s)
{
	walk(f, s, md_cp);
}

static void yaml_cp(FILE *f, uint32_t cp, const char *bytes, int n)
{
	if (cp == '"' || cp == '\\')
		fprintf(f, "\\%c", (int)cp);
	else if (cp == '\n')
		fputs("\\n", f);
	else if (cp == '\t')
		fputs("\\t", f);
	else
		fwrite(bytes, 1, (size_t)n, f);
}

void hesc_yaml(FILE *f, const char *s)
{
	fputc('"', f);
	walk(f, s, yaml_cp);
	fputc('"', f);
}

void hesc_url(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

static void tap_cp(FILE *f, uint32_t cp, const char *bytes, int n)
{
	if (cp == '#')
		fputs("\\#", f);
	else if (cp == '\\')
		fputs("\\\\", f);
	else if (cp == '\n' || cp == '\t')
		fputc(' ', f);
	else
		fwrite(bytes, 1, (size_t)n, f);
}

void hesc_tap(FILE *f, const char *s)
{
	walk(f, s, tap_cp);
}
