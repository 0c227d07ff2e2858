// SPDX-License-Identifier: Apache-2.0
/*
 * cellref dns-proxy (SPEC.md chapter 8).
 *
 *   main thread                          proxy thread (inside --netns)
 *   args, sink, queue, no_new_privs ---> setns, bind UDP+TCP on every --listen (or adopt
 *                                        the --udp-fd/--tcp-fd pairs)
 *   blocks TERM/INT, joins               drop to --user, started event, ready byte
 *                                        epoll loop: queries -> results -> event queue
 *   writer thread                        stop: answer in-flight, stats event
 *   queue -> write(2) of whole lines
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cellref.h"
#include "dnsp.h"
#include "dnspol.h"
#include "dnswire.h"
#include "evt.h"
#include "evtq.h"
#include "fault.h"
#include "flowrec.h"
#include "jw.h"
#include "netcfg.h"
#include "util.h"

#define SOURCE "/cellref/dns-proxy"

/* "[" INET6 "]:65535" and its NUL */
#define ADDR_PORT_TEXT (INET6_ADDRSTRLEN + 8)

struct proxy {
	/* options */
	const char *listen_text[DNSP_MAX_LISTEN]; /* --listen, in command-line order */
	unsigned int n_listen;
	int udp_fds[DNSP_MAX_LISTEN]; /* --udp-fd, in order: one listen address each */
	unsigned int n_udp_fd;
	int tcp_fds[DNSP_MAX_LISTEN]; /* --tcp-fd: paired with the --udp-fd of its address */
	unsigned int n_tcp_fd;
	/* Every listen address served, canonical (DNS-CLI-004), in order: for the events. */
	char listen_canon[DNSP_MAX_LISTEN][ADDR_PORT_TEXT];
	const char *upstream_text;
	char upstream_canon[ADDR_PORT_TEXT]; /* --upstream in canonical text (DNS-CLI-004) */
	const char *netns_path;
	const char *events_path;
	const char *cell_id;
	const char *resolver_id;
	char run_id[EVT_ID_LEN];
	int ready_fd;
	int pdeath;   /* the main thread's parent-death signal (threads start without one) */
	pid_t parent; /* the parent it is about */
	uid_t uid;
	gid_t gid;
	size_t queue_bytes;
	struct dnsp_config cfg;

	/* state */
	int netns_fd;
	int exit_code;
	uint64_t started_mono;
	struct evt_sink *sink;
	struct evtq *q;
	struct dnspol *pol;
	struct jw data;
	struct jw line;
};

static void usage(FILE *f)
{
	fputs("usage: cellref dns-proxy --listen IP:PORT... --upstream IP:PORT --events PATH|-\n"
	      "         [--netns PATH] [--allow SUFFIX]... [--timeout-ms N] [--ready-fd N]\n"
	      "         [--cell-id ID] [--run-id ID] [--resolver-id ID] [--udp-fd N [--tcp-fd M]]...\n"
	      "         [--user UID:GID] [--tcp-idle-ms N] [--tcp-max-conns N]\n"
	      "         [--tcp-max-queries N] [--tcp-max-inflight N] [--max-inflight N]\n"
	      "         [--event-queue-bytes N] [--upstream-ports N] [--queries-per-port N]\n"
	      "Forwards DNS over UDP and TCP from inside the netns at PATH to one upstream and writes\n"
	      "one dns_query event per query until SIGTERM or SIGINT. --listen (or --udp-fd) may be\n"
	      "given up to 4 times, IPv4 and IPv6 mixed. See SPEC.md chapter 8.\n",
	      f);
}

/* "10.0.0.1:53" or "[fd00::1]:53". */
static int parse_addr(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned long long port;
	size_t hl;

	memset(ret, 0, sizeof(*ret));
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hl = (size_t)(end - text - 1);
		colon = end + 1;
		text++;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - text);
	}
	if (hl == 0 || hl >= sizeof(host) || util_parse_u64(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ret)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)ret;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*a);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ret)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*a);
		return 0;
	}
	return -EINVAL;
}

/*
 * Address and port of a socket address, as text and number; false for no address. IPv6 goes
 * through flowrec_addr_text, not inet_ntop: glibc writes ::/96 in mixed notation, which
 * DNS-CLI-004 (by FLOW-DEC-015) does not allow.
 */
static bool addr_text(const struct sockaddr *sa, socklen_t len, char buf[INET6_ADDRSTRLEN],
		      uint16_t *port)
{
	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		*port = ntohs(a->sin_port);
		return inet_ntop(AF_INET, &a->sin_addr, buf, INET6_ADDRSTRLEN) != NULL;
	}
	if (len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		*port = ntohs(a->sin6_port);
		flowrec_addr_text(6, a->sin6_addr.s6_addr, buf);
		return true;
	}
	return false;
}

/* "10.0.0.1:53" or "[fd00::1]:53" (DNS-CLI-004); "" for no address. */
static void addr_port_text(const struct sockaddr *sa, socklen_t len, char buf[ADDR_PORT_TEXT])
{
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;
	bool br = sa->sa_family == AF_INET6;

	buf[0] = '\0';
	if (addr_text(sa, len, addr, &port))
		snprintf(buf, ADDR_PORT_TEXT, br ? "[%s]:%u" : "%s:%u", addr, port);
}

