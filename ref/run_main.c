// SPDX-License-Identifier: Apache-2.0
/*
 * cellref run: options, the run loop (the cell's pidfd, signals forwarded, workers' events
 * relayed) and teardown; the setup steps are supsetup.c's, the events supevt.c's, and
 * supervisor.h draws the whole pipeline.
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

/* ---- running --------------------------------------------------------------------------------- */

static void record_exit(struct run *r, const siginfo_t *si)
{
	r->t_exit = util_now_monotonic_ns();
	r->cell_alive = false;
	if (r->status) /* exec failure or setup failure decided already */
		return;
	if (si->si_code == CLD_EXITED) {
		r->status = "exited";
		r->workload_status = si->si_status;
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
					/* sup.usr_signal_deadline: SIGUSR1/2 start it too */
					if (!r->kill_at && ((sig != SIGUSR1 && sig != SIGUSR2) ||
							    FAULT("sup.usr_signal_deadline")))
						r->kill_at = util_now_monotonic_ns() +
							     (FAULT("sup.stop_grace_short")
								      ? 1000ULL
								      : STOP_GRACE_MS) *
								     1000000ULL;
				}
			} else {
				struct relay *rl = relays[k - 2];
				int fd = rl->fd;

				if (!supevt_relay_read(r, rl))
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

	/* sup.worker_stop_slow: a stuck worker is waited for 20 s, not 3 */
	if (FAULT("sup.worker_stop_slow"))
		deadline += 17000 * 1000000ULL;
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
				(void)supevt_relay_read(r, rls[i]);
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
	/* sup.cgroup_left: the negative control of SUP-DOWN-001's cgroup removal. */
	if (!FAULT("sup.cgroup_left"))
		supsetup_remove_cgroup(r);
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
	if (r->leased6)
		(void)lease_release6(r->state_dir, r->lease6.ip, r->run_id);
	r->leased6 = false;
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

/*
 * Before any event: root, the cell spec, the event sink and its writer. 0, or the exit code of
 * the run (its cause already reported).
 */
static int run_prepare(struct run *r)
{
	char err_text[256] = "";
	int err;

	/* Before the spec and the sink: a user who may not read them still learns why (exit 10). */
	if (geteuid() != 0 && !FAULT("sup.nonroot_runs")) {
		cellref_report("run", "supervisor", -EPERM,
			       "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)");
		return CELLREF_EXIT_PERM;
	}
	r->state_dir = r->state_dir ?: getenv("CELLREF_STATE_DIR") ?: STATE_DIR_DEFAULT;
	err = cellspec_load(r->spec_path, &r->spec, err_text, sizeof(err_text));
	if (err) {
		cellref_report("run", r->spec_path, err, "%s", err_text);
		return FAULT("sup.spec_exit1") ? CELLREF_EXIT_FAILURE : CELLREF_EXIT_USAGE;
	}
	if (r->spec->run_id[0]) {
		snprintf(r->run_id, sizeof(r->run_id), "%s", r->spec->run_id);
	}
	/* sup.events_truncated: what the file held before the run is lost */
	if (r->events_path && FAULT("sup.events_truncated"))
		(void)truncate(r->events_path, 0);
	err = r->events_path ? evt_sink_open_path(r->events_path, SOURCE, &r->sink)
			     : evt_sink_open_path("/dev/null", SOURCE, &r->sink);
	/* sup.events_unopenable_ignored: no sink, no events, the run goes on */
	if (err && FAULT("sup.events_unopenable_ignored"))
		err = evt_sink_open_path("/dev/null", SOURCE, &r->sink);
	if (err) {
		cellref_report("run", r->events_path, err, "cannot open the event sink");
		return CELLREF_EXIT_USAGE;
	}
	if (!r->run_id[0])
		evt_sink_new_id(r->sink, r->run_id);
	err = evout_new(evt_sink_fd(r->sink), EVOUT_MAX_BYTES, &r->out);
	if (err) {
		cellref_report("run", "event writer", err, NULL);
		return CELLREF_EXIT_FAILURE;
	}
	return 0;
}

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
	err = run_prepare(&r);
	if (err) {
		run_free(&r);
		return err;
	}
	r.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	supevt_started(&r);
	if (supsetup_run(&r) == 0) {
		supevt_running(&r);
		err = run_loop(&r);
		if (err && !r.status) {
			(void)supevt_setup_failed(&r, "wait", "event loop", err,
						  CELLREF_EXIT_FAILURE, NULL);
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
	supevt_exited(&r, sup_us_since(t_down));
	teardown_host(&r);
	err = r.exit_code;
	run_free(&r);
	return err;
}
