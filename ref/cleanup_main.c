// SPDX-License-Identifier: Apache-2.0
/* cellref cleanup: remove what crashed runs left behind (SPEC.md 9.8). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cellclean.h"
#include "cellref.h"
#include "fault.h"
#include "util.h"

static void usage(FILE *f)
{
	fputs("usage: cellref cleanup [--state-dir DIR]\n"
	      "Removes the leases, host veths, empty bridges and cgroups of cells whose supervisor\n"
	      "is gone, and kills their processes. Touches only what cellref marked as its own;\n"
	      "safe while other cells run; idempotent. Prints one summary line.\n",
	      f);
}

int cellref_cleanup_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *state_dir = NULL;
	_cleanup_(netcfg_freep) struct netcfg *nc = NULL;
	struct cellclean_stats st = { 0 };
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return CELLREF_EXIT_OK;
		default:
			if (FAULT("sup.cleanup_usage_ignored")) /* skip the unknown option */
				break;
			usage(stderr);
			return CELLREF_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return CELLREF_EXIT_USAGE;
	}
	state_dir = state_dir ?: getenv("CELLREF_STATE_DIR") ?: "/run/cellref";
	if (geteuid() != 0 && !FAULT("sup.cleanup_nonroot_runs")) {
		cellref_report("cleanup", "supervisor", -EPERM, "needs root");
		return CELLREF_EXIT_PERM;
	}
	err = netcfg_open(-1, &nc);
	if (err) {
		cellref_report("cleanup", "rtnetlink", err, NULL);
		return CELLREF_EXIT_FAILURE;
	}
	err = cellclean_sweep(nc, state_dir, &st);
	printf("cellref cleanup: %u leases, %u links, %u bridges, %u cgroups, %u processes removed\n",
	       st.leases, st.links, st.bridges, st.cgroups, st.processes);
	if (err) {
		cellref_report("cleanup", state_dir, err, "some leftovers could not be removed");
		return CELLREF_EXIT_FAILURE;
	}
	return CELLREF_EXIT_OK;
}
