// SPDX-License-Identifier: Apache-2.0
/*
 * cellref run: the reference cell supervisor (SPEC.md chapter 9).
 *
 *   validate spec -> events: cell_started -> lease -> resolv.conf tmpfs -> clone (waits)
 *   -> DNS proxy worker (re-executed from /proc/self/exe) -> uid/gid maps, cgroup, affinity
 *   (degradations) -> network (cellnet, rolled back on failure) -> flow monitor worker on the
 *   link that now exists -> both ready bytes
 *   -> release -> child reports (degraded / fatal / exec failed) -> cell_running
 *   -> loop { cell pidfd, signals -> cell via pidfd, worker event pipes -> relay }
 *   -> teardown: workers TERM + drain, network, cgroup, lease -> cell_exited (always last)
 *
 * Every resource is recorded in struct run as it is made; teardown undoes what exists, so a
 * failure at any step leaves the host as it was.
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

#define SOURCE		  "/cellref/supervisor"
#define STATE_DIR_DEFAULT "/run/cellref"
/* Only for a worker that neither writes its ready byte nor exits: generous (SUP-WRK-005). */
#define WORKER_READY_MS 60000
#define WORKER_STOP_MS	3000
#define STOP_GRACE_MS	10000
#define EVOUT_MAX_BYTES (64u << 20)
#define DNS_WORKER_USER "65534:65534"
#define RELAY_BUF	65536

struct relay {
	int fd;	      /* read end, non-blocking; -1 after EOF */
	bool discard; /* inside a line too long to be an event: drop up to its newline */
	size_t len;
	char buf[RELAY_BUF];
};

struct run {
	/* options */
	const char *spec_path;
	const char *events_path;
	const char *state_dir;
	char **cmd;

	struct cellspec *spec;
	char run_id[CELLSPEC_ID_MAX];
	struct evt_sink *sink;
	struct evout *out;
	struct jw data, line;
	int sigfd;
	int exe_fd;

	/* what exists, for teardown */
	struct netcfg *host_nc;
	struct lease lease;
	bool leased;
	int resolv_fd;
	struct cellfs_cfg fs; /* the cell's filesystem view, prepared before the clone */
	struct cellfs_mount *fs_mounts;
	char *fs_strings; /* one block for the paths fs and resolv_* point into */
	const char *resolv_stage, *resolv_target;
	struct cell_proc cell;
	bool cell_alive;
	int netns_fd;
	struct cellnet *net;
	char cgroup_dir[PATH_MAX];
	bool cgroup_created;
	struct cell_worker flows, dns;
	struct relay flows_relay, dns_relay;
	int ready_rd[2]; /* ready pipes of the flow monitor and the DNS proxy, until ready */
	char ringbuf_text[16], table_text[16];

	/* results */
	const char *status; /* cell_exited.status */
	int exit_code;
	int workload_status; /* exit status or -1 */
	int term_signal;     /* 0 or the signal that ended the workload */
	uint64_t t_start, t_release, t_exec, t_exit, net_us;
	int64_t unique_flows; /* from the flow monitor's summary, -1 when none */
	uint64_t relay_truncated;
	bool exec_failed;
	bool ids_unmapped; /* a uid/gid map could not be written */
	uint64_t kill_at;  /* monotonic ns: SIGKILL the cell then; 0: no stop pending */
	bool degraded_fatal;
};

/* ---- events ---------------------------------------------------------------------------------- */

static void meta(struct run *r, struct jw *w)
{
	jw_kv_str(w, "schemaVersion", "1.0.0");
	jw_kv_str(w, "cellId", r->spec->cell_id);
	jw_kv_str(w, "runId", r->run_id);
}

static void kv_now(struct jw *w)
{
	char t[EVT_TIME_LEN];

	jw_kv_str(w, "observedAt", evt_format_time(util_now_realtime_ns(), t));
}

/*
 * Close r->data (opened by the caller with meta()), format and queue; lossless. With now, the
 * line is written before this returns (cell_started: nothing may happen before it is out, and
 * nothing is queued yet, so the writer thread is idle); a failed write goes to the queue,
 * which counts it as dropped.
 */
static void emit_now(struct run *r, const char *type, bool now)
{
	kv_now(&r->data);
	jw_obj_close(&r->data);
	jw_reset(&r->line);
	if (!jw_error(&r->data) && evt_format(r->sink, type, jw_text(&r->data), &r->line) == 0 &&
	    (!now || util_write_all(evt_sink_fd(r->sink), jw_text(&r->line), r->line.len) < 0))
		(void)evout_push(r->out, jw_text(&r->line), r->line.len);
	jw_reset(&r->data);
}

