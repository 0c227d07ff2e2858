// SPDX-License-Identifier: Apache-2.0
/*
 * Supervisor integration tests that the catalogue (cases/supervisor) cannot hold: a failure
 * injected at every setup step, an event reader slower than the run, and 200 cells back to
 * back. Everything else the supervisor does is a case; each test here says why it is not one.
 * Cells run by `cellref run` with the cellprobe workload, checked from outside (/proc, the
 * "host" network namespace, the lease directory, the events).
 *
 *   test process: fresh netns = the "host"            cell (cellref run)
 *   +-------------------------------------+           +------------------------------+
 *   | cbr0 10.88.0.1/24 (bridge)          |<--veth--->| eth0 10.88.0.x/24, lo        |
 *   |   (flows go to 10.88.0.1, unread)   |           | dns proxy 127.0.0.53:53      |
 *   |                                     |           | flow monitor on eth0 egress  |
 *   +-------------------------------------+           +------------------------------+
 *
 * Every test moves its own process into a fresh netns first, so whatever a test leaves in the
 * network dies with it; the tests still check that nothing was left, because that is the
 * contract. Lease directories are per test and removed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cellnet.h"
#include "fault.h"
#include "netcfg.h"
#include "nstest.h"
#include "tap.h"
#include "util.h"

#define TYPE_PREFIX "dev.cellos.events.cell.observability.v1."
#define GW	    "10.88.0.1"

struct cellrun {
	pid_t pid;
	int out_fd, err_fd, ev_fd, spec_fd;
	int stdin_w; /* the cell's stdin (cellprobe wait-stdin) */
	char out_path[64], err_path[64], ev_path[64], spec_path[64];
	json_t *events; /* array of parsed events, after cellrun_events() */
};

static char state_dir[64];

static const char *cellref(void)
{
	const char *p = getenv("CELLREF");

	if (!p)
		tap_skip("CELLREF is not set (run through meson test)");
	return p;
}

static const char *probe(void)
{
	const char *p = getenv("CELLPROBE");

	if (!p)
		tap_skip("CELLPROBE is not set (run through meson test)");
	return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * The test process ends with _exit (or is killed at its timeout), so atexit would not run:
 * a reaper in a process group of its own removes the lease directory once the test is gone.
 * "Gone" includes every program the test started: the pipe's write end is inherited across
 * exec, so the supervisors (and their workers) hold it too, and EOF comes only when the last
 * process that could still write a lease has ended. A wait on the test alone was not enough:
 * under load, a supervisor still releasing its lease after the reaper's walk left an empty
 * directory in /tmp (issue 13).
 */
static void state_reaper(void)
{
	int p[2], null;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		close(p[1]);
		/* Not meson's output pipe: meson waits for it to close. */
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		while (read(p[0], &c, 1) > 0)
			;
		/* Nothing can write here any more; retry only for a walk the kernel cut short. */
		for (int i = 0; i < 50 && access(state_dir, F_OK) == 0; i++) {
			if (i)
				usleep(200 * 1000);
			nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		}
		_exit(0);
	}
	close(p[0]);
	/* p[1] stays open until this process and every program it starts are gone. */
	if (pid > 0)
		fcntl(p[1], F_SETFD, 0);
}

/* Root, a fresh netns of our own, a lease directory; SKIP when the machine cannot. */
static void setup_host(void)
{
	int err;

	if (geteuid() != 0)
		tap_skip("needs root (namespaces, veth, BPF)");
	err = nstest_enter_fresh_netns();
	if (err == -EPERM)
		tap_skip("cannot create network namespaces here");
	if (!ASSERT_OK(err))
		exit(1);
	/* lo up: local delivery to the bridge's address (unbound, the sinks) goes through it. */
	{
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;

		if (!ASSERT_OK(netcfg_open(-1, &nc)) || !ASSERT_OK(netcfg_link_set_up(nc, 1)))
			exit(1);
	}
	snprintf(state_dir, sizeof(state_dir), "/tmp/cellcheck-cell-XXXXXX");
	if (!ASSERT_TRUE(mkdtemp(state_dir)))
		exit(1);
	state_reaper();
}

