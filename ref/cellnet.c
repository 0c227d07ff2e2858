// SPDX-License-Identifier: Apache-2.0
/*
 * A cell's network, wired over rtnetlink in ~15 requests and no sleeps:
 *
 *   host netns                                          cell netns (fd from the caller)
 *   bridge mode:
 *   [bridge br  gw/prefix] -- [host_if] <==== veth ====> [cell_if  cell_ip/prefix]  + lo up
 *   routed mode:
 *   [host_if  gw/32]                    <==== veth ====> [cell_if  cell_ip/prefix]  + lo up
 *    route cell_ip/32 dev host_if
 *
 *   cell: default via gw (onlink in routed mode); static neighbour gw -> host-side MAC (the
 *         bridge's in bridge mode, host_if's in routed mode)
 *   host: static neighbour cell_ip -> cell_if's MAC, on the bridge (bridge mode) or host_if
 *
 * Dual-stack cells get the same again for IPv6, each address without DAD (IFA_F_NODAD):
 *   [bridge  gw6/prefix6 (only on a bridge made here)]      [cell_if  cell_ip6/prefix6]
 *   [host_if  gw6/128], route cell_ip6/128 dev host_if      default via gw6 (onlink if routed)
 *   static neighbours gw6 (cell) and cell_ip6 (host) like the IPv4 ones; accept_dad 0 on the
 *   cell end, so its link-local address is never tentative either.
 *
 * The cell end is created inside the cell netns by the same RTM_NEWLINK that creates the pair,
 * with the MTU of both ends (never create-then-move). The host end gets a MAC starting with
 * fe: so that it never becomes the MAC of a bridge that picks the lowest port MAC; a bridge
 * created here gets a fixed MAC for the same reason, so the cells' static neighbours stay
 * right as ports come and go.
 *
 * Each step that changed something is journaled with its undo. Whatever lives on the veth
 * (addresses, routes, neighbours, the bridge port) goes away with it and is journaled as
 * covered by the veth; so are the address and up state of a bridge created here, covered by
 * the bridge. Undo runs the journal backwards and never acts on something it did not create:
 * links by the ifindex they got, the bridge only if it still carries our alias and has no
 * port, a neighbour entry only if it still holds the MAC we put there.
 */
#include "cellnet.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <linux/neighbour.h>

#include "fault.h"
#include "netcfg.h"
#include "util.h"

const char *const cellnet_steps[] = {
	"bridge",     "bridge_addr6", "bridge_up",  "veth",	   "host_master", "host_addr",
	"host_addr6", "host_up",      "host_route", "host_route6", "cell_lo_up",  "cell_addr",
	"cell_addr6", "cell_up",      "cell_route", "cell_route6", "cell_neigh",  "cell_neigh6",
	"host_neigh", "host_neigh6",  NULL,
};

enum op_kind {
	OP_COVERED,    /* removed with the link op covered_by created */
	OP_LINK_DEL,   /* a link created here: delete it */
	OP_BRIDGE_DEL, /* a bridge created here: delete it once no port is left */
	OP_LINK_DOWN,  /* a link brought up here (it was down): down again */
	OP_NEIGH_DEL,  /* a neighbour entry put here: delete it while it is still ours */
};

struct op {
	const char *step;
	enum op_kind kind;
	bool in_cell; /* which namespace: the cell's or the host's */
	int covered_by;
	int ifindex;
	char name[IFNAMSIZ]; /* OP_LINK_DEL: the name it was created with */
	uint32_t ip;
	bool v6; /* OP_NEIGH_DEL: the entry is ip6's */
	uint8_t ip6[16];
	uint8_t mac[6];
};

/* The most a setup journals: bridge, its addresses and up state, then one op per later step. */
#define CELLNET_MAX_OPS 24

struct cellnet {
	struct netcfg *host; /* borrowed */
	struct netcfg *cell; /* ours: a socket born in the cell netns */
	int host_ifindex, cell_ifindex, bridge_ifindex;
	int veth_op, bridge_op; /* journal index of their creation, or -1 */
	bool bridge_created;
	uint8_t host_mac[6], cell_mac[6];
	unsigned int nops;
	struct op ops[CELLNET_MAX_OPS];
};

