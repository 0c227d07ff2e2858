// SPDX-License-Identifier: Apache-2.0
/*
 * The supervisor's setup steps (SPEC 9.3 to 9.5), in the order of the pipeline in
 * supervisor.h: each records what it made in struct run, so teardown undoes exactly that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "cell.h"
#include "cellclean.h"
#include "cellnet.h"
#include "cellref.h"
#include "cellspec.h"
#include "evout.h"
#include "evt.h"
#include "fault.h"
#include "jw.h"
#include "lease.h"
#include "netcfg.h"
#include "util.h"

#include "supervisor.h"

/* ---- setup steps ----------------------------------------------------------------------------- */

static bool addr_in_use(void *ctx, uint32_t ip)
{
	if (FAULT("sup.lease_ignore_host_addr")) /* only other leases count */
		return false;
	return netcfg_addr_in_use(ctx, ip) > 0;
}

static bool addr6_in_use(void *ctx, const uint8_t ip[16])
{
	return netcfg_addr6_in_use(ctx, ip) > 0;
}

static int write_file(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* One write: proc and cgroup files take a value per write(2). */
	if (write(fd, text, strlen(text)) < 0)
		return -errno;
	return 0;
}

static int write_idmap(pid_t pid, const char *file, const struct cellspec_idmap *m, size_t n)
{
	char path[64], text[4096];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int k = snprintf(text + len, sizeof(text) - len, "%u %u %u\n", m[i].inside,
				 m[i].outside, m[i].count);

		if (k < 0 || (size_t)k >= sizeof(text) - len)
			return -E2BIG;
		len += (size_t)k;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return write_file(path, text);
}

static int setup_userns(struct run *r)
{
	pid_t pid = r->cell.pid;
	char path[64];
	int err;

	if (!(r->spec->ns_flags & CLONE_NEWUSER))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	err = FAULT("sup.setgroups") ? -EPERM : write_file(path, "deny");
	r->ids_unmapped |= err != 0;
	if (err && supevt_degraded(r, "setgroups", err, "cannot deny setgroups"))
		return -1;
	err = FAULT("sup.uid_map")
		      ? -EPERM
		      : write_idmap(pid, "uid_map", r->spec->uid_map, r->spec->n_uid_map);
	r->ids_unmapped |= err != 0;
	if (err && supevt_degraded(r, "uid_map", err, "cannot write uid_map"))
		return -1;
	err = write_idmap(pid, "gid_map", r->spec->gid_map, r->spec->n_gid_map);
	r->ids_unmapped |= err != 0;
	if (err && supevt_degraded(r, "gid_map", err, "cannot write gid_map"))
		return -1;
	return 0;
}

static int cgroup_write(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_file(path, value);
}

static const char *const cgroup_roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };

/* Is controller @name listed in the space-separated list file @dir/@file? */
static bool cgroup_listed(const char *dir, const char *file, const char *name)
{
	char path[PATH_MAX + 32], buf[512];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = util_read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save))
		if (strcmp(t, name) == 0)
			return true;
	return false;
}

/*
 * A limit file exists only where the parent delegates its controller. On a pure cgroup v2 host
 * nobody may have enabled memory, pids or cpu for the root's children (systemd does; a minimal
 * init does not), so enable @ctrl in cgroup.subtree_control of every ancestor of @cell_dir from
 * @root down. Nothing is disabled at teardown: other cgroups may rely on it by then.
 */
static int cgroup_delegate(const char *root, const char *cell_dir, const char *ctrl)
{
	char dir[PATH_MAX], plus[32];
	size_t at = strlen(root);
	int err;

	snprintf(dir, sizeof(dir), "%s", cell_dir);
	snprintf(plus, sizeof(plus), "+%s", ctrl);
	for (;;) {
		char *slash = strchr(dir + at + 1, '/');
		char saved;

		/* dir[0..at) is the ancestor to enable the controller in. */
		saved = dir[at];
		dir[at] = '\0';
		if (!cgroup_listed(dir, "cgroup.subtree_control", ctrl)) {
			err = cgroup_listed(dir, "cgroup.controllers", ctrl)
				      ? cgroup_write(dir, "cgroup.subtree_control", plus)
				      : -ENOTSUP;
			if (err) {
				dir[at] = saved;
				return err;
			}
		}
		dir[at] = saved;
		if (!slash)
			return 0;
		at = (size_t)(slash - dir);
	}
}

