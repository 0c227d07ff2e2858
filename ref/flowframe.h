/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Framed record streams (SPEC.md chapter 3): u32 little-endian length, then that many bytes,
 * repeated. flowframe_decode_stream() turns one into `cellref decode` output lines.
 */
#ifndef CELLREF_FLOWFRAME_H
#define CELLREF_FLOWFRAME_H

#include <stdint.h>
#include <stdio.h>

enum flowframe_status {
	FLOWFRAME_OK = 0,	 /* every frame decoded */
	FLOWFRAME_TRUNCATED = 1, /* input ended inside a frame (the last line says where) */
	FLOWFRAME_REJECTED = 3,	 /* input complete, at least one record of the wrong length */
};

/*
 * Read frames from fd until end of input, one JSON line per frame to out. Frames of any length
 * are skipped without being buffered. Returns a flowframe_status, or -errno when reading fd
 * or building output failed (what was decoded before is written).
 */
int flowframe_decode_stream(int fd, FILE *out, uint64_t *ret_frames);

#endif
