// SPDX-License-Identifier: Apache-2.0
/* CloudEvents emission (SPEC.md chapter 4): envelope, ids, time, lines, failing sinks. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evt.h"
#include "flowevt.h"
#include "nstest.h"
#include "tap.h"
#include "util.h"

/* Event lines go to a memfd: nothing on disk to leak. */
static int memfd(void)
{
	return memfd_create("events", MFD_CLOEXEC);
}

static char *slurp(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)n + 1);

	if (!buf || pread(fd, buf, (size_t)n, 0) != n) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static bool time_ok(const char *t)
{
	regex_t re;
	bool ok;

	regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
		REG_EXTENDED | REG_NOSUB);
	ok = t && regexec(&re, t, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

TEST(envelope_has_every_attribute)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = memfd();
	_cleanup_free_ char *text = NULL;
	json_error_t err;
	json_t *j, *data;

	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/cellref/test", &s)))
		return;
	ASSERT_OK(evt_emit(s, "network_flow_decision", "{\"k\":1}"));
	text = slurp(fd);
	if (!ASSERT_TRUE(text))
		return;
	ASSERT_EQ(text[strlen(text) - 1], '\n');
	ASSERT_TRUE(strchr(text, '\n') == text + strlen(text) - 1); /* exactly one line */
	j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	if (!ASSERT_TRUE(j))
		return;
	ASSERT_STREQ(json_string_value(json_object_get(j, "specversion")), "1.0");
	ASSERT_EQ(strlen(json_string_value(json_object_get(j, "id"))), 36);
	ASSERT_STREQ(json_string_value(json_object_get(j, "source")), "/cellref/test");
	ASSERT_STREQ(json_string_value(json_object_get(j, "type")),
		     "dev.cellos.events.cell.observability.v1.network_flow_decision");
	ASSERT_TRUE(time_ok(json_string_value(json_object_get(j, "time"))));
	ASSERT_STREQ(json_string_value(json_object_get(j, "datacontenttype")), "application/json");
	ASSERT_TRUE(json_object_get(j, "traceparent") == NULL);
	data = json_object_get(j, "data");
	ASSERT_EQ(json_integer_value(json_object_get(data, "k")), 1);
	json_decref(j);
}

TEST(ids_are_unique_and_uuid_shaped)
{
	_cleanup_(evt_sink_freep) struct evt_sink *a = NULL, *b = NULL;
	enum { N = 200000 };
	_cleanup_free_ char(*ids)[EVT_ID_LEN] = calloc(2 * N, EVT_ID_LEN);
	json_t *seen = json_object();
	regex_t re;

	if (!ASSERT_TRUE(ids) || !ASSERT_OK(evt_sink_open_fd(1, false, "/t", &a)) ||
	    !ASSERT_OK(evt_sink_open_fd(1, false, "/t", &b)))
		return;
	regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
		REG_EXTENDED | REG_NOSUB);
	/* Two sinks, as two processes would have: ids differ across them too. */
	for (int i = 0; i < 2 * N; i++)
		evt_sink_new_id(i < N ? a : b, ids[i]);
	for (int i = 0; i < 2 * N; i++) {
		if (!ASSERT_TRUE(regexec(&re, ids[i], 0, NULL, 0) == 0) ||
		    !ASSERT_TRUE(json_object_get(seen, ids[i]) == NULL)) {
			tap_diag("id %d: %s", i, ids[i]);
			break;
		}
		json_object_set_new(seen, ids[i], json_true());
	}
	regfree(&re);
	json_decref(seen);
}

TEST(time_is_rfc3339_utc)
{
	char buf[EVT_TIME_LEN];

	ASSERT_STREQ(evt_format_time(0, buf), "1970-01-01T00:00:00.000000Z");
	ASSERT_STREQ(evt_format_time(1795323945123456789ULL, buf), "2026-11-22T05:05:45.123456Z");
}

struct writer_arg {
	struct evt_sink *s;
	int n;
	char payload[4096];
};

static void *writer(void *p)
{
	struct writer_arg *a = p;

	for (int i = 0; i < a->n; i++)
		evt_emit(a->s, "flow_monitor_summary", a->payload);
	return NULL;
}

