// SPDX-License-Identifier: Apache-2.0
/*
 * What a case must not leave behind (hrun_int.h, SPEC CHK-AUDIT-*): after the case the audit
 * checks the worker's fd table, its children and process groups, its own links, the case's
 * namespaces and the BPF ids made during the case; anything left is an ERROR naming it.
 * hrun_bpf_marks and hrun_bpf_id_present (hrun.h) serve the parent's settle too.
 */
#include <dirent.h>
#include <sys/wait.h>

#include <bpf/bpf.h>

#include "hrun_int.h"

static size_t fd_snapshot(int *fds, size_t max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && n < max)
			fds[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

static bool fd_in(const int *fds, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

static bool ns_inode_alive(ino_t ino)
{
	char want[64], buf[64], path[300], line[1024];
	_cleanup_fclose_ FILE *mi = fopen("/proc/self/mountinfo", "re");
	DIR *d;
	struct dirent *e;
	bool alive = false;

	snprintf(want, sizeof(want), "net:[%lu]", (unsigned long)ino);
	while (mi && fgets(line, sizeof(line), mi))
		if (strstr(line, want))
			return true;
	d = opendir("/proc");
	while (d && (e = readdir(d)) && !alive) {
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
		n = readlink(path, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			alive = strcmp(buf, want) == 0;
		}
	}
	if (d)
		closedir(d);
	return alive;
}

/*
 * Processes that left their group (setsid, setpgid) still come back to the worker, the
 * subreaper, once their parent is gone: any child but the driver is a leftover. Killed and
 * reaped so the next case starts clean.
 */
static void leftover_children(struct run *r)
{
	pid_t self = getpid(), drv = r->w->drv ? hdrv_pid(r->w->drv) : 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], buf[512], comm[64] = "?";
		_cleanup_fclose_ FILE *f = NULL;
		pid_t pid = atoi(e->d_name), ppid = 0;
		char *p;

		if (pid <= 0 || pid == drv)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')))
			continue;
		if (sscanf(p + 2, "%*c %d", &ppid) != 1 || ppid != self)
			continue;
		sscanf(buf, "%*d (%63[^)]", comm);
		if (strchr(p + 2, 'Z') == p + 2) {
			waitpid(pid, NULL, WNOHANG);
			continue;
		}
		run_verdict(r, HREP_ERROR, "leftover: process %d (%s) escaped its process group",
			    pid, comm);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (d)
		closedir(d);
}

static void bpf_walk(int (*next)(__u32, __u32 *), uint32_t *max)
{
	__u32 id = 0;

	*max = 0;
	while (next(id, &id) == 0)
		*max = id;
}

void hrun_bpf_marks(uint32_t *ret_prog, uint32_t *ret_link)
{
	bpf_walk(bpf_prog_get_next_id, ret_prog);
	bpf_walk(bpf_link_get_next_id, ret_link);
}

bool hrun_bpf_id_present(uint32_t id)
{
	/* Ids above 2^31 mark links (see collect_bpf); both come from the kernel's idr. */
	int fd = (id & 0x80000000u) ? bpf_link_get_fd_by_id(id & 0x7fffffffu)
				    : bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return errno != ENOENT;
	close(fd);
	return true;
}

/* Whether pid descends from (or is) the process anc. */
static bool descends_from(pid_t pid, pid_t anc)
{
	for (int depth = 0; pid > 1 && depth < 64; depth++) {
		char path[64], buf[512];
		_cleanup_fclose_ FILE *f = NULL;
		char *p;

		if (pid == anc)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')) ||
		    sscanf(p + 2, "%*c %d", &pid) != 1)
			return false;
	}
	return pid == anc;
}

/*
 * BPF programs and links held open by a process that is not this worker's: another run's, a
 * test's, a daemon's (SPEC CHK-AUDIT-003: runs side by side). A program that appeared during the
 * case is not its leftover when someone else holds it. Ids as in haudit_collect_bpf (links | 2^31).
 */
static size_t foreign_bpf(uint32_t **ret)
{
	pid_t self = getpid();
	uint32_t *ids = NULL;
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300];
		pid_t pid = atoi(e->d_name);
		DIR *fds;
		struct dirent *fe;
		bool mine = false, checked = false;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		while (fds && (fe = readdir(fds))) {
			char lpath[600], target[64], line[128];
			_cleanup_fclose_ FILE *f = NULL;
			ssize_t l;
			unsigned int id;
			bool link;

			snprintf(lpath, sizeof(lpath), "/proc/%d/fd/%s", pid, fe->d_name);
			l = readlink(lpath, target, sizeof(target) - 1);
			if (l <= 0)
				continue;
			target[l] = '\0';
			link = strcmp(target, "anon_inode:bpf_link") == 0;
			if (!link && strcmp(target, "anon_inode:bpf-prog") != 0)
				continue;
			if (!checked) {
				mine = descends_from(pid, self);
				checked = true;
			}
			if (mine)
				break;
			snprintf(lpath, sizeof(lpath), "/proc/%d/fdinfo/%s", pid, fe->d_name);
			f = fopen(lpath, "re");
			while (f && fgets(line, sizeof(line), f)) {
				uint32_t *m;

				if (sscanf(line, link ? "link_id: %u" : "prog_id: %u", &id) != 1)
					continue;
				m = realloc(ids, (n + 1) * sizeof(*m));
				if (m) {
					ids = m;
					ids[n++] = link ? id | 0x80000000u : id;
				}
				break;
			}
		}
		if (fds)
			closedir(fds);
	}
	if (d)
		closedir(d);
	*ret = ids;
	return n;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * Programs made after the mark and still there, unless another process holds them; cgroup
 * programs are the init system's.
 */