static int setup_cgroup(struct run *r)
{
	const struct cellspec *s = r->spec;
	struct statfs sf;
	char pid[16];
	int err;

	if (!s->cgroup_path)
		return 0;
	if (FAULT("sup.cgroup")) {
		err = -EACCES;
		goto degrade;
	}
	/* The unified hierarchy: /sys/fs/cgroup, or its "unified" mount on a hybrid host. */
	const char *root = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(cgroup_roots) && !root; i++) {
		if (statfs(cgroup_roots[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
			root = cgroup_roots[i];
	}
	if (!root) {
		err = -ENOTSUP;
		goto degrade;
	}
	snprintf(r->cgroup_dir, sizeof(r->cgroup_dir), "%s/%s", root, s->cgroup_path);
	if (mkdir(r->cgroup_dir, 0755) == 0) {
		r->cgroup_created = true;
	} else if (errno != EEXIST) {
		err = -errno;
		goto degrade;
	}
	/* The lease names the directory itself, for cleanup after a crash. */
	if (r->cgroup_created) {
		size_t n = strlen(r->cgroup_dir);

		if (n >= sizeof(r->lease.cgroup)) {
			err = -ENAMETOOLONG;
			goto degrade;
		}
		memcpy(r->lease.cgroup, r->cgroup_dir, n + 1);
	}
	struct {
		const char *ctrl, *file, *value;
	} limits[] = { { "memory", "memory.max", s->memory_max },
		       { "pids", "pids.max", s->pids_max },
		       { "cpu", "cpu.max", s->cpu_max } };
	for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
		char what[96];

		if (!limits[i].value)
			continue;
		err = cgroup_delegate(root, r->cgroup_dir, limits[i].ctrl);
		if (err) {
			/* One event naming the controller; its limit cannot be written. */
			snprintf(what, sizeof(what), "cannot enable the %s controller for %s",
				 limits[i].ctrl, limits[i].file);
			if (supevt_degraded(r, "cgroup_limits", err, what))
				return -1;
			continue;
		}
		err = cgroup_write(r->cgroup_dir, limits[i].file, limits[i].value);
		if (err && supevt_degraded(r, "cgroup_limits", err, limits[i].file))
			return -1;
	}
	snprintf(pid, sizeof(pid), "%d", (int)r->cell.pid);
	err = cgroup_write(r->cgroup_dir, "cgroup.procs", pid);
	if (err)
		goto degrade;
	return 0;
degrade:
	return supevt_degraded(r, "cgroup", err, "cannot place the cell in its cgroup") ? -1 : 0;
}

static int setup_affinity(struct run *r)
{
	cpu_set_t set;
	int err = 0;

	if (!r->spec->n_cpus)
		return 0;
	CPU_ZERO(&set);
	for (size_t i = 0; i < r->spec->n_cpus; i++)
		CPU_SET((size_t)r->spec->cpus[i], &set);
	if (FAULT("sup.affinity"))
		err = -EINVAL;
	else if (sched_setaffinity(r->cell.pid, sizeof(set), &set) < 0)
		err = -errno;
	if (err && supevt_degraded(r, "cpu_affinity", err, "cannot set the CPU affinity"))
		return -1;
	return 0;
}

#ifdef CELLREF_FAULTS
/* sup.network_by_program: what a supervisor that shells out to ip(8) would do (never else). */
static void fault_run_ip(void)
{
	extern char **environ;
	char *argv[] = { "ip", "link", "show", NULL }; /* fault-only: sup.network_by_program */
	posix_spawn_file_actions_t fa;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return;
	if (posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) == 0 &&
	    posix_spawnp(&pid, "ip", &fa, NULL, argv, environ) ==
		    0) /* fault-only: sup.network_by_program */
		(void)waitpid(pid, NULL, 0);
	posix_spawn_file_actions_destroy(&fa);
}
#endif

/* The workload's GID as the supervisor's user namespace sees it (gidMap applied, if any). */
static uint32_t outside_gid(const struct cellspec *s)
{
	for (size_t i = 0; i < s->n_gid_map; i++) {
		const struct cellspec_idmap *m = &s->gid_map[i];

		if (s->gid >= m->inside && s->gid - m->inside < m->count)
			return m->outside + (s->gid - m->inside);
	}
	return s->gid;
}

static int setup_network(struct run *r)
{
	const struct cellspec *s = r->spec;
	char alias[160];
	struct cellnet_cfg cfg = {
		.mode = s->net_mode == CELLSPEC_NET_BRIDGE ? CELLNET_BRIDGE : CELLNET_ROUTED,
		.bridge = s->bridge,
		.host_if = r->lease.host_if,
		.cell_if = s->ifname,
		.alias = alias,
		.cell_ip = r->lease.ip,
		.gateway = s->gateway,
		.prefixlen = s->prefixlen,
		.mtu = s->mtu,
		.static_neigh = true,
		/* SUP-NET-011: a v2 monitor records IPv6, so the cell end keeps it; SUP-NET-012: a
		 * dual-stack cell keeps it (the spec asks for v2 whenever it has flows). */
		.ipv6_on = (s->flows_enabled && s->flows_record_version == 2) || s->ipv6,
		.dual = s->ipv6,
		.prefixlen6 = s->prefixlen6,
		.ping = s->ping,
		.ping_gid = outside_gid(s),
	};
	const char *step = NULL;
	uint64_t t0 = util_now_monotonic_ns();
	int err;

	memcpy(cfg.cell_ip6, r->lease6.ip, 16);
	memcpy(cfg.gateway6, s->gateway6, 16);
	snprintf(alias, sizeof(alias), "cellref:%s:%s", s->cell_id, r->run_id);
#ifdef CELLREF_FAULTS
	if (FAULT("sup.network_by_program"))
		fault_run_ip();
#endif
	/* sup.cell_end_via_host: a link named like the cell end appears in the host netns first. */
	if (FAULT("sup.cell_end_via_host") &&
	    netcfg_veth_add(r->host_nc, s->ifname, "ccfault0", -1) == 0)
		(void)netcfg_link_del(r->host_nc, s->ifname);
	err = cellnet_setup(r->host_nc, r->netns_fd, &cfg, &r->net, &step);
	r->net_us = sup_us_since(t0);
	if (err) {
		char detail[96];

		snprintf(detail, sizeof(detail), "network step %s", step ? step : "?");
		return supevt_setup_failed(r, step ? step : "network", r->lease.host_if, err,
					   CELLREF_EXIT_NETWORK, detail);
	}
	return 0;
}