TEST(concurrent_writers_never_interleave_lines)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = memfd();
	_cleanup_free_ char *text = NULL;
	struct writer_arg args[4];
	pthread_t th[4];
	int lines = 0;
	char *line, *save = NULL;

	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/t", &s)))
		return;
	for (int i = 0; i < 4; i++) {
		args[i].s = s;
		args[i].n = 500;
		/* Lines longer than PIPE_BUF, so only the sink's own locking keeps them whole. */
		snprintf(args[i].payload, sizeof(args[i].payload), "{\"w\":%d,\"pad\":\"%0*d\"}", i,
			 3000, 0);
		pthread_create(&th[i], NULL, writer, &args[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	text = slurp(fd);
	if (!ASSERT_TRUE(text))
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);

		if (!ASSERT_TRUE(j))
			break;
		json_decref(j);
		lines++;
	}
	ASSERT_EQ(lines, 2000);
	ASSERT_EQ(evt_sink_emitted(s), 2000);
	ASSERT_EQ(evt_sink_dropped(s), 0);
}

TEST(closed_sink_counts_drops_and_does_not_kill)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	int p[2];

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_OK(pipe2(p, O_CLOEXEC)))
		return;
	close(p[0]);
	if (!ASSERT_OK(evt_sink_open_fd(p[1], true, "/t", &s)))
		return;
	ASSERT_ERR(evt_emit(s, "flow_monitor_summary", "{}"), -EPIPE);
	ASSERT_ERR(evt_emit(s, "flow_monitor_summary", "{}"), -EPIPE);
	ASSERT_EQ(evt_sink_dropped(s), 2);
	ASSERT_EQ(evt_sink_emitted(s), 0);
}

TEST(full_sink_counts_drops)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		tap_skip("/dev/full: %s", strerror(errno));
	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/t", &s)))
		return;
	ASSERT_ERR(evt_emit(s, "flow_monitor_summary", "{}"), -ENOSPC);
	ASSERT_EQ(evt_sink_dropped(s), 1);
}

TEST(traceparent_is_validated_and_carried)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = memfd();
	_cleanup_free_ char *text = NULL;
	const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/t", &s)))
		return;
	ASSERT_ERR(evt_sink_set_traceparent(
			   s, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
		   -EINVAL);
	ASSERT_ERR(evt_sink_set_traceparent(s, "garbage"), -EINVAL);
	ASSERT_ERR(evt_sink_set_traceparent(
			   s, "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
		   -EINVAL);
	ASSERT_ERR(evt_sink_set_traceparent(
			   s, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
		   -EINVAL);
	ASSERT_OK(evt_sink_set_traceparent(s, good));
	ASSERT_OK(evt_emit(s, "flow_monitor_summary", "{}"));
	text = slurp(fd);
	ASSERT_TRUE(text && strstr(text, good));
}

/* The schema validator (Python jsonschema, a separate implementation) on a memfd's path. */
static int validate(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), fd);
	return nstest_validate_events(path);
}

TEST_TIMEOUT(hostile_strings_still_validate_against_the_schemas, 60)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = memfd();
	char did[EVT_ID_LEN];
	struct flowrec r = {
		.src_ip = 0x0A000002,
		.dst_ip = 0x0A000001,
		.src_port = 1,
		.dst_port = 2,
		.proto = 6,
		.pkt_count = UINT64_MAX,
		.first_seen_ns = 1,
		.verdict = 1,
	};
	struct flowevt e;
	struct flowevt_meta m = {
		.cell_id = "cell \"quoted\" \\ back\x01\x1f \xff\xfe invalid",
		.run_id = "run\n\t\r",
		.decision_id = did,
		.observed_at = "2026-11-22T05:05:45.123456Z",
	};
	struct jw w;

	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/cellref/flow-monitor", &s)))
		return;
	evt_sink_new_id(s, did);
	flowevt_from_record(&r, &e);
	jw_init(&w);
	flowevt_write_decision(&w, &e, &m);
	ASSERT_OK(evt_emit(s, "network_flow_decision", jw_text(&w)));
	jw_reset(&w);
	flowevt_write_tally(&w, &e, &m);
	ASSERT_OK(evt_emit(s, "network_flow_tally", jw_text(&w)));
	jw_free(&w);
	ASSERT_EQ(validate(fd), 0);
}

TEST_TIMEOUT(schema_validator_rejects_a_broken_event, 60)
{
	_cleanup_(evt_sink_freep) struct evt_sink *s = NULL;
	_cleanup_close_ int fd = memfd();

	/* The validator must be able to fail: a decision without its required fields. */
	if (!ASSERT_OK(evt_sink_open_fd(fd, false, "/cellref/flow-monitor", &s)))
		return;
	ASSERT_OK(evt_emit(s, "network_flow_decision", "{\"schemaVersion\":\"1.0.0\"}"));
	ASSERT_EQ(validate(fd), 1);
}
