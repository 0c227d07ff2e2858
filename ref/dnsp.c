// SPDX-License-Identifier: Apache-2.0
#include "dnsp.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dnswire.h"
#include "fault.h"
#include "rnd.h"
#include "util.h"

#define RX_BATCH      32
#define TX_BATCH      64
#define TX_SLOT	      4096 /* larger UDP answers go out on their own */
#define EP_BATCH      128
#define TCP_WBUF_MAX  (256u * 1024u)
#define IDLE_CHECK_NS (250ULL * 1000000ULL)
#define GRACE_MAX_MS  1000u
#define REPLY_MAX     65535u
#define REPLY_BATCH   16

enum kind {
	K_UDP_LISTEN,
	K_TCP_LISTEN,
	K_STOP,
	K_UP_POOL,
	K_UP_TCP,
	K_CONN,
};

struct item {
	enum kind kind;
};

enum up_tcp_state {
	UP_CONNECTING,
	UP_WRITING,
	UP_READING,
};

/*
 * An upstream UDP socket on a port drawn from getrandom(2). Each carries at most
 * queries_per_port queries, then it is retired (closed once its last reply is in) and its slot
 * gets a new socket on a new random port: RFC 5452 port randomisation without paying for a
 * socket per query (queries_per_port 1 gives exactly that).
 */
struct upsock {
	struct item it;
	int fd;
	uint32_t id; /* unique for the proxy's life: part of the in-flight key */
	uint32_t uses;
	uint32_t inflight;
	bool retired;
	struct upsock *next_dead;
	struct query *queries; /* in flight on this socket */
};

/* One query in flight upstream. */
struct query {
	struct item it;
	struct query *next, *prev; /* deadline order (same timeout for all: FIFO), or free list */
	struct upsock *us;	   /* UDP: the pool socket it went out on */
	struct query *us_next, *us_prev;
	int ufd; /* TCP: its own connection */
	enum dnsp_transport transport;
	unsigned int lsn; /* the listen address it came in on: UDP answers leave from there */
	bool in_shutdown;
	bool late_kept; /* dns.late_reply_relayed: SERVFAIL sent, still waiting */
	uint32_t conn_slot;
	uint32_t conn_gen;
	struct sockaddr_storage client;
	socklen_t client_len;
	uint16_t client_id;
	uint16_t txid;
	uint16_t qlen;
	uint16_t qname_len;
	uint16_t qtype;
	uint16_t qclass;
	uint32_t mismatches;
	uint64_t deadline;
	uint64_t recv_mono;
	uint64_t recv_rt;
	/* TCP upstream */
	enum up_tcp_state tstate;
	uint32_t toff;
	uint8_t *tbuf; /* reply: 2-byte length then message */
	/* The query as sent upstream, behind its TCP length prefix. */
	uint8_t msg[2 + DNSWIRE_MAX_QUERY];
};

/* One TCP client connection. */
struct conn {
	struct item it;
	int fd;
	uint32_t slot;
	uint32_t gen;
	unsigned int lsn; /* the listen address it was accepted on */
	bool used;
	bool eof;
	bool draining;	 /* no more queries will be read: close once answered */
	bool late;	 /* dns.accept_in_shutdown: accepted after shutdown began */
	uint32_t events; /* current epoll interest */
	uint32_t inflight;
	uint32_t total;
	uint64_t last_active;
	uint32_t rlen;
	/* Of a frame longer than rbuf holds: bytes read and dropped past its first 4096. */
	uint32_t skipped;
	uint8_t rbuf[2 + DNSWIRE_MAX_QUERY];
	uint8_t *wbuf;
	size_t wlen, woff, wcap;
};

/* The listeners of one listen address. */
struct lsn {
	struct item uit; /* K_UDP_LISTEN */
	struct item tit; /* K_TCP_LISTEN */
	unsigned int idx;
	int udp_fd;
	int tcp_fd;
	int tcp_err; /* why tcp_fd is -1 */
};

/* The listeners an epoll item of kind K_UDP_LISTEN (uit) or K_TCP_LISTEN (tit) belongs to. */
static struct lsn *lsn_of(struct item *it, size_t member_off)
{
	return (struct lsn *)((char *)it - member_off);
}

struct dnsp {
	struct dnsp_config c;
	int ep;
	struct lsn lsn[DNSP_MAX_LISTEN];
	unsigned int n_lsn;
	int waker; /* unconnected UDP socket in the cell netns for the wake datagram */
	struct item stop_item;
	bool stop_flag; /* set from any thread */
	bool stopping;
	uint64_t grace_deadline;
	uint64_t next_idle_check;
	struct dnsp_stats st;

	struct query *head, *tail; /* in flight, by deadline */
	struct query *free_list;
	struct query *limbo; /* freed during this epoll batch: reused only after it */
	uint32_t inflight;
	uint32_t allocated;

	struct conn **conns;
	uint32_t nconns;

	struct upsock **pool;
	struct upsock *dead_socks; /* closed this batch, freed after it */
	uint32_t next_sock_id;
	/* in flight over UDP, by (socket id, txid): open addressing, backward-shift delete */
	struct qslot {
		uint64_t key;
		struct query *q;
	} * map;
	uint32_t map_mask;

	/* replies from upstream */
	struct mmsghdr rep[REPLY_BATCH];
	struct iovec rep_iov[REPLY_BATCH];
	struct sockaddr_storage rep_addr[REPLY_BATCH];
	uint8_t rep_buf[REPLY_BATCH][REPLY_MAX + 1];

	/* receive batch */
	struct mmsghdr rx[RX_BATCH];
	struct iovec rx_iov[RX_BATCH];
	struct sockaddr_storage rx_addr[RX_BATCH];
	uint8_t rx_buf[RX_BATCH][DNSWIRE_MAX_QUERY + 1];
	/* send batch to UDP clients */
	struct mmsghdr tx[TX_BATCH];
	struct iovec tx_iov[TX_BATCH];
	struct sockaddr_storage tx_addr[TX_BATCH];
	uint8_t tx_buf[TX_BATCH][TX_SLOT];
	unsigned int ntx;
	unsigned int tx_lsn; /* the listener the batch leaves from */
	uint8_t scratch[REPLY_MAX + 1];
};

static const char *const reason_names[DNSP_REASON_MAX] = {
	[DNSP_FORWARDED] = "forwarded",
	[DNSP_DENIED_BY_POLICY] = "denied_by_policy",
	[DNSP_MALFORMED_QUERY] = "malformed_query",
	[DNSP_UPSTREAM_TIMEOUT] = "upstream_timeout",
	[DNSP_UPSTREAM_FAILURE] = "upstream_failure",
	[DNSP_UPSTREAM_MISMATCH] = "upstream_mismatch",
	[DNSP_UNSUPPORTED_OPCODE] = "unsupported_opcode",
	[DNSP_OVERLOADED] = "overloaded",
	[DNSP_OTHER] = "other",
};

const char *dnsp_reason_name(enum dnsp_reason r)
{
	return r < DNSP_REASON_MAX ? reason_names[r] : "other";
}

static uint64_t ms_to_ns(uint32_t ms)
{
	return (uint64_t)ms * 1000000ULL;
}

/* dns.tcp_upstream_reused: the upstream TCP connection kept from the last query. */
static int fault_spare_fd = -1;

