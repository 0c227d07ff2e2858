/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DNS proxy engine (SPEC.md chapter 8): UDP and TCP listeners on each of up to four
 * addresses (any mix of IPv4 and IPv6), one upstream, one epoll loop, every socket non-blocking
 * so no client can hold up another.
 *
 *   client --UDP--> listener --recvmmsg--> parse -> policy -> fresh socket, random port + txid
 *   client --TCP--> conn (framing) ------/                          | sendto / TCP connect
 *   client <--sendmmsg / conn write-- restore client ID <-- checked reply <-- upstream
 *
 * The engine does no event formatting: each finished query is handed to on_result with what
 * the event needs. dnsp_new() binds; it and dnsp_run() must run on a thread inside the cell's
 * network namespace, since every upstream socket is created as queries arrive.
 */
#ifndef CELLREF_DNSP_H
#define CELLREF_DNSP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnspol.h"

enum dnsp_transport {
	DNSP_UDP,
	DNSP_TCP,
};

enum dnsp_reason {
	DNSP_FORWARDED,
	DNSP_DENIED_BY_POLICY,
	DNSP_MALFORMED_QUERY,
	DNSP_UPSTREAM_TIMEOUT,
	DNSP_UPSTREAM_FAILURE,
	DNSP_UPSTREAM_MISMATCH,
	DNSP_UNSUPPORTED_OPCODE,
	DNSP_OVERLOADED,
	DNSP_OTHER,
	DNSP_REASON_MAX,
};

/* "forwarded", "denied_by_policy", ... as SPEC.md names them. */
const char *dnsp_reason_name(enum dnsp_reason r);

/* What one received message came to: everything its dns_query event carries. */
struct dnsp_result {
	enum dnsp_transport transport;
	unsigned int listener; /* index into dnsp_config.listen: where the message arrived */
	const struct sockaddr *client;
	socklen_t client_len;
	const uint8_t *qname; /* wire form; NULL when the question did not parse */
	uint16_t qname_len;
	uint16_t qtype;
	uint16_t qclass;
	enum dnsp_reason reason;
	int rcode; /* of the response sent, -1 when none was sent */
	uint64_t recv_realtime_ns;
	uint64_t latency_ns;
	uint32_t mismatches; /* upstream replies dropped for this query */
};

struct dnsp_stats {
	uint64_t queries;
	uint64_t udp_queries;
	uint64_t tcp_queries;
	uint64_t by_reason[DNSP_REASON_MAX];
	uint64_t upstream_mismatch; /* replies dropped */
	uint64_t answered_in_shutdown;
	uint64_t abandoned_in_shutdown;
	uint64_t tcp_connections;
	uint64_t tcp_rejected;
	uint64_t tcp_idle_closed;
	uint64_t tcp_overflow;
	uint64_t answers_lost; /* the TCP client was gone when its answer came */
};

/* Listen addresses a proxy serves at once (SPEC DNS-CLI-005). */
#define DNSP_MAX_LISTEN 4

/* One listen address: a UDP and a TCP listener on it. */
struct dnsp_listen {
	struct sockaddr_storage addr;
	socklen_t len; /* 0 when udp_fd is given: the address is read back from it */
	int udp_fd;    /* inherited bound sockets, or -1 */
	int tcp_fd;
};

struct dnsp_config {
	struct dnsp_listen listen[DNSP_MAX_LISTEN];
	unsigned int n_listen; /* 1 to DNSP_MAX_LISTEN */
	struct sockaddr_storage upstream;
	socklen_t upstream_len;
	uint32_t timeout_ms;
	uint32_t tcp_idle_ms;
	uint32_t tcp_max_conns;
	uint32_t tcp_max_queries;
	uint32_t tcp_max_inflight;
	uint32_t max_inflight;
	uint32_t upstream_ports;     /* UDP sockets on random ports, one picked per query */
	uint32_t queries_per_port;   /* then the socket is replaced: 1 = a new port per query */
	const struct dnspol *policy; /* NULL: allow everything */
	int stop_fd;		     /* readable means stop (a signalfd), or -1 */
	void (*on_result)(void *ctx, const struct dnsp_result *r);
	void (*on_batch)(void *ctx); /* end of every loop iteration: flush point for events */
	void *ctx;
};

struct dnsp;

/*
 * Create or adopt the listeners of every listen address, in order. A UDP listener that cannot
 * be set up fails the whole start (*ret_failed: the index of its address). A TCP listener that
 * cannot is not fatal: that address serves UDP only and dnsp_tcp_error() says why.
 */
int dnsp_new(const struct dnsp_config *c, struct dnsp **ret, unsigned int *ret_failed);
void dnsp_free(struct dnsp *p);
void dnsp_freep(struct dnsp **p);

/* The listen addresses served, 1 to DNSP_MAX_LISTEN. */
unsigned int dnsp_listen_count(const struct dnsp *p);
/* Whether listen address i has its TCP listener. */
bool dnsp_has_tcp(const struct dnsp *p, unsigned int i);
/* The -errno that prevented the TCP listener of listen address i, or 0. */
int dnsp_tcp_error(const struct dnsp *p, unsigned int i);
/* The UDP listener's bound address of listen address i (for inherited sockets too). */
int dnsp_local_addr(const struct dnsp *p, unsigned int i, struct sockaddr_storage *ret,
		    socklen_t *ret_len);

/* Serve until stopped; then answer or count what is in flight. 0 or -errno. */
int dnsp_run(struct dnsp *p);

/*
 * From any thread: set the stop flag and send the 0-byte wake datagram to the first UDP
 * listener. The wake datagram gets no event.
 */
void dnsp_request_stop(struct dnsp *p);

const struct dnsp_stats *dnsp_get_stats(const struct dnsp *p);

#endif
