// SPDX-License-Identifier: Apache-2.0
/*
 * cellref flow-monitor (SPEC.md chapters 6 and 7).
 *
 *   main thread                       monitor thread (inside --netns)
 *   args, event sink, signals  --->   setns, link lookup, load, attach
 *   (blocks TERM/INT, joins)          started event, ready byte
 *                                     epoll { ring buffer, signalfd } with drain timeout
 *                                     final drain, tallies, summary, detach
 *
 * Everything that talks rtnetlink runs on the monitor thread, because setns() only moves the
 * calling thread and netlink sockets belong to their creator's namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>

#include <bpf/libbpf.h>

#include "cellref.h"
#include "evt.h"
#include "fault.h"
#include "flowacc.h"
#include "flowevt.h"
#include "flowmon.h"
#include "netcfg.h"
#include "util.h"

#ifndef ARPHRD_RAWIP
#define ARPHRD_RAWIP 519
#endif

struct mon {
	/* options */
	const char *ifname;
	const char *netns_path;
	const char *events_path;
	const char *records_path;
	const char *cell_id;
	const char *traceparent;
	char run_id[EVT_ID_LEN];
	int ready_fd;
	uint32_t ringbuf_bytes;
	uint32_t table_entries;
	uint32_t drain_ms;
	uint32_t wait_ifname_ms; /* a supervisor starts us while it still builds the link */
	bool drop_unconsidered;
	uint32_t record_version;

	/* state */
	int netns_fd;
	int records_fd;
	int sig_fd;
	int exit_code;
	struct evt_sink *sink;
	struct flowacc *acc;
	struct flowmon *fm;
	struct jw data;
	uint64_t started_mono_ns;
	uint64_t records_seen;
	uint64_t decode_errors;
	uint64_t tallied;
	uint64_t records_write_errors;
};

static void usage(FILE *f)
{
	fputs("usage: cellref flow-monitor --ifname IF --events PATH|- [--netns PATH] [--ready-fd N]\n"
	      "         [--cell-id ID] [--run-id ID] [--records PATH] [--ringbuf-bytes N]\n"
	      "         [--flow-table-entries N] [--drain-interval-ms N] [--traceparent TP]\n"
	      "         [--wait-ifname-ms N] [--drop-unconsidered] [--record-version 1|2]\n"
	      "Attaches the eBPF egress classifier to IF (inside the netns at PATH) and writes one\n"
	      "network_flow_decision event per new flow until SIGTERM or SIGINT. See SPEC.md ch. 6.\n",
	      f);
}

/* One line on stderr naming the object and the cause, as every cellref error is reported. */

static void emit(struct mon *m, const char *type)
{
	/* A failing sink is counted by the sink itself; the monitor keeps going. */
	if (!jw_error(&m->data) && evt_emit(m->sink, type, jw_text(&m->data)) < 0 &&
	    FAULT("flow.sink_fatal"))
		_exit(CELLREF_EXIT_FAILURE); /* negative control of FLOW-MON-018 */
	jw_reset(&m->data);
}

static int fail(struct mon *m, const char *stage, const char *object, int err, int code,
		const char *detail)
{
	cellref_report("flow-monitor", object, err, "%s", detail ? detail : "");
	jw_obj_open(&m->data);
	evt_data_ids(&m->data, m->cell_id, m->run_id);
	jw_kv_str(&m->data, "stage", stage);
	jw_kv_i64(&m->data, "errno", err < 0 ? -err : err);
	jw_kv_str(&m->data, "errnoName", util_errno_name(err));
	jw_kv_str(&m->data, "message", detail && *detail ? detail : strerror(err < 0 ? -err : err));
	evt_kv_time(&m->data, "observedAt", 0);
	jw_obj_close(&m->data);
	emit(m, "flow_monitor_failed");
	/* flow.start_exit1: the negative control of FLOW-MON-022 (ref/fault.h). */
	return FAULT("flow.start_exit1") ? CELLREF_EXIT_FAILURE : code;
}

/* Wall-clock time of a CLOCK_MONOTONIC instant, for observedAt. */
static uint64_t mono_to_realtime(uint64_t mono_ns)
{
	uint64_t now_rt = util_now_realtime_ns(), now_mono = util_now_monotonic_ns();

	if (mono_ns > now_mono)
		return now_rt;
	return now_rt - (now_mono - mono_ns);
}

