// SPDX-License-Identifier: Apache-2.0
/*
 * The output-fault table (harness/filter/evf.h) and cellcheck-evfilter: every fault turns the
 * line it targets into exactly the hand-written faulty line, and leaves every line it does not
 * apply to byte-identical (other event types, decoder error lines, lines that are not JSON);
 * the program writes each line as soon as it is complete, passes an overlong line through
 * unedited, and exits 0 at the end of its input.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evf.h"
#include "tap.h"

#define T    "dev.cellos.events.cell.observability.v1."
#define TIME "2026-12-07T14:00:00.000001Z"
#define CT   "application/json"
#define DNS  "/cellref/dns-proxy"
#define SUP  "/cellref/run"

/* An event line; mid is inserted before "data" (members of its own, each with a comma). */
#define ENV(id, src, type, time, ct, mid, data)                                              \
	"{\"specversion\":\"1.0\",\"id\":\"" id "\",\"source\":\"" src "\",\"type\":\"" type \
	"\",\"time\":\"" time "\",\"datacontenttype\":\"" ct "\"," mid "\"data\":" data "}\n"
#define EV(type, data) ENV("id-1", DNS, T type, TIME, CT, "", data)

#define DQ(tr)	    "{\"qname\":\"a\\\"b.example\",\"transport\":\"" tr "\",\"note\":\"x\"}"
#define STATS(u, t) "{\"queries\":9,\"udpQueries\":" u ",\"tcpQueries\":" t ",\"x\":1}"
#define SUMMARY(seen, lost, uniq)                                                      \
	"{\"recordsSeen\":" seen ",\"recordsLost\":" lost ",\"uniqueFlowCount\":" uniq \
	",\"flowsTallied\":4}"
#define DEC(pkts) "{\"dstAddr\":\"10.0.105.7\",\"dstPort\":443,\"packetCount\":" pkts "}"

#define DECODED(sp, dp, verdict, decision, proto, addr)                                           \
	"{\"ok\":true,\"index\":3,\"record\":{\"srcAddr\":\"" addr "\",\"dstAddr\":\"10.0.0.2\"," \
	"\"srcPort\":" sp ",\"dstPort\":" dp ",\"proto\":99,\"pktCount\":1,\"firstSeenNs\":5,"    \
	"\"verdict\":" verdict "},\"flow\":{\"direction\":\"egress\",\"decision\":\"" decision    \
	"\",\"reasonCode\":\"ebpf_xdp_drop\",\"srcAddr\":\"" addr "\",\"srcPort\":" sp            \
	",\"dstAddr\":\"10.0.0.2\",\"dstPort\":" dp "," proto "\"packetCount\":1,"                \
	"\"firstSeenNs\":5}}\n"

/* dns_proxy_started and dns_query data with their address texts (DNS-CLI-004). */
#define STARTED(listen, up, rid)                                                       \
	"{\"listen\":\"" listen "\",\"transports\":[\"udp\"],\"upstream\":\"" up "\"," \
	"\"upstreamResolverId\":\"" rid "\"}"
#define QUERY(client, rid) \
	"{\"clientAddr\":\"" client "\",\"clientPort\":5300,\"upstreamResolverId\":\"" rid "\"}"
/* A decoded v2 line whose srcAddr (record and flow) is addr. */
#define V6(addr) DECODED("1", "2", "1", "allow", "", addr)

/* A decoded v2 line: record family, addresses of the record and of the flow, flow byteCount. */
#define V2LINE(fam, rs, rd, fs, fd, bc)                                                         \
	"{\"ok\":true,\"index\":0,\"record\":{\"srcAddr\":\"" rs "\",\"dstAddr\":\"" rd "\","   \
	"\"srcPort\":1,\"dstPort\":2,\"proto\":6,\"family\":" fam ",\"pktCount\":1,"            \
	"\"byteCount\":60,\"firstSeenNs\":5,\"verdict\":1},\"flow\":{\"direction\":\"egress\"," \
	"\"decision\":\"allow\",\"reasonCode\":\"ebpf_xdp_drop\",\"srcAddr\":\"" fs "\","       \
	"\"srcPort\":1,\"dstAddr\":\"" fd "\",\"dstPort\":2,\"protocol\":\"tcp\","              \
	"\"packetCount\":1," bc "\"firstSeenNs\":5}}\n"
