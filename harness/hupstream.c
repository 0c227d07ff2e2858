// SPDX-License-Identifier: Apache-2.0
/*
 * The DNS peer a case declares with "upstream" (hrun_int.h): harness/upstream/
 * cellcheck_upstream.py (the scripted fake, or unbound with a local zone) in the upstream's
 * namespace, started before the steps and stopped after them. Its stop yields the query count
 * (upstream_queries) and, from its log, the runner values "var:upstream.*".
 */
#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "netcfg.h"
#include "hrun_int.h"

/*
 * The upstream (harness/upstream/cellcheck_upstream.py: the scripted fake, or unbound with a
 * local zone) in the upstream's namespace. Forged replies from "another address" come from
 * listen+1 (for IPv6: the last byte plus one), added to the interface holding the listen
 * address (IPv6 without DAD, so the fake can send from it at once).
 */
static int upstream_alt_addr(struct run *r, int nsi, const char *ip, char alt[INET6_ADDRSTRLEN])
{
	const char *ns = r->c->topo.ns[nsi];
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_link_info li;
	struct in_addr a;
	uint8_t a6[16];
	bool v6 = false;
	size_t iplen = strlen(ip);

	if (inet_pton(AF_INET, ip, &a) == 1) {
		a.s_addr = htonl(ntohl(a.s_addr) + 1);
		inet_ntop(AF_INET, &a, alt, INET6_ADDRSTRLEN);
	} else if (inet_pton(AF_INET6, ip, a6) == 1) {
		v6 = true;
		a6[15]++;
		inet_ntop(AF_INET6, a6, alt, INET6_ADDRSTRLEN);
	} else {
		return -EAFNOSUPPORT;
	}
	for (size_t l = 0; l < r->c->topo.n_links; l++) {
		for (int e = 0; e < 2; e++) {
			const struct hcase_endpoint *ep = &r->c->topo.links[l].end[e];

			if (!ep->ns || strcmp(ep->ns, ns) != 0)
				continue;
			for (char **ad = ep->addrs; ad && *ad; ad++) {
				if (strncmp(*ad, ip, iplen) != 0 || (*ad)[iplen] != '/')
					continue;
				int err = netcfg_open(r->ns_fd[nsi], &nc);

				err = err ?: netcfg_link_get(nc, ep->ifname, &li);
				if (v6)
					err = err ?: netcfg_addr6_add(nc, li.ifindex, a6, 128);
				else
					err = err
						      ?: netcfg_addr_add(nc, li.ifindex,
									 ntohl(a.s_addr), 32);
				return err == -EEXIST ? 0 : err;
			}
		}
	}
	return -ENODEV;
}

static bool forges_saddr(json_t *up)
{
	json_t *rule;
	size_t i;

	json_array_foreach(json_object_get(up, "rules"), i, rule)
	{
		const char *f = json_string_value(json_object_get(rule, "forge"));

		if (f && strcmp(f, "saddr") == 0)
			return true;
	}
	return false;
}

