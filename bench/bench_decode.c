// SPDX-License-Identifier: Apache-2.0
/*
 * Decoder throughput: records/s of flowrec_decode alone, of decode + translation + JSON, and
 * of the whole `cellref decode` pipeline on a generated stream. Not a test: numbers only.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowevt.h"
#include "flowrec.h"
#include "util.h"

extern char **environ;

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void fill(unsigned char *buf, size_t n, int framed)
{
	size_t stride = framed ? 44 : 40;

	for (size_t i = 0; i < n; i++) {
		struct flowrec r = {
			.src_ip = 0x0A000002,
			.dst_ip = 0x0A000000u + (uint32_t)(i & 0xFFFFFF),
			.src_port = (uint16_t)(i * 7),
			.dst_port = (uint16_t)i,
			.proto = (i & 1) ? 6 : 17,
			.pkt_count = i,
			.first_seen_ns = 1000000000ULL + i,
			.verdict = (uint8_t)(i % 3),
		};
		unsigned char *p = buf + i * stride;

		if (framed) {
			uint32_t le = htole32(40);

			memcpy(p, &le, 4);
			p += 4;
		}
		flowrec_encode(&r, p, FLOWREC_V1_SIZE);
	}
}

int main(int argc, char **argv)
{
	size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 5000000;
	const char *cellref = argc > 1 ? argv[1] : "build/ref/cellref";
	unsigned char *raw = malloc(n * 44);
	uint64_t t0, sink = 0;
	struct flowrec r;
	struct flowevt e;
	struct jw w;

	if (!raw)
		return 1;
	fill(raw, n, 0);
	t0 = util_now_monotonic_ns();
	for (size_t i = 0; i < n; i++) {
		if (flowrec_decode(raw + i * 40, 40, &r) == 0)
			sink += r.pkt_count;
	}
	printf("decode only:            %10.0f records/s\n",
	       n / secs(util_now_monotonic_ns() - t0));

	jw_init(&w);
	t0 = util_now_monotonic_ns();
	for (size_t i = 0; i < n; i++) {
		flowrec_decode(raw + i * 40, 40, &r);
		flowevt_from_record(&r, &e);
		jw_reset(&w);
		jw_obj_open(&w);
		flowevt_write_flow_members(&w, &e);
		jw_obj_close(&w);
		sink += w.len;
	}
	printf("decode + JSON:          %10.0f records/s\n",
	       n / secs(util_now_monotonic_ns() - t0));
	jw_free(&w);

	/* The CLI end to end: a framed file on stdin, output to /dev/null. */
	{
		char path[] = "/tmp/cellcheck-bench-XXXXXX";
		int fd = mkstemp(path), in, out, status;
		posix_spawn_file_actions_t fa;
		pid_t pid;

		if (fd < 0)
			return 1;
		unlink(path); /* gone from the tree at once; the fd keeps it */
		fill(raw, n, 1);
		if (util_write_all(fd, raw, n * 44) < 0)
			return 1;
		in = fd;
		lseek(in, 0, SEEK_SET);
		out = open("/dev/null", O_WRONLY);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in, 0);
		posix_spawn_file_actions_adddup2(&fa, out, 1);
		t0 = util_now_monotonic_ns();
		if (posix_spawn(&pid, cellref, &fa, NULL,
				(char *[]){ (char *)cellref, "decode", NULL }, environ) != 0)
			return 1;
		waitpid(pid, &status, 0);
		printf("cellref decode (CLI):   %10.0f records/s (exit %d)\n",
		       n / secs(util_now_monotonic_ns() - t0), WEXITSTATUS(status));
		close(in);
		close(out);
	}
	fprintf(stderr, "(checksum %llu)\n", (unsigned long long)sink);
	free(raw);
	return 0;
}
