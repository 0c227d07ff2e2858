// SPDX-License-Identifier: Apache-2.0
/*
 * The cell spec parser (ref/cellspec.c): every rule of the format, the defaults, the message of
 * every error (which must name the field), the 1 MiB limit of cellspec_load(), and the fixtures
 * in fixtures/cells (valid ones parse, each invalid one fails with its expected message).
 *
 * Specs are written with single quotes for readability; spec() turns them into JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "cellspec.h"
#include "tap.h"
#include "util.h"

#define DEFAULT_NS (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC)
#define NET	   "'network':{'mode':'bridge','bridge':'br0','subnet':'10.88.0.0/24'}"
#define USERNS                                                    \
	"'namespaces':['user','net','mount'],"                    \
	"'uidMap':[{'inside':0,'outside':100000,'count':65536}]," \
	"'gidMap':[{'inside':0,'outside':100000,'count':65536}]"

static char text[1 << 16];

/* "{'specVersion':'1','cellId':'c', MEMBERS}" with ' turned into ", into text. */
__attribute__((format(printf, 1, 2))) static const char *spec(const char *fmt, ...)
{
	char members[sizeof(text) - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(members, sizeof(members), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "{'specVersion':'1','cellId':'c'%s%s}", *members ? "," : "",
		 members);
	for (char *p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	return text;
}

/* Whether json parses; the spec or NULL. */
static struct cellspec *parse_ok(const char *json)
{
	struct cellspec *s = NULL;
	char err[256] = "unset";
	int r = cellspec_parse(json, strlen(json), &s, err, sizeof(err));

	if (!ASSERT_OK(r) || !ASSERT_TRUE(s) || !ASSERT_STREQ(err, "")) {
		tap_diag("spec: %s", json);
		tap_diag("error: %s", err);
		cellspec_free(s);
		return NULL;
	}
	return s;
}

/* Whether json fails with -EINVAL and a message containing want, and sets nothing. */
static bool fails_with(const char *json, const char *want, const char *file, int line)
{
	struct cellspec *s = (struct cellspec *)0x1;
	char err[512] = "";
	int r = cellspec_parse(json, strlen(json), &s, err, sizeof(err));

	if (r == -EINVAL && strstr(err, want) && s == (struct cellspec *)0x1)
		return true;
	tap_check(false, file, line, "want -EINVAL with \"%s\", got %d \"%s\" for %s", want, r, err,
		  json);
	if (r == 0)
		cellspec_free(s);
	return false;
}

#define FAILS(json, want) fails_with(json, want, __FILE__, __LINE__)

static const char *srcdir(void)
{
	const char *src = getenv("CELLCHECK_SRCDIR");

	if (!src)
		tap_skip("CELLCHECK_SRCDIR not set (run through meson test)");
	return src;
}

static struct cellspec *load_fixture(const char *name)
{
	char path[4096], err[256];
	struct cellspec *s = NULL;

	snprintf(path, sizeof(path), "%s/fixtures/cells/%s", srcdir(), name);
	if (!ASSERT_OK(cellspec_load(path, &s, err, sizeof(err)))) {
		tap_diag("%s: %s", name, err);
		return NULL;
	}
	return s;
}

TEST(minimal_spec_gets_every_default)
{
	_cleanup_(cellspec_freep) struct cellspec *s = parse_ok(spec("%s", ""));

	if (!s)
		return;
	ASSERT_STREQ(s->cell_id, "c");
	ASSERT_STREQ(s->run_id, "");
	ASSERT_EQ(s->ns_flags, DEFAULT_NS);
	ASSERT_STREQ(s->hostname, "");
	/* Unprivileged unless the spec asks (SUP-ID-001). */
	ASSERT_EQ(s->uid, 65534);
	ASSERT_EQ(s->gid, 65534);
	ASSERT_TRUE(!s->uid_map && !s->n_uid_map && !s->gid_map && !s->n_gid_map);
	ASSERT_EQ(s->n_rlimits, 0);
	ASSERT_TRUE(!s->cpus && !s->n_cpus);
	ASSERT_TRUE(!s->cgroup_path && !s->memory_max && !s->pids_max && !s->cpu_max);
	ASSERT_EQ(s->net_mode, CELLSPEC_NET_NONE);
	ASSERT_STREQ(s->bridge, "");
	ASSERT_STREQ(s->ifname, "");
	ASSERT_FALSE(s->dns_enabled);
	ASSERT_TRUE(!s->dns_upstream && !s->dns_allow && !s->n_dns_allow);
	ASSERT_EQ(s->dns_listen_ip, 0x7f000035);
	ASSERT_EQ(s->dns_listen_port, 53);
	ASSERT_EQ(s->dns_timeout_ms, 2000);
	ASSERT_FALSE(s->flows_enabled);
	ASSERT_EQ(s->cap_keep, 0);
	ASSERT_TRUE(s->no_new_privs);
	ASSERT_FALSE(s->strict);
}

TEST(full_bridge_fixture)
{
	_cleanup_(cellspec_freep) struct cellspec *s = load_fixture("bridge-full.json");

	if (!s)
		return;
	ASSERT_STREQ(s->cell_id, "web-1");
	ASSERT_STREQ(s->run_id, "run-2026-11-30.a");
	ASSERT_EQ(s->ns_flags, DEFAULT_NS | CLONE_NEWCGROUP);
	ASSERT_STREQ(s->hostname, "web-1.cell");
	ASSERT_EQ(s->uid, 1000);
	ASSERT_EQ(s->gid, 1000);
	if (ASSERT_EQ(s->n_rlimits, 4)) {
		ASSERT_EQ(s->rlimits[0].resource, RLIMIT_NOFILE);
		ASSERT_EQ(s->rlimits[0].soft, 1024);
		ASSERT_EQ(s->rlimits[0].hard, 4096);
		ASSERT_EQ(s->rlimits[1].resource, RLIMIT_CORE);
		ASSERT_EQ(s->rlimits[1].hard, 0);
		ASSERT_EQ(s->rlimits[2].resource, RLIMIT_AS);
		ASSERT_EQ(s->rlimits[2].soft, RLIM_INFINITY);
		ASSERT_EQ(s->rlimits[2].hard, RLIM_INFINITY);
		ASSERT_EQ(s->rlimits[3].resource, RLIMIT_NPROC);
		ASSERT_EQ(s->rlimits[3].soft, 256);
		ASSERT_EQ(s->rlimits[3].hard, RLIM_INFINITY);
	}
	if (ASSERT_EQ(s->n_cpus, 2)) {
		ASSERT_EQ(s->cpus[0], 0);
		ASSERT_EQ(s->cpus[1], 1);
	}
	ASSERT_STREQ(s->cgroup_path, "cellref/web-1");
	ASSERT_STREQ(s->memory_max, "268435456");
	ASSERT_STREQ(s->pids_max, "512");
	ASSERT_STREQ(s->cpu_max, "50000 100000");
	ASSERT_EQ(s->net_mode, CELLSPEC_NET_BRIDGE);
	ASSERT_STREQ(s->bridge, "cellbr0");
	ASSERT_STREQ(s->ifname, "eth1");
	ASSERT_EQ(s->subnet, 0x0a580000);
	ASSERT_EQ(s->prefixlen, 24);
	ASSERT_EQ(s->gateway, 0x0a580001);
	ASSERT_EQ(s->address, 0x0a580005);
	ASSERT_EQ(s->mtu, 1400);
	ASSERT_TRUE(s->dns_enabled);
	ASSERT_EQ(s->dns_listen_ip, 0x7f000035);
	ASSERT_EQ(s->dns_listen_port, 53);
	ASSERT_STREQ(s->dns_upstream, "10.88.0.1:53");
	if (ASSERT_EQ(s->n_dns_allow, 2)) {
		ASSERT_STREQ(s->dns_allow[0], "example.test");
		ASSERT_STREQ(s->dns_allow[1], "svc.cluster.test.");
	}
	ASSERT_EQ(s->dns_timeout_ms, 1500);
	ASSERT_TRUE(s->flows_enabled);
	ASSERT_EQ(s->cap_keep, (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_CHOWN));
	ASSERT_TRUE(s->no_new_privs);
	ASSERT_TRUE(s->strict);
}

TEST(routed_fixture)
{
	_cleanup_(cellspec_freep) struct cellspec *s = load_fixture("routed.json");

	if (!s)
		return;
	ASSERT_STREQ(s->cell_id, "batch.7");
	ASSERT_EQ(s->net_mode, CELLSPEC_NET_ROUTED);
	ASSERT_STREQ(s->bridge, "");
	ASSERT_EQ(s->subnet, 0x0a630004);
	ASSERT_EQ(s->prefixlen, 30);
	ASSERT_EQ(s->gateway, 0x0a630005); /* first host */
	ASSERT_EQ(s->address, 0);	   /* allocate */
	ASSERT_EQ(s->mtu, 1500);
	ASSERT_STREQ(s->ifname, "eth0");
	ASSERT_TRUE(s->dns_enabled);
	ASSERT_STREQ(s->dns_upstream, "192.0.2.53:5353");
	ASSERT_TRUE(!s->dns_allow && s->n_dns_allow == 0);
	ASSERT_TRUE(s->flows_enabled);
	ASSERT_TRUE(!s->cgroup_path);
	ASSERT_STREQ(s->memory_max, "max");
	ASSERT_STREQ(s->pids_max, "max");
	ASSERT_STREQ(s->cpu_max, "max 100000");
}

TEST(userns_fixture)
{
	_cleanup_(cellspec_freep) struct cellspec *s = load_fixture("userns.json");

	if (!s)
		return;
	ASSERT_EQ(s->ns_flags, DEFAULT_NS | CLONE_NEWUSER | CLONE_NEWCGROUP);
	if (ASSERT_EQ(s->n_uid_map, 2)) {
		ASSERT_EQ(s->uid_map[0].inside, 0);
		ASSERT_EQ(s->uid_map[0].outside, 100000);
		ASSERT_EQ(s->uid_map[0].count, 1000);
		ASSERT_EQ(s->uid_map[1].inside, 1000);
		ASSERT_EQ(s->uid_map[1].outside, 1000);
		ASSERT_EQ(s->uid_map[1].count, 1);
	}
	if (ASSERT_EQ(s->n_gid_map, 1))
		ASSERT_EQ(s->gid_map[0].count, 65536);
	ASSERT_FALSE(s->dns_enabled);
	ASSERT_FALSE(s->flows_enabled);
	ASSERT_FALSE(s->no_new_privs);
	ASSERT_EQ(s->net_mode, CELLSPEC_NET_NONE);
}

TEST(spec_version_is_required_and_exactly_1)
{
	FAILS("{\"cellId\":\"c\"}", "specVersion: required");
	FAILS("{\"specVersion\":1,\"cellId\":\"c\"}", "specVersion: expected \"1\", got 1");
	FAILS("{\"specVersion\":\"2\",\"cellId\":\"c\"}", "specVersion: expected \"1\", got \"2\"");
	FAILS("{\"specVersion\":\"1.0\",\"cellId\":\"c\"}", "specVersion: expected \"1\"");
}

TEST(cell_id_and_run_id)
{
	const char *msg =
		"expected 1..63 characters of [A-Za-z0-9._-] not starting with '-' or '.'";
	char id63[64], id64[65], buf[256];
	struct cellspec *s;

	FAILS("{\"specVersion\":\"1\"}", "cellId: required");
	memset(id63, 'a', 63);
	id63[63] = '\0';
	memset(id64, 'b', 64);
	id64[64] = '\0';
	snprintf(buf, sizeof(buf), "{\"specVersion\":\"1\",\"cellId\":\"%s\",\"runId\":\"%s\"}",
		 id63, id63);
	s = parse_ok(buf);
	if (s) {
		ASSERT_STREQ(s->cell_id, id63);
		ASSERT_STREQ(s->run_id, id63);
	}
	cellspec_free(s);
	s = parse_ok("{\"specVersion\":\"1\",\"cellId\":\"_A.z-9\",\"runId\":\"0\"}");
	ASSERT_TRUE(s && !strcmp(s->cell_id, "_A.z-9") && !strcmp(s->run_id, "0"));
	cellspec_free(s);
	snprintf(buf, sizeof(buf), "{\"specVersion\":\"1\",\"cellId\":\"%s\"}", id64);
	FAILS(buf, "cellId: expected 1..63 characters");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"\"}", "cellId: expected 1..63");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"-web\"}", msg);
	FAILS("{\"specVersion\":\"1\",\"cellId\":\".web\"}", "cellId: expected");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"a/b\"}", "cellId: expected");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"a b\"}", "got \"a b\"");
	FAILS("{\"specVersion\":\"1\",\"cellId\":7}", "cellId: expected a string, got 7");
	FAILS(spec("'runId':'-x'"), "runId: expected 1..63 characters");
	FAILS(spec("'runId':null"), "runId: expected a string, got null");
}

