// SPDX-License-Identifier: Apache-2.0
/* cellref: the reference implementation's one binary; each component is a subcommand. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cell.h"
#include "cellref.h"
#include "util.h"

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "decode", cellref_decode_main, "decode framed flow records from stdin to JSON lines" },
	{ "flow-monitor", cellref_flowmon_main,
	  "watch an interface's egress with the eBPF classifier" },
	{ "dns-proxy", cellref_dnsproxy_main,
	  "forward DNS from inside a cell, one event per query" },
	{ "run", cellref_run_main, "run a command as a cell described by a spec file" },
	{ "cleanup", cellref_cleanup_main, "remove what crashed runs left behind" },
};

void cellref_report(const char *cmd, const char *object, int err, const char *fmt, ...)
{
	char extra[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(extra, sizeof(extra), fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "cellref: %s: %s: %s: %s%s%s\n", cmd, object, util_errno_name(err),
		strerror(err < 0 ? -err : err), extra[0] ? ": " : "", extra);
}

/*
 * "cellref COMMAND --args-fd N": a worker the supervisor started; its options are in the sealed
 * memfd N, NUL-separated (SPEC SUP-WRK-002), so they never show in /proc/PID/cmdline.
 */
static int run_with_args_fd(int (*fn)(int, char **), char **argv)
{
	unsigned long long fd;
	char **args, **worker_argv;
	int n, err;

	if (util_parse_u64(argv[3], 3, 1023, &fd) < 0) {
		fprintf(stderr, "cellref: %s: --args-fd '%s': expected a descriptor number\n",
			argv[1], argv[3]);
		return CELLREF_EXIT_USAGE;
	}
	err = cell_args_from_fd((int)fd, &n, &args);
	close((int)fd);
	if (err) {
		cellref_report(argv[1], "--args-fd", err, "cannot read the arguments");
		return CELLREF_EXIT_USAGE;
	}
	worker_argv = calloc((size_t)n + 2, sizeof(*worker_argv));
	if (!worker_argv)
		return CELLREF_EXIT_FAILURE;
	worker_argv[0] = argv[1];
	for (int i = 0; i < n; i++)
		worker_argv[i + 1] = args[i];
	/* getopt may permute worker_argv; args keeps the allocations in their order. */
	err = fn(n + 1, worker_argv);
	for (int i = 0; i < n; i++)
		free(args[i]);
	free(args);
	free(worker_argv);
	return err;
}

static void usage(FILE *f)
{
	fputs("usage: cellref COMMAND [OPTIONS]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
	fputs("\nRun 'cellref COMMAND --help' for a command's options. See SPEC.md for the contract.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CELLREF_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CELLREF_EXIT_OK;
	}
	/* A closed event pipe must turn into EPIPE on write, never kill the process. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			if (argc == 4 && strcmp(argv[2], "--args-fd") == 0)
				return run_with_args_fd(commands[i].main, argv);
			return commands[i].main(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "cellref: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CELLREF_EXIT_USAGE;
}
