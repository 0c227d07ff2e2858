// SPDX-License-Identifier: Apache-2.0
/*
 * The supervisor's events (SPEC 9.7, chapter 4's envelope) and the relay of its workers'
 * events: every line goes through r->out, the one lossless writer of the run's sink.
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

/* ---- events ---------------------------------------------------------------------------------- */

/*
 * Close r->data (opened by supevt_open()), format and queue; lossless. With now, the
 * line is written before this returns (cell_started: nothing may happen before it is out, and
 * nothing is queued yet, so the writer thread is idle); a failed write goes to the queue,
 * which counts it as dropped.
 */
static void emit_now(struct run *r, const char *type, bool now)
{
	evt_kv_time(&r->data, "observedAt", 0);
	jw_obj_close(&r->data);
	jw_reset(&r->line);
	if (!jw_error(&r->data) && evt_format(r->sink, type, jw_text(&r->data), &r->line) == 0 &&
	    (!now || util_write_all(evt_sink_fd(r->sink), jw_text(&r->line), r->line.len) < 0))
		(void)evout_push(r->out, jw_text(&r->line), r->line.len);
	jw_reset(&r->data);
}

void supevt_emit(struct run *r, const char *type)
{
	emit_now(r, type, false);
}

void supevt_open(struct run *r)
{
	jw_obj_open(&r->data);
	evt_data_ids(&r->data, r->spec->cell_id, r->run_id);
}

void supevt_kv_err(struct jw *w, int err)
{
	int e = err < 0 ? -err : err;

	jw_kv_i64(w, "errno", e);
	jw_kv_str(w, "errnoName", util_errno_name(e));
}

static const char *ns_names[] = { "net", "mount", "pid", "uts", "ipc", "user", "cgroup" };
static const unsigned long ns_flags[] = { CLONE_NEWNET, CLONE_NEWNS,   CLONE_NEWPID,   CLONE_NEWUTS,
					  CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWCGROUP };

void supevt_started(struct run *r)
{
	struct jw *w = &r->data;

	supevt_open(r);
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
int supevt_setup_failed(struct run *r, const char *step, const char *object, int err, int code,
			const char *detail)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s%s%s", strerror(err < 0 ? -err : err), detail ? ": " : "",
		 detail ? detail : "");
	cellref_report("run", object, err, "%s", detail ? detail : "setup failed");
	supevt_open(r);
	jw_kv_str(&r->data, "step", step);
	supevt_kv_err(&r->data, err);
	jw_kv_str(&r->data, "message", msg);
	supevt_emit(r, "cell_setup_failed");
	r->status = "setup_failed";
	r->exit_code = code;
	return -1;
}

/* A degradation: an event; in strict mode it ends the setup. */
int supevt_degraded(struct run *r, const char *step, int err, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err < 0 ? -err : err));
	supevt_open(r);
	jw_kv_str(&r->data, "step", step);
	supevt_kv_err(&r->data, err);
	jw_kv_str(&r->data, "message", msg);
	jw_kv_bool(&r->data, "strict", r->spec->strict);
	supevt_emit(r, "cell_degraded");
	if (!r->spec->strict || FAULT("sup.strict_ignored"))
		return 0;
	return supevt_setup_failed(r, step, step, err, CELLREF_EXIT_STRICT,
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
bool supevt_relay_read(struct run *r, struct relay *rl)
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

void supevt_running(struct run *r)
{
	struct jw *w = &r->data;
	char ip[INET_ADDRSTRLEN];

	supevt_open(r);
	jw_kv_i64(w, "pid", r->cell.pid);
	if (r->leased) {
		sup_format_ip(r->lease.ip, ip);
		jw_kv_str(w, "address", ip);
		if (r->leased6) {
			char ip6[INET6_ADDRSTRLEN];

			sup_format_ip6(r->lease6.ip, ip6);
			jw_kv_str(w, "ipv6Address", ip6);
		}
		jw_kv_str(w, "hostInterface", r->lease.host_if);
		jw_kv_str(w, "cellInterface", r->spec->ifname);
		jw_kv_u64(w, "networkSetupUs", r->net_us);
	}
	if (r->spec->dns_enabled) {
		char listen[INET_ADDRSTRLEN + 8];

		sup_format_ip(r->spec->dns_listen_ip, ip);
		snprintf(listen, sizeof(listen), "%s:%u", ip, r->spec->dns_listen_port);
		jw_kv_str(w, "dnsListen", listen);
	}
	jw_kv_u64(w, "setupUs", (r->t_release - r->t_start) / 1000);
	jw_kv_u64(w, "execUs", (r->t_exec - r->t_start) / 1000);
	supevt_emit(r, "cell_running");
}

void supevt_exited(struct run *r, uint64_t teardown_us)
{
	struct jw *w = &r->data;
	uint64_t end = r->t_exit ? r->t_exit : util_now_monotonic_ns();

	supevt_open(r);
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
	if (r->unique_flows >= 0)
		jw_kv_i64(w, "uniqueFlowCount", r->unique_flows);
	jw_kv_u64(w, "relayTruncated", r->relay_truncated);
	jw_kv_u64(w, "eventsDropped", evout_dropped(r->out));
	supevt_emit(r, "cell_exited");
}