static void emit(struct run *r, const char *type)
{
	emit_now(r, type, false);
}

static void open_event(struct run *r)
{
	jw_obj_open(&r->data);
	meta(r, &r->data);
}

static void kv_err(struct jw *w, int err)
{
	int e = err < 0 ? -err : err;

	jw_kv_i64(w, "errno", e);
	jw_kv_str(w, "errnoName", util_errno_name(e));
}

static const char *ns_names[] = { "net", "mount", "pid", "uts", "ipc", "user", "cgroup" };
static const unsigned long ns_flags[] = { CLONE_NEWNET, CLONE_NEWNS,   CLONE_NEWPID,   CLONE_NEWUTS,
					  CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWCGROUP };

static void emit_started(struct run *r)
{
	struct jw *w = &r->data;

	open_event(r);
	jw_kv_i64(w, "supervisorPid", getpid());
	jw_key(w, "command");
	jw_arr_open(w);
	for (char **a = r->cmd; *a; a++)
		jw_str(w, *a);
	jw_arr_close(w);
	jw_key(w, "namespaces");
	jw_arr_open(w);
	for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++) {
		if (r->spec->ns_flags & ns_flags[i])
			jw_str(w, ns_names[i]);
	}
	jw_arr_close(w);
	jw_kv_str(w, "networkMode",
		  r->spec->net_mode == CELLSPEC_NET_BRIDGE   ? "bridge"
		  : r->spec->net_mode == CELLSPEC_NET_ROUTED ? "routed"
							     : "none");
	jw_kv_bool(w, "dns", r->spec->dns_enabled);
	jw_kv_bool(w, "flows", r->spec->flows_enabled);
	jw_kv_bool(w, "strict", r->spec->strict);
	/* sup.started_async: queued like any event, so the setup goes on before it is written */
	emit_now(r, "cell_started", !FAULT("sup.started_async"));
}

/* A setup step failed: event, one stderr line, and the exit code to return. */
static int setup_failed(struct run *r, const char *step, const char *object, int err, int code,
			const char *detail)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s%s%s", strerror(err < 0 ? -err : err), detail ? ": " : "",
		 detail ? detail : "");
	cellref_report("run", object, err, "%s", detail ? detail : "setup failed");
	open_event(r);
	jw_kv_str(&r->data, "step", step);
	kv_err(&r->data, err);
	jw_kv_str(&r->data, "message", msg);
	emit(r, "cell_setup_failed");
	r->status = "setup_failed";
	r->exit_code = code;
	return -1;
}

/* A degradation: an event; in strict mode it ends the setup. */
static int degraded(struct run *r, const char *step, int err, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err < 0 ? -err : err));
	if (!FAULT("sup.degraded_silent")) {
		open_event(r);
		jw_kv_str(&r->data, "step", step);
		kv_err(&r->data, err);
		jw_kv_str(&r->data, "message", msg);
		jw_kv_bool(&r->data, "strict", r->spec->strict);
		emit(r, "cell_degraded");
	}
	if (!r->spec->strict || FAULT("sup.strict_ignored"))
		return 0;
	return setup_failed(r, step, step, err, CELLREF_EXIT_STRICT,
			    "degradation is fatal in strict mode");
}

/* ---- the relay of worker events ------------------------------------------------------------- */

/* The flow monitor's summary carries the unique-flow count cell_exited repeats. */
static void peek_summary(struct run *r, const char *line, size_t len)
{
	json_t *j, *v;

	if (!memmem(line, len, "flow_monitor_summary", 20))
		return;
	j = json_loadb(line, len, 0, NULL);
	if (!j)
		return;
	v = json_object_get(json_object_get(j, "data"), "uniqueFlowCount");
	if (json_is_integer(v))
		r->unique_flows = json_integer_value(v);
	json_decref(j);
}

