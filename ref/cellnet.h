/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cell's network: a veth pair whose cell end is born inside the cell netns, on a bridge or
 * routed, with addresses, a default route and optional static neighbours. Every step is
 * journaled; a failed setup undoes what it did in reverse order before it returns, and
 * teardown undoes the rest. Only what this setup created is ever removed. See cellnet.c for
 * the topology.
 *
 * The host netcfg handle is borrowed: it must outlive the cellnet. A cellnet holds a netlink
 * socket in the cell netns (which keeps that netns alive) until cellnet_free(). Not thread
 * safe: one cellnet and its host handle per thread at a time.
 */
#ifndef CELLREF_CELLNET_H
#define CELLREF_CELLNET_H

#include <stdbool.h>
#include <stdint.h>

struct netcfg;

/* The alias of a bridge cellnet created: `cellref cleanup` may delete it once it has no port. */
#define CELLNET_BRIDGE_ALIAS "cellref-bridge"

enum cellnet_mode { CELLNET_BRIDGE, CELLNET_ROUTED };

struct cellnet_cfg {
	enum cellnet_mode mode;
	const char
		*bridge; /* bridge mode: created (and brought up, with gateway/prefix) if missing */
	const char *host_if; /* host end name, <= 15 chars */
	const char *cell_if; /* cell end name, e.g. "eth0" */
	const char *alias;   /* IFLA_IFALIAS for the host end; may be NULL */
	uint32_t cell_ip, gateway;
	unsigned int prefixlen; /* host byte order */
	unsigned int mtu;	/* 0: kernel default */
	bool static_neigh;	/* install the static neighbour entries */
	bool ipv6_on;		/* leave IPv6 on the cell end: a v2 monitor records it */
	/* Dual-stack (needs ipv6_on): the *6 steps, addresses in network byte order. */
	bool dual;
	uint8_t cell_ip6[16], gateway6[16];
	unsigned int prefixlen6;
	/* ping: the cell netns's net.ipv4.ping_group_range becomes "ping_gid ping_gid" (a GID of
	 * the supervisor's user namespace), so that GID may open ICMP and ICMPv6 echo sockets. */
	bool ping;
	uint32_t ping_gid;
};

struct cellnet;

/*
 * 0, or -errno after rolling back; *failed_step (may be NULL) names the step that failed: one
 * of cellnet_steps, or "config" (-EINVAL: cfg is inconsistent) or "netlink" (no socket in the
 * cell netns). *ret is set only on success.
 *
 * Errors worth knowing: -EEXIST when host_if or cell_if is taken, when cfg->bridge names a
 * link that is not a bridge, when the host route to cell_ip exists, or when the bridge holds
 * a static neighbour entry for cell_ip (or, dual-stack, cell_ip6) already (another cell has the
 * address).
 */
int cellnet_setup(struct netcfg *host, int cell_netns_fd, const struct cellnet_cfg *cfg,
		  struct cellnet **ret, const char **failed_step);
/*
 * Undo everything in reverse order (deleting the host veth also removes the cell end and what
 * sits on either end). A bridge this setup created is deleted only when no port is left on
 * it: other cells may have joined it since. 0 or the first -errno; the journal is consumed
 * either way, and what could not be undone carries our aliases for `cellref cleanup`.
 */
int cellnet_teardown(struct cellnet *cn);
/*
 * For a cell whose network namespace is about to be freed (its processes are gone and the
 * caller closes its last fd): undo only what outlives the namespace (the host's neighbour
 * entry on a shared bridge) and leave the veth pair to the kernel, which deletes it with the
 * namespace, asynchronously; deleting a veth synchronously takes ~15 ms. A bridge this call
 * created makes it a full cellnet_teardown(). 0 or the first -errno.
 */
int cellnet_release(struct cellnet *cn);
/* Frees without undoing (after teardown, or to keep the network). NULL is fine. */
void cellnet_free(struct cellnet *cn);
void cellnet_freep(struct cellnet **cn);
int cellnet_cell_ifindex(const struct cellnet *cn);
int cellnet_host_ifindex(const struct cellnet *cn);
/* Bridge mode: the bridge's ifindex; routed mode: 0. */
int cellnet_bridge_ifindex(const struct cellnet *cn);
bool cellnet_bridge_created(const struct cellnet *cn);

/* Every step name in setup order, NULL-terminated (fault names are "cellnet.<step>"). */
extern const char *const cellnet_steps[];

#endif
