// SPDX-License-Identifier: Apache-2.0
/*
 * DNS forwarding benchmark (not a test): dnsperf against `cellref dns-proxy` (events on, and
 * events off), dnsdist and dnsmasq forwarding to the same fast upstream, and against that
 * upstream directly, side by side in one run and in one topology (nstest.h):
 *
 *   peer netns (this process)                    cell netns
 *   +----------------------------------+         +-------------------------------------+
 *   | fp0 10.77.0.1                    |<-veth-->| fc0 10.77.0.2                       |
 *   | dns_upstream 10.77.0.1:53 (CPU A)|         | forwarder 10.77.0.2:530x (CPU B)    |
 *   +----------------------------------+         | dnsperf (CPU A) -> forwarder        |
 *                                                +-------------------------------------+
 *
 * The upstream (dns_upstream, same directory) answers from a fixed answer with
 * recvmmsg/sendmmsg, so a forwarder's own cost dominates. Every forwarder and all its threads
 * are pinned to CPU B alone; dnsperf (one thread) and the upstream share CPU A. For each peer:
 * a warm-up, then a saturating phase (dnsperf -c/-q, fixed duration: qps, CPU of the
 * forwarder's core, CPU per query), then a fixed-rate phase (dnsperf -Q with -v: latency
 * percentiles at the same offered load for everyone). With several rounds, peers alternate
 * within each round (odd rounds in reverse order) and medians are reported, ratios as the
 * median of the ratios within each round.
 *
 * "ours" writes its events to a memfd (tmpfs pages, really written), which is read back: the
 * dns_query events must number exactly the queries sent to it. "ours-null" is the same proxy
 * with --events /dev/null: the proxy has no switch that turns events off, so events are still
 * formatted and queued there and only the sink's cost is saved.
 *
 * CPU accounting comes from /proc/stat (per CPU) and /proc/<pid>/stat: a phase in which other
 * processes of the machine took more than 5% of either CPU is repeated (-N).
 *
 * usage: bench_dns [options] CELLREF [SECONDS]
 *   -s SECONDS   saturating phase per peer and round (default 10)
 *   -r ROUNDS    rounds (default 3)
 *   -c CLIENTS   dnsperf -c (default 8)
 *   -q QUERIES   dnsperf -q, queries outstanding (default 128)
 *   -R QPS       rate of the latency phase (default 10000)
 *   -L SECONDS   latency phase per peer and round (default 3)
 *   -w SECONDS   warm-up per peer and round (default 1)
 *   -p LIST      peers, comma-separated (default direct,ours,ours-null,dnsdist,dnsmasq)
 *   -A CPU / -B CPU  client+upstream CPU and forwarder CPU (default 0 and 1)
 *   -N TRIES     repeat a phase up to TRIES times when other processes took more than 5% of
 *                a benchmark CPU (default 2; the least disturbed attempt is kept)
 *
 * Exit status: 0 when it ran (whatever the numbers), 1 on setup failure, 77 when this machine
 * cannot run it (not root, fewer than 2 CPUs, dnsperf missing).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nstest.h"
#include "util.h"

#define UPSTREAM_PORT 53
#define MAX_ROUNDS    20
#define MAX_THREADS   64
#define NOISE_MAX     0.05

enum peer_kind { P_DIRECT, P_OURS, P_OURS_NULL, P_DNSDIST, P_DNSMASQ, P_COUNT };

static const char *const peer_name[P_COUNT] = { "direct", "ours", "ours-null", "dnsdist",
						"dnsmasq" };
static const uint16_t peer_port[P_COUNT] = { UPSTREAM_PORT, 5301, 5302, 5303, 5304 };

/* The query file: a few names under a local zone, A and AAAA. */
static const char query_file[] = "www.bench.test A\n"
				 "www.bench.test AAAA\n"
				 "api.bench.test A\n"
				 "api.bench.test AAAA\n"
				 "mail.bench.test A\n"
				 "mail.bench.test AAAA\n"
				 "cdn.bench.test A\n"
				 "cdn.bench.test AAAA\n";

struct opts {
	const char *cellref;
	const char *upstream_bin;
	double secs, lat_secs, warm_secs;
	unsigned int rounds, clients, outstanding, rate, retries;
	int cpu_a, cpu_b;
	bool want[P_COUNT];
};

struct result {
	bool ran;
	/* saturating phase */
	uint64_t sent, completed, lost, noerror, upstream;
	double qps, avg_us, runtime;
	double fwd_util, cli_util; /* fraction of the CPU's time, 0..1 */
	double fwd_us_per_q;	   /* forwarder CPU (whole core, softirq included) per query */
	double proc_us_per_q;	   /* forwarder process CPU time (all threads) per query */
	uint64_t rcvbuf_errors;
	double other, lat_other;	   /* share of a benchmark CPU taken by other processes */
	unsigned int clean_sat, clean_lat; /* medians: rounds below NOISE_MAX used */
	/* latency phase */
	double lat_qps, p50, p99, p999;
	uint64_t lat_sent, lat_completed;
	/* events (ours only) */
	bool ev_checked, ev_ok;
	uint64_t ev_queries, ev_forwarded, ev_stats_queries, ev_dropped, ev_expected, ev_bytes;
	char threads[512];
};

struct bench {
	struct opts o;
	struct nstest_topo t;
	pid_t upstream_pid;
	volatile uint64_t *upstream_count;
	int qfile_fd;
	char qfile_path[64];
	int snmp_cell_fd, snmp_peer_fd;
	long ticks_per_s;
};

/* ---------------------------------------------------------------------------------------- */

static int memfd_path(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd >= 0)
		snprintf(path, len, "/proc/%d/fd/%d", getpid(), fd);
	return fd < 0 ? -errno : fd;
}

static char *slurp_fd(int fd, size_t *len)
{
	return nstest_slurp(fd, len);
}

/*
 * fork+exec argv pinned to `cpu` (the child inherits the calling thread's affinity, so every
 * thread it ever creates stays there), inside netns (-1: here), stdout/stderr to out/err (-1:
 * unchanged).
 */
static pid_t spawn(int netns, int cpu, char *const argv[], const int *keep, int nkeep, int out,
		   int err)
{
	cpu_set_t old, set;
	int so = -1, se = -1;
	pid_t pid;

	sched_getaffinity(0, sizeof(old), &old);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	if (out >= 0) {
		so = dup(STDOUT_FILENO);
		dup2(out, STDOUT_FILENO);
	}
	if (err >= 0) {
		se = dup(STDERR_FILENO);
		dup2(err, STDERR_FILENO);
	}
	pid = nstest_spawn_in(netns, argv, keep, nkeep);
	if (so >= 0) {
		dup2(so, STDOUT_FILENO);
		close(so);
	}
	if (se >= 0) {
		dup2(se, STDERR_FILENO);
		close(se);
	}
	sched_setaffinity(0, sizeof(old), &old);
	return pid;
}