/* Read what is there; push complete lines. Returns false at EOF (or error). */
static bool relay_read(struct run *r, struct relay *rl)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (rl->len == sizeof(rl->buf)) {
			/* A line longer than the buffer is not an event: none of it goes out. */
			r->relay_truncated++;
			rl->len = 0;
			rl->discard = true;
		}
		n = read(rl->fd, rl->buf + rl->len, sizeof(rl->buf) - rl->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			if (rl->len)
				r->relay_truncated++; /* a worker died mid-line */
			rl->len = 0;
			util_closep(&rl->fd);
			rl->fd = -1;
			return false;
		}
		rl->len += (size_t)n;
		if (rl->discard) {
			char *end = memchr(rl->buf, '\n', rl->len);

			if (!end) {
				rl->len = 0;
				continue;
			}
			rl->discard = false;
			rl->len -= (size_t)(end + 1 - rl->buf);
			memmove(rl->buf, end + 1, rl->len);
		}
		nl = memrchr(rl->buf, '\n', rl->len);
		if (!nl)
			continue;
		size_t whole = (size_t)(nl - rl->buf) + 1;

		for (char *p = rl->buf; p < rl->buf + whole;) {
			char *e = memchr(p, '\n', (size_t)(rl->buf + whole - p));

			peek_summary(r, p, (size_t)(e - p));
			p = e + 1;
		}
		if (!(rl == &r->dns_relay && FAULT("sup.dns_not_relayed")))
			(void)evout_push(r->out, rl->buf, whole);
		memmove(rl->buf, rl->buf + whole, rl->len - whole);
		rl->len -= whole;
	}
}

/* ---- setup steps ----------------------------------------------------------------------------- */

static uint64_t us_since(uint64_t t0)
{
	return (util_now_monotonic_ns() - t0) / 1000;
}

static bool addr_in_use(void *ctx, uint32_t ip)
{
	if (FAULT("sup.lease_ignore_host_addr")) /* only other leases count */
		return false;
	return netcfg_addr_in_use(ctx, ip) > 0;
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
	if (err && degraded(r, "setgroups", err, "cannot deny setgroups"))
		return -1;
	err = FAULT("sup.uid_map")
		      ? -EPERM
		      : write_idmap(pid, "uid_map", r->spec->uid_map, r->spec->n_uid_map);
	r->ids_unmapped |= err != 0;
	if (err && degraded(r, "uid_map", err, "cannot write uid_map"))
		return -1;
	err = write_idmap(pid, "gid_map", r->spec->gid_map, r->spec->n_gid_map);
	r->ids_unmapped |= err != 0;
	if (err && degraded(r, "gid_map", err, "cannot write gid_map"))
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
			if (degraded(r, "cgroup_limits", err, what))
				return -1;
			continue;
		}
		err = cgroup_write(r->cgroup_dir, limits[i].file, limits[i].value);
		if (err && degraded(r, "cgroup_limits", err, limits[i].file))
			return -1;
	}
	snprintf(pid, sizeof(pid), "%d", (int)r->cell.pid);
	err = cgroup_write(r->cgroup_dir, "cgroup.procs", pid);
	if (err)
		goto degrade;
	return 0;
degrade:
	return degraded(r, "cgroup", err, "cannot place the cell in its cgroup") ? -1 : 0;
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
	if (err && degraded(r, "cpu_affinity", err, "cannot set the CPU affinity"))
		return -1;
	return 0;
}

static void format_ip(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
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
		/* SUP-NET-011: a v2 monitor records IPv6, so the cell end keeps it. */
		.ipv6_on = s->flows_enabled && s->flows_record_version == 2,
	};
	const char *step = NULL;
	uint64_t t0 = util_now_monotonic_ns();
	int err;

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
	r->net_us = us_since(t0);
	if (err) {
		char detail[96];

		snprintf(detail, sizeof(detail), "network step %s", step ? step : "?");
		return setup_failed(r, step ? step : "network", r->lease.host_if, err,
				    CELLREF_EXIT_NETWORK, detail);
	}
	return 0;
}

struct dns_socks {
	const struct cellspec *spec;
	int netns_fd;
	int udp, tcp;
	int err;
};

