// SPDX-License-Identifier: Apache-2.0
/*
 * The case's topology (hrun_int.h, hcase.h "topology"): a fresh network namespace per name,
 * held by an fd only, so the run's end removes it whatever happens; veth pairs between them,
 * bridges, lone links (a veth whose peer sits in a throwaway namespace), addresses and routes,
 * all through netcfg (libnl). Problems name the namespace and link, with the kernel's errno.
 *
 *   worker netns            ns "a" (fd)                 ns "b" (fd)
 *   +-----------+     +-------------------+  veth  +-------------------+
 *   | harness   |     | lo up, addresses  |<------>| lo up, addresses  |
 *   +-----------+     | routes, bridges   |        | routes            |
 *                     +-------------------+        +-------------------+
 */
#include <arpa/inet.h>
#include <sched.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/mount.h>

#include "netcfg.h"
#include "hrun_int.h"

int htopo_ns_index(const struct hcase *c, const char *name)
{
	for (size_t i = 0; name && i < c->topo.n_ns; i++)
		if (strcmp(c->topo.ns[i], name) == 0)
			return (int)i;
	return -1;
}

int htopo_step_ns_fd(struct run *r, const struct hcase_step *st)
{
	int i = htopo_ns_index(r->c, st->ns);

	return i < 0 ? -1 : r->ns_fd[i];
}

char *htopo_netns_path(struct run *r, const struct hcase_step *st)
{
	int fd = htopo_step_ns_fd(r, st);
	char *p;

	if (fd < 0) {
		if (asprintf(&p, "/proc/%d/ns/net", getpid()) < 0)
			return NULL;
	} else if (asprintf(&p, "/proc/%d/fd/%d", getpid(), fd) < 0) {
		return NULL;
	}
	return p;
}