/* SIGTERM, then SIGKILL after timeout_ms; exit code, 128+signal, or -errno. */
static int stop(pid_t pid, int sig, int timeout_ms)
{
	int st;

	if (pid <= 0)
		return -ESRCH;
	kill(pid, sig);
	st = nstest_wait(pid, timeout_ms);
	if (st == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -ETIMEDOUT;
	}
	if (st < 0)
		return st;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void show_stderr(const char *who, int fd)
{
	size_t len = 0;
	_cleanup_free_ char *s = fd >= 0 ? slurp_fd(fd, &len) : NULL;

	if (s && len) {
		if (len > 4000)
			memmove(s, s + len - 4000, 4001);
		fprintf(stderr, "--- %s stderr (end) ---\n%s\n---\n", who, s);
	}
}

static bool executable_exists(const char *path)
{
	return access(path, X_OK) == 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* ------------------------------------------------------------------ CPU and drop counters */

struct cpu_snap {
	unsigned long long busy[2], total[2], task[2]; /* task: user+nice+system */
	unsigned long long proc, upstream_ticks;
	uint64_t upstream, rcvbuf;
	int ntid;
	int tid[MAX_THREADS];
	unsigned long long tticks[MAX_THREADS];
	char tname[MAX_THREADS][20];
};

static int read_cpu(int cpu, unsigned long long *busy, unsigned long long *total,
		    unsigned long long *task)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/stat", "re");
	char line[512], want[16];

	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };

		if (strncmp(line, want, strlen(want)) != 0)
			continue;
		if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 7)
			return -EIO;
		/* user nice system idle iowait irq softirq steal */
		*task = v[0] + v[1] + v[2];
		*busy = *task + v[5] + v[6];
		*total = *busy + v[3] + v[4] + v[7];
		return 0;
	}
	return -ENOENT;
}

