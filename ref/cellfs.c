// SPDX-License-Identifier: Apache-2.0
/* The cell's filesystem view (cellfs.h). Runs in the cell's process: system calls only. */
#include "cellfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault.h"
#include "util.h"

static const char *const devices[CELLFS_DEVICES] = { "null",   "zero",	  "full",
						     "random", "urandom", "tty" };

/* runc's defaults, the set users know: read-only in /proc, masked in /proc and /sys. */
static const char *const proc_readonly[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
static const char *const proc_mask_files[] = { "kcore",	      "keys",	     "key-users",
					       "timer_list",  "sched_debug", "latency_stats",
					       "timer_stats", "kpageflags",  "kpagecount",
					       "kpagecgroup" };
static const char *const proc_mask_dirs[] = { "acpi", "asound", "scsi", "driver" };
static const char *const sys_mask_dirs[] = { "firmware", "devices/virtual/powercap",
					     "kernel/security", "kernel/debug" };

void cellfs_state_init(struct cellfs_state *st)
{
	st->root_fd = -1;
	for (int i = 0; i < CELLFS_DEVICES; i++)
		st->dev_fd[i] = -1;
	for (int i = 0; i < CELLSPEC_MOUNTS_MAX; i++)
		st->mount_fd[i] = -1;
}

static int sys_openat2(int dfd, const char *path, uint64_t flags)
{
	/* Inside the cell's root whatever the path or an image's symbolic links say. */
	struct open_how how = { .flags = flags | O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };

	return (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
}

/* An O_PATH fd on rel (no leading slash) inside the root, or -errno. */
static int at_root(int root_fd, const char *rel, uint64_t flags)
{
	int fd = sys_openat2(root_fd, rel, flags);

	return fd < 0 ? -errno : fd;
}

/* Attach the detached mount mnt on the O_PATH fd tgt; closes both. */
static int attach(int mnt, int tgt)
{
	int err = move_mount(mnt, "", tgt, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);

	err = err < 0 ? -errno : 0;
	close(mnt);
	close(tgt);
	return err;
}

/*
 * A new detached mount of type with string options (key, value pairs; NULL-terminated) and
 * mount attributes; the mount fd or -errno. fsopen/fsconfig/fsmount are 5.2, and tmpfs, proc,
 * sysfs and devpts (through the legacy adapter) take them on every supported kernel.
 */
static int fs_new(const char *type, const char *const *opts, unsigned int attrs)
{
	int fs = fsopen(type, FSOPEN_CLOEXEC), mnt;

	if (fs < 0)
		return -errno;
	for (; opts && opts[0]; opts += 2) {
		if (fsconfig(fs, FSCONFIG_SET_STRING, opts[0], opts[1], 0) < 0)
			goto fail;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto fail;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	if (mnt < 0)
		goto fail;
	close(fs);
	return mnt;
fail:;
	int err = -errno;

	close(fs);
	return err;
}

/* fs_new() and attach it on rel inside dir_fd's tree; -ENOENT when rel is absent. */
static int fs_mount_at(int dir_fd, const char *rel, const char *type, const char *const *opts,
		       unsigned int attrs)
{
	int tgt = at_root(dir_fd, rel, O_DIRECTORY), mnt;

	if (tgt < 0)
		return tgt;
	mnt = fs_new(type, opts, attrs);
	if (mnt < 0) {
		close(tgt);
		return mnt;
	}
	return attach(mnt, tgt);
}

int cellfs_clone_devices(struct cellfs_state *st)
{
	char path[32] = "/dev/";

	/*
	 * Clones of the host's nodes, taken before the root gets nodev (a clone keeps the flags
	 * of its source mount) and before /dev is covered. A node the host lacks is left out.
	 */
	for (int i = 0; i < CELLFS_DEVICES; i++) {
		size_t n = strlen(devices[i]);

		memcpy(path + 5, devices[i], n + 1);
		st->dev_fd[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (st->dev_fd[i] < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

int cellfs_clone_sources(const struct cellfs_cfg *c, struct cellfs_state *st)
{
	/* The host's view of each source, before anything covers it (/tmp, /dev...). */
	for (size_t i = 0; i < c->n_mounts; i++) {
		st->mount_fd[i] = open_tree(AT_FDCWD, c->mounts[i].source,
					    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (st->mount_fd[i] < 0)
			return -errno;
	}
	return 0;
}

int cellfs_root(const struct cellfs_cfg *c, struct cellfs_state *st)
{
	struct mount_attr ro = { .attr_set =
					 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };

	if (c->rootfs) {
		/*
		 * The image, with its submounts, bound on itself: a mount point pivot_root takes,
		 * and a tree of this namespace (attached) that later mounts can go into.
		 */
		int tree = open_tree(AT_FDCWD, c->rootfs,
				     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

		if (tree < 0)
			return -errno;
		if (move_mount(tree, "", AT_FDCWD, c->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			int err = -errno;

			close(tree);
			return err;
		}
		st->root_fd = tree; /* now the root of the attached clone */
	} else {
		st->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (st->root_fd < 0)
			return -errno;
	}
	/*
	 * One call for the whole tree (5.12): these are this namespace's own copies of the
	 * host's mounts, so the host's stay as they are. Setting flags is allowed even on the
	 * mounts a user namespace locks; only clearing them is not.
	 */
	if (FAULT("sup.root_writable"))
		return 0;
	if (mount_setattr(st->root_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0)
		return -errno;
	return 0;
}

int cellfs_dev_skeleton(void)
{
	const char *const dev_opts[] = { "mode", "0755", "size", "65536", NULL };
	static const char *const links[][2] = { { "pts/ptmx", "ptmx" },
						{ "/proc/self/fd", "fd" },
						{ "/proc/self/fd/0", "stdin" },
						{ "/proc/self/fd/1", "stdout" },
						{ "/proc/self/fd/2", "stderr" } };
	int dev = fs_new("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC), err = 0;

	/*
	 * Made here, by the supervisor: in a user namespace the cell's process cannot create
	 * files before its identity step (its host ids are not mapped there: EOVERFLOW), and it
	 * does not need to. The cell only attaches this and mounts on what it holds.
	 */
	if (dev < 0)
		return dev;
	for (int i = 0; i < CELLFS_DEVICES && !err; i++) {
		int f = openat(dev, devices[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

		if (f < 0)
			err = -errno;
		else
			close(f);
	}
	for (size_t i = 0; i < ARRAY_SIZE(links) && !err; i++) {
		if (symlinkat(links[i][0], dev, links[i][1]) < 0)
			err = -errno;
	}
	if (!err && (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 0755) < 0))
		err = -errno;
	if (err) {
		close(dev);
		return err;
	}
	return dev;
}

int cellfs_dev(const struct cellfs_cfg *c, struct cellfs_state *st)
{
	const char *const pts_opts[] = { "ptmxmode", "0666", "mode", "0620", NULL };
	const char *shm_opts[] = { "mode", "1777", "size", c->tmpfs_size[CELLSPEC_DEV_SHM], NULL };
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	int tgt, dev = c->dev_fd, err;

	/* sup.dev_host: the host's /dev stays (every device node of the host) */
	if (FAULT("sup.dev_host"))
		return 0;
	tgt = at_root(st->root_fd, "dev", O_DIRECTORY);
	if (tgt < 0)
		return tgt;
	err = move_mount(dev, "", tgt, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	close(tgt);
	if (err < 0)
		return -errno;
	/* Attached now: dev names the new /dev, and what follows goes into this namespace. */
	for (int i = 0; i < CELLFS_DEVICES; i++) {
		if (st->dev_fd[i] < 0)
			continue;
		if (move_mount(st->dev_fd[i], "", dev, devices[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return -errno;
		close(st->dev_fd[i]);
		st->dev_fd[i] = -1;
	}
	/* sup.tmpfs_size_ignored: the kernel's default size (half of RAM) */
	if (FAULT("sup.tmpfs_size_ignored"))
		shm_opts[2] = NULL;
	/* A devpts instance of its own: the host's terminals are not in it. */
	err = fs_mount_at(dev, "pts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
	if (!err)
		err = fs_mount_at(dev, "shm", "tmpfs", shm_opts,
				  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	/* sup.dev_writable: the cell's /dev stays writable */
	if (FAULT("sup.dev_writable"))
		return err;
	/* Nothing more is created in /dev: read-only, its submounts (pts, shm) as they are. */
	if (!err && mount_setattr(dev, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		err = -errno;
	return err;
}

int cellfs_tmpfs(const struct cellfs_cfg *c, struct cellfs_state *st, bool ids_mapped)
{
	static const struct {
		const char *rel, *mode;
		enum cellspec_place place;
		bool owned; /* the workload's own, as /run/user/UID would be */
	} places[] = { { "tmp", "1777", CELLSPEC_TMP, false },
		       { "var/tmp", "1777", CELLSPEC_VAR_TMP, false },
		       { "run", "0755", CELLSPEC_RUN, true } };

	for (size_t i = 0; i < ARRAY_SIZE(places); i++) {
		/* Unmapped ids (a failed map) cannot own anything: root's /run then. */
		bool owned = places[i].owned && ids_mapped;
		const char *opts[] = { "mode",
				       places[i].mode,
				       "size",
				       c->tmpfs_size[places[i].place],
				       owned ? "uid" : NULL,
				       c->uid_text,
				       "gid",
				       c->gid_text,
				       NULL };
		int err;

		/* sup.run_owned_by_root: /run stays root's, not the workload's */
		if (FAULT("sup.run_owned_by_root"))
			opts[4] = NULL;
		/* sup.tmp_shared: the cell's /tmp is the host's */
		if (places[i].place == CELLSPEC_TMP && FAULT("sup.tmp_shared"))
			continue;
		/* sup.tmpfs_size_ignored: the kernel's default size (half of RAM) everywhere */
		if (FAULT("sup.tmpfs_size_ignored")) {
			opts[2] = "mode";
			opts[3] = places[i].mode;
		}
		err = fs_mount_at(st->root_fd, places[i].rel, "tmpfs", opts,
				  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
		/* An image without the place has nothing there to protect. */
		if (err && err != -ENOENT && err != -ENOTDIR)
			return err;
	}
	return 0;
}

int cellfs_proc(const struct cellfs_cfg *c)
{
	/*
	 * mount(2), one call where fsopen/fsconfig/fsmount/move_mount take four; the path is the
	 * cell's /proc (under the rootfs, which is attached by now).
	 */
	if (mount("proc", c->proc_path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	return 0;
}

/* Cover each of names (relative to dir_fd) with a fresh clone of the attached file null_fd. */
static int mask_files(int dir_fd, int null_fd, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int tgt = openat(dir_fd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC), m;

		if (tgt < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		m = open_tree(null_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (m < 0) {
			close(tgt);
			return -errno;
		}
		int err = attach(m, tgt);

		if (err)
			return err;
	}
	return 0;
}

/* Cover each directory of names with an empty read-only tmpfs. */
static int mask_dirs(int dir_fd, const char *const *names, size_t n)
{
	const char *const opts[] = { "mode", "0555", "size", "4096", NULL };

	for (size_t i = 0; i < n; i++) {
		int err = fs_mount_at(dir_fd, names[i], "tmpfs", opts,
				      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					      MOUNT_ATTR_NOEXEC);

		if (err && err != -ENOENT && err != -ENOTDIR)
			return err;
	}
	return 0;
}

int cellfs_mask(const struct cellfs_cfg *c, struct cellfs_state *st)
{
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					     MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
	int proc = -1, sys = -1, null = -1, err = 0;

	/* sup.proc_unmasked: /proc and /sys as the cell's root gives them */
	if (FAULT("sup.proc_unmasked"))
		return 0;
	proc = at_root(st->root_fd, "proc", O_DIRECTORY);
	if (proc >= 0) {
		/* A new proc is writable: its sysctls and triggers get read-only clones. */
		for (size_t i = 0; i < ARRAY_SIZE(proc_readonly) && !err; i++) {
			int m = open_tree(proc, proc_readonly[i],
					  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

			if (m < 0) {
				if (errno != ENOENT)
					err = -errno;
				continue;
			}
			/* Attributes on a detached clone are fine on 6.1; cloning out of it not. */
			if (mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) <
				    0 ||
			    move_mount(m, "", proc, proc_readonly[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
				err = -errno;
			close(m);
		}
		if (!err) {
			null = at_root(st->root_fd, "dev/null", 0);
			err = null < 0 ? null : 0;
		}
		if (!err)
			err = mask_files(proc, null, proc_mask_files, ARRAY_SIZE(proc_mask_files));
		if (!err)
			err = mask_dirs(proc, proc_mask_dirs, ARRAY_SIZE(proc_mask_dirs));
	} else if (proc != -ENOENT) {
		err = proc;
	}
	if (err)
		goto out;
	sys = at_root(st->root_fd, "sys", O_DIRECTORY);
	if (sys < 0) {
		err = sys == -ENOENT ? 0 : sys;
		goto out;
	}
	/*
	 * An image has no sysfs of its own: a new one, read-only, shows the cell's network
	 * namespace. The host's root already has one, made read-only with the rest.
	 */
	if (c->rootfs) {
		err = fs_mount_at(st->root_fd, "sys", "sysfs", NULL,
				  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					  MOUNT_ATTR_NOEXEC);
		close(sys);
		sys = at_root(st->root_fd, "sys", O_DIRECTORY);
		if (err || sys < 0) {
			err = err ?: sys;
			goto out;
		}
	}
	err = mask_dirs(sys, sys_mask_dirs, ARRAY_SIZE(sys_mask_dirs));
out:
	if (proc >= 0)
		close(proc);
	if (sys >= 0)
		close(sys);
	if (null >= 0)
		close(null);
	return err;
}

/* Fault only (sup.bind_rw): the read-only flag taken off again. */
static int bind_writable(int mount_fd)
{
	struct mount_attr a = { .attr_clr = MOUNT_ATTR_RDONLY };

	if (mount_setattr(mount_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

int cellfs_binds(const struct cellfs_cfg *c, struct cellfs_state *st)
{
	for (size_t i = 0; i < c->n_mounts; i++) {
		const struct cellfs_mount *m = &c->mounts[i];
		struct mount_attr a = {
			.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
				    (m->rw ? 0 : MOUNT_ATTR_RDONLY),
			.attr_clr = m->rw ? MOUNT_ATTR_RDONLY : 0,
		};
		struct stat sst;
		int tgt;

		if (mount_setattr(st->mount_fd[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &a,
				  sizeof(a)) < 0 ||
		    fstat(st->mount_fd[i], &sst) < 0)
			return -errno;
		/* sup.bind_rw: every bind mount writable, whatever the spec says */
		if (FAULT("sup.bind_rw")) {
			int err = bind_writable(st->mount_fd[i]);

			if (err)
				return err;
		}
		tgt = at_root(st->root_fd, m->target, 0);
		/* sup.bind_target_not_created: a missing target fails the step */
		if (tgt == -ENOENT && FAULT("sup.bind_target_not_created"))
			return tgt;
		if (tgt == -ENOENT) {
			/* A missing target is made where the cell can write (its private places).
			 */
			int dir = at_root(st->root_fd, m->parent[0] ? m->parent : ".", O_DIRECTORY);
			int r;

			if (dir < 0)
				return dir;
			/*
			 * As the workload: in a user namespace the process's own host ids are
			 * not mapped, and what it makes is the workload's anyway.
			 */
			syscall(SYS_setfsgid, c->fs_gid);
			syscall(SYS_setfsuid, c->fs_uid);
			if (S_ISDIR(sst.st_mode))
				r = mkdirat(dir, m->base, 0755);
			else
				r = openat(dir, m->base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
					   0644);
			r = r < 0 ? -errno : (S_ISDIR(sst.st_mode) ? 0 : (close(r), 0));
			syscall(SYS_setfsuid, 0);
			syscall(SYS_setfsgid, 0);
			close(dir);
			if (r)
				return r;
			tgt = at_root(st->root_fd, m->target, 0);
		}
		if (tgt < 0)
			return tgt;
		int err = attach(st->mount_fd[i], tgt);

		st->mount_fd[i] = -1;
		if (err)
			return err;
	}
	return 0;
}

int cellfs_pivot(struct cellfs_state *st)
{
	/* sup.rootfs_ignored: the workload stays in the host's root */
	if (FAULT("sup.rootfs_ignored"))
		return 0;
	/*
	 * pivot_root(".", ".") stacks the old root on the new one; detaching "." then drops the
	 * whole host tree from the namespace (it is not locked: pivot_root moves the lock).
	 */
	if (fchdir(st->root_fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return -errno;
	return 0;
}
