/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict, path-aware reading of jansson documents for the harness's data files (cases,
 * profiles, reports). Every check names the JSON path of what is wrong ("$.steps[2].ms"), so
 * a vendor editing a file by hand gets an error that points at the mistake. Unknown keys are
 * errors: a misspelt optional key silently ignored would make a case check less than it says.
 */
#ifndef CELLCHECK_HJSON_H
#define CELLCHECK_HJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HJSON_PATH_MAX 256

struct hjson_err {
	char path[HJSON_PATH_MAX]; /* JSON path of the offending value, "$" for the document */
	char msg[512];
	int line; /* parse errors only; 0 otherwise */
};

/* Record an error (first one wins); returns -EINVAL for `return hjson_fail(...)`. */
int hjson_fail(struct hjson_err *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Child paths: "$.a" + "b" = "$.a.b"; "$.a" + 3 = "$.a[3]". Truncated at HJSON_PATH_MAX. */
void hjson_path_key(char *dst, const char *path, const char *key);
void hjson_path_idx(char *dst, const char *path, size_t idx);

/* Load a file; a parse error is reported at "$" with line and column. -errno or -EINVAL. */
int hjson_load_file(const char *file, json_t **ret, struct hjson_err *err);

/* Error for any key of obj not in the NULL-terminated list. obj must be an object. */
int hjson_only_keys(json_t *obj, const char *path, const char *const *allowed,
		    struct hjson_err *err);

/*
 * Typed member access. A missing optional member leaves *ret untouched and returns 0; a missing
 * required member, or a member of the wrong type or range, is an error naming its path.
 */
int hjson_obj(json_t *parent, const char *path, const char *key, bool required, json_t **ret,
	      struct hjson_err *err);
int hjson_arr(json_t *parent, const char *path, const char *key, bool required, json_t **ret,
	      struct hjson_err *err);
/* Non-empty string without NUL bytes. */
int hjson_str(json_t *parent, const char *path, const char *key, bool required, const char **ret,
	      struct hjson_err *err);
int hjson_u32(json_t *parent, const char *path, const char *key, bool required, uint32_t min,
	      uint32_t max, uint32_t *ret, struct hjson_err *err);
int hjson_bool(json_t *parent, const char *path, const char *key, bool required, bool *ret,
	       struct hjson_err *err);
/* Index of the member's string value in the NULL-terminated list; error lists the choices. */
int hjson_enum(json_t *parent, const char *path, const char *key, bool required,
	       const char *const *names, int *ret, struct hjson_err *err);

/* Array of non-empty strings, duplicated into a NULL-terminated vector. */
int hjson_strv(json_t *parent, const char *path, const char *key, bool required, bool nonempty,
	       char ***ret, size_t *ret_n, struct hjson_err *err);
void hjson_strv_free(char **v);

#endif
