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

#endif