TEST(namespaces)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} all[] = { { "net", CLONE_NEWNET },	  { "mount", CLONE_NEWNS },
		    { "pid", CLONE_NEWPID },	  { "uts", CLONE_NEWUTS },
		    { "ipc", CLONE_NEWIPC },	  { "user", CLONE_NEWUSER },
		    { "cgroup", CLONE_NEWCGROUP } };
	struct cellspec *s;

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if (all[i].flag == CLONE_NEWUSER)
			s = parse_ok(
				spec("'namespaces':['user'],'uidMap':[{'inside':0,'outside':1,"
				     "'count':1}],'gidMap':[{'inside':0,'outside':1,'count':1}],"
				     "'user':{'uid':0,'gid':0}"));
		else
			s = parse_ok(spec("'namespaces':['%s']", all[i].name));
		if (s)
			ASSERT_EQ(s->ns_flags, all[i].flag);
		cellspec_free(s);
	}
	s = parse_ok(spec("'namespaces':[]"));
	if (s)
		ASSERT_EQ(s->ns_flags, 0);
	cellspec_free(s);
	FAILS(spec("'namespaces':['net','mount','time']"),
	      "namespaces[2]: unknown namespace \"time\"");
	FAILS(spec("'namespaces':['net','pid','net']"), "namespaces[2]: duplicate \"net\"");
	FAILS(spec("'namespaces':['NET']"), "namespaces[0]: unknown namespace \"NET\"");
	FAILS(spec("'namespaces':[1]"), "namespaces[0]: expected a namespace name, got 1");
	FAILS(spec("'namespaces':'net'"), "namespaces: expected an array");
}

