/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cell spec that `cellref run --spec FILE` reads: strict JSON (unknown members are errors at
 * every level, integers must be JSON integers in range), validated as a whole before anything is
 * created, so a bad spec fails before the supervisor touches the kernel. Every error message
 * starts with the field it is about ("network.mtu: ...", "namespaces[2]: ...") or, for JSON
 * syntax errors, with "line L column C: ". Messages never name the file: the caller adds that.
 * The schema fixtures/schemas/cell_spec.schema.json mirrors these rules.
 */
#ifndef CELLREF_CELLSPEC_H
#define CELLREF_CELLSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CELLSPEC_ID_MAX	    64
#define CELLSPEC_DEFAULT_ID 65534u	  /* nobody/nogroup: the identity without "user" */
#define CELLSPEC_MAX_SIZE   (1024 * 1024) /* cellspec_load() refuses bigger files */

enum cellspec_netmode { CELLSPEC_NET_NONE, CELLSPEC_NET_BRIDGE, CELLSPEC_NET_ROUTED };

struct cellspec_idmap {
	uint32_t inside, outside, count;
};

struct cellspec_rlimit {
	int resource;	     /* RLIMIT_* */
	uint64_t soft, hard; /* RLIM_INFINITY for unlimited */
};

/* A bind mount of the spec: read-only unless rw; always nosuid, nodev (SUP-FS-006). */
struct cellspec_mount {
	char *source; /* absolute, exists on the host */
	char *target; /* absolute, no "." or ".." component, not "/" */
	bool rw;
};

#define CELLSPEC_MOUNTS_MAX 64

/* The private writable tmpfs places of a cell and their size limits (tmpfs "size="). */
enum cellspec_place {
	CELLSPEC_TMP,
	CELLSPEC_VAR_TMP,
	CELLSPEC_RUN,
	CELLSPEC_DEV_SHM,
	CELLSPEC_PLACES_
};

struct cellspec {
	char cell_id[CELLSPEC_ID_MAX], run_id[CELLSPEC_ID_MAX]; /* run_id "" when absent */
	unsigned long ns_flags;					/* CLONE_NEWNET|CLONE_NEWNS|... */
	char hostname[65];					/* "" when absent */
	uint32_t uid, gid; /* default CELLSPEC_DEFAULT_ID: unprivileged unless the spec asks */
	struct cellspec_idmap *uid_map, *gid_map; /* NULL and 0 without a user namespace */
	size_t n_uid_map, n_gid_map;
	struct cellspec_rlimit *rlimits; /* in the order given */
	size_t n_rlimits;
	int *cpus; /* NULL and 0 when absent (no affinity is set) */
	size_t n_cpus;
	char *cgroup_path; /* NULL when absent */
	char *memory_max, *pids_max,
		*cpu_max; /* text to write into the cgroup files, NULL when absent */
	enum cellspec_netmode net_mode;
	char bridge[16], ifname[16]; /* bridge "" unless bridge mode; ifname "" without network */
	uint32_t subnet, gateway, address; /* host byte order; address 0 = allocate */
	unsigned int prefixlen, mtu;
	/* network.ipv6 (dual-stack): addresses in network byte order; address6 :: = allocate */
	bool ipv6;
	uint8_t subnet6[16], gateway6[16], address6[16];
	unsigned int prefixlen6;
	bool ping; /* network.ping: the workload's GID may open ICMP/ICMPv6 echo sockets */
	bool dns_enabled;
	uint32_t dns_listen_ip; /* host byte order */
	uint16_t dns_listen_port;
	char *dns_upstream; /* "IPv4:PORT" or "[IPv6]:PORT" as given; NULL when not given */
	char **dns_allow;   /* NULL and 0 when absent (allow all); non-NULL and 0 for [] */
	size_t n_dns_allow;
	unsigned int dns_timeout_ms;
	bool flows_enabled;
	uint32_t flows_ringbuf_bytes;  /* default 65536 */
	uint32_t flows_table_entries;  /* default 8192 */
	bool flows_drop_unconsidered;  /* "unconsidered": "drop"; default "count" */
	uint32_t flows_record_version; /* "recordVersion": 1 (default) or 2 */
	uint64_t cap_keep;	       /* bit n = capability n kept */
	char *rootfs;		       /* NULL: the host's root */
	struct cellspec_mount *mounts; /* in the order given */
	size_t n_mounts;
	uint64_t tmpfs_bytes[CELLSPEC_PLACES_];
	bool no_new_privs, strict;
};

/* 0, or -EINVAL with a message naming the field in err (always NUL-terminated); -ENOMEM. */
int cellspec_parse(const char *text, size_t len, struct cellspec **ret, char *err, size_t errlen);

/*
 * Read and parse the file at path (a path only; "-" is not stdin). Reads at most
 * CELLSPEC_MAX_SIZE bytes: a bigger file is -EFBIG with a message saying so. -errno of open or
 * read with "open: ..." / "read: ..." in err; otherwise as cellspec_parse().
 */
int cellspec_load(const char *path, struct cellspec **ret, char *err, size_t errlen);

void cellspec_free(struct cellspec *s);
void cellspec_freep(struct cellspec **s);

#endif
