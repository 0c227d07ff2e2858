// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#ifdef CELLREF_FAULTS
bool fault_active(const char *name)
{
	const char *list = getenv("CELLREF_FAULT");
	size_t n = strlen(name);

	/* Exact names between commas: "veth" must not match "veth_peer". */
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && memcmp(p, name, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}
#endif