/* Format the event whose data is in x->data and queue it; never blocks. */
static void queue_event(struct proxy *x, const char *type)
{
	jw_reset(&x->line);
	if (!jw_error(&x->data) && evt_format(x->sink, type, jw_text(&x->data), &x->line) == 0)
		(void)evtq_push(x->q, jw_text(&x->line), x->line.len);
	jw_reset(&x->data);
}

static void on_result(void *ctx, const struct dnsp_result *r)
{
	struct proxy *x = ctx;
	struct jw *w = &x->data;
	char qid[EVT_ID_LEN], addr[INET6_ADDRSTRLEN], name[DNSWIRE_NAME_TEXT];
	uint16_t port;

	evt_sink_new_id(x->sink, qid);
	jw_obj_open(w);
	evt_data_ids(w, x->cell_id, x->run_id);
	jw_kv_str(w, "queryId", qid);
	jw_kv_str(w, "transport", r->transport == DNSP_TCP ? "tcp" : "udp");
	if (r->listener < DNSP_MAX_LISTEN)
		jw_kv_str(w, "listen", x->listen_canon[r->listener]);
	if (r->client && addr_text(r->client, r->client_len, addr, &port)) {
		jw_kv_str(w, "clientAddr", addr);
		jw_kv_u64(w, "clientPort", port);
	}
	if (r->qname) {
		dnswire_name_text(r->qname, r->qname_len, name, sizeof(name));
		jw_kv_str(w, "qname", name);
		jw_kv_u64(w, "qtype", r->qtype);
		jw_kv_u64(w, "qclass", r->qclass);
	}
	/* The policy's decision: only messages that never reached it are "unknown". */
	jw_kv_str(w, "decision",
		  r->reason == DNSP_DENIED_BY_POLICY ? "deny"
		  : r->reason == DNSP_MALFORMED_QUERY || r->reason == DNSP_UNSUPPORTED_OPCODE ||
				  r->reason == DNSP_OTHER
			  ? "unknown"
			  : "allow");
	jw_kv_str(w, "reasonCode", dnsp_reason_name(r->reason));
	if (r->rcode >= 0)
		jw_kv_u64(w, "rcode", (uint64_t)r->rcode);
	jw_kv_str(w, "upstreamResolverId", x->resolver_id);
	jw_kv_u64(w, "latencyUs", r->latency_ns / 1000);
	if (r->mismatches)
		jw_kv_u64(w, "upstreamMismatchCount", r->mismatches);
	evt_kv_time(w, "observedAt", r->recv_realtime_ns);
	jw_obj_close(w);
	queue_event(x, "dns_query");
}

static void on_batch(void *ctx)
{
	struct proxy *x = ctx;

	evtq_kick(x->q);
}

static int fail(struct proxy *x, const char *stage, const char *object, int err, int code,
		const char *detail)
{
	cellref_report("dns-proxy", object, err, "%s", detail ? detail : "");
	jw_obj_open(&x->data);
	evt_data_ids(&x->data, x->cell_id, x->run_id);
	jw_kv_str(&x->data, "stage", stage);
	jw_kv_i64(&x->data, "errno", err < 0 ? -err : err);
	jw_kv_str(&x->data, "errnoName", util_errno_name(err));
	jw_kv_str(&x->data, "message", detail && *detail ? detail : strerror(err < 0 ? -err : err));
	evt_kv_time(&x->data, "observedAt", util_now_realtime_ns());
	jw_obj_close(&x->data);
	queue_event(x, "dns_proxy_failed");
	evtq_flush(x->q);
	/* dns.ready_on_failure: negative control of DNS-PLC-009 (a failed start says ready). */
	if (FAULT("dns.ready_on_failure") && x->ready_fd >= 0)
		(void)util_write_all(x->ready_fd, "R", 1);
	/* dns.start_exit1: every start failure exits 1, whatever its cause. */
	return FAULT("dns.start_exit1") ? CELLREF_EXIT_FAILURE : code;
}

static void emit_degraded(struct proxy *x, unsigned int i, int err)
{
	struct jw *w = &x->data;
	char msg[160 + ADDR_PORT_TEXT], obj[32 + ADDR_PORT_TEXT];

	snprintf(obj, sizeof(obj), "tcp listener %s", x->listen_canon[i]);
	cellref_report("dns-proxy", obj, err, "serving UDP only");
	snprintf(msg, sizeof(msg), "TCP listener on %s unavailable, serving UDP only there: %s",
		 x->listen_canon[i], strerror(-err));
	jw_obj_open(w);
	evt_data_ids(w, x->cell_id, x->run_id);
	jw_kv_str(w, "listen", x->listen_canon[i]);
	jw_kv_str(w, "reasonCode", "tcp_unavailable");
	jw_kv_i64(w, "errno", -err);
	jw_kv_str(w, "errnoName", util_errno_name(err));
	jw_kv_str(w, "message", msg);
	evt_kv_time(w, "observedAt", util_now_realtime_ns());
	jw_obj_close(w);
	queue_event(x, "dns_proxy_degraded");
}