/* Bind inside the cell netns from a thread of its own: the main thread never changes netns. */
static void *bind_thread(void *arg)
{
	struct dns_socks *d = arg;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(d->spec->dns_listen_port),
				 .sin_addr.s_addr = htonl(d->spec->dns_listen_ip) };
	int one = 1;

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
	d->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	d->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->udp < 0 || d->tcp < 0 ||
	    setsockopt(d->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(d->udp, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    bind(d->tcp, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(d->tcp, 128) < 0)
		d->err = -errno;
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
	if (r->spec->flows_record_version == 2 && !FAULT("sup.record_version_ignored")) {
		args[n++] = "--record-version";
		args[n++] = "2";
	}

	return start_worker(r, "flow-monitor", args, n, &r->netns_fd, 1, &r->flows, &r->flows_relay,
			    ready_rd);
}

static int start_dns(struct run *r, int *ready_rd)
{
	const struct cellspec *s = r->spec;
	struct dns_socks d = { .spec = s, .netns_fd = r->netns_fd, .udp = -1, .tcp = -1 };
	char timeout[16];
	const char *args[64 + 2 * 32];
	size_t n = 0;
	pthread_t t;
	int extra[3], err;

	err = pthread_create(&t, NULL, bind_thread, &d);
	if (err)
		return -err;
	pthread_join(t, NULL);
	if (d.err) {
		util_closep(&d.udp);
		util_closep(&d.tcp);
		return d.err;
	}
	/* sup.dns_tcp_by_proxy: no TCP socket passed (netns at fd 6); the proxy binds its own */
	bool tcp = !FAULT("sup.dns_tcp_by_proxy");

	if (!tcp)
		util_closep(&d.tcp);
	/* fds: 3 events, 4 ready, 5 udp, 6 tcp, 7 netns (upstream sockets are made in it) */
	snprintf(timeout, sizeof(timeout), "%u", s->dns_timeout_ms);
	args[n++] = "--udp-fd";
	args[n++] = "5";
	if (tcp) {
		args[n++] = "--tcp-fd";
		args[n++] = "6";
	}
	args[n++] = "--netns";
	args[n++] = tcp ? "/proc/self/fd/7" : "/proc/self/fd/6";
	args[n++] = "--events";
	args[n++] = "/proc/self/fd/3";
	args[n++] = "--ready-fd";
	args[n++] = "4";
	args[n++] = "--upstream";
	args[n++] = s->dns_upstream;
	args[n++] = "--timeout-ms";
	args[n++] = timeout;
	args[n++] = "--cell-id";
	args[n++] = s->cell_id;
	args[n++] = "--run-id";
	args[n++] = r->run_id;
	if (!FAULT("sup.dns_args_no_user")) {
		args[n++] = "--user";
		args[n++] = DNS_WORKER_USER;
	}
	for (size_t i = 0; i < s->n_dns_allow && n + 2 <= ARRAY_SIZE(args); i++) {
		args[n++] = "--allow";
		args[n++] = s->dns_allow[i];
	}
	extra[0] = d.udp;
	extra[1] = tcp ? d.tcp : r->netns_fd;
	extra[2] = r->netns_fd;
	err = start_worker(r, "dns-proxy", args, n, extra, tcp ? 3 : 2, &r->dns, &r->dns_relay,
			   ready_rd);
	close(d.udp);
	close(d.tcp);
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
		return setup_failed(r, "flow_monitor", "flow-monitor worker", err,
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
		return setup_failed(r, "sync", "sync pipe", err, CELLREF_EXIT_CELL_SETUP, NULL);
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
			return setup_failed(r, "dns_proxy", "dns-proxy worker", err,
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
		return setup_failed(r, names[which], names[which], err, CELLREF_EXIT_WORKER,
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
	format_ip(r->spec->dns_listen_ip, ip);
	snprintf(text, sizeof(text), "# cellref: the cell's DNS proxy\nnameserver %s\n", ip);
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
		(void)degraded(r, step, rep->err, "cell setup step skipped");
		break;
	case CELL_REPORT_EXEC:
		r->exec_failed = true;
		cellref_report("run", r->cmd[0], -rep->err, "cannot execute the workload");
		open_event(r);
		jw_kv_str(&r->data, "command", r->cmd[0]);
		kv_err(&r->data, rep->err);
		jw_kv_str(&r->data, "message", strerror(rep->err));
		emit(r, "cell_exec_failed");
		r->status = "exec_failed";
		r->exit_code = FAULT("sup.exec_status") ? 126 : 127;
		break;
	default:
		(void)setup_failed(r, step, step, -rep->err, CELLREF_EXIT_CELL_SETUP,
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

extern char **environ;

static char *const cell_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/",
	"container=cellref", NULL
};

static int setup(struct run *r)
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
	char path[64];
	int err;

	r->exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (r->exe_fd < 0)
		return setup_failed(r, "self_exe", "/proc/self/exe", -errno, CELLREF_EXIT_FAILURE,
				    NULL);
	if (s->net_mode != CELLSPEC_NET_NONE) {
		err = netcfg_open(-1, &r->host_nc);
		if (err)
			return setup_failed(r, "netlink", "rtnetlink", err, CELLREF_EXIT_NETWORK,
					    NULL);
		/*
		 * What dead runs left goes first, so their addresses and names are free again: in
		 * the same hold of the lock and the same read of the records as the allocation.
		 */
		struct reap_ctx rc = { .nc = r->host_nc };
		struct lease_reaper reaper = { .fn = reap_stale, .ctx = &rc };

		snprintf(r->lease.cell_id, sizeof(r->lease.cell_id), "%s", s->cell_id);
		snprintf(r->lease.run_id, sizeof(r->lease.run_id), "%s", r->run_id);
		err = lease_acquire_reaped(r->state_dir, s->subnet, s->prefixlen, s->gateway,
					   s->address, addr_in_use, r->host_nc, &reaper, &r->lease);
		if (err) {
			char ip[INET_ADDRSTRLEN], pool[INET_ADDRSTRLEN + 4], detail[96];

			/* The object is the address asked for, or the pool it was to come from. */
			format_ip(s->subnet, ip);
			snprintf(pool, sizeof(pool), "%s/%u", ip, s->prefixlen);
			if (s->address)
				format_ip(s->address, ip);
			snprintf(detail, sizeof(detail), "%s",
				 err == -EADDRINUSE ? "address already leased or in use"
						    : "cannot take a lease");
			if (err == -EADDRNOTAVAIL)
				snprintf(detail, sizeof(detail), "no free address in the subnet %s",
					 pool);
			return setup_failed(r, "lease", s->address ? ip : pool, err,
					    CELLREF_EXIT_LEASE, detail);
		}
		r->leased = true;
		/*
		 * The host end's name: the address (unique among live leases) and 16 random bits,
		 * so a veth of the previous holder that the kernel is still removing never clashes.
		 */
		uint16_t salt;

		if (getrandom(&salt, sizeof(salt), 0) != sizeof(salt))
			salt = (uint16_t)getpid();
		snprintf(r->lease.host_if, sizeof(r->lease.host_if), "cr%08x%04x", r->lease.ip,
			 salt);
		if (s->net_mode == CELLSPEC_NET_BRIDGE)
			snprintf(r->lease.bridge, sizeof(r->lease.bridge), "%s", s->bridge);
	}
	err = make_resolv(r);
	if (err)
		return setup_failed(r, "resolv_conf", "resolv.conf tmpfs", err,
				    CELLREF_EXIT_CELL_SETUP, NULL);
	cc.resolv_fd = r->resolv_fd;
	err = make_fs(r);
	if (err)
		return setup_failed(r, "filesystem", "the cell's /dev", err,
				    CELLREF_EXIT_CELL_SETUP, NULL);
	cc.fs = &r->fs;
	cc.resolv_stage = r->resolv_stage;
	cc.resolv_target = r->resolv_target;

	if (FAULT("sup.ns_ipc_shared"))
		cc.ns_flags &= ~(unsigned long)CLONE_NEWIPC;
	err = cell_clone(&cc, &r->cell);
	if (err)
		return setup_failed(r, "clone", "clone3", err,
				    err == -EPERM ? CELLREF_EXIT_PERM : CELLREF_EXIT_CELL_SETUP,
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
			return setup_failed(r, "netns", path, -errno, CELLREF_EXIT_CELL_SETUP,
					    NULL);
	}
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

	r->t_release = util_now_monotonic_ns();
	/* sup.unmapped_ids_ignored: 'G' although a map is missing, so the child sets its ids. */
	err = r->cell.sync_fd < 0
		      ? 0
		      : cell_release(&r->cell,
				     r->ids_unmapped && !FAULT("sup.unmapped_ids_ignored"));
	if (err)
		return setup_failed(r, "sync", "sync pipe", err, CELLREF_EXIT_CELL_SETUP, NULL);
	err = cell_read_reports(&r->cell, on_report, r);
	if (err)
		return setup_failed(r, "reports", "error pipe", err, CELLREF_EXIT_CELL_SETUP, NULL);
	r->t_exec = util_now_monotonic_ns();
	if (r->status) /* failed in the child: its event is out */
		return -1;
	return 0;
}

static void emit_running(struct run *r)
{
	struct jw *w = &r->data;
	char ip[INET_ADDRSTRLEN];

	open_event(r);
	jw_kv_i64(w, "pid", r->cell.pid);
	if (r->leased) {
		format_ip(r->lease.ip, ip);
		jw_kv_str(w, "address", ip);
		jw_kv_str(w, "hostInterface", r->lease.host_if);
		jw_kv_str(w, "cellInterface", r->spec->ifname);
		jw_kv_u64(w, "networkSetupUs", r->net_us);
	}
	if (r->spec->dns_enabled) {
		char listen[INET_ADDRSTRLEN + 8];

		format_ip(r->spec->dns_listen_ip, ip);
		snprintf(listen, sizeof(listen), "%s:%u", ip, r->spec->dns_listen_port);
		jw_kv_str(w, "dnsListen", listen);
	}
	jw_kv_u64(w, "setupUs", (r->t_release - r->t_start) / 1000);
	jw_kv_u64(w, "execUs", (r->t_exec - r->t_start) / 1000);
	emit(r, "cell_running");
}

/* ---- running --------------------------------------------------------------------------------- */

static void record_exit(struct run *r, const siginfo_t *si)
{
	r->t_exit = util_now_monotonic_ns();
	r->cell_alive = false;
	if (r->status) /* exec failure or setup failure decided already */
		return;
	if (si->si_code == CLD_EXITED || FAULT("sup.signal_as_exit")) {
		r->status = "exited";
		r->workload_status = si->si_status + (si->si_code == CLD_EXITED ? 0 : 128);
		r->exit_code = r->workload_status;
		/* The workload's own failure reported as the supervisor's success. */
		if (FAULT("sup.exit_code_zero"))
			r->exit_code = 0;
	} else {
		r->status = "signaled";
		r->term_signal = si->si_status;
		r->exit_code = 128 + si->si_status;
	}
}

static int run_loop(struct run *r)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev;
	struct relay *relays[2] = { &r->flows_relay, &r->dns_relay };

	if (ep < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 0 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, r->cell.pidfd, &ev) < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 1 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, r->sigfd, &ev) < 0)
		return -errno;
	/* sup.relay_deferred: worker events wait in their pipes until the teardown drains them. */
	for (int i = 0; i < 2 && !FAULT("sup.relay_deferred"); i++) {
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = 2 + (uint32_t)i };
		if (relays[i]->fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, relays[i]->fd, &ev) < 0)
			return -errno;
	}
	for (;;) {
		struct epoll_event got[8];
		int timeout = -1;

		if (r->kill_at) {
			uint64_t now = util_now_monotonic_ns();

			if (now >= r->kill_at) {
				/* An init that ignores the stop signal: the grace is over. */
				(void)cell_signal(&r->cell, SIGKILL);
				r->kill_at = 0;
				continue;
			}
			timeout = (int)((r->kill_at - now) / 1000000) + 1;
		}
		int n = epoll_wait(ep, got, 8, timeout);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			uint32_t k = got[i].data.u32;

			if (k == 0) {
				siginfo_t si;

				if (cell_try_wait(&r->cell, &si) == 1) {
					record_exit(r, &si);
					return 0;
				}
			} else if (k == 1) {
				struct signalfd_siginfo fsi;

				/* Forwarded through the pidfd: never a recycled PID. */
				while (read(r->sigfd, &fsi, sizeof(fsi)) == sizeof(fsi)) {
					int sig = (int)fsi.ssi_signo;

					/* sup.signal_by_pid: kill(2) on the PID, which may be
					 * recycled */
					if (FAULT("sup.signal_by_pid"))
						(void)kill(r->cell.pid, sig);
					else if (!FAULT("sup.no_forward"))
						(void)cell_signal(&r->cell, sig);
					/* Stop signals get a grace period, then SIGKILL
					 * (SUP-WAIT-003). */
					if (!r->kill_at && sig != SIGUSR1 && sig != SIGUSR2)
						r->kill_at = util_now_monotonic_ns() +
							     (FAULT("sup.stop_grace_short")
								      ? 1000ULL
								      : STOP_GRACE_MS) *
								     1000000ULL;
				}
			} else {
				struct relay *rl = relays[k - 2];
				int fd = rl->fd;

				if (!relay_read(r, rl))
					(void)epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			}
		}
	}
}