static void write_record_frame(struct mon *m, const void *data, size_t len)
{
	unsigned char frame[4 + FLOWREC_V2_SIZE];
	uint32_t le = htole32((uint32_t)len);

	if (m->records_fd < 0 || len > FLOWREC_V2_SIZE)
		return;
	memcpy(frame, &le, 4);
	memcpy(frame + 4, data, len);
	if (util_write_all(m->records_fd, frame, 4 + len) < 0)
		m->records_write_errors++;
}

static int on_record(void *ctx, const void *data, size_t len)
{
	struct mon *m = ctx;
	char decision_id[EVT_ID_LEN], when[EVT_TIME_LEN];
	struct flowevt_meta meta;
	struct flowrec r;
	struct flowevt e;

	/* A sample of the other version is rejected like any other length (FLOW-EVT-001). */
	if (flowrec_decode(data, len, &r) < 0 || r.version != m->record_version) {
		m->decode_errors++;
		return 0;
	}
	m->records_seen++;
	write_record_frame(m, data, len);
	if (flowacc_record(m->acc, &r, FLOWACC_OPENED) < 0)
		return -ENOMEM;
	flowevt_from_record(&r, &e);
	evt_sink_new_id(m->sink, decision_id);
	meta = (struct flowevt_meta){
		.cell_id = m->cell_id,
		.run_id = m->run_id,
		.decision_id = decision_id,
		.observed_at = evt_format_time(mono_to_realtime(r.first_seen_ns), when),
	};
	flowevt_write_decision(&m->data, &e, &meta);
	emit(m, "network_flow_decision");
	return 0;
}

static int on_tally(void *ctx, const struct flowrec *r)
{
	struct mon *m = ctx;
	char when[EVT_TIME_LEN];
	struct flowevt_meta meta = {
		.cell_id = m->cell_id,
		.run_id = m->run_id,
		.observed_at = evt_format_time(util_now_realtime_ns(), when),
	};
	struct flowevt e;

	/*
	 * A tally is a Closed observation: it never counts as a new flow.
	 * flow.tally_counted_as_flow: it does (a flow whose record was lost then counts).
	 */
	(void)flowacc_record(m->acc, r,
			     FAULT("flow.tally_counted_as_flow") ? FLOWACC_OPENED : FLOWACC_CLOSED);
	flowevt_from_record(r, &e);
	flowevt_write_tally(&m->data, &e, &meta);
	emit(m, "network_flow_tally");
	m->tallied++;
	return 0;
}

static unsigned int l2_len_for(unsigned int arptype, int *err)
{
	*err = 0;
	switch (arptype) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		return 14;
	case ARPHRD_NONE:
	case ARPHRD_RAWIP:
		return 0;
	default:
		*err = -EOPNOTSUPP;
		return 0;
	}
}

static int drain_all(struct mon *m)
{
	int n;

	/* Until a pass finds nothing: a record the kernel commits meanwhile is not left behind. */
	do {
		n = flowmon_consume(m->fm);
	} while (n > 0);
	return n < 0 ? n : 0;
}

static void emit_started(struct mon *m, int ifindex)
{
	struct jw *w = &m->data;

	jw_obj_open(w);
	evt_data_ids(w, m->cell_id, m->run_id);
	jw_kv_str(w, "ifname", m->ifname);
	jw_kv_u64(w, "ifindex", (uint64_t)ifindex);
	jw_kv_u64(w, "progId", flowmon_prog_id(m->fm));
	jw_kv_u64(w, "ringbufBytes", m->ringbuf_bytes);
	jw_kv_u64(w, "flowTableEntries", m->table_entries);
	jw_kv_u64(w, "drainIntervalMs", m->drain_ms);
	jw_kv_bool(w, "qdiscCreated", flowmon_qdisc_created(m->fm));
	jw_kv_str(w, "unconsidered", m->drop_unconsidered ? "drop" : "count");
	jw_kv_u64(w, "recordVersion", m->record_version);
	evt_kv_time(w, "observedAt", 0);
	jw_obj_close(w);
	emit(m, "flow_monitor_started");
}

