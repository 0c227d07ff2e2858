// SPDX-License-Identifier: Apache-2.0
/*
 * cellref flow-monitor on the real kernel (SPEC.md chapters 6 and 7), in the two-namespace
 * topology of nstest.h: the monitor watches fc0's egress in the cell netns; traffic comes from
 * sockets born in the cell netns and goes to listeners in the test's own fresh netns (fp0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "netcfg.h"
#include "nstest.h"
#include "tap.h"
#include "tapjson.h"
#include "util.h"

#define PEER_IP NSTEST_PEER_IP
#define CELL_IP NSTEST_CELL_IP
#define TYPE(x) "dev.cellos.events.cell.observability.v1." x

#define topo nstest_topo

#define mon nstest_mon

/* Build the topology, or skip when this machine cannot (not root, no namespaces). */
static bool topo_up(struct topo *t)
{
	int r = nstest_topo_up(t);

	if (r == -EPERM)
		tap_skip("%s: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)", t->step);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		tap_skip("%s: kernel lacks it: %s", t->step, strerror(-r));
	if (!ASSERT_OK(r))
		tap_diag("topology step failed: %s", t->step);
	return r == 0;
}

static const char *cellref_path(void)
{
	const char *p = getenv("CELLREF");

	if (!p)
		tap_skip("CELLREF not set (run through meson test)");
	return p;
}

/* Start the monitor on ifname with extra arguments; optionally wait for its ready byte. */
static bool mon_start_args(struct mon *m, const struct topo *t, const char *ifname,
			   const char *netns_path, char **extra, bool want_ready)
{
	int r = nstest_mon_spawn(m, cellref_path(), ifname, netns_path, t->cell_ns, extra);

	if (!ASSERT_OK(r))
		return false;
	if (!want_ready)
		return true;
	r = nstest_wait_byte(m->ready_fd, 20000);
	if (r < 0) {
		_cleanup_free_ char *err = nstest_slurp(m->err_fd, NULL);
		int code = r == -EPIPE ? nstest_mon_stop(m, 0, 5000) : -1;

		/* What this kernel or this process cannot do is a SKIP with the reason. */
		if (code == 14 || code == 10)
			tap_skip("flow-monitor cannot run here (exit %d): %s", code,
				 err ? err : "");
		ASSERT_OK(r);
		tap_diag("monitor exit %d, stderr: %s", code, err ? err : "");
		return false;
	}
	return true;
}

static bool mon_start(struct mon *m, const struct topo *t, char **extra)
{
	return mon_start_args(m, t, "fc0", NULL, extra, true);
}

static int mon_stop(struct mon *m, int sig)
{
	int r = nstest_mon_stop(m, sig, 20000);

	if (r == -ETIMEDOUT)
		tap_diag("monitor did not exit in time");
	return r;
}

#define mon_close nstest_mon_close

/* The events as a JSON array, strictly parsed line by line. */
static json_t *events(struct mon *m)
{
	return tap_jsonl(m->ev_fd);
}

static size_t count_type(json_t *evs, const char *type)
{
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(evs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "type")) ?: "", type) == 0)
			n++;
	}
	return n;
}

static json_t *last_of(json_t *evs, const char *type)
{
	json_t *found = NULL, *e;
	size_t i;

	json_array_foreach(evs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "type")) ?: "", type) == 0)
			found = json_object_get(e, "data");
	}
	return found;
}

static uint64_t num(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v)) {
		tap_diag("missing integer %s", key);
		return UINT64_MAX;
	}
	return (uint64_t)json_integer_value(v);
}

/* The tally of the flow with this 5-tuple (dst side and proto; src port when nonzero). */
static json_t *tally_for(json_t *evs, uint16_t sport, uint16_t dport, const char *proto)
{
	json_t *e, *d;
	size_t i;

	json_array_foreach(evs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "type")) ?: "",
			   TYPE("network_flow_tally")) != 0)
			continue;
		d = json_object_get(e, "data");
		if (num(d, "srcPort") == sport && num(d, "dstPort") == dport &&
		    strcmp(json_string_value(json_object_get(d, "protocol")) ?: "", proto) == 0)
			return d;
	}
	return NULL;
}