struct dns_socks {
	const struct cellspec *spec;
	int netns_fd;
	int udp, tcp;
	int udp6, tcp6; /* a dual-stack cell's second listener, [::1]:PORT (SUP-DNS-005) */
	int err;
};

/* A UDP socket and a listening TCP socket on one address (IPv6 ones IPv6-only). */
static int bind_pair(const struct sockaddr *a, socklen_t len, int *udp, int *tcp)
{
	int one = 1;

	*udp = socket(a->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	*tcp = socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*udp < 0 || *tcp < 0 ||
	    (a->sa_family == AF_INET6 &&
	     (setsockopt(*udp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	      setsockopt(*tcp, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) ||
	    setsockopt(*tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(*udp, a, len) < 0 || bind(*tcp, a, len) < 0 || listen(*tcp, 128) < 0)
		return -errno;
	return 0;
}

/* Bind inside the cell netns from a thread of its own: the main thread never changes netns. */
static void *bind_thread(void *arg)
{
	struct dns_socks *d = arg;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(d->spec->dns_listen_port),
				 .sin_addr.s_addr = htonl(d->spec->dns_listen_ip) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(d->spec->dns_listen_port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct netcfg *nc = NULL;

	d->err = netcfg_enter_netns(d->netns_fd);
	if (d->err)
		return NULL;
	/* lo carries the proxy's address; the network step finds it up and leaves it so. */
	d->err = netcfg_open(-1, &nc);
	if (!d->err)
		d->err = netcfg_link_set_up(nc, 1);
	netcfg_free(nc);
	if (d->err)
		return NULL;
	d->err = bind_pair((struct sockaddr *)&a, sizeof(a), &d->udp, &d->tcp);
	/* SUP-DNS-005: lo's ::1 exists once lo is up (IPv6 stays on lo in every cell). */
	if (!d->err && d->spec->ipv6 && !FAULT("sup.dns_v6_listener_missing"))
		d->err = bind_pair((struct sockaddr *)&a6, sizeof(a6), &d->udp6, &d->tcp6);
	return NULL;
}

static int make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/* Start a worker whose fds[0] is its event pipe's write end and fds[1] its ready pipe's. */
static int start_worker(struct run *r, const char *sub, const char *const *args, size_t nargs,
			int *extra, size_t nextra, struct cell_worker *w, struct relay *rl,
			int *ready_rd)
{
	int ev[2], ready[2], fds[8], err;
	size_t n = 0;

	err = make_pipe(ev);
	if (err)
		return err;
	err = make_pipe(ready);
	if (err) {
		close(ev[0]);
		close(ev[1]);
		return err;
	}
	fds[n++] = ev[1];
	fds[n++] = ready[1];
	for (size_t i = 0; i < nextra; i++)
		fds[n++] = extra[i];
	err = cell_worker_spawn(r->exe_fd, sub, args, nargs, fds, n, w);
	close(ev[1]);
	close(ready[1]);
	if (err) {
		close(ev[0]);
		close(ready[0]);
		return err;
	}
	(void)fcntl(ev[0], F_SETFL, O_NONBLOCK);
	rl->fd = ev[0];
	rl->len = 0;
	*ready_rd = ready[0];
	return 0;
}

static int start_flows(struct run *r, int *ready_rd)
{
	snprintf(r->ringbuf_text, sizeof(r->ringbuf_text), "%u", r->spec->flows_ringbuf_bytes);
	snprintf(r->table_text, sizeof(r->table_text), "%u", r->spec->flows_table_entries);

	/*
	 * fds: 3 events, 4 ready, 5 netns. Started once the cell end of the veth exists, so the
	 * monitor's first lookup finds it whatever the load: no timer decides whether a cell
	 * starts (a monitor that waited a fixed 5 s for the link failed one cell in four when 260
	 * started at once on two cores).
	 */
	const char *args[24] = { "--ifname",
				 r->spec->ifname,
				 "--netns",
				 "/proc/self/fd/5",
				 "--events",
				 "/proc/self/fd/3",
				 "--ready-fd",
				 "4",
				 "--cell-id",
				 r->spec->cell_id,
				 "--run-id",
				 r->run_id,
				 "--ringbuf-bytes",
				 r->ringbuf_text,
				 "--flow-table-entries",
				 r->table_text };
	size_t n = 16;

	/* sup.monitor_fixed_wait: started before the link, a fixed wait. */
	if (FAULT("sup.monitor_fixed_wait")) {
		args[n++] = "--wait-ifname-ms";
		args[n++] = "300";
	}
	/* Only with flows.unconsidered "drop" (SUP-FLOW-003). */
	if (r->spec->flows_drop_unconsidered)
		args[n++] = "--drop-unconsidered";
	/* SUP-FLOW-004; sup.record_version_ignored leaves the monitor at v1. */
	/* sup.record_version_always_2: a v1 cell's monitor gets it too */
	if ((r->spec->flows_record_version == 2 || FAULT("sup.record_version_always_2")) &&
	    !FAULT("sup.record_version_ignored")) {
		args[n++] = "--record-version";
		args[n++] = "2";
	}

	return start_worker(r, "flow-monitor", args, n, &r->netns_fd, 1, &r->flows, &r->flows_relay,
			    ready_rd);
}

static int start_dns(struct run *r, int *ready_rd)
{
	const struct cellspec *s = r->spec;
	struct dns_socks d = {
		.spec = s, .netns_fd = r->netns_fd, .udp = -1, .tcp = -1, .udp6 = -1, .tcp6 = -1
	};
	char timeout[16], fdtext[5][4];
	const char *args[64 + 2 * 32];
	size_t n = 0, nextra = 0;
	pthread_t t;
	int extra[5], err;

	err = pthread_create(&t, NULL, bind_thread, &d);
	if (err)
		return -err;
	pthread_join(t, NULL);
	if (d.err) {
		util_closep(&d.udp);
		util_closep(&d.tcp);
		util_closep(&d.udp6);
		util_closep(&d.tcp6);
		return d.err;
	}
	/* sup.dns_tcp_by_proxy: no TCP socket passed (netns at fd 6); the proxy binds its own */
	bool tcp = !FAULT("sup.dns_tcp_by_proxy");

	if (!tcp) {
		util_closep(&d.tcp);
		util_closep(&d.tcp6);
	}
	/*
	 * fds: 3 events, 4 ready, then 5 udp, 6 tcp, (7 udp6, 8 tcp6 for a dual-stack cell), and
	 * last the netns (upstream sockets are made in it); the proxy pairs them by address.
	 */
	snprintf(timeout, sizeof(timeout), "%u", s->dns_timeout_ms);
	int listeners[4] = { d.udp, d.tcp, d.udp6, d.tcp6 };
	static const char *const opt[4] = { "--udp-fd", "--tcp-fd", "--udp-fd", "--tcp-fd" };

	for (size_t i = 0; i < 4; i++) {
		if (listeners[i] < 0)
			continue;
		snprintf(fdtext[nextra], sizeof(fdtext[0]), "%zu", 5 + nextra);
		args[n++] = opt[i];
		args[n++] = fdtext[nextra];
		extra[nextra++] = listeners[i];
	}
	snprintf(fdtext[nextra], sizeof(fdtext[0]), "%zu", 5 + nextra);
	extra[nextra++] = r->netns_fd;
	char netns_path[32];

	snprintf(netns_path, sizeof(netns_path), "/proc/self/fd/%s", fdtext[nextra - 1]);
	args[n++] = "--netns";
	args[n++] = netns_path;
	args[n++] = "--events";
	args[n++] = "/proc/self/fd/3";
	args[n++] = "--ready-fd";
	args[n++] = "4";
	/* SUP-DNS-006: as given, an IPv6 one in brackets (the proxy's syntax, DNS-CLI-004) */
	args[n++] = "--upstream";
	args[n++] = s->dns_upstream;
#ifdef CELLREF_FAULTS
	/* sup.dns_upstream6_as_gateway4: an IPv6 upstream becomes the gateway's IPv4, same port */
	char up4[INET_ADDRSTRLEN + 8], gw4[INET_ADDRSTRLEN];
	const char *port6 = strstr(s->dns_upstream, "]:");

	if (port6 && FAULT("sup.dns_upstream6_as_gateway4")) {
		sup_format_ip(s->gateway, gw4);
		snprintf(up4, sizeof(up4), "%s:%s", gw4, port6 + 2);
		args[n - 1] = up4;
	}
#endif
	args[n++] = "--timeout-ms";
	args[n++] = timeout;
	args[n++] = "--cell-id";
	args[n++] = s->cell_id;
	args[n++] = "--run-id";
	/* sup.dns_run_id_other: the proxy's events carry a runId of their own */
	args[n++] = FAULT("sup.dns_run_id_other") ? "run-of-the-proxy" : r->run_id;
	if (!FAULT("sup.dns_args_no_user")) {
		args[n++] = "--user";
		args[n++] = DNS_WORKER_USER;
	}
	for (size_t i = 0; i < s->n_dns_allow && n + 2 <= ARRAY_SIZE(args); i++) {
		args[n++] = "--allow";
		args[n++] = s->dns_allow[i];
	}
	err = start_worker(r, "dns-proxy", args, n, extra, nextra, &r->dns, &r->dns_relay,
			   ready_rd);
	util_closep(&d.udp);
	util_closep(&d.tcp);
	util_closep(&d.udp6);
	util_closep(&d.tcp6);
	return err;
}

/* Wait for a ready byte on each fd in rd[] (-1 entries ignored); -ETIMEDOUT or -ECHILD (EOF). */
static int wait_ready(int *rd, size_t n, size_t *which)
{
	uint64_t deadline = util_now_monotonic_ns() + WORKER_READY_MS * 1000000ULL;
	size_t left = 0;

	for (size_t i = 0; i < n; i++)
		left += rd[i] >= 0;
	while (left) {
		struct pollfd p[2];
		int64_t ms = (int64_t)(deadline - util_now_monotonic_ns()) / 1000000;

		if (ms <= 0)
			return -ETIMEDOUT;
		for (size_t i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = rd[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, (int)ms) < 0 && errno != EINTR)
			return -errno;
		for (size_t i = 0; i < n; i++) {
			char c;

			if (rd[i] < 0 || !p[i].revents)
				continue;
			*which = i;
			/* sup.ready_ignored: gone without the byte counts as ready */
			if (read(rd[i], &c, 1) != 1 && !FAULT("sup.ready_ignored"))
				return -ECHILD;
			util_closep(&rd[i]);
			rd[i] = -1;
			left--;
		}
	}
	return 0;
}

static int setup_flows(struct run *r)
{
	int err;

	if (!r->spec->flows_enabled)
		return 0;
	err = FAULT("sup.flows") ? -ENOEXEC : start_flows(r, &r->ready_rd[0]);
	if (err)
		return supevt_setup_failed(r, "flow_monitor", "flow-monitor worker", err,
					   CELLREF_EXIT_WORKER, "cannot start");
	return 0;
}

/*
 * Fault only, sup.release_before_network: a cell with a user namespace is released right after
 * the ids, cgroup and affinity steps, before its network and workers exist. The pause gives its
 * workload time to run into their absence, so the negative control fails the same way on a quiet
 * host and on a loaded one.
 */
static int fault_release_early(struct run *r)
{
	int err;

	if (!(r->spec->ns_flags & CLONE_NEWUSER))
		return 0;
	err = cell_release(&r->cell, r->ids_unmapped);
	if (err)
		return supevt_setup_failed(r, "sync", "sync pipe", err, CELLREF_EXIT_CELL_SETUP,
					   NULL);
	usleep(300000);
	return 0;
}

/*
 * The DNS proxy starts as soon as the cell's netns exists: its exec and startup overlap the
 * ids, cgroup and network steps (it binds on the cell's lo, which bind_thread brings up). The
 * flow monitor starts once the network is built (setup_flows), when the link it watches
 * exists.
 */
static int setup_workers_early(struct run *r)
{
	int err;

	if (FAULT("sup.monitor_fixed_wait") && setup_flows(r))
		return -1;
	if (r->spec->dns_enabled) {
		err = FAULT("sup.dns") ? -ENOEXEC : start_dns(r, &r->ready_rd[1]);
		if (err)
			return supevt_setup_failed(r, "dns_proxy", "dns-proxy worker", err,
						   CELLREF_EXIT_WORKER, "cannot start");
	}
	return 0;
}

/* Both ready bytes (after the network: the monitor attaches to the cell end). */
static int setup_workers(struct run *r)
{
	const char *names[2] = { "flow_monitor", "dns_proxy" };
	size_t which = 0;
	int err;

	err = wait_ready(r->ready_rd, 2, &which);
	util_closep(&r->ready_rd[0]);
	util_closep(&r->ready_rd[1]);
	r->ready_rd[0] = r->ready_rd[1] = -1;
	if (err) {
		/* Its own failure event (if it wrote one) comes through the relay at teardown. */
		return supevt_setup_failed(r, names[which], names[which], err, CELLREF_EXIT_WORKER,
					   err == -ETIMEDOUT ? "not ready in time"
							     : "exited before ready");
	}
	return 0;
}

static int make_resolv(struct run *r)
{
	char text[128], ip[INET_ADDRSTRLEN];
	int fd;

	if (!r->spec->dns_enabled)
		return 0;
	sup_format_ip(r->spec->dns_listen_ip, ip);
	/* SUP-DNS-005: a dual-stack cell's resolver also knows the proxy's IPv6 listener. */
	snprintf(text, sizeof(text), "# cellref: the cell's DNS proxy\nnameserver %s\n%s", ip,
		 r->spec->ipv6 && !FAULT("sup.dns_v6_resolv_missing") ? "nameserver ::1\n" : "");
	fd = cell_file_mount("resolv.conf", text);
	if (fd < 0)
		return fd;
	r->resolv_fd = fd;
	return 0;
}

/*
 * Everything the cell's process needs for its filesystem view, computed here: between clone and
 * exec it may not allocate. Paths of the host's root are absolute; those in the cell's root
 * (mount targets) relative to it, without the leading slash.
 */
/* Append the formatted string to the block b (room checked by the caller); its start. */
__attribute__((format(printf, 3, 4))) static const char *put(char *b, size_t *off, const char *fmt,
							     ...)
{
	const char *start = b + *off;
	va_list ap;

	va_start(ap, fmt);
	*off += (size_t)vsprintf(b + *off, fmt, ap) + 1;
	va_end(ap);
	return start;
}

static int make_fs(struct run *r)
{
	const struct cellspec *s = r->spec;
	const char *pre = s->rootfs ? s->rootfs : "";
	size_t need = 3 * (strlen(pre) + 32), off = 0;
	char *b;

	r->fs.dev_fd = -1;
	for (size_t i = 0; i < s->n_mounts; i++)
		need += strlen(s->mounts[i].target) + 1;
	b = r->fs_strings = malloc(need);
	r->fs_mounts = calloc(s->n_mounts + 1, sizeof(*r->fs_mounts));
	if (!b || !r->fs_mounts)
		return -ENOMEM;
	r->fs.rootfs = s->rootfs;
	r->fs.new_proc = s->ns_flags & CLONE_NEWPID;
	r->fs.proc_path = put(b, &off, "%s/proc", pre);
	r->resolv_stage = put(b, &off, "%s/etc", pre);
	r->resolv_target = put(b, &off, "%s/etc/resolv.conf", pre);
	for (int i = 0; i < CELLSPEC_PLACES_; i++)
		snprintf(r->fs.tmpfs_size[i], sizeof(r->fs.tmpfs_size[i]), "%llu",
			 (unsigned long long)s->tmpfs_bytes[i]);
	for (size_t i = 0; i < s->n_mounts; i++) {
		/* "/a/b/c": target "a/b/c", parent "a/b", base "c" (parent "" under the root) */
		const char *t = s->mounts[i].target + 1, *slash = strrchr(t, '/');
		struct cellfs_mount *m = &r->fs_mounts[i];

		m->source = s->mounts[i].source;
		m->target = t;
		m->base = slash ? slash + 1 : t;
		m->parent = put(b, &off, "%.*s", slash ? (int)(slash - t) : 0, t);
		m->rw = s->mounts[i].rw;
	}
	r->fs.mounts = r->fs_mounts;
	r->fs.n_mounts = s->n_mounts;
	r->fs.fs_uid = s->uid;
	r->fs.fs_gid = s->gid;
	snprintf(r->fs.uid_text, sizeof(r->fs.uid_text), "%u", s->uid);
	snprintf(r->fs.gid_text, sizeof(r->fs.gid_text), "%u", s->gid);
	if (!(s->ns_flags & CLONE_NEWNS))
		return 0;
	r->fs.dev_fd = cellfs_dev_skeleton();
	return r->fs.dev_fd < 0 ? r->fs.dev_fd : 0;
}

static int cap_last(void)
{
	char buf[16] = "";
	_cleanup_close_ int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	unsigned long long v;

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return 40;
	buf[strcspn(buf, "\n")] = '\0';
	return util_parse_u64(buf, 0, 63, &v) == 0 ? (int)v : 40;
}

static void on_report(void *ctx, const struct cell_report *rep)
{
	struct run *r = ctx;
	const char *step = cell_step_name(rep->step);

	switch (rep->kind) {
	case CELL_REPORT_DEGRADED:
		(void)supevt_degraded(r, step, rep->err, "cell setup step skipped");
		break;
	case CELL_REPORT_EXEC:
		r->exec_failed = true;
		cellref_report("run", r->cmd[0], -rep->err, "cannot execute the workload");
		supevt_open(r);
		jw_kv_str(&r->data, "command", r->cmd[0]);
		supevt_kv_err(&r->data, rep->err);
		jw_kv_str(&r->data, "message", strerror(rep->err));
		supevt_emit(r, "cell_exec_failed");
		r->status = "exec_failed";
		r->exit_code = FAULT("sup.exec_status") ? 126 : 127;
		break;
	default:
		(void)supevt_setup_failed(r, step, step, -rep->err, CELLREF_EXIT_CELL_SETUP,
					  "cell setup step failed");
		break;
	}
}

struct reap_ctx {
	struct netcfg *nc;
	struct cellclean_stats st;
};

static int reap_stale(void *ctx, const struct lease *l)
{
	struct reap_ctx *rc = ctx;

	return cellclean_lease(rc->nc, l, &rc->st);
}

/* SUP-LEASE-008: the IPv6 address of a dual-stack cell, under the same lock as the IPv4 one. */
static int take_lease6(struct run *r)
{
	static const uint8_t zero[16];
	const struct cellspec *s = r->spec;
	char ip[INET6_ADDRSTRLEN], pool[INET6_ADDRSTRLEN + 4], detail[96];
	int err;

	snprintf(r->lease6.cell_id, sizeof(r->lease6.cell_id), "%s", s->cell_id);
	snprintf(r->lease6.run_id, sizeof(r->lease6.run_id), "%s", r->run_id);
	err = lease_acquire6(r->state_dir, s->subnet6, s->prefixlen6, s->gateway6,
			     memcmp(s->address6, zero, 16) ? s->address6 : NULL, addr6_in_use,
			     r->host_nc, &r->lease6);
	if (err == 0) {
		r->leased6 = true;
		return 0;
	}
	sup_format_ip6(s->subnet6, ip);
	snprintf(pool, sizeof(pool), "%s/%u", ip, s->prefixlen6);
	if (memcmp(s->address6, zero, 16))
		sup_format_ip6(s->address6, ip);
	snprintf(detail, sizeof(detail), "%s",
		 err == -EADDRINUSE ? "IPv6 address already leased or in use"
				    : "cannot take an IPv6 lease");
	if (err == -EADDRNOTAVAIL)
		snprintf(detail, sizeof(detail), "no free IPv6 address in the subnet %s", pool);
	return supevt_setup_failed(r, "lease", memcmp(s->address6, zero, 16) ? ip : pool, err,
				   CELLREF_EXIT_LEASE, detail);
}

extern char **environ;

static char *const cell_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/",
	"container=cellref", NULL
};

/* The IPv4 address of a cell with a network, or the failure event naming what was asked for. */
static int take_lease(struct run *r)
{
	const struct cellspec *s = r->spec;
	/*
	 * What dead runs left goes first, so their addresses and names are free again: in the
	 * same hold of the lock and the same read of the records as the allocation.
	 */
	struct reap_ctx rc = { .nc = r->host_nc };
	struct lease_reaper reaper = { .fn = reap_stale, .ctx = &rc };
	char ip[INET_ADDRSTRLEN], pool[INET_ADDRSTRLEN + 4], detail[96];
	int err;

	snprintf(r->lease.cell_id, sizeof(r->lease.cell_id), "%s", s->cell_id);
	snprintf(r->lease.run_id, sizeof(r->lease.run_id), "%s", r->run_id);
	err = lease_acquire_reaped(r->state_dir, s->subnet, s->prefixlen, s->gateway, s->address,
				   addr_in_use, r->host_nc, &reaper, &r->lease);
	if (err == 0) {
		r->leased = true;
		return 0;
	}
	/* The object is the address asked for, or the pool it was to come from. */
	sup_format_ip(s->subnet, ip);
	snprintf(pool, sizeof(pool), "%s/%u", ip, s->prefixlen);
	if (s->address)
		sup_format_ip(s->address, ip);
	snprintf(detail, sizeof(detail), "%s",
		 err == -EADDRINUSE ? "address already leased or in use" : "cannot take a lease");
	if (err == -EADDRNOTAVAIL)
		snprintf(detail, sizeof(detail), "no free address in the subnet %s", pool);
	return supevt_setup_failed(r, "lease", s->address ? ip : pool, err, CELLREF_EXIT_LEASE,
				   detail);
}

/* The host side of a cell with a network: rtnetlink, its leases, the host end's name. */
static int setup_host_side(struct run *r)
{
	const struct cellspec *s = r->spec;
	uint16_t salt;
	int err;

	err = netcfg_open(-1, &r->host_nc);
	if (err)
		return supevt_setup_failed(r, "netlink", "rtnetlink", err, CELLREF_EXIT_NETWORK,
					   NULL);
	if (take_lease(r))
		return -1;
	if (s->ipv6 && take_lease6(r))
		return -1;
	/*
	 * The host end's name: the address (unique among live leases) and 16 random bits,
	 * so a veth of the previous holder that the kernel is still removing never clashes.
	 */
	if (getrandom(&salt, sizeof(salt), 0) != sizeof(salt))
		salt = (uint16_t)getpid();
	snprintf(r->lease.host_if, sizeof(r->lease.host_if), "cr%08x%04x", r->lease.ip, salt);
	if (s->net_mode == CELLSPEC_NET_BRIDGE)
		snprintf(r->lease.bridge, sizeof(r->lease.bridge), "%s", s->bridge);
	return 0;
}

/* Stages the cell's resolv.conf and /dev, then clones it; it waits on the sync pipe. */
static int start_cell(struct run *r, struct cell_child_cfg *cc)
{
	const struct cellspec *s = r->spec;
	char path[64];
	int err;

	err = make_resolv(r);
	if (err)
		return supevt_setup_failed(r, "resolv_conf", "resolv.conf tmpfs", err,
					   CELLREF_EXIT_CELL_SETUP, NULL);
	cc->resolv_fd = r->resolv_fd;
	err = make_fs(r);
	if (err)
		return supevt_setup_failed(r, "filesystem", "the cell's /dev", err,
					   CELLREF_EXIT_CELL_SETUP, NULL);
	cc->fs = &r->fs;
	cc->resolv_stage = r->resolv_stage;
	cc->resolv_target = r->resolv_target;

	if (FAULT("sup.ns_ipc_shared"))
		cc->ns_flags &= ~(unsigned long)CLONE_NEWIPC;
	err = cell_clone(cc, &r->cell);
	if (err)
		return supevt_setup_failed(r, "clone", "clone3", err,
					   err == -EPERM ? CELLREF_EXIT_PERM
							 : CELLREF_EXIT_CELL_SETUP,
					   "cannot create the namespaces");
	r->cell_alive = true;
	if (r->leased) {
		r->lease.cell_pid = r->cell.pid;
		(void)lease_proc_start(r->cell.pid, &r->lease.cell_start);
		(void)lease_update(r->state_dir, &r->lease);
	}
	if (s->ns_flags & CLONE_NEWNET) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)r->cell.pid);
		r->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->netns_fd < 0)
			return supevt_setup_failed(r, "netns", path, -errno,
						   CELLREF_EXIT_CELL_SETUP, NULL);
	}
	return 0;
}

