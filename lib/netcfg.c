// SPDX-License-Identifier: Apache-2.0
#include "netcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>

#include "util.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

_Static_assert(NETCFG_IFNAMSIZ == IFNAMSIZ, "netcfg.h's IFNAMSIZ");

struct netcfg {
	struct nl_sock *sk;
	int err;       /* kernel errno of the last failed request, negative */
	char msg[256]; /* its extended ack message */
};

static void nl_sock_freep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
}

static void rtnl_link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}

static void rtnl_addr_putp(struct rtnl_addr **a)
{
	if (*a)
		rtnl_addr_put(*a);
}

static void rtnl_neigh_putp(struct rtnl_neigh **n)
{
	if (*n)
		rtnl_neigh_put(*n);
}

static void nl_addr_putp(struct nl_addr **a)
{
	if (*a)
		nl_addr_put(*a);
}

static void nl_cache_freep(struct nl_cache **c)
{
	if (*c)
		nl_cache_free(*c);
}

static void nlmsg_freep(struct nl_msg **m)
{
	if (*m)
		nlmsg_free(*m);
}

static void rtnl_route_putp(struct rtnl_route **r)
{
	if (*r)
		rtnl_route_put(*r);
}

/* Keep the kernel's errno and extack text; libnl would fold them into its own codes. */
static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct netcfg *nc = arg;
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	const struct nlattr *a;
	int rem;

	(void)who;
	nc->err = e->error;
	nc->msg[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	/* NETLINK_CAP_ACK is on, so the attributes follow the bare header copy. */
	a = (const struct nlattr *)(e + 1);
	rem = (int)nlh->nlmsg_len - NLMSG_HDRLEN - (int)sizeof(*e);
	while (rem >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= rem) {
		if (a->nla_type == NLMSGERR_ATTR_MSG) {
			size_t n = a->nla_len - NLA_HDRLEN;

			if (n >= sizeof(nc->msg))
				n = sizeof(nc->msg) - 1;
			memcpy(nc->msg, (const char *)a + NLA_HDRLEN, n);
			nc->msg[n] = '\0';
		}
		rem -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return NL_STOP;
}

/* For the few libnl failures that never reached the kernel. */
static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_PERM:
		return -EPERM;
	case NLE_INVAL:
	case NLE_MISSING_ATTR:
		return -EINVAL;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_NOACCESS:
		return -EACCES;
	default:
		return -EIO;
	}
}

static void begin(struct netcfg *nc)
{
	nc->err = 0;
	nc->msg[0] = '\0';
}

static int finish(struct netcfg *nc, int nle)
{
	if (nle >= 0)
		return 0;
	return nc->err ? nc->err : nle_to_errno(nle);
}

/*
 * Send a hand-built request and feed each reply to fn, on a copy of the socket's callbacks so
 * the kernel errno is still captured. A doit GET (want_ack) answers with one message and then
 * the ACK that nl_send_auto() asked for; it must be read here or the next request sees it.
 */
static int request(struct netcfg *nc, struct nl_msg *msg, nl_recvmsg_msg_cb_t fn, void *arg,
		   bool want_ack)
{
	struct nl_cb *orig = nl_socket_get_cb(nc->sk);
	struct nl_cb *cb = orig ? nl_cb_clone(orig) : NULL;
	int r;

	nl_cb_put(orig);
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fn, arg);
	begin(nc);
	r = nl_send_auto(nc->sk, msg);
	if (r >= 0)
		r = nl_recvmsgs(nc->sk, cb);
	if (r >= 0 && want_ack)
		r = nl_wait_for_ack(nc->sk);
	nl_cb_put(cb);
	return finish(nc, r);
}

int netcfg_enter_netns(int fd)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return -errno;
	return 0;
}