/* Every served address as getsockname(2) reads it back, in canonical text (DNS-EVT-009). */
static void read_back_listeners(struct proxy *x, struct dnsp *p)
{
	struct sockaddr_storage la;
	socklen_t ll;

	for (unsigned int i = 0; i < dnsp_listen_count(p); i++) {
		x->listen_canon[i][0] = '\0';
		if (dnsp_local_addr(p, i, &la, &ll) == 0)
			addr_port_text((struct sockaddr *)&la, ll, x->listen_canon[i]);
	}
}

static void emit_started(struct proxy *x, struct dnsp *p)
{
	struct jw *w = &x->data;
	unsigned int n = dnsp_listen_count(p);
	bool tcp = true;
	const char *s;

	/* tcp only when every address serves it (DNS-PLC-013). */
	for (unsigned int i = 0; i < n; i++)
		tcp = tcp && dnsp_has_tcp(p, i);
	jw_obj_open(w);
	evt_data_ids(w, x->cell_id, x->run_id);
	/* The first address, as a proxy with one --listen always wrote it (DNS-EVT-016). */
	jw_kv_str(w, "listen", x->listen_canon[0]);
	jw_key(w, "listeners");
	jw_arr_open(w);
	for (unsigned int i = 0; i < n; i++)
		jw_str(w, x->listen_canon[i]);
	jw_arr_close(w);
	jw_key(w, "transports");
	jw_arr_open(w);
	jw_str(w, "udp");
	if (tcp)
		jw_str(w, "tcp");
	jw_arr_close(w);
	jw_kv_str(w, "upstream", x->upstream_canon);
	jw_kv_str(w, "upstreamResolverId", x->resolver_id);
	jw_key(w, "allowlist");
	jw_arr_open(w);
	for (size_t i = 0; (s = dnspol_suffix(x->pol, i)); i++)
		jw_str(w, s);
	jw_arr_close(w);
	jw_kv_u64(w, "timeoutMs", x->cfg.timeout_ms);
	evt_kv_time(w, "observedAt", util_now_realtime_ns());
	jw_obj_close(w);
	queue_event(x, "dns_proxy_started");
}

static void emit_stats(struct proxy *x, const struct dnsp_stats *st)
{
	struct jw *w = &x->data;

	jw_obj_open(w);
	evt_data_ids(w, x->cell_id, x->run_id);
	jw_kv_u64(w, "queries", st->queries);
	jw_kv_u64(w, "udpQueries", st->udp_queries);
	jw_kv_u64(w, "tcpQueries", st->tcp_queries);
	jw_kv_u64(w, "forwarded", st->by_reason[DNSP_FORWARDED]);
	jw_kv_u64(w, "deniedByPolicy", st->by_reason[DNSP_DENIED_BY_POLICY]);
	jw_kv_u64(w, "malformed", st->by_reason[DNSP_MALFORMED_QUERY]);
	jw_kv_u64(w, "unsupportedOpcode", st->by_reason[DNSP_UNSUPPORTED_OPCODE]);
	/* Timeouts after only forged replies are timeouts too: the seven outcomes add up. */
	jw_kv_u64(w, "upstreamTimeout",
		  st->by_reason[DNSP_UPSTREAM_TIMEOUT] + st->by_reason[DNSP_UPSTREAM_MISMATCH]);
	jw_kv_u64(w, "upstreamFailure", st->by_reason[DNSP_UPSTREAM_FAILURE]);
	jw_kv_u64(w, "upstreamMismatch", st->upstream_mismatch);
	jw_kv_u64(w, "overloaded", st->by_reason[DNSP_OVERLOADED]);
	jw_kv_u64(w, "answeredInShutdown", st->answered_in_shutdown);
	jw_kv_u64(w, "abandonedInShutdown", st->abandoned_in_shutdown);
	jw_kv_u64(w, "tcpConnections", st->tcp_connections);
	jw_kv_u64(w, "tcpRejected", st->tcp_rejected);
	jw_kv_u64(w, "tcpIdleClosed", st->tcp_idle_closed);
	jw_kv_u64(w, "tcpOverflow", st->tcp_overflow);
	/* Everything dropped before this event; the writer is drained first. */
	evtq_flush(x->q);
	jw_kv_u64(w, "eventsDropped", evtq_dropped(x->q));
	jw_kv_u64(w, "durationMs", (util_now_monotonic_ns() - x->started_mono) / 1000000);
	evt_kv_time(w, "observedAt", util_now_realtime_ns());
	jw_obj_close(w);
	queue_event(x, "dns_proxy_stats");
	evtq_flush(x->q);
}

/* A socket of this type and an IPv4/IPv6 family, bound to a non-zero port; its address. */
static int inherited_socket(int fd, int type, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	int t = 0, fam = 0;
	socklen_t l = sizeof(t);
	uint16_t port;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) < 0)
		return -errno;
	l = sizeof(fam);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &fam, &l) < 0)
		return -errno;
	if (t != type || (fam != AF_INET && fam != AF_INET6))
		return -EPROTOTYPE;
	*ret_len = sizeof(*ret);
	memset(ret, 0, sizeof(*ret));
	if (getsockname(fd, (struct sockaddr *)ret, ret_len) < 0)
		return -errno;
	port = ret->ss_family == AF_INET ? ((struct sockaddr_in *)ret)->sin_port
					 : ((struct sockaddr_in6 *)ret)->sin6_port;
	return port ? 0 : -EDESTADDRREQ;
}