static void emit_summary(struct mon *m, const struct flowmon_stats *st)
{
	struct jw *w = &m->data;
	uint64_t dur = (util_now_monotonic_ns() - m->started_mono_ns) / 1000000ULL;
	uint64_t unique = flowacc_unique(m->acc), lost = st->lost;

	jw_obj_open(w);
	evt_data_ids(w, m->cell_id, m->run_id);
	jw_kv_u64(w, "recordsSeen", m->records_seen);
	jw_kv_u64(w, "recordsLost", lost);
	jw_kv_u64(w, "uniqueFlowCount", flowevt_saturate_u32(unique));
	jw_kv_u64(w, "packetsSeen", st->packets);
	jw_kv_u64(w, "tableFull", st->table_full);
	jw_kv_u64(w, "decodeErrors", m->decode_errors);
	jw_kv_u64(w, "flowsTallied", m->tallied);
	flowevt_write_unconsidered(w, st->unconsidered);
	/* The summary cannot count its own loss; everything before it is counted here. */
	jw_kv_u64(w, "eventsDropped", evt_sink_dropped(m->sink));
	jw_kv_u64(w, "durationMs", dur);
	evt_kv_time(w, "observedAt", 0);
	jw_obj_close(w);
	emit(m, "flow_monitor_summary");
}

static int run_loop(struct mon *m)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (ep < 0)
		return -errno;
	ev.data.fd = flowmon_epoll_fd(m->fm);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0)
		return -errno;
	ev.data.fd = m->sig_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, m->sig_fd, &ev) < 0)
		return -errno;

	for (;;) {
		struct epoll_event got[2];
		bool stop = false;
		int n = epoll_wait(ep, got, 2, (int)m->drain_ms);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			if (got[i].data.fd == m->sig_fd)
				stop = true;
		}
		/* Timeout or wakeup alike: the kernel only wakes us when the ring fills up. */
		err = drain_all(m);
		if (err < 0)
			return err;
		if (stop)
			return 0;
	}
}

/* Each step below returns 0, or a negative errno after setting m->exit_code via fail(). */

/* Enters the namespace and waits (bounded) for the interface to exist. */
static int find_link(struct mon *m, struct netcfg_link_info *ret_link, unsigned int *ret_l2)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	int err;

	if (m->netns_fd >= 0) {
		err = netcfg_enter_netns(m->netns_fd);
		if (err) {
			m->exit_code =
				fail(m, "netns", m->netns_path, err,
				     err == -EPERM ? CELLREF_EXIT_PERM : CELLREF_EXIT_NO_NETNS,
				     err == -EINVAL ? "not a network namespace" : NULL);
			return err;
		}
	}
	err = netcfg_open(-1, &nc);
	err = err ?: netcfg_link_get(nc, m->ifname, ret_link);
	/* Bounded: the interface is about to appear (FLOW-MON-025), or it is an error. */
	for (uint64_t until = util_now_monotonic_ns() + m->wait_ifname_ms * 1000000ULL;
	     err == -ENODEV && util_now_monotonic_ns() < until;) {
		usleep(200);
		err = netcfg_link_get(nc, m->ifname, ret_link);
	}
	if (err) {
		char object[64];

		snprintf(object, sizeof(object), "interface %s", m->ifname);
		m->exit_code =
			fail(m, "interface", object, err,
			     err == -ENODEV ? CELLREF_EXIT_NO_IFACE : CELLREF_EXIT_FAILURE, NULL);
		return err;
	}
	*ret_l2 = l2_len_for(ret_link->arptype, &err);
	if (err) {
		char detail[64];

		snprintf(detail, sizeof(detail), "link type %u has no known header length",
			 ret_link->arptype);
		m->exit_code =
			fail(m, "interface", m->ifname, err, CELLREF_EXIT_NO_FEATURE, detail);
	}
	return err;
}

