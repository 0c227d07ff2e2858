/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network configuration over rtnetlink with libnl-3: links, veth pairs across namespaces,
 * bridges, addresses, routes, static neighbours, qdisc queries. No subprocesses.
 *
 * A netcfg handle is bound to one network namespace, the one it was opened for: netlink
 * sockets belong to the namespace of the thread that creates them, so netcfg_open() enters the
 * target briefly on the calling thread only to create the socket.
 *
 * Errors are the kernel's own negative errno (captured from the netlink error message, not
 * libnl's lossy codes); netcfg_last_message() has the kernel's extended ack text, if any.
 */
#ifndef CELLLIB_NETCFG_H
#define CELLLIB_NETCFG_H

#include <stdbool.h>
#include <stdint.h>

struct netcfg;

#define NETCFG_IFNAMSIZ 16  /* IFNAMSIZ, without pulling <net/if.h> into every user */
#define NETCFG_ALIASSIZ 256 /* IFALIASZ */

struct netcfg_link_info {
	int ifindex;
	unsigned int arptype; /* ARPHRD_* */
	unsigned int mtu;
	unsigned int flags; /* IFF_* */
	uint8_t mac[6];
	int master; /* ifindex of the bridge (or other master); 0: none */
	char name[NETCFG_IFNAMSIZ];
	char kind[NETCFG_IFNAMSIZ];  /* IFLA_INFO_KIND: "veth", "bridge", ...; "" for none */
	char alias[NETCFG_ALIASSIZ]; /* IFLA_IFALIAS; "" for none */
};

/* A veth pair in one RTM_NEWLINK: name here, peer created directly in its namespace. */
struct netcfg_veth_opts {
	const char *name;
	const char *peer;
	int peer_netns_fd;  /* < 0: here too */
	unsigned int mtu;   /* both ends; 0: kernel default */
	const char *alias;  /* IFLA_IFALIAS of name; NULL: none */
	const uint8_t *mac; /* 6 bytes for name; NULL: the kernel picks a random one */
};

struct netcfg_bridge_opts {
	const char *name;
	const char *alias;  /* NULL: none */
	unsigned int mtu;   /* 0: kernel default */
	const uint8_t *mac; /* NULL: a random locally administered one, see netcfg_bridge_add() */
};

/* IPv4 route in the main table; addresses in host byte order. */
struct netcfg_route {
	uint32_t dst;
	unsigned int prefixlen; /* 0 with dst 0: the default route */
	uint32_t gateway;	/* 0: a link route (scope link) */
	int oif;		/* output ifindex; 0: let the kernel pick from gateway */
	bool onlink;		/* RTNH_F_ONLINK: gateway reachable on oif without a subnet */
};

/* IPv6 route in the main table; addresses in network byte order. */
struct netcfg_route6 {
	uint8_t dst[16];
	unsigned int prefixlen; /* 0 with dst :: : the default route */
	uint8_t gateway[16];	/* :: : a link route */
	int oif;
	bool onlink;
};

struct netcfg_neigh_info {
	unsigned int state; /* NUD_* */
	bool has_mac;
	uint8_t mac[6];
};

/* netns_fd < 0: the calling thread's current namespace. */
int netcfg_open(int netns_fd, struct netcfg **ret);
void netcfg_free(struct netcfg *nc);
void netcfg_freep(struct netcfg **nc);
const char *netcfg_last_message(const struct netcfg *nc);

int netcfg_link_get(struct netcfg *nc, const char *name, struct netcfg_link_info *ret);
int netcfg_link_get_index(struct netcfg *nc, int ifindex, struct netcfg_link_info *ret);
/*
 * Every link of the namespace in kernel order. fn returns 0 to go on; anything else stops the
 * walk and is returned. 0, fn's value, or -errno.
 */
int netcfg_link_foreach(struct netcfg *nc,
			int (*fn)(const struct netcfg_link_info *link, void *ctx), void *ctx);
/* Number of links enslaved to ifindex (ports of a bridge), or -errno. */
int netcfg_bridge_ports(struct netcfg *nc, int ifindex);

