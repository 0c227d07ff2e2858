// SPDX-License-Identifier: Apache-2.0
/*
 * Decoder throughput: records/s of flowrec_decode alone, of decode + translation + JSON, and
 * of the whole `cellref decode` pipeline on a generated stream, for v1 and for v2 records (half
 * IPv6, half IPv4-mapped). Not a test: numbers only.
 */
#include <endian.h>
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

/* n records of the given version (1 or 2), each framed (u32 length first) when framed. */
static void fill(unsigned char *buf, size_t n, int version, int framed)
{
	size_t size = version == 2 ? FLOWREC_V2_SIZE : FLOWREC_V1_SIZE;
	size_t stride = size + (framed ? 4 : 0);

	for (size_t i = 0; i < n; i++) {
		struct flowrec r = {
			.version = (uint8_t)version,
			.family = (i & 2) ? FLOWREC_FAMILY_IPV6 : FLOWREC_FAMILY_IPV4,
			.src_ip = 0x0A000002,
			.dst_ip = 0x0A000000u + (uint32_t)(i & 0xFFFFFF),
			.src_port = (uint16_t)(i * 7),
			.dst_port = (uint16_t)i,
			.proto = (i & 1) ? 6 : 17,
			.pkt_count = i,
			.byte_count = i * 100,
			.first_seen_ns = 1000000000ULL + i,
			.verdict = (uint8_t)(i % 3),
		};
		unsigned char *p = buf + i * stride;

		if (r.family == FLOWREC_FAMILY_IPV4) {
			flowrec_addr_map_ipv4(r.src_ip, r.src_addr);
			flowrec_addr_map_ipv4(r.dst_ip, r.dst_addr);
		} else {
			/* 2001:db8::2 to 2001:db8::N: a typical zero run to compress. */
			static const uint8_t pfx[4] = { 0x20, 0x01, 0x0d, 0xb8 };

			memcpy(r.src_addr, pfx, 4);
			memcpy(r.dst_addr, pfx, 4);
			r.src_addr[15] = 2;
			r.dst_addr[13] = (uint8_t)(i >> 16);
			r.dst_addr[14] = (uint8_t)(i >> 8);
			r.dst_addr[15] = (uint8_t)i;
		}
		if (framed) {
			uint32_t le = htole32((uint32_t)size);

			memcpy(p, &le, 4);
			p += 4;
		}
		flowrec_encode(&r, p, size);
	}
}

/* The three rows for one record version; returns nonzero on a setup failure. */
static int bench_version(const char *cellref, unsigned char *raw, size_t n, int version,
			 uint64_t *sink)
{
	size_t size = version == 2 ? FLOWREC_V2_SIZE : FLOWREC_V1_SIZE;
	uint64_t t0;
	struct flowrec r;
	struct flowevt e;
	struct jw w;

	fill(raw, n, version, 0);
	t0 = util_now_monotonic_ns();
	for (size_t i = 0; i < n; i++) {
		if (flowrec_decode(raw + i * size, size, &r) == 0)
			*sink += r.pkt_count;
	}
	printf("v%d decode only:         %10.0f records/s\n", version,
	       n / secs(util_now_monotonic_ns() - t0));

	jw_init(&w);
	t0 = util_now_monotonic_ns();
	for (size_t i = 0; i < n; i++) {
		flowrec_decode(raw + i * size, size, &r);
		flowevt_from_record(&r, &e);
		jw_reset(&w);
		jw_obj_open(&w);
		flowevt_write_flow_members(&w, &e);
		jw_obj_close(&w);
		*sink += w.len;
	}
	printf("v%d decode + JSON:       %10.0f records/s\n", version,
	       n / secs(util_now_monotonic_ns() - t0));
	jw_free(&w);

	/* The CLI end to end: a framed file on stdin, output to /dev/null. */
	{
		char path[] = "/tmp/cellcheck-bench-XXXXXX";
		int fd = mkstemp(path), out, status;
		posix_spawn_file_actions_t fa;
		pid_t pid;

		if (fd < 0)
			return 1;
		unlink(path); /* gone from the tree at once; the fd keeps it */
		fill(raw, n, version, 1);
		if (util_write_all(fd, raw, n * (size + 4)) < 0) {
			close(fd);
			return 1;
		}
		lseek(fd, 0, SEEK_SET);
		out = open("/dev/null", O_WRONLY);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fd, 0);
		posix_spawn_file_actions_adddup2(&fa, out, 1);
		t0 = util_now_monotonic_ns();
		if (posix_spawn(&pid, cellref, &fa, NULL,
				(char *[]){ (char *)cellref, "decode", NULL }, environ) != 0) {
			close(fd);
			close(out);
			return 1;
		}
		waitpid(pid, &status, 0);
		printf("v%d cellref decode (CLI):%10.0f records/s (exit %d)\n", version,
		       n / secs(util_now_monotonic_ns() - t0), WEXITSTATUS(status));
		posix_spawn_file_actions_destroy(&fa);
		close(fd);
		close(out);
	}
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 5000000;
	const char *cellref = argc > 1 ? argv[1] : "build/ref/cellref";
	unsigned char *raw = malloc(n * (FLOWREC_V2_SIZE + 4));
	uint64_t sink = 0;
	int err;

	if (!raw)
		return 1;
	err = bench_version(cellref, raw, n, 1, &sink) ?: bench_version(cellref, raw, n, 2, &sink);
	fprintf(stderr, "(checksum %llu)\n", (unsigned long long)sink);
	free(raw);
	return err;
}