static int load_monitor(struct mon *m, const struct netcfg_link_info *link, unsigned int l2)
{
	_cleanup_free_ char *log = NULL;
	struct flowmon_opts fo = {
		.ifindex = link->ifindex,
		.l2_len = l2,
		.ringbuf_bytes = m->ringbuf_bytes,
		.table_entries = m->table_entries,
		.drop_unconsidered = m->drop_unconsidered,
		.record_version = m->record_version,
		.on_record = on_record,
		.ctx = m,
	};
	int code = CELLREF_EXIT_FAILURE;
	const char *what = "load";
	int err;

	err = flowmon_open(&fo, &m->fm, &log);
	if (!err)
		return 0;
	if (log) {
		fprintf(stderr, "cellref: flow-monitor: verifier log:\n%s\n", log);
		code = CELLREF_EXIT_VERIFIER;
	} else if (err == -EPERM) {
		code = CELLREF_EXIT_PERM;
	} else if (err == -EOPNOTSUPP) {
		code = CELLREF_EXIT_NO_FEATURE;
		what = "ringbuf";
	}
	m->exit_code = fail(m, what, "BPF object flowmon", err, code,
			    code == CELLREF_EXIT_PERM ? "needs root or CAP_BPF and CAP_NET_ADMIN"
			    : code == CELLREF_EXIT_VERIFIER   ? "rejected by the verifier"
			    : code == CELLREF_EXIT_NO_FEATURE ? "kernel has no BPF ring buffer"
							      : NULL);
	return err;
}

static int attach_monitor(struct mon *m)
{
	char object[64];
	int code = CELLREF_EXIT_FAILURE;
	int err;

	err = flowmon_attach(m->fm);
	if (!err)
		return 0;
	snprintf(object, sizeof(object), "clsact egress on %s", m->ifname);
	if (err == -EPERM)
		code = CELLREF_EXIT_PERM;
	else if (err == -ENODEV)
		code = CELLREF_EXIT_NO_IFACE;
	else if (err == -EOPNOTSUPP || err == -ENOENT)
		code = CELLREF_EXIT_NO_FEATURE;
	m->exit_code =
		fail(m, "attach", object, err, code,
		     code == CELLREF_EXIT_NO_FEATURE ? "kernel has no clsact/cls_bpf" : NULL);
	return err;
}

static void *monitor_thread(void *arg)
{
	struct mon *m = arg;
	struct netcfg_link_info link;
	struct flowmon_stats st;
	unsigned int l2 = 0;
	int err;

	if (find_link(m, &link, &l2) < 0 || load_monitor(m, &link, l2) < 0 || attach_monitor(m) < 0)
		return NULL;

	emit_started(m, link.ifindex);
	if (m->ready_fd >= 0) {
		(void)util_write_all(m->ready_fd, "R", 1);
		close(m->ready_fd);
		m->ready_fd = -1;
	}

	err = run_loop(m);
	if (err)
		cellref_report("flow-monitor", "ring buffer", err, "drain failed");
	err = drain_all(m) ?: err;
	if (flowmon_read_stats(m->fm, &st) < 0)
		memset(&st, 0, sizeof(st));
	(void)flowmon_foreach_flow(m->fm, on_tally, m);
	emit_summary(m, &st);
	/* flow.detach_leak: the negative control of FLOW-MON-019 leaves filter and qdisc. */
	if (!FAULT("flow.detach_leak") && flowmon_detach(m->fm) < 0)
		cellref_report("flow-monitor", m->ifname, -errno, "detach failed");
	m->exit_code = err ? CELLREF_EXIT_FAILURE : CELLREF_EXIT_OK;
	return NULL;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0; /* failures are reported once, with context, by this command */
}

static int parse_u32(const char *opt, const char *v, unsigned long long min, unsigned long long max,
		     uint32_t *ret)
{
	unsigned long long x;

	/* flow.cli_lenient (the negative control of FLOW-MON-001) clamps into the range. */
	if (util_parse_u64(v, min, max, &x) < 0 &&
	    !(FAULT("flow.cli_lenient") && util_parse_u64(v, 0, ULLONG_MAX, &x) == 0)) {
		fprintf(stderr,
			"cellref: flow-monitor: %s '%s': expected an integer in %llu..%llu\n", opt,
			v, min, max);
		return -EINVAL;
	}
	*ret = (uint32_t)(x < min ? min : x > max ? max : x);
	return 0;
}