static int ep_add(struct dnsp *p, int fd, uint32_t events, struct item *it)
{
	struct epoll_event ev = { .events = events, .data.ptr = it };

	return epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void ep_mod(struct dnsp *p, int fd, uint32_t events, struct item *it)
{
	struct epoll_event ev = { .events = events, .data.ptr = it };

	(void)epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
}

/* ---- results ---------------------------------------------------------------------------- */

static void report(struct dnsp *p, enum dnsp_transport t, unsigned int lsn,
		   const struct sockaddr_storage *client, socklen_t client_len,
		   const uint8_t *qname, uint16_t qname_len, uint16_t qtype, uint16_t qclass,
		   enum dnsp_reason reason, int rcode, uint64_t recv_mono, uint64_t recv_rt,
		   uint32_t mismatches)
{
	struct dnsp_result r = {
		.transport = t,
		.listener = lsn,
		.client = (const struct sockaddr *)client,
		.client_len = client_len,
		.qname = qname,
		.qname_len = qname_len,
		.qtype = qtype,
		.qclass = qclass,
		.reason = reason,
		.rcode = rcode,
		.recv_realtime_ns = recv_rt,
		.latency_ns = util_now_monotonic_ns() - recv_mono,
		.mismatches = mismatches,
	};

	p->st.queries++;
	if (t == DNSP_UDP)
		p->st.udp_queries++;
	else
		p->st.tcp_queries++;
	p->st.by_reason[reason]++;
	if (p->c.on_result)
		p->c.on_result(p->c.ctx, &r);
}

/* ---- sending to clients ------------------------------------------------------------------ */

static void tx_flush(struct dnsp *p)
{
	unsigned int done = 0;

	while (done < p->ntx) {
		int n = sendmmsg(p->lsn[p->tx_lsn].udp_fd, p->tx + done, p->ntx - done,
				 MSG_DONTWAIT);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			done++; /* a client that cannot be reached: skip it, keep the rest */
			continue;
		}
		done += (unsigned int)n;
	}
	p->ntx = 0;
}

/* An answer leaves from the listener its query came to: the address the client asked. */
static void udp_send(struct dnsp *p, unsigned int lsn, const struct sockaddr_storage *to,
		     socklen_t to_len, const uint8_t *data, size_t len)
{
	unsigned int i;

	if (len > TX_SLOT) {
		(void)sendto(p->lsn[lsn].udp_fd, data, len, MSG_DONTWAIT,
			     (const struct sockaddr *)to, to_len);
		return;
	}
	if (p->ntx == TX_BATCH || (p->ntx && p->tx_lsn != lsn))
		tx_flush(p);
	p->tx_lsn = lsn;
	i = p->ntx++;
	memcpy(p->tx_buf[i], data, len);
	memcpy(&p->tx_addr[i], to, to_len);
	p->tx_iov[i] = (struct iovec){ .iov_base = p->tx_buf[i], .iov_len = len };
	p->tx[i].msg_hdr = (struct msghdr){
		.msg_name = &p->tx_addr[i],
		.msg_namelen = to_len,
		.msg_iov = &p->tx_iov[i],
		.msg_iovlen = 1,
	};
}

static void conn_close(struct dnsp *p, struct conn *c);
static bool frame_ready(const struct conn *c);

static void conn_update(struct dnsp *p, struct conn *c)
{
	uint32_t want = 0;

	bool stopping = p->stopping && !c->late;

	if (!c->eof && !c->draining && !stopping && c->inflight < p->c.tcp_max_inflight)
		want |= EPOLLIN;
	if (c->woff < c->wlen)
		want |= EPOLLOUT;
	if (want != c->events) {
		c->events = want;
		ep_mod(p, c->fd, want, &c->it);
	}
	/* Nothing more to read, nothing in flight, everything written: done. */
	if ((c->eof || c->draining || stopping) && c->inflight == 0 && c->woff == c->wlen &&
	    (c->draining || stopping || !frame_ready(c)))
		conn_close(p, c);
}

static void conn_flush(struct dnsp *p, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				c->woff = c->wlen = 0;
				c->eof = true; /* the peer is gone: nothing more to say to it */
			}
			break;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
}

/* Queue one framed answer; false when the client is gone or hopelessly behind. */
static bool conn_send(struct dnsp *p, struct conn *c, const uint8_t *data, size_t len)
{
	size_t need = c->wlen + 2 + len;
	/* dns.tcp_overflow_unbounded: the negative control of DNS-TCP-010. */
	bool bounded = !FAULT("dns.tcp_overflow_unbounded");

	if (bounded && c->wlen - c->woff + 2 + len > TCP_WBUF_MAX + 2 + REPLY_MAX) {
		p->st.tcp_overflow++;
		conn_close(p, c);
		return false;
	}
	if (need > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 4096;
		uint8_t *nb;

		if (c->woff) {
			memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
			need = c->wlen + 2 + len;
		}
		while (cap < need)
			cap *= 2;
		nb = cap > c->wcap ? realloc(c->wbuf, cap) : c->wbuf;
		if (!nb) {
			conn_close(p, c);
			return false;
		}
		c->wbuf = nb;
		c->wcap = cap > c->wcap ? cap : c->wcap;
	}
	dnswire_put16(c->wbuf + c->wlen, (uint16_t)len);
	memcpy(c->wbuf + c->wlen + 2, data, len);
	c->wlen += 2 + len;
	/* dns.tcp_split_write: negative control of DNS-TCP-003 (length, message: two calls). */
	if (FAULT("dns.tcp_split_write") && c->woff + 2 + len == c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + c->woff, 2);

		c->woff += n > 0 ? (size_t)n : 0;
	}
	conn_flush(p, c);
	/* A client that reads nothing while answers pile up is cut off (SPEC DNS limits). */
	if (bounded && c->wlen - c->woff > TCP_WBUF_MAX) {
		p->st.tcp_overflow++;
		conn_close(p, c);
		return false;
	}
	return true;
}

static struct conn *conn_get(struct dnsp *p, uint32_t slot, uint32_t gen)
{
	struct conn *c = slot < p->c.tcp_max_conns ? p->conns[slot] : NULL;

	return c && c->used && c->gen == gen ? c : NULL;
}

/* ---- queries in flight ------------------------------------------------------------------- */

static void list_remove(struct dnsp *p, struct query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		p->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		p->tail = q->prev;
	q->next = q->prev = NULL;
}

static void list_append(struct dnsp *p, struct query *q)
{
	q->prev = p->tail;
	q->next = NULL;
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	p->tail = q;
}

static struct query *query_alloc(struct dnsp *p)
{
	struct query *q = p->free_list;

	if (q) {
		p->free_list = q->next;
	} else {
		/* dns.max_inflight_ignored: the negative control of DNS-FWD-011. */
		if (p->allocated >= p->c.max_inflight && !FAULT("dns.max_inflight_ignored"))
			return NULL;
		q = malloc(sizeof(*q)); /* at most max_inflight, then recycled */
		if (!q)
			return NULL;
		p->allocated++;
	}
	memset(q, 0, offsetof(struct query, msg));
	q->ufd = -1;
	return q;
}

static uint64_t map_key(const struct upsock *us, uint16_t txid)
{
	return (uint64_t)us->id << 16 | txid;
}

static uint32_t map_home(const struct dnsp *p, uint64_t key)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ULL;
	key ^= key >> 32;
	return (uint32_t)key & p->map_mask;
}

static struct query *map_get(const struct dnsp *p, uint64_t key)
{
	for (uint32_t i = map_home(p, key);; i = (i + 1) & p->map_mask) {
		if (!p->map[i].q)
			return NULL;
		if (p->map[i].key == key)
			return p->map[i].q;
	}
}

static void map_put(struct dnsp *p, uint64_t key, struct query *q)
{
	uint32_t i = map_home(p, key);

	while (p->map[i].q)
		i = (i + 1) & p->map_mask;
	p->map[i].key = key;
	p->map[i].q = q;
}

static void map_del(struct dnsp *p, uint64_t key)
{
	uint32_t i = map_home(p, key), j;

	while (p->map[i].q && p->map[i].key != key)
		i = (i + 1) & p->map_mask;
	if (!p->map[i].q)
		return;
	/* Shift later members of the run back so no lookup stops at the hole. */
	for (j = (i + 1) & p->map_mask; p->map[j].q; j = (j + 1) & p->map_mask) {
		uint32_t h = map_home(p, p->map[j].key);

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			p->map[i] = p->map[j];
			i = j;
		}
	}
	p->map[i].q = NULL;
}

