/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The long-lived scapy traffic driver (harness/driver/cellcheck_driver.py, run by
 * /usr/bin/python3), one per runner worker. Protocol: one JSON object per line each way.
 *
 *   request:  {"id": 7, "op": "udp_flow", "netns": "/proc/123/fd/9", "timeout_ms": 2000,
 *              "args": {...the case step's args...}}
 *   response: {"id": 7, "ok": true, "result": {...}}  or  {"id": 7, "ok": false, "error": "..."}
 *
 * The driver enters the named network namespace for each command (setns on a thread of its
 * own, sockets cached per namespace), so one driver serves every case of its worker. "netns"
 * null: the driver's own namespace. Ops and their args: cases/README.md, "Steps".
 */
#ifndef CELLCHECK_HDRV_H
#define CELLCHECK_HDRV_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

struct hdrv;

/* The driver script, relative to the source tree (the runner's {srcdir}). */
#define HDRV_SCRIPT "harness/driver/cellcheck_driver.py"

/* Start the driver: script path, log file (its stderr; NULL: /dev/null). 0 or -errno. */
int hdrv_start(const char *script, const char *log_path, struct hdrv **ret);
/* Stop it (EOF on its stdin, then SIGKILL after 2 s) and free. */
void hdrv_stop(struct hdrv *d);
pid_t hdrv_pid(const struct hdrv *d);
/*
 * One command. 0 with *result (owned by the caller) on success; -EREMOTEIO with *error
 * (malloc'd) when the driver answered ok:false; -ETIMEDOUT when no answer came in
 * timeout_ms (+1 s slack; the driver is then restarted on the next call); -EPIPE when the
 * driver died (restarted on the next call).
 */
int hdrv_call(struct hdrv *d, const char *netns_path, const char *op, json_t *args,
	      uint32_t timeout_ms, json_t **result, char **error);

#endif