/* utime+stime in ticks of /proc/<pid>[/task/<tid>]/stat; its comm into name. */
static unsigned long long stat_ticks(const char *path, char *name, size_t nlen)
{
	char buf[1024], *p, *q;
	unsigned long long ut = 0, st = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strchr(buf, '(');
	q = strrchr(buf, ')');
	if (!p || !q)
		return 0;
	if (name) {
		size_t l = (size_t)(q - p - 1);

		if (l >= nlen)
			l = nlen - 1;
		memcpy(name, p + 1, l);
		name[l] = '\0';
	}
	/* After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime(14) stime(15) */
	if (sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static uint64_t read_rcvbuf_errors(int fd)
{
	char buf[4096];
	ssize_t n;
	char *hdr, *val;
	uint64_t sum = 0;

	if (fd < 0)
		return 0;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors ..." then the values */
	hdr = strstr(buf, "\nUdp: ");
	val = hdr ? strstr(hdr + 1, "\nUdp: ") : NULL;
	if (!hdr || !val)
		return 0;
	{
		char h[512], v[512], *hs = NULL, *vs = NULL, *ht, *vt;
		size_t hl = strcspn(hdr + 6, "\n"), vl = strcspn(val + 6, "\n");

		if (hl >= sizeof(h) || vl >= sizeof(v))
			return 0;
		memcpy(h, hdr + 6, hl);
		h[hl] = '\0';
		memcpy(v, val + 6, vl);
		v[vl] = '\0';
		for (ht = strtok_r(h, " ", &hs), vt = strtok_r(v, " ", &vs); ht && vt;
		     ht = strtok_r(NULL, " ", &hs), vt = strtok_r(NULL, " ", &vs))
			if (!strcmp(ht, "RcvbufErrors"))
				sum += strtoull(vt, NULL, 10);
	}
	return sum;
}

static void snap(struct bench *b, pid_t pid, struct cpu_snap *s)
{
	memset(s, 0, sizeof(*s));
	read_cpu(b->o.cpu_a, &s->busy[0], &s->total[0], &s->task[0]);
	read_cpu(b->o.cpu_b, &s->busy[1], &s->total[1], &s->task[1]);
	if (b->upstream_pid > 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/stat", b->upstream_pid);
		s->upstream_ticks = stat_ticks(path, NULL, 0);
	}
	s->upstream = b->upstream_count ? *b->upstream_count : 0;
	s->rcvbuf = read_rcvbuf_errors(b->snmp_cell_fd) + read_rcvbuf_errors(b->snmp_peer_fd);
	if (pid > 0) {
		char path[64];
		_cleanup_(closedirp) DIR *d = NULL;
		struct dirent *de;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		s->proc = stat_ticks(path, NULL, 0);
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		while (d && (de = readdir(d)) && s->ntid < MAX_THREADS) {
			char tp[300];

			if (de->d_name[0] == '.')
				continue;
			s->tid[s->ntid] = atoi(de->d_name);
			snprintf(tp, sizeof(tp), "/proc/%d/task/%s/stat", pid, de->d_name);
			s->tticks[s->ntid] = stat_ticks(tp, s->tname[s->ntid], sizeof(s->tname[0]));
			s->ntid++;
		}
	}
}

/* ------------------------------------------------------------------------------ dnsperf */

struct dp {
	uint64_t sent, completed, lost, noerror;
	double qps, avg_s, runtime;
	double cpu_s; /* dnsperf's own CPU time (user+system) */
	double *lat;  /* seconds, verbose only */
	size_t nlat;
};

static uint64_t field_u64(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static double field_dbl(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtod(p + strlen(key), NULL) : NAN;
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run_dnsperf(struct bench *b, const char *ip, uint16_t port, double secs,
		       unsigned int rate, bool verbose, struct dp *o)
{
	char out_path[64], err_path[64], port_s[8], secs_s[32], c_s[16], q_s[16], rate_s[16];
	_cleanup_close_ int out = memfd_path("dnsperf-out", out_path, sizeof(out_path));
	_cleanup_close_ int err = memfd_path("dnsperf-err", err_path, sizeof(err_path));
	_cleanup_free_ char *text = NULL;
	struct rusage ru0, ru1;
	char *argv[32];
	int n = 0, st;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	if (out < 0 || err < 0)
		return -EMFILE;
	snprintf(port_s, sizeof(port_s), "%u", port);
	snprintf(secs_s, sizeof(secs_s), "%.3f", secs);
	snprintf(c_s, sizeof(c_s), "%u", b->o.clients);
	snprintf(q_s, sizeof(q_s), "%u", b->o.outstanding);
	snprintf(rate_s, sizeof(rate_s), "%u", rate);
	argv[n++] = "/usr/bin/dnsperf";
	argv[n++] = "-s";
	argv[n++] = (char *)ip;
	argv[n++] = "-p";
	argv[n++] = port_s;
	argv[n++] = "-d";
	argv[n++] = b->qfile_path;
	argv[n++] = "-l";
	argv[n++] = secs_s;
	argv[n++] = "-c";
	argv[n++] = c_s;
	argv[n++] = "-q";
	argv[n++] = q_s;
	argv[n++] = "-T";
	argv[n++] = "1";
	argv[n++] = "-t";
	argv[n++] = "2";
	if (rate) {
		argv[n++] = "-Q";
		argv[n++] = rate_s;
	}
	if (verbose)
		argv[n++] = "-v";
	argv[n] = NULL;
	getrusage(RUSAGE_CHILDREN, &ru0);
	pid = spawn(b->t.cell_ns, b->o.cpu_a, argv, NULL, 0, out, err);
	if (pid < 0)
		return (int)pid;
	st = nstest_wait(pid, (int)(secs * 1000) + 30000);
	getrusage(RUSAGE_CHILDREN, &ru1);
	o->cpu_s = tv_s(&ru1.ru_utime) - tv_s(&ru0.ru_utime) + tv_s(&ru1.ru_stime) -
		   tv_s(&ru0.ru_stime);
	if (st < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fprintf(stderr, "bench: dnsperf did not finish\n");
		return -ETIMEDOUT;
	}
	text = slurp_fd(out, NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !text || !strstr(text, "Queries sent:")) {
		fprintf(stderr, "bench: dnsperf failed (status 0x%x)\n", st);
		show_stderr("dnsperf", err);
		return -EIO;
	}
	o->sent = field_u64(text, "Queries sent:");
	o->completed = field_u64(text, "Queries completed:");
	o->lost = field_u64(text, "Queries lost:");
	o->noerror = field_u64(text, "NOERROR ");
	o->qps = field_dbl(text, "Queries per second:");
	o->avg_s = field_dbl(text, "Average Latency (s):");
	o->runtime = field_dbl(text, "Run time (s):");
	if (verbose) {
		size_t cap = o->sent + 16;
		char *line, *save = NULL;

		o->lat = calloc(cap, sizeof(double));
		if (!o->lat)
			return -ENOMEM;
		/* "> NOERROR www.bench.test A 0.000066": the last field is the latency in s. */
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *sp, *end;
			double v;

			if (line[0] != '>' || strncmp(line, "> NOERROR ", 10) != 0)
				continue;
			sp = strrchr(line, ' ');
			v = strtod(sp + 1, &end);
			if (end != sp + 1 && o->nlat < cap)
				o->lat[o->nlat++] = v;
		}
		qsort(o->lat, o->nlat, sizeof(double), cmp_dbl);
	}
	return 0;
}

static double pct(const struct dp *d, double p)
{
	size_t i;

	if (!d->nlat)
		return NAN;
	i = (size_t)ceil(p / 100.0 * (double)d->nlat);
	if (i > 0)
		i--;
	if (i >= d->nlat)
		i = d->nlat - 1;
	return d->lat[i] * 1e6;
}

/* ------------------------------------------------------------------- readiness probe */

/* Send A queries for probe.bench.test to ip:port from the cell until one is answered
 * NOERROR; the number of queries sent (>= 1), or -ETIMEDOUT. */
static int probe(struct bench *b, const char *ip, uint16_t port, int timeout_ms)
{
	static const uint8_t qname[] = "\005probe\005bench\004test";
	_cleanup_close_ int s = nstest_socket_in(b->t.cell_ns, AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint8_t q[64], r[512];
	int sent = 0;
	uint64_t end = util_now_monotonic_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t qlen;

	if (s < 0)
		return s;
	inet_pton(AF_INET, ip, &a.sin_addr);
	memset(q, 0, 12);
	q[2] = 0x01; /* RD */
	q[5] = 1;    /* QDCOUNT */
	memcpy(q + 12, qname, sizeof(qname));
	qlen = 12 + sizeof(qname);
	q[qlen++] = 0;
	q[qlen++] = 1; /* A */
	q[qlen++] = 0;
	q[qlen++] = 1; /* IN */
	while (util_now_monotonic_ns() < end) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		uint16_t id = (uint16_t)(0x4000 + sent);

		q[0] = (uint8_t)(id >> 8);
		q[1] = (uint8_t)id;
		if (sendto(s, q, qlen, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)qlen)
			sent++;
		while (poll(&p, 1, 100) == 1) {
			ssize_t n = recv(s, r, sizeof(r), 0);

			if (n >= 12 && (r[2] & 0x80) && (r[3] & 0x0F) == 0 && r[7] >= 1 &&
			    r[0] == q[0] && r[1] == q[1])
				return sent;
		}
	}
	return -ETIMEDOUT;
}

/* ------------------------------------------------------------------------- forwarders */

struct fwd {
	enum peer_kind kind;
	pid_t pid;
	int err_fd, ev_fd, conf_fd;
	char err_path[64], ev_path[64], conf_path[64];
	int probes;
};

static void fwd_close(struct fwd *f)
{
	util_closep(&f->err_fd);
	util_closep(&f->ev_fd);
	util_closep(&f->conf_fd);
}

static int fwd_start(struct bench *b, struct fwd *f, enum peer_kind kind)
{
	char listen[32], upstream[32], port_s[16], server[48], netns[64], ready_s[16];
	char *argv[48];
	int keep[4], nkeep = 0, n = 0, ready[2] = { -1, -1 }, r;
	const char *ip = "10.77.0.2";

	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->ev_fd = f->conf_fd = -1;
	f->err_fd = memfd_path("fwd-stderr", f->err_path, sizeof(f->err_path));
	if (f->err_fd < 0)
		return f->err_fd;
	snprintf(listen, sizeof(listen), "%s:%u", ip, peer_port[kind]);
	snprintf(upstream, sizeof(upstream), "10.77.0.1:%u", UPSTREAM_PORT);
	snprintf(port_s, sizeof(port_s), "--port=%u", peer_port[kind]);
	switch (kind) {
	case P_OURS:
	case P_OURS_NULL:
		if (pipe2(ready, O_CLOEXEC) < 0)
			return -errno;
		snprintf(ready_s, sizeof(ready_s), "%d", ready[1]);
		snprintf(netns, sizeof(netns), "/proc/%d/fd/%d", getpid(), b->t.cell_ns);
		argv[n++] = (char *)b->o.cellref;
		argv[n++] = "dns-proxy";
		argv[n++] = "--listen";
		argv[n++] = listen;
		argv[n++] = "--upstream";
		argv[n++] = upstream;
		argv[n++] = "--netns";
		argv[n++] = netns;
		argv[n++] = "--ready-fd";
		argv[n++] = ready_s;
		argv[n++] = "--cell-id";
		argv[n++] = "bench";
		argv[n++] = "--run-id";
		argv[n++] = "bench-dns";
		argv[n++] = "--events";
		if (kind == P_OURS) {
			/* For real: a memfd (tmpfs pages), read back and counted afterwards. */
			f->ev_fd = memfd_path("events", f->ev_path, sizeof(f->ev_path));
			if (f->ev_fd < 0)
				return f->ev_fd;
			argv[n++] = f->ev_path;
			keep[nkeep++] = f->ev_fd;
		} else {
			argv[n++] = "/dev/null";
		}
		keep[nkeep++] = ready[1];
		keep[nkeep++] = b->t.cell_ns;
		argv[n] = NULL;
		/* The proxy setns()es its serving thread into --netns itself. */
		f->pid = spawn(-1, b->o.cpu_b, argv, keep, nkeep, -1, f->err_fd);
		close(ready[1]);
		r = f->pid < 0 ? (int)f->pid : nstest_wait_byte(ready[0], 10000);
		close(ready[0]);
		if (r < 0) {
			fprintf(stderr, "bench: %s dns-proxy not ready: %s\n", b->o.cellref,
				strerror(-r));
			return r;
		}
		break;
	case P_DNSDIST: {
		char conf[1024];

		f->conf_fd = memfd_path("dnsdist.conf", f->conf_path, sizeof(f->conf_path));
		if (f->conf_fd < 0)
			return f->conf_fd;
		/*
		 * No logging, no ring buffers (the in-memory query log of the console), no
		 * packet cache, no security polling (it would resolve a name through the host's
		 * resolver), no console; health checks rare so the upstream sees the queries only.
		 */
		snprintf(conf, sizeof(conf),
			 "setSecurityPollSuffix('')\n"
			 "setRingBuffersSize(0)\n"
			 "setLocal('%s')\n"
			 "newServer({address='%s', checkInterval=3600})\n",
			 listen, upstream);
		if (util_write_all(f->conf_fd, conf, strlen(conf)) < 0)
			return -EIO;
		argv[n++] = "/usr/bin/dnsdist";
		argv[n++] = "--supervised";
		argv[n++] = "--disable-syslog";
		argv[n++] = "-C";
		argv[n++] = f->conf_path;
		argv[n] = NULL;
		f->pid = spawn(b->t.cell_ns, b->o.cpu_b, argv, NULL, 0, f->err_fd, f->err_fd);
		break;
	}
	case P_DNSMASQ:
		snprintf(server, sizeof(server), "--server=10.77.0.1#%u", UPSTREAM_PORT);
		argv[n++] = "/usr/sbin/dnsmasq";
		argv[n++] = "--keep-in-foreground";
		argv[n++] = "--conf-file=/dev/null";
		argv[n++] = "--no-resolv";
		argv[n++] = "--no-hosts";
		argv[n++] = "--cache-size=0";
		argv[n++] = server;
		argv[n++] = "--listen-address=10.77.0.2";
		argv[n++] = "--bind-interfaces";
		argv[n++] = port_s;
		argv[n++] = "--pid-file=";
		argv[n++] = "--log-facility=-";
		/* Its default (150) would cap concurrency below what dnsperf keeps in flight. */
		argv[n++] = "--dns-forward-max=10000";
		argv[n] = NULL;
		f->pid = spawn(b->t.cell_ns, b->o.cpu_b, argv, NULL, 0, f->err_fd, f->err_fd);
		break;
	default:
		return -EINVAL;
	}
	if (f->pid < 0)
		return (int)f->pid;
	r = probe(b, ip, peer_port[kind], 10000);
	if (r < 0) {
		fprintf(stderr, "bench: %s does not answer on %s\n", peer_name[kind], listen);
		return r;
	}
	f->probes = r;
	return 0;
}

/* Count dns_query events and read the stats event of our proxy's events file. */
static void check_events(struct fwd *f, struct result *res)
{
	struct stat st;
	char *map, *p, *end, *last_stats = NULL;
	size_t last_len = 0;

	res->ev_checked = true;
	if (fstat(f->ev_fd, &st) < 0 || st.st_size == 0)
		return;
	res->ev_bytes = (uint64_t)st.st_size;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, f->ev_fd, 0);
	if (map == MAP_FAILED || !map)
		return;
	end = map + st.st_size;
	for (p = map; p && p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (memmem(p, len, "v1.dns_query\"", 13)) {
			res->ev_queries++;
			if (memmem(p, len, "\"forwarded\"", 11))
				res->ev_forwarded++;
		} else if (memmem(p, len, "v1.dns_proxy_stats\"", 19)) {
			last_stats = p;
			last_len = len;
		}
		p += len + 1;
	}
	if (last_stats) {
		json_t *j = json_loadb(last_stats, last_len, 0, NULL);
		json_t *d = json_object_get(j, "data");

		res->ev_stats_queries = (uint64_t)json_integer_value(json_object_get(d, "queries"));
		res->ev_dropped = (uint64_t)json_integer_value(json_object_get(d, "eventsDropped"));
		json_decref(j);
	}
	munmap(map, (size_t)st.st_size);
}

/* ---------------------------------------------------------------------------- one peer */

static void thread_summary(const struct bench *b, const struct cpu_snap *s0,
			   const struct cpu_snap *s1, double secs, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < s1->ntid && off < len; i++) {
		unsigned long long before = 0;
		double pcnt;

		for (int j = 0; j < s0->ntid; j++)
			if (s0->tid[j] == s1->tid[i])
				before = s0->tticks[j];
		pcnt = 100.0 * (double)(s1->tticks[i] - before) / (double)b->ticks_per_s / secs;
		if (pcnt < 0.5)
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%s %.0f%%", off ? ", " : "",
					s1->tname[i], pcnt);
	}
}