int hupstream_start(struct run *r)
{
	const char *ns = json_string_value(json_object_get(r->c->upstream, "ns"));
	const char *listen = json_string_value(json_object_get(r->c->upstream, "listen"));
	int nsi = htopo_ns_index(r->c, ns), rp[2], st, err;
	pid_t parent = getpid(), pid;
	_cleanup_free_ char *jpath = NULL, *lpath = NULL, *script = NULL, *nspath = NULL;
	char alt[INET6_ADDRSTRLEN] = "", ip[INET6_ADDRSTRLEN];
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	struct pollfd pf;
	char b;

	if (nsi < 0 || !colon || asprintf(&jpath, "%s/upstream.json", r->dir) < 0 ||
	    asprintf(&lpath, "%s/upstream.log", r->dir) < 0 ||
	    asprintf(&script, "%s/harness/upstream/cellcheck_upstream.py", r->ctx->srcdir) < 0 ||
	    asprintf(&nspath, "/proc/%d/fd/%d", (int)parent, r->ns_fd[nsi]) < 0)
		return -ENOMEM;
	/* "[fd00::1]:53": the address between the brackets */
	if (listen[0] == '[' && colon > listen + 1 && colon[-1] == ']')
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - listen - 2), listen + 1);
	else
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - listen), listen);
	if (json_dump_file(r->c->upstream, jpath, JSON_COMPACT) < 0) {
		run_verdict(r, HREP_ERROR, "upstream: cannot write %s", jpath);
		return -EIO;
	}
	if (forges_saddr(r->c->upstream)) {
		err = upstream_alt_addr(r, nsi, ip, alt);
		if (err < 0) {
			run_verdict(r, HREP_ERROR, "upstream: alternate address for %s: %s", ip,
				    util_errno_name(-err));
			return err;
		}
	}
	if (pipe2(rp, O_CLOEXEC) < 0) {
		run_verdict(r, HREP_ERROR, "upstream: %s", util_errno_name(errno));
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char *argv[] = {
			"/usr/bin/python3", "-I", script, "--netns", nspath, "--upstream-json",
			jpath, "--ready-fd", "3", "--log", lpath,
			/* unbound's files: the case dir goes, whatever kills the upstream */
			"--tmp-dir", r->dir, alt[0] ? "--alt-addr" : NULL, alt, NULL
		};

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || dup2(rp[1], 3) < 0)
			_exit(1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(rp[1]);
	if (pid < 0) {
		close(rp[0]);
		run_verdict(r, HREP_ERROR, "upstream: fork: %s", util_errno_name(errno));
		return -EAGAIN;
	}
	hproc_note_group(r, pid);
	r->upstream_pid = pid;
	pf = (struct pollfd){ .fd = rp[0], .events = POLLIN };
	if (poll(&pf, 1, run_remaining_ms(r, 5000)) != 1 || read(rp[0], &b, 1) != 1) {
		close(rp[0]);
		if (hproc_wait_exit(pid, 100, &st))
			run_verdict(r, HREP_ERROR, "upstream: cannot serve %s (status %d, see %s)",
				    listen, st, lpath);
		else
			run_verdict(r, HREP_ERROR, "upstream: not serving %s within %u ms", listen,
				    run_scaled(r, 5000));
		return -EIO;
	}
	close(rp[0]);
	r->upstream_log = TAKE_PTR(lpath);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t distinct_u32(uint32_t *v, size_t n)
{
	size_t d = 0;

	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < n; i++)
		d += i == 0 || v[i] != v[i - 1];
	return d;
}

/*
 * Spread of n values in log order: the rarest and the commonest 1-bit among the low `bits` bits,
 * per mille of the values, and how often the most common difference (mod 65536) between
 * consecutive values occurs (a counter or a fixed stride shows up as about n).
 */
struct spread {
	size_t bit_min_permille, bit_max_permille, delta_top;
};

static int spread_of(const uint32_t *v, size_t n, int bits, struct spread *ret)
{
	_cleanup_free_ uint32_t *deltas = calloc(n, sizeof(*deltas));
	size_t ones[32] = { 0 }, bmin = SIZE_MAX, bmax = 0, top = 0;

	if (!deltas)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		for (int b = 0; b < bits; b++)
			ones[b] += (v[i] >> b) & 1;
		if (i)
			deltas[i - 1] = (v[i] - v[i - 1]) & 0xffff;
	}
	for (int b = 0; b < bits; b++) {
		bmin = ones[b] < bmin ? ones[b] : bmin;
		bmax = ones[b] > bmax ? ones[b] : bmax;
	}
	qsort(deltas, n - 1, sizeof(*deltas), cmp_u32);
	for (size_t i = 0, run = 0; i + 1 < n; i++) {
		run = i && deltas[i] == deltas[i - 1] ? run + 1 : 1;
		top = run > top ? run : top;
	}
	*ret = (struct spread){ bmin * 1000 / n, bmax * 1000 / n, top };
	return 0;
}

/*
 * Statistics over the queries the upstream logged (their DNS IDs and source ports), as runner
 * values for counts "var:upstream.*": RFC 5452 asks for IDs and ports nobody can predict; a
 * counter or a fixed port shows up here (spread_of()): id_* over the 16 ID bits, sport_* over
 * the low 10 bits of the source ports (1024 to 65535 holds each of their values 63 times).
 */
