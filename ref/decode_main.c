// SPDX-License-Identifier: Apache-2.0
/*
 * cellref decode: framed flow records on stdin (u32 little-endian length, then that many bytes),
 * one JSON line per frame on stdout (SPEC.md chapter 3). Frames of any length are skipped
 * without buffering them, so a hostile length cannot make us allocate.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cellref.h"
#include "fault.h"
#include "flowframe.h"
#include "util.h"

static void usage(FILE *f)
{
	fputs("usage: cellref decode < FRAMES\n"
	      "Reads u32 little-endian length-prefixed flow records on stdin and writes one JSON\n"
	      "object per record on stdout. Exit: 0 all decoded, 1 truncated input or read error,\n"
	      "2 usage, 3 a record was rejected.\n",
	      f);
}

int cellref_decode_main(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, {} };
	uint64_t frames = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return CELLREF_EXIT_OK;
		}
		usage(stderr);
		return CELLREF_EXIT_USAGE;
	}
	/* decode.usage_ignored: the negative control of FLOW-FRM-011. */
	if (optind != argc && !FAULT("decode.usage_ignored")) {
		fprintf(stderr, "cellref: decode: unexpected argument '%s'\n", argv[optind]);
		return CELLREF_EXIT_USAGE;
	}

	r = flowframe_decode_stream(STDIN_FILENO, stdout, &frames);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "cellref: decode: stdout: %s: %s\n", util_errno_name(errno),
			strerror(errno));
		return CELLREF_EXIT_FAILURE;
	}
	if (r < 0) {
		fprintf(stderr, "cellref: decode: stdin, frame %llu: %s: %s\n",
			(unsigned long long)frames, util_errno_name(r), strerror(-r));
		return CELLREF_EXIT_FAILURE;
	}
	/* decode.truncated_exit0: the negative control of FLOW-FRM-010 for truncated input. */
	if (r == FLOWFRAME_TRUNCATED && FAULT("decode.truncated_exit0"))
		return CELLREF_EXIT_OK;
	/* flowframe's statuses are the exit codes SPEC.md Appendix A gives decode. */
	return r;
}