int netcfg_open(int netns_fd, struct netcfg **ret)
{
	_cleanup_(nl_sock_freep) struct nl_sock *sk = NULL;
	_cleanup_close_ int home = -1;
	struct netcfg *nc;
	int one = 1, err = 0, fd;

	if (netns_fd >= 0) {
		home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (home < 0)
			return -errno;
		err = netcfg_enter_netns(netns_fd);
		if (err)
			return err;
	}
	sk = nl_socket_alloc();
	if (!sk)
		err = -ENOMEM;
	else if (nl_connect(sk, NETLINK_ROUTE) < 0)
		err = -errno ?: -EIO;
	if (home >= 0 && netcfg_enter_netns(home) < 0)
		abort(); /* this thread would stay in the wrong namespace: nothing safe remains */
	if (err)
		return err;

	fd = nl_socket_get_fd(sk);
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, on_error, nc);
	nc->sk = TAKE_PTR(sk);
	*ret = nc;
	return 0;
}

void netcfg_free(struct netcfg *nc)
{
	if (!nc)
		return;
	nl_socket_free(nc->sk);
	free(nc);
}

void netcfg_freep(struct netcfg **nc)
{
	netcfg_free(*nc);
}

const char *netcfg_last_message(const struct netcfg *nc)
{
	return nc->msg;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static void link_info_fill(struct rtnl_link *link, struct netcfg_link_info *ret)
{
	struct nl_addr *ll;

	memset(ret, 0, sizeof(*ret));
	ret->ifindex = rtnl_link_get_ifindex(link);
	ret->arptype = rtnl_link_get_arptype(link);
	ret->mtu = rtnl_link_get_mtu(link);
	ret->flags = rtnl_link_get_flags(link);
	ret->master = rtnl_link_get_master(link);
	ll = rtnl_link_get_addr(link);
	if (ll && nl_addr_get_len(ll) == 6)
		memcpy(ret->mac, nl_addr_get_binary_addr(ll), 6);
	copy_str(ret->name, sizeof(ret->name), rtnl_link_get_name(link));
	copy_str(ret->kind, sizeof(ret->kind), rtnl_link_get_type(link));
	copy_str(ret->alias, sizeof(ret->alias), rtnl_link_get_ifalias(link));
}

int netcfg_link_get(struct netcfg *nc, const char *name, struct netcfg_link_info *ret)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	int r;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	begin(nc);
	r = rtnl_link_get_kernel(nc->sk, 0, name, &link);
	if (r < 0)
		return finish(nc, r);
	link_info_fill(link, ret);
	return 0;
}

int netcfg_link_get_index(struct netcfg *nc, int ifindex, struct netcfg_link_info *ret)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	int r;

	if (ifindex <= 0)
		return -EINVAL;
	begin(nc);
	r = rtnl_link_get_kernel(nc->sk, ifindex, NULL, &link);
	if (r < 0)
		return finish(nc, r);
	link_info_fill(link, ret);
	return 0;
}

int netcfg_link_foreach(struct netcfg *nc,
			int (*fn)(const struct netcfg_link_info *link, void *ctx), void *ctx)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct netcfg_link_info info;
	struct nl_object *o;
	int r;

	begin(nc);
	r = rtnl_link_alloc_cache(nc->sk, AF_UNSPEC, &cache);
	if (r < 0)
		return finish(nc, r);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		link_info_fill((struct rtnl_link *)o, &info);
		r = fn(&info, ctx);
		if (r)
			return r;
	}
	return 0;
}

struct ports_ctx {
	int master;
	int n;
};

static int count_port(struct nl_msg *msg, void *arg)
{
	struct ports_ctx *c = arg;
	struct nlattr *tb[IFLA_MAX + 1];

	if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
		return NL_SKIP;
	/* Checked here too: a kernel that ignores the dump filter sends every link. */
	if (tb[IFLA_MASTER] && (int)nla_get_u32(tb[IFLA_MASTER]) == c->master)
		c->n++;
	return NL_OK;
}

int netcfg_bridge_ports(struct netcfg *nc, int ifindex)
{
	_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct ports_ctx c = { .master = ifindex };
	int r;

	if (!msg)
		return -ENOMEM;
	if (ifindex <= 0)
		return -EINVAL;
	/* The kernel filters a link dump by IFLA_MASTER: the cost does not grow with the host. */
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_u32(msg, IFLA_MASTER, (uint32_t)ifindex) < 0)
		return -ENOMEM;
	r = request(nc, msg, count_port, &c, false);
	return r < 0 ? r : c.n;
}

