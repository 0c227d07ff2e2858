/* SPDX-License-Identifier: Apache-2.0 */
/* Userspace view of the wire ABI: bpf/flowrec.h is the single source of truth. */
#ifndef CELLREF_FLOWREC_ABI_H
#define CELLREF_FLOWREC_ABI_H

#include <stddef.h>

#include "../bpf/flowrec.h"

/* The same asserts again, through the userspace compiler and its offsetof. */
_Static_assert(sizeof(struct flowrec_v1) == 40, "flowrec_v1 size");
_Static_assert(offsetof(struct flowrec_v1, pkt_count) == 16, "flowrec_v1.pkt_count");
_Static_assert(offsetof(struct flowrec_v1, first_seen_ns) == 24, "flowrec_v1.first_seen_ns");
_Static_assert(offsetof(struct flowrec_v1, verdict) == 32, "flowrec_v1.verdict");
_Static_assert(sizeof(struct flowrec_v2) == 64, "flowrec_v2 size");
_Static_assert(offsetof(struct flowrec_v2, dst_addr) == 16, "flowrec_v2.dst_addr");
_Static_assert(offsetof(struct flowrec_v2, src_port) == 32, "flowrec_v2.src_port");
_Static_assert(offsetof(struct flowrec_v2, family) == 37, "flowrec_v2.family");
_Static_assert(offsetof(struct flowrec_v2, pkt_count) == 40, "flowrec_v2.pkt_count");
_Static_assert(offsetof(struct flowrec_v2, byte_count) == 48, "flowrec_v2.byte_count");
_Static_assert(offsetof(struct flowrec_v2, first_seen_ns) == 56, "flowrec_v2.first_seen_ns");

#endif
