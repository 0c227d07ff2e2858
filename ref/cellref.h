/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommand entry points of the cellref binary and the exit codes SPEC.md Appendix A names. */
#ifndef CELLREF_CELLREF_H
#define CELLREF_CELLREF_H

enum cellref_exit {
	CELLREF_EXIT_OK = 0,
	CELLREF_EXIT_FAILURE = 1,
	CELLREF_EXIT_USAGE = 2,
	CELLREF_EXIT_REJECTED = 3, /* decode: a record was rejected, the input was complete */
	CELLREF_EXIT_PERM = 10,
	CELLREF_EXIT_NO_IFACE = 11,
	CELLREF_EXIT_NO_NETNS = 12,
	CELLREF_EXIT_VERIFIER = 13,
	CELLREF_EXIT_NO_FEATURE = 14,
	CELLREF_EXIT_BIND = 15,	      /* cannot bind the listen address */
	CELLREF_EXIT_LEASE = 16,      /* run: the address is leased or in use, or none is free */
	CELLREF_EXIT_CELL_SETUP = 17, /* run: namespaces or an in-cell setup step failed */
	CELLREF_EXIT_NETWORK = 18,    /* run: the cell's network could not be built */
	CELLREF_EXIT_WORKER = 19,     /* run: the DNS proxy or flow monitor did not start */
	CELLREF_EXIT_STRICT = 20,     /* run: a degradation in strict mode */
};

/*
 * The one stderr line every runtime error gets (SPEC FLOW-MON-023):
 * "cellref: COMMAND: OBJECT: ERRNAME: strerror[: detail]".
 */
__attribute__((format(printf, 4, 5))) void cellref_report(const char *cmd, const char *object,
							  int err, const char *fmt, ...);

int cellref_decode_main(int argc, char **argv);
int cellref_flowmon_main(int argc, char **argv);
int cellref_dnsproxy_main(int argc, char **argv);
int cellref_run_main(int argc, char **argv);
int cellref_cleanup_main(int argc, char **argv);

#endif
