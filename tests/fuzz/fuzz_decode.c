// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: any byte stream through the framed-record decoder (SPEC.md chapter 3).
 * Checks beyond "no crash": the status is one of the documented ones, every output line is one
 * JSON object, and there are exactly as many lines as frames. The first 16 input bytes also go
 * through the v2 address text (SPEC.md FLOW-DEC-014/015): the text must parse back to the same
 * bytes, with lowercase digits only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "flowframe.h"
#include "flowrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr_text(const uint8_t *data, size_t size)
{
	char text[FLOWREC_ADDR_TEXT_MAX];
	uint8_t addr[16], back[16];
	uint8_t family = size > 16 ? data[16] : 6;

	if (size < 16)
		return;
	memcpy(addr, data, sizeof(addr));
	flowrec_addr_text(family, addr, text);
	if (strlen(text) >= sizeof(text) || strpbrk(text, "ABCDEF"))
		abort();
	if (family == 4 && flowrec_addr_is_mapped(addr)) {
		if (inet_pton(AF_INET, text, back) != 1 || memcmp(back, addr + 12, 4) != 0)
			abort();
	} else if (inet_pton(AF_INET6, text, back) != 1 || memcmp(back, addr, 16) != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in = memfd_create("in", MFD_CLOEXEC);
	char *text = NULL, *line, *save = NULL;
	size_t text_len = 0;
	uint64_t frames = 0, lines = 0;
	FILE *out = open_memstream(&text, &text_len);
	int r;

	if (in < 0 || !out)
		abort();
	check_addr_text(data, size);
	if (size && write(in, data, size) != (ssize_t)size)
		abort();
	lseek(in, 0, SEEK_SET);
	r = flowframe_decode_stream(in, out, &frames);
	fclose(out);
	close(in);
	if (r != FLOWFRAME_OK && r != FLOWFRAME_TRUNCATED && r != FLOWFRAME_REJECTED)
		abort();
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j =
			json_loads(line, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);

		if (!json_is_object(j))
			abort();
		json_decref(j);
		lines++;
	}
	/* One line per complete frame, plus the truncation line. */
	if (lines != frames + (r == FLOWFRAME_TRUNCATED))
		abort();
	free(text);
	return 0;
}
