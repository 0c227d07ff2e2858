// SPDX-License-Identifier: Apache-2.0
/*
 * What a killed harness could leave, and `cellcheck cleanup`, which removes it. Namespaces are
 * held by fds and every process the runner starts has PR_SET_PDEATHSIG, so normally a SIGKILL
 * leaves nothing; the state file is the evidence for the rest: one per running harness in
 * /run/cellcheck/ (or $TMPDIR when /run is not writable), naming its temp directory and every
 * process it started with the process's start time, so a recycled pid is never killed.
 *
 *   harness PID START RUNDIR
 *   proc PID START
 *
 * A live run holds an exclusive flock(2) on its temp directory for as long as it exists, and
 * cleanup removes a directory only when it can take that lock itself: a pid says nothing across
 * pid namespaces (a harness in a container or a VM), a lock does. The state file appears whole
 * (written aside, then renamed), so cleanup never reads one half-written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hrun.h"
#include "util.h"

static const char *state_dir(void)
{
	static char buf[512];

	if (mkdir("/run/cellcheck", 0755) == 0 || errno == EEXIST)
		if (access("/run/cellcheck", W_OK) == 0)
			return "/run/cellcheck";
	snprintf(buf, sizeof(buf), "%s/cellcheck-state-%u", getenv("TMPDIR") ?: "/tmp",
		 (unsigned)geteuid());
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return NULL;
	return buf;
}

unsigned long long hrun_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	_cleanup_fclose_ FILE *f = NULL;
	unsigned long long st = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, sizeof(buf), f))
		return 0;
	/* The command name may hold spaces and parentheses: count fields after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		st = strtoull(p + 1, NULL, 10);
	return st;
}

static void append(const char *path, const char *line)
{
	_cleanup_close_ int fd = -1;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0)
		(void)util_write_all(fd, line, strlen(line));
}

int hrun_state_open(const char *run_dir, char **ret_path, int *ret_lock)
{
	const char *dir = state_dir();
	_cleanup_free_ char *tmp = NULL;
	char line[4200];
	int fd, r;

	*ret_path = NULL;
	*ret_lock = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*ret_lock < 0 || flock(*ret_lock, LOCK_EX | LOCK_NB) < 0)
		return -errno;
	if (!dir)
		return -EACCES;
	/* The start time too: two harnesses in two pid namespaces may share a pid. */
	if (asprintf(ret_path, "%s/%d.%llu.state", dir, getpid(), hrun_proc_start_time(getpid())) <
		    0 ||
	    asprintf(&tmp, "%s.new", *ret_path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	snprintf(line, sizeof(line), "harness %d %llu %s\n", getpid(),
		 hrun_proc_start_time(getpid()), run_dir);
	r = util_write_all(fd, line, strlen(line));
	close(fd);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	if (rename(tmp, *ret_path) == 0)
		return 0;
fail:
	r = -errno;
	unlink(tmp);
	free(*ret_path);
	*ret_path = NULL;
	return r;
}

void hrun_state_note_proc(const char *state_path, pid_t pid)
{
	char line[96];

	snprintf(line, sizeof(line), "proc %d %llu\n", pid, hrun_proc_start_time(pid));
	append(state_path, line);
}

void hrun_state_close(const char *state_path, int lock)
{
	if (state_path)
		unlink(state_path);
	if (lock >= 0)
		close(lock);
}

/*
 * Whether a run still uses dir: its lock is held. A process of a killed harness may hold it a
 * moment longer (PR_SET_PDEATHSIG is asynchronous), so wait up to two seconds for it.
 */
static bool dir_in_use(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return false;
	for (int i = 0; i < 200; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return false;
		if (errno != EWOULDBLOCK)
			return false;
		usleep(10000);
	}
	return true;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int hrun_rmtree(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static bool alive(pid_t pid, unsigned long long start)
{
	return pid > 0 && start && hrun_proc_start_time(pid) == start;
}

/* One stale state file: kill what of it still runs, remove its directory and itself. */
static void clean_state(const char *path, size_t *n_procs, size_t *n_dirs, bool *busy)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[4200], run_dir[4096] = "";
	int pid;
	unsigned long long start;

	*busy = false;
	if (!f)
		return;
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "harness %d %llu %4095[^\n]", &pid, &start, run_dir) != 3) {
		printf("state %s: unreadable, removed\n", path);
		unlink(path);
		return;
	}
	if (alive(pid, start)) {
		printf("state %s: harness %d still running, left alone\n", path, pid);
		*busy = true;
		return;
	}
	printf("state %s: harness %d is gone\n", path, pid);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "proc %d %llu", &pid, &start) != 2)
			continue;
		if (alive(pid, start)) {
			printf("  process %d: still running, killed (and its process group)\n",
			       pid);
			if (getpgid(pid) == pid)
				kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			(*n_procs)++;
		}
	}
	if (run_dir[0] && access(run_dir, F_OK) == 0 && dir_in_use(run_dir)) {
		printf("  temp dir %s: locked by a live run, left alone\n", run_dir);
	} else if (run_dir[0] && access(run_dir, F_OK) == 0) {
		printf("  temp dir %s: removed\n", run_dir);
		hrun_rmtree(run_dir);
		(*n_dirs)++;
	}
	unlink(path);
}

int hrun_cmd_cleanup(int argc, char **argv)
{
	const char *dir = state_dir();
	const char *tmp = getenv("TMPDIR") ?: "/tmp";
	size_t n_procs = 0, n_dirs = 0, n_states = 0;
	DIR *d;
	struct dirent *e;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "cellcheck: cleanup takes no operands\n");
		return 2;
	}
	d = dir ? opendir(dir) : NULL;
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		size_t l = strlen(e->d_name);
		bool busy;

		if (l < 7 || strcmp(e->d_name + l - 6, ".state") != 0 ||
		    asprintf(&p, "%s/%s", dir, e->d_name) < 0)
			continue;
		n_states++;
		clean_state(p, &n_procs, &n_dirs, &busy);
	}
	if (d)
		closedir(d);
	/* Run directories whose harness died before writing its state file. */
	d = opendir(tmp);
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		int pid;

		if (sscanf(e->d_name, "cellcheck-run.%d.", &pid) != 1 || kill(pid, 0) == 0 ||
		    asprintf(&p, "%s/%s", tmp, e->d_name) < 0)
			continue;
		if (dir_in_use(p)) {
			printf("temp dir %s: locked by a live run (another pid namespace?), left "
			       "alone\n",
			       p);
			continue;
		}
		printf("temp dir %s: harness %d is gone, removed\n", p, pid);
		hrun_rmtree(p);
		n_dirs++;
	}
	if (d)
		closedir(d);
	/* Namespaces are fd-held: nothing network-wise can outlive a harness; say so. */
	printf("cleanup: %zu state files, %zu processes killed, %zu temp dirs removed; network "
	       "namespaces are held only by fds, so none can be left\n",
	       n_states, n_procs, n_dirs);
	return 0;
}
