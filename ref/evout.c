// SPDX-License-Identifier: Apache-2.0
#include "evout.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct evout {
	int fd;
	size_t max;
	char *buf; /* queued, owned by pushers under lock */
	size_t len, cap;
	bool stop, failed;
	uint64_t dropped, lines;
	pthread_t writer;
	pthread_mutex_t lock;
	pthread_cond_t more; /* writer waits for lines */
	pthread_cond_t room; /* pushers wait for space */
};

static size_t count_lines(const char *p, size_t n)
{
	size_t k = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		k++;
	return k;
}

static void *writer_main(void *arg)
{
	struct evout *o = arg;
	char *out = NULL;
	size_t out_cap = 0;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->len && !o->stop)
			pthread_cond_wait(&o->more, &o->lock);
		if (!o->len)
			break;
		/* Swap buffers: pushers go on filling while this batch is written. */
		char *b = o->buf;
		size_t n = o->len, c = o->cap;

		o->buf = out;
		o->cap = out_cap;
		o->len = 0;
		out = b;
		out_cap = c;
		pthread_cond_broadcast(&o->room);
		bool failed = o->failed;

		pthread_mutex_unlock(&o->lock);
		int err = failed ? -EPIPE : util_write_all(o->fd, out, n);

		pthread_mutex_lock(&o->lock);
		if (err) {
			o->failed = true;
			o->dropped += count_lines(out, n);
		}
	}
	pthread_mutex_unlock(&o->lock);
	free(out);
	return NULL;
}

int evout_new(int fd, size_t max_bytes, struct evout **ret)
{
	struct evout *o = calloc(1, sizeof(*o));
	int err;

	if (!o)
		return -ENOMEM;
	o->fd = fd;
	o->max = max_bytes;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->more, NULL);
	pthread_cond_init(&o->room, NULL);
	err = pthread_create(&o->writer, NULL, writer_main, o);
	if (err) {
		pthread_mutex_destroy(&o->lock);
		pthread_cond_destroy(&o->more);
		pthread_cond_destroy(&o->room);
		free(o);
		return -err;
	}
	*ret = o;
	return 0;
}

int evout_push(struct evout *o, const char *lines, size_t len)
{
	size_t k = count_lines(lines, len);
	int err = 0;

	pthread_mutex_lock(&o->lock);
	while (!o->failed && o->len && o->len + len > o->max)
		pthread_cond_wait(&o->room, &o->lock);
	if (o->failed) {
		o->dropped += k;
		err = -EPIPE;
		goto out;
	}
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *b;

		while (cap < o->len + len)
			cap *= 2;
		b = realloc(o->buf, cap);
		if (!b) {
			o->dropped += k;
			err = -ENOMEM;
			goto out;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, lines, len);
	o->len += len;
	o->lines += k;
	pthread_cond_signal(&o->more);
out:
	pthread_mutex_unlock(&o->lock);
	return err;
}

void evout_free(struct evout *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_signal(&o->more);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->writer, NULL);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->more);
	pthread_cond_destroy(&o->room);
	free(o->buf);
	free(o);
}

uint64_t evout_dropped(const struct evout *o)
{
	return __atomic_load_n(&o->dropped, __ATOMIC_RELAXED);
}

uint64_t evout_lines(const struct evout *o)
{
	return __atomic_load_n(&o->lines, __ATOMIC_RELAXED);
}
