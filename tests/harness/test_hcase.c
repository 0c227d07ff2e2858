// SPDX-License-Identifier: Apache-2.0
/* Case loader: a full case loads into the typed model; every kind of mistake is an error that
 * names the JSON path; families load all or nothing; IDs are unique; --filter globbing. */
#include <signal.h>

#include "hcase.h"
#include "htest.h"
#include "tap.h"
#include "util.h"

static const char FLOW_CASE[] =
	"{\"id\": \"flow.udp.five-tuple\","
	" \"title\": \"A UDP flow gives one record with its exact 5-tuple\","
	" \"component\": \"flow-monitor\","
	" \"requirements\": [{\"id\": \"FLOW-MON-010\", \"level\": \"MUST\", \"clause\": \"SPEC 6.3\"},"
	"                    {\"id\": \"FLOW-REC-003\", \"level\": \"MUST\"}],"
	" \"features\": [\"btf\", \"ringbuf\", \"clsact\", \"veth\", \"root\", \"tool:dig\"],"
	" \"timeout_ms\": 8000,"
	" \"fault\": \"flowrec.pad_nonzero\","
	" \"topology\": {\"namespaces\": [\"cell\", \"peer\"],"
	"   \"links\": [{\"type\": \"veth\", \"mtu\": 1500, \"ends\": ["
	"     {\"ns\": \"cell\", \"ifname\": \"eth0\", \"addrs\": [\"10.99.0.2/24\", \"fd00::2/64\"]},"
	"     {\"ns\": \"peer\", \"ifname\": \"eth0\", \"addrs\": [\"10.99.0.1/24\"]}]}],"
	"   \"routes\": [{\"ns\": \"cell\", \"dst\": \"default\", \"via\": \"10.99.0.1\"}]},"
	" \"steps\": ["
	"   {\"action\": \"start\", \"name\": \"mon\", \"ns\": \"cell\", \"vars\": {\"ifname\": \"eth0\"}},"
	"   {\"action\": \"driver\", \"name\": \"send\", \"ns\": \"cell\", \"op\": \"udp_flow\","
	"    \"args\": {\"dst\": \"10.99.0.1:5353\", \"src_port\": 40000, \"count\": 3}},"
	"   {\"action\": \"wait\", \"event\": \"network_flow_decision\", \"count\": 1, \"timeout_ms\": 2000},"
	"   {\"action\": \"signal\", \"target\": \"mon\", \"signal\": \"HUP\"},"
	"   {\"action\": \"stop\", \"target\": \"mon\", \"expect_exit\": 0}],"
	" \"expect\": {"
	"   \"responses\": [{\"step\": \"send\", \"none\": true}],"
	"   \"events\": {\"order\": \"unordered\", \"schema\": true, \"match\": [{\"type\": "
	"     \"network_flow_decision\", \"count\": 1, \"fields\": {"
	"       \"data.dstAddr\": {\"exact\": \"10.99.0.1\"}, \"data.dstPort\": {\"exact\": 5353},"
	"       \"data.packetCount\": {\"range\": [3, 3]}, \"id\": {\"regex\": \"^[0-9a-f-]{36}$\"},"
	"       \"data.correlationId\": {\"present\": true}, \"data.bogus\": {\"absent\": true}}}]},"
	"   \"records\": {\"pad_zero\": true, \"monotonic\": [\"first_seen_ns\"], \"match\": [{"
	"     \"count\": 1, \"fields\": {\"src_port\": {\"exact\": 40000},"
	"     \"first_seen_ns\": {\"range\": [\"{case.start_ns}\", \"{case.end_ns}\"]}}}]},"
	"   \"counts\": {\"records\": 1, \"events:network_flow_decision\": {\"range\": [1, 1]},"
	"     \"lost\": 0}}}";