/* A bridge with the gateway address, as an operator would have it (the supervisor reuses it). */
static bool bridge_up(void)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_bridge_opts bo = { .name = "cbr0" };
	struct netcfg_link_info li;

	return ASSERT_OK(netcfg_open(-1, &nc)) && ASSERT_OK(netcfg_bridge_add(nc, &bo, NULL)) &&
	       ASSERT_OK(netcfg_link_get(nc, "cbr0", &li)) &&
	       ASSERT_OK(netcfg_addr_add(nc, li.ifindex, 0x0A580001u, 24)) &&
	       ASSERT_OK(netcfg_link_set_up(nc, li.ifindex));
}

/* The spec every test starts from; extra is spliced in before the closing brace. */
static bool write_spec(struct cellrun *r, const char *extra)
{
	char text[4096];
	int n;

	static int seq;

	/* A run id of its own per run: leases belong to runs. */
	n = snprintf(text, sizeof(text),
		     "{\"specVersion\":\"1\",\"cellId\":\"probe-1\",\"runId\":\"run-%d-%d\"%s%s}\n",
		     (int)getpid(), seq++, extra && *extra ? "," : "", extra ? extra : "");
	r->spec_fd = nstest_memfd("spec.json", r->spec_path, sizeof(r->spec_path));
	return ASSERT_OK(r->spec_fd) && ASSERT_OK(util_write_all(r->spec_fd, text, (size_t)n));
}

#define NET_BRIDGE                                                                          \
	"\"network\":{\"mode\":\"bridge\",\"bridge\":\"cbr0\",\"subnet\":\"10.88.0.0/24\"," \
	"\"gateway\":\"" GW "\",\"mtu\":1400}"
#define NET_ROUTED \
	"\"network\":{\"mode\":\"routed\",\"subnet\":\"10.89.0.0/24\",\"gateway\":\"10.89.0.1\"}"
/* Dual-stack: the same with network.ipv6, and the v2 monitor a dual-stack cell's flows need. */
#define NET_BRIDGE6                                                                         \
	"\"network\":{\"mode\":\"bridge\",\"bridge\":\"cbr0\",\"subnet\":\"10.88.0.0/24\"," \
	"\"gateway\":\"" GW "\",\"mtu\":1400,\"ipv6\":{\"subnet\":\"fd00:88::/64\"}}"
#define NET_ROUTED6                                                                 \
	"\"network\":{\"mode\":\"routed\",\"subnet\":\"10.89.0.0/24\",\"gateway\":" \
	"\"10.89.0.1\",\"ipv6\":{\"subnet\":\"fd00:89::/64\"}}"
#define FLOWS_V2 "\"flows\":{\"enabled\":true,\"recordVersion\":2}"
#define DNS_ON	 "\"dns\":{\"upstream\":\"" GW ":53\",\"allow\":[\"example.test\"]}"
#define FLOWS_ON "\"flows\":{\"enabled\":true}"