/* Same family, address and port. */
static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

/*
 * DNS-CLI-003: unusable descriptors are usage errors, found before the sink exists so that no
 * event is written. Every --udp-fd is one listen address, in order; each --tcp-fd joins the
 * --udp-fd bound to its address (DNS-CLI-007, DNS-PLC-014). Prints why; -EINVAL.
 */
static int check_fds(struct proxy *x)
{
	struct sockaddr_storage ua[DNSP_MAX_LISTEN], ta;
	socklen_t l;
	unsigned int i, j;
	int err;

	/* dns.inherited_fd_unchecked: the descriptors are used as given, paired in order. */
	if (FAULT("dns.inherited_fd_unchecked")) {
		for (i = 0; i < x->n_udp_fd; i++) {
			x->cfg.listen[i].udp_fd = x->udp_fds[i];
			x->cfg.listen[i].tcp_fd = i < x->n_tcp_fd ? x->tcp_fds[i] : -1;
		}
		x->cfg.n_listen = x->n_udp_fd ?: x->cfg.n_listen;
		return 0;
	}
	if (x->ready_fd >= 0 && fcntl(x->ready_fd, F_GETFD) < 0) {
		fprintf(stderr, "cellref: dns-proxy: --ready-fd %d: not an open file descriptor\n",
			x->ready_fd);
		return -EINVAL;
	}
	if (!x->n_udp_fd)
		return 0;
	for (i = 0; i < x->n_udp_fd; i++) {
		err = inherited_socket(x->udp_fds[i], SOCK_DGRAM, &ua[i], &l);
		if (err) {
			fprintf(stderr,
				"cellref: dns-proxy: --udp-fd %d: not a bound UDP socket: %s\n",
				x->udp_fds[i], util_errno_name(err));
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (same_addr(&ua[j], &ua[i])) {
				fprintf(stderr,
					"cellref: dns-proxy: --udp-fd %d: bound to the address of "
					"--udp-fd %d\n",
					x->udp_fds[i], x->udp_fds[j]);
				return -EINVAL;
			}
		}
	}
	if (x->n_listen && x->n_listen != x->n_udp_fd) {
		fprintf(stderr,
			"cellref: dns-proxy: --listen given %u times and --udp-fd %u times: with "
			"--udp-fd, --listen names the address of each, in order\n",
			x->n_listen, x->n_udp_fd);
		return -EINVAL;
	}
	for (i = 0; i < x->n_listen; i++) {
		if (!same_addr(&ua[i], &x->cfg.listen[i].addr)) {
			fprintf(stderr,
				"cellref: dns-proxy: --listen %s: not the address of --udp-fd %d\n",
				x->listen_text[i], x->udp_fds[i]);
			return -EINVAL;
		}
	}
	for (i = 0; i < x->n_udp_fd; i++) {
		x->cfg.listen[i].udp_fd = x->udp_fds[i];
		x->cfg.listen[i].tcp_fd = -1;
	}
	for (j = 0; j < x->n_tcp_fd; j++) {
		i = x->n_udp_fd;
		if (inherited_socket(x->tcp_fds[j], SOCK_STREAM, &ta, &l) == 0)
			for (i = 0; i < x->n_udp_fd && !same_addr(&ua[i], &ta); i++)
				;
		if (i == x->n_udp_fd || x->cfg.listen[i].tcp_fd >= 0) {
			fprintf(stderr,
				"cellref: dns-proxy: --tcp-fd %d: not a TCP socket bound to the address "
				"of a --udp-fd without another --tcp-fd\n",
				x->tcp_fds[j]);
			return -EINVAL;
		}
		x->cfg.listen[i].tcp_fd = x->tcp_fds[j];
	}
	x->cfg.n_listen = x->n_udp_fd;
	return 0;
}

/*
 * Setting the uids empties the permitted, effective and ambient sets but not the inheritable
 * one (capabilities(7)): empty it while this is the only thread, so every thread starts so.
 */
