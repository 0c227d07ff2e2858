// SPDX-License-Identifier: Apache-2.0
#include "evt.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

struct evt_sink {
	pthread_mutex_t lock;
	int fd;
	bool own_fd;
	char *source;
	char *traceparent;
	unsigned char id_seed[16];
	uint64_t id_counter;
	uint64_t emitted;
	uint64_t dropped;
	struct jw line;
};

int evt_sink_open_fd(int fd, bool own, const char *source, struct evt_sink **ret)
{
	struct evt_sink *s;

	if (fd < 0 || !source || !*source)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->source = strdup(source);
	jw_init(&s->line);
	if (!s->source || jw_error(&s->line)) {
		jw_free(&s->line);
		free(s->source);
		free(s);
		return -ENOMEM;
	}
	if (getrandom(s->id_seed, sizeof(s->id_seed), 0) != sizeof(s->id_seed)) {
		/* Early boot without entropy: still unique within the process. */
		uint64_t t = util_now_realtime_ns() ^ ((uint64_t)getpid() << 32);
		memcpy(s->id_seed, &t, sizeof(t));
	}
	pthread_mutex_init(&s->lock, NULL);
	s->fd = fd;
	s->own_fd = own;
	*ret = s;
	return 0;
}

int evt_sink_open_path(const char *path, const char *source, struct evt_sink **ret)
{
	int fd, err;

	if (!path)
		return -EINVAL;
	if (strcmp(path, "-") == 0)
		return evt_sink_open_fd(STDOUT_FILENO, false, source, ret);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = evt_sink_open_fd(fd, true, source, ret);
	if (err)
		close(fd);
	return err;
}

void evt_sink_free(struct evt_sink *s)
{
	if (!s)
		return;
	if (s->own_fd)
		close(s->fd);
	pthread_mutex_destroy(&s->lock);
	jw_free(&s->line);
	free(s->traceparent);
	free(s->source);
	free(s);
}

void evt_sink_freep(struct evt_sink **s)
{
	evt_sink_free(*s);
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

int evt_sink_set_traceparent(struct evt_sink *s, const char *tp)
{
	char *copy;

	/* version 00 "-" 32 hex trace id "-" 16 hex parent id "-" 2 hex flags */
	if (strlen(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
	    strncmp(tp, "00", 2) != 0 || !is_lower_hex(tp + 3, 32) || !is_lower_hex(tp + 36, 16) ||
	    !is_lower_hex(tp + 53, 2))
		return -EINVAL;
	/* An all-zero trace id or parent id is invalid (W3C Trace Context 3.2.2). */
	if (strspn(tp + 3, "0") >= 32 || strspn(tp + 36, "0") >= 16)
		return -EINVAL;
	copy = strdup(tp);
	if (!copy)
		return -ENOMEM;
	free(s->traceparent);
	s->traceparent = copy;
	return 0;
}

static void format_id(const unsigned char seed[16], uint64_t n, char buf[static EVT_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t lo;
	size_t o = 0;

	memcpy(b, seed, sizeof(b));
	/* Big-endian counter: the variant bits masked below are its top bits, not its bottom. */
	memcpy(&lo, b + 8, sizeof(lo));
	lo = htobe64(be64toh(lo) + n);
	memcpy(b + 8, &lo, sizeof(lo));
	b[6] = (b[6] & 0x0F) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3F) | 0x80; /* RFC 4122 variant */
	/* By hand, 8-4-4-4-12: this runs once per event. */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[b[i] >> 4];
		buf[o++] = hex[b[i] & 0xF];
	}
	buf[o] = '\0';
}

void evt_sink_new_id(struct evt_sink *s, char buf[static EVT_ID_LEN])
{
	uint64_t n = __atomic_fetch_add(&s->id_counter, 1, __ATOMIC_RELAXED);

	format_id(s->id_seed, n, buf);
}

char *evt_format_time(uint64_t realtime_ns, char buf[static EVT_TIME_LEN])
{
	/* The calendar part changes once a second: keep it per thread, add the microseconds. */
	static __thread time_t cached_sec = -1;
	static __thread char cached[EVT_TIME_LEN];
	time_t sec = (time_t)(realtime_ns / 1000000000ULL);
	unsigned usec = (unsigned)((realtime_ns % 1000000000ULL) / 1000ULL);
	size_t n;

	if (sec != cached_sec) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		if (!strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm))
			cached[0] = '\0';
		cached_sec = sec;
	}
	n = strlen(cached);
	memcpy(buf, cached, n);
	buf[n++] = '.';
	for (int d = 5; d >= 0; d--) {
		buf[n + (size_t)d] = (char)('0' + usec % 10);
		usec /= 10;
	}
	n += 6;
	buf[n++] = 'Z';
	buf[n] = '\0';
	return buf;
}

int evt_format(struct evt_sink *s, const char *type_name, const char *data_json, struct jw *w)
{
	char id[EVT_ID_LEN], now[EVT_TIME_LEN + 8], type[128];
	size_t n;

	evt_sink_new_id(s, id);
	evt_format_time(util_now_realtime_ns(), now);
	jw_obj_open(w);
	jw_kv_str(w, "specversion", "1.0");
	jw_kv_str(w, "id", id);
	jw_kv_str(w, "source", s->source);
	n = strlen(type_name);
	if (n >= sizeof(type) - sizeof(EVT_TYPE_PREFIX))
		return -EINVAL;
	memcpy(type, EVT_TYPE_PREFIX, sizeof(EVT_TYPE_PREFIX) - 1);
	memcpy(type + sizeof(EVT_TYPE_PREFIX) - 1, type_name, n + 1);
	jw_kv_str(w, "type", type);
	jw_kv_str(w, "time", now);
	jw_kv_str(w, "datacontenttype", "application/json");
	if (s->traceparent)
		jw_kv_str(w, "traceparent", s->traceparent);
	jw_key(w, "data");
	jw_raw(w, data_json);
	jw_obj_close(w);
	jw_append(w, "\n", 1);
	return jw_error(w);
}

int evt_emit(struct evt_sink *s, const char *type_name, const char *data_json)
{
	struct jw *w = &s->line;
	int err;

	pthread_mutex_lock(&s->lock);
	jw_reset(w);
	err = evt_format(s, type_name, data_json, w);
	if (!err)
		err = util_write_all(s->fd, w->buf, w->len);
	if (err)
		s->dropped++;
	else
		s->emitted++;
	pthread_mutex_unlock(&s->lock);
	return err;
}

int evt_sink_fd(const struct evt_sink *s)
{
	return s->fd;
}

uint64_t evt_sink_dropped(const struct evt_sink *s)
{
	return __atomic_load_n(&s->dropped, __ATOMIC_RELAXED);
}

uint64_t evt_sink_emitted(const struct evt_sink *s)
{
	return __atomic_load_n(&s->emitted, __ATOMIC_RELAXED);
}

void evt_data_ids(struct jw *w, const char *cell_id, const char *run_id)
{
	jw_kv_str(w, "schemaVersion", EVT_SCHEMA_VERSION);
	jw_kv_str(w, "cellId", cell_id);
	jw_kv_str(w, "runId", run_id);
}

void evt_kv_time(struct jw *w, const char *key, uint64_t realtime_ns)
{
	char t[EVT_TIME_LEN];

	jw_kv_str(w, key, evt_format_time(realtime_ns ?: util_now_realtime_ns(), t));
}