static bool cellrun_start(struct cellrun *r, const char *extra, char *const *cmd)
{
	char *argv[64];
	int n = 0, in[2];

	memset(r, 0, sizeof(*r));
	r->pid = -1;
	r->stdin_w = -1;
	if (!write_spec(r, extra))
		return false;
	r->out_fd = nstest_memfd("stdout", r->out_path, sizeof(r->out_path));
	r->err_fd = nstest_memfd("stderr", r->err_path, sizeof(r->err_path));
	r->ev_fd = nstest_memfd("events", r->ev_path, sizeof(r->ev_path));
	if (!ASSERT_OK(r->out_fd) || !ASSERT_OK(r->err_fd) || !ASSERT_OK(r->ev_fd) ||
	    !ASSERT_OK(pipe2(in, O_CLOEXEC)))
		return false;
	argv[n++] = (char *)cellref();
	argv[n++] = "run";
	argv[n++] = "--spec";
	argv[n++] = r->spec_path;
	argv[n++] = "--events";
	argv[n++] = r->ev_path;
	argv[n++] = "--state-dir";
	argv[n++] = state_dir;
	argv[n++] = "--";
	for (int i = 0; cmd[i] && n < 62; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	fflush(stdout);
	r->pid = fork();
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(r->out_fd, 1);
		dup2(r->err_fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	r->stdin_w = in[1];
	return ASSERT_GT(r->pid, 0);
}

/* Exit code, 128+signal, or -ETIMEDOUT (then killed). */
static int cellrun_wait(struct cellrun *r, int timeout_ms)
{
	int st;

	util_closep(&r->stdin_w);
	r->stdin_w = -1;
	st = nstest_wait(r->pid, timeout_ms);
	if (st == -ETIMEDOUT) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		return -ETIMEDOUT;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void cellrun_diag(struct cellrun *r)
{
	_cleanup_free_ char *err = nstest_slurp(r->err_fd, NULL);
	_cleanup_free_ char *out = nstest_slurp(r->out_fd, NULL);
	_cleanup_free_ char *ev = nstest_slurp(r->ev_fd, NULL);

	tap_diag("cellref stderr: %s", err ? err : "");
	tap_diag("cell stdout: %.2000s", out ? out : "");
	tap_diag("events: %.4000s", ev ? ev : "");
}

static json_t *cellrun_events(struct cellrun *r)
{
	_cleanup_free_ char *text = nstest_slurp(r->ev_fd, NULL);
	char *save = NULL;

	json_decref(r->events);
	r->events = json_array();
	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		json_error_t e;
		json_t *j = json_loads(l, 0, &e);

		if (!ASSERT_TRUE(j))
			tap_diag("bad event line: %s", l);
		else
			json_array_append_new(r->events, j);
	}
	return r->events;
}

static const char *ev_type(json_t *e)
{
	const char *t = json_string_value(json_object_get(e, "type"));

	return t && strncmp(t, TYPE_PREFIX, strlen(TYPE_PREFIX)) == 0 ? t + strlen(TYPE_PREFIX)
								      : "";
}

/* The data of the n-th event of that type (0-based), or NULL. */
static json_t *ev_data(struct cellrun *r, const char *type, size_t nth)
{
	size_t i;
	json_t *e;

	json_array_foreach(r->events, i, e)
	{
		if (strcmp(ev_type(e), type) == 0 && nth-- == 0)
			return json_object_get(e, "data");
	}
	return NULL;
}

static size_t ev_count(struct cellrun *r, const char *type)
{
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(r->events, i, e) n += strcmp(ev_type(e), type) == 0;
	return n;
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* cell_started first, cell_exited last, each exactly once, and all lines schema-valid. */
static bool lifecycle_ok(struct cellrun *r, const char *status, long long code)
{
	size_t n = json_array_size(r->events);
	json_t *last;
	bool ok;

	if (!ASSERT_GE(n, 2))
		return false;
	last = json_object_get(json_array_get(r->events, n - 1), "data");
	/* Every check runs (and reports) even after one failed. */
	ok = ASSERT_TRUE(strcmp(ev_type(json_array_get(r->events, 0)), "cell_started") == 0);
	ok = ASSERT_TRUE(strcmp(ev_type(json_array_get(r->events, n - 1)), "cell_exited") == 0) &&
	     ok;
	ok = ASSERT_EQ(ev_count(r, "cell_started"), 1) && ok;
	ok = ASSERT_EQ(ev_count(r, "cell_exited"), 1) && ok;
	ok = ASSERT_TRUE(strcmp(str_of(last, "status"), status) == 0) && ok;
	ok = ASSERT_EQ(int_of(last, "exitCode"), code) && ok;
	ok = ASSERT_EQ(nstest_validate_events(r->ev_path), 0) && ok;
	if (!ok)
		tap_diag("cell_exited status=%s exitCode=%lld", str_of(last, "status"),
			 int_of(last, "exitCode"));
	return ok;
}

static void cellrun_close(struct cellrun *r)
{
	util_closep(&r->out_fd);
	util_closep(&r->err_fd);
	util_closep(&r->ev_fd);
	util_closep(&r->spec_fd);
	util_closep(&r->stdin_w);
	json_decref(r->events);
	r->events = NULL;
}

/* ---- host snapshot: what must be the same before and after --------------------------------- */

static char *file_text(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? strdup("") : nstest_slurp(fd, NULL);
}

/* Links (names), addresses, routes, neighbours of the test netns, and the lease directory. */
static char *host_snapshot(void)
{
	char *s = NULL, *dev = file_text("/proc/self/net/dev"),
	     *route = file_text("/proc/self/net/route");
	char *arp = file_text("/proc/self/net/arp");
	char leases[4096] = "", dir[128];
	struct ifaddrs *ifa = NULL;
	char addrs[4096] = "";
	DIR *d;
	struct dirent *e;

	/* Counters change with traffic: keep only the interface names of /proc/net/dev. */
	for (char *p = dev; p && (p = strchr(p, ':'));) {
		*p = '#';
		p++;
		char *nl = strchr(p, '\n');

		if (!nl)
			break;
		memset(p, ' ', (size_t)(nl - p));
		p = nl;
	}
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
			char a[INET_ADDRSTRLEN];

			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
				  sizeof(a));
			snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s=%s ",
				 i->ifa_name, a);
		}
		freeifaddrs(ifa);
	}
	snprintf(dir, sizeof(dir), "%s/leases", state_dir);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock"))
			snprintf(leases + strlen(leases), sizeof(leases) - strlen(leases), "%s ",
				 e->d_name);
	}
	if (d)
		closedir(d);
	if (asprintf(&s, "links:\n%s\naddrs: %s\nroutes:\n%s\nneigh:\n%s\nleases: %s\n", dev, addrs,
		     route, arp, leases) < 0)
		s = NULL;
	free(dev);
	free(route);
	free(arp);
	return s;
}