static int parse_v4(const char *s, uint32_t *ip, unsigned int *plen)
{
	char buf[64];
	char *slash;
	struct in_addr a;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	*plen = 32;
	if (slash) {
		*slash = '\0';
		*plen = (unsigned int)atoi(slash + 1);
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EAFNOSUPPORT; /* IPv6 or garbage */
	*ip = ntohl(a.s_addr);
	return 0;
}

/* "2001:db8::1/64" (prefix 128 when absent); IPv6 addresses go on without DAD. */
static int parse_v6(const char *s, uint8_t addr[16], unsigned int *plen)
{
	char buf[64];
	char *slash;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	*plen = 128;
	if (slash) {
		*slash = '\0';
		*plen = (unsigned int)atoi(slash + 1);
	}
	if (*plen > 128 || inet_pton(AF_INET6, buf, addr) != 1)
		return -EINVAL;
	return 0;
}

static int netns_new(void)
{
	_cleanup_close_ int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd, r = 0;

	if (home < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	if (setns(home, CLONE_NEWNET) < 0) {
		/* Stranded in the new namespace: the worker cannot go on. */
		_exit(125);
	}
	return fd < 0 ? r : fd;
}

static int addrs_add(struct run *r, struct netcfg *nc, int ifindex, char **addrs)
{
	int e = 0;

	for (char **ad = addrs; !e && ad && *ad; ad++) {
		uint32_t ip;
		unsigned int plen;

		e = parse_v4(*ad, &ip, &plen);
		if (e == -EAFNOSUPPORT) {
			uint8_t a6[16];

			e = parse_v6(*ad, a6, &plen);
			if (e) {
				run_verdict(r, HREP_ERROR,
					    "address %s: not an IPv4 or IPv6 address/prefix", *ad);
				return e;
			}
			e = netcfg_addr6_add(nc, ifindex, a6, plen);
			continue;
		}
		e = e ?: netcfg_addr_add(nc, ifindex, ip, plen);
	}
	return e;
}

/* A bridge with its alias and addresses, up, its ports (earlier links' ends) enslaved. */
static int bridge_up(struct run *r, const struct hcase_link *l)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_bridge_opts bo = { .name = l->end[0].ifname,
					 .alias = l->end[0].alias,
					 .mtu = l->mtu };
	int br = 0, e;

	e = netcfg_open(r->ns_fd[htopo_ns_index(r->c, l->end[0].ns)], &nc);
	e = e ?: netcfg_bridge_add(nc, &bo, &br);
	e = e ?: addrs_add(r, nc, br, l->end[0].addrs);
	for (char **pt = l->ports; !e && pt && *pt; pt++) {
		struct netcfg_link_info li;

		e = netcfg_link_get(nc, *pt, &li);
		e = e ?: netcfg_link_set_master(nc, li.ifindex, br);
	}
	e = e ?: netcfg_link_set_up(nc, br);
	if (e < 0 && r->status != HREP_ERROR)
		run_verdict(r, HREP_ERROR, "bridge %s/%s: %s", l->end[0].ns, l->end[0].ifname,
			    util_errno_name(-e));
	return e;
}

/*
 * A lone link: this kernel may lack the dummy driver, so it is a veth whose peer lives in a
 * throwaway namespace only the run holds; closing that namespace removes both ends.
 */
static int dummy_up(struct run *r, const struct hcase_link *l)
{
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct netcfg_veth_opts vo = {
		.name = l->end[0].ifname, .peer = "peer0", .alias = l->end[0].alias, .mtu = l->mtu
	};
	struct netcfg_link_info li;
	int aux, e;

	if (r->n_aux_ns >= ARRAY_SIZE(r->aux_ns))
		e = -ENOSPC;
	else if ((aux = netns_new()) < 0)
		e = aux;
	else {
		r->aux_ns[r->n_aux_ns++] = aux;
		vo.peer_netns_fd = aux;
		e = netcfg_open(r->ns_fd[htopo_ns_index(r->c, l->end[0].ns)], &nc);
		e = e ?: netcfg_veth_add_ex(nc, &vo, NULL);
		e = e ?: netcfg_link_get(nc, l->end[0].ifname, &li);
		/* up first, as in veth_up */
		e = e ?: netcfg_link_set_up(nc, li.ifindex);
		e = e ?: addrs_add(r, nc, li.ifindex, l->end[0].addrs);
	}
	if (e < 0 && r->status != HREP_ERROR)
		run_verdict(r, HREP_ERROR, "dummy link %s/%s: %s", l->end[0].ns, l->end[0].ifname,
			    util_errno_name(-e));
	return e;
}

/* A veth pair between two namespaces, each end with its alias, addresses, up. */
static int veth_up(struct run *r, const struct hcase_link *l)
{
	_cleanup_(netcfg_freep) struct netcfg *nc0 = NULL, *nc1 = NULL;
	int a = htopo_ns_index(r->c, l->end[0].ns), b, e;
	struct netcfg_veth_opts vo;
	struct netcfg *ncs[2];

	b = htopo_ns_index(r->c, l->end[1].ns);
	vo = (struct netcfg_veth_opts){ .name = l->end[0].ifname,
					.peer = l->end[1].ifname,
					.peer_netns_fd = r->ns_fd[b],
					.mtu = l->mtu,
					.alias = l->end[0].alias };
	e = netcfg_open(r->ns_fd[a], &nc0);
	e = e ?: netcfg_open(r->ns_fd[b], &nc1);
	e = e ?: netcfg_veth_add_ex(nc0, &vo, NULL);
	if (e < 0) {
		run_verdict(r, HREP_ERROR, "link %s/%s-%s/%s: %s", l->end[0].ns, l->end[0].ifname,
			    l->end[1].ns, l->end[1].ifname, util_errno_name(-e));
		return e;
	}
	ncs[0] = nc0;
	ncs[1] = nc1;
	for (int k = 0; k < 2; k++) {
		struct netcfg_link_info li;

		e = netcfg_link_get(ncs[k], l->end[k].ifname, &li);
		if (!e && k == 1 && l->end[1].alias)
			e = netcfg_link_set_alias(ncs[k], li.ifindex, l->end[1].alias);
		/*
		 * Up first: an IPv6 address added while the link is down (even with NODAD)
		 * does not answer neighbour solicitations for about a second after it comes
		 * up (measured: the first datagram took 1.02 s, 2 ms with addresses added
		 * after up).
		 */
		e = e ?: netcfg_link_set_up(ncs[k], li.ifindex);
		e = e ?: addrs_add(r, ncs[k], li.ifindex, l->end[k].addrs);
		if (e < 0) {
			run_verdict(r, HREP_ERROR, "link end %s/%s: %s", l->end[k].ns,
				    l->end[k].ifname, util_errno_name(-e));
			return e;
		}
	}
	return 0;
}

/* A fresh namespace per name, its loopback up. */
static int namespaces_up(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;
	int e;

	for (size_t i = 0; i < t->n_ns; i++) {
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
		struct netcfg_link_info li;

		r->ns_fd[i] = netns_new();
		if (r->ns_fd[i] < 0) {
			e = r->ns_fd[i];
			run_verdict(r, HREP_ERROR, "namespace %s: unshare: %s", t->ns[i],
				    util_errno_name(-e));
			return e;
		}
		e = netcfg_open(r->ns_fd[i], &nc);
		e = e ?: netcfg_link_get(nc, "lo", &li);
		e = e ?: netcfg_link_set_up(nc, li.ifindex);
		if (e < 0) {
			run_verdict(r, HREP_ERROR, "namespace %s: lo up: %s", t->ns[i],
				    util_errno_name(-e));
			return e;
		}
	}
	return 0;
}

/* Veth pairs, bridges and lone links, in the case's order (a bridge takes earlier ends). */
static int links_up(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;
	int e;

	for (size_t i = 0; i < t->n_links; i++) {
		const struct hcase_link *l = &t->links[i];

		if (l->type == HCASE_LINK_BRIDGE) {
			e = bridge_up(r, l);
			if (e < 0)
				return e;
			continue;
		}
		if (l->type == HCASE_LINK_DUMMY) {
			e = dummy_up(r, l);
			if (e < 0)
				return e;
			continue;
		}
		e = veth_up(r, l);
		if (e < 0)
			return e;
	}
	return 0;
}

/* Routes, "default" or a prefix, via a gateway. */
static int routes_up(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;
	int e;

	for (size_t i = 0; i < t->n_routes; i++) {
		const struct hcase_route *rt = &t->routes[i];
		_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
		struct netcfg_route ro = { 0 };
		unsigned int plen = 32;

		e = 0;
		if (strcmp(rt->dst, "default") != 0)
			e = parse_v4(rt->dst, &ro.dst, &plen);
		ro.prefixlen = strcmp(rt->dst, "default") == 0 ? 0 : plen;
		e = e ?: parse_v4(rt->via, &ro.gateway, &plen);
		e = e ?: netcfg_open(r->ns_fd[htopo_ns_index(r->c, rt->ns)], &nc);
		e = e ?: netcfg_route_add(nc, &ro);
		if (e < 0) {
			run_verdict(r, HREP_ERROR, "route %s via %s in %s: %s", rt->dst, rt->via,
				    rt->ns, util_errno_name(-e));
			return e;
		}
	}
	return 0;
}

/* Namespaces, links, routes; an ERROR problem names what failed. */
int htopo_up(struct run *r)
{
	return namespaces_up(r) ?: links_up(r) ?: routes_up(r);
}

/* tx/rx packet counters of every link end, from /proc/self/net/dev inside each netns. */
void htopo_link_counters(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; i < t->n_ns; i++) {
		_cleanup_fclose_ FILE *f = NULL;
		char line[512];

		if (r->ns_fd[i] < 0 || setns(r->ns_fd[i], CLONE_NEWNET) < 0)
			continue;
		f = fopen("/proc/self/net/dev", "re");
		while (f && fgets(line, sizeof(line), f)) {
			char name[32], key[128], val[32];
			unsigned long long v[16];
			char *colon = strchr(line, ':');

			if (!colon || sscanf(line, " %31[^:]:", name) != 1)
				continue;
			if (sscanf(colon + 1,
				   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
				   "%llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
				   &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]) != 16)
				continue;
			snprintf(key, sizeof(key), "link.%s.%s.rx_packets", t->ns[i], name);
			snprintf(val, sizeof(val), "%llu", v[1]);
			json_object_set_new(r->vars, key, json_string(val));
			snprintf(key, sizeof(key), "link.%s.%s.tx_packets", t->ns[i], name);
			snprintf(val, sizeof(val), "%llu", v[9]);
			json_object_set_new(r->vars, key, json_string(val));
		}
		if (setns(r->w->home_ns, CLONE_NEWNET) < 0)
			_exit(125);
	}
}

/* Close the case's namespaces, noting each one's inode for the audit (inos[i], 0: none). */
void htopo_down(struct run *r, ino_t *inos)
{
	struct stat sb;

	for (size_t i = 0; i < r->c->topo.n_ns; i++)
		if (r->ns_fd[i] >= 0) {
			if (fstat(r->ns_fd[i], &sb) == 0)
				inos[i] = sb.st_ino;
			close(r->ns_fd[i]);
			r->ns_fd[i] = -1;
		}
	for (size_t i = 0; i < r->n_aux_ns; i++)
		close(r->aux_ns[i]);
	r->n_aux_ns = 0;
}