#define BC "\"byteCount\":60,"

struct row {
	const char *fault;
	const char *in, *want; /* a line (or lines) the fault targets, and what it becomes */
	const char *other;     /* an event line it does not apply to */
};

static const struct row rows[] = {
	{ "evt.id_reused",
	  ENV("id-1", DNS, T "a", TIME, CT, "", "{}") ENV("id-2", DNS, T "b", TIME, CT, "", "{}")
		  ENV("id-3", SUP, T "c", TIME, CT, "", "{}"),
	  ENV("id-1", DNS, T "a", TIME, CT, "", "{}") ENV("id-1", DNS, T "b", TIME, CT, "", "{}")
		  ENV("id-3", SUP, T "c", TIME, CT, "", "{}"),
	  NULL },
	{ "evt.time_offset", EV("dns_query", "{}"),
	  ENV("id-1", DNS, T "dns_query", "2026-12-07T14:00:00.000001+00:00", CT, "", "{}"), NULL },
	{ "evt.content_type", EV("dns_query", "{}"),
	  ENV("id-1", DNS, T "dns_query", TIME, "application/cloudevents+json", "", "{}"), NULL },
	{ "evt.crlf", EV("dns_query", "{}"),
	  "{\"specversion\":\"1.0\",\"id\":\"id-1\",\"source\":\"" DNS "\",\"type\":\"" T
	  "dns_query\",\"time\":\"" TIME "\",\"datacontenttype\":\"" CT "\",\"data\":{}}\r\n",
	  NULL },
	{ "evt.dup_member", EV("dns_query", "{}"),
	  "{\"specversion\":\"1.0\",\"specversion\":\"1.0\",\"id\":\"id-1\",\"source\":\"" DNS
	  "\",\"type\":\"" T "dns_query\",\"time\":\"" TIME "\",\"datacontenttype\":\"" CT
	  "\",\"data\":{}}\n",
	  NULL },
	{ "evt.type_short", EV("dns_query", "{}"),
	  ENV("id-1", DNS, "dns_query", TIME, CT, "", "{}"), NULL },
	{ "evt.traceparent_always", EV("dns_query", "{}"),
	  ENV("id-1", DNS, T "dns_query", TIME, CT,
	      "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\",", "{}"),
	  ENV("id-1", DNS, T "dns_query", TIME, CT, "\"traceparent\":\"00-1-2-01\",", "{}") },
	{ "evt.ext_attribute", EV("dns_query", "{}"),
	  ENV("id-1", DNS, T "dns_query", TIME, CT, "\"reasonCode\":\"none\",", "{}"), NULL },
	{ "evt.source_empty", EV("dns_query", "{}"),
	  ENV("id-1", "", T "dns_query", TIME, CT, "", "{}"), NULL },
	{ "evt.source_numbered", EV("dns_query", "{}") EV("dns_query", "{}"),
	  ENV("id-1", DNS "/0", T "dns_query", TIME, CT, "", "{}")
		  ENV("id-1", DNS "/1", T "dns_query", TIME, CT, "", "{}"),
	  NULL },
	{ "evt.time_monotonic", EV("dns_query", "{}"),
	  ENV("id-1", DNS, T "dns_query", "1970-01-01T14:00:00.000001Z", CT, "", "{}"), NULL },
	{ "dns.run_id_per_event",
	  EV("dns_query", "{\"cellId\":\"c\",\"runId\":\"r-1\"}")
		  EV("dns_proxy_stats", "{\"runId\":\"r-1\",\"x\":1}"),
	  EV("dns_query", "{\"cellId\":\"c\",\"runId\":\"5e1f0000-0000-4000-8000-000000000000\"}")
		  EV("dns_proxy_stats",
		     "{\"runId\":\"5e1f0000-0000-4000-8000-000000000001\",\"x\":1}"),
	  EV("dns_query", "{\"cellId\":\"c\"}") },
	{ "dns.qname_lowercased",
	  EV("dns_query", "{\"qname\":\"WwW.Ex\\\\.ample.TEST.\",\"qtype\":1}"),
	  EV("dns_query", "{\"qname\":\"www.ex\\\\.ample.test.\",\"qtype\":1}"),
	  EV("dns_proxy_started", "{\"allowlist\":[\"Example.\"]}") },
	{ "dns.root_name_empty",
	  EV("dns_query", "{\"qname\":\".\",\"qtype\":2}")
		  EV("dns_proxy_started", "{\"allowlist\":[\"a.\", \".\"],\"timeoutMs\":5}"),
	  EV("dns_query", "{\"qname\":\"\",\"qtype\":2}")
		  EV("dns_proxy_started", "{\"allowlist\":[\"a.\", \"\"],\"timeoutMs\":5}"),
	  EV("dns_query", "{\"qname\":\"a.\"}") },
	{ "dns.query_id_reused",
	  EV("dns_query", "{\"queryId\":\"q-1\"}") EV("dns_query", "{\"queryId\":\"q-2\"}"),
	  EV("dns_query", "{\"queryId\":\"q-1\"}") EV("dns_query", "{\"queryId\":\"q-1\"}"),
	  EV("dns_proxy_stats", "{\"queryId\":\"q-2\"}") },
	{ "dns.v6_port_unbracketed",
	  EV("dns_proxy_started", STARTED("[fd53::10]:53", "[fd53::1]:53", "[fd53::1]:53"))
		  EV("dns_query", QUERY("fd53::10", "[fd53::1]:53")),
	  EV("dns_proxy_started", STARTED("fd53::10:53", "fd53::1:53", "fd53::1:53"))
		  EV("dns_query", QUERY("fd53::10", "fd53::1:53")),
	  EV("dns_proxy_started", STARTED("10.0.0.1:53", "10.0.0.2:53", "[fd53::1]:53")) },
	{ "dns.v6_text_inet_ntop",
	  EV("dns_proxy_started", STARTED("[::a35:a]:53", "[::a35:1]:53", "[::a35:1]:53"))
		  EV("dns_query", QUERY("::a35:a", "[::a35:1]:53")),
	  EV("dns_proxy_started",
	     STARTED("[::10.53.0.10]:53", "[::10.53.0.1]:53", "[::10.53.0.1]:53"))
		  EV("dns_query", QUERY("::10.53.0.10", "[::10.53.0.1]:53")),
	  EV("dns_query", QUERY("fd53::10", "r")) },
	{ "evt.json_quote_raw", EV("dns_query", DQ("udp")),
	  EV("dns_query", "{\"qname\":\"a\"b.example\",\"transport\":\"udp\",\"note\":\"x\"}"),
	  EV("dns_query", "{\"qname\":\"a\\\\b\"}") },
	{ "evt.utf8_one_per_run",
	  EV("cell_started", "{\"command\":[\"a\xEF\xBF\xBD\xEF\xBF\xBDz\"]}"),
	  EV("cell_started", "{\"command\":[\"a\xEF\xBF\xBDz\"]}"),
	  EV("cell_started", "{\"command\":[\"a\xEF\xBF\xBDz\xEF\xBF\xBD\"]}") },
	{ "dns.listeners_reversed",
	  EV("dns_proxy_started",
	     "{\"listen\":\"[fd53::10]:53\",\"listeners\":[\"[fd53::10]:53\", \"10.0.0.1:53\"]}"),
	  EV("dns_proxy_started",
	     "{\"listen\":\"[fd53::10]:53\",\"listeners\":[\"10.0.0.1:53\", \"[fd53::10]:53\"]}"),
	  EV("dns_query", "{\"listeners\":[\"a\",\"b\"]}") },
	{ "dns.query_listen_first",
	  EV("dns_proxy_started", "{\"listen\":\"10.0.0.1:53\"}")
		  EV("dns_query", "{\"listen\":\"[fd53::10]:53\",\"x\":1}"),
	  EV("dns_proxy_started", "{\"listen\":\"10.0.0.1:53\"}")
		  EV("dns_query", "{\"listen\":\"10.0.0.1:53\",\"x\":1}"),
	  EV("dns_query", "{\"listen\":\"[fd53::10]:53\"}") },
	{ "dns.failed_stage_unknown", EV("dns_proxy_failed", "{\"stage\":\"bind\",\"errno\":98}"),
	  EV("dns_proxy_failed", "{\"stage\":\"unknown\",\"errno\":98}"),
	  EV("flow_monitor_failed", "{\"stage\":\"attach\"}") },
	{ "dns.event_transport_swapped", EV("dns_query", DQ("udp")) EV("dns_query", DQ("tcp")),
	  EV("dns_query", DQ("tcp")) EV("dns_query", DQ("udp")),
	  EV("dns_proxy_started", "{\"transport\":\"udp\"}") },
	{ "dns.stats_tcp_as_udp", EV("dns_proxy_stats", STATS("4", "5")),
	  EV("dns_proxy_stats", STATS("9", "0")), EV("dns_proxy_stats", STATS("4", "0")) },
	{ "flow.event_pkt_count_zero", EV("network_flow_decision", DEC("17")),
	  EV("network_flow_decision", DEC("0")), EV("network_flow_tally", DEC("17")) },
	{ "flow.summary_miscount", EV("flow_monitor_summary", SUMMARY("7", "2", "6")),
	  EV("flow_monitor_summary", SUMMARY("7", "2", "7")),
	  EV("cell_exited", "{\"uniqueFlowCount\":6}") },
	{ "flow.lost_uncounted", EV("flow_monitor_summary", SUMMARY("7", "2", "6")),
	  EV("flow_monitor_summary", SUMMARY("7", "0", "6")),
	  EV("network_flow_tally", "{\"recordsLost\":2}") },
	{ "flow.event_byte_count_absent",
	  EV("network_flow_decision", "{\"packetCount\":1,\"byteCount\":112,\"x\":1}")
		  EV("network_flow_tally", "{\"packetCount\":3,\"byteCount\":336}"),
	  EV("network_flow_decision", "{\"packetCount\":1,\"x\":1}")
		  EV("network_flow_tally", "{\"packetCount\":3}"),
	  EV("flow_monitor_summary", "{\"byteCount\":5}") },
	{ "flow.started_version_wrong",
	  EV("flow_monitor_started", "{\"recordVersion\":2}")
		  EV("flow_monitor_started", "{\"recordVersion\":1}"),
	  EV("flow_monitor_started", "{\"recordVersion\":1}")
		  EV("flow_monitor_started", "{\"recordVersion\":2}"),
	  EV("flow_monitor_summary", "{\"recordVersion\":2}") },
	{ "sup.degraded_silent",
	  EV("cell_started", "{}") EV("cell_degraded", "{\"step\":\"affinity\"}")
		  EV("cell_exited", "{}"),
	  EV("cell_started", "{}") EV("cell_exited", "{}"),
	  EV("cell_setup_failed", "{\"step\":\"affinity\"}") },
	{ "sup.exited_no_flow_count",
	  EV("cell_exited", "{\"status\":\"exited\",\"uniqueFlowCount\":3,\"relayTruncated\":0}")
		  EV("cell_exited", "{\"status\":\"exited\",\"uniqueFlowCount\":3}"),
	  EV("cell_exited", "{\"status\":\"exited\",\"relayTruncated\":0}")
		  EV("cell_exited", "{\"status\":\"exited\"}"),
	  EV("flow_monitor_summary", "{\"uniqueFlowCount\":3}") },
	{ "sup.signal_as_exit",
	  EV("cell_exited", "{\"status\":\"signaled\",\"exitCode\":137,\"signal\":9,"
			    "\"signalName\":\"KILL\",\"durationMs\":5}"),
	  EV("cell_exited", "{\"status\":\"exited\",\"exitCode\":137,\"workloadStatus\":137,"
			    "\"durationMs\":5}"),
	  EV("cell_exited", "{\"status\":\"exited\",\"exitCode\":3,\"workloadStatus\":3}") },
	{ "decode.byte_count_missing",
	  V2LINE("6", "2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2", BC),
	  V2LINE("6", "2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2", ""),
	  V6("2001:db8::1") },
	{ "decode.family_ignored",
	  V2LINE("4", "10.0.0.1", "192.0.2.1", "10.0.0.1", "192.0.2.1", BC),
	  V2LINE("4", "10.0.0.1", "192.0.2.1", "::ffff:10.0.0.1", "::ffff:192.0.2.1", BC),
	  V2LINE("6", "2001:db8::1", "::ffff:10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", BC) },
	{ "decode.v2_addr_words",
	  V2LINE("4", "10.0.0.1", "192.0.2.1", "10.0.0.1", "192.0.2.1", BC)
		  V2LINE("6", "2001:db8::1", "::", "2001:db8::1", "::", BC),
	  V2LINE("4", "::ffff:0:100:a", "::ffff:0:102:c0", "::ffff:0:100:a", "::ffff:0:102:c0", BC)
		  V2LINE("6", "b80d:120::100:0", "::", "b80d:120::100:0", "::", BC),
	  V6("2001:db8::1") },
	{ "sup.running_ipv6_single_stack",
	  EV("cell_running", "{\"address\":\"10.88.0.5\",\"pid\":1}"),
	  EV("cell_running",
	     "{\"address\":\"10.88.0.5\",\"ipv6Address\":\"fd00:88::5\",\"pid\":1}"),
	  EV("cell_running", "{\"address\":\"10.88.0.5\",\"ipv6Address\":\"fd00:88::7\"}") },
	{ "sup.relay_source_own",
	  ENV("id-1", SUP, T "cell_started", TIME, CT, "", "{}")
		  ENV("id-2", DNS, T "dns_query", TIME, CT, "", "{}"),
	  ENV("id-1", SUP, T "cell_started", TIME, CT, "", "{}")
		  ENV("id-2", SUP, T "dns_query", TIME, CT, "", "{}"),
	  ENV("id-2", DNS, T "dns_query", TIME, CT, "", "{}") },
	{ "decode.port_order",
	  DECODED("4660", "443", "1", "allow", "\"protocol\":\"tcp\",", "10.0.0.1"),
	  DECODED("13330", "47873", "1", "allow", "\"protocol\":\"tcp\",", "10.0.0.1"),
	  EV("network_flow_decision", "{\"dstPort\":443}") },
	{ "decode.verdict_map", DECODED("1", "2", "2", "deny", "", "10.0.0.1"),
	  DECODED("1", "2", "2", "allow", "", "10.0.0.1"),
	  DECODED("1", "2", "1", "allow", "", "10.0.0.1") },
	{ "decode.proto_guess", DECODED("1", "2", "1", "allow", "", "10.0.0.1"),
	  DECODED("1", "2", "1", "allow", "\"protocol\":\"tcp\",", "10.0.0.1"),
	  DECODED("1", "2", "1", "allow", "\"protocol\":\"udp\",", "10.0.0.1") },
	{ "decode.addr_zero_tens",
	  DECODED("1", "2", "1", "allow", "", "100.101.109.110")
		  EV("network_flow_decision", DEC("1")),
	  DECODED("1", "2", "1", "allow", "", "10.11.19.110")
		  EV("network_flow_decision",
		     "{\"dstAddr\":\"10.0.15.7\",\"dstPort\":443,\"packetCount\":1}"),
	  DECODED("1", "2", "1", "allow", "", "110.99.10.1") },
	{ "decode.v6_no_compress", V6("2001:db8::1"), V6("2001:db8:0:0:0:0:0:1"),
	  V6("1:2:3:4:5:6:7:8") },
	{ "decode.v6_first_run", V6("1111:0:0:2222::3333"), V6("1111::2222:0:0:0:3333"),
	  V6("2001:db8::1") },
	{ "decode.v6_tie_last", V6("1111::2222:0:0:3333:4444"), V6("1111:0:0:2222::3333:4444"),
	  V6("2001:db8::1") },
	{ "decode.v6_single_zero", V6("1111:0:2222:3333:4444:5555:6666:7777"),
	  V6("1111::2222:3333:4444:5555:6666:7777"), V6("2001:db8::1") },
	{ "decode.v6_mapped_hex",
	  V6("::ffff:192.0.2.1") EV("network_flow_decision", "{\"dstAddr\":\"::ffff:10.0.0.1\"}"),
	  V6("::ffff:c000:201") EV("network_flow_decision", "{\"dstAddr\":\"::ffff:a00:1\"}"),
	  V6("2001:db8::1") },
	{ "decode.v6_upper", V6("abcd:ef01::1"), V6("ABCD:EF01::1"), V6("2001:123::1") },
	{ "decode.v6_leading_zeros", V6("2001:db8::1"), V6("2001:0db8::0001"),
	  V6("1111:2222::3333") },
};

