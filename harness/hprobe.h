/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What this machine offers the suite: kernel release, SHA-256 of the kernel config, and each
 * kernel feature present or absent with the evidence (the file found, the syscall and its
 * errno). Probes that create kernel objects do so in a forked child inside a fresh network
 * namespace, so nothing outlives the probe.
 */
#ifndef CELLCHECK_HPROBE_H
#define CELLCHECK_HPROBE_H

#include <stdbool.h>

enum hprobe_feature {
	HPROBE_BTF,
	HPROBE_RINGBUF,
	HPROBE_CLSACT,
	HPROBE_VETH,
	HPROBE_BRIDGE,
	HPROBE_USERNS,
	HPROBE_CGROUP2,
	_HPROBE_FEATURE_MAX
};

enum hprobe_state { HPROBE_ABSENT, HPROBE_PRESENT, HPROBE_UNKNOWN };

/* "btf", "ringbuf", "clsact", "veth", "bridge", "userns", "cgroup2", NULL */
extern const char *const hprobe_feature_names[];
extern const char *const hprobe_state_names[]; /* "absent", "present", "unknown" */

struct hprobe_result {
	enum hprobe_state state;
	char evidence[256];
};

struct hprobe {
	char release[128];
	char config_sha256[65];	 /* lowercase hex, or "unavailable" */
	char config_source[256]; /* the file hashed, or why none was */
	bool root;		 /* effective UID 0 */
	struct hprobe_result feat[_HPROBE_FEATURE_MAX];
};

/* Kernel release and config hash only (cheap, no kernel objects); every report records them. */
int hprobe_kernel(struct hprobe *p);

/* hprobe_kernel() plus every feature. */
int hprobe_run(struct hprobe *p);

int hprobe_feature_from_name(const char *name); /* enum value or -EINVAL */

#endif