static int link_change(struct netcfg *nc, int ifindex, struct rtnl_link *change)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *orig = rtnl_link_alloc();

	if (!orig)
		return -ENOMEM;
	if (ifindex <= 0)
		return -EINVAL;
	rtnl_link_set_ifindex(orig, ifindex);
	begin(nc);
	return finish(nc, rtnl_link_change(nc->sk, orig, change, 0));
}

int netcfg_link_set_alias(struct netcfg *nc, int ifindex, const char *alias)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();

	if (!change)
		return -ENOMEM;
	if (strlen(alias) >= NETCFG_ALIASSIZ)
		return -EINVAL;
	rtnl_link_set_ifalias(change, alias);
	return link_change(nc, ifindex, change);
}

/*
 * After a create: find the new link's ifindex and make sure the alias is there (kernels up to
 * at least 6.18 drop IFLA_IFALIAS from RTM_NEWLINK). On failure the link is deleted again.
 */
static int created_finish(struct netcfg *nc, const char *name, const char *alias, int *ret_ifindex)
{
	struct netcfg_link_info info;
	int r;

	r = netcfg_link_get(nc, name, &info);
	if (r < 0) {
		(void)netcfg_link_del(nc, name);
		return r;
	}
	if (alias && strcmp(info.alias, alias) != 0) {
		r = netcfg_link_set_alias(nc, info.ifindex, alias);
		if (r < 0) {
			int saved = nc->err;
			char msg[sizeof(nc->msg)];

			memcpy(msg, nc->msg, sizeof(msg));
			(void)netcfg_link_del_index(nc, info.ifindex);
			/* Report the failure, not the cleanup. */
			nc->err = saved;
			memcpy(nc->msg, msg, sizeof(msg));
			return r;
		}
	}
	if (ret_ifindex)
		*ret_ifindex = info.ifindex;
	return 0;
}

int netcfg_veth_add_ex(struct netcfg *nc, const struct netcfg_veth_opts *o, int *ret_ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *veth = NULL;
	_cleanup_(rtnl_link_putp) struct rtnl_link *peer = NULL;
	_cleanup_(nl_addr_putp) struct nl_addr *ll = NULL;
	int r;

	if (!o->name || !o->peer || strlen(o->name) >= IFNAMSIZ || strlen(o->peer) >= IFNAMSIZ)
		return -EINVAL;
	if (o->alias && strlen(o->alias) >= NETCFG_ALIASSIZ)
		return -EINVAL;
	veth = rtnl_link_veth_alloc();
	if (!veth)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(veth, o->name);
	rtnl_link_set_name(peer, o->peer);
	if (o->mtu) {
		rtnl_link_set_mtu(veth, o->mtu);
		rtnl_link_set_mtu(peer, o->mtu);
	}
	if (o->mac) {
		ll = nl_addr_build(AF_LLC, o->mac, 6);
		if (!ll)
			return -ENOMEM;
		rtnl_link_set_addr(veth, ll);
	}
	/* Sent here as well, for kernels that honour it on create; created_finish() checks. */
	if (o->alias)
		rtnl_link_set_ifalias(veth, o->alias);
	/* Created in place: moving a link between namespaces afterwards costs far more. */
	if (o->peer_netns_fd >= 0)
		rtnl_link_set_ns_fd(peer, o->peer_netns_fd);
	begin(nc);
	r = finish(nc, rtnl_link_add(nc->sk, veth, NLM_F_CREATE | NLM_F_EXCL));
	if (r < 0)
		return r;
	if (!o->alias && !ret_ifindex)
		return 0;
	return created_finish(nc, o->name, o->alias, ret_ifindex);
}

int netcfg_veth_add(struct netcfg *nc, const char *name, const char *peer_name, int peer_netns_fd)
{
	struct netcfg_veth_opts o = {
		.name = name,
		.peer = peer_name,
		.peer_netns_fd = peer_netns_fd,
	};

	return netcfg_veth_add_ex(nc, &o, NULL);
}

