// SPDX-License-Identifier: Apache-2.0
/*
 * The driver step (hstep.h): one operation of the scapy driver ("op", "args") in the step's
 * namespace; its result is the step's response. The driver process is the worker's, started at
 * the first driver step (hstep_driver_ensure) and kept for the worker's next cases.
 */
#include <string.h>

#include "hrun_int.h"
#include "hstep.h"

/*
 * The scapy driver's operations and the keys each takes (the driver validates values; the
 * loader makes sure a case cannot pass a key the driver would ignore). First key is required.
 */
struct driver_op {
	const char *name;
	const char *const keys[12];
};

static const struct driver_op driver_ops[] = {
	{ "udp_send", { "dst", "src_port", "payload_hex", "count", "wait_ms", "replies", NULL } },
	{ "tcp_send",
	  { "dst", "payload_hex", "segments", "half_close", "wait_ms", "replies", "keep_open",
	    "payload_parts", "capture", "rcvbuf", NULL } },
	{ "dns_query",
	  { "dst", "transport", "qname", "qtype", "qclass", "txid", "rd", "count", "raw_hex",
	    "wait_ms", NULL } },
	{ "icmp_echo", { "dst", "count", "size", NULL } },
	{ "tcp_connect", { "dst", "count", "payload_hex", NULL } },
	{ "udp_flow", { "dst", "src_port", "count", "size", NULL } },
	{ "fuzz_send", { "dst", "seed", "udp_count", "tcp_count", "wait_ms", NULL } },
};

/* A known operation of the scapy driver, its args and destination. */
static int driver_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
			struct hcase_step *s)
{
	struct hstep_driver *d = &s->driver;
	const struct driver_op *op = NULL;
	char pa[HJSON_PATH_MAX];
	const char *dst = NULL;
	char pk[HJSON_PATH_MAX];
	int r;

	r = hcase_dup_str(e, pi, "op", true, &d->op, v->err);
	r = r ?: hjson_obj(e, pi, "args", true, &d->args, v->err);
	json_incref(d->args);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(driver_ops); i++)
		if (strcmp(driver_ops[i].name, d->op) == 0)
			op = &driver_ops[i];
	if (!op) {
		hjson_path_key(pk, pi, "op");
		return hjson_fail(v->err, pk, "unknown driver operation \"%s\"", d->op);
	}
	hjson_path_key(pa, pi, "args");
	r = hjson_only_keys(d->args, pa, op->keys, v->err);
	r = r ?: hjson_str(d->args, pa, op->keys[0], true, &dst, v->err);
	if (r < 0)
		return r;
	hjson_path_key(pk, pa, op->keys[0]);
	if (strcmp(d->op, "icmp_echo") == 0 ? !hcase_ip_valid(dst) && dst[0] != '{'
					    : !hcase_hostport_valid(dst))
		return hjson_fail(v->err, pk, "\"%s\" is not a destination", dst);
	if (!s->ns)
		return hjson_fail(v->err, pi, "a driver step needs \"ns\"");
	return 0;
}

int hstep_driver_ensure(const struct hrun_ctx *ctx, struct hrun_worker *w)
{
	_cleanup_free_ char *script = NULL;
	int e;

	if (w->drv)
		return 0;
	if (asprintf(&script, "%s/%s", ctx->srcdir, HDRV_SCRIPT) < 0)
		return -ENOMEM;
	if (!w->drv_log && asprintf(&w->drv_log, "%s/driver.%d.log", ctx->run_dir, getpid()) < 0)
		return -ENOMEM;
	e = hdrv_start(script, w->drv_log, &w->drv);
	if (e == 0)
		hrun_state_note_proc(ctx->state_path, hdrv_pid(w->drv));
	return e;
}

static void driver_run(struct run *r, const struct hcase_step *st)
{
	const struct hstep_driver *d = &st->driver;
	_cleanup_free_ char *nsp = NULL, *err = NULL;
	json_t *result = NULL;
	int ms, e;

	e = hstep_driver_ensure(r->ctx, r->w);
	if (e < 0) {
		run_verdict(r, HREP_ERROR, "driver: cannot start: %s", util_errno_name(-e));
		return;
	}
	nsp = htopo_step_ns_fd(r, st) >= 0 ? htopo_netns_path(r, st) : NULL;
	ms = run_remaining_ms(r, st->timeout_ms);
	if (ms <= 0) {
		run_timed_out(r);
		return;
	}
	e = hdrv_call(r->w->drv, nsp, d->op, d->args, (uint32_t)ms, &result, &err);
	if (e == -ETIMEDOUT) {
		if (!run_timed_out(r))
			run_verdict(r, HREP_ERROR, "driver %s: no answer within %d ms", d->op, ms);
	} else if (e < 0) {
		run_verdict(r, HREP_ERROR, "driver %s%s%s: %s", d->op, st->name ? " " : "",
			    st->name ?: "", err ?: util_errno_name(-e));
	} else if (st->name) {
		hstep_add_resp(r, st->name, result);
	} else {
		json_decref(result);
	}
}

static void driver_free(struct hcase_step *s)
{
	free(s->driver.op);
	json_decref(s->driver.args);
}

static const char *const driver_keys[] = { "op", "args", NULL };

const struct hstep_kind hstep_kind_driver = {
	.name = "driver",
	.keys = driver_keys,
	.parse = driver_parse,
	.run = driver_run,
	.free = driver_free,
};
