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

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include "util.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

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

int netcfg_link_get(struct netcfg *nc, const char *name, struct netcfg_link_info *ret)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	struct nl_addr *ll;
	int r;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	begin(nc);
	r = rtnl_link_get_kernel(nc->sk, 0, name, &link);
	if (r < 0)
		return finish(nc, r);
	memset(ret, 0, sizeof(*ret));
	ret->ifindex = rtnl_link_get_ifindex(link);
	ret->arptype = rtnl_link_get_arptype(link);
	ret->mtu = rtnl_link_get_mtu(link);
	ret->flags = rtnl_link_get_flags(link);
	ll = rtnl_link_get_addr(link);
	if (ll && nl_addr_get_len(ll) == 6)
		memcpy(ret->mac, nl_addr_get_binary_addr(ll), 6);
	return 0;
}

int netcfg_veth_add(struct netcfg *nc, const char *name, const char *peer_name, int peer_netns_fd)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *veth = NULL;
	_cleanup_(rtnl_link_putp) struct rtnl_link *peer = NULL;

	if (strlen(name) >= IFNAMSIZ || strlen(peer_name) >= IFNAMSIZ)
		return -EINVAL;
	veth = rtnl_link_veth_alloc();
	if (!veth)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(veth, name);
	rtnl_link_set_name(peer, peer_name);
	/* Created in place: moving a link between namespaces afterwards costs far more. */
	if (peer_netns_fd >= 0)
		rtnl_link_set_ns_fd(peer, peer_netns_fd);
	begin(nc);
	return finish(nc, rtnl_link_add(nc->sk, veth, NLM_F_CREATE | NLM_F_EXCL));
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

int netcfg_link_set_up(struct netcfg *nc, int ifindex)
{
	_cleanup_(rtnl_link_putp) struct rtnl_link *orig = rtnl_link_alloc();
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();

	if (!orig || !change)
		return -ENOMEM;
	rtnl_link_set_ifindex(orig, ifindex);
	rtnl_link_set_flags(change, IFF_UP);
	begin(nc);
	return finish(nc, rtnl_link_change(nc->sk, orig, change, 0));
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

int netcfg_neigh_add(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	_cleanup_(rtnl_neigh_putp) struct rtnl_neigh *n = rtnl_neigh_alloc();
	_cleanup_(nl_addr_putp) struct nl_addr *dst = inet_addr(ip);
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
	return finish(nc, rtnl_neigh_add(nc->sk, n, NLM_F_CREATE | NLM_F_REPLACE));
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