TEST(hostname)
{
	char h64[80], h65[80];
	struct cellspec *s;

	/* 64 characters in labels of 63 and 0+... : "a{63}.b" is 65, "a{62}.b" is 64. */
	memset(h64, 'a', 62);
	memcpy(h64 + 62, ".b", 3);
	memset(h65, 'a', 63);
	memcpy(h65 + 63, ".b", 3);
	s = parse_ok(spec("'hostname':'%s'", h64));
	if (s)
		ASSERT_STREQ(s->hostname, h64);
	cellspec_free(s);
	s = parse_ok(spec("'hostname':'Web-1.cell9'"));
	if (s)
		ASSERT_STREQ(s->hostname, "Web-1.cell9");
	cellspec_free(s);
	FAILS(spec("'hostname':'%s'", h65), "hostname: expected an RFC 1123 host name");
	FAILS(spec("'hostname':''"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':'-web'"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':'web-'"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':'web.'"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':'a..b'"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':'we_b'"), "got \"we_b\"");
	FAILS(spec("'hostname':'web-.x'"), "hostname: expected an RFC 1123");
	FAILS(spec("'hostname':true"), "hostname: expected a string, got true");
	FAILS(spec("'namespaces':['net'],'hostname':'cell'"),
	      "hostname: requires \"uts\" in namespaces");
}

TEST(user_identity)
{
	struct cellspec *s = parse_ok(spec("'user':{'uid':4294967294,'gid':65534}"));

	if (s) {
		ASSERT_EQ(s->uid, 4294967294u);
		ASSERT_EQ(s->gid, 65534);
	}
	cellspec_free(s);
	s = parse_ok(spec("'user':{'gid':5}"));
	if (s) {
		ASSERT_EQ(s->uid, 65534); /* each member absent is the default */
		ASSERT_EQ(s->gid, 5);
	}
	cellspec_free(s);
	FAILS(spec("'user':{'uid':4294967295}"),
	      "user.uid: expected an integer in 0..4294967294, got 4294967295");
	FAILS(spec("'user':{'gid':-1}"), "user.gid: expected an integer in 0..4294967294, got -1");
	FAILS(spec("'user':{'uid':'0'}"), "user.uid: expected an integer");
	FAILS(spec("'user':{'name':'root'}"), "user.name: unknown member");
	FAILS(spec("'user':[0,0]"), "user: expected an object, got an array");
}

TEST(id_maps_required_with_user_namespace_and_forbidden_without)
{
	struct cellspec *s = parse_ok(spec(USERNS));

	if (s)
		ASSERT_TRUE(s->n_uid_map == 1 && s->n_gid_map == 1);
	cellspec_free(s);
	FAILS(spec("'namespaces':['user']"), "uidMap: required when namespaces has \"user\"");
	FAILS(spec("'namespaces':['user'],'uidMap':[{'inside':0,'outside':1,'count':1}]"),
	      "gidMap: required when namespaces has \"user\"");
	FAILS(spec("'uidMap':[{'inside':0,'outside':1,'count':1}]"),
	      "uidMap: only allowed when namespaces has \"user\"");
	FAILS(spec("'namespaces':['net'],'gidMap':[]"),
	      "gidMap: only allowed when namespaces has \"user\"");
}

TEST(id_map_entries)
{
	static char big[40000];
	const char *pre = "'namespaces':['user'],'gidMap':[{'inside':0,'outside':1,'count':1}],"
			  "'user':{'uid':0,'gid':0},";
	struct cellspec *s;
	size_t o;

	FAILS(spec("%s'uidMap':[]", pre), "uidMap: expected 1..340 entries, got 0");
	FAILS(spec("%s'uidMap':{}", pre), "uidMap: expected an array");
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':1}]", pre), "uidMap[0].count: required");
	FAILS(spec("%s'uidMap':[{'outside':1,'count':1}]", pre), "uidMap[0].inside: required");
	FAILS(spec("%s'uidMap':[{'inside':0,'count':1}]", pre), "uidMap[0].outside: required");
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':1,'count':0}]", pre),
	      "uidMap[0].count: expected an integer in 1..4294967295, got 0");
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':1,'count':1,'x':1}]", pre),
	      "uidMap[0].x: unknown member");
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':1,'count':1.5}]", pre),
	      "uidMap[0].count: expected an integer in 1..4294967295, got 1.5");
	FAILS(spec("%s'uidMap':[7]", pre), "uidMap[0]: expected an object, got 7");
	FAILS(spec("%s'uidMap':[{'inside':4294967290,'outside':0,'count':6}]", pre),
	      "uidMap[0]: inside + count exceeds 4294967295");
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':4294967290,'count':6}]", pre),
	      "uidMap[0]: outside + count exceeds 4294967295");
	s = parse_ok(spec("'namespaces':['user'],'gidMap':[{'inside':0,'outside':1,'count':1}],"
			  "'uidMap':[{'inside':4294967290,'outside':0,'count':5}],"
			  "'user':{'uid':4294967294,'gid':0}"));
	cellspec_free(s);
	FAILS(spec("%s'uidMap':[{'inside':0,'outside':100,'count':10},"
		   "{'inside':10,'outside':200,'count':1},{'inside':9,'outside':300,'count':2}]",
		   pre),
	      "uidMap[2]: inside range 9..10 overlaps uidMap[0]");
	FAILS(spec("'namespaces':['user'],'uidMap':[{'inside':0,'outside':1,'count':1}],"
		   "'user':{'uid':0,'gid':0},'gidMap':[{'inside':0,'outside':100,'count':10},"
		   "{'inside':10,'outside':109,'count':1}]"),
	      "gidMap[1]: outside range 109..109 overlaps gidMap[0]");
	/* Adjacent ranges do not overlap. */
	s = parse_ok(spec("%s'uidMap':[{'inside':0,'outside':100,'count':10},"
			  "{'inside':10,'outside':110,'count':10}]",
			  pre));
	cellspec_free(s);

	/* 340 entries are the kernel's limit; 341 are refused. */
	o = (size_t)snprintf(big, sizeof(big), "%s'uidMap':[", pre);
	for (int i = 0; i < 341; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o,
				      "%s{'inside':%d,'outside':%d,'count':1}", i ? "," : "", i,
				      1000 + i);
	FAILS(spec("%s]", big), "uidMap: expected 1..340 entries, got 341");
	big[strrchr(big, '{') - big - 1] = '\0';
	s = parse_ok(spec("%s]", big));
	if (s)
		ASSERT_EQ(s->n_uid_map, 340);
	cellspec_free(s);
}

/* rootfs, mounts, tmpfs (SPEC 9.9): paths checked as text and against the host. */
TEST(filesystem_members)
{
	struct cellspec *s =
		parse_ok(spec("'rootfs':'/usr','mounts':[{'source':'/','target':'/host'},"
			      "{'source':'/usr/share','target':'/a/b','rw':true}],"
			      "'tmpfs':{'tmp':4096,'devShm':1099511627776}"));

	if (s) {
		ASSERT_STREQ(s->rootfs, "/usr");
		ASSERT_EQ(s->n_mounts, 2);
		ASSERT_STREQ(s->mounts[0].source, "/");
		ASSERT_STREQ(s->mounts[0].target, "/host");
		ASSERT_TRUE(!s->mounts[0].rw && s->mounts[1].rw);
		ASSERT_EQ(s->tmpfs_bytes[CELLSPEC_TMP], 4096);
		ASSERT_EQ(s->tmpfs_bytes[CELLSPEC_DEV_SHM], 1ull << 40);
		ASSERT_EQ(s->tmpfs_bytes[CELLSPEC_RUN], 16u << 20); /* the default */
	}
	cellspec_free(s);
	FAILS(spec("'mounts':[{'source':'/usr','target':'/'}]"), "mounts[0].target: expected");
	FAILS(spec("'mounts':[{'source':'/usr','target':'/a/./b'}]"), "mounts[0].target: expected");
	FAILS(spec("'mounts':[{'source':'/usr','target':'/a//b'}]"), "mounts[0].target: expected");
	FAILS(spec("'mounts':[{'source':'/usr','target':'/a/'}]"), "mounts[0].target: expected");
	FAILS(spec("'mounts':[{'source':'usr','target':'/a'}]"), "mounts[0].source: expected");
	FAILS(spec("'mounts':[{'source':'/usr'}]"), "mounts[0].target: required");
	FAILS(spec("'mounts':[{'target':'/a'}]"), "mounts[0].source: required");
	FAILS(spec("'mounts':[{'source':'/usr','target':'/a','ro':true}]"),
	      "mounts[0].ro: unknown member");
	FAILS(spec("'mounts':{}"), "mounts: expected an array");
	FAILS(spec("'mounts':[{'source':'/nonexistent-cellcheck','target':'/a'}]"),
	      "mounts[0].source: \"/nonexistent-cellcheck\": ENOENT");
	FAILS(spec("'namespaces':['net'],'mounts':[]"), "mounts: requires \"mount\"");
	FAILS(spec("'rootfs':'/etc/passwd'"), "rootfs: \"/etc/passwd\" is not a directory");
	FAILS(spec("'rootfs':'/'"), "rootfs: expected");
	FAILS(spec("'tmpfs':{'tmp':4095}"), "tmpfs.tmp: expected an integer in 4096..");
	FAILS(spec("'tmpfs':{'home':4096}"), "tmpfs.home: unknown member");
	FAILS(spec("'namespaces':['pid'],'tmpfs':{}"), "tmpfs: requires \"mount\"");
}

TEST(workload_identity_must_be_mapped)
{
	const char *maps = "'namespaces':['user'],'uidMap':[{'inside':0,'outside':1,'count':1000}],"
			   "'gidMap':[{'inside':0,'outside':1,'count':10}]";
	struct cellspec *s = parse_ok(spec("%s,'user':{'uid':999,'gid':9}", maps));

	cellspec_free(s);
	FAILS(spec("%s,'user':{'uid':1000}", maps), "user.uid: 1000 is not mapped by uidMap");
	FAILS(spec("%s,'user':{'uid':0,'gid':10}", maps), "user.gid: 10 is not mapped by gidMap");
	/* The default identity must be mapped too, and the message says it is the default. */
	FAILS(spec("%s", maps), "user.uid: 65534 (the default) is not mapped by uidMap");
	/* Without a user namespace the ids are host ids: nothing to map. */
	s = parse_ok(spec("'user':{'uid':1000,'gid':1000}"));
	cellspec_free(s);
}

