/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fault builds only: the wrong record layouts of flow.btf_layout (fixtures/faults.json, kind
 * "artifact"), the negative control of FLOW-REC-007 and FLOW-REC-009.
 * flowmon_fault_layout.bpf.c includes this header before the program, so the program and its
 * BTF see a struct flowrec_v1 and a struct flowrec_v2 whose ports are swapped. flowrec.h itself
 * stays the single, unconditional definition: included here with both structs under other
 * names (its static asserts still check the true layouts), then these structs take the names,
 * and the program's own #include "flowrec.h" finds the guard already set.
 */
#ifndef CELLCHECK_FLOWREC_FAULT_H
#define CELLCHECK_FLOWREC_FAULT_H

#define flowrec_v1 flowrec_v1_true
#define flowrec_v2 flowrec_v2_true
#include "flowrec.h"
#undef flowrec_v1
#undef flowrec_v2

struct flowrec_v1 {
	__u32 src_ip;
	__u32 dst_ip;
	__u16 dst_port; /* swapped with src_port: the only difference */
	__u16 src_port;
	__u8 proto;
	__u8 pad0[3];
	__u64 pkt_count;
	__u64 first_seen_ns;
	__u8 verdict;
	__u8 pad1[7];
};

_Static_assert(sizeof(struct flowrec_v1) == FLOWREC_V1_SIZE, "flowrec_v1 must be 40 bytes");
FLOWREC_ASSERT_OFF(dst_port, 8);
FLOWREC_ASSERT_OFF(src_port, 10);
FLOWREC_ASSERT_OFF(proto, 12);
FLOWREC_ASSERT_OFF(pkt_count, 16);
FLOWREC_ASSERT_OFF(verdict, 32);

struct flowrec_v2 {
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u16 dst_port; /* swapped with src_port: the only difference */
	__u16 src_port;
	__u8 proto;
	__u8 family;
	__u8 verdict;
	__u8 pad0;
	__u64 pkt_count;
	__u64 byte_count;
	__u64 first_seen_ns;
};

_Static_assert(sizeof(struct flowrec_v2) == FLOWREC_V2_SIZE, "flowrec_v2 must be 64 bytes");
FLOWREC_V2_ASSERT_OFF(dst_port, 32);
FLOWREC_V2_ASSERT_OFF(src_port, 34);
FLOWREC_V2_ASSERT_OFF(pkt_count, 40);

#endif
