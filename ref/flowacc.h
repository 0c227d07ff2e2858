/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-tracking accumulator: counts the unique 5-tuples a cell opened during one run.
 * Seeing a flow twice counts once; Closed observations (the shutdown tallies) never count.
 */
#ifndef CELLREF_FLOWACC_H
#define CELLREF_FLOWACC_H

#include <stdint.h>

#include "flowrec.h"

enum flowacc_kind {
	FLOWACC_OPENED,
	FLOWACC_CLOSED,
};

struct flowacc;

int flowacc_new(struct flowacc **ret);
void flowacc_free(struct flowacc *a);
void flowacc_freep(struct flowacc **a);
#define _cleanup_flowacc __attribute__((cleanup(flowacc_freep)))

/* 1 when the flow is new, 0 when already known or kind is CLOSED, -ENOMEM. */
int flowacc_record(struct flowacc *a, const struct flowrec *r, enum flowacc_kind kind);

/* Unique opened flows so far (full width; saturate at the wire with flowevt_saturate_u32). */
uint64_t flowacc_unique(const struct flowacc *a);

#endif
