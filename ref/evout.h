/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's lossless event output. Unlike evtq (which drops so a DNS loop never waits),
 * nothing pushed here is dropped while the sink works: the writer thread blocks on a slow reader,
 * lines queue in memory, and past max_bytes the pusher waits (back-pressure reaches the workers'
 * pipes, whose own queues then count their drops). Only a failing sink drops, and counts it.
 */
#ifndef CELLREF_EVOUT_H
#define CELLREF_EVOUT_H

#include <stddef.h>
#include <stdint.h>

struct evout;

/* fd is written to, not owned. */
int evout_new(int fd, size_t max_bytes, struct evout **ret);
/* Queue complete lines (each ending in '\n'). 0, or -EPIPE after the sink failed (counted). */
int evout_push(struct evout *o, const char *lines, size_t len);
/* Write out everything queued, stop the writer, free. */
void evout_free(struct evout *o);
uint64_t evout_dropped(const struct evout *o);
uint64_t evout_lines(const struct evout *o);

#endif