/*
 * The share of CPU time, on the busier of the two benchmark CPUs, that went to tasks other
 * than the forwarder (CPU B) or dnsperf and the upstream (CPU A): other work on the machine.
 */
static double foreign_share(const struct bench *b, const struct cpu_snap *s0,
			    const struct cpu_snap *s1, const struct dp *d)
{
	double tb = (double)(s1->total[1] - s0->total[1]),
	       ta = (double)(s1->total[0] - s0->total[0]);
	double ob = (double)(s1->task[1] - s0->task[1]) - (double)(s1->proc - s0->proc);
	double oa = (double)(s1->task[0] - s0->task[0]) -
		    (double)(s1->upstream_ticks - s0->upstream_ticks) -
		    d->cpu_s * (double)b->ticks_per_s;

	oa = ta > 0 ? oa / ta : 0;
	ob = tb > 0 ? ob / tb : 0;
	if (oa < 0)
		oa = 0;
	if (ob < 0)
		ob = 0;
	return oa > ob ? oa : ob;
}

/*
 * One measured phase: dnsperf for secs (rate 0: saturating; else -Q rate with -v), between two
 * snapshots. Repeated (up to -N times) when other processes took a share of either benchmark
 * CPU; the least disturbed attempt is kept, its share in *other.
 */
