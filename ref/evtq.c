// SPDX-License-Identifier: Apache-2.0
#include "evtq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "util.h"

/*
 * Single producer, single consumer byte ring. head and tail only grow; the producer owns head,
 * the writer owns tail. The writer copies what waits into its own buffer first, so a line that
 * wraps around the end of the ring still goes out in one write.
 */
struct evtq {
	int fd;
	int wake; /* eventfd */
	size_t cap;
	char *ring;
	char *out;
	uint64_t head;	  /* producer */
	uint64_t tail;	  /* writer */
	uint64_t pushed;  /* producer: lines since the last kick */
	uint64_t dropped; /* both sides add, atomically */
	bool stop;
	pthread_t writer;
	pthread_mutex_t lock; /* flush waits */
	pthread_cond_t done;
};

static size_t count_lines(const char *p, size_t n)
{
	size_t lines = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		lines++;
	return lines;
}

static void *writer_main(void *arg)
{
	struct evtq *q = arg;

	for (;;) {
		uint64_t head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
		uint64_t tail = q->tail;
		struct pollfd p = { .fd = q->wake, .events = POLLIN };
		uint64_t v;

		if (head != tail) {
			size_t n = (size_t)(head - tail), at = (size_t)(tail % q->cap);
			size_t first = n < q->cap - at ? n : q->cap - at;

			memcpy(q->out, q->ring + at, first);
			memcpy(q->out + first, q->ring, n - first);
			/* evt.split_write: the negative control of EVT-ENV-002 (a line in two
			 * writes, another writer of the file can land between them). */
			if (FAULT("evt.split_write") && n > 1) {
				struct timespec ts = { 0, 200000 };

				if (util_write_all(q->fd, q->out, n / 2) == 0)
					nanosleep(&ts, NULL);
				if (util_write_all(q->fd, q->out + n / 2, n - n / 2) < 0)
					__atomic_add_fetch(&q->dropped, count_lines(q->out, n),
							   __ATOMIC_RELAXED);
			} else if (util_write_all(q->fd, q->out, n) < 0) {
				/* dns.sink_fatal: the negative control of DNS-EVT-015. */
				if (FAULT("dns.sink_fatal"))
					_exit(1);
				__atomic_add_fetch(&q->dropped, count_lines(q->out, n),
						   __ATOMIC_RELAXED);
			}
			pthread_mutex_lock(&q->lock);
			__atomic_store_n(&q->tail, head, __ATOMIC_RELEASE);
			pthread_cond_broadcast(&q->done);
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		if (__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE))
			break;
		/* Bounded wait: a kick lost to a race still goes out within 50 ms. */
		if (poll(&p, 1, 50) > 0)
			(void)!read(q->wake, &v, sizeof(v));
	}
	return NULL;
}

int evtq_new(int fd, size_t cap, struct evtq **ret)
{
	struct evtq *q;

	if (cap < 4096)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->fd = fd;
	q->cap = cap;
	q->ring = malloc(cap);
	q->out = malloc(cap);
	q->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->done, NULL);
	if (!q->ring || !q->out || q->wake < 0 ||
	    pthread_create(&q->writer, NULL, writer_main, q) != 0) {
		int err = q->wake < 0 ? -errno : -ENOMEM;

		util_closep(&q->wake);
		free(q->ring);
		free(q->out);
		free(q);
		return err;
	}
	*ret = q;
	return 0;
}

void evtq_free(struct evtq *q)
{
	uint64_t one = 1;

	if (!q)
		return;
	__atomic_store_n(&q->stop, true, __ATOMIC_RELEASE);
	(void)!write(q->wake, &one, sizeof(one));
	pthread_join(q->writer, NULL);
	close(q->wake);
	pthread_cond_destroy(&q->done);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q->out);
	free(q);
}

int evtq_push(struct evtq *q, const char *line, size_t len)
{
	uint64_t tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
	size_t at, first;

	/* dns.evtq_blocks: the negative control of DNS-EVT-014 (the serving loop waits for
	 * the sink instead of dropping). */
	while (FAULT("dns.evtq_blocks") && len > q->cap - (size_t)(q->head - tail)) {
		usleep(1000);
		tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
	}
	if (len > q->cap - (size_t)(q->head - tail)) {
		__atomic_add_fetch(&q->dropped, 1, __ATOMIC_RELAXED);
		return -ENOBUFS;
	}
	at = (size_t)(q->head % q->cap);
	first = len < q->cap - at ? len : q->cap - at;
	memcpy(q->ring + at, line, first);
	memcpy(q->ring, line + first, len - first);
	__atomic_store_n(&q->head, q->head + len, __ATOMIC_RELEASE);
	q->pushed++;
	return 0;
}

void evtq_kick(struct evtq *q)
{
	uint64_t one = 1;

	if (!q->pushed)
		return;
	q->pushed = 0;
	(void)!write(q->wake, &one, sizeof(one));
}

uint64_t evtq_dropped(const struct evtq *q)
{
	return __atomic_load_n(&q->dropped, __ATOMIC_RELAXED);
}

void evtq_flush(struct evtq *q)
{
	uint64_t head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE), one = 1;

	(void)!write(q->wake, &one, sizeof(one));
	pthread_mutex_lock(&q->lock);
	while (__atomic_load_n(&q->tail, __ATOMIC_ACQUIRE) < head)
		pthread_cond_wait(&q->done, &q->lock);
	pthread_mutex_unlock(&q->lock);
}