static const char DNS_CASE[] =
	"{\"id\": \"dns.policy.denied\", \"title\": \"A denied name gets REFUSED\","
	" \"component\": \"dns-proxy\", \"requirements\": [{\"id\": \"DNS-POL-001\", \"level\": \"MUST\"}],"
	" \"fault\": \"dnspol.allow_all\","
	" \"topology\": {\"namespaces\": [\"cell\", \"up\"], \"links\": [{\"type\": \"veth\", \"ends\": ["
	"   {\"ns\": \"cell\", \"ifname\": \"c0\", \"addrs\": [\"10.98.0.2/24\"]},"
	"   {\"ns\": \"up\", \"ifname\": \"u0\", \"addrs\": [\"10.98.0.1/24\"]}]}]},"
	" \"upstream\": {\"kind\": \"fake\", \"ns\": \"up\", \"listen\": \"10.98.0.1:53\", \"rules\": ["
	"   {\"match\": {\"qname\": \"a.example.test\", \"qtype\": \"A\"}, \"action\": \"answer\","
	"    \"records\": [\"a.example.test. 60 IN A 192.0.2.1\"]},"
	"   {\"action\": \"forge\", \"forge\": \"txid\", \"delay_ms\": 5}]},"
	" \"steps\": ["
	"   {\"action\": \"start\", \"name\": \"proxy\", \"ns\": \"cell\", \"args\": [\"--allow\", \"example.test\"],"
	"    \"vars\": {\"listen\": \"10.98.0.2:53\", \"upstream\": \"10.98.0.1:53\"}},"
	"   {\"action\": \"driver\", \"name\": \"q1\", \"ns\": \"cell\", \"op\": \"dns_query\","
	"    \"args\": {\"dst\": \"10.98.0.2:53\", \"transport\": \"udp\", \"qname\": \"evil.test\"}},"
	"   {\"action\": \"client\", \"name\": \"dig\", \"ns\": \"cell\", \"argv\": [\"dig\", \"@10.98.0.2\"], \"expect_exit\": 0},"
	"   {\"action\": \"stop\", \"target\": \"proxy\"}],"
	" \"expect\": {\"responses\": [{\"step\": \"q1\", \"fields\": {\"rcode\": {\"exact\": \"REFUSED\"}}}],"
	"   \"counts\": {\"upstream_queries\": 0}}}";

/* Load text as one case; on failure fill err. */
static int load_text(const char *text, struct hcase **ret, struct hjson_err *err)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	int r;

	if (!doc) {
		tap_diag("test JSON does not parse: %s (line %d col %d)", jerr.text, jerr.line,
			 jerr.column);
		return -EBADMSG;
	}
	r = hcase_from_json(doc, "mem.json", "$", ret, err);
	json_decref(doc);
	return r;
}