static int phase(struct bench *b, enum peer_kind kind, pid_t fwd_pid, double secs,
		 unsigned int rate, struct dp *out, struct cpu_snap *s0, struct cpu_snap *s1,
		 double *other, uint64_t *sent_total)
{
	const char *ip = kind == P_DIRECT ? "10.77.0.1" : "10.77.0.2";
	int r = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned int attempt = 0; attempt <= b->o.retries; attempt++) {
		struct cpu_snap a0, a1;
		struct dp d;
		double noise;

		snap(b, fwd_pid, &a0);
		r = run_dnsperf(b, ip, peer_port[kind], secs, rate, rate > 0, &d);
		snap(b, fwd_pid, &a1);
		if (r < 0) {
			free(d.lat);
			break;
		}
		*sent_total += d.sent;
		noise = foreign_share(b, &a0, &a1, &d);
		if (attempt == 0 || noise < *other) {
			free(out->lat);
			*s0 = a0;
			*s1 = a1;
			*out = d;
			*other = noise;
		} else {
			free(d.lat);
		}
		if (noise <= NOISE_MAX)
			break;
		printf("%-10s (%s phase: %.0f%% of a benchmark CPU went to other processes%s)\n",
		       peer_name[kind], rate ? "latency" : "saturating", 100 * noise,
		       attempt < b->o.retries ? ": repeated" : "");
	}
	return r;
}

static int run_peer(struct bench *b, enum peer_kind kind, struct result *res)
{
	const char *ip = kind == P_DIRECT ? "10.77.0.1" : "10.77.0.2";
	struct fwd f = { .pid = -1, .err_fd = -1, .ev_fd = -1, .conf_fd = -1 };
	struct cpu_snap l0, l1, s0 = { 0 }, s1 = { 0 };
	struct dp warm = { 0 }, sat = { 0 }, lat = { 0 };
	uint64_t sent_total = 0;
	int r, st;

	memset(res, 0, sizeof(*res));
	if (kind != P_DIRECT) {
		r = fwd_start(b, &f, kind);
		if (r < 0) {
			show_stderr(peer_name[kind], f.err_fd);
			if (f.pid > 0)
				stop(f.pid, SIGKILL, 5000);
			fwd_close(&f);
			return r;
		}
	} else {
		r = probe(b, ip, peer_port[kind], 5000);
		if (r < 0)
			return r;
	}
	r = 0;
	if (b->o.warm_secs > 0) {
		r = run_dnsperf(b, ip, peer_port[kind], b->o.warm_secs, 0, false, &warm);
		sent_total += warm.sent;
	}
	if (r == 0)
		r = phase(b, kind, f.pid, b->o.secs, 0, &sat, &s0, &s1, &res->other, &sent_total);
	if (r == 0 && b->o.lat_secs > 0)
		r = phase(b, kind, f.pid, b->o.lat_secs, b->o.rate, &lat, &l0, &l1, &res->lat_other,
			  &sent_total);
	if (r == 0) {
		double tot_b = (double)(s1.total[1] - s0.total[1]);
		double tot_a = (double)(s1.total[0] - s0.total[0]);
		double wall = tot_b / (double)b->ticks_per_s;

		res->ran = true;
		res->sent = sat.sent;
		res->completed = sat.completed;
		res->lost = sat.lost;
		res->noerror = sat.noerror;
		res->qps = sat.qps;
		res->avg_us = sat.avg_s * 1e6;
		res->runtime = sat.runtime;
		res->upstream = s1.upstream - s0.upstream;
		res->rcvbuf_errors = s1.rcvbuf - s0.rcvbuf;
		res->fwd_util = tot_b > 0 ? (double)(s1.busy[1] - s0.busy[1]) / tot_b : NAN;
		res->cli_util = tot_a > 0 ? (double)(s1.busy[0] - s0.busy[0]) / tot_a : NAN;
		res->fwd_us_per_q = sat.completed ? (double)(s1.busy[1] - s0.busy[1]) /
							    (double)b->ticks_per_s * 1e6 /
							    (double)sat.completed
						  : NAN;
		res->proc_us_per_q = kind != P_DIRECT && sat.completed
					     ? (double)(s1.proc - s0.proc) /
						       (double)b->ticks_per_s * 1e6 /
						       (double)sat.completed
					     : NAN;
		if (kind != P_DIRECT)
			thread_summary(b, &s0, &s1, wall > 0 ? wall : b->o.secs, res->threads,
				       sizeof(res->threads));
		res->lat_qps = lat.qps;
		res->lat_sent = lat.sent;
		res->lat_completed = lat.completed;
		res->p50 = pct(&lat, 50);
		res->p99 = pct(&lat, 99);
		res->p999 = pct(&lat, 99.9);
	}
	free(lat.lat);
	if (kind != P_DIRECT) {
		st = stop(f.pid, SIGTERM, 15000);
		if (st != 0 && r == 0 && (kind == P_OURS || kind == P_OURS_NULL)) {
			fprintf(stderr, "bench: %s exited with %d after SIGTERM\n", peer_name[kind],
				st);
			show_stderr(peer_name[kind], f.err_fd);
		}
		if (kind == P_OURS && r == 0) {
			check_events(&f, res);
			res->ev_expected = sent_total + (uint64_t)f.probes;
			res->ev_ok = res->ev_queries > 0 &&
				     res->ev_queries == res->ev_stats_queries &&
				     res->ev_queries == res->ev_expected && res->ev_dropped == 0;
		}
		if (r < 0)
			show_stderr(peer_name[kind], f.err_fd);
		fwd_close(&f);
	}
	return r;
}

/* ------------------------------------------------------------------------------ report */

