// SPDX-License-Identifier: Apache-2.0
#include "tapjson.h"

#include <stdlib.h>
#include <string.h>

#include "nstest.h"
#include "tap.h"
#include "util.h"

json_t *tap_jsonl(int fd)
{
	_cleanup_free_ char *text = nstest_slurp(fd, NULL);
	json_t *arr = json_array();
	char *line, *save = NULL;

	if (!text)
		return arr;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);

		if (!ASSERT_TRUE(j)) {
			tap_diag("bad JSON line: %.300s (%s)", line, err.text);
			continue;
		}
		json_array_append_new(arr, j);
	}
	return arr;
}
