/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One factor for every deadline of a run (issue 12, SPEC CHK-RUN-013): an emulated guest or a
 * loaded runner is many times slower than the machine the cases' deadlines were written on, and
 * slowness alone must never make a case FAIL or ERROR. The factor only ever lengthens bounds
 * the harness waits up to (case timeout, readiness, stop, client, driver calls, waits for
 * events or lines); pauses and the implementation's own configured timers are not scaled, so
 * what a case checks does not change.
 */
#ifndef CELLCHECK_HTIME_H
#define CELLCHECK_HTIME_H

#include <stdint.h>

#define HTIME_SCALE_MAX 100.0

/*
 * Measure this machine: the median of 5 rounds of 16 spawns of /bin/true (process creation is
 * what the harness waits on most), against HTIME_BASELINE_NS, the same measure on the 2-core
 * machine the deadlines were tuned on with its margin. The factor is at least 1 and at most
 * HTIME_SCALE_MAX, rounded up to a tenth. 0 or -errno; *ret_round_ns gets the median round.
 */
int htime_calibrate(double *ret_scale, uint64_t *ret_round_ns);

/* Parse a factor given with --time-scale: a number from 1 to HTIME_SCALE_MAX. 0 or -EINVAL. */
int htime_parse(const char *s, double *ret_scale);

/* ms times the factor, rounded up, saturated at UINT32_MAX; 0 stays 0 (it means "no bound"). */
uint32_t htime_scale_ms(double scale, uint32_t ms);

#endif
