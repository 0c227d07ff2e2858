/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cellref run: the reference cell supervisor (SPEC.md chapter 9), private to its three modules:
 * run_main.c (options, the run loop, teardown), supsetup.c (the setup steps, 9.3 to 9.5) and
 * supevt.c (its events and the relay of its workers' events, 9.7).
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
#ifndef CELLREF_SUPERVISOR_H
#define CELLREF_SUPERVISOR_H

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cell.h"
#include "cellnet.h"
#include "cellspec.h"
#include "evout.h"
#include "evt.h"
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
	struct lease6 lease6; /* dual-stack cells (network.ipv6) */
	bool leased6;
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

static inline void sup_format_ip(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static inline void sup_format_ip6(const uint8_t ip[16], char buf[INET6_ADDRSTRLEN])
{
	inet_ntop(AF_INET6, ip, buf, INET6_ADDRSTRLEN);
}

static inline uint64_t sup_us_since(uint64_t t0)
{
	return (util_now_monotonic_ns() - t0) / 1000;
}

/* supsetup.c: every setup step in order; 0, or -1 with r->status and r->exit_code set. */
int supsetup_run(struct run *r);
/* Teardown's part of the setup: the cgroup the run made (if any) killed and removed. */
void supsetup_remove_cgroup(struct run *r);

/* supevt.c: events into r->sink through r->out (lossless, in order). */
void supevt_open(struct run *r); /* opens r->data with schemaVersion, cellId, runId */
void supevt_emit(struct run *r, const char *type); /* closes r->data with observedAt, queues */
void supevt_kv_err(struct jw *w, int err);
void supevt_started(struct run *r);
void supevt_running(struct run *r);
void supevt_exited(struct run *r, uint64_t teardown_us);
/* A setup step failed: event, one stderr line, and -1 with the exit code recorded. */
int supevt_setup_failed(struct run *r, const char *step, const char *object, int err, int code,
			const char *detail);
/* A degradation: an event; in strict mode it ends the setup (-1). */
int supevt_degraded(struct run *r, const char *step, int err, const char *what);
/* Relay the complete lines a worker wrote; false at its EOF. */
bool supevt_relay_read(struct run *r, struct relay *rl);

#endif
