// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flow.btf_layout (fault builds only): the classifier built against flowrec_fault.h, so its BTF
 * describes struct flowrec_v1 with src_port and dst_port swapped. cellcheck selftest puts this
 * object in place of the profile's bpf_object; nothing else differs.
 */
#include "flowrec_fault.h"
#include "flowmon.bpf.c"