int netcfg_bridge_add(struct netcfg *nc, const struct netcfg_bridge_opts *o, int *ret_ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *br = rtnl_link_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *ll = NULL;
	uint8_t mac[6];
	int r;

	if (!br)
		return -ENOMEM;
	if (!o->name || strlen(o->name) >= IFNAMSIZ)
		return -EINVAL;
	if (o->alias && strlen(o->alias) >= NETCFG_ALIASSIZ)
		return -EINVAL;
	if (o->mac) {
		memcpy(mac, o->mac, 6);
	} else {
		if (getrandom(mac, sizeof(mac), 0) != (ssize_t)sizeof(mac))
			return -errno ?: -EIO;
		mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* unicast, locally administered */
	}
	ll = nl_addr_build(AF_LLC, mac, 6);
	if (!ll)
		return -ENOMEM;
	r = rtnl_link_set_type(br, "bridge");
	if (r < 0)
		return nle_to_errno(r);
	rtnl_link_set_name(br, o->name);
	/* An IFLA_ADDRESS on create marks it NET_ADDR_SET: the bridge keeps it. */
	rtnl_link_set_addr(br, ll);
	if (o->mtu)
		rtnl_link_set_mtu(br, o->mtu);
	if (o->alias)
		rtnl_link_set_ifalias(br, o->alias);
	begin(nc);
	r = finish(nc, rtnl_link_add(nc->sk, br, NLM_F_CREATE | NLM_F_EXCL));
	if (r < 0)
		return r;
	if (!o->alias && !ret_ifindex)
		return 0;
	return created_finish(nc, o->name, o->alias, ret_ifindex);
}

int netcfg_link_del(struct netcfg *nc, const char *name)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_alloc();

	if (!link)
		return -ENOMEM;
	rtnl_link_set_name(link, name);
	begin(nc);
	return finish(nc, rtnl_link_delete(nc->sk, link));
}

int netcfg_link_del_index(struct netcfg *nc, int ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_alloc();

	if (!link)
		return -ENOMEM;
	if (ifindex <= 0)
		return -EINVAL;
	rtnl_link_set_ifindex(link, ifindex);
	begin(nc);
	return finish(nc, rtnl_link_delete(nc->sk, link));
}

int netcfg_link_set_up(struct netcfg *nc, int ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();

	if (!change)
		return -ENOMEM;
	rtnl_link_set_flags(change, IFF_UP);
	return link_change(nc, ifindex, change);
}

int netcfg_link_set_down(struct netcfg *nc, int ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();

	if (!change)
		return -ENOMEM;
	rtnl_link_unset_flags(change, IFF_UP);
	return link_change(nc, ifindex, change);
}

int netcfg_link_set_master(struct netcfg *nc, int ifindex, int master_ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();

	if (!change)
		return -ENOMEM;
	if (master_ifindex < 0)
		return -EINVAL;
	rtnl_link_set_master(change, master_ifindex);
	return link_change(nc, ifindex, change);
}

static struct nl_addr *inet_addr(uint32_t ip)
{
	uint32_t be = htonl(ip);

	return nl_addr_build(AF_INET, &be, sizeof(be));
}

int netcfg_addr_add(struct netcfg *nc, int ifindex, uint32_t ip, unsigned int prefixlen)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = inet_addr(ip);
	int r;

	if (!a || !local)
		return -ENOMEM;
	if (prefixlen > 32)
		return -EINVAL;
	nl_addr_set_prefixlen(local, (int)prefixlen);
	rtnl_addr_set_ifindex(a, ifindex);
	r = rtnl_addr_set_local(a, local);
	if (r < 0)
		return nle_to_errno(r);
	begin(nc);
	return finish(nc, rtnl_addr_add(nc->sk, a, 0));
}

int netcfg_addr6_add(struct netcfg *nc, int ifindex, const uint8_t addr[16], unsigned int prefixlen)
{
	_cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *local = nl_addr_build(AF_INET6, addr, 16);
	int r;

	if (!a || !local)
		return -ENOMEM;
	if (prefixlen > 128)
		return -EINVAL;
	nl_addr_set_prefixlen(local, (int)prefixlen);
	rtnl_addr_set_ifindex(a, ifindex);
	/* No duplicate address detection: usable at once, not tentative for a second. */
	rtnl_addr_set_flags(a, IFA_F_NODAD);
	r = rtnl_addr_set_local(a, local);
	if (r < 0)
		return nle_to_errno(r);
	begin(nc);
	return finish(nc, rtnl_addr_add(nc->sk, a, 0));
}