static void print_row(const char *label, const struct result *r)
{
	char cap[32] = "-", usq[32] = "-", pq[32] = "-";

	if (!r->ran) {
		printf("%-10s  (not run)\n", label);
		return;
	}
	if (!isnan(r->proc_us_per_q)) {
		snprintf(cap, sizeof(cap), "%.0f", r->qps / r->fwd_util);
		snprintf(usq, sizeof(usq), "%.2f", r->fwd_us_per_q);
		snprintf(pq, sizeof(pq), "%.2f", r->proc_us_per_q);
	}
	printf("%-10s %9.0f %7.0f %6.1f %6.1f %5.1f%s %7s %7s %9s %7llu %6llu %9llu | %7.0f %6.0f "
	       "%6.0f %7.0f\n",
	       label, r->qps, r->avg_us, 100 * r->fwd_util, 100 * r->cli_util, 100 * r->other,
	       r->other > NOISE_MAX ? "!" : " ", usq, pq, cap, (unsigned long long)r->lost,
	       (unsigned long long)r->rcvbuf_errors, (unsigned long long)r->upstream, r->lat_qps,
	       r->p50, r->p99, r->p999);
	if (r->lat_other > NOISE_MAX)
		printf("%-10s   (latency phase: %.0f%% of a benchmark CPU went to other processes)\n",
		       "", 100 * r->lat_other);
}

static void print_header(void)
{
	printf("%-10s %9s %7s %6s %6s %6s %7s %7s %9s %7s %6s %9s | %7s %6s %6s %7s\n", "peer",
	       "qps", "avg_us", "fwdcpu", "clicpu", "other", "core_us", "proc_us", "qps@100%",
	       "lost", "drops", "upstream", "lat_qps", "p50_us", "p99_us", "p999_us");
}

static double median_of(double *v, unsigned int n)
{
	qsort(v, n, sizeof(double), cmp_dbl);
	if (!n)
		return NAN;
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of every numeric field over the rounds that ran. */
/*
 * The median of every numeric field over the rounds that ran, per phase over the rounds where
 * other processes stayed below NOISE_MAX of the CPUs when there is at least one such round.
 */
static void median_result(struct result *rs, unsigned int n, struct result *m)
{
	double v[MAX_ROUNDS];
	unsigned int k, clean_sat = 0, clean_lat = 0;

	for (unsigned int i = 0; i < n; i++) {
		clean_sat += rs[i].ran && rs[i].other <= NOISE_MAX;
		clean_lat += rs[i].ran && rs[i].lat_other <= NOISE_MAX;
	}
#define MED(field, type, noise, clean)                                           \
	do {                                                                     \
		k = 0;                                                           \
		for (unsigned int i = 0; i < n; i++)                             \
			if (rs[i].ran && (!(clean) || rs[i].noise <= NOISE_MAX)) \
				v[k++] = (double)rs[i].field;                    \
		m->field = (type)median_of(v, k);                                \
	} while (0)
#define SAT(field, type) MED(field, type, other, clean_sat)
#define LAT(field, type) MED(field, type, lat_other, clean_lat)

	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < n; i++)
		m->ran |= rs[i].ran;
	SAT(qps, double);
	SAT(avg_us, double);
	SAT(fwd_util, double);
	SAT(cli_util, double);
	SAT(other, double);
	SAT(fwd_us_per_q, double);
	SAT(proc_us_per_q, double);
	SAT(lost, uint64_t);
	SAT(rcvbuf_errors, uint64_t);
	SAT(upstream, uint64_t);
	LAT(lat_other, double);
	LAT(lat_qps, double);
	LAT(p50, double);
	LAT(p99, double);
	LAT(p999, double);
	m->clean_sat = clean_sat;
	m->clean_lat = clean_lat;
#undef SAT
#undef LAT
#undef MED
}

enum field { F_QPS, F_CORE_US, F_P50, F_P99 };

static double field_of(const struct result *r, enum field f)
{
	switch (f) {
	case F_QPS:
		return r->qps;
	case F_CORE_US:
		return r->fwd_us_per_q;
	case F_P50:
		return r->p50;
	case F_P99:
		return r->p99;
	}
	return NAN;
}

/*
 * Median over the rounds of a/b (or a-b with diff) of one field, both measured in the same
 * round; the per-round values into per (may be NULL).
 */
static double paired(struct result (*res)[MAX_ROUNDS], unsigned int rounds, int a, int b,
		     enum field f, bool diff, char *per, size_t len)
{
	double v[MAX_ROUNDS];
	unsigned int k = 0;
	size_t off = 0;

	if (per && len)
		per[0] = '\0';
	for (unsigned int i = 0; i < rounds; i++) {
		double x, y;

		if (!res[a][i].ran || !res[b][i].ran)
			continue;
		x = field_of(&res[a][i], f);
		y = field_of(&res[b][i], f);
		v[k] = diff ? x - y : x / y;
		if (per && off < len)
			off += (size_t)snprintf(per + off, len - off, diff ? "%s%+.0f" : "%s%.3f",
						k ? " " : "", v[k]);
		k++;
	}
	return median_of(v, k);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_dns [-s secs] [-r rounds] [-c clients] [-q outstanding] "
		"[-R rate] [-L lat-secs] [-w warm-secs] [-p peers] [-A cpu] [-B cpu] [-N tries] "
		"CELLREF [SECONDS]\n");
}

static int parse_peers(const char *list, bool *want)
{
	_cleanup_free_ char *copy = strdup(list);
	char *tok, *save = NULL;

	memset(want, 0, sizeof(bool) * P_COUNT);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < P_COUNT && strcmp(tok, peer_name[k]); k++)
			;
		if (k == P_COUNT) {
			fprintf(stderr, "bench: unknown peer %s\n", tok);
			return -1;
		}
		want[k] = true;
	}
	return 0;
}

static int open_snmp_in(int netns)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	if (home < 0)
		return -1;
	if (netns >= 0 && setns(netns, CLONE_NEWNET) < 0) {
		close(home);
		return -1;
	}
	fd = open("/proc/thread-self/net/snmp", O_RDONLY | O_CLOEXEC);
	if (netns >= 0 && setns(home, CLONE_NEWNET) < 0)
		abort();
	close(home);
	return fd;
}