static int parse_ringbuf_bytes(const char *v, uint32_t *ret)
{
	if (parse_u32("--ringbuf-bytes", v, 4096, 1u << 30, ret) < 0)
		return -EINVAL;
	while ((*ret & (*ret - 1)) && FAULT("flow.cli_lenient"))
		*ret &= *ret - 1; /* down to the top bit */
	if (*ret & (*ret - 1)) {
		fprintf(stderr,
			"cellref: flow-monitor: --ringbuf-bytes '%s': must be a power of two\n", v);
		return -EINVAL;
	}
	return 0;
}

/* What no single option can check: leftovers and required options. */
static int check_args(struct mon *m, int argc, char **argv)
{
	if (optind != argc && !FAULT("flow.cli_lenient")) {
		fprintf(stderr, "cellref: flow-monitor: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!m->ifname || !m->events_path) {
		fprintf(stderr, "cellref: flow-monitor: --ifname and --events are required\n");
		return -EINVAL;
	}
	return 0;
}

/* One case per option in a single getopt switch: long, but each case stands alone. */
static int parse_args(struct mon *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "netns", required_argument, NULL, 'n' },
		{ "events", required_argument, NULL, 'e' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "cell-id", required_argument, NULL, 'c' },
		{ "run-id", required_argument, NULL, 'u' },
		{ "records", required_argument, NULL, 'R' },
		{ "ringbuf-bytes", required_argument, NULL, 'b' },
		{ "flow-table-entries", required_argument, NULL, 't' },
		{ "drain-interval-ms", required_argument, NULL, 'd' },
		{ "wait-ifname-ms", required_argument, NULL, 'W' },
		{ "traceparent", required_argument, NULL, 'T' },
		{ "drop-unconsidered", no_argument, NULL, 'D' },
		{ "record-version", required_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint32_t fd;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			m->ifname = optarg;
			break;
		case 'n':
			m->netns_path = optarg;
			break;
		case 'e':
			m->events_path = optarg;
			break;
		case 'r':
			if (parse_u32("--ready-fd", optarg, 0, 1u << 20, &fd) < 0)
				return -EINVAL;
			m->ready_fd = (int)fd;
			break;
		case 'c':
			m->cell_id = optarg;
			break;
		case 'u':
			if (!*optarg || strlen(optarg) >= sizeof(m->run_id)) {
				fprintf(stderr, "cellref: flow-monitor: --run-id: 1 to %zu bytes\n",
					sizeof(m->run_id) - 1);
				return -EINVAL;
			}
			snprintf(m->run_id, sizeof(m->run_id), "%s", optarg);
			break;
		case 'R':
			m->records_path = optarg;
			break;
		case 'b':
			if (parse_ringbuf_bytes(optarg, &m->ringbuf_bytes) < 0)
				return -EINVAL;
			break;
		case 't':
			if (parse_u32("--flow-table-entries", optarg, 1, 1u << 24,
				      &m->table_entries) < 0)
				return -EINVAL;
			break;
		case 'W':
			if (parse_u32("--wait-ifname-ms", optarg, 0, 60000, &m->wait_ifname_ms) < 0)
				return -EINVAL;
			break;
		case 'd':
			if (parse_u32("--drain-interval-ms", optarg, 1, 1000, &m->drain_ms) < 0)
				return -EINVAL;
			break;
		case 'T':
			m->traceparent = optarg;
			break;
		case 'D':
			m->drop_unconsidered = true;
			break;
		case 'V':
			if (parse_u32("--record-version", optarg, 1, 2, &m->record_version) < 0)
				return -EINVAL;
			/* flow.v1_emits_v2: the negative control of FLOW-MON-028 (ref/fault.h). */
			if (FAULT("flow.v1_emits_v2"))
				m->record_version = 2;
			break;
		case 'h':
			usage(stdout);
			exit(CELLREF_EXIT_OK);
		default:
			if (FAULT("flow.cli_lenient"))
				break;
			usage(stderr);
			return -EINVAL;
		}
	}
	return check_args(m, argc, argv);
}

/*
 * Opens what the command line names; the caller's cleanup closes the fds. Returns 0 or the
 * exit code.
 */