TEST(rlimit_names_values_and_order)
{
	static const struct {
		const char *name;
		int resource;
	} all[] = {
		{ "as", RLIMIT_AS },
		{ "core", RLIMIT_CORE },
		{ "cpu", RLIMIT_CPU },
		{ "data", RLIMIT_DATA },
		{ "fsize", RLIMIT_FSIZE },
		{ "memlock", RLIMIT_MEMLOCK },
		{ "nofile", RLIMIT_NOFILE },
		{ "nproc", RLIMIT_NPROC },
		{ "stack", RLIMIT_STACK },
		{ "rss", RLIMIT_RSS },
		{ "msgqueue", RLIMIT_MSGQUEUE },
		{ "nice", RLIMIT_NICE },
		{ "rtprio", RLIMIT_RTPRIO },
		{ "sigpending", RLIMIT_SIGPENDING },
		{ "locks", RLIMIT_LOCKS },
	};
	char members[2048];
	size_t o = 0;
	struct cellspec *s;

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		o += (size_t)snprintf(members + o, sizeof(members) - o,
				      "%s'%s':{'soft':%zu,'hard':%zu}", i ? "," : "", all[i].name,
				      i, i + 100);
	s = parse_ok(spec("'rlimits':{%s}", members));
	if (s && ASSERT_EQ(s->n_rlimits, ARRAY_SIZE(all))) {
		for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
			ASSERT_EQ(s->rlimits[i].resource, all[i].resource);
			ASSERT_EQ(s->rlimits[i].soft, i);
			ASSERT_EQ(s->rlimits[i].hard, i + 100);
		}
	}
	cellspec_free(s);
	s = parse_ok(spec("'rlimits':{'core':{'soft':9223372036854775807,'hard':'unlimited'}}"));
	if (s && ASSERT_EQ(s->n_rlimits, 1)) {
		ASSERT_EQ(s->rlimits[0].soft, 9223372036854775807ull);
		ASSERT_EQ(s->rlimits[0].hard, RLIM_INFINITY);
	}
	cellspec_free(s);
	s = parse_ok(spec("'rlimits':{}"));
	if (s)
		ASSERT_EQ(s->n_rlimits, 0);
	cellspec_free(s);
}

TEST(rlimit_errors)
{
	FAILS(spec("'rlimits':{'nofile':{'soft':4096,'hard':1024}}"),
	      "rlimits.nofile: soft limit exceeds hard limit");
	FAILS(spec("'rlimits':{'nofile':{'soft':'unlimited','hard':1024}}"),
	      "rlimits.nofile: soft limit exceeds hard limit");
	FAILS(spec("'rlimits':{'nofile':{'soft':-1,'hard':1}}"),
	      "rlimits.nofile.soft: expected a non-negative integer or \"unlimited\", got -1");
	FAILS(spec("'rlimits':{'nofile':{'soft':1,'hard':'infinity'}}"),
	      "rlimits.nofile.hard: expected a non-negative integer or \"unlimited\", got "
	      "\"infinity\"");
	FAILS(spec("'rlimits':{'nofile':{'soft':1.0,'hard':1}}"),
	      "rlimits.nofile.soft: expected a non-negative integer or \"unlimited\", got 1.0");
	FAILS(spec("'rlimits':{'nofile':{'soft':1}}"), "rlimits.nofile.hard: required");
	FAILS(spec("'rlimits':{'nofile':{'hard':1}}"), "rlimits.nofile.soft: required");
	FAILS(spec("'rlimits':{'nofile':{'soft':1,'hard':1,'max':1}}"),
	      "rlimits.nofile.max: unknown member");
	FAILS(spec("'rlimits':{'files':{'soft':1,'hard':1}}"), "rlimits.files: unknown member");
	FAILS(spec("'rlimits':{'NOFILE':{'soft':1,'hard':1}}"), "rlimits.NOFILE: unknown member");
	FAILS(spec("'rlimits':{'nofile':1024}"), "rlimits.nofile: expected an object, got 1024");
	FAILS(spec("'rlimits':[]"), "rlimits: expected an object, got an array");
}

TEST(cpus)
{
	struct cellspec *s = parse_ok(spec("'cpus':[3,0,1023]"));

	if (s && ASSERT_EQ(s->n_cpus, 3)) {
		ASSERT_EQ(s->cpus[0], 3);
		ASSERT_EQ(s->cpus[1], 0);
		ASSERT_EQ(s->cpus[2], 1023);
	}
	cellspec_free(s);
	FAILS(spec("'cpus':[1,1]"), "cpus[1]: duplicate 1");
	FAILS(spec("'cpus':[0,1024]"), "cpus[1]: expected an integer in 0..1023, got 1024");
	FAILS(spec("'cpus':[-1]"), "cpus[0]: expected an integer in 0..1023, got -1");
	FAILS(spec("'cpus':['0']"), "cpus[0]: expected an integer in 0..1023, got \"0\"");
	FAILS(spec("'cpus':[]"), "cpus: expected at least one CPU");
	FAILS(spec("'cpus':0"), "cpus: expected an array of CPU numbers, got 0");
}

TEST(cgroup_path)
{
	char longc[300], buf[400];
	struct cellspec *s = parse_ok(spec("'cgroup':{'path':'a/b.c/d e'}"));

	if (s)
		ASSERT_STREQ(s->cgroup_path, "a/b.c/d e");
	cellspec_free(s);
	s = parse_ok(spec("'cgroup':{}"));
	if (s)
		ASSERT_TRUE(!s->cgroup_path && !s->memory_max && !s->pids_max && !s->cpu_max);
	cellspec_free(s);
	FAILS(spec("'cgroup':{'path':'/sys/fs/cgroup/x'}"),
	      "cgroup.path: must be relative (no leading '/'), got \"/sys/fs/cgroup/x\"");
	FAILS(spec("'cgroup':{'path':'a/../b'}"), "cgroup.path: must not have \".\" or \"..\"");
	FAILS(spec("'cgroup':{'path':'..'}"), "cgroup.path: must not have \".\" or \"..\"");
	FAILS(spec("'cgroup':{'path':'a/.'}"), "cgroup.path: must not have \".\" or \"..\"");
	FAILS(spec("'cgroup':{'path':'a//b'}"), "cgroup.path: has an empty component");
	FAILS(spec("'cgroup':{'path':'a/'}"), "cgroup.path: has an empty component");
	FAILS(spec("'cgroup':{'path':''}"), "cgroup.path: must not be empty");
	FAILS(spec("'cgroup':{'path':'a\\nb'}"),
	      "cgroup.path: must not contain control characters, got \"a\\u000ab\"");
	memset(longc, 'x', 256);
	longc[256] = '\0';
	snprintf(buf, sizeof(buf), "'cgroup':{'path':'a/%s'}", longc);
	FAILS(spec("%s", buf), "cgroup.path: has a component longer than 255 bytes");
	{
		static char deep[5000];

		/* 4095 bytes are the most a path can have; components of 255 bytes are fine. */
		memset(deep, 'x', 4095);
		for (size_t i = 255; i < 4095; i += 256)
			deep[i] = '/';
		s = parse_ok(spec("'cgroup':{'path':'%s'}", deep));
		if (s)
			ASSERT_EQ(strlen(s->cgroup_path), 4095);
		cellspec_free(s);
		memcpy(deep + 4095, "x", 2);
		FAILS(spec("'cgroup':{'path':'%s'}", deep), "cgroup.path: longer than 4095 bytes");
	}
	FAILS(spec("'cgroup':{'path':3}"), "cgroup.path: expected a string, got 3");
	FAILS(spec("'cgroup':{'name':'x'}"), "cgroup.name: unknown member");
	FAILS(spec("'cgroup':'x'"), "cgroup: expected an object, got \"x\"");
}