/* ---- teardown -------------------------------------------------------------------------------- */

/* TERM both workers, relay their last events until both pipes close, reap. */
static void stop_workers(struct run *r)
{
	struct cell_worker *ws[2] = { &r->flows, &r->dns };
	struct relay *rls[2] = { &r->flows_relay, &r->dns_relay };
	uint64_t deadline = util_now_monotonic_ns() + WORKER_STOP_MS * 1000000ULL;
	siginfo_t si;

	for (int i = 0; i < 2; i++) {
		if (ws[i]->pidfd >= 0)
			(void)cell_worker_signal(ws[i], SIGTERM);
	}
	for (;;) {
		struct pollfd p[2];
		int64_t ms = (int64_t)(deadline - util_now_monotonic_ns()) / 1000000;
		int live = 0;

		for (int i = 0; i < 2; i++) {
			p[i] = (struct pollfd){ .fd = rls[i]->fd, .events = POLLIN };
			live += rls[i]->fd >= 0;
		}
		if (!live || ms <= 0)
			break;
		if (poll(p, 2, (int)ms) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (rls[i]->fd >= 0 && p[i].revents)
				(void)relay_read(r, rls[i]);
		}
	}
	for (int i = 0; i < 2; i++) {
		/* A worker whose pipe is still open after the deadline is stuck: kill it now. */
		unsigned int grace = rls[i]->fd >= 0 ? 0 : WORKER_STOP_MS;

		if (ws[i]->pidfd >= 0)
			(void)cell_worker_stop(ws[i], grace, &si);
		util_closep(&rls[i]->fd);
		rls[i]->fd = -1;
	}
}