static void collect_bpf(struct hrun_result *res, uint32_t prog_mark, uint32_t link_mark)
{
	_cleanup_free_ uint32_t *foreign = NULL;
	size_t n_foreign = foreign_bpf(&foreign);
	__u32 id = prog_mark;

	while (bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int fd;
		uint32_t *n;

		if (id_in(foreign, n_foreign, id))
			continue;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    (info.type == BPF_PROG_TYPE_CGROUP_SKB ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCK ||
		     info.type == BPF_PROG_TYPE_CGROUP_DEVICE ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR ||
		     info.type == BPF_PROG_TYPE_CGROUP_SYSCTL ||
		     info.type == BPF_PROG_TYPE_CGROUP_SOCKOPT)) {
			close(fd);
			continue;
		}
		close(fd);
		n = realloc(res->bpf_ids, (res->n_bpf_ids + 1) * sizeof(*n));
		if (!n)
			return;
		res->bpf_ids = n;
		res->bpf_ids[res->n_bpf_ids++] = id;
	}
	id = link_mark;
	while (bpf_link_get_next_id(id, &id) == 0) {
		uint32_t *n;

		if (id_in(foreign, n_foreign, id | 0x80000000u))
			continue;
		n = realloc(res->bpf_ids, (res->n_bpf_ids + 1) * sizeof(*n));
		if (!n)
			return;
		res->bpf_ids = n;
		res->bpf_ids[res->n_bpf_ids++] = id | 0x80000000u;
	}
}

/* Interface names in the worker's own namespace, "lo eth0 ... ": links a case must not add. */
static char *host_links(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/net/dev", "re");
	char line[512], name[64], *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	if (!m)
		return NULL;
	while (f && fgets(line, sizeof(line), f))
		if (strchr(line, ':') && sscanf(line, " %63[^:]:", name) == 1)
			fprintf(m, " %s ", name);
	fclose(m);
	return out;
}

static void audit_host_links(struct run *r, const char *before)
{
	_cleanup_free_ char *after = host_links();
	char *save = NULL, key[80];

	if (!before || !after)
		return;
	for (char *n = strtok_r(after, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
		snprintf(key, sizeof(key), " %s ", n);
		if (!strstr(before, key))
			run_verdict(r, HREP_ERROR, "leftover: link %s in the harness's namespace",
				    n);
	}
}

int haudit_alloc(struct haudit *a, size_t n_ns)
{
	a->fds_before = calloc(MAX_FDS, sizeof(int));
	a->fds_after = calloc(MAX_FDS, sizeof(int));
	a->inos = calloc(n_ns + 1, sizeof(*a->inos));
	return a->fds_before && a->fds_after && a->inos ? 0 : -ENOMEM;
}

void haudit_begin(struct haudit *a)
{
	a->n_before = fd_snapshot(a->fds_before, MAX_FDS);
	a->links_before = host_links();
	hrun_bpf_marks(&a->prog_mark, &a->link_mark);
}

/* An fd the worker holds now and did not before the case. */
static void audit_fds(struct run *r, struct haudit *a)
{
	size_t n_after = fd_snapshot(a->fds_after, MAX_FDS);

	for (size_t i = 0; i < n_after; i++)
		if (!fd_in(a->fds_before, a->n_before, a->fds_after[i])) {
			char p[64], t[256] = "?";
			ssize_t n;

			snprintf(p, sizeof(p), "/proc/self/fd/%d", a->fds_after[i]);
			n = readlink(p, t, sizeof(t) - 1);
			t[n > 0 ? n : 1] = '\0';
			run_verdict(r, HREP_ERROR, "leftover: harness fd %d (%s)", a->fds_after[i],
				    t);
		}
}

void haudit_end(struct run *r, struct haudit *a, struct hrun_result *ret)
{
	const struct hcase *c = r->c;

	leftover_children(r);
	audit_host_links(r, a->links_before);
	for (size_t i = 0; i < r->n_pgids; i++)
		if (kill(-r->pgids[i], 0) == 0)
			run_verdict(r, HREP_ERROR, "leftover: process group %d still has processes",
				    r->pgids[i]);
	for (size_t i = 0; i < c->topo.n_ns; i++)
		if (a->inos[i] && ns_inode_alive(a->inos[i]))
			run_verdict(r, HREP_ERROR,
				    "leftover: network namespace %s (inode %lu) lives on",
				    c->topo.ns[i], (unsigned long)a->inos[i]);
	audit_fds(r, a);
	collect_bpf(ret, a->prog_mark, a->link_mark);
	/* A closed netns is torn down by a kernel work queue: its filters' programs go a little
	 * later. Alone on the machine, wait for that; with concurrent cases the parent does. */
	for (int i = 0; r->ctx->settle_bpf && ret->n_bpf_ids && i < 1000; i++) {
		usleep(2000);
		ret->n_bpf_ids = 0;
		collect_bpf(ret, a->prog_mark, a->link_mark);
	}
}

void haudit_free(struct haudit *a)
{
	free(a->fds_before);
	free(a->fds_after);
	free(a->links_before);
	free(a->inos);
	memset(a, 0, sizeof(*a));
}
