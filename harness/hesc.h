/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Escaping for the report formats. Case messages come from implementations under test and can
 * hold anything: invalid UTF-8, control bytes, markup. Every writer goes through these, which
 * first replace invalid UTF-8 (and code points a format cannot carry) with U+FFFD, so every
 * report stays well-formed whatever a message holds.
 */
#ifndef CELLCHECK_HESC_H
#define CELLCHECK_HESC_H

#include <stdint.h>
#include <stdio.h>

/*
 * Decode one UTF-8 sequence (RFC 3629: no overlongs, surrogates or values over U+10FFFF).
 * Returns its length, or 0 when p does not start a valid sequence.
 */
int hesc_utf8_next(const char *p, uint32_t *ret_cp);

/* Copy with every invalid UTF-8 sequence replaced by U+FFFD; NULL on OOM (or for NULL). */
char *hesc_utf8_clean(const char *s);

/* XML 1.0 text or attribute value; also right for HTML. */
void hesc_xml(FILE *f, const char *s);
/* Markdown inline text (also inside a table cell): punctuation escaped, newlines become spaces. */
void hesc_md(FILE *f, const char *s);
/* A YAML double-quoted scalar, quotes included. */
void hesc_yaml(FILE *f, const char *s);
/* A relative URL path: unreserved characters and '/' kept, everything else %XX. */
void hesc_url(FILE *f, const char *s);
/* One line of a TAP test point description: '#' escaped, newlines and controls replaced. */
void hesc_tap(FILE *f, const char *s);

#endif
