/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded event queue with a writer thread, so a serving loop never blocks on its event
 * sink. The loop pushes complete lines; the writer writes as many complete lines as are
 * waiting with one write(2). When the queue is full, or the sink fails, lines are dropped and
 * counted; the pusher is never slowed down.
 */
#ifndef CELLREF_EVTQ_H
#define CELLREF_EVTQ_H

#include <stddef.h>
#include <stdint.h>

struct evtq;

/* fd is written to, not owned. cap: bytes of lines the queue can hold. */
int evtq_new(int fd, size_t cap, struct evtq **ret);
/* Drain what is queued, stop the writer, free. */
void evtq_free(struct evtq *q);

/* Queue one complete line (ending in '\n'); -ENOBUFS when it does not fit (counted). */
int evtq_push(struct evtq *q, const char *line, size_t len);
/* Wake the writer if anything was pushed since the last kick: once per loop iteration. */
void evtq_kick(struct evtq *q);

/* Lines dropped so far: queue full, or the write failed. */
uint64_t evtq_dropped(const struct evtq *q);
/* Block until everything pushed so far was written or dropped. */
void evtq_flush(struct evtq *q);

#endif