static void remove_cgroup(struct run *r)
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

/* The processes first: the workers' last events must precede cell_exited. */
static void teardown_processes(struct run *r)
{
	siginfo_t si;

	if (r->cell_alive) {
		/* Setup failed after the clone: the child dies, whatever it was doing. */
		(void)cell_signal(&r->cell, SIGKILL);
		memset(&si, 0, sizeof(si));
		(void)waitid((idtype_t)3 /* P_PIDFD */, (id_t)r->cell.pidfd, &si, WEXITED);
		r->cell_alive = false;
		r->t_exit = util_now_monotonic_ns();
	}
	stop_workers(r);
}

/* Then the host: network, cgroup, lease (after cell_exited, as SPEC 9.7 orders it). */
static void teardown_host(struct run *r)
{
	if (r->net) {
		/* The processes are gone and the netns fd closes below: the kernel takes the veth.
		 */
		(void)cellnet_release(r->net);
		cellnet_free(r->net);
		r->net = NULL;
	}
	remove_cgroup(r);
	util_closep(&r->netns_fd);
	util_closep(&r->resolv_fd);
	if (r->fs_strings) /* make_fs() ran: dev_fd is an fd or -1 */
		util_closep(&r->fs.dev_fd);
	free(r->fs_mounts);
	free(r->fs_strings);
	r->fs_mounts = NULL;
	r->fs_strings = NULL;
	cell_proc_close(&r->cell);
	if (r->leased)
		(void)lease_release(r->state_dir, r->lease.ip, r->run_id);
	r->leased = false;
}