static void upstream_stats(struct run *r, const char *log)
{
	_cleanup_free_ uint32_t *ids = NULL, *ports = NULL;
	size_t n = 0, cap = 0, emin = SIZE_MAX, emax = 0, pmin = SIZE_MAX;
	struct spread is, ps;

	for (const char *l = log; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		json_t *j = json_loadb(l, len, 0, NULL);
		json_t *id = json_object_get(j, "id"), *sp = json_object_get(j, "sport");
		json_t *es = json_object_get(j, "edns_udp_size");

		/* The EDNS sizes the upstream received: a forwarder must not rewrite them. */
		if (json_is_integer(es)) {
			size_t v = (size_t)json_integer_value(es);

			emin = v < emin ? v : emin;
			emax = v > emax ? v : emax;
		}

		if (json_is_integer(id) && json_is_integer(sp) &&
		    !json_object_get(j, "malformed")) {
			if (n == cap) {
				uint32_t *ni, *np;

				cap = cap ? 2 * cap : 1024;
				ni = realloc(ids, cap * sizeof(*ni));
				if (ni)
					ids = ni;
				np = realloc(ports, cap * sizeof(*np));
				if (np)
					ports = np;
				if (!ni || !np) {
					json_decref(j);
					return;
				}
			}
			ids[n] = (uint32_t)json_integer_value(id) & 0xffff;
			ports[n++] = (uint32_t)json_integer_value(sp);
		}
		json_decref(j);
		l = nl ? nl + 1 : l + len;
	}
	run_set_num(r->vars, "upstream.logged", n);
	if (emax) {
		run_set_num(r->vars, "upstream.edns_udp_size_min", emin);
		run_set_num(r->vars, "upstream.edns_udp_size_max", emax);
	}
	if (!n)
		return;
	if (spread_of(ids, n, 16, &is) < 0 || spread_of(ports, n, 10, &ps) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		pmin = ports[i] < pmin ? ports[i] : pmin;
	run_set_num(r->vars, "upstream.id_bit_min_permille", is.bit_min_permille);
	run_set_num(r->vars, "upstream.id_bit_max_permille", is.bit_max_permille);
	run_set_num(r->vars, "upstream.id_delta_top", is.delta_top);
	run_set_num(r->vars, "upstream.sport_bit_min_permille", ps.bit_min_permille);
	run_set_num(r->vars, "upstream.sport_bit_max_permille", ps.bit_max_permille);
	run_set_num(r->vars, "upstream.sport_delta_top", ps.delta_top);
	run_set_num(r->vars, "upstream.sport_min", pmin);
	run_set_num(r->vars, "upstream.id_distinct", distinct_u32(ids, n));
	run_set_num(r->vars, "upstream.sport_distinct", distinct_u32(ports, n));
}

/*
 * The peer's own stop is bounded (cellcheck_upstream.py: unbound's statistics 3 s, its exit
 * 2 s, then SIGKILL), plus its start-up cost on a loaded machine: 10 s before scaling.
 */
#define UPSTREAM_STOP_MS 10000

/* SIGTERM: the upstream writes its summary line; its "queries" is upstream_queries. */
uint64_t hupstream_stop(struct run *r)
{
	_cleanup_free_ char *log = NULL;
	uint64_t n = UINT64_MAX;
	size_t len;
	int st;

	bool ended;

	if (r->upstream_pid <= 0)
		return UINT64_MAX;
	kill(r->upstream_pid, SIGTERM);
	ended = hproc_wait_exit(r->upstream_pid, (int)run_scaled(r, UPSTREAM_STOP_MS), &st);
	if (!ended)
		hproc_kill_group(r->upstream_pid);
	r->upstream_pid = 0;
	log = r->upstream_log ? hfile_slurp(r->upstream_log, &len) : NULL;
	upstream_stats(r, log);
	for (char *l = log ? strstr(log, "{\"summary\"") : NULL; l;
	     l = strstr(l + 1, "{\"summary\"")) {
		json_t *j = json_loads(l, JSON_DISABLE_EOF_CHECK, NULL);
		json_t *q = json_object_get(json_object_get(j, "summary"), "queries");

		if (json_is_integer(q))
			n = (uint64_t)json_integer_value(q);
		json_decref(j);
	}
	/* The harness's own peer failed: the case cannot be judged on it (not the IUT's fault). */
	if (n == UINT64_MAX)
		run_verdict(
			r, HREP_ERROR,
			"upstream: no summary line at its stop (%s within %u ms of SIGTERM; see "
			"upstream.log)",
			ended ? "it exited" : "it did not exit, killed",
			run_scaled(r, UPSTREAM_STOP_MS));
	return n;
}