TEST(cgroup_limits)
{
	struct cellspec *s = parse_ok(
		spec("'cgroup':{'memoryMax':9223372036854775807,'pidsMax':4194304,'cpuMax':'1000 "
		     "1000'}"));

	if (s) {
		ASSERT_STREQ(s->memory_max, "9223372036854775807");
		ASSERT_STREQ(s->pids_max, "4194304");
		ASSERT_STREQ(s->cpu_max, "1000 1000");
	}
	cellspec_free(s);
	s = parse_ok(
		spec("'cgroup':{'memoryMax':1,'pidsMax':1,'cpuMax':'17592186044415 1000000'}"));
	if (s) {
		ASSERT_STREQ(s->memory_max, "1");
		ASSERT_STREQ(s->pids_max, "1");
		ASSERT_STREQ(s->cpu_max, "17592186044415 1000000");
	}
	cellspec_free(s);
	FAILS(spec("'cgroup':{'memoryMax':0}"),
	      "cgroup.memoryMax: expected an integer in 1..9223372036854775807 or \"max\", got 0");
	FAILS(spec("'cgroup':{'memoryMax':'1G'}"), "cgroup.memoryMax: expected an integer");
	FAILS(spec("'cgroup':{'pidsMax':4194305}"),
	      "cgroup.pidsMax: expected an integer in 1..4194304 or \"max\", got 4194305");
	FAILS(spec("'cgroup':{'pidsMax':'MAX'}"), "cgroup.pidsMax: expected an integer");
	FAILS(spec("'cgroup':{'cpuMax':50000}"), "cgroup.cpuMax: expected a string, got 50000");
	static const char *const bad[] = {
		"50000",
		"999 100000",
		"1000 999",
		"1000 1000001",
		"50000  100000",
		"050000 100000",
		"50000 0100000",
		"max",
		"max 999",
		"-1 100000",
		" 1000 1000",
		"1000 1000 ",
		"maximum 1000",
		"17592186044416 1000",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		FAILS(spec("'cgroup':{'cpuMax':'%s'}", bad[i]),
		      "cgroup.cpuMax: expected \"QUOTA PERIOD\" or \"max PERIOD\" in microseconds "
		      "(QUOTA 1000..17592186044415, PERIOD 1000..1000000), got");
}

/* network.ipv6 (SUP-NET-012, SUP-SPEC-004) and network.ping (SUP-NET-015). */
TEST(network_ipv6_and_ping)
{
#define NET6(x) "'network':{'mode':'routed','subnet':'10.88.0.0/24','ipv6':{" x "}}"
	static const uint8_t gw[16] = { 0xfd, 0, 0, 0x88, [15] = 1 }, zero[16];
	static const uint8_t addr[16] = { 0xfd, 0, 0, 0x88, [14] = 0x12, [15] = 0x34 };
	struct cellspec *s = parse_ok(spec(NET6("'subnet':'fd00:88::/64'")));

	if (s) {
		ASSERT_TRUE(s->ipv6);
		ASSERT_EQ(s->prefixlen6, 64);
		ASSERT_TRUE(memcmp(s->gateway6, gw, 16) == 0);	 /* default: the first address */
		ASSERT_TRUE(memcmp(s->address6, zero, 16) == 0); /* allocate */
		ASSERT_FALSE(s->ping);
	}
	cellspec_free(s);
	FAILS(spec("'network':{'mode':'routed','subnet':'10.88.0.0/24','ipv6':{'subnet':"
		   "'fd00:88::/126','address':'fd00:88::1234'}}"),
	      "network.ipv6.address: fd00:88::1234 is outside the subnet fd00:88::/126");
	s = parse_ok(spec("'network':{'mode':'bridge','bridge':'br0','subnet':'10.88.0.0/24',"
			  "'ping':true,'ipv6':{'subnet':'fd00:88::/64','address':'fd00:88::1234'}},"
			  "'flows':{'recordVersion':2}"));
	if (s) {
		ASSERT_TRUE(s->ping);
		ASSERT_TRUE(memcmp(s->address6, addr, 16) == 0);
		ASSERT_EQ(s->flows_record_version, 2);
	}
	cellspec_free(s);
	/* Flows absent, or disabled: allowed (unobserved like the cell's IPv4). */
	s = parse_ok(spec(NET6("'subnet':'fd00:88::/64'") ",'flows':{'enabled':false}"));
	cellspec_free(s);
	FAILS(spec(NET6("'subnet':'fd00:88::/64'") ",'flows':{}"),
	      "flows.recordVersion: must be 2 with network.ipv6");
	FAILS(spec(NET6("'subnet':'fd00:88::/64'") ",'flows':{'recordVersion':1}"),
	      "flows.recordVersion: must be 2 with network.ipv6");
	FAILS(spec(NET6("")), "network.ipv6.subnet: required");
	FAILS(spec(NET6("'subnet':'10.0.0.0/8'")), "network.ipv6.subnet: expected an IPv6 prefix");
	FAILS(spec(NET6("'subnet':'fd00:88::/63'")),
	      "network.ipv6.subnet: prefix length must be in 64..126");
	FAILS(spec(NET6("'subnet':'fd00:88::/127'")),
	      "network.ipv6.subnet: prefix length must be in 64..126");
	FAILS(spec(NET6("'subnet':'fd00:88::1/64'")),
	      "network.ipv6.subnet: host bits must be zero");
	FAILS(spec(NET6("'subnet':'ff02::/64'")),
	      "network.ipv6.subnet: expected a global or unique");
	FAILS(spec(NET6("'subnet':'fe80::/64'")),
	      "network.ipv6.subnet: expected a global or unique");
	FAILS(spec(NET6("'subnet':'::ffff:0:0/96'")),
	      "network.ipv6.subnet: expected a global or unique");
	FAILS(spec(NET6("'subnet':'::/64'")), "network.ipv6.subnet: expected a global or unique");
	FAILS(spec(NET6("'subnet':'fd00:88::/64','address':'fd00:89::5'")),
	      "network.ipv6.address: fd00:89::5 is outside the subnet fd00:88::/64");
	FAILS(spec(NET6("'subnet':'fd00:88::/64','address':'fd00:88::'")),
	      "network.ipv6.address: fd00:88:: is the subnet's own address");
	FAILS(spec(NET6("'subnet':'fd00:88::/64','address':'fd00:88::1'")),
	      "network.ipv6.address: fd00:88::1 is the gateway");
	FAILS(spec(NET6("'subnet':'fd00:88::/64','gateway':'x'")),
	      "network.ipv6.gateway: expected an IPv6 address");
	FAILS(spec(NET6("'subnet':'fd00:88::/64','mtu':1")), "network.ipv6.mtu: unknown member");
	FAILS(spec("'network':{'mode':'routed','subnet':'10.88.0.0/24','ping':1}"),
	      "network.ping: expected");
#undef NET6
}

TEST(network_mode_and_bridge)
{
	struct cellspec *s = parse_ok(spec(NET));

	if (s) {
		ASSERT_EQ(s->net_mode, CELLSPEC_NET_BRIDGE);
		ASSERT_STREQ(s->bridge, "br0");
		ASSERT_EQ(s->gateway, 0x0a580001);
		ASSERT_EQ(s->address, 0);
		ASSERT_EQ(s->mtu, 1500);
		ASSERT_STREQ(s->ifname, "eth0");
	}
	cellspec_free(s);
	FAILS(spec("'network':{'subnet':'10.0.0.0/24'}"), "network.mode: required");
	FAILS(spec("'network':{'mode':'nat','subnet':'10.0.0.0/24'}"),
	      "network.mode: expected \"bridge\" or \"routed\", got \"nat\"");
	FAILS(spec("'network':{'mode':1,'subnet':'10.0.0.0/24'}"),
	      "network.mode: expected a string, got 1");
	FAILS(spec("'network':{'mode':'bridge','subnet':'10.0.0.0/24'}"),
	      "network.bridge: required when mode is \"bridge\"");
	FAILS(spec("'network':{'mode':'routed','bridge':'br0','subnet':'10.0.0.0/24'}"),
	      "network.bridge: only allowed when mode is \"bridge\"");
	static const char *const bad[] = { "",		"0123456789abcdef", "br/0", "br:0",
					   "br 0",	"br\\t0",	    ".",    "..",
					   "br\\u00e90" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		FAILS(spec("'network':{'mode':'bridge','bridge':'%s','subnet':'10.0.0.0/24'}",
			   bad[i]),
		      "network.bridge: expected an interface name of 1..15 printable ASCII "
		      "characters without '/', ':' or spaces (not \".\" or \"..\"), got");
	s = parse_ok(spec("'network':{'mode':'bridge','bridge':'0123456789abcde','subnet':'10.0.0."
			  "0/24','ifname':'...'}"));
	if (s) {
		ASSERT_STREQ(s->bridge, "0123456789abcde");
		ASSERT_STREQ(s->ifname, "...");
	}
	cellspec_free(s);
	FAILS(spec("'namespaces':['pid'],%s", NET), "network: requires \"net\" in namespaces");
	FAILS(spec("'network':{'mode':'routed','subnet':'10.0.0.0/24','vlan':3}"),
	      "network.vlan: unknown member");
	FAILS(spec("'network':true"), "network: expected an object, got true");
}

#define FMT_SUBNET "'network':{'mode':'routed','subnet':'%s'}"
TEST(network_subnet)
{
	struct cellspec *s = parse_ok(spec(FMT_SUBNET, "192.168.0.0/16"));

	if (s) {
		ASSERT_EQ(s->subnet, 0xc0a80000);
		ASSERT_EQ(s->prefixlen, 16);
		ASSERT_EQ(s->gateway, 0xc0a80001);
	}
	cellspec_free(s);
	s = parse_ok(spec(FMT_SUBNET, "10.0.0.0/8"));
	cellspec_free(s);
	FAILS(spec("'network':{'mode':'routed'}"), "network.subnet: required");
	FAILS(spec(FMT_SUBNET, "10.88.0.1/24"),
	      "network.subnet: host bits must be zero (10.88.0.0/24), "
	      "got \"10.88.0.1/24\"");
	FAILS(spec(FMT_SUBNET, "10.0.0.0/7"),
	      "network.subnet: prefix length must be in 8..30, got");
	FAILS(spec(FMT_SUBNET, "10.0.0.0/31"), "network.subnet: prefix length must be in 8..30");
	static const char *const bad[] = { "10.0.0.0",	  "10.0.0.0/",	 "10.0.0.0/024",
					   "10.0.0/24",	  "10.0.0.0/33", "010.0.0.0/24",
					   "fd00::/64",	  "10.0.0.0/x",	 "10.0.0.256/24",
					   " 10.0.0.0/24" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		FAILS(spec(FMT_SUBNET, bad[i]),
		      "network.subnet: expected an IPv4 CIDR like 10.88.0.0/24, got");
}

#define FMT_GWADDR "'network':{'mode':'routed','subnet':'10.1.2.0/24','%s':'%s'}"
TEST(network_gateway_and_address)
{
	struct cellspec *s;

	s = parse_ok(spec("'network':{'mode':'routed','subnet':'10.1.2.0/24','gateway':'10.1.2."
			  "254','address':'10.1.2.1'}"));
	if (s) {
		ASSERT_EQ(s->gateway, 0x0a0102fe);
		ASSERT_EQ(s->address, 0x0a010201);
	}
	cellspec_free(s);
	s = parse_ok(spec(FMT_GWADDR, "address", "allocate"));
	if (s)
		ASSERT_EQ(s->address, 0);
	cellspec_free(s);
	FAILS(spec(FMT_GWADDR, "gateway", "10.1.3.1"),
	      "network.gateway: 10.1.3.1 is outside the subnet 10.1.2.0/24");
	FAILS(spec(FMT_GWADDR, "gateway", "10.1.2.0"),
	      "network.gateway: 10.1.2.0 is the network address of the subnet");
	FAILS(spec(FMT_GWADDR, "gateway", "10.1.2.255"),
	      "network.gateway: 10.1.2.255 is the broadcast address of the subnet");
	FAILS(spec(FMT_GWADDR, "gateway", "gw"),
	      "network.gateway: expected an IPv4 address, got \"gw\"");
	FAILS(spec(FMT_GWADDR, "address", "10.1.2.1"), "network.address: 10.1.2.1 is the gateway");
	FAILS(spec(FMT_GWADDR, "address", "10.1.4.1"),
	      "network.address: 10.1.4.1 is outside the subnet 10.1.2.0/24");
	FAILS(spec(FMT_GWADDR, "address", "10.1.2.0"),
	      "network.address: 10.1.2.0 is the network address");
	FAILS(spec(FMT_GWADDR, "address", "10.1.2.255"),
	      "network.address: 10.1.2.255 is the broadcast address");
	FAILS(spec(FMT_GWADDR, "address", "auto"),
	      "network.address: expected an IPv4 address or \"allocate\", got \"auto\"");
	FAILS(spec("'network':{'mode':'routed','subnet':'10.1.2.0/24','address':5}"),
	      "network.address: expected a string, got 5");
}

#define FMT_MTU "'network':{'mode':'routed','subnet':'10.0.0.0/24',%s}"
TEST(network_mtu_and_ifname)
{
	struct cellspec *s = parse_ok(spec(FMT_MTU, "'mtu':68,'ifname':'veth-c'"));

	if (s) {
		ASSERT_EQ(s->mtu, 68);
		ASSERT_STREQ(s->ifname, "veth-c");
	}
	cellspec_free(s);
	s = parse_ok(spec(FMT_MTU, "'mtu':65535"));
	if (s)
		ASSERT_EQ(s->mtu, 65535);
	cellspec_free(s);
	FAILS(spec(FMT_MTU, "'mtu':70000"),
	      "network.mtu: expected an integer in 68..65535, got 70000");
	FAILS(spec(FMT_MTU, "'mtu':67"), "network.mtu: expected an integer in 68..65535, got 67");
	FAILS(spec(FMT_MTU, "'mtu':'1500'"),
	      "network.mtu: expected an integer in 68..65535, got \"1500\"");
	FAILS(spec(FMT_MTU, "'mtu':1500.0"),
	      "network.mtu: expected an integer in 68..65535, got 1500.0");
	FAILS(spec(FMT_MTU, "'mtu':1e3"),
	      "network.mtu: expected an integer in 68..65535, got 1000.0");
	FAILS(spec(FMT_MTU, "'ifname':'eth0:1'"), "network.ifname: expected an interface name");
	FAILS(spec(FMT_MTU, "'ifname':''"), "network.ifname: expected an interface name");
}

TEST(dns_section)
{
	struct cellspec *s = parse_ok(spec("%s,'dns':{'upstream':'10.88.0.1:53'}", NET));

	if (s) {
		ASSERT_TRUE(s->dns_enabled);
		ASSERT_EQ(s->dns_listen_ip, 0x7f000035);
		ASSERT_EQ(s->dns_listen_port, 53);
		ASSERT_STREQ(s->dns_upstream, "10.88.0.1:53");
		ASSERT_EQ(s->dns_timeout_ms, 2000);
		ASSERT_TRUE(!s->dns_allow && !s->n_dns_allow);
	}
	cellspec_free(s);
	s = parse_ok(spec("%s,'dns':{'listen':'10.88.0.5:5353','upstream':'1.2.3.4:65535','allow':"
			  "[],'timeoutMs':100}",
			  NET));
	if (s) {
		ASSERT_EQ(s->dns_listen_ip, 0x0a580005);
		ASSERT_EQ(s->dns_listen_port, 5353);
		ASSERT_TRUE(s->dns_allow && s->n_dns_allow == 0); /* [] allows nothing */
		ASSERT_EQ(s->dns_timeout_ms, 100);
	}
	cellspec_free(s);
	/* Disabled: needs no network and no upstream. */
	s = parse_ok(spec("'dns':{'enabled':false}"));
	if (s)
		ASSERT_TRUE(!s->dns_enabled && !s->dns_upstream);
	cellspec_free(s);
	FAILS(spec("'dns':{'upstream':'1.1.1.1:53'}"),
	      "dns: enabled but there is no network (add \"network\" or set \"enabled\": false)");
	FAILS(spec("'dns':{'enabled':true,'upstream':'1.1.1.1:53'}"),
	      "dns: enabled but there is no network");
	FAILS(spec("'namespaces':['net','uts'],%s,'dns':{'upstream':'1.1.1.1:53'}", NET),
	      "dns: requires \"net\" and \"mount\" in namespaces");
	FAILS(spec("%s,'dns':{}", NET), "dns.upstream: required when dns is enabled");
	FAILS(spec("%s,'dns':{'enabled':'yes','upstream':'1.1.1.1:53'}", NET),
	      "dns.enabled: expected true or false, got \"yes\"");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','timeoutMs':99}", NET),
	      "dns.timeoutMs: expected an integer in 100..60000, got 99");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','timeoutMs':60001}", NET),
	      "dns.timeoutMs: expected an integer in 100..60000, got 60001");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','port':53}", NET),
	      "dns.port: unknown member");
	static const char *const bad[] = { "1.1.1.1",	  "1.1.1.1:0", "1.1.1.1:65536",
					   "1.1.1.1:",	  "[::1]:53",  "dns:53",
					   "1.1.1.1:053", "1.1.1:53",  "1.1.1.1:53 " };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* [::1]:53 is IPv6 text: refused here for want of network.ipv6 (SUP-DNS-006) */
		FAILS(spec("%s,'dns':{'upstream':'%s'}", NET, bad[i]),
		      strcmp(bad[i], "[::1]:53")
			      ? "dns.upstream: expected IPv4:PORT or [IPv6]:PORT with PORT 1..65535, got"
			      : "dns.upstream: an IPv6 upstream needs network.ipv6");
		FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','listen':'%s'}", NET, bad[i]),
		      "dns.listen: expected IPv4:PORT with PORT 1..65535, got");
	}
}