static int clear_inheritable(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	if (!d[0].inheritable && !d[1].inheritable)
		return 0;
	d[0].inheritable = d[1].inheritable = 0;
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* After binding: no way back to privileges (SPEC DNS placement). */
static int drop_privileges(struct proxy *x)
{
	if (geteuid() != 0)
		return 0; /* nothing to give up but what no_new_privs already pinned */
	/* dns.keep_caps: the permitted set survives the uid change (PR_SET_KEEPCAPS) */
	if (FAULT("dns.keep_caps"))
		(void)prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
	/* dns.ids_one_thread: raw system calls change the ids of the calling thread only */
	if (FAULT("dns.ids_one_thread")) {
		if (syscall(SYS_setgroups, 0, NULL) < 0 ||
		    syscall(SYS_setresgid, x->gid, x->gid, x->gid) < 0 ||
		    syscall(SYS_setresuid, x->uid, x->uid, x->uid) < 0)
			return -errno;
	} else if ((!FAULT("dns.keep_groups") && setgroups(0, NULL) < 0) ||
		   setresgid(x->gid, x->gid, x->gid) < 0 || setresuid(x->uid, x->uid, x->uid) < 0) {
		return -errno;
	}
	/*
	 * Every uid non-zero: the kernel emptied the permitted, effective and ambient sets of
	 * every thread (the inheritable one was emptied at start, clear_inheritable).
	 */
	/*
	 * A credential change also clears the parent-death signal a supervisor or harness set
	 * (PR_SET_PDEATHSIG): set it again, and act on a parent that died in between.
	 */
	if (x->pdeath) {
		(void)prctl(PR_SET_PDEATHSIG, x->pdeath);
		if (getppid() != x->parent)
			raise(x->pdeath);
	}
	return 0;
}

static void *proxy_thread(void *arg)
{
	struct proxy *x = arg;
	_cleanup_(dnsp_freep) struct dnsp *p = NULL;
	unsigned int failed = 0;
	int err = 0;

	/* dns.nnp_proxy_thread_only: no_new_privs on this thread, none on the others */
	if (FAULT("dns.nnp_proxy_thread_only"))
		(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/*
	 * dns.listen_main_netns: the listeners are bound in the netns the proxy started in
	 * whenever the listen address exists there; only else in --netns.
	 */
	if (FAULT("dns.listen_main_netns") && dnsp_new(&x->cfg, &p, &failed) < 0)
		p = NULL;
	if (x->netns_fd >= 0) {
		err = netcfg_enter_netns(x->netns_fd);
		if (err) {
			x->exit_code =
				fail(x, "netns", x->netns_path, err,
				     err == -EPERM ? CELLREF_EXIT_PERM : CELLREF_EXIT_NO_NETNS,
				     err == -EINVAL ? "not a network namespace" : NULL);
			return NULL;
		}
	}
	if (!p)
		err = dnsp_new(&x->cfg, &p, &failed);
	if (err) {
		int code = err == -EACCES || err == -EPERM ? CELLREF_EXIT_PERM : CELLREF_EXIT_BIND;
		const struct dnsp_listen *a = &x->cfg.listen[failed];
		char what[ADDR_PORT_TEXT + 16], detail[ADDR_PORT_TEXT + 48];

		/* The address that failed, in canonical text (DNS-PLC-012). */
		if (a->len)
			addr_port_text((const struct sockaddr *)&a->addr, a->len, what);
		else
			snprintf(what, sizeof(what), "--udp-fd %d", a->udp_fd);
		snprintf(detail, sizeof(detail), "cannot listen on %s", what);
		x->exit_code = fail(x, "bind", what, err, code, detail);
		return NULL;
	}
	read_back_listeners(x, p);
	err = drop_privileges(x);
	if (err) {
		x->exit_code = fail(x, "privileges", "setresuid", err, CELLREF_EXIT_FAILURE,
				    "cannot drop privileges");
		return NULL;
	}
	/* dns.ready_early: negative control of DNS-PLC-009 (ready 200 ms before the events). */
	if (FAULT("dns.ready_early") && x->ready_fd >= 0) {
		(void)util_write_all(x->ready_fd, "R", 1);
		util_closep(&x->ready_fd);
		usleep(200 * 1000);
	}
	emit_started(x, p);
	for (unsigned int i = 0; i < dnsp_listen_count(p); i++)
		if (dnsp_tcp_error(p, i))
			emit_degraded(x, i, dnsp_tcp_error(p, i));
	evtq_flush(x->q);
	if (x->ready_fd >= 0) {
		(void)util_write_all(x->ready_fd, "R", 1);
		util_closep(&x->ready_fd);
	}

	err = dnsp_run(p);
	if (err)
		cellref_report("dns-proxy", "event loop", err, "stopped");
	emit_stats(x, dnsp_get_stats(p));
	x->exit_code = err ? CELLREF_EXIT_FAILURE : CELLREF_EXIT_OK;
	return NULL;
}

static int parse_num(const char *opt, const char *v, unsigned long long min, unsigned long long max,
		     unsigned long long *ret)
{
	/* dns.cli_lenient: a value out of range is clamped into it. */
	if (FAULT("dns.cli_lenient") && util_parse_u64(v, 0, ULLONG_MAX, ret) == 0) {
		*ret = *ret < min ? min : *ret > max ? max : *ret;
		return 0;
	}
	if (util_parse_u64(v, min, max, ret) < 0) {
		fprintf(stderr, "cellref: dns-proxy: %s '%s': expected an integer in %llu..%llu\n",
			opt, v, min, max);
		return -EINVAL;
	}
	return 0;
}

static int parse_u32_opt(const char *opt, const char *v, unsigned long long min,
			 unsigned long long max, uint32_t *ret)
{
	unsigned long long x;

	if (parse_num(opt, v, min, max, &x) < 0)
		return -EINVAL;
	*ret = (uint32_t)x;
	return 0;
}

/* What no single option can check: leftovers, required options and their combinations. */
static int check_args(struct proxy *x, int argc, char **argv)
{
	if (optind != argc && !FAULT("dns.cli_lenient")) {
		fprintf(stderr, "cellref: dns-proxy: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!x->upstream_text || !x->events_path || (!x->n_listen && !x->n_udp_fd)) {
		fprintf(stderr, "cellref: dns-proxy: --upstream, --events and --listen (or "
				"--udp-fd) are required\n");
		return -EINVAL;
	}
	if (x->n_tcp_fd && !x->n_udp_fd) {
		fprintf(stderr, "cellref: dns-proxy: --tcp-fd needs --udp-fd\n");
		return -EINVAL;
	}
	/*
	 * One address, one pair of listeners: a second --listen for it could only fail to bind
	 * (DNS-CLI-005), so it is refused here, naming the address in canonical text.
	 * dns.listen_dup_allowed: not checked (the second bind then fails, exit 15).
	 */
	for (unsigned int i = 1; i < x->n_listen && !FAULT("dns.listen_dup_allowed"); i++) {
		for (unsigned int j = 0; j < i; j++) {
			char canon[ADDR_PORT_TEXT];

			if (!same_addr(&x->cfg.listen[j].addr, &x->cfg.listen[i].addr))
				continue;
			addr_port_text((const struct sockaddr *)&x->cfg.listen[i].addr,
				       x->cfg.listen[i].len, canon);
			fprintf(stderr,
				"cellref: dns-proxy: --listen %s given twice ('%s', '%s')\n", canon,
				x->listen_text[j], x->listen_text[i]);
			return -EINVAL;
		}
	}
	x->cfg.n_listen = x->n_listen;
	return 0;
}

/* One case per option in a single getopt switch: long, but each case stands alone. */
static int parse_args(struct proxy *x, int argc, char **argv)
{
	enum {
		O_LISTEN = 256,
		O_UPSTREAM,
		O_NETNS,
		O_ALLOW,
		O_TIMEOUT,
		O_EVENTS,
		O_READY,
		O_CELL,
		O_RUN,
		O_RESOLVER,
		O_UDPFD,
		O_TCPFD,
		O_USER,
		O_IDLE,
		O_MAXCONNS,
		O_MAXQ,
		O_TCPINFL,
		O_INFL,
		O_QUEUE,
		O_PORTS,
		O_QPP,
	};
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "upstream", required_argument, NULL, O_UPSTREAM },
		{ "netns", required_argument, NULL, O_NETNS },
		{ "allow", required_argument, NULL, O_ALLOW },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "events", required_argument, NULL, O_EVENTS },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "cell-id", required_argument, NULL, O_CELL },
		{ "run-id", required_argument, NULL, O_RUN },
		{ "resolver-id", required_argument, NULL, O_RESOLVER },
		{ "udp-fd", required_argument, NULL, O_UDPFD },
		{ "tcp-fd", required_argument, NULL, O_TCPFD },
		{ "user", required_argument, NULL, O_USER },
		{ "tcp-idle-ms", required_argument, NULL, O_IDLE },
		{ "tcp-max-conns", required_argument, NULL, O_MAXCONNS },
		{ "tcp-max-queries", required_argument, NULL, O_MAXQ },
		{ "tcp-max-inflight", required_argument, NULL, O_TCPINFL },
		{ "max-inflight", required_argument, NULL, O_INFL },
		{ "event-queue-bytes", required_argument, NULL, O_QUEUE },
		{ "upstream-ports", required_argument, NULL, O_PORTS },
		{ "queries-per-port", required_argument, NULL, O_QPP },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned long long v, g, seen = 0;
	char *colon;
	int c, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		err = 0;
		/* Every option but --allow, --listen, --udp-fd, --tcp-fd at most once
		 * (DNS-CLI-001). */
		if (c >= O_LISTEN && c != O_ALLOW && c != O_LISTEN && c != O_UDPFD &&
		    c != O_TCPFD) {
			if ((seen & (1ull << (c - O_LISTEN))) && !FAULT("dns.cli_lenient")) {
				fprintf(stderr, "cellref: dns-proxy: %s given twice\n",
					argv[optind - 1]);
				return -EINVAL;
			}
			seen |= 1ull << (c - O_LISTEN);
		}
		switch (c) {
		case O_LISTEN:
			/* dns.listen_max_ignored: listen addresses past the limit are dropped. */
			if (x->n_listen == DNSP_MAX_LISTEN && FAULT("dns.listen_max_ignored"))
				break;
			if (x->n_listen == DNSP_MAX_LISTEN) {
				fprintf(stderr,
					"cellref: dns-proxy: --listen '%s': more than %d listen "
					"addresses\n",
					optarg, DNSP_MAX_LISTEN);
				return -EINVAL;
			}
			err = parse_addr(optarg, &x->cfg.listen[x->n_listen].addr,
					 &x->cfg.listen[x->n_listen].len);
			if (err)
				fprintf(stderr, "cellref: dns-proxy: --listen '%s': not IP:PORT\n",
					optarg);
			x->listen_text[x->n_listen++] = optarg;
			break;
		case O_UPSTREAM:
			x->upstream_text = optarg;
			err = parse_addr(optarg, &x->cfg.upstream, &x->cfg.upstream_len);
			if (err)
				fprintf(stderr,
					"cellref: dns-proxy: --upstream '%s': not IP:PORT\n",
					optarg);
			if (!err)
				addr_port_text((const struct sockaddr *)&x->cfg.upstream,
					       x->cfg.upstream_len, x->upstream_canon);
			/* dns.upstream_port_53: the port of --upstream is ignored for 53. */
			if (!err && FAULT("dns.upstream_port_53"))
				((struct sockaddr_in *)&x->cfg.upstream)->sin_port = htons(53);
			break;
		case O_NETNS:
			x->netns_path = optarg;
			break;
		case O_ALLOW:
			err = dnspol_allow(x->pol, optarg);
			if (err)
				fprintf(stderr, "cellref: dns-proxy: --allow '%s': not a name\n",
					optarg);
			break;
		case O_TIMEOUT:
			err = parse_u32_opt("--timeout-ms", optarg, 1, 60000, &x->cfg.timeout_ms);
			break;
		case O_EVENTS:
			x->events_path = optarg;
			break;
		case O_READY:
			err = parse_num("--ready-fd", optarg, 0, 1u << 20, &v);
			x->ready_fd = (int)v;
			break;
		case O_CELL:
			x->cell_id = optarg;
			break;
		case O_RUN:
			if (!*optarg || strlen(optarg) >= sizeof(x->run_id)) {
				fprintf(stderr, "cellref: dns-proxy: --run-id: 1 to %zu bytes\n",
					sizeof(x->run_id) - 1);
				err = -EINVAL;
			} else {
				snprintf(x->run_id, sizeof(x->run_id), "%s", optarg);
			}
			break;
		case O_RESOLVER:
			x->resolver_id = optarg;
			break;
		case O_UDPFD:
		case O_TCPFD: {
			bool udp = c == O_UDPFD;
			unsigned int *n = udp ? &x->n_udp_fd : &x->n_tcp_fd;

			if (*n == DNSP_MAX_LISTEN) {
				fprintf(stderr, "cellref: dns-proxy: %s given more than %d times\n",
					udp ? "--udp-fd" : "--tcp-fd", DNSP_MAX_LISTEN);
				return -EINVAL;
			}
			err = parse_num(udp ? "--udp-fd" : "--tcp-fd", optarg, 0, 1u << 20, &v);
			(udp ? x->udp_fds : x->tcp_fds)[(*n)++] = (int)v;
			break;
		}
		case O_USER:
			colon = strchr(optarg, ':');
			if (!colon) {
				err = -EINVAL;
			} else {
				*colon = '\0';
				err = parse_num("--user", optarg, 1, 0xFFFFFFFEu, &v);
				err = err ?: parse_num("--user", colon + 1, 0, 0xFFFFFFFEu, &g);
				*colon = ':';
				x->uid = (uid_t)v;
				x->gid = (gid_t)g;
			}
			if (err)
				fprintf(stderr,
					"cellref: dns-proxy: --user '%s': expected UID:GID, "
					"not root\n",
					optarg);
			break;
		case O_IDLE:
			err = parse_u32_opt("--tcp-idle-ms", optarg, 1, 3600000,
					    &x->cfg.tcp_idle_ms);
			break;
		case O_MAXCONNS:
			err = parse_u32_opt("--tcp-max-conns", optarg, 1, 65535,
					    &x->cfg.tcp_max_conns);
			break;
		case O_MAXQ:
			err = parse_u32_opt("--tcp-max-queries", optarg, 1, 0xFFFFFFFFu,
					    &x->cfg.tcp_max_queries);
			break;
		case O_TCPINFL:
			err = parse_u32_opt("--tcp-max-inflight", optarg, 1, 65535,
					    &x->cfg.tcp_max_inflight);
			break;
		case O_INFL:
			err = parse_u32_opt("--max-inflight", optarg, 1, 1u << 20,
					    &x->cfg.max_inflight);
			break;
		case O_QUEUE:
			err = parse_num("--event-queue-bytes", optarg, 65536, 1u << 30, &v);
			x->queue_bytes = (size_t)v;
			break;
		case O_PORTS:
			err = parse_u32_opt("--upstream-ports", optarg, 1, 4096,
					    &x->cfg.upstream_ports);
			break;
		case O_QPP:
			err = parse_u32_opt("--queries-per-port", optarg, 1, 65536,
					    &x->cfg.queries_per_port);
			break;
		case 'h':
			usage(stdout);
			exit(CELLREF_EXIT_OK);
		default:
			if (FAULT("dns.cli_lenient"))
				continue;
			usage(stderr);
			return -EINVAL;
		}
		if (err)
			return -EINVAL;
	}
	return check_args(x, argc, argv);
}