/* Decoded by offsets straight from SPEC.md's table, not by ref/'s decoder. */
struct raw {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t proto, verdict;
	uint64_t pkts, first;
	bool pad_zero;
};

static size_t raw_records(struct mon *m, struct raw *out, size_t max)
{
	size_t len = 0, n = 0, off = 0;
	_cleanup_free_ char *buf = nstest_slurp(m->rec_fd, &len);
	const unsigned char *b = (const unsigned char *)buf;

	while (buf && off + 4 <= len && n < max) {
		uint32_t flen = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 |
				(uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
		const unsigned char *r = b + off + 4;

		if (!ASSERT_EQ(flen, 40) || !ASSERT_LE(off + 4 + flen, len))
			break;
		memcpy(&out[n].src, r + 0, 4);
		memcpy(&out[n].dst, r + 4, 4);
		memcpy(&out[n].sport, r + 8, 2);
		memcpy(&out[n].dport, r + 10, 2);
		out[n].proto = r[12];
		memcpy(&out[n].pkts, r + 16, 8);
		memcpy(&out[n].first, r + 24, 8);
		out[n].verdict = r[32];
		out[n].pad_zero = !(r[13] | r[14] | r[15] | r[33] | r[34] | r[35] | r[36] | r[37] |
				    r[38] | r[39]);
		n++;
		off += 4 + flen;
	}
	return n;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	getsockname(fd, (struct sockaddr *)&a, &l);
	return ntohs(a.sin_port);
}

static struct sockaddr_in addr(uint32_t ip, uint16_t port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(ip),
	};
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static uint16_t csum(const void *data, size_t len)
{
	const uint16_t *w = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	if (len)
		sum += *(const uint8_t *)w;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A prog id stays visible for a moment after its last reference goes (RCU). */
static bool prog_gone(uint32_t id, int ms)
{
	for (int waited = 0; waited <= ms; waited += 20) {
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0 && (errno == ENOENT || fd == -ENOENT))
			return true;
		if (fd >= 0)
			close(fd);
		usleep(20000);
	}
	return false;
}

static int clsact_on_cell(const struct topo *t)
{
	_cleanup_(netcfg_freep) struct netcfg *cell = NULL;
	int r = netcfg_open(t->cell_ns, &cell);

	return r < 0 ? r : netcfg_clsact_present(cell, t->cell_ifindex);
}

TEST_TIMEOUT(udp_tcp_icmp_records_counts_events_and_clean_exit, 90)
{
	_cleanup_close_ int peer_udp = -1, peer_tcp = -1, cell_udp = -1, cell_tcp = -1, icmp = -1;
	struct sockaddr_in a;
	struct topo t;
	struct mon m;
	struct raw recs[8];
	struct tcp_info ti;
	socklen_t til = sizeof(ti);
	char buf[2048];
	uint64_t t0, t1 = 0;
	uint16_t udp_sport, tcp_sport;
	uint32_t prog_id;
	json_t *evs, *sum, *d, *first, *last;
	size_t n;

	if (!topo_up(&t) || !mon_start(&m, &t, NULL))
		return;
	t0 = util_now_monotonic_ns();

	/* UDP: three datagrams on one 5-tuple. */
	peer_udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	a = addr(PEER_IP, 7001);
	ASSERT_OK(bind(peer_udp, (struct sockaddr *)&a, sizeof(a)));
	cell_udp = nstest_socket_in(t.cell_ns, AF_INET, SOCK_DGRAM, 0);
	ASSERT_OK(connect(cell_udp, (struct sockaddr *)&a, sizeof(a)));
	udp_sport = local_port(cell_udp);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(send(cell_udp, "ping", 4, 0), 4);
		ASSERT_TRUE(readable(peer_udp, 2000) && recv(peer_udp, buf, sizeof(buf), 0) == 4);
	}

	/* TCP: a real connect, data and an orderly close from both ends. */
	peer_tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a = addr(PEER_IP, 7002);
	ASSERT_OK(bind(peer_tcp, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(peer_tcp, 4));
	cell_tcp = nstest_socket_in(t.cell_ns, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(cell_tcp, (struct sockaddr *)&a, sizeof(a)));
	tcp_sport = local_port(cell_tcp);
	memset(buf, 'x', 100);
	ASSERT_EQ(send(cell_tcp, buf, 100, 0), 100);
	ASSERT_OK(shutdown(cell_tcp, SHUT_WR));
	{
		_cleanup_close_ int c = accept4(peer_tcp, NULL, NULL, SOCK_CLOEXEC);
		ssize_t got, total = 0;

		while (c >= 0 && readable(c, 2000) && (got = recv(c, buf, sizeof(buf), 0)) > 0)
			total += got;
		ASSERT_EQ(total, 100);
	}
	/* EOF here means the peer's FIN arrived and our ACK of it has left. */
	ASSERT_TRUE(readable(cell_tcp, 2000) && recv(cell_tcp, buf, sizeof(buf), 0) == 0);
	ASSERT_OK(getsockopt(cell_tcp, IPPROTO_TCP, TCP_INFO, &ti, &til));
	tap_diag("tcp segments out: %u", ti.tcpi_segs_out);

	/* ICMP: two echo requests, two replies. */
	icmp = nstest_socket_in(t.cell_ns, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (!ASSERT_OK(icmp))
		goto stop;
	a = addr(PEER_IP, 0);
	for (uint16_t seq = 1; seq <= 2; seq++) {
		struct icmphdr h = { .type = ICMP_ECHO };

		h.un.echo.id = htons(0x4242);
		h.un.echo.sequence = htons(seq);
		h.checksum = csum(&h, sizeof(h));
		ASSERT_EQ(sendto(icmp, &h, sizeof(h), 0, (struct sockaddr *)&a, sizeof(a)),
			  sizeof(h));
	}
	for (int replies = 0; replies < 2;) {
		ssize_t got;

		if (!ASSERT_TRUE(readable(icmp, 2000)))
			break;
		got = recv(icmp, buf, sizeof(buf), 0);
		if (got >= 28 && buf[20] == ICMP_ECHOREPLY)
			replies++;
	}
	t1 = util_now_monotonic_ns();

stop:
	ASSERT_EQ(mon_stop(&m, SIGTERM), 0);

	/* Raw records: one per 5-tuple, every field, zero padding, first_seen in the window. */
	n = raw_records(&m, recs, 8);
	ASSERT_EQ(n, 3);
	for (size_t i = 0; i < n; i++) {
		struct raw *r = &recs[i];

		ASSERT_TRUE(r->pad_zero);
		ASSERT_EQ(r->src, CELL_IP);
		ASSERT_EQ(r->dst, PEER_IP);
		ASSERT_EQ(r->pkts, 1);
		ASSERT_EQ(r->verdict, 1);
		ASSERT_GE(r->first, t0);
		ASSERT_LE(r->first, t1);
		if (r->proto == 17) {
			ASSERT_EQ(r->sport, udp_sport);
			ASSERT_EQ(r->dport, 7001);
		} else if (r->proto == 6) {
			ASSERT_EQ(r->sport, tcp_sport);
			ASSERT_EQ(r->dport, 7002);
		} else if (!ASSERT_EQ(r->proto, 1)) {
			continue;
		} else {
			ASSERT_EQ(r->sport, 0);
			ASSERT_EQ(r->dport, 0);
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			ASSERT_NE(recs[i].proto, recs[j].proto);

	/* Events: started first, summary last, one decision per record, exact tallies. */
	evs = events(&m);
	first = json_array_get(evs, 0);
	last = json_array_get(evs, json_array_size(evs) - 1);
	ASSERT_STREQ(json_string_value(json_object_get(first, "type")),
		     TYPE("flow_monitor_started"));
	ASSERT_STREQ(json_string_value(json_object_get(last, "type")),
		     TYPE("flow_monitor_summary"));
	ASSERT_EQ(count_type(evs, TYPE("network_flow_decision")), 3);
	ASSERT_EQ(count_type(evs, TYPE("network_flow_tally")), 3);
	prog_id = (uint32_t)num(json_object_get(first, "data"), "progId");
	ASSERT_TRUE(json_is_true(json_object_get(json_object_get(first, "data"), "qdiscCreated")));

	d = tally_for(evs, udp_sport, 7001, "udp");
	ASSERT_TRUE(d && num(d, "packetCount") == 3);
	d = tally_for(evs, tcp_sport, 7002, "tcp");
	ASSERT_TRUE(d && num(d, "packetCount") == ti.tcpi_segs_out);
	d = tally_for(evs, 0, 0, "icmp");
	ASSERT_TRUE(d && num(d, "packetCount") == 2);
	if (d)
		ASSERT_STREQ(json_string_value(json_object_get(d, "dstAddr")), "10.77.0.1");

	sum = last_of(evs, TYPE("flow_monitor_summary"));
	ASSERT_EQ(num(sum, "recordsSeen"), 3);
	ASSERT_EQ(num(sum, "recordsLost"), 0);
	ASSERT_EQ(num(sum, "uniqueFlowCount"), 3);
	ASSERT_EQ(num(sum, "flowsTallied"), 3);
	ASSERT_EQ(num(sum, "packetsSeen"), 3 + 2 + ti.tcpi_segs_out);
	ASSERT_EQ(num(sum, "decodeErrors"), 0);
	ASSERT_EQ(num(sum, "eventsDropped"), 0);
	json_decref(evs);

	ASSERT_EQ(nstest_validate_events(m.ev_path), 0);

	/* Nothing left: the qdisc it created and the program are gone. */
	ASSERT_EQ(clsact_on_cell(&t), 0);
	ASSERT_TRUE(prog_gone(prog_id, 3000));
	mon_close(&m);
}

TEST_TIMEOUT(sigkill_leaves_nothing_once_the_namespace_is_gone, 60)
{
	struct topo t;
	struct mon m;
	uint32_t prog_id;
	json_t *evs;

	if (!topo_up(&t) || !mon_start(&m, &t, NULL))
		return;
	evs = events(&m);
	prog_id = (uint32_t)num(json_object_get(json_array_get(evs, 0), "data"), "progId");
	json_decref(evs);
	ASSERT_EQ(mon_stop(&m, SIGKILL), 128 + SIGKILL);
	/* As SPEC.md says: the filter outlives a SIGKILLed monitor while the interface lives. */
	ASSERT_EQ(clsact_on_cell(&t), 1);
	ASSERT_FALSE(prog_gone(prog_id, 0));
	close(t.cell_ns);
	ASSERT_TRUE(prog_gone(prog_id, 5000));
	mon_close(&m);
}

TEST_TIMEOUT(existing_clsact_is_left_in_place, 60)
{
	struct bpf_tc_hook hook = { .sz = sizeof(hook), .attach_point = BPF_TC_EGRESS };
	struct topo t;
	struct mon m;
	uint32_t prog_id;
	json_t *evs, *d;
	int home;

	if (!topo_up(&t))
		return;
	/* Someone else's clsact, made before the monitor starts. */
	hook.ifindex = t.cell_ifindex;
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(setns(t.cell_ns, CLONE_NEWNET));
	ASSERT_OK(bpf_tc_hook_create(&hook));
	ASSERT_OK(setns(home, CLONE_NEWNET));
	close(home);
	ASSERT_EQ(clsact_on_cell(&t), 1);

	if (!mon_start(&m, &t, NULL))
		return;
	ASSERT_EQ(mon_stop(&m, SIGTERM), 0);
	evs = events(&m);
	d = json_object_get(json_array_get(evs, 0), "data");
	prog_id = (uint32_t)num(d, "progId");
	ASSERT_TRUE(json_is_false(json_object_get(d, "qdiscCreated")));
	json_decref(evs);
	ASSERT_EQ(clsact_on_cell(&t), 1);
	ASSERT_TRUE(prog_gone(prog_id, 3000));
	mon_close(&m);
}

static void expect_failure(const struct topo *t, const char *ifname, const char *netns_path,
			   int want_exit, const char *want_errno, const char *want_stderr)
{
	_cleanup_free_ char *err = NULL;
	struct mon m;
	json_t *evs, *d;

	if (!mon_start_args(&m, t, ifname, netns_path, NULL, false))
		return;
	ASSERT_EQ(mon_stop(&m, 0), want_exit);
	ASSERT_ERR(nstest_wait_byte(m.ready_fd, 0), -EPIPE); /* never signalled ready */
	err = nstest_slurp(m.err_fd, NULL);
	if (!ASSERT_TRUE(err && strstr(err, want_stderr)))
		tap_diag("stderr: %s", err ? err : "");
	evs = events(&m);
	ASSERT_EQ(json_array_size(evs), 1);
	d = json_object_get(json_array_get(evs, 0), "data");
	ASSERT_STREQ(json_string_value(json_object_get(json_array_get(evs, 0), "type")),
		     TYPE("flow_monitor_failed"));
	ASSERT_STREQ(json_string_value(json_object_get(d, "errnoName")), want_errno);
	json_decref(evs);
	ASSERT_EQ(nstest_validate_events(m.ev_path), 0);
	mon_close(&m);
}

TEST_TIMEOUT(errors_have_their_exit_codes_messages_and_events, 90)
{
	struct topo t;
	char not_netns[64];
	int fd;

	if (!topo_up(&t))
		return;
	expect_failure(&t, "nope0", NULL, 11, "ENODEV", "interface nope0: ENODEV");
	expect_failure(&t, "fc0", "/nonexistent/netns", 12, "ENOENT", "/nonexistent/netns: ENOENT");
	fd = nstest_memfd("plain", not_netns, sizeof(not_netns));
	expect_failure(&t, "fc0", not_netns, 12, "EINVAL", "not a network namespace");
	close(fd);
	/* fc0 lives in the cell namespace, not in the one the monitor would start from. */
	expect_failure(&t, "fc0", "/proc/self/ns/net", 11, "ENODEV", "interface fc0: ENODEV");
}

/* FLOW-MON-025: a bounded wait for an interface that a supervisor is still creating. */
TEST_TIMEOUT(wait_ifname_waits_then_attaches_or_gives_up, 60)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	char *late[] = { "--wait-ifname-ms", "3000", NULL };
	char *brief[] = { "--wait-ifname-ms", "300", NULL };
	struct topo t;
	struct mon m;
	uint64_t t0;

	if (!topo_up(&t))
		return;
	/* The interface appears 200 ms after the start: the monitor attaches to it. */
	if (!mon_start_args(&m, &t, "late0", NULL, late, false))
		return;
	usleep(200000);
	if (!ASSERT_OK(netcfg_open(t.cell_ns, &nc)) ||
	    !ASSERT_OK(netcfg_veth_add(nc, "late0", "late1", -1)))
		return;
	ASSERT_OK(nstest_wait_byte(m.ready_fd, 10000));
	ASSERT_EQ(mon_stop(&m, SIGTERM), 0);
	mon_close(&m);
	/* It never appears: exit 11 once the wait is over, not before. */
	t0 = util_now_monotonic_ns();
	if (!mon_start_args(&m, &t, "never0", NULL, brief, false))
		return;
	ASSERT_EQ(mon_stop(&m, 0), 11);
	ASSERT_GE((util_now_monotonic_ns() - t0) / 1000000, 300);
	mon_close(&m);
}

TEST_TIMEOUT(small_ring_accounts_every_record_as_delivered_or_lost, 90)
{
	_cleanup_close_ int s = -1;
	const int flows = 400;
	struct topo t;
	struct mon m;
	json_t *evs, *sum;
	uint64_t seen, lost;

	if (!topo_up(&t) || !mon_start(&m, &t, (char *[]){ "--ringbuf-bytes", "4096", NULL }))
		return;
	/*
	 * Pause the consumer; the kernel keeps producing into a ring of ~85 records. Stopped means
	 * stopped, not signalled: under load the monitor drained all 400 records once before the
	 * stop took effect.
	 */
	if (!ASSERT_OK(kill(m.pid, SIGSTOP)) || !ASSERT_OK(nstest_wait_stopped(m.pid, 5000)))
		return;
	s = nstest_socket_in(t.cell_ns, AF_INET, SOCK_DGRAM, 0);
	for (int i = 0; i < flows; i++) {
		struct sockaddr_in a = addr(PEER_IP, (uint16_t)(20000 + i));

		ASSERT_EQ(sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
	}
	ASSERT_OK(kill(m.pid, SIGCONT));
	ASSERT_EQ(mon_stop(&m, SIGTERM), 0);

	evs = events(&m);
	sum = last_of(evs, TYPE("flow_monitor_summary"));
	seen = num(sum, "recordsSeen");
	lost = num(sum, "recordsLost");
	tap_diag("delivered %llu lost %llu", (unsigned long long)seen, (unsigned long long)lost);
	ASSERT_EQ(seen + lost, flows);
	ASSERT_GT(lost, 0);
	ASSERT_EQ(count_type(evs, TYPE("network_flow_decision")), seen);
	ASSERT_EQ(num(sum, "uniqueFlowCount"), seen);
	/* Lost records still leave their flows in the table, so every flow is tallied. */
	ASSERT_EQ(num(sum, "flowsTallied"), flows);
	ASSERT_EQ(num(sum, "packetsSeen"), flows);
	json_decref(evs);
	mon_close(&m);
}

TEST_TIMEOUT(event_arrives_within_the_drain_interval_while_idle, 60)
{
	_cleanup_close_ int s = -1;
	struct sockaddr_in a = addr(PEER_IP, 7003);
	const uint64_t drain_ms = 50, slack_ms = 400;
	struct topo t;
	struct mon m;
	uint64_t t0, waited_ms = 0;
	bool seen = false;

	if (!topo_up(&t) || !mon_start(&m, &t, (char *[]){ "--drain-interval-ms", "50", NULL }))
		return;
	s = nstest_socket_in(t.cell_ns, AF_INET, SOCK_DGRAM, 0);
	t0 = util_now_monotonic_ns();
	ASSERT_EQ(sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
	/* One record never fills the ring, so only the drain timer can deliver it. */
	while (!seen && waited_ms < 5000) {
		_cleanup_free_ char *text = nstest_slurp(m.ev_fd, NULL);

		seen = text && strstr(text, "network_flow_decision");
		waited_ms = (util_now_monotonic_ns() - t0) / 1000000;
		if (!seen)
			usleep(2000);
	}
	tap_diag("decision event after %llu ms (drain interval %llu ms)",
		 (unsigned long long)waited_ms, (unsigned long long)drain_ms);
	ASSERT_TRUE(seen);
	ASSERT_LE(waited_ms, drain_ms + slack_ms);
	ASSERT_EQ(mon_stop(&m, SIGTERM), 0);
	mon_close(&m);
}

TEST_TIMEOUT(unprivileged_start_is_a_permission_error, 60)
{
	_cleanup_close_ int out = -1, err = -1;
	_cleanup_free_ char *text = NULL, *msg = NULL;
	char out_path[64], err_path[64];
	struct topo t;
	int status;
	pid_t pid;

	if (!topo_up(&t))
		return;
	out = nstest_memfd("stdout", out_path, sizeof(out_path));
	err = nstest_memfd("stderr", err_path, sizeof(err_path));
	pid = fork();
	if (pid == 0) {
		/* nobody, no capabilities: what an unprivileged user gets */
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(125);
		execl(cellref_path(), "cellref", "flow-monitor", "--ifname", "lo", "--events", "-",
		      (char *)NULL);
		_exit(127);
	}
	if (!ASSERT_GT(pid, 0))
		return;
	status = nstest_wait(pid, 20000);
	if (status == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 10);
	msg = nstest_slurp(err, NULL);
	if (!ASSERT_TRUE(msg && strstr(msg, "EPERM") && strstr(msg, "needs root")))
		tap_diag("stderr: %s", msg ? msg : "");
	text = nstest_slurp(out, NULL);
	ASSERT_TRUE(text && strstr(text, "flow_monitor_failed") && strstr(text, "\"EPERM\""));
}