static struct op *journal(struct cellnet *cn, const char *step, enum op_kind kind, bool in_cell,
			  int ifindex)
{
	struct op *op;

	/* The step sequence is fixed, so overflowing is a bug here, not a runtime condition. */
	if (cn->nops == CELLNET_MAX_OPS)
		abort();
	op = &cn->ops[cn->nops++];
	*op = (struct op){
		.step = step, .kind = kind, .in_cell = in_cell, .ifindex = ifindex, .covered_by = -1
	};
	return op;
}

static void covered(struct cellnet *cn, const char *step, int by)
{
	journal(cn, step, OP_COVERED, false, 0)->covered_by = by;
}

static int undo_link(struct netcfg *nc, const struct op *op)
{
	struct netcfg_link_info k;
	int r;

	/* Ifindexes are not reused soon, names may be: both must still match. */
	r = netcfg_link_get_index(nc, op->ifindex, &k);
	if (r == -ENODEV || (r == 0 && strcmp(k.name, op->name) != 0))
		return 0;
	if (r < 0)
		return r;
	r = netcfg_link_del_index(nc, op->ifindex);
	return r == -ENODEV ? 0 : r;
}

static int undo_bridge(struct cellnet *cn, const struct op *op)
{
	struct netcfg_link_info br;
	int r;

	r = netcfg_link_get_index(cn->host, op->ifindex, &br);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	/* Someone replaced or re-labelled it: no longer ours to delete. */
	if (strcmp(br.kind, "bridge") != 0 || strcmp(br.alias, CELLNET_BRIDGE_ALIAS) != 0)
		return 0;
	r = FAULT("sup.bridge_removed_with_ports") ? 0 : netcfg_bridge_ports(cn->host, op->ifindex);
	if (r != 0)
		return r < 0 ? r : 0; /* other cells joined it: it stays, for them */
	if (FAULT("sup.bridge_left")) /* an empty bridge this run made outlives it */
		return 0;
	r = netcfg_link_del_index(cn->host, op->ifindex);
	return r == -ENODEV ? 0 : r;
}

