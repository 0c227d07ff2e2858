// SPDX-License-Identifier: Apache-2.0
/*
 * Supervisor integration tests: real cells run by `cellref run`, checked from inside (the
 * cellprobe workload reports what it sees) and from outside (/proc of the cell, the "host"
 * network namespace, the lease directory, the events).
 *
 *   test process: fresh netns = the "host"            cell (cellref run)
 *   +-------------------------------------+           +------------------------------+
 *   | cbr0 10.88.0.1/24 (bridge)          |<--veth--->| eth0 10.88.0.x/24, lo        |
 *   |   unbound 10.88.0.1:53 (local zone) |           | dns proxy 127.0.0.53:53      |
 *   |   UDP/TCP sinks for flows           |           | flow monitor on eth0 egress  |
 *   +-------------------------------------+           +------------------------------+
 *
 * Every test moves its own process into a fresh netns first, so whatever a test leaves in the
 * network dies with it; the tests still check that nothing was left, because that is the
 * contract. Lease directories are per test and removed; cgroups are per test and checked gone.
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
#define UNBOUND	    "/usr/sbin/unbound"
#define GETENT	    "/usr/bin/getent"
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
 */
static void state_reaper(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		close(p[1]);
		while (read(p[0], &c, 1) > 0)
			;
		nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		_exit(0);
	}
	close(p[0]);
	/* p[1] stays open, close-on-exec, until this process is gone. */
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