/* SUP-DNS-006: [IPv6]:PORT in a dual-stack cell, kept as given; refused without network.ipv6. */
TEST(dns_upstream_ipv6)
{
#define DS "'network':{'mode':'routed','subnet':'10.88.0.0/24','ipv6':{'subnet':'fd00:88::/64'}}"
#define FL "'flows':{'recordVersion':2}"
	static const char *const good[] = { "[fd00:77::1]:53", "[FD00:77:0:0::1]:5353",
					    "[::1]:65535", "[2001:db8::10.0.0.1]:1" };
	static const char *const bad[] = { "[fd00:77::1]",	 "[fd00:77::1]:0",
					   "[fd00:77::1]:65536", "fd00:77::1:53",
					   "[fd00:77::1::2]:53", "[10.0.0.1]:53",
					   "[fd00:77::1]:053",	 "[]:53",
					   "[fe80::1%eth0]:53",	 "[fd00:77::1]:53 " };

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct cellspec *s =
			parse_ok(spec("%s,'dns':{'upstream':'%s'},%s", DS, good[i], FL));

		if (s)
			ASSERT_STREQ(s->dns_upstream, good[i]);
		cellspec_free(s);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		FAILS(spec("%s,'dns':{'upstream':'%s'},%s", DS, bad[i], FL),
		      "dns.upstream: expected IPv4:PORT or [IPv6]:PORT with PORT 1..65535, got");
	FAILS(spec("%s,'dns':{'upstream':'[fd00:77::1]:53'}", NET),
	      "dns.upstream: an IPv6 upstream needs network.ipv6 (the cell has no IPv6 route), got "
	      "\"[fd00:77::1]:53\"");
	/* An IPv4 upstream stays fine in a dual-stack cell. */
	cellspec_free(parse_ok(spec("%s,'dns':{'upstream':'10.77.0.1:53'},%s", DS, FL)));
#undef DS
#undef FL
}