static int undo_neigh(struct cellnet *cn, const struct op *op)
{
	struct netcfg *nc = op->in_cell ? cn->cell : cn->host;
	struct netcfg_neigh_info n;
	int r;

	r = op->v6 ? netcfg_neigh6_get(nc, op->ifindex, op->ip6, &n)
		   : netcfg_neigh_get(nc, op->ifindex, op->ip, &n);
	if (r == -ENOENT || r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	/* sup.neigh_removed_any: the entry goes whatever it holds now */
	if (FAULT("sup.neigh_removed_any"))
		goto del;
	if (!(n.state & NUD_PERMANENT) || !n.has_mac || memcmp(n.mac, op->mac, 6) != 0)
		return 0; /* replaced since: not ours */
del:
	r = op->v6 ? netcfg_neigh6_del(nc, op->ifindex, op->ip6)
		   : netcfg_neigh_del(nc, op->ifindex, op->ip);
	return r == -ENOENT || r == -ENODEV ? 0 : r;
}

static int undo_op(struct cellnet *cn, const struct op *op)
{
	int r;

	switch (op->kind) {
	case OP_COVERED:
		return 0;
	case OP_LINK_DEL:
		return undo_link(op->in_cell ? cn->cell : cn->host, op);
	case OP_BRIDGE_DEL:
		return undo_bridge(cn, op);
	case OP_LINK_DOWN:
		r = netcfg_link_set_down(op->in_cell ? cn->cell : cn->host, op->ifindex);
		return r == -ENODEV ? 0 : r;
	case OP_NEIGH_DEL:
		return undo_neigh(cn, op);
	}
	return -EINVAL;
}

static int undo_all(struct cellnet *cn)
{
	int first = 0;

	for (unsigned int i = cn->nops; i-- > 0;) {
		int r = undo_op(cn, &cn->ops[i]);

		if (r < 0 && !first)
			first = r;
	}
	cn->nops = 0;
	return first;
}

static bool same_subnet(uint32_t a, uint32_t b, unsigned int prefixlen)
{
	uint32_t mask = prefixlen ? ~0u << (32 - prefixlen) : 0;

	return (a & mask) == (b & mask);
}

static bool valid_ifname(const char *s)
{
	return s && *s && strlen(s) < IFNAMSIZ && !strchr(s, '/') && !strchr(s, ' ');
}

static bool cfg_valid(const struct cellnet_cfg *cfg)
{
	if (!valid_ifname(cfg->host_if) || !valid_ifname(cfg->cell_if))
		return false;
	if (!cfg->cell_ip || !cfg->gateway || cfg->cell_ip == cfg->gateway)
		return false;
	if (cfg->prefixlen < 1 || cfg->prefixlen > 32)
		return false;
	if (cfg->dual && (!cfg->ipv6_on || cfg->prefixlen6 < 1 || cfg->prefixlen6 > 128 ||
			  memcmp(cfg->cell_ip6, cfg->gateway6, 16) == 0))
		return false;
	switch (cfg->mode) {
	case CELLNET_BRIDGE:
		/* No onlink route here: the gateway must be inside the cell's subnet. */
		return valid_ifname(cfg->bridge) && cfg->prefixlen < 32 &&
		       same_subnet(cfg->cell_ip, cfg->gateway, cfg->prefixlen) &&
		       strcmp(cfg->bridge, cfg->host_if) != 0;
	case CELLNET_ROUTED:
		return true;
	}
	return false;
}

/* The existing bridge, or a new one with our alias, fixed MAC, gateway address. */
static int step_bridge(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	struct netcfg_bridge_opts o = { .name = cfg->bridge,
					.alias = CELLNET_BRIDGE_ALIAS,
					.mtu = cfg->mtu };
	struct netcfg_link_info br;
	int r, ifindex;

	r = netcfg_link_get(cn->host, cfg->bridge, &br);
	if (r == -ENODEV) {
		r = netcfg_bridge_add(cn->host, &o, &ifindex);
		if (r == 0) {
			cn->bridge_ifindex = ifindex;
			cn->bridge_created = true;
			cn->bridge_op = (int)cn->nops;
			journal(cn, "bridge", OP_BRIDGE_DEL, false, ifindex);
			r = netcfg_addr_add(cn->host, ifindex, cfg->gateway, cfg->prefixlen);
			if (r == 0)
				covered(cn, "bridge", cn->bridge_op);
			return r;
		}
		if (r != -EEXIST)
			return r;
		/* Another setup created it in between: use theirs. */
		r = netcfg_link_get(cn->host, cfg->bridge, &br);
	}
	if (r < 0)
		return r;
	/* sup.bridge_kind_unchecked: any link of that name is taken for the bridge */
	if (strcmp(br.kind, "bridge") != 0 && !FAULT("sup.bridge_kind_unchecked"))
		return -EEXIST;
	cn->bridge_ifindex = br.ifindex;
	/* sup.bridge_foreign_removed: a bridge found here is taken for one made here */
	if (FAULT("sup.bridge_foreign_removed")) {
		cn->bridge_created = true;
		cn->bridge_op = (int)cn->nops;
		journal(cn, "bridge", OP_BRIDGE_DEL, false, br.ifindex);
	}
	return 0;
}

/* A bridge made here gets gw6 too (IPv4's rule: an existing bridge is left as it is). */
static int step_bridge_addr6(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	int r = netcfg_addr6_add(cn->host, cn->bridge_ifindex, cfg->gateway6, cfg->prefixlen6);

	if (r == 0)
		covered(cn, "bridge_addr6", cn->bridge_op);
	return r;
}

static int step_bridge_up(struct cellnet *cn)
{
	int r = netcfg_link_set_up(cn->host, cn->bridge_ifindex);

	if (r == 0)
		covered(cn, "bridge_up", cn->bridge_op);
	return r;
}

static int step_veth(struct cellnet *cn, int cell_netns_fd, const struct cellnet_cfg *cfg)
{
	struct netcfg_veth_opts o = {
		.name = cfg->host_if,
		.peer = cfg->cell_if,
		.peer_netns_fd = cell_netns_fd,
		.mtu = FAULT("sup.mtu_ignored") ? 1500 : cfg->mtu,
		.alias = cfg->alias,
		.mac = cn->host_mac,
	};
	struct netcfg_link_info cell;
	struct op *op;
	int r;

	/* fe:xx:..: unicast, locally administered, and above any real NIC's MAC. */
	if (getrandom(cn->host_mac + 1, 5, 0) != 5)
		return -errno ?: -EIO;
	cn->host_mac[0] = 0xfe;
	r = netcfg_veth_add_ex(cn->host, &o, &cn->host_ifindex);
	if (r < 0)
		return r;
	cn->veth_op = (int)cn->nops;
	op = journal(cn, "veth", OP_LINK_DEL, false, cn->host_ifindex);
	memcpy(op->name, cfg->host_if, strlen(cfg->host_if) + 1);
	r = netcfg_link_get(cn->cell, cfg->cell_if, &cell);
	if (r < 0)
		return r;
	cn->cell_ifindex = cell.ifindex;
	memcpy(cn->cell_mac, cell.mac, 6);
	return 0;
}

static int step_cell_lo_up(struct cellnet *cn)
{
	struct netcfg_link_info lo;
	int r;

	r = netcfg_link_get(cn->cell, "lo", &lo);
	if (r < 0 || (lo.flags & IFF_UP))
		return r; /* already up: nothing done, nothing to undo */
	r = netcfg_link_set_up(cn->cell, lo.ifindex);
	if (r == 0)
		journal(cn, "cell_lo_up", OP_LINK_DOWN, true, lo.ifindex);
	return r;
}

static int step_cell_neigh(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	const uint8_t *mac = cn->host_mac;
	struct netcfg_link_info br;
	int r;

	if (cfg->mode == CELLNET_BRIDGE) {
		/*
		 * Only a bridge of ours has a MAC known to stay: one whose MAC nobody set takes the
		 * lowest MAC of its ports and changes as cells come and go (and sysfs, which
		 * would tell, shows the namespace it was mounted in): ARP resolves those.
		 */
		if (!cn->bridge_created)
			return 0;
		r = netcfg_link_get_index(cn->host, cn->bridge_ifindex, &br);
		if (r < 0)
			return r;
		mac = br.mac;
	}
	r = netcfg_neigh_add(cn->cell, cn->cell_ifindex, cfg->gateway, mac);
	if (r == 0)
		covered(cn, "cell_neigh", cn->veth_op);
	return r;
}

static int step_host_neigh(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	int ifindex = cfg->mode == CELLNET_BRIDGE ? cn->bridge_ifindex : cn->host_ifindex;
	struct netcfg_neigh_info n;
	struct op *op;
	int r;

	r = netcfg_neigh_add_excl(cn->host, ifindex, cfg->cell_ip, cn->cell_mac);
	if (r == -EEXIST) {
		/* A learnt entry (stale, incomplete) we may replace; a static one is someone's. */
		r = netcfg_neigh_get(cn->host, ifindex, cfg->cell_ip, &n);
		if (r == 0 && (n.state & (NUD_PERMANENT | NUD_NOARP)) &&
		    !FAULT("sup.neigh_replace"))
			return -EEXIST;
		if (r == 0 || r == -ENOENT)
			r = netcfg_neigh_add(cn->host, ifindex, cfg->cell_ip, cn->cell_mac);
	}
	if (r < 0)
		return r;
	if (cfg->mode == CELLNET_ROUTED) {
		covered(cn, "host_neigh", cn->veth_op);
		return 0;
	}
	/* On a bridge that may outlive this cell: undone explicitly. */
	op = journal(cn, "host_neigh", OP_NEIGH_DEL, false, ifindex);
	op->ip = cfg->cell_ip;
	memcpy(op->mac, cn->cell_mac, 6);
	return 0;
}

/* IPv6's cell_neigh: gw6 -> the same MAC as gateway's, on a bridge of ours or the host end. */
static int step_cell_neigh6(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	const uint8_t *mac = cn->host_mac;
	struct netcfg_link_info br;
	int r;

	if (cfg->mode == CELLNET_BRIDGE) {
		if (!cn->bridge_created)
			return 0; /* neighbour discovery finds it, as ARP does for IPv4 */
		r = netcfg_link_get_index(cn->host, cn->bridge_ifindex, &br);
		if (r < 0)
			return r;
		mac = br.mac;
	}
	r = netcfg_neigh6_add(cn->cell, cn->cell_ifindex, cfg->gateway6, mac);
	if (r == 0)
		covered(cn, "cell_neigh6", cn->veth_op);
	return r;
}

/* IPv6's host_neigh: cell_ip6 -> the cell end's MAC; a static entry there is another cell's. */
static int step_host_neigh6(struct cellnet *cn, const struct cellnet_cfg *cfg)
{
	int ifindex = cfg->mode == CELLNET_BRIDGE ? cn->bridge_ifindex : cn->host_ifindex;
	struct netcfg_neigh_info n;
	struct op *op;
	int r;

	r = netcfg_neigh6_add_excl(cn->host, ifindex, cfg->cell_ip6, cn->cell_mac);
	if (r == -EEXIST) {
		r = netcfg_neigh6_get(cn->host, ifindex, cfg->cell_ip6, &n);
		/* sup.neigh6_replace: another cell's permanent entry is replaced */
		if (r == 0 && (n.state & (NUD_PERMANENT | NUD_NOARP)) &&
		    !FAULT("sup.neigh6_replace"))
			return -EEXIST;
		if (r == 0 || r == -ENOENT)
			r = netcfg_neigh6_add(cn->host, ifindex, cfg->cell_ip6, cn->cell_mac);
	}
	if (r < 0)
		return r;
	if (cfg->mode == CELLNET_ROUTED) {
		covered(cn, "host_neigh6", cn->veth_op);
		return 0;
	}
	op = journal(cn, "host_neigh6", OP_NEIGH_DEL, false, ifindex);
	op->v6 = true;
	memcpy(op->ip6, cfg->cell_ip6, 16);
	memcpy(op->mac, cn->cell_mac, 6);
	return 0;
}

/*
 * With both ends up the carrier is on, but the kernel acts on that in its linkwatch work,
 * later: until then host_if's queue drops what it is given and the bridge keeps the port
 * disabled, so the cell's first packets would be lost (seen here: one run in ten, under load).
 * RTM_GETLINK runs a device's pending linkwatch event synchronously (rtnl_getlink calls
 * linkwatch_sync_dev on current kernels; on older ones this is just a query): the host end
 * first, since its port turning forwarding is what turns the bridge's own carrier on.
 */
static int sync_carrier(struct cellnet *cn, bool bridge)
{
	struct netcfg_link_info k;
	int r;

	r = netcfg_link_get_index(cn->host, cn->host_ifindex, &k);
	if (r == 0 && bridge)
		r = netcfg_link_get_index(cn->host, cn->bridge_ifindex, &k);
	return r;
}

/* Write VALUE to /proc/sys/net/FILE of the cell netns; 0 when it has no such file. */
static int cell_sysctl(int cell_netns_fd, const char *file, const char *value)
{
	_cleanup_close_ int home = -1;
	char path[96 + IFNAMSIZ];
	int fd, r;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", file);
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		return -errno;
	r = netcfg_enter_netns(cell_netns_fd);
	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		r = errno == ENOENT ? 0 : -errno;
	else if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		r = -errno ?: -EIO;
	if (fd >= 0)
		close(fd);
	if (netcfg_enter_netns(home) < 0)
		abort(); /* this thread would stay in the cell's namespace: nothing safe remains */
	return r;
}

static int cell_sysctl6(int cell_netns_fd, const char *ifname, const char *name, const char *value)
{
	char file[64 + IFNAMSIZ];

	snprintf(file, sizeof(file), "ipv6/conf/%s/%s", ifname, name);
	return cell_sysctl(cell_netns_fd, file, value);
}

/*
 * network.ping (SUP-NET-015): ping sockets for the workload's GID, both families (the range is
 * net.ipv4's but covers ICMPv6 echo sockets too). It lives in the cell netns: nothing to undo.
 */
static int cell_ping(int cell_netns_fd, uint32_t gid)
{
	char range[32];

	if (FAULT("sup.ping_group_unset"))
		return 0;
	snprintf(range, sizeof(range), "%u %u", gid, gid);
	return cell_sysctl(cell_netns_fd, "ipv4/ping_group_range", range);
}

/*
 * IPv6 off on the cell end before it goes up (SUP-NET-010): no link-local address, so no DAD,
 * MLD or router solicitation, and nothing a workload sends over IPv6 leaves the cell. A v1 flow
 * record cannot carry IPv6 (the classifier only counts it), so IPv6 on would be egress nobody
 * records; a cell whose monitor writes v2 records keeps it (SUP-NET-011). rtnetlink cannot set it
 * (IFLA_INET6_CONF is read-only), so it is the cell netns's sysctl, which /proc/sys/net shows to a
 * thread inside that netns. A kernel without IPv6 (CONFIG_IPV6=n, ipv6.disable=1) has no such file
 * and nothing to turn off. Part of the step cell_up; it lives on the veth, so there is nothing to
 * undo.
 */
static int cell_ipv6_off(int cell_netns_fd, const char *ifname)
{
	if (FAULT("sup.ipv6_left_on"))
		return 0;
	return cell_sysctl6(cell_netns_fd, ifname, "disable_ipv6", "1");
}

/*
 * With IPv6 on (SUP-NET-013): no duplicate address detection on the cell end, so the
 * link-local address the kernel gives it when it goes up is usable at once, as the leased one
 * (IFA_F_NODAD) is: the lease and the static neighbours already make them unique on the link,
 * and a workload released before DAD ended would meet a tentative address (EADDRNOTAVAIL).
 */
static int cell_dad_off(int cell_netns_fd, const char *ifname)
{
	if (FAULT("sup.ipv6_dad_left_on"))
		return 0;
	return cell_sysctl6(cell_netns_fd, ifname, "accept_dad", "0");
}

/* Fault site first, then the step: `r = r ?: STEP("x") ?: do_x();` */
#define STEP(s) (step = (s), FAULT("cellnet." s) ? -EIO : 0)

/* The result of a step that changed one thing living on the veth. */
static int on_veth(struct cellnet *cn, const char *step, int r)
{
	if (r == 0)
		covered(cn, step, cn->veth_op);
	return r;
}

static int run_steps(struct cellnet *cn, int cell_netns_fd, const struct cellnet_cfg *cfg,
		     const char **ret_step)
{
	bool bridge = cfg->mode == CELLNET_BRIDGE, dual = cfg->dual;
	struct netcfg_route host_route = { .dst = cfg->cell_ip, .prefixlen = 32 };
	struct netcfg_route cell_route = { .gateway = cfg->gateway, .onlink = !bridge };
	struct netcfg_route6 host_route6 = { .prefixlen = 128 };
	struct netcfg_route6 cell_route6 = { .onlink = !bridge };
	const char *step = NULL;
	int r = 0;

	memcpy(host_route6.dst, cfg->cell_ip6, 16);
	memcpy(cell_route6.gateway, cfg->gateway6, 16);
	if (bridge) {
		r = STEP("bridge") ?: step_bridge(cn, cfg);
		if (cn->bridge_created && dual)
			r = r ?: STEP("bridge_addr6") ?: step_bridge_addr6(cn, cfg);
		if (cn->bridge_created)
			r = r ?: STEP("bridge_up") ?: step_bridge_up(cn);
	}
	r = r ?: STEP("veth") ?: step_veth(cn, cell_netns_fd, cfg);
	if (r == 0) {
		host_route.oif = host_route6.oif = cn->host_ifindex;
		cell_route.oif = cell_route6.oif = cn->cell_ifindex;
	}
	if (bridge)
		r = r ?: STEP("host_master") ?:
			  on_veth(cn, step,
				  netcfg_link_set_master(cn->host, cn->host_ifindex,
							 cn->bridge_ifindex));
	else
		r = r ?: STEP("host_addr") ?:
			  on_veth(cn, step,
				  netcfg_addr_add(cn->host, cn->host_ifindex, cfg->gateway, 32));
	if (!bridge && dual)
		r = r ?: STEP("host_addr6") ?:
			  on_veth(cn, step,
				  netcfg_addr6_add(cn->host, cn->host_ifindex, cfg->gateway6, 128));
	r = r ?: STEP("host_up") ?: on_veth(cn, step, netcfg_link_set_up(cn->host, cn->host_ifindex));
	if (!bridge && !FAULT("sup.routed_no_host_route"))
		r = r ?: STEP("host_route") ?:
			  on_veth(cn, step, netcfg_route_add(cn->host, &host_route));
	if (!bridge && dual && !FAULT("sup.routed_no_host_route6"))
		r = r ?: STEP("host_route6") ?:
			  on_veth(cn, step, netcfg_route6_add(cn->host, &host_route6));
	r = r ?: STEP("cell_lo_up") ?: step_cell_lo_up(cn);
	r = r ?: STEP("cell_addr") ?:
		  on_veth(cn, step,
			  netcfg_addr_add(cn->cell, cn->cell_ifindex, cfg->cell_ip, cfg->prefixlen));
	if (dual)
		r = r ?: STEP("cell_addr6") ?:
			  on_veth(cn, step,
				  netcfg_addr6_add(cn->cell, cn->cell_ifindex, cfg->cell_ip6,
						   cfg->prefixlen6));
	/* SUP-NET-010, SUP-NET-011: IPv6 is off unless a v2 monitor observes it. */
	if (!cfg->ipv6_on || FAULT("sup.ipv6_off_with_v2"))
		r = r ?: (step = "cell_up", cell_ipv6_off(cell_netns_fd, cfg->cell_if));
	else /* SUP-NET-013: and when it is on, no address of the cell end is ever tentative */
		r = r ?: (step = "cell_up", cell_dad_off(cell_netns_fd, cfg->cell_if));
	if (cfg->ping)
		r = r ?: (step = "cell_up", cell_ping(cell_netns_fd, cfg->ping_gid));
	r = r ?: STEP("cell_up") ?: on_veth(cn, step, netcfg_link_set_up(cn->cell, cn->cell_ifindex));
	r = r ?: sync_carrier(cn, bridge);
	r = r ?: STEP("cell_route") ?: on_veth(cn, step, netcfg_route_add(cn->cell, &cell_route));
	if (dual)
		r = r ?: STEP("cell_route6") ?:
			  on_veth(cn, step, netcfg_route6_add(cn->cell, &cell_route6));
	if (cfg->static_neigh) {
		r = r ?: STEP("cell_neigh") ?: step_cell_neigh(cn, cfg);
		if (dual)
			r = r ?: STEP("cell_neigh6") ?: step_cell_neigh6(cn, cfg);
		r = r ?: STEP("host_neigh") ?: step_host_neigh(cn, cfg);
		if (dual)
			r = r ?: STEP("host_neigh6") ?: step_host_neigh6(cn, cfg);
	}
	*ret_step = step;
	return r;
}

int cellnet_setup(struct netcfg *host, int cell_netns_fd, const struct cellnet_cfg *cfg,
		  struct cellnet **ret, const char **failed_step)
{
	_cleanup_(cellnet_freep) struct cellnet *cn = NULL;
	const char *step = "config";
	int r;

	if (failed_step)
		*failed_step = NULL;
	if (!host || !cfg || !ret || cell_netns_fd < 0 || !cfg_valid(cfg)) {
		r = -EINVAL;
		goto fail;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		r = -ENOMEM;
		goto fail;
	}
	cn->host = host;
	cn->veth_op = cn->bridge_op = -1;
	step = "netlink";
	r = netcfg_open(cell_netns_fd, &cn->cell);
	if (r < 0)
		goto fail;
	r = run_steps(cn, cell_netns_fd, cfg, &step);
	if (r < 0) {
		/* The step's own error is the one to report, not what the rollback met. */
		(void)undo_all(cn);
		goto fail;
	}
	*ret = TAKE_PTR(cn);
	return 0;
fail:
	if (failed_step)
		*failed_step = step;
	return r;
}

int cellnet_teardown(struct cellnet *cn)
{
	return cn ? undo_all(cn) : 0;
}

int cellnet_release(struct cellnet *cn)
{
	int first = 0;

	if (!cn)
		return 0;
	/* A bridge we made can only go once its port is gone: the slow, complete way then. */
	if (cn->bridge_created)
		return undo_all(cn);
	for (unsigned int i = cn->nops; i-- > 0;) {
		const struct op *op = &cn->ops[i];
		int r;

		/* Inside the cell, and the veth with all on it, die with the namespace. */
		if (op->in_cell || op->kind == OP_COVERED ||
		    (op->kind == OP_LINK_DEL && op->ifindex == cn->host_ifindex))
			continue;
		r = undo_op(cn, op);
		if (r && !first)
			first = r;
	}
	cn->nops = 0;
	return first;
}

void cellnet_free(struct cellnet *cn)
{
	if (!cn)
		return;
	netcfg_free(cn->cell);
	free(cn);
}

void cellnet_freep(struct cellnet **cn)
{
	cellnet_free(*cn);
}

int cellnet_cell_ifindex(const struct cellnet *cn)
{
	return cn->cell_ifindex;
}

int cellnet_host_ifindex(const struct cellnet *cn)
{
	return cn->host_ifindex;
}

int cellnet_bridge_ifindex(const struct cellnet *cn)
{
	return cn->bridge_ifindex;
}

bool cellnet_bridge_created(const struct cellnet *cn)
{
	return cn->bridge_created;
}