/* Before the sink exists, so a failure here is reported on stderr only, like a usage error. */
static int restrict_privileges(void)
{
	int err;

	/* Inherited by every thread made from here on; setns and bind do not need it off. */
	if (!FAULT("dns.nnp_proxy_thread_only") && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err = -errno;
		cellref_report("dns-proxy", "no_new_privs", err, NULL);
		return err;
	}
	/* dns.inheritable_kept: a non-empty inheritable set survives into serving */
	err = FAULT("dns.inheritable_kept") ? 0 : clear_inheritable();
	if (err)
		cellref_report("dns-proxy", "inheritable capabilities", err, NULL);
	return err;
}

/* The sink and the queue in front of it; from here on failures are also events. */
static int open_events(struct proxy *x, struct evt_sink **ret_sink)
{
	_cleanup_(evt_sink_freep) struct evt_sink *sink = NULL;
	int err;

	/* dns.events_truncated: negative control of DNS-CLI-002 (an existing file is emptied). */
	if (FAULT("dns.events_truncated") && strcmp(x->events_path, "-") != 0)
		(void)truncate(x->events_path, 0);
	/* dns.events_dash_discarded: negative control of DNS-CLI-002 ("-" is not stdout). */
	err = evt_sink_open_path(FAULT("dns.events_dash_discarded") && !strcmp(x->events_path, "-")
					 ? "/dev/null"
					 : x->events_path,
				 SOURCE, &sink);
	if (err) {
		cellref_report("dns-proxy", x->events_path, err, "cannot open the event sink");
		return err;
	}
	if (!x->run_id[0])
		evt_sink_new_id(sink, x->run_id);
	jw_init(&x->data);
	jw_init(&x->line);
	err = evtq_new(evt_sink_fd(sink), x->queue_bytes, &x->q);
	if (err || jw_error(&x->data) || jw_error(&x->line)) {
		err = err ?: -ENOMEM;
		cellref_report("dns-proxy", "event queue", err, NULL);
		jw_free(&x->data);
		jw_free(&x->line);
		return err;
	}
	x->sink = sink;
	*ret_sink = TAKE_PTR(sink);
	return 0;
}