/* Lines no fault applies to. */
static const char *const neutral[] = {
	"not json at all\n",
	"{\"ok\":false,\"index\":0,\"error\":\"wrong_length\",\"got\":41}\n",
	"{\"cellcheck\":\"another writer of this sink\",\"pad\":\"0123\"}\n",
	"{\"specversion\":\"1.0\",\"id\":\"x\"", /* cut short, no end of line */
	"\n",
};

static bool through(const char *fault, const char *in, const char *want)
{
	char *got = NULL;
	size_t len = 0;
	bool ok;

	if (!ASSERT_OK(evf_buffer(fault, in, strlen(in), &got, &len)))
		return false;
	ok = ASSERT_EQ(len, strlen(got)) && ASSERT_TRUE(strcmp(got, want) == 0);
	if (!ok)
		tap_diag("%s: in %.*s, got %.*s, want %.*s", fault, (int)strcspn(in, "\n"), in,
			 (int)strcspn(got, "\n"), got, (int)strcspn(want, "\n"), want);
	free(got);
	return ok;
}

TEST(every_fault_of_the_table_has_a_row_and_back)
{
	size_t n = sizeof(rows) / sizeof(rows[0]);

	ASSERT_EQ(evf_count(), n);
	for (size_t i = 0; i < evf_count(); i++) {
		bool found = false;

		for (size_t k = 0; k < n; k++)
			found |= strcmp(rows[k].fault, evf_name(i)) == 0;
		if (!ASSERT_TRUE(found))
			tap_diag("no row for %s", evf_name(i));
		ASSERT_TRUE(evf_find(evf_name(i)) != NULL);
	}
	ASSERT_TRUE(evf_find("evt.no_such_fault") == NULL);
	ASSERT_TRUE(evf_find("dns.wake_event") == NULL); /* a behaviour: stays in ref/ */
}

