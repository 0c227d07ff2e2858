/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Removing what dead cells left on the host (SPEC.md 9.8): `cellref cleanup`, and every
 * `cellref run` before it takes its lease. Only what carries our marks is touched: a lease file
 * whose owner is gone, links whose alias is "cellref:CELL:RUN" for a run that holds no live lease,
 * bridges aliased "cellref-bridge" that no port and no live lease uses, and the cgroup a dead
 * run's lease names. Safe while other cells run; idempotent.
 */
#ifndef CELLREF_CELLCLEAN_H
#define CELLREF_CELLCLEAN_H

#include "lease.h"
#include "netcfg.h"

#define CELLCLEAN_LINK_ALIAS_PREFIX "cellref:"
#define CELLCLEAN_BRIDGE_ALIAS	    "cellref-bridge"
#define CELLCLEAN_CGROUP_ROOT	    "/sys/fs/cgroup"

struct cellclean_stats {
	unsigned int leases, links, bridges, cgroups, processes;
	int first_err; /* first failure met (the sweep goes on), 0 when none */
};

/* Everything a dead run's lease names: its processes, host veth, cgroup. */
int cellclean_lease(struct netcfg *nc, const struct lease *l, struct cellclean_stats *st);
/* Reap stale leases, then orphaned links and empty bridges. 0 or the first -errno. */
int cellclean_sweep(struct netcfg *nc, const char *state_dir, struct cellclean_stats *st);

#endif
