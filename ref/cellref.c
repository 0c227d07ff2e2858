// SPDX-License-Identifier: Apache-2.0
/* cellref: the reference implementation's one binary; each component is a subcommand. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].main(argc - 1, argv + 1);
	}
	fprintf(stderr, "cellref: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CELLREF_EXIT_USAGE;
}