TEST(every_fault_changes_its_line_as_written)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ASSERT_TRUE(strcmp(rows[i].in, rows[i].want) != 0);
		through(rows[i].fault, rows[i].in, rows[i].want);
	}
}

TEST(every_fault_leaves_other_lines_byte_identical)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].other)
			through(rows[i].fault, rows[i].other, rows[i].other);
		for (size_t k = 0; k < sizeof(neutral) / sizeof(neutral[0]); k++)
			through(rows[i].fault, neutral[k], neutral[k]);
	}
}

/* Lines around a changed one keep their bytes, the changed one its place. */
TEST(a_changed_line_keeps_its_neighbours)
{
	static const char in[] = "first\n" EV("dns_query", "{}") "last without end";
	static const char want[] =
		"first\n" ENV("id-1", "", T "dns_query", TIME, CT, "", "{}") "last without end";

	through("evt.source_empty", in, want);
	ASSERT_ERR(
		evf_buffer("evt.no_such_fault", in, strlen(in), &(char *){ NULL }, &(size_t){ 0 }),
		-ENOENT);
}

/* ---- the program ----------------------------------------------------------------------- */

/* The program under test: meson passes its path (CELLCHECK_EVFILTER). */
static const char *evfilter(void)
{
	const char *p = getenv("CELLCHECK_EVFILTER");

	if (!p || !*p)
		tap_skip("CELLCHECK_EVFILTER not set (run through meson test)");
	return p;
}