TEST(dns_allow)
{
	char n253[300], n254[300];
	struct cellspec *s;

	/* 253 characters in labels of 63: "x{63}.x{63}.x{63}.x{61}". */
	memset(n253, 'x', 253);
	n253[63] = n253[127] = n253[191] = '.';
	n253[253] = '\0';
	memcpy(n254, n253, 254);
	memcpy(n254 + 253, "x", 2);
	s = parse_ok(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':['Example.TEST','.','%s']}",
			  NET, n253));
	if (s && ASSERT_EQ(s->n_dns_allow, 3)) {
		ASSERT_STREQ(s->dns_allow[0], "Example.TEST");
		ASSERT_STREQ(s->dns_allow[1], ".");
		ASSERT_STREQ(s->dns_allow[2], n253);
	}
	cellspec_free(s);
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':['a','']}", NET),
	      "dns.allow[1]: expected a name suffix of 1..253 characters, got \"\"");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':['%s']}", NET, n254),
	      "dns.allow[0]: expected a name suffix of 1..253 characters");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':[3]}", NET),
	      "dns.allow[0]: expected a name suffix of 1..253 characters, got 3");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':['a..b']}", NET),
	      "dns.allow[0]: not a usable name suffix");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','allow':'example.test'}", NET),
	      "dns.allow: expected an array of name suffixes, got \"example.test\"");
}

TEST(flows_section)
{
	struct cellspec *s = parse_ok(spec("%s,'flows':{}", NET));

	if (s)
		ASSERT_TRUE(s->flows_enabled);
	cellspec_free(s);
	s = parse_ok(spec("'flows':{'enabled':false}"));
	if (s)
		ASSERT_FALSE(s->flows_enabled);
	cellspec_free(s);
	FAILS(spec("'flows':{}"), "flows: enabled but there is no network");
	FAILS(spec("'flows':{'enabled':true}"), "flows: enabled but there is no network");
	FAILS(spec("%s,'flows':{'enabled':1}", NET),
	      "flows.enabled: expected true or false, got 1");
	FAILS(spec("%s,'flows':{'records':'x'}", NET), "flows.records: unknown member");
	FAILS(spec("%s,'flows':true", NET), "flows: expected an object, got true");
	/* The monitor's map sizes: small defaults for a cell, powers of two for the ring. */
	s = parse_ok(spec("%s,'flows':{}", NET));
	if (s) {
		ASSERT_EQ(s->flows_ringbuf_bytes, 65536);
		ASSERT_EQ(s->flows_table_entries, 8192);
	}
	cellspec_free(s);
	s = parse_ok(spec("%s,'flows':{'ringbufBytes':1048576,'tableEntries':100000}", NET));
	if (s) {
		ASSERT_EQ(s->flows_ringbuf_bytes, 1048576);
		ASSERT_EQ(s->flows_table_entries, 100000);
	}
	cellspec_free(s);
	FAILS(spec("%s,'flows':{'ringbufBytes':65535}", NET),
	      "flows.ringbufBytes: expected a power of two in 4096..1073741824");
	FAILS(spec("%s,'flows':{'ringbufBytes':2048}", NET), "flows.ringbufBytes");
	FAILS(spec("%s,'flows':{'tableEntries':0}", NET), "flows.tableEntries");
}

TEST(capabilities)
{
	struct cellspec *s = parse_ok(spec(
		"'capabilities':['CAP_NET_BIND_SERVICE','CAP_CHOWN','CAP_AUDIT_READ','CAP_SYS_ADMIN']"));

	if (s)
		ASSERT_EQ(s->cap_keep, (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_CHOWN) |
					       (1ull << CAP_AUDIT_READ) | (1ull << CAP_SYS_ADMIN));
	cellspec_free(s);
	/* The last capability the headers know is known to the parser too. */
	s = parse_ok(spec("'capabilities':['CAP_CHECKPOINT_RESTORE']"));
	if (s)
		ASSERT_EQ(s->cap_keep, 1ull << CAP_LAST_CAP);
	cellspec_free(s);
	s = parse_ok(spec("'capabilities':[]"));
	if (s)
		ASSERT_EQ(s->cap_keep, 0);
	cellspec_free(s);
	FAILS(spec("'capabilities':['CAP_NET_BIND_SERVICE','CAP_TELEPORT']"),
	      "capabilities[1]: unknown capability \"CAP_TELEPORT\"");
	FAILS(spec("'capabilities':['cap_chown']"), "capabilities[0]: unknown capability");
	FAILS(spec("'capabilities':['CAP_CHOWN','CAP_CHOWN']"),
	      "capabilities[1]: duplicate \"CAP_CHOWN\"");
	FAILS(spec("'capabilities':[0]"), "capabilities[0]: expected a capability name, got 0");
	FAILS(spec("'capabilities':'CAP_CHOWN'"), "capabilities: expected an array");
}

TEST(booleans)
{
	struct cellspec *s = parse_ok(spec("'noNewPrivileges':false,'strict':true"));

	if (s) {
		ASSERT_FALSE(s->no_new_privs);
		ASSERT_TRUE(s->strict);
	}
	cellspec_free(s);
	FAILS(spec("'noNewPrivileges':0"), "noNewPrivileges: expected true or false, got 0");
	FAILS(spec("'strict':'false'"), "strict: expected true or false, got \"false\"");
	FAILS(spec("'strict':null"), "strict: expected true or false, got null");
}