/*
 * The host as before, within 1 s: the kernel removes a cell's veth pair with its network
 * namespace, asynchronously, after `cellref run` returned (SUP-DOWN-002).
 */
static bool same_host(const char *before)
{
	char *after = NULL;
	bool ok;

	for (int i = 0; i < 100; i++) {
		free(after);
		after = host_snapshot();
		if (after && strcmp(before, after) == 0)
			break;
		usleep(10000);
	}
	ok = ASSERT_TRUE(after && strcmp(before, after) == 0);
	if (!ok)
		tap_diag("host before:\n%s\nhost after:\n%s", before, after ? after : "(null)");
	free(after);
	return ok;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static const char *const sup_faults[] = { "sup.flows", "sup.dns", NULL };

/*
 * A failure at every setup step: a setup_failed event, its exit code, the host as before. Kept:
 * it needs a fault switch at each of cellnet's steps (CELLREF_FAULT, faults build only), which
 * no profile exposes; the cases cover the failures a real host can cause.
 */
TEST_TIMEOUT(failure_at_each_step_rolls_back, 300)
{
	_cleanup_free_ char *before = NULL;
	char faults[64][64];
	size_t n = 0;

	setup_host();
	if (!FAULTS_BUILT)
		tap_skip("fault switches are not compiled in (meson -Dfaults=true)");
	/* No bridge beforehand: the supervisor creates it, so its steps can fail too. */
	before = host_snapshot();
	for (size_t i = 0; cellnet_steps[i] && n < 60; i++)
		snprintf(faults[n++], sizeof(faults[0]), "cellnet.%s", cellnet_steps[i]);
	for (size_t i = 0; sup_faults[i]; i++)
		snprintf(faults[n++], sizeof(faults[0]), "%s", sup_faults[i]);
	for (size_t i = 0; i < n; i++) {
		struct cellrun r;
		int code;
		json_t *d;

		/* The routed mode's own steps need a routed cell, the IPv6 ones a dual-stack one.
		 */
		bool routed = strcmp(faults[i], "cellnet.host_addr") == 0 ||
			      strcmp(faults[i], "cellnet.host_route") == 0 ||
			      strcmp(faults[i], "cellnet.host_addr6") == 0 ||
			      strcmp(faults[i], "cellnet.host_route6") == 0;
		bool dual = faults[i][strlen(faults[i]) - 1] == '6';
		const char *spec = routed ? (dual ? NET_ROUTED6 "," DNS_ON "," FLOWS_V2
						  : NET_ROUTED "," DNS_ON "," FLOWS_ON)
					  : (dual ? NET_BRIDGE6 "," DNS_ON "," FLOWS_V2
						  : NET_BRIDGE "," DNS_ON "," FLOWS_ON);

		setenv("CELLREF_FAULT", faults[i], 1);
		if (!cellrun_start(&r, spec, (char *[]){ "/bin/true", NULL }))
			return;
		code = cellrun_wait(&r, 30000);
		cellrun_events(&r);
		d = ev_data(&r, "cell_setup_failed", 0);
		if (!ASSERT_TRUE(code == 18 || code == 19) || !ASSERT_TRUE(d)) {
			tap_diag("fault %s: exit %d", faults[i], code);
			cellrun_diag(&r);
		}
		lifecycle_ok(&r, "setup_failed", code);
		ASSERT_EQ(ev_count(&r, "cell_running"), 0);
		if (!same_host(before))
			tap_diag("after fault %s", faults[i]);
		cellrun_close(&r);
	}
	unsetenv("CELLREF_FAULT");
}

/*
 * The event output never drops: a reader that is slow still gets everything, in order. Kept:
 * the runner reads a run's sink as fast as it can, so no case can stall the supervisor's sink
 * (the SUP-EVT-006 back-pressure clause is a known gap in fixtures/clauses.json).
 */
TEST_TIMEOUT(slow_event_reader_loses_nothing, 60)
{
	struct cellrun r;
	int p[2];
	char ev_path[64];
	pid_t pid;
	_cleanup_free_ char *lines = NULL;
	size_t len = 0, cap = 0, nlines = 0;

	setup_host();
	if (!bridge_up())
		return;
	if (!ASSERT_OK(pipe2(p, O_CLOEXEC)))
		return;
	/* 600 distinct flows: more than a pipe's 64 KiB of events. */
	char *cmd[1000];
	int n = 0;
	char ports[300][8];

	cmd[n++] = (char *)probe();
	for (int i = 0; i < 300; i++) {
		snprintf(ports[i], sizeof(ports[i]), "%d", 20000 + i);
		cmd[n++] = "udp";
		cmd[n++] = GW;
		cmd[n++] = ports[i];
	}
	cmd[n] = NULL;
	memset(&r, 0, sizeof(r));
	if (!write_spec(&r, NET_BRIDGE "," FLOWS_ON))
		return;
	snprintf(ev_path, sizeof(ev_path), "/proc/self/fd/%d", p[1]);
	char *argv[1020];
	int k = 0;

	argv[k++] = (char *)cellref();
	argv[k++] = "run";
	argv[k++] = "--spec";
	argv[k++] = r.spec_path;
	argv[k++] = "--events";
	argv[k++] = ev_path;
	argv[k++] = "--state-dir";
	argv[k++] = state_dir;
	argv[k++] = "--";
	for (int i = 0; cmd[i]; i++)
		argv[k++] = cmd[i];
	argv[k] = NULL;
	/* The probe's own lines are not TAP: its stdout goes to stderr, as diagnostics. */
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);

	dup2(STDERR_FILENO, STDOUT_FILENO);
	pid = nstest_spawn(argv, &p[1], 1);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(p[1]);
	if (!ASSERT_GT(pid, 0))
		return;
	/* Read slowly: 4 KiB every 5 ms. */
	for (;;) {
		char buf[4096];
		ssize_t got;

		usleep(5000);
		got = read(p[0], buf, sizeof(buf));
		if (got <= 0)
			break;
		if (len + (size_t)got + 1 > cap) {
			cap = (len + (size_t)got + 1) * 2;
			lines = realloc(lines, cap);
		}
		memcpy(lines + len, buf, (size_t)got);
		len += (size_t)got;
	}
	close(p[0]);
	ASSERT_EQ(WEXITSTATUS(nstest_wait(pid, 30000)), 0);
	if (!ASSERT_TRUE(lines))
		return;
	lines[len] = '\0';
	for (size_t i = 0; i < len; i++)
		nlines += lines[i] == '\n';
	ASSERT_TRUE(strstr(lines, "cell_started"));
	/* The last line is cell_exited, and it counts no drops. */
	char *last = lines + len - 1;

	*last = '\0';
	last = strrchr(lines, '\n');
	last = last ? last + 1 : lines;
	ASSERT_TRUE(strstr(last, "cell_exited"));
	ASSERT_TRUE(strstr(last, "\"eventsDropped\":0"));
	ASSERT_TRUE(strstr(last, "\"relayTruncated\":0"));
	ASSERT_GE(nlines, 300);
	json_t *sum = NULL;

	for (char *l = strstr(lines, "flow_monitor_summary"); l; l = NULL) {
		char *s = l, *e = strchr(l, '\n');

		while (s > lines && s[-1] != '\n')
			s--;
		if (e)
			*e = '\0';
		sum = json_loads(s, 0, NULL);
	}
	if (ASSERT_TRUE(sum)) {
		json_t *d = json_object_get(sum, "data");

		ASSERT_EQ(int_of(d, "eventsDropped"), 0);
		ASSERT_GE(int_of(d, "uniqueFlowCount"), 300);
		json_decref(sum);
	}
	cellrun_close(&r);
}