static void emit_exited(struct run *r, uint64_t teardown_us)
{
	struct jw *w = &r->data;
	uint64_t end = r->t_exit ? r->t_exit : util_now_monotonic_ns();

	open_event(r);
	jw_kv_str(w, "status", r->status ? r->status : "setup_failed");
	jw_kv_i64(w, "exitCode", r->exit_code);
	if (r->workload_status >= 0)
		jw_kv_i64(w, "workloadStatus", r->workload_status);
	if (r->term_signal) {
		jw_kv_i64(w, "signal", r->term_signal);
		jw_kv_str(w, "signalName", sigabbrev_np(r->term_signal) ?: "unknown");
	}
	jw_kv_u64(w, "durationMs", (end - r->t_start) / 1000000);
	if (r->t_exec && r->t_exit)
		jw_kv_u64(w, "runMs", (r->t_exit - r->t_exec) / 1000000);
	jw_kv_u64(w, "teardownUs", teardown_us);
	if (r->unique_flows >= 0 && !FAULT("sup.exited_no_flow_count"))
		jw_kv_i64(w, "uniqueFlowCount", r->unique_flows);
	jw_kv_u64(w, "relayTruncated", r->relay_truncated);
	jw_kv_u64(w, "eventsDropped", evout_dropped(r->out));
	emit(r, "cell_exited");
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fputs("usage: cellref run --spec FILE [--events PATH|-] [--state-dir DIR] -- CMD [ARGS...]\n"
	      "Runs CMD as a cell described by the JSON spec FILE and exits with its status\n"
	      "(128+N when killed by signal N, 127 when it cannot be executed; setup failures\n"
	      "have the codes of SPEC.md Appendix A). Events go to PATH (- for stdout; none\n"
	      "without --events). State (leases) lives in DIR, default $CELLREF_STATE_DIR or\n" STATE_DIR_DEFAULT
	      ". See SPEC.md chapter 9.\n",
	      f);
}

