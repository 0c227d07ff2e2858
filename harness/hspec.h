/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The requirement index of SPEC.md, read for `cellcheck lint`: every normative paragraph starts
 * with its ID in bold (**FLOW-REC-001**, SPEC 0.2) and states its level; Appendix C lists every
 * ID with its level and marks withdrawn ones. Both are read and must agree.
 */
#ifndef CELLCHECK_HSPEC_H
#define CELLCHECK_HSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "hcase.h"

struct hspec_req {
	char *id;
	enum hcase_level level;
	bool withdrawn;
	bool consumer; /* Appendix C says "consumer:": verified by the harness's tests, not cases */
	bool in_body;  /* defined by a **ID** paragraph */
	bool in_index; /* listed in Appendix C */
	unsigned int line; /* of the definition, or of the index row */
	char *summary;	   /* Appendix C's summary column (the requirement's title); may be NULL */
};

struct hspec {
	struct hspec_req *reqs;
	size_t n;
};

/* 0, -errno for an unreadable file. */
int hspec_load(const char *path, struct hspec **ret);
void hspec_free(struct hspec *s);
const struct hspec_req *hspec_find(const struct hspec *s, const char *id);

#endif
