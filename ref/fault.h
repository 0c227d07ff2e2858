/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Negative-control fault switches. Compiled in only with -Dfaults=true (the test build): the
 * environment variable CELLREF_FAULT holds a comma-separated list of fault names, and each
 * FAULT("name") site changes exactly one behaviour when its name is listed. In a normal build
 * FAULT() is the constant false and the compiler removes the faulty branch entirely.
 */
#ifndef CELLREF_FAULT_H
#define CELLREF_FAULT_H

#include <stdbool.h>

#ifdef CELLREF_FAULTS
bool fault_active(const char *name);
#define FAULT(name)  fault_active(name)
#define FAULTS_BUILT 1
#else
#define FAULT(name)  false
#define FAULTS_BUILT 0
#endif

/*
 * Hook tables, for a path with many negative controls (the cell's child in cell.c): a table
 * indexed by step names the fault acting at that step's boundary, and the path asks
 * FAULT_HOOK(table, step) there, as a statement of its own. The steps themselves carry no
 * fault: no FAULT() inside a system call's expression, a control variable or a loop condition.
 * In a normal build the hook is false and the table is only referenced.
 */
#ifdef CELLREF_FAULTS
#define FAULT_HOOK(table, step) ((table)[step] && fault_active((table)[step]))
#else
#define FAULT_HOOK(table, step) ((void)(table), false)
#endif

#endif
