/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cell's filesystem view (SPEC.md 9.6, SUP-FS-*), built by the cell's process between
 * clone and exec in its own mount namespace: system calls only, no allocation.
 *
 *   host root (or the spec's rootfs, a clone bound on itself)   read-only, nosuid, nodev,
 *   |                                                            recursively (every submount)
 *   +-- /dev       tmpfs, read-only: null zero full random urandom tty (clones of the host's
 *   |              nodes), pts (a new devpts), shm (tmpfs, writable), ptmx fd stdin ...
 *   +-- /tmp /var/tmp /run   private tmpfs, writable, nosuid, nodev
 *   +-- /proc      a new proc (PID namespace); sys sysrq-trigger irq bus fs read-only;
 *   |              kcore keys timer_list ... masked by /dev/null, acpi scsi ... by an empty
 *   |              read-only tmpfs
 *   +-- /sys       read-only (a new sysfs under a rootfs); firmware, powercap masked
 *   +-- spec mounts  clones of host paths taken before any of the above, read-only unless rw
 *   pivot_root into the rootfs last, the host's tree detached
 *
 * Every mount target is resolved inside the cell's root (openat2 RESOLVE_IN_ROOT), so a
 * symbolic link of an image cannot send a mount outside it. Only APIs of Linux 6.1 are used,
 * and nothing is cloned out of a detached mount (EINVAL before 6.15): clones are taken of
 * attached mounts, and detached ones are only given attributes (mount_setattr) and attached.
 */
#ifndef CELLREF_CELLFS_H
#define CELLREF_CELLFS_H

#include <stdbool.h>
#include <stddef.h>

#include "cellspec.h"

#define CELLFS_DEVICES 6

struct cellfs_mount {
	const char *source; /* host path */
	const char *target; /* relative to the cell's root: no leading slash */
	const char *parent; /* its parent directory, relative too ("" for the root) */
	const char *base;   /* its last component */
	bool rw;
};

struct cellfs_cfg {
	const char *rootfs;		 /* NULL: the host's root */
	bool new_proc;			 /* a PID namespace: mount its own proc */
	const char *proc_path;		 /* "/proc", or under the rootfs */
	int dev_fd;			 /* cellfs_dev_skeleton() */
	unsigned int fs_uid, fs_gid;	 /* the workload's ids: owner of the targets it creates */
	char uid_text[12], gid_text[12]; /* the same, for tmpfs options (/run is the workload's) */
	char tmpfs_size[CELLSPEC_PLACES_][24];
	const struct cellfs_mount *mounts;
	size_t n_mounts;
};

/* What the steps hand each other; every fd is closed by the cell's close_fds step. */
struct cellfs_state {
	int root_fd;
	int dev_fd[CELLFS_DEVICES];
	int mount_fd[CELLSPEC_MOUNTS_MAX];
};

void cellfs_state_init(struct cellfs_state *st);
/* Step root_readonly, first part: clone the host's devices and the spec's mount sources. */
int cellfs_clone_devices(struct cellfs_state *st);
int cellfs_clone_sources(const struct cellfs_cfg *c, struct cellfs_state *st);
/* Step root_readonly: the root (bound on itself when a rootfs) recursively read-only. */
int cellfs_root(const struct cellfs_cfg *c, struct cellfs_state *st);
/*
 * In the supervisor: the cell's /dev, a detached tmpfs holding the files and directories the
 * device nodes, devpts and /dev/shm go on, and the usual symbolic links. Its fd, or -errno.
 */
int cellfs_dev_skeleton(void);
/* Step dev. */
int cellfs_dev(const struct cellfs_cfg *c, struct cellfs_state *st);
/*
 * Step tmpfs: /tmp, /var/tmp, /run (a place the root lacks is skipped); ids_mapped: the
 * workload's ids exist in the cell (false after a failed map, SUP-NS-008).
 */
int cellfs_tmpfs(const struct cellfs_cfg *c, struct cellfs_state *st, bool ids_mapped);
/* Step proc_mount. */
int cellfs_proc(const struct cellfs_cfg *c);
/* Step masked_paths. */
int cellfs_mask(const struct cellfs_cfg *c, struct cellfs_state *st);
/* Step mounts. */
int cellfs_binds(const struct cellfs_cfg *c, struct cellfs_state *st);
/* Step pivot_root (rootfs only). */
int cellfs_pivot(struct cellfs_state *st);

#endif
