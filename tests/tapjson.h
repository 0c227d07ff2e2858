/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers for TAP tests (jansson, a separate implementation from ref/'s writer). */
#ifndef CELLCHECK_TAPJSON_H
#define CELLCHECK_TAPJSON_H

#include <jansson.h>

/* Every line of a JSONL file descriptor, strictly parsed; each bad line fails a check. */
json_t *tap_jsonl(int fd);

#endif