static int count_fds(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return d ? n : -1;
}

/*
 * 200 cells back to back: no links, leases, cgroups or processes pile up; fds stay flat. Kept:
 * the soak counts the supervisor's fds while its cell runs, which no case step can read.
 */
TEST_TIMEOUT(two_hundred_cells_leak_nothing, 600)
{
	_cleanup_free_ char *before = NULL;
	int fds_first = -1, fds_last = -1;
	const char *nstr = getenv("CELLCHECK_CELL_RUNS");
	int runs = nstr ? atoi(nstr) : 200;

	setup_host();
	if (!bridge_up())
		return;
	before = host_snapshot();
	for (int i = 0; i < runs; i++) {
		struct cellrun r;
		int code;

		if (!cellrun_start(&r, NET_BRIDGE "," DNS_ON "," FLOWS_ON,
				   (char *[]){ (char *)probe(), "wait-stdin", NULL }))
			return;
		/* The supervisor's fds while its cell runs, the first and the last time. */
		for (int k = 0; k < 500 && !ev_data(&r, "cell_running", 0); k++) {
			usleep(2000);
			cellrun_events(&r);
		}
		if (i == 0)
			fds_first = count_fds(r.pid);
		if (i == runs - 1)
			fds_last = count_fds(r.pid);
		code = cellrun_wait(&r, 20000);
		if (!ASSERT_EQ(code, 0)) {
			cellrun_diag(&r);
			cellrun_close(&r);
			return;
		}
		cellrun_close(&r);
	}
	ASSERT_GT(fds_first, 0);
	ASSERT_EQ(fds_first, fds_last);
	same_host(before);
}