/* Whether any link in nc's namespace holds the address (len bytes, network order) of family. */
static int addr_in_use(struct netcfg *nc, int family, const void *addr, size_t len)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct nl_object *o;
	int r;

	begin(nc);
	r = rtnl_addr_alloc_cache(nc->sk, &cache);
	if (r < 0)
		return finish(nc, r);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct nl_addr *local = rtnl_addr_get_local((struct rtnl_addr *)o);

		if (rtnl_addr_get_family((struct rtnl_addr *)o) == family && local &&
		    nl_addr_get_len(local) == len &&
		    memcmp(nl_addr_get_binary_addr(local), addr, len) == 0)
			return 1;
	}
	return 0;
}

int netcfg_addr_in_use(struct netcfg *nc, uint32_t ip)
{
	uint32_t be = htonl(ip);

	return addr_in_use(nc, AF_INET, &be, 4);
}

/* One unicast route in the main table, family from dst; gw NULL: a link route. */
static int route_add(struct netcfg *nc, struct nl_addr *dst, struct nl_addr *gw, int oif,
		     bool onlink)
{
	_cleanup_(rtnl_route_putp) struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh;
	int e;

	if (!route)
		return -ENOMEM;
	rtnl_route_set_family(route, (uint8_t)nl_addr_get_family(dst));
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, RTPROT_STATIC);
	rtnl_route_set_type(route, RTN_UNICAST);
	e = rtnl_route_set_dst(route, dst);
	if (e < 0)
		return nle_to_errno(e);
	if (onlink)
		rtnl_route_set_flags(route, RTNH_F_ONLINK);
	nh = rtnl_route_nh_alloc();
	if (!nh)
		return -ENOMEM;
	if (oif)
		rtnl_route_nh_set_ifindex(nh, oif);
	if (gw)
		rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
	begin(nc);
	return finish(nc, rtnl_route_add(nc->sk, route, NLM_F_EXCL));
}

int netcfg_addr6_in_use(struct netcfg *nc, const uint8_t addr[16])
{
	return addr_in_use(nc, AF_INET6, addr, 16);
}

int netcfg_route_add(struct netcfg *nc, const struct netcfg_route *r)
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = inet_addr(r->dst);
	_cleanup_(nl_addr_putp) struct nl_addr *gw = r->gateway ? inet_addr(r->gateway) : NULL;

	if (!dst || (r->gateway && !gw))
		return -ENOMEM;
	if (r->prefixlen > 32 || (!r->gateway && !r->oif))
		return -EINVAL;
	nl_addr_set_prefixlen(dst, (int)r->prefixlen);
	return route_add(nc, dst, gw, r->oif, r->onlink);
}

static bool addr6_zero(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

int netcfg_route6_add(struct netcfg *nc, const struct netcfg_route6 *r)
{
	bool has_gw = !addr6_zero(r->gateway);
	_cleanup_(nl_addr_putp) struct nl_addr *dst = nl_addr_build(AF_INET6, r->dst, 16);
	_cleanup_(nl_addr_putp) struct nl_addr *gw =
		has_gw ? nl_addr_build(AF_INET6, r->gateway, 16) : NULL;

	if (!dst || (has_gw && !gw))
		return -ENOMEM;
	if (r->prefixlen > 128 || (!has_gw && !r->oif))
		return -EINVAL;
	nl_addr_set_prefixlen(dst, (int)r->prefixlen);
	return route_add(nc, dst, gw, r->oif, r->onlink);
}

static int neigh_add(struct netcfg *nc, int ifindex, struct nl_addr *dst, const uint8_t mac[6],
		     int flags)
{
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *ll = nl_addr_build(AF_UNSPEC, mac, 6);
	int r;

	if (!n || !dst || !ll)
		return -ENOMEM;
	rtnl_neigh_set_ifindex(n, ifindex);
	r = rtnl_neigh_set_dst(n, dst);
	if (r < 0)
		return nle_to_errno(r);
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	begin(nc);
	return finish(nc, rtnl_neigh_add(nc->sk, n, NLM_F_CREATE | flags));
}

int netcfg_neigh_add(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = inet_addr(ip);

	return neigh_add(nc, ifindex, dst, mac, NLM_F_REPLACE);
}

int netcfg_neigh_add_excl(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = inet_addr(ip);

	return neigh_add(nc, ifindex, dst, mac, NLM_F_EXCL);
}

int netcfg_neigh6_add(struct netcfg *nc, int ifindex, const uint8_t ip[16], const uint8_t mac[6])
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = nl_addr_build(AF_INET6, ip, 16);

	return neigh_add(nc, ifindex, dst, mac, NLM_F_REPLACE);
}