static void upsock_close(struct dnsp *p, struct upsock *us)
{
	util_closep(&us->fd);
	us->next_dead = p->dead_socks;
	p->dead_socks = us;
}

static void query_free(struct dnsp *p, struct query *q)
{
	list_remove(p, q);
	util_closep(&q->ufd); /* closing also removes it from epoll */
	if (q->us) {
		map_del(p, map_key(q->us, q->txid));
		if (q->us_prev)
			q->us_prev->us_next = q->us_next;
		else
			q->us->queries = q->us_next;
		if (q->us_next)
			q->us_next->us_prev = q->us_prev;
		if (--q->us->inflight == 0 && q->us->retired)
			upsock_close(p, q->us);
		q->us = NULL;
	}
	free(q->tbuf);
	q->tbuf = NULL;
	if (q->transport == DNSP_TCP) {
		struct conn *c = conn_get(p, q->conn_slot, q->conn_gen);

		if (c) {
			c->inflight--;
			conn_update(p, c);
		}
	}
	p->inflight--;
	/*
	 * Not reusable before the epoll batch is through: a later entry of the batch may still
	 * point here, and must find a dead query (ufd -1), not someone else's.
	 */
	q->next = p->limbo;
	p->limbo = q;
}

static void limbo_release(struct dnsp *p)
{
	while (p->dead_socks) {
		struct upsock *us = p->dead_socks;

		p->dead_socks = us->next_dead;
		free(us);
	}
	while (p->limbo) {
		struct query *q = p->limbo;

		p->limbo = q->next;
		q->next = p->free_list;
		p->free_list = q;
	}
}

/* Deliver a response for q (its client ID already in place) and report the query. */
static void query_answer(struct dnsp *p, struct query *q, const uint8_t *resp, size_t len,
			 enum dnsp_reason reason)
{
	int rcode = len >= 4 ? resp[3] & 0xF : -1;

	if (q->transport == DNSP_UDP) {
		udp_send(p, q->lsn, &q->client, q->client_len, resp, len);
	} else {
		struct conn *c = conn_get(p, q->conn_slot, q->conn_gen);

		if (!c || !conn_send(p, c, resp, len)) {
			p->st.answers_lost++;
			rcode = -1;
		}
	}
	if (q->in_shutdown) {
		if (reason == DNSP_FORWARDED)
			p->st.answered_in_shutdown++;
	}
	report(p, q->transport, q->lsn, &q->client, q->client_len, q->msg + 2 + DNSWIRE_HDR_LEN,
	       q->qname_len, q->qtype, q->qclass, reason, rcode, q->recv_mono, q->recv_rt,
	       q->mismatches);
	query_free(p, q);
}

/* The proxy's own SERVFAIL for q into out (its question echoed); the length written. */
static size_t make_servfail(const struct query *q, uint8_t *out, size_t cap)
{
	struct dnswire_query pq = {
		.id = q->client_id,
		.flags = dnswire_get16(q->msg + 2 + 2),
		.has_question = true,
		.qname_len = q->qname_len,
	};

	return dnswire_make_response(q->msg + 2, &pq, DNSWIRE_SERVFAIL, out, cap);
}

/*
 * dns.late_reply_relayed: the client gets its SERVFAIL, but the query stays in flight for
 * another timeout, so a late upstream reply is relayed too (a second response).
 */
__attribute__((unused)) static void fault_late_keep(struct dnsp *p, struct query *q, uint64_t now)
{
	uint8_t out[DNSWIRE_HDR_LEN + DNSWIRE_MAX_NAME + 4];
	size_t n = make_servfail(q, out, sizeof(out));

	udp_send(p, q->lsn, &q->client, q->client_len, out, n);
	q->late_kept = true;
	list_remove(p, q);
	q->deadline = now + ms_to_ns(p->c.timeout_ms);
	list_append(p, q);
}

/* SERVFAIL made by the proxy for a query it could not complete. */
static void query_fail(struct dnsp *p, struct query *q, enum dnsp_reason reason)
{
	uint8_t out[DNSWIRE_HDR_LEN + DNSWIRE_MAX_NAME + 4];
	size_t n = make_servfail(q, out, sizeof(out));

	query_answer(p, q, out, n, reason);
}

/* A source port drawn uniformly from 1024 to 65535 (DNS-FWD-004). */
static uint16_t draw_port(void)
{
	static uint16_t fault_next;

	/* dns.sport_sequential: ports counted up from 1024, the negative control of the draw. */
	if (FAULT("dns.sport_sequential"))
		return (uint16_t)(1024 + fault_next++ % 64512);
	return rnd_range16(1024, 65535);
}

static int bind_random_port(struct dnsp *p, int fd)
{
	struct sockaddr_storage local;
	socklen_t len;

	memset(&local, 0, sizeof(local));
	local.ss_family = p->c.upstream.ss_family;
	len = local.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in);
	/* Our own pick from getrandom(2), not the kernel's allocator (RFC 5452 section 9.2). */
	for (int tries = 0; tries < 8; tries++) {
		uint16_t port = htons(draw_port());

		if (local.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&local)->sin6_port = port;
		else
			((struct sockaddr_in *)&local)->sin_port = port;
		if (bind(fd, (struct sockaddr *)&local, len) == 0)
			return 0;
		if (errno != EADDRINUSE && errno != EACCES)
			return -errno;
	}
	return 0; /* crowded: the first send binds a random ephemeral port */
}

