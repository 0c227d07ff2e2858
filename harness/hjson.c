// SPDX-License-Identifier: Apache-2.0
#include "hjson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hjson_fail(struct hjson_err *err, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->msg[0])
		return -EINVAL;
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "$");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void hjson_path_key(char *dst, const char *path, const char *key)
{
	snprintf(dst, HJSON_PATH_MAX, "%s.%s", path, key);
}

void hjson_path_idx(char *dst, const char *path, size_t idx)
{
	snprintf(dst, HJSON_PATH_MAX, "%s[%zu]", path, idx);
}

int hjson_load_file(const char *file, json_t **ret, struct hjson_err *err)
{
	json_error_t jerr;
	json_t *doc;

	/* Duplicate keys would let one of two values win silently. */
	doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (jerr.line < 0 && json_error_code(&jerr) == json_error_cannot_open_file)
			return hjson_fail(err, "$", "cannot read: %s", jerr.text);
		if (err && !err->msg[0])
			err->line = jerr.line;
		return hjson_fail(err, "$", "invalid JSON at line %d column %d: %s", jerr.line,
				  jerr.column, jerr.text);
	}
	*ret = doc;
	return 0;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

int hjson_only_keys(json_t *obj, const char *path, const char *const *allowed,
		    struct hjson_err *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return hjson_fail(err, path, "expected an object");
	json_object_foreach(obj, key, v)
	{
		char p[HJSON_PATH_MAX];

		if (in_list(key, allowed))
			continue;
		hjson_path_key(p, path, key);
		return hjson_fail(err, p, "unknown key \"%s\"", key);
	}
	return 0;
}

/* The member, NULL when absent; an error only for a missing required member. */
static int member(json_t *parent, const char *path, const char *key, bool required, json_t **ret,
		  char *p, struct hjson_err *err)
{
	hjson_path_key(p, path, key);
	*ret = json_object_get(parent, key);
	if (!*ret && required)
		return hjson_fail(err, p, "required key missing");
	return 0;
}

int hjson_obj(json_t *parent, const char *path, const char *key, bool required, json_t **ret,
	      struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *v;
	int r;

	r = member(parent, path, key, required, &v, p, err);
	if (r < 0 || !v)
		return r;
	if (!json_is_object(v))
		return hjson_fail(err, p, "expected an object");
	*ret = v;
	return 0;
}

int hjson_arr(json_t *parent, const char *path, const char *key, bool required, json_t **ret,
	      struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *v;
	int r;

	r = member(parent, path, key, required, &v, p, err);
	if (r < 0 || !v)
		return r;
	if (!json_is_array(v))
		return hjson_fail(err, p, "expected an array");
	*ret = v;
	return 0;
}

int hjson_str(json_t *parent, const char *path, const char *key, bool required, const char **ret,
	      struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *v;
	int r;

	r = member(parent, path, key, required, &v, p, err);
	if (r < 0 || !v)
		return r;
	if (!json_is_string(v))
		return hjson_fail(err, p, "expected a string");
	if (json_string_length(v) == 0)
		return hjson_fail(err, p, "empty string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return hjson_fail(err, p, "string contains a NUL character");
	*ret = json_string_value(v);
	return 0;
}

int hjson_u32(json_t *parent, const char *path, const char *key, bool required, uint32_t min,
	      uint32_t max, uint32_t *ret, struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_int_t n;
	json_t *v;
	int r;

	r = member(parent, path, key, required, &v, p, err);
	if (r < 0 || !v)
		return r;
	if (!json_is_integer(v))
		return hjson_fail(err, p, "expected an integer from %u to %u", min, max);
	n = json_integer_value(v);
	if (n < (json_int_t)min || n > (json_int_t)max)
		return hjson_fail(err, p, "%lld is out of range %u to %u", (long long)n, min, max);
	*ret = (uint32_t)n;
	return 0;
}

int hjson_bool(json_t *parent, const char *path, const char *key, bool required, bool *ret,
	       struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *v;
	int r;

	r = member(parent, path, key, required, &v, p, err);
	if (r < 0 || !v)
		return r;
	if (!json_is_boolean(v))
		return hjson_fail(err, p, "expected true or false");
	*ret = json_is_true(v);
	return 0;
}

int hjson_enum(json_t *parent, const char *path, const char *key, bool required,
	       const char *const *names, int *ret, struct hjson_err *err)
{
	char p[HJSON_PATH_MAX], choices[256] = "";
	const char *s = NULL;
	size_t off = 0;
	int r;

	r = hjson_str(parent, path, key, required, &s, err);
	if (r < 0 || !s)
		return r;
	for (int i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = i;
			return 0;
		}
		if (off < sizeof(choices))
			off += snprintf(choices + off, sizeof(choices) - off, "%s%s", i ? ", " : "",
					names[i]);
	}
	hjson_path_key(p, path, key);
	return hjson_fail(err, p, "\"%s\" is not one of %s", s, choices);
}

void hjson_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int hjson_strv(json_t *parent, const char *path, const char *key, bool required, bool nonempty,
	       char ***ret, size_t *ret_n, struct hjson_err *err)
{
	char p[HJSON_PATH_MAX];
	json_t *arr = NULL, *v;
	char **out;
	size_t i;
	int r;

	r = hjson_arr(parent, path, key, required, &arr, err);
	if (r < 0 || !arr)
		return r;
	hjson_path_key(p, path, key);
	if (nonempty && json_array_size(arr) == 0)
		return hjson_fail(err, p, "empty array");
	out = calloc(json_array_size(arr) + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		char pi[HJSON_PATH_MAX];

		hjson_path_idx(pi, p, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			hjson_strv_free(out);
			return hjson_fail(err, pi, "expected a non-empty string");
		}
		out[i] = strdup(json_string_value(v));
		if (!out[i]) {
			hjson_strv_free(out);
			return -ENOMEM;
		}
	}
	*ret = out;
	if (ret_n)
		*ret_n = json_array_size(arr);
	return 0;
}
