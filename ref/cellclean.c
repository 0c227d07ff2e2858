// SPDX-License-Identifier: Apache-2.0
#include "cellclean.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault.h"
#include "util.h"

static void note(struct cellclean_stats *st, int err)
{
	if (err && !st->first_err)
		st->first_err = err;
}

/*
 * Kill a process named by pid and start time. The pidfd is opened first and the start time
 * checked after, so the signal can only reach the process the lease names.
 */
static int kill_verified(pid_t pid, unsigned long long start, struct cellclean_stats *st)
{
	/* The fault kills whatever has the PID, a recycled PID included. */
	bool unverified = FAULT("sup.cleanup_kill_unverified");
	_cleanup_close_ int pidfd = -1;
	struct pollfd p;

	if (FAULT("sup.cleanup_no_kill")) /* leave the cell's process running */
		return 0;
	if (pid <= 0 || !start || (!unverified && !lease_proc_alive(pid, start)))
		return 0;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : -errno;
	if (!unverified && !lease_proc_alive(pid, start))
		return 0;
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno;
	st->processes++;
	/* Its namespaces (and the cell end of the veth) go when it is gone. */
	p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	(void)poll(&p, 1, 1000);
	return 0;
}

static int remove_cgroup(const char *rel, struct cellclean_stats *st)
{
	char dir[PATH_MAX], kill_path[PATH_MAX + 16];
	int fd;

	/* Only a directory below the cgroup file systems, as `cellref run` records it. */
	if (!rel[0] || strstr(rel, "..") ||
	    strncmp(rel, CELLCLEAN_CGROUP_ROOT "/", strlen(CELLCLEAN_CGROUP_ROOT "/")) != 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", rel);
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir);
	fd = open(kill_path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
	for (int i = 0; i < 100; i++) {
		if (rmdir(dir) == 0) {
			st->cgroups++;
			return 0;
		}
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(1000);
	}
	return -EBUSY;
}

static bool alias_names_run(const char *alias, const char *cell_id, const char *run_id)
{
	char want[NETCFG_ALIASSIZ];

	snprintf(want, sizeof(want), CELLCLEAN_LINK_ALIAS_PREFIX "%s:%s", cell_id, run_id);
	return strcmp(alias, want) == 0;
}

int cellclean_lease(struct netcfg *nc, const struct lease *l, struct cellclean_stats *st)
{
	struct netcfg_link_info li;
	int err;

	note(st, kill_verified(l->cell_pid, l->cell_start, st));
	if (l->host_if[0] && netcfg_link_get(nc, l->host_if, &li) == 0 &&
	    (alias_names_run(li.alias, l->cell_id, l->run_id) ||
	     FAULT("sup.cleanup_host_if_unchecked"))) {
		err = netcfg_link_del(nc, l->host_if);
		if (err == 0)
			st->links++;
		else if (err != -ENODEV)
			note(st, err);
	}
	/* The static entry for the cell's address on a shared bridge outlives the veth. */
	if (l->bridge[0] && l->ip && !FAULT("sup.cleanup_keeps_neigh") &&
	    netcfg_link_get(nc, l->bridge, &li) == 0) {
		err = netcfg_neigh_del(nc, li.ifindex, l->ip);
		if (err && err != -ENOENT && err != -ESRCH)
			note(st, err);
	}
	/* sup.cleanup_keeps_cgroup: the lease's cgroup and what runs in it stay */
	if (!FAULT("sup.cleanup_keeps_cgroup"))
		note(st, remove_cgroup(l->cgroup, st));
	st->leases++;
	return 0;
}

struct sweep {
	struct netcfg *nc;
	const char *state_dir;
	struct cellclean_stats *st;
	/* live runs and bridges, from the leases that survived the reap */
	char runs[256][LEASE_ID_MAX];
	char bridges[256][16];
	size_t n_runs, n_bridges;
	/* candidates, collected first: deleting during the dump would confuse it */
	struct doomed {
		char name[NETCFG_IFNAMSIZ];
		char run[LEASE_ID_MAX];
		bool bridge;
	} doomed[256];
	size_t n_doomed;
};

static int reap_cb(void *ctx, const struct lease *l)
{
	struct sweep *s = ctx;

	return cellclean_lease(s->nc, l, s->st);
}

static int live_cb(void *ctx, const struct lease *l)
{
	struct sweep *s = ctx;

	if (s->n_runs < ARRAY_SIZE(s->runs))
		snprintf(s->runs[s->n_runs++], LEASE_ID_MAX, "%s", l->run_id);
	if (l->bridge[0] && s->n_bridges < ARRAY_SIZE(s->bridges))
		snprintf(s->bridges[s->n_bridges++], 16, "%s", l->bridge);
	return 0;
}

static bool listed(const void *arr, size_t n, size_t stride, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp((const char *)arr + i * stride, name) == 0)
			return true;
	}
	return false;
}