/* Lets the cell go on to exec and reads what its own setup steps reported. */
static int release_cell(struct run *r)
{
	int err;

	r->t_release = util_now_monotonic_ns();
	/* sup.unmapped_ids_ignored: 'G' although a map is missing, so the child sets its ids. */
	err = r->cell.sync_fd < 0
		      ? 0
		      : cell_release(&r->cell,
				     r->ids_unmapped && !FAULT("sup.unmapped_ids_ignored"));
	if (err)
		return supevt_setup_failed(r, "sync", "sync pipe", err, CELLREF_EXIT_CELL_SETUP,
					   NULL);
	err = cell_read_reports(&r->cell, on_report, r);
	if (err)
		return supevt_setup_failed(r, "reports", "error pipe", err, CELLREF_EXIT_CELL_SETUP,
					   NULL);
	r->t_exec = util_now_monotonic_ns();
	if (r->status) /* failed in the child: its event is out */
		return -1;
	return 0;
}

/* Each step returns 0, or -1 once the failure event is out. */
int supsetup_run(struct run *r)
{
	const struct cellspec *s = r->spec;
	struct cell_child_cfg cc = {
		.ns_flags = s->ns_flags,
		.argv = r->cmd,
		.envp = FAULT("sup.env_inherited") ? environ : cell_env,
		.hostname = s->hostname[0] ? s->hostname : NULL,
		.rlimits = s->rlimits,
		.n_rlimits = s->n_rlimits,
		.uid = s->uid,
		.gid = s->gid,
		.cap_keep = s->cap_keep,
		.cap_last = cap_last(),
		.no_new_privs = s->no_new_privs,
		.strict = s->strict,
		.stdout_to_stderr = r->events_path && strcmp(r->events_path, "-") == 0 &&
				    !FAULT("sup.stdout_shared"),
	};

	r->exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (r->exe_fd < 0)
		return supevt_setup_failed(r, "self_exe", "/proc/self/exe", -errno,
					   CELLREF_EXIT_FAILURE, NULL);
	if (s->net_mode != CELLSPEC_NET_NONE && setup_host_side(r))
		return -1;
	if (start_cell(r, &cc))
		return -1;
	if (setup_workers_early(r) || setup_userns(r) || setup_cgroup(r) || setup_affinity(r))
		return -1;
	if (FAULT("sup.release_before_network") && fault_release_early(r))
		return -1;
	if (r->leased) {
		(void)lease_update(r->state_dir, &r->lease);
		if (setup_network(r))
			return -1;
		r->lease.bridge_created = cellnet_bridge_created(r->net);
		(void)lease_update(r->state_dir, &r->lease);
	}
	if (!FAULT("sup.monitor_fixed_wait") && setup_flows(r))
		return -1;
	if (setup_workers(r))
		return -1;
	return release_cell(r);
}

/* The cell's cgroup, if the run made one: its processes killed first, then the directory. */
void supsetup_remove_cgroup(struct run *r)
{
	if (!r->cgroup_created)
		return;
	/* Whatever the cell left in it goes first (cgroup.kill is 5.14; older kernels: EBUSY). */
	(void)cgroup_write(r->cgroup_dir, "cgroup.kill", "1");
	for (int i = 0; i < 100; i++) {
		if (rmdir(r->cgroup_dir) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY)
			break;
		usleep(1000);
	}
}