static int upstream_socket(struct dnsp *p, int type)
{
	/*
	 * dns.upstream_family_of_listen: negative control of DNS-FWD-001 (the family of the first
	 * listener, whatever the upstream's).
	 */
	int fd = socket(FAULT("dns.upstream_family_of_listen") ? p->c.listen[0].addr.ss_family
							       : p->c.upstream.ss_family,
			type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err;

	if (fd < 0)
		return -errno;
	if (type == SOCK_DGRAM) {
		/* ICMP errors for an unconnected socket: delivered only with RECVERR. */
		if (p->c.upstream.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
		else
			(void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	}
	err = bind_random_port(p, fd);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static struct upsock *upsock_new(struct dnsp *p)
{
	struct upsock *us = calloc(1, sizeof(*us));

	if (!us)
		return NULL;
	us->it.kind = K_UP_POOL;
	us->id = ++p->next_sock_id;
	us->fd = upstream_socket(p, SOCK_DGRAM);
	if (us->fd < 0 || ep_add(p, us->fd, EPOLLIN, &us->it) < 0) {
		util_closep(&us->fd);
		free(us);
		return NULL;
	}
	return us;
}

/* A socket chosen at random from the pool, replaced first if it has served its quota. */
static struct upsock *pool_pick(struct dnsp *p)
{
	/* dns.upstream_one_port: the negative control of DNS-FWD-004 (one socket, never retired).
	 */
	bool one_port = FAULT("dns.upstream_one_port");
	uint32_t i = one_port ? 0 : rnd_range16(0, (uint16_t)(p->c.upstream_ports - 1));
	struct upsock *us = p->pool[i];

	if (us && us->uses >= p->c.queries_per_port && !one_port) {
		us->retired = true;
		if (us->inflight == 0)
			upsock_close(p, us);
		us = p->pool[i] = NULL;
	}
	if (!us)
		us = p->pool[i] = upsock_new(p);
	return us;
}

/*
 * dns.edns_size_rewritten, the negative control of DNS-FWD-002: the UDP payload size of an OPT
 * record right after the question (a query with no answer or authority records) becomes 1232,
 * as a forwarder that negotiates EDNS itself would send.
 */
static void fault_edns_rewrite(struct query *q)
{
	uint8_t *m = q->msg + 2;
	size_t off = DNSWIRE_HDR_LEN + q->qname_len + 4u;

	if (dnswire_get16(m + 6) || dnswire_get16(m + 8) || !dnswire_get16(m + 10) ||
	    off + 11u > q->qlen || m[off] != 0 || dnswire_get16(m + off + 1) != 41)
		return;
	dnswire_put16(m + off + 3, 1232);
}

static void forward(struct dnsp *p, struct query *q)
{
	int err = 0;

	q->txid = rnd_u16();
	/* dns.txid_counter: the negative control of DNS-FWD-003 (IDs that count up). */
	if (FAULT("dns.txid_counter")) {
		static uint16_t next = 4660;

		q->txid = next++;
	}
	dnswire_put16(q->msg + 2, q->txid);
	dnswire_put16(q->msg, q->qlen);
	if (FAULT("dns.edns_size_rewritten"))
		fault_edns_rewrite(q);
	/* dns.timeout_doubled: the negative control of DNS-FWD-009. */
	q->deadline =
		q->recv_mono + ms_to_ns(p->c.timeout_ms) * (FAULT("dns.timeout_doubled") ? 2 : 1);
	list_append(p, q);
	p->inflight++;
	if (q->transport == DNSP_TCP) {
		struct conn *c = conn_get(p, q->conn_slot, q->conn_gen);

		if (c)
			c->inflight++;
	}

	if (q->transport == DNSP_UDP) {
		struct upsock *us = pool_pick(p);

		if (!us) {
			query_fail(p, q, DNSP_UPSTREAM_FAILURE);
			return;
		}
		/* A txid not already waiting on this socket, so replies demultiplex. */
		while (map_get(p, map_key(us, q->txid)))
			q->txid = rnd_u16();
		dnswire_put16(q->msg + 2, q->txid);
		q->us = us;
		q->us_prev = NULL;
		q->us_next = us->queries;
		if (us->queries)
			us->queries->us_prev = q;
		us->queries = q;
		us->uses++;
		us->inflight++;
		map_put(p, map_key(us, q->txid), q);
		if (sendto(us->fd, q->msg + 2, q->qlen, 0, (const struct sockaddr *)&p->c.upstream,
			   p->c.upstream_len) < 0)
			err = -errno;
	} else {
		/* Queries that came over TCP go upstream over TCP (they may need the size). */
		q->it.kind = K_UP_TCP;
		q->tstate = UP_CONNECTING;
		/* dns.tcp_upstream_reused: the last query's connection carries this one too. */
		if (fault_spare_fd >= 0 && FAULT("dns.tcp_upstream_reused")) {
			q->ufd = fault_spare_fd;
			fault_spare_fd = -1;
			q->tstate = UP_WRITING;
			err = ep_add(p, q->ufd, EPOLLOUT, &q->it);
			if (err)
				query_fail(p, q, DNSP_UPSTREAM_FAILURE);
			return;
		}
		q->ufd = upstream_socket(p, SOCK_STREAM);
		err = q->ufd < 0 ? q->ufd : 0;
		if (err)
			q->ufd = -1;
		if (!err &&
		    connect(q->ufd, (const struct sockaddr *)&p->c.upstream, p->c.upstream_len) <
			    0 &&
		    errno != EINPROGRESS)
			err = -errno;
		err = err ?: ep_add(p, q->ufd, EPOLLOUT, &q->it);
	}
	if (err)
		query_fail(p, q, DNSP_UPSTREAM_FAILURE);
}

/* A reply that passed every check: the client's ID back, all else byte for byte. */
static void relay(struct dnsp *p, struct query *q, uint8_t *reply, size_t len)
{
	/* dns.txid_not_restored: the negative control of DNS-FWD-007 (ref/fault.h). */
	if (!FAULT("dns.txid_not_restored"))
		dnswire_put16(reply, q->client_id);
	query_answer(p, q, reply, len, DNSP_FORWARDED);
}

static bool from_upstream(const struct dnsp *p, const struct sockaddr_storage *from)
{
	if (from->ss_family != p->c.upstream.ss_family)
		return false;
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)from, *b = (const void *)&p->c.upstream;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *a = (const void *)from,
					  *b = (const void *)&p->c.upstream;

		/* dns.v6_saddr_unchecked: negative control of DNS-FWD-005 (IPv6 port only). */
		return a->sin6_port == b->sin6_port &&
		       (memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0 ||
			FAULT("dns.v6_saddr_unchecked"));
	}
}

/*
 * dns.mismatch_relayed: relay a reply the checks refused to the query it names by ID, or else
 * to the first query on the socket whose question it carries. Fault builds only.
 */
static bool fault_relay_mismatch(struct dnsp *p, struct upsock *us, struct query *q, int i,
				 size_t len)
{
	for (struct query *o = us->queries; !q && o && len >= DNSWIRE_HDR_LEN; o = o->us_next) {
		size_t ql = (size_t)o->qname_len + 4;

		if (len >= DNSWIRE_HDR_LEN + ql &&
		    memcmp(p->rep_buf[i] + DNSWIRE_HDR_LEN, o->msg + 2 + DNSWIRE_HDR_LEN, ql) == 0)
			q = o;
	}
	if (!q || len < DNSWIRE_HDR_LEN)
		return false;
	relay(p, q, p->rep_buf[i], len);
	return true;
}

/* ICMP errors queued by IP_RECVERR quote our datagram: its txid names the query. */
static void pool_errors(struct dnsp *p, struct upsock *us)
{
	for (;;) {
		uint8_t quoted[DNSWIRE_HDR_LEN], ctrl[512];
		struct iovec iov = { .iov_base = quoted, .iov_len = sizeof(quoted) };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctrl,
			.msg_controllen = sizeof(ctrl),
		};
		ssize_t n = recvmsg(us->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
		struct query *q;

		if (n < 0)
			return;
		if (n < 2)
			continue;
		q = map_get(p, map_key(us, dnswire_get16(quoted)));
		/* dns.icmp_ignored: the negative control of DNS-FWD-010 (the error is drained). */
		if (q && !FAULT("dns.icmp_ignored"))
			query_fail(p, q, DNSP_UPSTREAM_FAILURE);
	}
}

static void pool_readable(struct dnsp *p, struct upsock *us, uint32_t events)
{
	if (events & EPOLLERR)
		pool_errors(p, us);
	for (int rounds = 0; rounds < 8 && us->fd >= 0; rounds++) {
		int n;

		for (int i = 0; i < REPLY_BATCH; i++) {
			p->rep_iov[i] = (struct iovec){ .iov_base = p->rep_buf[i],
							.iov_len = sizeof(p->rep_buf[i]) };
			p->rep[i].msg_hdr = (struct msghdr){
				.msg_name = &p->rep_addr[i],
				.msg_namelen = sizeof(p->rep_addr[i]),
				.msg_iov = &p->rep_iov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(us->fd, p->rep, REPLY_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				pool_errors(p, us); /* the pending error was an ICMP one */
			return;
		}
		for (int i = 0; i < n; i++) {
			size_t len = p->rep[i].msg_len;
			struct query *q =
				len >= DNSWIRE_HDR_LEN
					? map_get(p, map_key(us, dnswire_get16(p->rep_buf[i])))
					: NULL;

			if (q && from_upstream(p, &p->rep_addr[i]) &&
			    !(p->rep[i].msg_hdr.msg_flags & MSG_TRUNC) &&
			    dnswire_reply_matches(p->rep_buf[i], len, q->txid,
						  q->msg + 2 + DNSWIRE_HDR_LEN,
						  (size_t)q->qname_len + 4)) {
				relay(p, q, p->rep_buf[i], len);
				continue;
			}
			/* dns.mismatch_relayed: the negative control of DNS-FWD-005/006. */
			if (FAULT("dns.mismatch_relayed") && fault_relay_mismatch(p, us, q, i, len))
				continue;
			/* Forged or stray: never relayed; its query waits for the real one. */
			p->st.upstream_mismatch++;
			if (q) {
				/* dns.mismatch_uncounted: negative control of DNS-EVT-008. */
				q->mismatches += !FAULT("dns.mismatch_uncounted");
				continue;
			}
			/*
			 * A wrong ID: charge the queries on this socket whose question it carries
			 * (at most --queries-per-port of them), as a spoofer would aim at them.
			 */
			for (struct query *o = us->queries; o && len >= DNSWIRE_HDR_LEN;
			     o = o->us_next) {
				size_t ql = (size_t)o->qname_len + 4;

				if (len >= DNSWIRE_HDR_LEN + ql &&
				    memcmp(p->rep_buf[i] + DNSWIRE_HDR_LEN,
					   o->msg + 2 + DNSWIRE_HDR_LEN, ql) == 0)
					o->mismatches += !FAULT("dns.mismatch_uncounted");
			}
		}
		if (n < REPLY_BATCH)
			return;
	}
}

/*
 * A TCP upstream connection refused, reset or closed before a whole reply: SERVFAIL now.
 * dns.tcp_upstream_failure_waits: the connection is closed and the query left to time out.
 */
static void tcp_up_failed(struct dnsp *p, struct query *q)
{
	if (FAULT("dns.tcp_upstream_failure_waits")) {
		util_closep(&q->ufd); /* closing also removes it from epoll */
		return;
	}
	query_fail(p, q, DNSP_UPSTREAM_FAILURE);
}

static void upstream_tcp_event(struct dnsp *p, struct query *q, uint32_t events)
{
	if (q->tstate == UP_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(q->ufd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
			tcp_up_failed(p, q);
			return;
		}
		q->tstate = UP_WRITING;
	}
	if (q->tstate == UP_WRITING) {
		ssize_t n = write(q->ufd, q->msg + q->toff, 2u + q->qlen - q->toff);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				query_fail(p, q, DNSP_UPSTREAM_FAILURE);
			return;
		}
		q->toff += (uint32_t)n;
		if (q->toff < 2u + q->qlen)
			return;
		q->tstate = UP_READING;
		q->toff = 0;
		ep_mod(p, q->ufd, EPOLLIN, &q->it);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (!q->tbuf) {
		q->tbuf = malloc(2 + REPLY_MAX);
		if (!q->tbuf) {
			query_fail(p, q, DNSP_OTHER);
			return;
		}
	}
	for (;;) {
		size_t want = q->toff < 2 ? 2 : 2u + dnswire_get16(q->tbuf);
		ssize_t n;

		if (q->toff == want && want > 2) {
			size_t len = want - 2;

			if (len < DNSWIRE_HDR_LEN ||
			    !dnswire_reply_matches(q->tbuf + 2, len, q->txid,
						   q->msg + 2 + DNSWIRE_HDR_LEN,
						   (size_t)q->qname_len + 4)) {
				/* A stream cannot resync past a bad message. */
				q->mismatches++;
				p->st.upstream_mismatch++;
				query_fail(p, q, DNSP_UPSTREAM_MISMATCH);
				return;
			}
			/* dns.tcp_upstream_reused: keep the connection for the next query. */
			if (FAULT("dns.tcp_upstream_reused")) {
				(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, q->ufd, NULL);
				if (fault_spare_fd >= 0)
					close(fault_spare_fd);
				fault_spare_fd = q->ufd;
				q->ufd = -1;
			}
			relay(p, q, q->tbuf + 2, len);
			return;
		}
		n = read(q->ufd, q->tbuf + q->toff, want - q->toff);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			tcp_up_failed(p, q);
			return;
		}
		q->toff += (uint32_t)n;
	}
}

/* ---- received messages ------------------------------------------------------------------ */

static void respond_now(struct dnsp *p, enum dnsp_transport t, unsigned int lsn, struct conn *c,
			const struct sockaddr_storage *client, socklen_t client_len,
			const uint8_t *msg, const struct dnswire_query *pq, uint8_t rcode)
{
	uint8_t out[DNSWIRE_HDR_LEN + DNSWIRE_MAX_NAME + 4];
	size_t n = dnswire_make_response(msg, pq, rcode, out, sizeof(out));

	if (t == DNSP_UDP)
		udp_send(p, lsn, client, client_len, out, n);
	else if (c)
		conn_send(p, c, out, n);
}

static void handle_message(struct dnsp *p, enum dnsp_transport t, unsigned int lsn, struct conn *c,
			   const struct sockaddr_storage *client, socklen_t client_len,
			   const uint8_t *msg, size_t len, uint64_t now, uint64_t now_rt)
{
	struct dnswire_query pq;
	enum dnswire_verdict v = dnswire_parse_query(msg, len, &pq);
	const uint8_t *qname = pq.has_question ? msg + DNSWIRE_HDR_LEN : NULL;
	enum dnsp_reason reason;
	struct query *q;
	uint8_t rcode;

#define REPORT(reason_, rcode_)                                                                  \
	report(p, t, lsn, client, client_len, qname, pq.qname_len, pq.qtype, pq.qclass, reason_, \
	       rcode_, now, now_rt, 0)

	switch (v) {
	case DNSWIRE_DROP:
		/* dns.malformed_no_event: the negative control of DNS-PRS-002/003. */
		if (!FAULT("dns.malformed_no_event"))
			REPORT(DNSP_MALFORMED_QUERY, -1);
		return;
	case DNSWIRE_BAD:
		respond_now(p, t, lsn, c, client, client_len, msg, &pq, DNSWIRE_FORMERR);
		REPORT(DNSP_MALFORMED_QUERY, DNSWIRE_FORMERR);
		return;
	case DNSWIRE_NOT_IMPL:
		respond_now(p, t, lsn, c, client, client_len, msg, &pq, DNSWIRE_NOTIMP);
		REPORT(DNSP_UNSUPPORTED_OPCODE, DNSWIRE_NOTIMP);
		return;
	case DNSWIRE_QUERY:
		break;
	}
	if (p->c.policy && !dnspol_allows(p->c.policy, qname, pq.qname_len)) {
		reason = DNSP_DENIED_BY_POLICY;
		/* dns.refused_as_servfail: the negative control of DNS-POL-004. */
		rcode = FAULT("dns.refused_as_servfail") ? DNSWIRE_SERVFAIL : DNSWIRE_REFUSED;
	} else if (!(q = query_alloc(p))) {
		reason = DNSP_OVERLOADED;
		rcode = DNSWIRE_SERVFAIL;
	} else {
		q->transport = t;
		q->lsn = lsn;
		memcpy(&q->client, client, client_len);
		q->client_len = client_len;
		q->client_id = pq.id;
		q->qlen = (uint16_t)len;
		q->qname_len = pq.qname_len;
		q->qtype = pq.qtype;
		q->qclass = pq.qclass;
		q->recv_mono = now;
		q->recv_rt = now_rt;
		if (c) {
			q->conn_slot = c->slot;
			q->conn_gen = c->gen;
		}
		memcpy(q->msg + 2, msg, len);
		forward(p, q);
		return;
	}
	respond_now(p, t, lsn, c, client, client_len, msg, &pq, rcode);
	REPORT(reason, rcode);
#undef REPORT
}

/*
 * Whether a stop was asked for: the flag, or a signal already waiting on stop_fd that this
 * epoll batch has not reached yet. Only asked for 0-byte datagrams, so the poll is rare.
 */
static bool stop_pending(struct dnsp *p)
{
	struct pollfd pf = { .fd = p->c.stop_fd, .events = POLLIN };

	if (__atomic_load_n(&p->stop_flag, __ATOMIC_ACQUIRE))
		return true;
	if (p->c.stop_fd >= 0 && poll(&pf, 1, 0) == 1) {
		__atomic_store_n(&p->stop_flag, true, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

static void udp_readable(struct dnsp *p, const struct lsn *l)
{
	for (int rounds = 0; rounds < 8; rounds++) {
		uint64_t now, now_rt;
		int n;

		for (int i = 0; i < RX_BATCH; i++) {
			p->rx_iov[i] = (struct iovec){ .iov_base = p->rx_buf[i],
						       .iov_len = sizeof(p->rx_buf[i]) };
			p->rx[i].msg_hdr = (struct msghdr){
				.msg_name = &p->rx_addr[i],
				.msg_namelen = sizeof(p->rx_addr[i]),
				.msg_iov = &p->rx_iov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(l->udp_fd, p->rx, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		now = util_now_monotonic_ns();
		now_rt = util_now_realtime_ns();
		for (int i = 0; i < n; i++) {
			size_t len = p->rx[i].msg_len;

			/* The supervisor's wake datagram: no event (SPEC DNS shutdown). */
			if (len == 0 && stop_pending(p) && !FAULT("dns.wake_event"))
				continue;
			if (p->rx[i].msg_hdr.msg_flags & MSG_TRUNC)
				len = DNSWIRE_MAX_QUERY + 1; /* too large: FORMERR */
			handle_message(p, DNSP_UDP, l->idx, NULL, &p->rx_addr[i],
				       p->rx[i].msg_hdr.msg_namelen, p->rx_buf[i], len, now,
				       now_rt);
		}
		if (n < RX_BATCH)
			return;
	}
}

/* ---- TCP clients ------------------------------------------------------------------------ */

static void conn_close(struct dnsp *p, struct conn *c)
{
	if (!c->used)
		return;
	close(c->fd);
	c->fd = -1;
	c->used = false;
	c->gen++;
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = c->wcap = 0;
	p->nconns--;
}

static void tcp_accept(struct dnsp *p, const struct lsn *l, uint64_t now)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(l->tcp_fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c = NULL;
		uint32_t slot;

		if (fd < 0)
			return;
		for (slot = 0; slot < p->c.tcp_max_conns; slot++) {
			if (!p->conns[slot] || !p->conns[slot]->used)
				break;
		}
		/* dns.tcp_over_limit_kept_open: negative control of DNS-TCP-009 (fd leaked). */
		if (slot == p->c.tcp_max_conns && FAULT("dns.tcp_over_limit_kept_open"))
			continue;
		if (slot == p->c.tcp_max_conns) {
			/* Over the limit: accepted and closed at once, so the client learns now. */
			p->st.tcp_rejected++;
			close(fd);
			continue;
		}
		if (!p->conns[slot]) {
			p->conns[slot] = calloc(1, sizeof(*c));
			if (!p->conns[slot]) {
				close(fd);
				continue;
			}
		}
		c = p->conns[slot];
		c->it.kind = K_CONN;
		c->fd = fd;
		c->slot = slot;
		c->lsn = l->idx;
		c->used = true;
		c->eof = c->draining = false;
		c->late = p->stopping && FAULT("dns.accept_in_shutdown");
		c->inflight = c->total = c->rlen = c->skipped = 0;
		c->last_active = now;
		c->events = EPOLLIN;
		if (ep_add(p, fd, EPOLLIN, &c->it) < 0) {
			close(fd);
			c->used = false;
			continue;
		}
		p->nconns++;
		p->st.tcp_connections++;
	}
}

/* Bytes of the buffered frame's message still to read and drop (longer than 4096 bytes). */
static uint32_t frame_to_skip(const struct conn *c)
{
	uint16_t flen = c->rlen >= 2 ? dnswire_get16(c->rbuf) : 0;

	return flen > DNSWIRE_MAX_QUERY ? flen - DNSWIRE_MAX_QUERY - c->skipped : 0;
}

/*
 * A whole frame has been read. Of a frame longer than 4096 bytes only the first 4096 are kept
 * (they decide its response, SPEC 8.2 step 7) and the rest is read and dropped first, so the
 * next frame starts where it should (DNS-TCP-012).
 */
static bool frame_ready(const struct conn *c)
{
	uint16_t flen = c->rlen >= 2 ? dnswire_get16(c->rbuf) : 0;

	if (c->rlen < 2)
		return false;
	if (flen > DNSWIRE_MAX_QUERY)
		return c->rlen == sizeof(c->rbuf) && frame_to_skip(c) == 0;
	return c->rlen >= 2u + flen;
}

static void conn_read(struct dnsp *p, struct conn *c, uint64_t now, uint64_t now_rt)
{
	/* dns.tcp_max_inflight_ignored: the negative control of DNS-TCP-005. */
	while (c->used && !c->draining && (!p->stopping || c->late) &&
	       (c->inflight < p->c.tcp_max_inflight || FAULT("dns.tcp_max_inflight_ignored"))) {
		ssize_t n;
		uint16_t flen;

		/* Whole frames first: buffered ones are served even after the client's EOF. */
		if (frame_ready(c)) {
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);
			uint32_t kept;

			flen = dnswire_get16(c->rbuf);
			kept = flen > DNSWIRE_MAX_QUERY ? DNSWIRE_MAX_QUERY : flen;
			/* dns.long_frame_abort: negative control of DNS-PRS-012 (> 16 KiB). */
			if (flen > 16384 && FAULT("dns.long_frame_abort"))
				abort();
			getpeername(c->fd, (struct sockaddr *)&peer, &plen);
			c->total++;
			/* Only the first 4096 bytes of a longer message are read: enough for the
			 * parser, which is given the real length (FORMERR, question echoed). */
			handle_message(p, DNSP_TCP, c->lsn, c, &peer, plen, c->rbuf + 2, flen, now,
				       now_rt);
			if (!c->used)
				return;
			memmove(c->rbuf, c->rbuf + 2 + kept, c->rlen - 2u - kept);
			c->rlen -= 2u + kept;
			c->skipped = 0;
			/* dns.tcp_oversize_closes: negative control of DNS-TCP-012. */
			if (flen > DNSWIRE_MAX_QUERY && FAULT("dns.tcp_oversize_closes")) {
				conn_close(p, c);
				return;
			}
			/* dns.tcp_one_frame_per_read: negative control of DNS-TCP-001/004. */
			if (FAULT("dns.tcp_one_frame_per_read"))
				c->rlen = 0;
			/* dns.tcp_max_queries_ignored: negative control of DNS-TCP-006. */
			if (c->total >= p->c.tcp_max_queries &&
			    !FAULT("dns.tcp_max_queries_ignored"))
				c->draining = true;
			continue;
		}
		if (c->eof)
			break;
		if (c->rlen == sizeof(c->rbuf) && frame_to_skip(c)) {
			/* The tail of a long message: read up to its end, never past it. */
			uint8_t sink[4096];
			uint32_t want = frame_to_skip(c);

			n = read(c->fd, sink, want < sizeof(sink) ? want : sizeof(sink));
			if (n > 0) {
				c->skipped += (uint32_t)n;
				c->last_active = now;
				continue;
			}
		} else {
			n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
		}
		if (n < 0) {
			int e = errno;

			/* dns.tcp_partial_discarded: the negative control of DNS-TCP-001. */
			if (e == EAGAIN && FAULT("dns.tcp_partial_discarded"))
				c->rlen = c->skipped = 0;
			/* dns.tcp_stall_blocks: waits for the rest of a frame (DNS-TCP-011). */
			if (e == EAGAIN && c->rlen && FAULT("dns.tcp_stall_blocks"))
				(void)poll(&(struct pollfd){ .fd = c->fd, .events = POLLIN }, 1,
					   1000);
			if (e == EAGAIN || e == EINTR)
				break;
			c->eof = true;
			break;
		}
		if (n == 0) {
			/* dns.tcp_eof_close: the negative control of DNS-TCP-007. */
			if (FAULT("dns.tcp_eof_close")) {
				conn_close(p, c);
				return;
			}
			c->eof = true; /* half-close: answer what was asked, then close */
			continue;
		}
		c->rlen += (uint32_t)n;
		c->last_active = now;
	}
	if (c->used)
		conn_update(p, c);
}

/* Frames left buffered while a connection was at its in-flight limit, now that it is not. */
static void conn_backlog(struct dnsp *p, uint64_t now, uint64_t now_rt)
{
	for (uint32_t i = 0; p->nconns && i < p->c.tcp_max_conns; i++) {
		struct conn *c = p->conns[i];

		if (c && c->used && !c->draining && (!p->stopping || c->late) && frame_ready(c) &&
		    c->inflight < p->c.tcp_max_inflight)
			conn_read(p, c, now, now_rt);
	}
}

static void conn_event(struct dnsp *p, struct conn *c, uint32_t events, uint64_t now,
		       uint64_t now_rt)
{
	if (events & EPOLLOUT) {
		conn_flush(p, c);
		c->last_active = now;
	}
	if (c->used && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(p, c, now, now_rt);
	else if (c->used)
		conn_update(p, c);
}

static void idle_check(struct dnsp *p, uint64_t now)
{
	uint64_t idle = ms_to_ns(p->c.tcp_idle_ms);

	/* dns.tcp_idle_ignored: the negative control of DNS-TCP-008. */
	if (FAULT("dns.tcp_idle_ignored"))
		return;
	for (uint32_t i = 0; i < p->c.tcp_max_conns; i++) {
		struct conn *c = p->conns[i];

		/* dns.tcp_idle_in_flight: queries in flight do not keep a connection open. */
		if (c && c->used && (c->inflight == 0 || FAULT("dns.tcp_idle_in_flight")) &&
		    c->woff == c->wlen && !frame_ready(c) && now - c->last_active >= idle) {
			p->st.tcp_idle_closed++;
			conn_close(p, c);
		}
	}
}

/* ---- life cycle ------------------------------------------------------------------------- */

static int make_listener(const struct sockaddr_storage *addr, socklen_t len, int type)
{
	int fd = socket(addr->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	/* Each family has its own listener: [::]:53 must not take 0.0.0.0:53 from another. */
	if (addr->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * The UDP and TCP listeners of listen address i, into p->lsn[i] and p->c.listen[i] (the address
 * read back from an inherited socket). Only the UDP listener's failure is returned.
 */
static int lsn_open(struct dnsp *p, unsigned int i)
{
	struct dnsp_listen *a = &p->c.listen[i];
	struct lsn *l = &p->lsn[i];
	int err = 0;

	l->idx = i;
	l->uit.kind = K_UDP_LISTEN;
	l->tit.kind = K_TCP_LISTEN;
	/* dns.udp_fd_rebound: negative control of DNS-PLC-003 (binds --listen next to --udp-fd). */
	if (a->udp_fd >= 0 && !FAULT("dns.udp_fd_rebound")) {
		l->udp_fd = a->udp_fd;
		err = set_nonblock(l->udp_fd);
		a->len = sizeof(a->addr);
		if (!err && getsockname(l->udp_fd, (struct sockaddr *)&a->addr, &a->len) < 0)
			err = -errno;
	} else {
		l->udp_fd = make_listener(&a->addr, a->len, SOCK_DGRAM);
		err = l->udp_fd < 0 ? l->udp_fd : 0;
		if (err)
			l->udp_fd = -1;
	}
	if (err)
		return err;

	if (a->tcp_fd >= 0) {
		l->tcp_fd = a->tcp_fd;
		l->tcp_err = set_nonblock(l->tcp_fd);
		/* Bound is enough: listening again on a listening socket only resets its backlog.
		 */
		if (!l->tcp_err && listen(l->tcp_fd, 128) < 0)
			l->tcp_err = -errno;
	} else if (a->udp_fd < 0 && FAULT("dns.tcp_listener_missing")) {
		/* The negative control of DNS-PLC-002: no TCP listener, and no word about it. */
	} else if (a->udp_fd >= 0 && FAULT("dns.udp_fd_no_tcp")) {
		/* The negative control of DNS-PLC-003: no TCP bound next to an inherited UDP. */
		l->tcp_err = -EBADF;
	} else {
		/* Own sockets, or an inherited UDP one alone: TCP goes on the same address. */
		l->tcp_fd = make_listener(&a->addr, a->len, SOCK_STREAM);
		if (l->tcp_fd < 0) {
			l->tcp_err = l->tcp_fd; /* UDP only: degraded, not refused */
			l->tcp_fd = -1;
		}
	}
	err = ep_add(p, l->udp_fd, EPOLLIN, &l->uit);
	if (!err && l->tcp_fd >= 0)
		err = ep_add(p, l->tcp_fd, EPOLLIN, &l->tit);
	return err;
}

int dnsp_new(const struct dnsp_config *c, struct dnsp **ret, unsigned int *ret_failed)
{
	struct dnsp *p;
	unsigned int n;
	int err = 0;

	*ret_failed = 0;
	if (!c->timeout_ms || !c->tcp_max_conns || !c->tcp_max_inflight || !c->max_inflight ||
	    !c->tcp_max_queries || !c->upstream_len || !c->upstream_ports ||
	    c->upstream_ports > 65535 || !c->queries_per_port || !c->n_listen ||
	    c->n_listen > DNSP_MAX_LISTEN)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = *c;
	for (unsigned int i = 0; i < DNSP_MAX_LISTEN; i++)
		p->lsn[i].udp_fd = p->lsn[i].tcp_fd = -1;
	p->waker = -1;
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->conns = calloc(c->tcp_max_conns, sizeof(*p->conns));
	p->pool = calloc(c->upstream_ports, sizeof(*p->pool));
	for (p->map_mask = 1024; p->map_mask < 2 * c->max_inflight; p->map_mask *= 2)
		;
	p->map = calloc(p->map_mask, sizeof(*p->map));
	p->map_mask--;
	if (p->ep < 0 || !p->conns || !p->pool || !p->map) {
		err = p->ep < 0 ? -errno : -ENOMEM;
		goto fail;
	}

	/* dns.listen_first_only: negative control of DNS-PLC-011 (later --listen ignored). */
	n = FAULT("dns.listen_first_only") ? 1 : c->n_listen;
	for (unsigned int i = 0; i < n; i++) {
		/*
		 * Every address or none: a proxy that served some of them would leave clients of
		 * the others without an answer and without a word. dns.listen_bind_partial: an
		 * address that cannot be bound is left out (the negative control of DNS-PLC-012).
		 */
		err = lsn_open(p, p->n_lsn);
		if (err && FAULT("dns.listen_bind_partial") && i > 0) {
			util_closep(&p->lsn[p->n_lsn].udp_fd);
			util_closep(&p->lsn[p->n_lsn].tcp_fd);
			p->lsn[p->n_lsn].tcp_err = 0;
			memmove(&p->c.listen[p->n_lsn], &p->c.listen[p->n_lsn + 1],
				(n - i - 1) * sizeof(p->c.listen[0]));
			err = 0;
			continue;
		}
		if (err) {
			*ret_failed = i;
			goto fail;
		}
		p->n_lsn++;
	}
	p->c.n_listen = p->n_lsn;

	p->waker =
		socket(p->c.listen[0].addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	p->stop_item.kind = K_STOP;
	if (c->stop_fd >= 0)
		err = ep_add(p, c->stop_fd, EPOLLIN, &p->stop_item);
	if (err)
		goto fail;
	*ret = p;
	return 0;
fail:
	dnsp_free(p);
	return err;
}

void dnsp_free(struct dnsp *p)
{
	if (!p)
		return;
	while (p->head)
		query_free(p, p->head);
	limbo_release(p);
	while (p->free_list) {
		struct query *q = p->free_list;

		p->free_list = q->next;
		free(q);
	}
	for (uint32_t i = 0; p->conns && i < p->c.tcp_max_conns; i++) {
		if (p->conns[i]) {
			conn_close(p, p->conns[i]);
			free(p->conns[i]);
		}
	}
	free(p->conns);
	for (uint32_t i = 0; p->pool && i < p->c.upstream_ports; i++) {
		if (p->pool[i]) {
			util_closep(&p->pool[i]->fd);
			free(p->pool[i]);
		}
	}
	free(p->pool);
	free(p->map);
	for (unsigned int i = 0; i < DNSP_MAX_LISTEN; i++) {
		util_closep(&p->lsn[i].udp_fd);
		util_closep(&p->lsn[i].tcp_fd);
	}
	util_closep(&p->waker);
	util_closep(&p->ep);
	free(p);
}

void dnsp_freep(struct dnsp **p)
{
	dnsp_free(*p);
}

unsigned int dnsp_listen_count(const struct dnsp *p)
{
	return p->n_lsn;
}

bool dnsp_has_tcp(const struct dnsp *p, unsigned int i)
{
	return i < p->n_lsn && p->lsn[i].tcp_fd >= 0;
}

int dnsp_tcp_error(const struct dnsp *p, unsigned int i)
{
	return i < p->n_lsn ? p->lsn[i].tcp_err : -EINVAL;
}

int dnsp_local_addr(const struct dnsp *p, unsigned int i, struct sockaddr_storage *ret,
		    socklen_t *ret_len)
{
	if (i >= p->n_lsn)
		return -EINVAL;
	*ret_len = sizeof(*ret);
	return getsockname(p->lsn[i].udp_fd, (struct sockaddr *)ret, ret_len) < 0 ? -errno : 0;
}

const struct dnsp_stats *dnsp_get_stats(const struct dnsp *p)
{
	return &p->st;
}

void dnsp_request_stop(struct dnsp *p)
{
	__atomic_store_n(&p->stop_flag, true, __ATOMIC_RELEASE);
	if (p->waker >= 0)
		(void)sendto(p->waker, "", 0, MSG_DONTWAIT,
			     (const struct sockaddr *)&p->c.listen[0].addr, p->c.listen[0].len);
}

static void begin_stop(struct dnsp *p, uint64_t now)
{
	uint32_t grace = p->c.timeout_ms < GRACE_MAX_MS ? p->c.timeout_ms : GRACE_MAX_MS;

	if (p->stopping)
		return;
	p->stopping = true;
	p->grace_deadline = now + ms_to_ns(grace);
	/*
	 * No new queries on any listener from here on; what is in flight still gets its answer.
	 * dns.shutdown_first_listener_only: the listeners of later --listen addresses keep
	 * serving (the negative control of DNS-SHD-002 over several addresses).
	 */
	for (unsigned int i = 0; i < p->n_lsn; i++) {
		if (i > 0 && FAULT("dns.shutdown_first_listener_only"))
			break;
		(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, p->lsn[i].udp_fd, NULL);
		/* dns.accept_in_shutdown: connections are still accepted, and served as before. */
		if (p->lsn[i].tcp_fd >= 0 && !FAULT("dns.accept_in_shutdown"))
			(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, p->lsn[i].tcp_fd, NULL);
	}
	if (p->c.stop_fd >= 0)
		(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, p->c.stop_fd, NULL);
	for (struct query *q = p->head; q; q = q->next)
		q->in_shutdown = true;
	/* dns.shutdown_abandons: no grace period (the negative control of DNS-SHD-003). */
	while (p->head && FAULT("dns.shutdown_abandons")) {
		p->st.abandoned_in_shutdown++;
		query_fail(p, p->head, DNSP_UPSTREAM_TIMEOUT);
	}
	for (uint32_t i = 0; i < p->c.tcp_max_conns; i++) {
		if (p->conns[i] && p->conns[i]->used)
			conn_update(p, p->conns[i]);
	}
}

static bool conns_flushed(const struct dnsp *p)
{
	for (uint32_t i = 0; i < p->c.tcp_max_conns; i++) {
		const struct conn *c = p->conns[i];

		if (c && c->used && c->woff < c->wlen)
			return false;
	}
	return true;
}

static int next_timeout_ms(const struct dnsp *p, uint64_t now)
{
	uint64_t until = UINT64_MAX;

	if (p->head)
		until = p->head->deadline;
	if (p->stopping && p->grace_deadline < until)
		until = p->grace_deadline;
	if (p->nconns && p->next_idle_check < until)
		until = p->next_idle_check;
	if (until == UINT64_MAX)
		return -1;
	if (until <= now)
		return 0;
	return (int)((until - now + 999999) / 1000000);
}

int dnsp_run(struct dnsp *p)
{
	struct epoll_event evs[EP_BATCH];

	for (;;) {
		uint64_t now = util_now_monotonic_ns(), now_rt;
		int n = epoll_wait(p->ep, evs, EP_BATCH, next_timeout_ms(p, now));

		if (n < 0 && errno != EINTR)
			return -errno;
		now = util_now_monotonic_ns();
		now_rt = util_now_realtime_ns();
		for (int i = 0; i < n; i++) {
			struct item *it = evs[i].data.ptr;

			switch (it->kind) {
			case K_UDP_LISTEN:
				udp_readable(p, lsn_of(it, offsetof(struct lsn, uit)));
				break;
			case K_TCP_LISTEN:
				tcp_accept(p, lsn_of(it, offsetof(struct lsn, tit)), now);
				break;
			case K_STOP:
				begin_stop(p, now);
				break;
			case K_UP_POOL:
				/* Closed earlier in this batch: fd is -1, nothing to do. */
				if (((struct upsock *)it)->fd >= 0)
					pool_readable(p, (struct upsock *)it, evs[i].events);
				break;
			case K_UP_TCP:
				if (((struct query *)it)->ufd >= 0)
					upstream_tcp_event(p, (struct query *)it, evs[i].events);
				break;
			case K_CONN:
				if (((struct conn *)it)->used)
					conn_event(p, (struct conn *)it, evs[i].events, now,
						   now_rt);
				break;
			}
		}
		limbo_release(p);
		conn_backlog(p, now, now_rt);
		if (__atomic_load_n(&p->stop_flag, __ATOMIC_ACQUIRE))
			begin_stop(p, now);

		now = util_now_monotonic_ns();
		while (p->head && p->head->deadline <= now) {
			/* dns.late_reply_relayed: SERVFAIL goes out, the query keeps waiting. */
			if (FAULT("dns.late_reply_relayed") && !p->head->late_kept &&
			    p->head->transport == DNSP_UDP) {
				fault_late_keep(p, p->head, now);
				continue;
			}
			query_fail(p, p->head,
				   p->head->mismatches ? DNSP_UPSTREAM_MISMATCH
						       : DNSP_UPSTREAM_TIMEOUT);
		}
		if (p->nconns && now >= p->next_idle_check) {
			idle_check(p, now);
			p->next_idle_check = now + IDLE_CHECK_NS;
		}
		if (p->stopping && now >= p->grace_deadline) {
			while (p->head) {
				/* The same reason as a timeout: were replies dropped for it? */
				bool mismatched = p->head->mismatches &&
						  !FAULT("dns.shutdown_reason_timeout");

				p->st.abandoned_in_shutdown++;
				query_fail(p, p->head,
					   mismatched ? DNSP_UPSTREAM_MISMATCH
						      : DNSP_UPSTREAM_TIMEOUT);
			}
		}
		tx_flush(p);
		if (p->c.on_batch)
			p->c.on_batch(p->c.ctx);
		if (p->stopping && !p->head && (conns_flushed(p) || now >= p->grace_deadline))
			return 0;
	}
}