static int parse_args(struct run *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spec", required_argument, NULL, 's' },
		{ "events", required_argument, NULL, 'e' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			r->spec_path = optarg;
			break;
		case 'e':
			r->events_path = optarg;
			break;
		case 'd':
			r->state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(CELLREF_EXIT_OK);
		default:
			if (FAULT("sup.usage_unknown_ignored"))
				break;
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!r->spec_path || optind >= argc) {
		fprintf(stderr, "cellref: run: %s\n",
			!r->spec_path ? "--spec is required" : "no command after --");
		usage(stderr);
		return -EINVAL;
	}
	r->cmd = argv + optind;
	return 0;
}

static void run_free(struct run *r)
{
	jw_free(&r->data);
	jw_free(&r->line);
	evout_free(r->out);
	evt_sink_free(r->sink);
	netcfg_free(r->host_nc);
	cellspec_free(r->spec);
	util_closep(&r->sigfd);
	util_closep(&r->exe_fd);
	util_closep(&r->ready_rd[0]);
	util_closep(&r->ready_rd[1]);
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

int cellref_run_main(int argc, char **argv)
{
	struct run r = {
		.sigfd = -1,
		.exe_fd = -1,
		.resolv_fd = -1,
		.netns_fd = -1,
		.cell = { .pid = -1, .pidfd = -1, .sync_fd = -1, .report_fd = -1 },
		.flows = { .pid = -1, .pidfd = -1 },
		.dns = { .pid = -1, .pidfd = -1 },
		.ready_rd = { -1, -1 },
		.flows_relay.fd = -1,
		.dns_relay.fd = -1,
		.workload_status = -1,
		.unique_flows = -1,
	};
	char err_text[256] = "";
	sigset_t mask;
	uint64_t t_down;
	int err;

	r.t_start = util_now_monotonic_ns();
	/*
	 * Signals for the cell arrive on a signalfd and go on through the pidfd. Blocked before
	 * any thread starts, so no thread of ours can take one with its default action.
	 */
	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&mask, forwarded[i]);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	jw_init(&r.data);
	jw_init(&r.line);
	if (parse_args(&r, argc, argv)) {
		run_free(&r);
		return CELLREF_EXIT_USAGE;
	}
	/* Before the spec and the sink: a user who may not read them still learns why (exit 10). */
	if (geteuid() != 0 && !FAULT("sup.nonroot_runs")) {
		cellref_report("run", "supervisor", -EPERM,
			       "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)");
		run_free(&r);
		return CELLREF_EXIT_PERM;
	}
	r.state_dir = r.state_dir ?: getenv("CELLREF_STATE_DIR") ?: STATE_DIR_DEFAULT;
	err = cellspec_load(r.spec_path, &r.spec, err_text, sizeof(err_text));
	if (err) {
		cellref_report("run", r.spec_path, err, "%s", err_text);
		run_free(&r);
		return FAULT("sup.spec_exit1") ? CELLREF_EXIT_FAILURE : CELLREF_EXIT_USAGE;
	}
	if (r.spec->run_id[0]) {
		snprintf(r.run_id, sizeof(r.run_id), "%s", r.spec->run_id);
	}
	err = r.events_path ? evt_sink_open_path(r.events_path, SOURCE, &r.sink)
			    : evt_sink_open_path("/dev/null", SOURCE, &r.sink);
	if (err) {
		cellref_report("run", r.events_path, err, "cannot open the event sink");
		run_free(&r);
		return CELLREF_EXIT_USAGE;
	}
	if (!r.run_id[0])
		evt_sink_new_id(r.sink, r.run_id);
	err = evout_new(evt_sink_fd(r.sink), EVOUT_MAX_BYTES, &r.out);
	if (err) {
		cellref_report("run", "event writer", err, NULL);
		run_free(&r);
		return CELLREF_EXIT_FAILURE;
	}
	r.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	emit_started(&r);
	if (setup(&r) == 0) {
		emit_running(&r);
		err = run_loop(&r);
		if (err && !r.status) {
			(void)setup_failed(&r, "wait", "event loop", err, CELLREF_EXIT_FAILURE,
					   NULL);
		}
	} else if (r.cell_alive && r.exec_failed) {
		siginfo_t si;

		/* The child reported and exits with 127 itself; reap it. */
		memset(&si, 0, sizeof(si));
		(void)waitid((idtype_t)3 /* P_PIDFD */, (id_t)r.cell.pidfd, &si, WEXITED);
		r.cell_alive = false;
		r.t_exit = util_now_monotonic_ns();
	}
	t_down = util_now_monotonic_ns();
	teardown_processes(&r);
	emit_exited(&r, us_since(t_down));
	teardown_host(&r);
	err = r.exit_code;
	run_free(&r);
	return err;
}