/* Apply a mutation (a JSON patch of one member at a dotted path) and expect an error there. */
static bool expect_error(const char *base, const char *set_path, const char *value_json,
			 const char *want_path, const char *want_msg)
{
	json_t *doc = json_loads(base, 0, NULL), *parent = doc, *val = NULL;
	_cleanup_free_ char *p = strdup(set_path), *text = NULL;
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;
	char *tok, *save = NULL, *last = NULL;
	bool ok;
	int r;

	if (!doc || !p)
		return ASSERT_TRUE(false);
	for (tok = strtok_r(p, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (last) {
			json_t *next = json_is_array(parent)
					       ? json_array_get(parent, strtoul(last, NULL, 10))
					       : json_object_get(parent, last);
			parent = next;
		}
		last = tok;
	}
	if (value_json) {
		val = json_loads(value_json, JSON_DECODE_ANY, NULL);
		if (!val || !parent)
			return ASSERT_TRUE(false);
		if (json_is_array(parent))
			json_array_set_new(parent, strtoul(last, NULL, 10), val);
		else
			json_object_set_new(parent, last, val);
	} else {
		json_object_del(parent, last);
	}
	text = json_dumps(doc, 0);
	json_decref(doc);
	r = load_text(text, &c, &err);
	hcase_free(c);
	ok = ASSERT_ERR(r, -EINVAL);
	ok = ok && ASSERT_STREQ(err.path, want_path);
	ok = ok && tap_check(strstr(err.msg, want_msg) != NULL, __FILE__, __LINE__,
			     "message \"%s\" contains \"%s\"", err.msg, want_msg);
	return ok;
}

TEST(full_flow_case_loads_typed)
{
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;

	if (!ASSERT_OK(load_text(FLOW_CASE, &c, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(c->id, "flow.udp.five-tuple");
	ASSERT_EQ(c->component, HCASE_FLOW_MONITOR);
	ASSERT_EQ(c->n_reqs, 2);
	ASSERT_STREQ(c->reqs[0].clause, "SPEC 6.3");
	ASSERT_EQ(hcase_level(c), HCASE_MUST);
	ASSERT_EQ(c->timeout_ms, 8000);
	ASSERT_STREQ(c->fault, "flowrec.pad_nonzero");
	ASSERT_EQ(c->topo.n_ns, 2);
	ASSERT_EQ(c->topo.n_links, 1);
	ASSERT_EQ(c->topo.links[0].mtu, 1500);
	ASSERT_STREQ(c->topo.links[0].end[0].addrs[1], "fd00::2/64");
	ASSERT_STREQ(c->topo.routes[0].via, "10.99.0.1");
	ASSERT_EQ(c->n_steps, 5);
	ASSERT_EQ(c->steps[0].action, HCASE_ACT_START);
	ASSERT_EQ(c->steps[0].start.component, HCASE_FLOW_MONITOR);
	ASSERT_TRUE(c->steps[0].start.ready);
	ASSERT_STREQ(json_string_value(json_object_get(c->steps[0].start.vars, "ifname")), "eth0");
	ASSERT_STREQ(c->steps[1].driver.op, "udp_flow");
	ASSERT_EQ(json_integer_value(json_object_get(c->steps[1].driver.args, "count")), 3);
	ASSERT_STREQ(c->steps[2].wait.event_type, "network_flow_decision");
	ASSERT_EQ(c->steps[3].signal.signo, SIGHUP);
	ASSERT_EQ(c->steps[4].stop.signo, SIGTERM);
	ASSERT_EQ(c->steps[4].stop.expect_exit, 0);
	ASSERT_TRUE(json_is_object(c->expect));
	hcase_free(c);
}

TEST(dns_case_with_upstream_loads)
{
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;

	if (!ASSERT_OK(load_text(DNS_CASE, &c, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_STREQ(json_string_value(json_object_get(c->upstream, "kind")), "fake");
	ASSERT_STREQ(c->steps[0].start.args[1], "example.test");
	ASSERT_EQ(c->steps[2].action, HCASE_ACT_CLIENT);
	ASSERT_STREQ(c->steps[2].client.argv[0], "dig");
	ASSERT_EQ(c->timeout_ms, 10000); /* the default */
	hcase_free(c);
}

TEST(unknown_keys_name_their_path)
{
	expect_error(FLOW_CASE, "bogus", "1", "$.bogus", "unknown key");
	expect_error(FLOW_CASE, "steps/1/bogus", "1", "$.steps[1].bogus", "unknown key");
	expect_error(FLOW_CASE, "steps/1/args/bogus", "1", "$.steps[1].args.bogus", "unknown key");
	expect_error(FLOW_CASE, "topology/links/0/ends/1/mac", "\"x\"",
		     "$.topology.links[0].ends[1].mac", "unknown key");
	expect_error(FLOW_CASE, "expect/events/match/0/fields/id/regexp", "\"x\"",
		     "$.expect.events.match[0].fields.id", "exactly one of");
	/* wait's keys are not start's keys */
	expect_error(FLOW_CASE, "steps/2/stdin", "\"x\"", "$.steps[2].stdin", "unknown key");
}

TEST(types_values_and_required_keys)
{
	expect_error(FLOW_CASE, "id", "\"Flow_UDP\"", "$.id", "not a case ID");
	expect_error(FLOW_CASE, "id", "\"single\"", "$.id", "not a case ID");
	expect_error(FLOW_CASE, "title", NULL, "$.title", "required key missing");
	expect_error(FLOW_CASE, "fault", NULL, "$.fault", "required key missing");
	expect_error(FLOW_CASE, "component", "\"kernel\"", "$.component", "is not one of");
	expect_error(FLOW_CASE, "requirements/1/level", "\"MUST NOT\"", "$.requirements[1].level",
		     "is not one of");
	expect_error(FLOW_CASE, "requirements/1/id", "\"flow-rec-3\"", "$.requirements[1].id",
		     "not a requirement ID");
	expect_error(FLOW_CASE, "requirements/1/id", "\"FLOW-MON-010\"", "$.requirements[1].id",
		     "listed twice");
	expect_error(FLOW_CASE, "requirements", "[]", "$.requirements", "at least one");
	expect_error(FLOW_CASE, "timeout_ms", "0", "$.timeout_ms", "out of range");
	expect_error(FLOW_CASE, "timeout_ms", "\"5s\"", "$.timeout_ms", "expected an integer");
	expect_error(FLOW_CASE, "features/0", "\"bpf\"", "$.features[0]", "unknown feature");
	expect_error(FLOW_CASE, "topology/links/0/ends/0/addrs/0", "\"10.99.0.2\"",
		     "$.topology.links[0].ends[0].addrs[0]", "ADDRESS/PREFIXLEN");
	expect_error(FLOW_CASE, "topology/links/0/ends/0/ifname", "\"much-too-long-name\"",
		     "$.topology.links[0].ends[0].ifname", "not an interface name");
	expect_error(FLOW_CASE, "topology/namespaces/1", "\"cell\"", "$.topology.namespaces[1]",
		     "declared twice");
	expect_error(FLOW_CASE, "steps/1/args/dst", "\"10.99.0.1\"", "$.steps[1].args.dst",
		     "not a destination");
	expect_error(FLOW_CASE, "steps/1/op", "\"teleport\"", "$.steps[1].op",
		     "unknown driver operation");
	expect_error(FLOW_CASE, "steps/3/signal", "\"SIGHUP\"", "$.steps[3].signal",
		     "not a signal name");
	expect_error(FLOW_CASE, "expect/events/match/0/fields/id", "{\"regex\": \"([a-z\"}",
		     "$.expect.events.match[0].fields.id.regex", "regex");
	expect_error(FLOW_CASE, "expect/records/match/0/fields/sport", "{\"exact\": 1}",
		     "$.expect.records.match[0].fields.sport", "not a record field");
	expect_error(FLOW_CASE, "expect/counts/packets", "3", "$.expect.counts.packets",
		     "unknown counter");
	expect_error(
		FLOW_CASE, "expect/events/match/0/fields/data.packetCount", "{\"range\": [4, 3]}",
		"$.expect.events.match[0].fields.data.packetCount.range", "LO is greater than HI");
	expect_error(FLOW_CASE, "expect/btf",
		     "{\"artifact\": \"bpf_object\", \"struct\": \"flowrec_v2\", \"members\": [],"
		     " \"record_version\": 3}",
		     "$.expect.btf", "record_version: expected a flow record version, 1 to 2");
}

TEST(cross_references_are_checked)
{
	expect_error(FLOW_CASE, "steps/1/ns", "\"host\"", "$.steps[1].ns", "not declared");
	expect_error(FLOW_CASE, "topology/routes/0/ns", "\"nowhere\"", "$.topology.routes[0].ns",
		     "not declared");
	expect_error(FLOW_CASE, "steps/4/target", "\"send\"", "$.steps[4].target",
		     "no earlier start step");
	expect_error(FLOW_CASE, "steps/1/name", "\"mon\"", "$.steps[1].name", "used twice");
	expect_error(FLOW_CASE, "expect/responses/0/step", "\"mon\"", "$.expect.responses[0].step",
		     "no driver or client step");
	expect_error(FLOW_CASE, "steps/0/component", "\"dns-proxy\"", "$.steps[0].component",
		     "neither the case's component");
	expect_error(DNS_CASE, "upstream/ns", "\"cell2\"", "$.upstream.ns", "not declared");
	expect_error(DNS_CASE, "upstream/zone", "[\"x\"]", "$.upstream.zone",
		     "not allowed for kind");
	expect_error(DNS_CASE, "upstream/rules/1/forge", NULL, "$.upstream.rules[1]",
		     "\"forge\" goes with");
	expect_error(DNS_CASE, "topology/links/0/ends/1", "{\"ns\": \"cell\", \"ifname\": \"c0\"}",
		     "$.topology.links[0]", "interface c0 twice in namespace cell");
}

/* The keys of the catalogue's last families: planted links, other users, sinks, files. */
#define A16	   "aaaaaaaaaaaaaaaa"
#define LONG_ALIAS A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 "a"
TEST(topology_links_start_keys_and_file_steps)
{
	static const char LOAD[] =
		"{\"id\": \"t.more\", \"title\": \"t\", \"component\": \"dns-proxy\","
		" \"requirements\": [{\"id\": \"DNS-POL-001\", \"level\": \"MUST\"}],"
		" \"fault\": \"dns.x\","
		" \"topology\": {\"namespaces\": [\"cell\"], \"links\": ["
		"   {\"type\": \"veth\", \"ends\": [{\"ns\": \"cell\", \"ifname\": \"a0\", \"alias\": \"x:1\"},"
		"     {\"ns\": \"cell\", \"ifname\": \"a1\"}]},"
		"   {\"type\": \"dummy\", \"ns\": \"cell\", \"ifname\": \"d0\", \"alias\": \"cellref:c:r\"},"
		"   {\"type\": \"bridge\", \"ns\": \"cell\", \"ifname\": \"br0\", \"alias\": \"cellref-bridge\","
		"    \"ports\": [\"a1\", \"d0\"], \"addrs\": [\"10.1.0.1/24\"]}]},"
		" \"steps\": ["
		"   {\"action\": \"file\", \"path\": \"{case_dir}/state/leases/10.1.0.2\","
		"    \"content\": \"{\\\"ownerPid\\\": {pid.h}}\"},"
		"   {\"action\": \"start\", \"name\": \"h\", \"argv\": [\"/bin/sleep\", \"5\"],"
		"    \"user\": \"65534:65534\", \"groups\": [4401], \"env\": {\"X\": \"{case_dir}\"}},"
		"   {\"action\": \"start\", \"name\": \"p\", \"ns\": \"cell\", \"events_sink\": \"stalled\","
		"    \"prefill\": true, \"ready\": false, \"vars\": {\"listen\": \"10.1.0.1:53\"},"
		"    \"listeners\": {\"udp\": true, \"tcp_busy\": true, \"udp_at\": \"10.1.0.1:5353\"},"
		"    \"expect_ready\": \"none\"},"
		"   {\"action\": \"drain\", \"target\": \"p\"},"
		"   {\"action\": \"stop\", \"target\": \"p\"}],"
		" \"expect\": {\"counts\": {\"var:ready.p.events\": 1}}}";
	struct hjson_err err = { 0 };
	struct hcase *c = NULL;
	int r = load_text(LOAD, &c, &err);

	if (!ASSERT_OK(r)) {
		tap_diag("%s: %s", err.path, err.msg);
		return;
	}
	ASSERT_EQ(c->topo.n_links, 3u);
	ASSERT_EQ(c->topo.links[1].type, HCASE_LINK_DUMMY);
	ASSERT_STREQ(c->topo.links[2].ports[1], "d0");
	ASSERT_STREQ(c->topo.links[0].end[0].alias, "x:1");
	ASSERT_EQ(c->steps[0].action, HCASE_ACT_FILE);
	ASSERT_TRUE(c->steps[1].start.has_user && c->steps[1].start.uid == 65534 &&
		    c->steps[1].start.n_groups == 1);
	ASSERT_EQ(c->steps[2].start.sink, HCASE_SINK_STALLED);
	ASSERT_TRUE(c->steps[2].start.prefill && c->steps[2].start.lis_udp &&
		    c->steps[2].start.lis_tcp_busy && c->steps[2].start.expect_no_ready);
	ASSERT_STREQ(c->steps[2].start.lis_udp_at, "10.1.0.1:5353");
	ASSERT_TRUE(c->steps[2].start.lis_tcp_at == NULL);
	hcase_free(c);

	expect_error(LOAD, "topology/links/2/ports/0", "\"zz0\"", "$.topology.links[2].ports",
		     "no interface of an earlier link");
	expect_error(LOAD, "topology/links/1/ports", "[\"a1\"]", "$.topology.links[1]",
		     "a dummy link has no \"ports\"");
	expect_error(LOAD, "topology/links/1/alias", "\"" LONG_ALIAS "\"",
		     "$.topology.links[1].alias", "1 to 255 bytes");
	expect_error(LOAD, "steps/0/path", "\"/etc/passwd\"", "$.steps[0].path",
		     "below {case_dir}/ only");
	expect_error(LOAD, "steps/0/path", "\"{case_dir}/../x\"", "$.steps[0].path",
		     "below {case_dir}/ only");
	expect_error(LOAD, "steps/1/user", "\"nobody\"", "$.steps[1].user", "not UID:GID");
	expect_error(LOAD, "steps/1/user", "\"1:-2\"", "$.steps[1].user", "not UID:GID");
	expect_error(LOAD, "steps/1/groups/0", "-1", "$.steps[1].groups[0]", "expected a GID");
	expect_error(LOAD, "steps/1/env", "{\"A=B\": \"x\"}", "$.steps[1].env.A=B", "no '='");
	expect_error(LOAD, "steps/1/command", "\"purge\"", "$.steps[1].command", "unknown command");
	expect_error(LOAD, "steps/2/events_sink", "\"file\"", "$.steps[2]",
		     "\"prefill\" goes with");
	expect_error(LOAD, "steps/2/vars", "{}", "$.steps[2].listeners", "vars");
	expect_error(LOAD, "steps/2/listeners/tcp", "true", "$.steps[2].listeners",
		     "exclude each other");
	expect_error(LOAD, "steps/2/listeners/udp_at", "\"10.1.0.1\"", "$.steps[2].listeners",
		     "are IP:PORT");
	expect_error(LOAD, "steps/2/listeners/tcp_at", "\"10.1.0.1:54\"", "$.steps[2].listeners",
		     "\"tcp_at\" \"tcp\"");
	expect_error(LOAD, "steps/3/target", "\"h\"", "$.steps[3].target", "stalled sink");
	expect_error(LOAD, "expect/counts/var", "1", "$.expect.counts.var", "unknown counter");
	expect_error(LOAD, "steps/1/mount_ns",
		     "{\"mounts\": [{\"type\": \"bind\", \"target\": \"/mnt\"}]}",
		     "$.steps[1].mount_ns.mounts[0].source", "required key missing");
	expect_error(LOAD, "steps/1/mount_ns",
		     "{\"mounts\": [{\"type\": \"tmpfs\", \"target\": \"mnt\"}]}",
		     "$.steps[1].mount_ns.mounts[0]", "absolute path");
	expect_error(LOAD, "steps/1/mount_ns", "{\"propagation\": \"slave\"}",
		     "$.steps[1].mount_ns.propagation", "is not one of");
	expect_error(LOAD, "steps/1/uts_ns", "1", "$.steps[1].uts_ns", "expected true or false");
}

/* FLOW_CASE's topology as a named topology file: a description and a diagram showing it. */
static const char NAMED_TOPO[] =
	"{\"description\": \"a cell and a peer\","
	" \"diagram\": [\"cell eth0 10.99.0.2/24 fd00::2/64 <-> peer eth0 10.99.0.1/24\","
	"               \"cell: default via 10.99.0.1\"],"
	" \"namespaces\": [\"cell\", \"peer\"],"
	" \"links\": [{\"type\": \"veth\", \"mtu\": 1500, \"ends\": ["
	"   {\"ns\": \"cell\", \"ifname\": \"eth0\", \"addrs\": [\"10.99.0.2/24\", \"fd00::2/64\"]},"
	"   {\"ns\": \"peer\", \"ifname\": \"eth0\", \"addrs\": [\"10.99.0.1/24\"]}]}],"
	" \"routes\": [{\"ns\": \"cell\", \"dst\": \"default\", \"via\": \"10.99.0.1\"}]}";

/* Write NAMED_TOPO with one member set to value_json (NULL: removed) as DIR/NAME.json. */
static char *write_topo(const char *dir, const char *name, const char *key, const char *value_json)
{
	json_t *doc = json_loads(NAMED_TOPO, 0, NULL);
	_cleanup_free_ char *file = NULL, *text = NULL;

	if (!doc || asprintf(&file, "%s.json", name) < 0)
		return NULL;
	if (key && value_json)
		json_object_set_new(doc, key, json_loads(value_json, JSON_DECODE_ANY, NULL));
	else if (key)
		json_object_del(doc, key);
	text = json_dumps(doc, 0);
	json_decref(doc);
	return text ? htest_write(dir, file, text) : NULL;
}

/* SRC/fixtures/topologies made and SRC made the source tree (each TEST runs in its own process). */
static char *topo_dir(const char *src)
{
	_cleanup_free_ char *fixtures = NULL;
	char *dir;

	if (!src || asprintf(&fixtures, "%s/fixtures", src) < 0)
		return NULL;
	if (mkdir(fixtures, 0755) < 0 || asprintf(&dir, "%s/topologies", fixtures) < 0)
		return NULL;
	if (mkdir(dir, 0755) < 0 || setenv("CELLCHECK_SRCDIR", src, 1) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

/* CHK-CASE-008: "topology": "NAME" loads the named file as if it were written inline. */
TEST(named_topology_loads_as_inline)
{
	_cleanup_tmpdir_ char *src = htest_mkdtemp();
	_cleanup_free_ char *dir = topo_dir(src), *good = NULL, *text = NULL;
	struct hjson_err err = { 0 };
	struct hcase *inl = NULL, *named = NULL;
	json_t *doc = json_loads(FLOW_CASE, 0, NULL);

	if (!ASSERT_TRUE(dir && doc))
		return;
	good = write_topo(dir, "cell-peer", NULL, NULL);
	ASSERT_TRUE(good != NULL);
	ASSERT_OK(hcase_topology_check(good, &err));

	json_object_set_new(doc, "topology", json_string("cell-peer"));
	text = json_dumps(doc, 0);
	json_decref(doc);
	if (!ASSERT_OK(load_text(text, &named, &err)))
		return tap_diag("%s: %s", err.path, err.msg);
	ASSERT_OK(load_text(FLOW_CASE, &inl, &err));
	ASSERT_EQ(named->topo.n_ns, inl->topo.n_ns);
	ASSERT_STREQ(named->topo.ns[1], "peer");
	ASSERT_EQ(named->topo.n_links, 1);
	ASSERT_EQ(named->topo.links[0].mtu, 1500);
	ASSERT_STREQ(named->topo.links[0].end[0].addrs[1], "fd00::2/64");
	ASSERT_STREQ(named->topo.links[0].end[1].ns, "peer");
	ASSERT_EQ(named->topo.n_routes, 1);
	ASSERT_STREQ(named->topo.routes[0].via, "10.99.0.1");
	/* Steps name the named topology's namespaces: the cross-references still hold. */
	ASSERT_STREQ(named->steps[0].ns, "cell");
	hcase_free(named);
	hcase_free(inl);
}

/* CHK-CASE-008: a missing, misnamed or invalid named topology makes the case invalid. */
TEST(named_topology_errors_name_the_file)
{
	_cleanup_tmpdir_ char *src = htest_mkdtemp();
	_cleanup_free_ char *dir = topo_dir(src);
	struct hjson_err err = { 0 };
	char *f;

	if (!ASSERT_TRUE(dir))
		return;
	expect_error(FLOW_CASE, "topology", "\"nope\"", "$.topology", "no named topology \"nope\"");
	expect_error(FLOW_CASE, "topology", "\"Cell_Peer\"", "$.topology",
		     "is not a topology name");
	expect_error(FLOW_CASE, "topology", "42", "$.topology",
		     "expected an object or the name of a topology");

	free(write_topo(dir, "no-desc", "description", NULL));
	expect_error(FLOW_CASE, "topology", "\"no-desc\"", "$.topology",
		     "no-desc.json: $.description: required key missing");
	free(write_topo(dir, "extra", "mtu", "1500"));
	expect_error(FLOW_CASE, "topology", "\"extra\"", "$.topology",
		     "extra.json: $.mtu: unknown key");
	free(write_topo(dir, "bad-link", "links", "[{\"type\": \"veth\", \"ends\": []}]"));
	expect_error(FLOW_CASE, "topology", "\"bad-link\"", "$.topology",
		     "bad-link.json: $.links[0].ends: a veth link has exactly 2 ends");
	/* The diagram must show what the file builds, so it cannot drift from it. */
	free(write_topo(dir, "stale", "diagram", "[\"cell eth0 10.99.0.2/24 <-> peer eth0\"]"));
	expect_error(FLOW_CASE, "topology", "\"stale\"", "$.topology",
		     "stale.json: $.diagram: the diagram does not show address fd00::2/64");
	f = write_topo(dir, "empty", "diagram", "[]");
	ASSERT_ERR(hcase_topology_check(f, &err), -EINVAL);
	ASSERT_STREQ(err.path, "$.diagram");
	free(f);
}

TEST(family_loads_all_or_nothing_and_ids_are_unique)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *fam = NULL, *bad = NULL, *dup = NULL, *sub = NULL;
	struct hcase_set set = { 0 };
	struct hjson_err err = { 0 };
	_cleanup_free_ char *text = NULL;
	json_t *one, *two, *arr;
	int r;

	if (!ASSERT_TRUE(dir))
		return;
	one = json_loads(FLOW_CASE, 0, NULL);
	two = json_deep_copy(one);
	json_object_set_new(two, "id", json_string("flow.udp.second"));
	arr = json_pack("[O, O]", one, two);
	text = json_dumps(arr, 0);
	fam = htest_write(dir, "family.json", text);
	free(text);
	/* The second case of this family is broken: the file loads nothing. */
	json_object_set_new(two, "bogus", json_true());
	json_decref(arr);
	arr = json_pack("[O, O]", one, two);
	text = json_dumps(arr, 0);
	bad = htest_write(dir, "broken.json", text);
	ASSERT_TRUE(fam && bad);

	ASSERT_OK(hcase_load_file(&set, fam, &err));
	ASSERT_EQ(set.n, 2);
	ASSERT_TRUE(set.cases[1]->family);
	ASSERT_EQ(set.cases[1]->index, 1);
	r = hcase_load_file(&set, bad, &err);
	ASSERT_ERR(r, -EINVAL);
	ASSERT_STREQ(err.path, "$[1].bogus");
	ASSERT_EQ(set.n, 2);
	hcase_set_free(&set);

	/* A directory: the broken file and a duplicate ID are reported, the rest loads. */
	if (asprintf(&sub, "%s/sub", dir) < 0 || mkdir(sub, 0755) < 0)
		return (void)ASSERT_TRUE(false);
	free(text);
	text = json_dumps(one, 0);
	dup = htest_write(sub, "dup.json", text);
	ASSERT_TRUE(dup != NULL);
	r = hcase_load_dir(&set, dir, NULL, NULL);
	ASSERT_EQ(r, 2); /* broken.json, sub/dup.json */
	ASSERT_EQ(set.n, 3);
	hcase_set_free(&set);
	ASSERT_ERR(hcase_load_dir(&set, "/nonexistent/cases", NULL, NULL), -ENOENT);
	json_decref(one);
	json_decref(two);
	json_decref(arr);
}

TEST(parse_errors_give_the_line)
{
	_cleanup_tmpdir_ char *dir = htest_mkdtemp();
	_cleanup_free_ char *path = NULL;
	struct hcase_set set = { 0 };
	struct hjson_err err = { 0 };

	path = htest_write(dir, "x.json", "{\n\"id\": \"a.b\",\n\"id\": \"a.c\"\n}\n");
	ASSERT_ERR(hcase_load_file(&set, path, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "line") != NULL);
	ASSERT_TRUE(strstr(err.msg, "duplicate") != NULL);
	free(path);
	path = htest_write(dir, "y.json", "[]");
	memset(&err, 0, sizeof(err));
	ASSERT_ERR(hcase_load_file(&set, path, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "empty case family") != NULL);
	ASSERT_EQ(set.n, 0);
}

TEST(filter_globs)
{
	struct hcase c = { .id = (char *)"flow.tcp.five-tuple" };
	char *g1[] = { (char *)"flow.*" }, *g2[] = { (char *)"dns.*", (char *)"*.five-tuple" },
	     *g3[] = { (char *)"flow.udp.*" }, *g4[] = { (char *)"flow.tcp" };

	ASSERT_TRUE(hcase_match(&c, NULL, 0));
	ASSERT_TRUE(hcase_match(&c, g1, 1));
	ASSERT_TRUE(hcase_match(&c, g2, 2));
	ASSERT_FALSE(hcase_match(&c, g3, 1));
	ASSERT_FALSE(hcase_match(&c, g4, 1));
}

TEST(id_syntax)
{
	ASSERT_TRUE(hcase_id_valid("flow.tcp.five-tuple"));
	ASSERT_TRUE(hcase_id_valid("dns.q2"));
	ASSERT_FALSE(hcase_id_valid("flow"));
	ASSERT_FALSE(hcase_id_valid("flow..x"));
	ASSERT_FALSE(hcase_id_valid("flow.x."));
	ASSERT_FALSE(hcase_id_valid("flow.-x"));
	ASSERT_FALSE(hcase_id_valid("Flow.x"));
	ASSERT_TRUE(hcase_req_id_valid("FLOW-REC-001"));
	ASSERT_TRUE(hcase_req_id_valid("SUP-001"));
	ASSERT_FALSE(hcase_req_id_valid("FLOW-REC-01"));
	ASSERT_FALSE(hcase_req_id_valid("-REC-001"));
	ASSERT_FALSE(hcase_req_id_valid("FLOW--REC-001"));
	ASSERT_FALSE(hcase_req_id_valid("flow-rec-001"));
}
