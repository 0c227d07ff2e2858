/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network configuration over rtnetlink with libnl-3: links, veth pairs across namespaces,
 * addresses, static neighbours, qdisc queries. No subprocesses.
 *
 * A netcfg handle is bound to one network namespace, the one it was opened for: netlink
 * sockets belong to the namespace of the thread that creates them, so netcfg_open() enters the
 * target briefly on the calling thread only to create the socket.
 *
 * Errors are the kernel's own negative errno (captured from the netlink error message, not
 * libnl's lossy codes); netcfg_last_message() has the kernel's extended ack text, if any.
 */
#ifndef CELLREF_NETCFG_H
#define CELLREF_NETCFG_H

#include <stdbool.h>
#include <stdint.h>

struct netcfg;

struct netcfg_link_info {
	int ifindex;
	unsigned int arptype; /* ARPHRD_* */
	unsigned int mtu;
	unsigned int flags; /* IFF_* */
	uint8_t mac[6];
};

/* netns_fd < 0: the calling thread's current namespace. */
int netcfg_open(int netns_fd, struct netcfg **ret);
void netcfg_free(struct netcfg *nc);
void netcfg_freep(struct netcfg **nc);
const char *netcfg_last_message(const struct netcfg *nc);

int netcfg_link_get(struct netcfg *nc, const char *name, struct netcfg_link_info *ret);
/* A veth pair: name here, peer created directly in peer_netns_fd (< 0: here too). */
int netcfg_veth_add(struct netcfg *nc, const char *name, const char *peer, int peer_netns_fd);
int netcfg_link_del(struct netcfg *nc, const char *name);
int netcfg_link_set_up(struct netcfg *nc, int ifindex);
/* ip and prefix in host byte order. */
int netcfg_addr_add(struct netcfg *nc, int ifindex, uint32_t ip, unsigned int prefixlen);
int netcfg_neigh_add(struct netcfg *nc, int ifindex, uint32_t ip, const uint8_t mac[6]);
/* 1 when a clsact qdisc sits on ifindex, 0 when not, or -errno. */
int netcfg_clsact_present(struct netcfg *nc, int ifindex);

/* Run setns(fd, CLONE_NEWNET) on the calling thread; 0 or -errno (-EINVAL: not a netns). */
int netcfg_enter_netns(int fd);

#endif