struct child {
	pid_t pid;
	int in, out; /* its stdin (ours to write), its stdout (ours to read) */
};

static bool start(const char *fault, struct child *c)
{
	const char *prog = evfilter();
	int i[2], o[2];

	signal(SIGPIPE, SIG_IGN);
	if (!ASSERT_OK(pipe2(i, O_CLOEXEC)) || !ASSERT_OK(pipe2(o, O_CLOEXEC)))
		return false;
	c->pid = fork();
	if (c->pid == 0) {
		dup2(i[0], 0);
		dup2(o[1], 1);
		execl(prog, prog, fault, (char *)NULL);
		_exit(127);
	}
	close(i[0]);
	close(o[1]);
	c->in = i[1];
	c->out = o[0];
	return ASSERT_GT(c->pid, 0);
}

/* What the child wrote within ms (up to max bytes). */
static size_t read_for(int fd, char *buf, size_t max, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	while (n < max && poll(&p, 1, ms) > 0) {
		ssize_t r = read(fd, buf + n, max - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		ms = 50;
	}
	return n;
}

static int finish(struct child *c)
{
	int st = 0;

	close(c->in);
	close(c->out);
	if (waitpid(c->pid, &st, 0) != c->pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(the_program_writes_each_line_as_it_comes_and_exits_at_the_end)
{
	static const char line[] = EV("dns_query", "{}");
	static const char want[] = ENV("id-1", DNS, "dns_query", TIME, CT, "", "{}");
	struct child c;
	char buf[4096];
	size_t n;

	if (!start("evt.type_short", &c))
		return;
	/* One line, input still open: it must come out now, not at the end. */
	ASSERT_EQ(write(c.in, line, sizeof(line) - 1), (ssize_t)sizeof(line) - 1);
	n = read_for(c.out, buf, sizeof(buf), 5000);
	ASSERT_EQ(n, sizeof(want) - 1);
	ASSERT_TRUE(n == sizeof(want) - 1 && memcmp(buf, want, n) == 0);
	/* Half a line waits for its end; the rest of the bytes pass through. */
	ASSERT_EQ(write(c.in, "plain ", 6), 6);
	ASSERT_EQ(read_for(c.out, buf, sizeof(buf), 200), 0);
	ASSERT_EQ(write(c.in, "text", 4), 4);
	close(c.in);
	c.in = -1;
	n = read_for(c.out, buf, sizeof(buf), 5000);
	ASSERT_TRUE(n == 10 && memcmp(buf, "plain text", 10) == 0);
	ASSERT_EQ(finish(&c), 0);
}

TEST_TIMEOUT(the_program_passes_an_overlong_line_through_unedited, 60)
{
	static const char head[] = "{\"specversion\":\"1.0\",\"source\":\"s\",\"pad\":\"";
	size_t big = EVF_LINE_MAX + 100000, n = 0;
	char *line = malloc(big + 1), *got = malloc(big + 4096);
	struct child c;
	pid_t w;

	if (!ASSERT_TRUE(line && got) || !start("evt.source_empty", &c))
		goto out;
	/* An event whose source would change, were it short enough to edit. */
	memset(line, 'x', big);
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + big - 3, "\"}\n", 3);
	w = fork();
	if (w == 0) {
		close(c.out);
		_exit(write(c.in, line, big) == (ssize_t)big ? 0 : 1);
	}
	close(c.in);
	c.in = -1;
	n = read_for(c.out, got, big + 4096, 10000);
	waitpid(w, NULL, 0);
	ASSERT_EQ(n, big);
	ASSERT_TRUE(n == big && memcmp(got, line, big) == 0);
	ASSERT_EQ(finish(&c), 0);
out:
	free(line);
	free(got);
}

TEST(the_program_refuses_an_unknown_fault)
{
	struct child c;

	if (!start("evt.no_such_fault", &c))
		return;
	ASSERT_EQ(finish(&c), 2);
}