TEST(unknown_members_at_every_level)
{
	FAILS(spec("'unknownKey':1"), "unknownKey: unknown member");
	/* The typo is reported, not the member it hides. */
	FAILS("{\"specVersion\":\"1\",\"celId\":\"c\"}", "celId: unknown member");
	FAILS(spec("'user':{'uid':0,'x':1}"), "user.x: unknown member");
	FAILS(spec("%s,'uidMap':[{'inside':0,'outside':1,'count':1,'x':1}]",
		   "'namespaces':['user'],'gidMap':[{'inside':0,'outside':1,'count':1}]"),
	      "uidMap[0].x: unknown member");
	FAILS(spec("'rlimits':{'core':{'soft':0,'hard':0,'x':1}}"),
	      "rlimits.core.x: unknown member");
	FAILS(spec("'cgroup':{'x':1}"), "cgroup.x: unknown member");
	FAILS(spec("'network':{'mode':'routed','subnet':'10.0.0.0/24','x':1}"),
	      "network.x: unknown member");
	FAILS(spec("%s,'dns':{'upstream':'1.1.1.1:53','x':1}", NET), "dns.x: unknown member");
	FAILS(spec("'flows':{'x':1}"), "flows.x: unknown member");
	/* A key that is not a plain word is quoted and escaped in the path. */
	FAILS(spec("'a b\\\"c':1"), "\"a b\\\"c\": unknown member");
	FAILS(spec("'network':{'\\n':1}"), "network.\"\\u000a\": unknown member");
}

TEST(json_errors_carry_line_and_column)
{
	FAILS("{\n  \"specVersion\": \"1\",\n  \"cellId\": \"c\",\n}\n", "line 4 column 1: ");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"a\",\"cellId\":\"b\"}", "duplicate object key");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"c\"} x",
	      "line 1 column 34: end of file expected");
	FAILS("", "line 1 column 0: ");
	FAILS("[]", "expected a JSON object at the top level, got an array");
	FAILS(spec("'cpus':[99999999999999999999]"), "too big integer");
	FAILS(spec("'hostname':'a\\u0000b'"), "\\u0000 is not allowed");
	FAILS("{\"specVersion\":\"1\",\"cellId\":\"\xff\"}",
	      "line 1 column 29: unable to decode byte 0xff");
	/* A NUL byte inside the buffer ends nothing: it is an error where it stands. */
	{
		static const char nul[] = "{\"specVersion\":\"1\",\"cellId\":\"c\"}\0junk";
		struct cellspec *s = NULL;
		char err[256];

		ASSERT_ERR(cellspec_parse(nul, sizeof(nul) - 1, &s, err, sizeof(err)), -EINVAL);
		ASSERT_TRUE(strstr(err, "line 1 column"));
	}
}

TEST(error_buffer_is_always_terminated)
{
	const char *bad = spec("'network':{'mode':'routed','subnet':'10.0.0.0/24','mtu':70000}");
	struct cellspec *s = NULL;
	char err[16];

	memset(err, 'x', sizeof(err));
	ASSERT_ERR(cellspec_parse(bad, strlen(bad), &s, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(strlen(err), sizeof(err) - 1);
	ASSERT_TRUE(!strncmp(err, "network.mtu: ex", sizeof(err) - 1));
	memset(err, 'x', sizeof(err));
	ASSERT_ERR(cellspec_parse(bad, strlen(bad), &s, err, 1), -EINVAL);
	ASSERT_EQ(err[0], '\0');
	ASSERT_EQ(err[1], 'x');
	ASSERT_ERR(cellspec_parse(bad, strlen(bad), &s, NULL, 0), -EINVAL);
	ASSERT_ERR(cellspec_parse("{", 1, &s, err, 5), -EINVAL);
	ASSERT_EQ(strlen(err), 4);
	ASSERT_TRUE(s == NULL);
}

TEST(long_values_are_cut_in_messages)
{
	char v[400], msg[512];
	const char *json;
	struct cellspec *s = NULL;

	memset(v, 'q', 300);
	v[300] = '\0';
	json = spec("'network':{'mode':'%s','subnet':'10.0.0.0/24'}", v);
	ASSERT_ERR(cellspec_parse(json, strlen(json), &s, msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "got \"qqqq"));
	ASSERT_TRUE(strstr(msg, "...\""));
	ASSERT_LE(strlen(msg), 130);
	/* Cut between characters, never inside one: "é" is two bytes. */
	for (int i = 0; i < 100; i++)
		memcpy(v + 2 * i, "\xc3\xa9", 2);
	v[200] = '\0';
	json = spec("'network':{'mode':'%s','subnet':'10.0.0.0/24'}", v);
	ASSERT_ERR(cellspec_parse(json, strlen(json), &s, msg, sizeof(msg)), -EINVAL);
	ASSERT_TRUE(strstr(msg, "\xc3\xa9...\""));
}

/* A path to a memfd holding len bytes of json padded with spaces: nothing to clean up. */
static int memfd_spec(const char *json, size_t len, char path[64])
{
	int fd = memfd_create("cellspec", MFD_CLOEXEC);
	size_t n = strlen(json);
	_cleanup_free_ char *buf = malloc(len);

	if (fd < 0 || !buf || len < n)
		return -1;
	memcpy(buf, json, n);
	memset(buf + n, ' ', len - n);
	if (util_write_all(fd, buf, len) < 0)
		return -1;
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

TEST(load_reads_at_most_one_mebibyte)
{
	_cleanup_close_ int fd1 = -1, fd2 = -1;
	char path[64], err[256];
	struct cellspec *s = NULL;

	fd1 = memfd_spec(spec("%s", ""), CELLSPEC_MAX_SIZE, path);
	if (!ASSERT_GE(fd1, 0))
		return;
	if (ASSERT_OK(cellspec_load(path, &s, err, sizeof(err))))
		ASSERT_STREQ(s->cell_id, "c");
	cellspec_freep(&s);
	fd2 = memfd_spec(spec("%s", ""), CELLSPEC_MAX_SIZE + 1, path);
	if (!ASSERT_GE(fd2, 0))
		return;
	ASSERT_ERR(cellspec_load(path, &s, err, sizeof(err)), -EFBIG);
	ASSERT_STREQ(err, "spec is larger than 1 MiB (1048576 bytes)");
	ASSERT_TRUE(s == NULL);
}

TEST(load_reports_open_and_read_errors)
{
	char err[256];
	struct cellspec *s = NULL;

	ASSERT_ERR(cellspec_load("/nonexistent/cell.json", &s, err, sizeof(err)), -ENOENT);
	ASSERT_STREQ(err, "open: ENOENT: No such file or directory");
	ASSERT_ERR(cellspec_load("/", &s, err, sizeof(err)), -EISDIR);
	ASSERT_STREQ(err, "read: EISDIR: Is a directory");
	ASSERT_TRUE(s == NULL);
}

TEST(valid_fixtures_parse)
{
	char dir[4096], path[4400], err[256];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/fixtures/cells", srcdir());
	d = opendir(dir);
	if (!ASSERT_TRUE(d))
		return;
	while ((e = readdir(d))) {
		struct cellspec *s = NULL;
		size_t l = strlen(e->d_name);

		if (l < 5 || strcmp(e->d_name + l - 5, ".json"))
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!ASSERT_OK(cellspec_load(path, &s, err, sizeof(err))))
			tap_diag("%s: %s", e->d_name, err);
		cellspec_free(s);
	}
	closedir(d);
	ASSERT_GE(n, 4);
}

TEST(invalid_fixtures_fail_with_the_expected_message)
{
	char dir[4096], path[4400], err[512];
	json_t *expected, *v;
	const char *name;
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/fixtures/cells/invalid", srcdir());
	snprintf(path, sizeof(path), "%s/expected.json", dir);
	expected = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (!ASSERT_TRUE(json_is_object(expected)))
		return;
	/* Every entry has its file, and every file its entry. */
	json_object_foreach(expected, name, v)
	{
		const char *want = json_is_string(v)
					   ? json_string_value(v)
					   : json_string_value(json_object_get(v, "error"));
		struct cellspec *s = NULL;

		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (!ASSERT_TRUE(want))
			continue;
		if (!ASSERT_ERR(cellspec_load(path, &s, err, sizeof(err)), -EINVAL) ||
		    !ASSERT_TRUE(strstr(err, want)))
			tap_diag("%s: want \"%s\", got \"%s\"", name, want, err);
		cellspec_free(s);
	}
	d = opendir(dir);
	if (ASSERT_TRUE(d)) {
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);

			if (l < 5 || strcmp(e->d_name + l - 5, ".json") ||
			    !strcmp(e->d_name, "expected.json"))
				continue;
			if (!ASSERT_TRUE(json_object_get(expected, e->d_name)))
				tap_diag("%s has no entry in expected.json", e->d_name);
		}
		closedir(d);
	}
	json_decref(expected);
	ASSERT_GE(n, 10);
}