int netcfg_neigh6_add_excl(struct netcfg *nc, int ifindex, const uint8_t ip[16],
			   const uint8_t mac[6])
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = nl_addr_build(AF_INET6, ip, 16);

	return neigh_add(nc, ifindex, dst, mac, NLM_F_EXCL);
}

static int neigh_parse(struct nl_msg *msg, void *arg)
{
	struct netcfg_neigh_info *ret = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[NDA_MAX + 1];
	const struct ndmsg *ndm;

	if (h->nlmsg_type != RTM_NEWNEIGH || nlmsg_parse(h, sizeof(*ndm), tb, NDA_MAX, NULL) < 0)
		return NL_SKIP;
	ndm = nlmsg_data(h);
	ret->state = ndm->ndm_state;
	if (tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6) {
		ret->has_mac = true;
		memcpy(ret->mac, nla_data(tb[NDA_LLADDR]), 6);
	}
	return NL_OK;
}

static int neigh_get(struct netcfg *nc, int ifindex, int family, const void *ip, size_t len,
		     struct netcfg_neigh_info *ret)
{
	_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETNEIGH, 0);
	struct ndmsg ndm = { .ndm_family = (uint8_t)family, .ndm_ifindex = ifindex };

	if (!msg)
		return -ENOMEM;
	if (ifindex <= 0)
		return -EINVAL;
	/* One entry by key (kernel >= 5.0): no dump of the whole table. */
	if (nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, NDA_DST, (int)len, ip) < 0)
		return -ENOMEM;
	memset(ret, 0, sizeof(*ret));
	return request(nc, msg, neigh_parse, ret, true);
}

int netcfg_neigh_get(struct netcfg *nc, int ifindex, uint32_t ip, struct netcfg_neigh_info *ret)
{
	uint32_t be = htonl(ip);

	return neigh_get(nc, ifindex, AF_INET, &be, sizeof(be), ret);
}

int netcfg_neigh6_get(struct netcfg *nc, int ifindex, const uint8_t ip[16],
		      struct netcfg_neigh_info *ret)
{
	return neigh_get(nc, ifindex, AF_INET6, ip, 16, ret);
}

static int neigh_del(struct netcfg *nc, int ifindex, struct nl_addr *dst)
{
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	int r;

	if (!n || !dst)
		return -ENOMEM;
	rtnl_neigh_set_ifindex(n, ifindex);
	r = rtnl_neigh_set_dst(n, dst);
	if (r < 0)
		return nle_to_errno(r);
	begin(nc);
	return finish(nc, rtnl_neigh_delete(nc->sk, n, 0));
}

int netcfg_neigh_del(struct netcfg *nc, int ifindex, uint32_t ip)
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = inet_addr(ip);

	return neigh_del(nc, ifindex, dst);
}

int netcfg_neigh6_del(struct netcfg *nc, int ifindex, const uint8_t ip[16])
{
	_cleanup_(nl_addr_putp) struct nl_addr *dst = nl_addr_build(AF_INET6, ip, 16);

	return neigh_del(nc, ifindex, dst);
}

int netcfg_clsact_present(struct netcfg *nc, int ifindex)
{
	_cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
	struct nl_object *o;
	int r;

	begin(nc);
	r = rtnl_qdisc_alloc_cache(nc->sk, &cache);
	if (r < 0)
		return finish(nc, r);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_tc *tc = (struct rtnl_tc *)o;
		const char *kind = rtnl_tc_get_kind(tc);

		if (rtnl_tc_get_ifindex(tc) == ifindex && kind && strcmp(kind, "clsact") == 0)
			return 1;
	}
	return 0;
}
