// SPDX-License-Identifier: Apache-2.0
/*
 * Strict JSON values for the expectations (hexpect.c): what the implementation under test
 * wrote is parsed by this reader rather than jansson, because jansson cannot hold integers
 * above INT64_MAX and EVT-ENV-014 asks for exact u64. Numbers stay as their text; integers
 * compare as decimal strings, never through a double.
 *
 *   text (any bytes) --hxv_parse--> struct hxv in an arena --hxv_get/hxv_path--> a member
 *   jansson (the case) --hxv_from_json--^                  --hxv_equal/hxv_num_cmp--> verdict
 *
 * The reader takes strict RFC 8259 plus: no duplicate member names (EVT-ENV-003), no lone
 * surrogates, depth at most HXV_DEPTH; an integer never equals a number with a fraction or
 * exponent (EVT-ENV-013). Every value lives in its arena and goes with hxv_arena_free.
 */
#ifndef CELLCHECK_HXV_H
#define CELLCHECK_HXV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define HXV_DEPTH 128

/* Blocks of values and strings, freed together. */
struct hxv_ablk {
	struct hxv_ablk *next;
	size_t used, cap;
	max_align_t data[];
};

struct hxv_arena {
	struct hxv_ablk *head;
};

void *hxv_arena_alloc(struct hxv_arena *a, size_t n);
char *hxv_arena_strndup(struct hxv_arena *a, const char *s, size_t n);
void hxv_arena_free(struct hxv_arena *a);

enum hxv_type { HXV_NULL, HXV_FALSE, HXV_TRUE, HXV_INT, HXV_REAL, HXV_STR, HXV_ARR, HXV_OBJ };

struct hxv_mem;

/* A JSON value. Numbers keep their text (NUL-terminated); objects are sorted by key. */
struct hxv {
	enum hxv_type t;
	size_t n; /* STR, INT, REAL: bytes of s; ARR: items; OBJ: members */
	union {
		const char *s;
		struct hxv *items;
		struct hxv_mem *mem;
	};
};

struct hxv_mem {
	const char *key;
	size_t klen;
	struct hxv v;
};

/* One whole JSON text of n bytes (no NUL needed). 0, -EBADMSG with why[] set, or -ENOMEM. */
int hxv_parse(struct hxv_arena *a, const char *s, size_t n, struct hxv *v, char *why,
	      size_t why_len);
/* A jansson value (what a case file holds) as a value to compare with. 0, -ENOMEM, -EINVAL. */
int hxv_from_json(struct hxv_arena *a, json_t *js, struct hxv *v);

/* Bytewise order of two keys, the order object members are sorted in. */
int hxv_key_cmp(const char *a, size_t an, const char *b, size_t bn);
/* An object's member, or NULL (not an object, or no such member). */
const struct hxv *hxv_get(const struct hxv *o, const char *key, size_t klen);
/* Dotted path: object members, or array indexes where a segment is all digits. NULL: none. */
const struct hxv *hxv_path(const struct hxv *v, const char *path);

/* Length of the valid UTF-8 sequence (RFC 3629) at p, within n bytes; 0 if invalid. */
size_t hxv_utf8_len(const unsigned char *p, size_t n);

bool hxv_is_num(const struct hxv *v);
/* -1, 0, 1. Integers exactly, as decimal strings; anything with a fraction as long double. */
int hxv_num_cmp(const struct hxv *a, const struct hxv *b);
/* JSON value equality: member order free, integers exact, an integer never equals a real. */
bool hxv_equal(const struct hxv *a, const struct hxv *b);
/* A string of an even, nonzero number of hex digits (a DNS message, a payload). */
bool hxv_is_hex(const struct hxv *v);

#endif