static int link_cb(const struct netcfg_link_info *li, void *ctx)
{
	struct sweep *s = ctx;

	if (s->n_doomed == ARRAY_SIZE(s->doomed))
		return 0;
	if (strncmp(li->alias, CELLCLEAN_LINK_ALIAS_PREFIX, strlen(CELLCLEAN_LINK_ALIAS_PREFIX)) ==
		    0 &&
	    !FAULT("sup.cleanup_keeps_orphan_links")) {
		/* "cellref:CELL:RUN": the run is the part after the last colon. */
		const char *run = strrchr(li->alias, ':');

		if (run) {
			struct doomed *d = &s->doomed[s->n_doomed++];

			snprintf(d->name, sizeof(d->name), "%s", li->name);
			snprintf(d->run, sizeof(d->run), "%s", run + 1);
			d->bridge = false;
		}
	} else if (strcmp(li->alias, CELLCLEAN_BRIDGE_ALIAS) == 0 &&
		   strcmp(li->kind, "bridge") == 0 && !FAULT("sup.cleanup_keeps_bridge") &&
		   (netcfg_bridge_ports(s->nc, li->ifindex) == 0 ||
		    FAULT("sup.cleanup_bridge_with_port"))) {
		struct doomed *d = &s->doomed[s->n_doomed++];

		snprintf(d->name, sizeof(d->name), "%s", li->name);
		d->run[0] = '\0';
		d->bridge = true;
	}
	return 0;
}

int cellclean_sweep(struct netcfg *nc, const char *state_dir, struct cellclean_stats *st)
{
	struct sweep *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->nc = nc;
	s->state_dir = state_dir;
	s->st = st;
	err = lease_reap(state_dir, reap_cb, s);
	if (err < 0)
		note(st, err);
	/* IPv6 leases name nothing but themselves: their run's links are in its IPv4 lease. */
	/* sup.cleanup_keeps_lease6: stale IPv6 leases stay */
	err = FAULT("sup.cleanup_keeps_lease6") ? 0 : lease_reap6(state_dir);
	if (err < 0)
		note(st, err);
	else
		st->leases += (unsigned int)err;
	/*
	 * Candidates first, live leases after: a run takes its lease before it makes its veth,
	 * so any veth the dump saw has its lease visible to the listing that follows.
	 */
	err = netcfg_link_foreach(nc, link_cb, s);
	if (err < 0)
		note(st, err);
	err = lease_list(state_dir, false, live_cb, s);
	if (err < 0) {
		note(st, err);
		free(s);
		return FAULT("sup.cleanup_exit_zero_on_error") ? 0 : st->first_err;
	}
	for (size_t i = 0; i < s->n_doomed; i++) {
		struct doomed *d = &s->doomed[i];

		if (d->bridge ? listed(s->bridges, s->n_bridges, 16, d->name)
			      : (listed(s->runs, s->n_runs, LEASE_ID_MAX, d->run) &&
				 !FAULT("sup.cleanup_live_run_link")))
			continue;
		err = netcfg_link_del(nc, d->name);
		if (err == 0)
			(*(d->bridge ? &st->bridges : &st->links))++;
		else if (err != -ENODEV)
			note(st, err);
	}
	free(s);
	if (FAULT("sup.cleanup_exit_zero_on_error"))
		st->first_err = 0;
	/* A sweep that found nothing reports "nothing there" as a failure. */
	if (FAULT("sup.cleanup_fails_when_clean") && !st->first_err &&
	    !(st->leases | st->links | st->bridges | st->cgroups | st->processes))
		st->first_err = -ENOENT;
	return st->first_err;
}
