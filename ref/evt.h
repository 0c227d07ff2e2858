/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CloudEvents 1.0 emitter, structured JSON, one event per line (SPEC.md chapter 4).
 *
 * Each event is built in memory and handed to the kernel with one write() loop under the sink's
 * lock, so lines from several threads never interleave and a reader never sees half an event
 * followed by another one. A failing sink never blocks or fails its caller's real work: the
 * event is counted as dropped and the error returned for the caller to note.
 */
#ifndef CELLREF_EVT_H
#define CELLREF_EVT_H

#include <stdbool.h>
#include <stdint.h>

#include "jw.h"

#define EVT_TYPE_PREFIX "dev.cellos.events.cell.observability.v1."
#define EVT_ID_LEN	37 /* UUID text and its NUL */
#define EVT_TIME_LEN	32

struct evt_sink;

/* path "-" is stdout. Files are opened O_APPEND|O_CREAT, mode 0644. */
int evt_sink_open_path(const char *path, const char *source, struct evt_sink **ret);
/* Takes ownership of fd when own is true. */
int evt_sink_open_fd(int fd, bool own, const char *source, struct evt_sink **ret);
void evt_sink_free(struct evt_sink *s);
void evt_sink_freep(struct evt_sink **s);

/* Set an optional W3C traceparent carried on every event (validated: -EINVAL if malformed). */
int evt_sink_set_traceparent(struct evt_sink *s, const char *traceparent);

/*
 * Emit one event. type_name is the part after EVT_TYPE_PREFIX ("network_flow_decision");
 * data_json must be one JSON object (built with jw). 0, or -errno of the failed write.
 */
int evt_emit(struct evt_sink *s, const char *type_name, const char *data_json);

/*
 * Append one complete event line (envelope, data, '\n') to w without writing it, for callers
 * that queue lines and write them in batches (evtq). 0 or -ENOMEM.
 */
int evt_format(struct evt_sink *s, const char *type_name, const char *data_json, struct jw *w);
/* The descriptor the sink writes to. */
int evt_sink_fd(const struct evt_sink *s);

/* Events that could not be written (the sink failed, was full or closed). */
uint64_t evt_sink_dropped(const struct evt_sink *s);
uint64_t evt_sink_emitted(const struct evt_sink *s);

/* A fresh UUID-shaped identifier, unique within the sink and random across processes. */
void evt_sink_new_id(struct evt_sink *s, char buf[static EVT_ID_LEN]);

/* RFC 3339 UTC with microseconds: 2026-11-22T05:05:45.123456Z. */
char *evt_format_time(uint64_t realtime_ns, char buf[static EVT_TIME_LEN]);

/* The data schema version every event of this contract carries. */
#define EVT_SCHEMA_VERSION "1.0.0"

/* The members every event's data starts with: schemaVersion, cellId, runId. */
void evt_data_ids(struct jw *w, const char *cell_id, const char *run_id);

/* key: realtime_ns (0: now) as evt_format_time text (observedAt and the like). */
void evt_kv_time(struct jw *w, const char *key, uint64_t realtime_ns);

#endif