static int open_files(struct mon *m, int *records_fd, int *netns_fd)
{
	int err;

	if (m->records_path) {
		*records_fd =
			open(m->records_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (*records_fd < 0)
			return fail(m, "unknown", m->records_path, -errno, CELLREF_EXIT_FAILURE,
				    "cannot open the records file");
		m->records_fd = *records_fd;
	}
	if (m->ready_fd >= 0 && fcntl(m->ready_fd, F_GETFD) < 0)
		return fail(m, "unknown", "--ready-fd", -errno, CELLREF_EXIT_USAGE,
			    "not an open file descriptor");
	if (m->netns_path) {
		*netns_fd = open(m->netns_path, O_RDONLY | O_CLOEXEC);
		if (*netns_fd < 0) {
			err = -errno;
			return fail(m, "netns", m->netns_path, err,
				    err == -EACCES || err == -EPERM ? CELLREF_EXIT_PERM
								    : CELLREF_EXIT_NO_NETNS,
				    NULL);
		}
		m->netns_fd = *netns_fd;
	}
	return 0;
}

/* The fds the monitor thread uses live until it is joined; returns the exit code. */
static int run_monitor(struct mon *m)
{
	_cleanup_close_ int netns_fd = -1, records_fd = -1, sig_fd = -1;
	pthread_t tid;
	sigset_t mask;
	int err;

	err = open_files(m, &records_fd, &netns_fd);
	if (err)
		return err;

	/* Signals become readable on a signalfd; block them before any thread exists. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		return fail(m, "unknown", "signalfd", -errno, CELLREF_EXIT_FAILURE, NULL);
	m->sig_fd = sig_fd;

	libbpf_set_print(libbpf_quiet);
	m->started_mono_ns = util_now_monotonic_ns();
	err = pthread_create(&tid, NULL, monitor_thread, m);
	if (err)
		return fail(m, "unknown", "monitor thread", -err, CELLREF_EXIT_FAILURE, NULL);
	pthread_join(tid, NULL);
	flowmon_free(m->fm);
	if (m->records_write_errors)
		cellref_report("flow-monitor", m->records_path, -EIO,
			       "%llu records could not be written",
			       (unsigned long long)m->records_write_errors);
	return m->exit_code;
}

int cellref_flowmon_main(int argc, char **argv)
{
	_cleanup_(evt_sink_freep) struct evt_sink *sink = NULL;
	_cleanup_(flowacc_freep) struct flowacc *acc = NULL;
	struct mon m = {
		.cell_id = "unspecified",
		.ready_fd = -1,
		.netns_fd = -1,
		.records_fd = -1,
		.ringbuf_bytes = FLOWMON_RINGBUF_DEFAULT,
		.table_entries = FLOWMON_TABLE_DEFAULT,
		.drain_ms = FLOWMON_DRAIN_MS_DEFAULT,
		.record_version = 1,
	};
	int err;

	if (parse_args(&m, argc, argv) < 0)
		return CELLREF_EXIT_USAGE;
	if (!m.run_id[0]) {
		/* No run named: a random one, so two runs' events never share a runId. */
		_cleanup_(evt_sink_freep) struct evt_sink *ids = NULL;

		err = evt_sink_open_fd(STDERR_FILENO, false, "/cellref/flow-monitor", &ids);
		if (err)
			return CELLREF_EXIT_FAILURE;
		evt_sink_new_id(ids, m.run_id);
	}

	err = evt_sink_open_path(m.events_path, "/cellref/flow-monitor", &sink);
	if (err) {
		cellref_report("flow-monitor", m.events_path, err, "cannot open the event sink");
		return CELLREF_EXIT_FAILURE;
	}
	if (m.traceparent && evt_sink_set_traceparent(sink, m.traceparent) < 0) {
		fprintf(stderr,
			"cellref: flow-monitor: --traceparent '%s': not a W3C traceparent\n",
			m.traceparent);
		return CELLREF_EXIT_USAGE;
	}
	m.sink = sink;
	jw_init(&m.data);
	err = flowacc_new(&acc);
	if (err || jw_error(&m.data)) {
		jw_free(&m.data);
		return CELLREF_EXIT_FAILURE;
	}
	m.acc = acc;

	err = run_monitor(&m);
	jw_free(&m.data);
	return err;
}