/* A veth pair: name here, peer created directly in peer_netns_fd (< 0: here too). */
int netcfg_veth_add(struct netcfg *nc, const char *name, const char *peer, int peer_netns_fd);
/*
 * The same with MTU on both ends and a MAC for name, all in the creating request. The kernel
 * ignores IFLA_IFALIAS when it creates a link, so the alias follows in an RTM_SETLINK right
 * after; if that fails the pair is deleted again. *ret_ifindex (may be NULL): name's ifindex.
 */
int netcfg_veth_add_ex(struct netcfg *nc, const struct netcfg_veth_opts *o, int *ret_ifindex);
/*
 * A bridge, down, without addresses. It gets a fixed MAC (o->mac or a random locally
 * administered one): a bridge whose MAC the kernel assigned takes the lowest port MAC instead,
 * and changes it as ports come and go, which would break static neighbours pointing at it.
 * The alias is set like netcfg_veth_add_ex's. *ret_ifindex may be NULL.
 */
int netcfg_bridge_add(struct netcfg *nc, const struct netcfg_bridge_opts *o, int *ret_ifindex);
int netcfg_link_del(struct netcfg *nc, const char *name);
int netcfg_link_del_index(struct netcfg *nc, int ifindex);
int netcfg_link_set_up(struct netcfg *nc, int ifindex);
int netcfg_link_set_down(struct netcfg *nc, int ifindex);
/* master_ifindex 0: release from its master. */
int netcfg_link_set_master(struct netcfg *nc, int ifindex, int master_ifindex);
int netcfg_link_set_alias(struct netcfg *nc, int ifindex, const char *alias);

/* ip and prefix in host byte order. */
int netcfg_addr_add(struct netcfg *nc, int ifindex, uint32_t ip, unsigned int prefixlen);
/* An IPv6 address (network order) without duplicate address detection (IFA_F_NODAD). */
int netcfg_addr6_add(struct netcfg *nc, int ifindex, const uint8_t addr[16],
		     unsigned int prefixlen);
/* 1 when ip is configured on any interface of this namespace, 0 when not, or -errno. */
int netcfg_addr_in_use(struct netcfg *nc, uint32_t ip);
/* The same for an IPv6 address (network order). */
int netcfg_addr6_in_use(struct netcfg *nc, const uint8_t addr[16]);

/* -EEXIST when the main table routes the same prefix (same metric) already. */
int netcfg_route_add(struct netcfg *nc, const struct netcfg_route *r);

/* The same for IPv6; -EEXIST likewise. */
int netcfg_route6_add(struct netcfg *nc, const struct netcfg_route6 *r);

/* A PERMANENT entry; replaces whatever entry ip has on ifindex. */
int netcfg_neigh_add(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6]);
/* A PERMANENT entry only if ip has none on ifindex, in any state; else -EEXIST. */
int netcfg_neigh_add_excl(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6]);
/* The entry of ip on ifindex; -ENOENT when there is none. */
int netcfg_neigh_get(struct netcfg *nc, int ifindex, uint32_t ip, struct netcfg_neigh_info *ret);
int netcfg_neigh_del(struct netcfg *nc, int ifindex, uint32_t ip);
/* The same four for an IPv6 neighbour (ip in network byte order). */
int netcfg_neigh6_add(struct netcfg *nc, int ifindex, const uint8_t ip[16], const uint8_t mac[6]);
int netcfg_neigh6_add_excl(struct netcfg *nc, int ifindex, const uint8_t ip[16],
			   const uint8_t mac[6]);
int netcfg_neigh6_get(struct netcfg *nc, int ifindex, const uint8_t ip[16],
		      struct netcfg_neigh_info *ret);
int netcfg_neigh6_del(struct netcfg *nc, int ifindex, const uint8_t ip[16]);
/* 1 when a clsact qdisc sits on ifindex, 0 when not, or -errno. */
int netcfg_clsact_present(struct netcfg *nc, int ifindex);

/* Run setns(fd, CLONE_NEWNET) on the calling thread; 0 or -errno (-EINVAL: not a netns). */
int netcfg_enter_netns(int fd);

#endif
