// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: any bytes as a JSON string value and as a key. The result must always be
 * valid JSON whose decoded string is valid UTF-8, and valid input must survive unchanged.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Not strndup: ASan's strict_string_checks reads its source as a C string. */
	char *key = malloc(size + 1);
	const char *k;
	json_t *j, *v;
	struct jw w;

	if (!key)
		return 0;
	memcpy(key, data, size);
	key[size] = '\0';
	jw_init(&w);
	jw_obj_open(&w);
	jw_key(&w, key);
	jw_strn(&w, (const char *)data, size);
	jw_obj_close(&w);
	if (jw_error(&w))
		abort();
	/* jansson rejects invalid UTF-8, so parsing also proves the output is valid UTF-8;
	 * u64 counters beyond its int64 are read as reals (only the shape is checked). */
	j = json_loads(jw_text(&w), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(j) || json_object_size(j) != 1)
		abort();
	json_object_foreach(j, k, v)
	{
		json_t *orig = json_stringn((const char *)data, size);

		/* Input that already was valid UTF-8 must come back byte for byte. */
		if (orig && !json_equal(orig, v))
			abort();
		json_decref(orig);
	}
	json_decref(j);
	jw_free(&w);
	free(key);
	return 0;
}