/* The fds the proxy thread uses live until it is joined; returns the exit code. */
static int run_proxy(struct proxy *x, const sigset_t *mask)
{
	_cleanup_close_ int netns_fd = -1, sig_fd = -1;
	pthread_t tid;
	int err;

	if (x->netns_path && (netns_fd = open(x->netns_path, O_RDONLY | O_CLOEXEC)) < 0)
		return fail(x, "netns", x->netns_path, -errno,
			    errno == EACCES || errno == EPERM ? CELLREF_EXIT_PERM
							      : CELLREF_EXIT_NO_NETNS,
			    NULL);
	x->netns_fd = netns_fd;

	sig_fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		return fail(x, "unknown", "signalfd", -errno, CELLREF_EXIT_FAILURE, NULL);
	x->cfg.stop_fd = sig_fd;

	x->started_mono = util_now_monotonic_ns();
	x->parent = getppid();
	(void)prctl(PR_GET_PDEATHSIG, &x->pdeath);
	err = pthread_create(&tid, NULL, proxy_thread, x);
	if (err)
		return fail(x, "unknown", "proxy thread", -err, CELLREF_EXIT_FAILURE, NULL);
	pthread_join(tid, NULL);
	return x->exit_code;
}

int cellref_dnsproxy_main(int argc, char **argv)
{
	_cleanup_(evt_sink_freep) struct evt_sink *sink = NULL;
	_cleanup_(dnspol_freep) struct dnspol *pol = NULL;
	struct proxy x = {
		.cell_id = "unspecified",
		.ready_fd = -1,
		.netns_fd = -1,
		.uid = 65534,
		.gid = 65534,
		.queue_bytes = 4u << 20,
		.cfg = {
			.timeout_ms = 2000,
			.tcp_idle_ms = 10000,
			.tcp_max_conns = 256,
			.tcp_max_queries = 1000,
			.tcp_max_inflight = 64,
			.max_inflight = 8192,
			.upstream_ports = 64,
			.queries_per_port = 8,
			.stop_fd = -1,
			.on_result = on_result,
			.on_batch = on_batch,
		},
	};
	sigset_t mask;
	int err;

	/* Blocked before any thread exists, so only the signalfd ever sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	for (unsigned int i = 0; i < DNSP_MAX_LISTEN; i++)
		x.cfg.listen[i].udp_fd = x.cfg.listen[i].tcp_fd = -1;
	if (dnspol_new(&pol) < 0)
		return CELLREF_EXIT_FAILURE;
	x.pol = pol;
	if (parse_args(&x, argc, argv) < 0)
		return CELLREF_EXIT_USAGE;
	x.cfg.policy = pol;
	x.cfg.ctx = &x;
	if (!x.resolver_id)
		x.resolver_id = x.upstream_canon;

	/* Usage errors like the others: exit 2 before the sink exists, so no event. */
	if (check_fds(&x) < 0)
		return CELLREF_EXIT_USAGE;

	if (restrict_privileges() < 0)
		return CELLREF_EXIT_FAILURE;
	if (open_events(&x, &sink) < 0)
		return CELLREF_EXIT_FAILURE;

	err = run_proxy(&x, &mask);
	evtq_free(x.q);
	jw_free(&x.data);
	jw_free(&x.line);
	return err;
}