static json_t *probe_report(struct cellrun *r)
{
	_cleanup_free_ char *out = nstest_slurp(r->out_fd, NULL);
	char *save = NULL;

	for (char *l = out ? strtok_r(out, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL);

		if (j && strcmp(str_of(j, "step"), "report") == 0)
			return j;
		json_decref(j);
	}
	return NULL;
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

static bool ns_differs(json_t *rep, const char *name)
{
	char path[64];
	struct stat st;
	long long inside = int_of(json_object_get(rep, "ns"), name);

	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	if (stat(path, &st) < 0)
		return false;
	if (!ASSERT_NE(inside, (long long)st.st_ino))
		tap_diag("namespace %s is the host's", name);
	return inside > 0 && inside != (long long)st.st_ino;
}

static unsigned long long hex_of(json_t *status, const char *key)
{
	return strtoull(str_of(status, key), NULL, 16);
}

/* Every namespace, a user namespace with a map, rlimits, hostname, capabilities, fds 0-2. */
TEST_TIMEOUT(isolation_inside_and_outside, 60)
{
	struct cellrun r;
	json_t *rep, *st, *running;
	char path[64], buf[256];
	int code;

	setup_host();
	if (access("/proc/self/ns/user", F_OK) != 0)
		tap_skip("no user namespaces");
	if (!cellrun_start(&r,
			   "\"namespaces\":[\"net\",\"mount\",\"pid\",\"uts\",\"ipc\",\"user\","
			   "\"cgroup\"],\"hostname\":\"probe-cell\","
			   "\"uidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}],"
			   "\"gidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}],"
			   "\"rlimits\":{\"nofile\":{\"soft\":64,\"hard\":128},"
			   "\"core\":{\"soft\":0,\"hard\":0}},"
			   "\"capabilities\":[\"CAP_NET_BIND_SERVICE\"]",
			   (char *[]){ (char *)probe(), "report", "--", "wait-stdin", NULL }))
		return;
	/* From outside, while it runs: its fds and status in the host's /proc. */
	for (int i = 0; i < 200; i++) {
		cellrun_events(&r);
		if ((running = ev_data(&r, "cell_running", 0)) || ev_data(&r, "cell_exited", 0))
			break;
		usleep(10000);
	}
	running = ev_data(&r, "cell_running", 0);
	if (ASSERT_TRUE(running)) {
		int pid = (int)int_of(running, "pid");
		DIR *d;
		struct dirent *e;
		int nfd = 0;

		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		d = opendir(path);
		while (d && (e = readdir(d)))
			nfd += e->d_name[0] != '.';
		if (d)
			closedir(d);
		ASSERT_EQ(nfd, 3);
		snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (ASSERT_GT(n, 0) && n > 0) {
			buf[n] = '\0';
			ASSERT_TRUE(strstr(buf, "100000") && strstr(buf, "65536"));
		}
	}
	code = cellrun_wait(&r, 30000);
	if (!ASSERT_EQ(code, 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	rep = probe_report(&r);
	if (!ASSERT_TRUE(rep)) {
		cellrun_diag(&r);
		cellrun_close(&r);
		return;
	}
	for (const char *const *ns = (const char *const[]){ "net", "mnt", "pid", "uts", "ipc",
							    "user", "cgroup", NULL };
	     *ns; ns++)
		ns_differs(rep, *ns);
	/* Exactly 0, 1, 2. */
	json_t *fds = json_object_get(rep, "fds");

	ASSERT_EQ(json_array_size(fds), 3);
	for (size_t i = 0; i < 3; i++)
		ASSERT_EQ(json_integer_value(json_array_get(fds, i)), i);
	ASSERT_EQ(int_of(rep, "pid"), 1); /* pid namespace, /proc remounted */
	ASSERT_EQ(int_of(rep, "sid"), 1); /* setsid */
	ASSERT_TRUE(strstr(str_of(rep, "uidMap"), "100000"));
	ASSERT_TRUE(strstr(str_of(rep, "gidMap"), "100000"));
	ASSERT_TRUE(strcmp(str_of(rep, "hostname"), "probe-cell") == 0);
	st = json_object_get(rep, "status");
	ASSERT_TRUE(strcmp(str_of(st, "NoNewPrivs"), "1") == 0);
	ASSERT_EQ(hex_of(st, "CapBnd"), 1ULL << 10);
	ASSERT_EQ(hex_of(st, "CapEff"), 1ULL << 10);
	ASSERT_EQ(hex_of(st, "CapPrm"), 1ULL << 10);
	json_t *nofile = json_object_get(json_object_get(rep, "rlimits"), "nofile");

	ASSERT_EQ(json_integer_value(json_array_get(nofile, 0)), 64);
	ASSERT_EQ(json_integer_value(json_array_get(nofile, 1)), 128);
	json_decref(rep);
	cellrun_close(&r);
}

static char *host_mountinfo(void)
{
	_cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

	return fd < 0 ? strdup("") : nstest_slurp(fd, NULL);
}

/*
 * The filesystem view (SPEC 9.9) in a user namespace, as uid 0 inside (100000 outside): the
 * root read-only (EROFS even for the owner of every mapped file), its own /tmp, the minimal
 * /dev, nothing on the host's /etc afterwards and the host's mounts unchanged.
 */
TEST_TIMEOUT(filesystem_view_in_user_namespace, 60)
{
	static const char *marker = "/etc/cellcheck-escape-test-17";
	struct cellrun r;
	_cleanup_free_ char *before = host_mountinfo(), *after = NULL, *out = NULL;

	if (access("/proc/self/ns/user", F_OK) != 0)
		tap_skip("no user namespaces");
	setup_host();
	if (!cellrun_start(
		    &r,
		    "\"namespaces\":[\"net\",\"mount\",\"pid\",\"uts\",\"ipc\",\"user\"],"
		    "\"uidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}],"
		    "\"gidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}],"
		    "\"user\":{\"uid\":0,\"gid\":0}",
		    (char *[]){
			    "/bin/sh", "-c",
			    "touch /etc/cellcheck-escape-test-17 2>/dev/null && echo etc-written "
			    "|| echo etc-refused; touch /tmp/x /run/x /dev/shm/x && echo "
			    "private-ok; ls /dev | tr '\\n' ' '; echo; ls /proc/self/ns >/dev/null "
			    "&& echo proc-ok",
			    NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 20000), 0))
		cellrun_diag(&r);
	out = nstest_slurp(r.out_fd, NULL);
	if (!ASSERT_TRUE(out &&
			 strstr(out, "etc-refused\nprivate-ok\nfd full null ptmx pts random "
				     "shm stderr stdin stdout tty urandom zero \nproc-ok\n")))
		cellrun_diag(&r);
	ASSERT_TRUE(access(marker, F_OK) < 0 && errno == ENOENT);
	after = host_mountinfo();
	ASSERT_TRUE(before && after && strcmp(before, after) == 0);
	cellrun_close(&r);
}

/* A non-root workload without a user namespace: no capabilities anywhere, its own ids. */
TEST(unprivileged_workload_has_no_capabilities)
{
	struct cellrun r;
	json_t *rep, *st;

	setup_host();
	if (!cellrun_start(&r, "\"user\":{\"uid\":4242,\"gid\":4343}",
			   (char *[]){ (char *)probe(), "report", NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 20000), 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	rep = probe_report(&r);
	if (!ASSERT_TRUE(rep))
		return;
	st = json_object_get(rep, "status");
	ASSERT_TRUE(strncmp(str_of(st, "Uid"), "4242", 4) == 0);
	ASSERT_TRUE(strncmp(str_of(st, "Gid"), "4343", 4) == 0);
	ASSERT_EQ(hex_of(st, "CapEff"), 0);
	ASSERT_EQ(hex_of(st, "CapPrm"), 0);
	ASSERT_EQ(hex_of(st, "CapBnd"), 0);
	ASSERT_EQ(hex_of(st, "CapAmb"), 0);
	ASSERT_TRUE(strcmp(str_of(st, "NoNewPrivs"), "1") == 0);
	json_decref(rep);
	cellrun_close(&r);
}

/* Address, prefix, MTU, default route, resolv.conf read-only and naming the proxy. */
TEST_TIMEOUT(network_address_route_resolv, 60)
{
	struct cellrun r;
	json_t *rep, *addrs, *a, *running;
	size_t i;
	bool found = false;
	_cleanup_free_ char *before = NULL;

	setup_host();
	before = host_snapshot();
	/* As uid 0: only the read-only mount, not the file's owner, may refuse (EROFS). */
	if (!cellrun_start(&r, NET_BRIDGE "," DNS_ON ",\"user\":{\"uid\":0,\"gid\":0}",
			   (char *[]){ (char *)probe(), "report", NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 30000), 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	running = ev_data(&r, "cell_running", 0);
	ASSERT_TRUE(running && strcmp(str_of(running, "address"), "10.88.0.2") == 0);
	rep = probe_report(&r);
	if (!ASSERT_TRUE(rep)) {
		cellrun_diag(&r);
		return;
	}
	addrs = json_object_get(rep, "addrs");
	json_array_foreach(addrs, i, a)
	{
		if (strcmp(str_of(a, "ifname"), "eth0") == 0) {
			found = true;
			ASSERT_TRUE(strcmp(str_of(a, "addr"), "10.88.0.2") == 0);
			ASSERT_EQ(int_of(a, "prefix"), 24);
			ASSERT_EQ(int_of(a, "mtu"), 1400);
			ASSERT_TRUE(json_is_true(json_object_get(a, "up")));
		}
	}
	ASSERT_TRUE(found);
	/* /proc/net/route: default (00000000) via 10.88.0.1 (0100580A little-endian hex). */
	ASSERT_TRUE(strstr(str_of(rep, "routes"), "eth0\t00000000\t0100580A"));
	ASSERT_TRUE(strstr(str_of(rep, "resolvConf"), "nameserver 127.0.0.53"));
	ASSERT_TRUE(json_is_false(json_object_get(rep, "resolvWritable")));
	ASSERT_EQ(int_of(rep, "resolvOpenErrno"), EROFS);
	json_decref(rep);
	cellrun_close(&r);
	/* The supervisor created the bridge; everything it made is gone, the bridge too. */
	same_host(before);
}

static bool unbound_start(pid_t *pid, int *conf_fd)
{
	char conf_path[64];
	_cleanup_fclose_ FILE *f = NULL;

	if (access(UNBOUND, X_OK) != 0)
		tap_skip("unbound is not installed");
	*conf_fd = nstest_memfd("unbound.conf", conf_path, sizeof(conf_path));
	f = fdopen(dup(*conf_fd), "w");
	if (!ASSERT_TRUE(f))
		return false;
	fprintf(f, "server:\n\tinterface: " GW "\n\tport: 53\n\tdo-ip6: no\n"
		   "\taccess-control: 10.88.0.0/24 allow\n\tchroot: \"\"\n\tusername: \"\"\n"
		   "\tdirectory: \"/\"\n\tpidfile: \"\"\n\tuse-syslog: no\n\tlogfile: \"\"\n"
		   "\tverbosity: 0\n\tnum-threads: 1\n"
		   "\tlocal-zone: \"example.test.\" static\n"
		   "\tlocal-data: \"example.test. 300 IN SOA ns.example.test. admin.example.test. "
		   "1 3600 600 86400 300\"\n"
		   "\tlocal-data: \"www.example.test. 300 IN A 10.88.0.1\"\n"
		   "\tlocal-zone: \"denied.test.\" static\n"
		   "\tlocal-data: \"www.denied.test. 300 IN A 10.88.0.1\"\n"
		   "remote-control:\n\tcontrol-enable: no\n");
	if (!ASSERT_OK(fflush(f)))
		return false;
	*pid = nstest_spawn((char *const[]){ UNBOUND, "-d", "-c", conf_path, NULL }, NULL, 0);
	if (!ASSERT_GT(*pid, 0))
		return false;
	/* Ready when its UDP socket answers: a probe query for www.example.test. */
	static const unsigned char q[] = { 0x12, 0x34, 1,   0,	 0,   1,   0,	0,   0,
					   0,	 0,    0,   3,	 'w', 'w', 'w', 7,   'e',
					   'x',	 'a',  'm', 'p', 'l', 'e', 4,	't', 'e',
					   's',	 't',  0,   0,	 1,   0,   1 };
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(53),
				 .sin_addr.s_addr = htonl(0x0A580001u) };
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	for (int i = 0; i < 100; i++) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		char buf[512];

		if (sendto(s, q, sizeof(q), 0, (struct sockaddr *)&a, sizeof(a)) > 0 &&
		    poll(&p, 1, 100) == 1 && recv(s, buf, sizeof(buf), 0) > 12)
			return true;
	}
	return ASSERT_TRUE(!"unbound answers on 10.88.0.1:53");
}

static void unbound_stop(pid_t pid, int conf_fd)
{
	kill(pid, SIGTERM);
	if (nstest_wait(pid, 5000) == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(conf_fd);
}

/* getent through glibc's resolver -> resolv.conf -> the proxy -> unbound; one dns_query event. */
TEST_TIMEOUT(getent_resolves_through_the_proxy, 60)
{
	struct cellrun r;
	pid_t ub;
	int conf, code;
	json_t *q;
	_cleanup_free_ char *out = NULL;

	setup_host();
	if (access(GETENT, X_OK) != 0)
		tap_skip("getent is not installed");
	if (!bridge_up() || !unbound_start(&ub, &conf))
		return;
	if (!cellrun_start(&r, NET_BRIDGE "," DNS_ON,
			   (char *[]){ GETENT, "ahostsv4", "www.example.test", NULL }))
		return;
	code = cellrun_wait(&r, 30000);
	if (!ASSERT_EQ(code, 0))
		cellrun_diag(&r);
	out = nstest_slurp(r.out_fd, NULL);
	ASSERT_TRUE(out && strstr(out, "10.88.0.1"));
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	q = ev_data(&r, "dns_query", 0);
	if (ASSERT_TRUE(q)) {
		ASSERT_TRUE(strcmp(str_of(q, "qname"), "www.example.test.") == 0);
		ASSERT_TRUE(strcmp(str_of(q, "decision"), "allow") == 0);
		ASSERT_TRUE(strcmp(str_of(q, "cellId"), "probe-1") == 0);
		ASSERT_EQ(int_of(q, "rcode"), 0);
	}
	/* The worker's own lifecycle is relayed: started before, stats after the queries. */
	ASSERT_EQ(ev_count(&r, "dns_proxy_started"), 1);
	ASSERT_EQ(ev_count(&r, "dns_proxy_stats"), 1);
	unbound_stop(ub, conf);
	cellrun_close(&r);
}

/* A name outside the allowlist: REFUSED to the client, a deny event, getent fails. */
TEST_TIMEOUT(denied_name_is_refused, 60)
{
	struct cellrun r;
	pid_t ub;
	int conf, code;
	json_t *q;

	setup_host();
	if (access(GETENT, X_OK) != 0)
		tap_skip("getent is not installed");
	if (!bridge_up() || !unbound_start(&ub, &conf))
		return;
	if (!cellrun_start(&r, NET_BRIDGE "," DNS_ON,
			   (char *[]){ GETENT, "ahostsv4", "www.denied.test", NULL }))
		return;
	code = cellrun_wait(&r, 30000);
	ASSERT_EQ(code, 2); /* getent: not found */
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 2);
	q = ev_data(&r, "dns_query", 0);
	if (ASSERT_TRUE(q)) {
		ASSERT_TRUE(strcmp(str_of(q, "qname"), "www.denied.test.") == 0);
		ASSERT_TRUE(strcmp(str_of(q, "decision"), "deny") == 0);
		ASSERT_TRUE(strcmp(str_of(q, "reasonCode"), "denied_by_policy") == 0);
		ASSERT_EQ(int_of(q, "rcode"), 5);
	}
	unbound_stop(ub, conf);
	cellrun_close(&r);
}

/* The workload's UDP and TCP flows: flow events, summary count, cell_exited repeats it. */
TEST_TIMEOUT(workload_flows_are_reported, 90)
{
	struct cellrun r;
	json_t *sum, *ex, *e;
	size_t i;
	bool udp = false, tcp = false;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(8080),
				 .sin_addr.s_addr = htonl(0x0A580001u) };
	_cleanup_close_ int ls = -1;

	setup_host();
	if (!bridge_up())
		return;
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_OK(bind(ls, (struct sockaddr *)&a, sizeof(a))) || !ASSERT_OK(listen(ls, 8)))
		return;
	if (!cellrun_start(&r, NET_BRIDGE "," FLOWS_ON,
			   (char *[]){ (char *)probe(), "udp", GW, "9999", "--", "tcp", GW, "8080",
				       "--", "udp", GW, "9999", NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 60000), 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	json_array_foreach(r.events, i, e)
	{
		json_t *d = json_object_get(e, "data");

		if (strcmp(ev_type(e), "network_flow_decision") != 0 ||
		    strcmp(str_of(d, "dstAddr"), GW) != 0)
			continue;
		udp |= int_of(d, "dstPort") == 9999 && strcmp(str_of(d, "protocol"), "udp") == 0;
		tcp |= int_of(d, "dstPort") == 8080 && strcmp(str_of(d, "protocol"), "tcp") == 0;
	}
	ASSERT_TRUE(udp);
	ASSERT_TRUE(tcp);
	sum = ev_data(&r, "flow_monitor_summary", 0);
	ex = ev_data(&r, "cell_exited", 0);
	if (ASSERT_TRUE(sum) && ASSERT_TRUE(ex)) {
		/* Two distinct 5-tuples of ours (the repeated datagram is the same flow). */
		ASSERT_GE(int_of(sum, "uniqueFlowCount"), 2);
		ASSERT_EQ(int_of(ex, "uniqueFlowCount"), int_of(sum, "uniqueFlowCount"));
		ASSERT_EQ(int_of(sum, "uniqueFlowCount"), ev_count(&r, "network_flow_decision"));
	}
	cellrun_close(&r);
}

TEST(exec_failure_is_127_with_an_event)
{
	struct cellrun r;
	json_t *d;

	setup_host();
	if (!cellrun_start(&r, NULL, (char *[]){ "/nonexistent/workload", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r, 20000), 127);
	cellrun_events(&r);
	lifecycle_ok(&r, "exec_failed", 127);
	d = ev_data(&r, "cell_exec_failed", 0);
	if (ASSERT_TRUE(d)) {
		ASSERT_TRUE(strcmp(str_of(d, "errnoName"), "ENOENT") == 0);
		ASSERT_TRUE(strcmp(str_of(d, "command"), "/nonexistent/workload") == 0);
	}
	ASSERT_EQ(ev_count(&r, "cell_running"), 0);
	cellrun_close(&r);
}

TEST(exit_status_and_signal_are_reported)
{
	struct cellrun r;
	json_t *d;

	setup_host();
	if (!cellrun_start(&r, NULL, (char *[]){ (char *)probe(), "exit", "7", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r, 20000), 7);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 7);
	cellrun_close(&r);

	/* Without a pid namespace the workload is not an init: it can kill itself. */
	if (!cellrun_start(&r, "\"namespaces\":[\"net\",\"mount\"]",
			   (char *[]){ (char *)probe(), "kill", "9", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r, 20000), 128 + 9);
	cellrun_events(&r);
	lifecycle_ok(&r, "signaled", 128 + 9);
	d = ev_data(&r, "cell_exited", 0);
	ASSERT_EQ(int_of(d, "signal"), 9);
	cellrun_close(&r);
}

/* SIGTERM to the supervisor reaches the workload through the pidfd. */
TEST(signals_are_forwarded)
{
	struct cellrun r;

	setup_host();
	if (!cellrun_start(&r, "\"namespaces\":[\"net\",\"mount\"]",
			   (char *[]){ (char *)probe(), "sleep", "20000", NULL }))
		return;
	for (int i = 0; i < 200 && !ev_data(&r, "cell_running", 0); i++) {
		usleep(10000);
		cellrun_events(&r);
	}
	ASSERT_TRUE(ev_data(&r, "cell_running", 0));
	kill(r.pid, SIGTERM);
	ASSERT_EQ(cellrun_wait(&r, 10000), 128 + SIGTERM);
	cellrun_events(&r);
	lifecycle_ok(&r, "signaled", 128 + SIGTERM);
	cellrun_close(&r);
}

/* A PID-namespace init ignores SIGTERM without a handler: SIGKILL after the grace period. */
TEST_TIMEOUT(stop_grace_then_sigkill, 60)
{
	struct cellrun r;
	uint64_t t0;

	setup_host();
	if (!cellrun_start(&r, NULL, (char *[]){ (char *)probe(), "sleep", "40000", NULL }))
		return;
	for (int i = 0; i < 200 && !ev_data(&r, "cell_running", 0); i++) {
		usleep(10000);
		cellrun_events(&r);
	}
	ASSERT_TRUE(ev_data(&r, "cell_running", 0));
	t0 = util_now_monotonic_ns();
	kill(r.pid, SIGTERM);
	ASSERT_EQ(cellrun_wait(&r, 30000), 128 + SIGKILL);
	/* 10 s of grace, not much more, and not the workload's 40 s. */
	ASSERT_GE((util_now_monotonic_ns() - t0) / 1000000, 9900);
	ASSERT_LE((util_now_monotonic_ns() - t0) / 1000000, 15000);
	cellrun_events(&r);
	lifecycle_ok(&r, "signaled", 128 + SIGKILL);
	ASSERT_EQ(int_of(ev_data(&r, "cell_exited", 0), "signal"), SIGKILL);
	cellrun_close(&r);
}

/* The unified hierarchy's mount point, or NULL. */
static const char *cgroup2(void)
{
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		return "/sys/fs/cgroup";
	if (access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0)
		return "/sys/fs/cgroup/unified";
	return NULL;
}

/* cgroup placement and limits; the cgroup is gone afterwards. */
TEST(cgroup_placement_and_removal)
{
	struct cellrun r;
	json_t *rep;
	char extra[256], dir[128];

	setup_host();
	if (!cgroup2())
		tap_skip("no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified");
	snprintf(dir, sizeof(dir), "cellcheck-test-%d", (int)getpid());
	snprintf(extra, sizeof(extra), "\"cgroup\":{\"path\":\"%s\",\"pidsMax\":64}", dir);
	if (!cellrun_start(&r, extra, (char *[]){ (char *)probe(), "report", NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 20000), 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	rep = probe_report(&r);
	const char *step = str_of(ev_data(&r, "cell_degraded", 0), "step");

	if (strcmp(step, "cgroup") == 0) {
		/* A machine that does not delegate cgroups: a degradation, then the run goes on. */
		tap_diag("cgroup degraded: %s", str_of(ev_data(&r, "cell_degraded", 0), "message"));
	} else {
		/* Placed (the 0:: line of /proc/self/cgroup), limits applied or degraded alone. */
		ASSERT_TRUE(!*step || strcmp(step, "cgroup_limits") == 0);
		if (*step)
			tap_diag("limits degraded: %s",
				 str_of(ev_data(&r, "cell_degraded", 0), "message"));
		ASSERT_TRUE(rep && strstr(str_of(rep, "cgroup"), dir));
	}
	lifecycle_ok(&r, "exited", 0);
	snprintf(extra, sizeof(extra), "%s/%s", cgroup2(), dir);
	ASSERT_TRUE(access(extra, F_OK) != 0);
	json_decref(rep);
	cellrun_close(&r);
}

/* A requested address that is leased or configured is refused, clearly. */
TEST(leased_address_is_refused)
{
	struct cellrun r1, r2;
	json_t *d;

	setup_host();
	if (!bridge_up())
		return;
	/* An address configured on the host is in use, leased or not. */
	{
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
		struct netcfg_link_info li;

		if (!ASSERT_OK(netcfg_open(-1, &nc)) ||
		    !ASSERT_OK(netcfg_link_get(nc, "cbr0", &li)) ||
		    !ASSERT_OK(netcfg_addr_add(nc, li.ifindex, 0x0A580009u, 24)))
			return;
	}
	if (!cellrun_start(&r1,
			   "\"network\":{\"mode\":\"bridge\",\"bridge\":\"cbr0\",\"subnet\":"
			   "\"10.88.0.0/24\",\"address\":\"10.88.0.9\"}",
			   (char *[]){ "/bin/true", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r1, 20000), 16);
	cellrun_events(&r1);
	d = ev_data(&r1, "cell_setup_failed", 0);
	ASSERT_TRUE(d && strcmp(str_of(d, "step"), "lease") == 0 &&
		    strcmp(str_of(d, "errnoName"), "EADDRINUSE") == 0);
	cellrun_close(&r1);
	/* An address another live run holds. */
	if (!cellrun_start(&r2,
			   "\"network\":{\"mode\":\"bridge\",\"bridge\":\"cbr0\",\"subnet\":"
			   "\"10.88.0.0/24\",\"address\":\"10.88.0.7\"}",
			   (char *[]){ (char *)probe(), "sleep", "3000", NULL }))
		return;
	for (int i = 0; i < 200 && !ev_data(&r2, "cell_running", 0); i++) {
		usleep(10000);
		cellrun_events(&r2);
	}
	ASSERT_TRUE(ev_data(&r2, "cell_running", 0));
	if (!cellrun_start(&r1,
			   "\"network\":{\"mode\":\"bridge\",\"bridge\":\"cbr0\",\"subnet\":"
			   "\"10.88.0.0/24\",\"address\":\"10.88.0.7\"}",
			   (char *[]){ "/bin/true", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r1, 20000), 16);
	cellrun_events(&r1);
	lifecycle_ok(&r1, "setup_failed", 16);
	d = ev_data(&r1, "cell_setup_failed", 0);
	ASSERT_TRUE(d && strcmp(str_of(d, "step"), "lease") == 0 &&
		    strcmp(str_of(d, "errnoName"), "EADDRINUSE") == 0);
	kill(r2.pid, SIGTERM);
	cellrun_wait(&r2, 10000);
	cellrun_close(&r1);
	cellrun_close(&r2);
}

static const char *const sup_faults[] = { "sup.flows", "sup.dns", NULL };

/* A failure at every setup step: a setup_failed event, its exit code, the host as before. */
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

		/* The routed mode's own steps need a routed cell. */
		bool routed = strcmp(faults[i], "cellnet.host_addr") == 0 ||
			      strcmp(faults[i], "cellnet.host_route") == 0;

		setenv("CELLREF_FAULT", faults[i], 1);
		if (!cellrun_start(&r,
				   routed ? NET_ROUTED "," DNS_ON "," FLOWS_ON
					  : NET_BRIDGE "," DNS_ON "," FLOWS_ON,
				   (char *[]){ (char *)probe(), "report", NULL }))
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

/* uid_map failure: a degradation normally, fatal (exit 20) in strict mode. */
TEST_TIMEOUT(degradation_and_strict_mode, 60)
{
	struct cellrun r;
	json_t *d;
	static const char *userns =
		"\"namespaces\":[\"net\",\"mount\",\"pid\",\"user\"],"
		"\"uidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}],"
		"\"gidMap\":[{\"inside\":0,\"outside\":100000,\"count\":65536}]";
	char extra[512];

	setup_host();
	if (!FAULTS_BUILT)
		tap_skip("fault switches are not compiled in (meson -Dfaults=true)");
	setenv("CELLREF_FAULT", "sup.uid_map", 1);
	if (!cellrun_start(&r, userns, (char *[]){ "/bin/true", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r, 20000), 0);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	d = ev_data(&r, "cell_degraded", 0);
	ASSERT_TRUE(d && strcmp(str_of(d, "step"), "uid_map") == 0);
	cellrun_close(&r);

	snprintf(extra, sizeof(extra), "%s,\"strict\":true", userns);
	if (!cellrun_start(&r, extra, (char *[]){ "/bin/true", NULL }))
		return;
	ASSERT_EQ(cellrun_wait(&r, 20000), 20);
	cellrun_events(&r);
	lifecycle_ok(&r, "setup_failed", 20);
	ASSERT_EQ(ev_count(&r, "cell_degraded"), 1);
	ASSERT_EQ(ev_count(&r, "cell_running"), 0);
	cellrun_close(&r);
	unsetenv("CELLREF_FAULT");
}

static int cleanup_run(void)
{
	int saved, st;
	pid_t pid;

	/* Its summary line is not TAP: it goes to stderr, as a diagnostic. */
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	pid = nstest_spawn(
		(char *const[]){ (char *)cellref(), "cleanup", "--state-dir", state_dir, NULL },
		NULL, 0);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	st = pid > 0 ? nstest_wait(pid, 20000) : -1;

	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A process (any thread) whose network namespace has this inode; 0 when none. */
static int ns_holder(ino_t ino)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;

	while (d && !found && (e = readdir(d))) {
		char path[300];
		struct stat st;
		DIR *t;
		struct dirent *te;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", e->d_name);
		t = opendir(path);
		while (t && !found && (te = readdir(t))) {
			char ns[600];

			if (te->d_name[0] == '.')
				continue;
			snprintf(ns, sizeof(ns), "/proc/%s/task/%s/ns/net", e->d_name, te->d_name);
			if (stat(ns, &st) == 0 && st.st_ino == ino)
				found = atoi(e->d_name);
		}
		if (t)
			closedir(t);
	}
	if (d)
		closedir(d);
	return found;
}

/* SIGKILL of the supervisor mid-run, then cleanup: nothing left; the next run works. */
TEST_TIMEOUT(killed_supervisor_then_cleanup, 90)
{
	_cleanup_free_ char *before = NULL;
	struct cellrun r;
	json_t *running;
	int cell_pid = -1;
	struct stat cell_ns;
	char path[64];

	setup_host();
	if (!bridge_up())
		return;
	before = host_snapshot();
	/* A non-root workload: its UID change must not cost it its parent-death signal. */
	if (!cellrun_start(
		    &r, NET_BRIDGE "," DNS_ON "," FLOWS_ON ",\"user\":{\"uid\":1000,\"gid\":1000}",
		    (char *[]){ (char *)probe(), "sleep", "30000", NULL }))
		return;
	for (int i = 0; i < 500 && !ev_data(&r, "cell_running", 0); i++) {
		usleep(10000);
		cellrun_events(&r);
	}
	running = ev_data(&r, "cell_running", 0);
	if (!ASSERT_TRUE(running)) {
		cellrun_diag(&r);
		return;
	}
	cell_pid = (int)int_of(running, "pid");
	snprintf(path, sizeof(path), "/proc/%d/ns/net", cell_pid);
	if (!ASSERT_OK(stat(path, &cell_ns)))
		return;
	kill(r.pid, SIGKILL);
	ASSERT_EQ(cellrun_wait(&r, 10000), 128 + SIGKILL);
	cellrun_close(&r);
	/*
	 * Before any cleanup: the cell and the workers died with their supervisor, and with the
	 * last of them the namespace (and the veth pair in it).
	 */
	for (int i = 0; i < 200 && ns_holder(cell_ns.st_ino) > 0; i++)
		usleep(10000);
	if (!ASSERT_EQ(ns_holder(cell_ns.st_ino), 0))
		tap_diag("pid %d still holds the cell's network namespace",
			 ns_holder(cell_ns.st_ino));
	ASSERT_TRUE(access(path, F_OK) != 0);
	ASSERT_EQ(cleanup_run(), 0);
	for (int i = 0; i < 100; i++) {
		_cleanup_free_ char *now = host_snapshot();

		if (now && strcmp(now, before) == 0)
			break;
		usleep(10000);
	}
	same_host(before);
	/* Idempotent. */
	ASSERT_EQ(cleanup_run(), 0);
	same_host(before);
	if (!cellrun_start(&r, NET_BRIDGE "," DNS_ON "," FLOWS_ON, (char *[]){ "/bin/true", NULL }))
		return;
	if (!ASSERT_EQ(cellrun_wait(&r, 20000), 0))
		cellrun_diag(&r);
	cellrun_events(&r);
	lifecycle_ok(&r, "exited", 0);
	cellrun_close(&r);
	same_host(before);
}

/* The event output never drops: a reader that is slow still gets everything, in order. */
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

/* 200 cells back to back: no links, leases, cgroups or processes pile up; fds stay flat. */
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