int main(int argc, char **argv)
{
	struct bench b = { .upstream_pid = -1, .qfile_fd = -1 };
	struct opts *o = &b.o;
	static struct result res[P_COUNT][MAX_ROUNDS], med[P_COUNT];
	char per[256];
	char counter_path[64], ready_s[16], counter_s[16], self[PATH_MAX], *slash;
	_cleanup_close_ int counter_fd = -1;
	int opt, r, ready[2];
	ssize_t l;

	*o = (struct opts){ .secs = 10,
			    .lat_secs = 3,
			    .warm_secs = 1,
			    .rounds = 3,
			    .clients = 8,
			    .outstanding = 128,
			    .rate = 10000,
			    .retries = 2,
			    .cpu_a = 0,
			    .cpu_b = 1 };
	parse_peers("direct,ours,ours-null,dnsdist,dnsmasq", o->want);
	while ((opt = getopt(argc, argv, "s:r:c:q:R:L:w:p:A:B:N:h")) != -1) {
		switch (opt) {
		case 's':
			o->secs = atof(optarg);
			break;
		case 'r':
			o->rounds = (unsigned int)atoi(optarg);
			break;
		case 'c':
			o->clients = (unsigned int)atoi(optarg);
			break;
		case 'q':
			o->outstanding = (unsigned int)atoi(optarg);
			break;
		case 'R':
			o->rate = (unsigned int)atoi(optarg);
			break;
		case 'L':
			o->lat_secs = atof(optarg);
			break;
		case 'w':
			o->warm_secs = atof(optarg);
			break;
		case 'p':
			if (parse_peers(optarg, o->want) < 0)
				return 2;
			break;
		case 'A':
			o->cpu_a = atoi(optarg);
			break;
		case 'B':
			o->cpu_b = atoi(optarg);
			break;
		case 'N':
			o->retries = (unsigned int)atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	o->cellref = argv[optind];
	if (optind + 1 < argc)
		o->secs = atof(argv[optind + 1]);
	if (o->rounds < 1 || o->rounds > MAX_ROUNDS || o->secs <= 0 || o->clients < 1 ||
	    o->outstanding < 1) {
		usage();
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	b.ticks_per_s = sysconf(_SC_CLK_TCK);

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || o->cpu_a == o->cpu_b) {
		fprintf(stderr, "bench: needs 2 CPUs (client+upstream, forwarder): skipped\n");
		return 77;
	}
	if (!executable_exists("/usr/bin/dnsperf")) {
		fprintf(stderr, "bench: dnsperf is not installed (apt-get install dnsperf): "
				"skipped\n");
		return 77;
	}
	if (o->want[P_DNSDIST] && !executable_exists("/usr/bin/dnsdist")) {
		printf("note: dnsdist is not installed (apt-get install dnsdist): not run\n");
		o->want[P_DNSDIST] = false;
	}
	if (o->want[P_DNSMASQ] && !executable_exists("/usr/sbin/dnsmasq")) {
		printf("note: dnsmasq is not installed (apt-get install dnsmasq-base): not run\n");
		o->want[P_DNSMASQ] = false;
	}
	/* dns_upstream sits next to this binary. */
	l = readlink("/proc/self/exe", self, sizeof(self) - 32);
	if (l <= 0)
		return 1;
	self[l] = '\0';
	slash = strrchr(self, '/');
	strcpy(slash + 1, "dns_upstream");
	o->upstream_bin = self;

	r = nstest_topo_up(&b.t);
	if (r) {
		fprintf(stderr, "bench: topology (%s): %s\n", b.t.step, strerror(-r));
		return r == -EPERM ? 77 : 1;
	}
	b.snmp_cell_fd = open_snmp_in(b.t.cell_ns);
	b.snmp_peer_fd = open_snmp_in(-1);
	/* This process only waits: keep it off the forwarder's CPU. */
	{
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o->cpu_a, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}

	b.qfile_fd = memfd_path("queries", b.qfile_path, sizeof(b.qfile_path));
	if (b.qfile_fd < 0 || util_write_all(b.qfile_fd, query_file, strlen(query_file)) < 0)
		return 1;

	/* The upstream, in the peer netns (this one), on the client's CPU. */
	counter_fd = memfd_path("upstream-count", counter_path, sizeof(counter_path));
	if (counter_fd < 0 || ftruncate(counter_fd, 4096) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		return 1;
	b.upstream_count = mmap(NULL, 4096, PROT_READ, MAP_SHARED, counter_fd, 0);
	if (b.upstream_count == MAP_FAILED)
		return 1;
	snprintf(ready_s, sizeof(ready_s), "%d", ready[1]);
	snprintf(counter_s, sizeof(counter_s), "%d", counter_fd);
	b.upstream_pid = spawn(-1, o->cpu_a,
			       (char *[]){ (char *)o->upstream_bin, "10.77.0.1:53", "--ready-fd",
					   ready_s, "--counter-fd", counter_s, NULL },
			       (int[]){ ready[1], counter_fd }, 2, -1, -1);
	close(ready[1]);
	r = b.upstream_pid < 0 ? (int)b.upstream_pid : nstest_wait_byte(ready[0], 5000);
	close(ready[0]);
	if (r < 0) {
		fprintf(stderr, "bench: %s did not start: %s\n", o->upstream_bin, strerror(-r));
		return 1;
	}

	printf("DNS forwarding: dnsperf -T 1 -c %u -q %u for %g s per peer and round (%u "
	       "round%s, after %g s warm-up), then -Q %u -v for %g s (latency)\n",
	       o->clients, o->outstanding, o->secs, o->rounds, o->rounds > 1 ? "s" : "",
	       o->warm_secs, o->rate, o->lat_secs);
	printf("CPU %d: dnsperf (cell netns) + upstream dns_upstream 10.77.0.1:53 (peer netns); "
	       "CPU %d: the forwarder alone, 10.77.0.2:530x in the cell netns -> 10.77.0.1:53\n",
	       o->cpu_a, o->cpu_b);
	printf("queries: 8 (4 names under bench.test., A and AAAA); ours events to a memfd "
	       "(ours) or /dev/null (ours-null)\n\n");

	for (unsigned int round = 0; round < o->rounds; round++) {
		if (o->rounds > 1)
			printf("round %u\n", round + 1);
		print_header();
		/* Odd rounds in reverse order, so that no peer always follows the same one. */
		for (int i = 0; i < P_COUNT; i++) {
			int k = round % 2 ? P_COUNT - 1 - i : i;

			if (!o->want[k])
				continue;
			r = run_peer(&b, (enum peer_kind)k, &res[k][round]);
			if (r < 0) {
				fprintf(stderr, "bench: %s: setup failed: %s\n", peer_name[k],
					strerror(-r));
				stop(b.upstream_pid, SIGKILL, 2000);
				return 1;
			}
			print_row(peer_name[k], &res[k][round]);
			if (res[k][round].threads[0])
				printf("%-10s   threads on CPU %d: %s\n", "", o->cpu_b,
				       res[k][round].threads);
		}
		printf("\n");
	}
	for (int k = 0; k < P_COUNT; k++)
		if (o->want[k])
			median_result(res[k], o->rounds, &med[k]);
	if (o->rounds > 1) {
		printf("median of %u rounds (per phase, of the rounds where other processes took "
		       "<= 5%% of the CPUs, if any)\n",
		       o->rounds);
		print_header();
		for (int k = 0; k < P_COUNT; k++) {
			if (!o->want[k])
				continue;
			print_row(peer_name[k], &med[k]);
			if (med[k].clean_sat < o->rounds || med[k].clean_lat < o->rounds)
				printf("%-10s   (undisturbed rounds: saturating %u, latency %u of %u)\n",
				       "", med[k].clean_sat, med[k].clean_lat, o->rounds);
		}
		printf("\n");
	}
	printf("columns: qps/avg_us from the saturating phase; fwdcpu/clicpu: %% busy of CPU %d "
	       "(forwarder) and CPU %d (dnsperf+upstream);\n"
	       "  core_us: forwarder CPU busy time (softirq included) per answered query; "
	       "proc_us: the forwarder process's own CPU time per query;\n"
	       "  qps@100%%: qps / fwdcpu, what the forwarder would do with its core saturated; "
	       "lost: dnsperf; drops: UDP RcvbufErrors (both netns);\n"
	       "  upstream: queries the upstream answered during the phase; p50/p99/p999: "
	       "latency at lat_qps (fixed rate, same for everyone)\n\n",
	       o->cpu_b, o->cpu_a);

	printf("ratios (goals from the issue), each the median over rounds of the ratio (or "
	       "difference) within the round; [per round]:\n");
	if (o->want[P_OURS] && o->want[P_DNSDIST]) {
		double q =
			paired(res, o->rounds, P_OURS, P_DNSDIST, F_QPS, false, per, sizeof(per));

		printf("  ours/dnsdist qps:              %.3f  (goal >= 1.0; < 0.7 is a defect)%s "
		       "[%s]\n",
		       q,
		       q < 0.7	  ? "  DEFECT"
		       : q >= 1.0 ? "  ok"
				  : "  below goal",
		       per);
		q = paired(res, o->rounds, P_DNSDIST, P_OURS, F_CORE_US, false, per, sizeof(per));
		printf("  ours/dnsdist by CPU per query: %.3f  (dnsdist core_us / ours core_us) [%s]\n",
		       q, per);
	}
	if (o->want[P_OURS] && o->want[P_DIRECT]) {
		double d = paired(res, o->rounds, P_OURS, P_DIRECT, F_P50, true, per, sizeof(per));
		double d99 = paired(res, o->rounds, P_OURS, P_DIRECT, F_P99, true, NULL, 0);

		printf("  ours - direct, p50 latency:    %+.0f us at %u qps (goal < 50 us)%s [%s]; "
		       "p99 %+.0f us\n",
		       d, o->rate, d < 50 ? "  ok" : "  above goal", per, d99);
	}
	/* What the same hop costs the others, in this topology (cross-CPU wake-ups included). */
	for (int k = P_DNSDIST; k <= P_DNSMASQ; k++) {
		double d, d99;

		if (!o->want[k] || !o->want[P_DIRECT])
			continue;
		d = paired(res, o->rounds, k, P_DIRECT, F_P50, true, per, sizeof(per));
		d99 = paired(res, o->rounds, k, P_DIRECT, F_P99, true, NULL, 0);
		printf("  %s - direct, p50 latency: %*s%+.0f us (reference) [%s]; p99 %+.0f us\n",
		       peer_name[k], (int)(9 - strlen(peer_name[k])), "", d, per, d99);
	}
	if (o->want[P_OURS] && o->want[P_OURS_NULL]) {
		double on =
			paired(res, o->rounds, P_OURS, P_OURS_NULL, F_QPS, false, per, sizeof(per));

		printf("  (events off = ours-null: events still formatted and queued, written to "
		       "/dev/null;\n   the proxy has no switch that turns them off)\n");
		printf("  events on/off qps:             %.3f  (events cost %.1f%% of qps; goal "
		       "< 10%%)%s [%s]\n",
		       on, 100 * (1 - on), 1 - on < 0.10 ? "  ok" : "  above goal", per);
		on = paired(res, o->rounds, P_OURS, P_OURS_NULL, F_CORE_US, false, per,
			    sizeof(per));
		printf("  events on/off CPU per query:   %.3f  (events cost %+.1f%% CPU per query) "
		       "[%s]\n",
		       on, 100 * (on - 1), per);
	}
	if (o->want[P_DNSMASQ] && o->want[P_DNSDIST]) {
		double q = paired(res, o->rounds, P_DNSMASQ, P_DNSDIST, F_QPS, false, per,
				  sizeof(per));

		printf("  dnsmasq/dnsdist qps:           %.3f [%s]\n", q, per);
	}
	if (o->want[P_DIRECT] && o->want[P_DNSDIST]) {
		double q =
			paired(res, o->rounds, P_DNSDIST, P_DIRECT, F_QPS, false, per, sizeof(per));

		printf("  dnsdist/direct qps:            %.3f  (direct is the client side's "
		       "ceiling) [%s]\n",
		       q, per);
	}

	if (o->want[P_OURS]) {
		bool all_ok = true, none = false;

		printf("\nevents check (ours, events on):\n");
		for (unsigned int round = 0; round < o->rounds; round++) {
			struct result *x = &res[P_OURS][round];

			printf("  round %u: %llu dns_query events (%llu forwarded, %.0f MB written); "
			       "stats.queries %llu; eventsDropped %llu; queries sent to it %llu "
			       "(dnsperf sent + probes): %s\n",
			       round + 1, (unsigned long long)x->ev_queries,
			       (unsigned long long)x->ev_forwarded, (double)x->ev_bytes / 1e6,
			       (unsigned long long)x->ev_stats_queries,
			       (unsigned long long)x->ev_dropped,
			       (unsigned long long)x->ev_expected, x->ev_ok ? "ok" : "MISMATCH");
			all_ok &= x->ev_ok;
			none |= x->ev_queries == 0;
		}
		if (none) {
			fprintf(stderr, "bench: the proxy wrote no dns_query events: events were "
					"not on\n");
			stop(b.upstream_pid, SIGKILL, 2000);
			return 1;
		}
		if (!all_ok)
			printf("  (a mismatch is a finding about the proxy, not a setup failure)\n");
	}
	stop(b.upstream_pid, SIGKILL, 2000);
	return 0;
}
