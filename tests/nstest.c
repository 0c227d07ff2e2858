// SPDX-License-Identifier: Apache-2.0
#include "nstest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netcfg.h"
#include "util.h"

int nstest_enter_fresh_netns(void)
{
	return unshare(CLONE_NEWNET) < 0 ? -errno : 0;
}

static void *netns_thread(void *arg)
{
	int *fd = arg;

	/* Only this thread moves; it ends right after, and the fd keeps the namespace. */
	if (unshare(CLONE_NEWNET) < 0) {
		*fd = -errno;
		return NULL;
	}
	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		*fd = -errno;
	return NULL;
}

int nstest_netns_new(void)
{
	pthread_t t;
	int fd = -EIO;

	if (pthread_create(&t, NULL, netns_thread, &fd) != 0)
		return -EAGAIN;
	pthread_join(t, NULL);
	return fd;
}

/* Run fn inside netns_fd on the calling thread, then come home. */
static int in_netns(int netns_fd, int (*fn)(void *), void *arg)
{
	int home, r, saved;

	if (netns_fd < 0)
		return fn(arg);
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		return -errno;
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		r = -errno;
		close(home);
		return r;
	}
	r = fn(arg);
	saved = errno;
	if (setns(home, CLONE_NEWNET) < 0)
		abort();
	close(home);
	errno = saved;
	return r;
}

struct sock_args {
	int domain, type, protocol;
};

static int make_socket(void *p)
{
	struct sock_args *a = p;
	int fd = socket(a->domain, a->type | SOCK_CLOEXEC, a->protocol);

	return fd < 0 ? -errno : fd;
}

int nstest_socket_in(int netns_fd, int domain, int type, int protocol)
{
	struct sock_args a = { domain, type, protocol };

	return in_netns(netns_fd, make_socket, &a);
}

struct sysctl_args {
	const char *key, *value;
};

static int write_sysctl(void *p)
{
	struct sysctl_args *a = p;
	char path[256];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/sys/%s", a->key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, a->value, strlen(a->value)) < 0)
		r = -errno;
	close(fd);
	return r;
}

int nstest_sysctl(int netns_fd, const char *key, const char *value)
{
	struct sysctl_args a = { key, value };

	return in_netns(netns_fd, write_sysctl, &a);
}

int nstest_memfd(const char *name, char *ret_path, size_t len)
{
	int fd = memfd_create(name, 0); /* inheritable: children open it by path */

	if (fd < 0)
		return -errno;
	snprintf(ret_path, len, "/proc/%d/fd/%d", getpid(), fd);
	return fd;
}

char *nstest_slurp(int fd, size_t *ret_len)
{
	struct stat st;
	char *buf;

	if (fstat(fd, &st) < 0)
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return NULL;
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[st.st_size] = '\0';
	if (ret_len)
		*ret_len = (size_t)st.st_size;
	return buf;
}

pid_t nstest_spawn(char *const argv[], const int *keep, int nkeep)
{
	return nstest_spawn_in(-1, argv, keep, nkeep);
}

pid_t nstest_spawn_in(int netns_fd, char *const argv[], const int *keep, int nkeep)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);
	if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
		_exit(125);
	for (int i = 0; i < nkeep; i++) {
		int fl = fcntl(keep[i], F_GETFD);

		if (fl >= 0)
			fcntl(keep[i], F_SETFD, fl & ~FD_CLOEXEC);
	}
	execv(argv[0], argv);
	_exit(127);
}

int nstest_wait(pid_t pid, int timeout_ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status;

	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -errno;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

int nstest_wait_stopped(pid_t pid, int timeout_ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status;

	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG | WUNTRACED);

		if (r == pid && WIFSTOPPED(status))
			return 0;
		if (r == pid || r < 0)
			return r < 0 ? -errno : -ECHILD; /* it ended instead */
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

int nstest_wait_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	r = (int)read(fd, &c, 1);
	if (r == 1)
		return 0;
	return r == 0 ? -EPIPE : -errno;
}

int nstest_validate_events(const char *path)
{
	const char *src = getenv("CELLCHECK_SRCDIR");
	char script[4096];
	int status, saved;
	pid_t pid;

	if (!src || access("/usr/bin/python3", X_OK) != 0)
		return -ENOENT;
	snprintf(script, sizeof(script), "%s/tests/validate_events.py", src);
	/* Its findings are diagnostics, not TAP: send them to stderr. */
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	pid = nstest_spawn((char *const[]){ "/usr/bin/python3", script, (char *)path, NULL }, NULL,
			   0);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	if (pid < 0)
		return -1;
	status = nstest_wait(pid, 60000);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define STEP(t, what, expr)                 \
	({                                  \
		int _r = (expr);            \
		if (_r < 0)                 \
			(t)->step = (what); \
		_r;                         \
	})

int nstest_topo_up(struct nstest_topo *t)
{
	_cleanup_(netcfg_freep) struct netcfg *here = NULL;
	_cleanup_(netcfg_freep) struct netcfg *cell = NULL;
	struct netcfg_link_info fp0, fc0, lo;
	int r;

	memset(t, 0, sizeof(*t));
	t->cell_ns = -1;
	r = STEP(t, "unshare(CLONE_NEWNET)", nstest_enter_fresh_netns());
	r = r ?: STEP(t, "new cell netns", t->cell_ns = nstest_netns_new());
	if (r < 0)
		return r;
	/* Off before the links exist, so they never get IPv6 at all. */
	for (int side = 0; side < 2 && r >= 0; side++) {
		int ns = side ? t->cell_ns : -1;

		r = STEP(t, "disable_ipv6",
			 nstest_sysctl(ns, "net/ipv6/conf/default/disable_ipv6", "1"));
		r = r
			    ?: STEP(t, "disable_ipv6",
				    nstest_sysctl(ns, "net/ipv6/conf/all/disable_ipv6", "1"));
	}
	r = r ?: STEP(t, "netlink", netcfg_open(-1, &here));
	r = r ?: STEP(t, "netlink", netcfg_open(t->cell_ns, &cell));
	r = r ?: STEP(t, "veth fp0/fc0", netcfg_veth_add(here, "fp0", "fc0", t->cell_ns));
	r = r ?: STEP(t, "link fp0", netcfg_link_get(here, "fp0", &fp0));
	r = r ?: STEP(t, "link fc0", netcfg_link_get(cell, "fc0", &fc0));
	r = r ?: STEP(t, "link lo", netcfg_link_get(cell, "lo", &lo));
	if (r < 0)
		return r;
	t->cell_ifindex = fc0.ifindex;
	t->peer_ifindex = fp0.ifindex;
	r = STEP(t, "address fp0", netcfg_addr_add(here, fp0.ifindex, NSTEST_PEER_IP, 24));
	r = r ?: STEP(t, "address fc0", netcfg_addr_add(cell, fc0.ifindex, NSTEST_CELL_IP, 24));
	r = r ?: STEP(t, "neigh fp0", netcfg_neigh_add(here, fp0.ifindex, NSTEST_CELL_IP, fc0.mac));
	r = r ?: STEP(t, "neigh fc0", netcfg_neigh_add(cell, fc0.ifindex, NSTEST_PEER_IP, fp0.mac));
	r = r ?: STEP(t, "up fp0", netcfg_link_set_up(here, fp0.ifindex));
	r = r ?: STEP(t, "up fc0", netcfg_link_set_up(cell, fc0.ifindex));
	r = r ?: STEP(t, "up lo", netcfg_link_set_up(cell, lo.ifindex));
	return r;
}

int nstest_mon_spawn(struct nstest_mon *m, const char *cellref, const char *ifname,
		     const char *netns_path, int netns_fd, char **extra)
{
	char ready_arg[16], netns_buf[64];
	char *argv[48];
	int p[2], n = 0, saved_err;

	memset(m, 0, sizeof(*m));
	m->ready_fd = m->ev_fd = m->rec_fd = m->err_fd = -1;
	m->ev_fd = nstest_memfd("events", m->ev_path, sizeof(m->ev_path));
	m->rec_fd = nstest_memfd("records", m->rec_path, sizeof(m->rec_path));
	m->err_fd = nstest_memfd("stderr", m->err_path, sizeof(m->err_path));
	if (m->ev_fd < 0 || m->rec_fd < 0 || m->err_fd < 0)
		return -EMFILE;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (!netns_path) {
		snprintf(netns_buf, sizeof(netns_buf), "/proc/%d/fd/%d", getpid(), netns_fd);
		netns_path = netns_buf;
	}
	snprintf(ready_arg, sizeof(ready_arg), "%d", p[1]);
	argv[n++] = (char *)cellref;
	argv[n++] = "flow-monitor";
	argv[n++] = "--ifname";
	argv[n++] = (char *)ifname;
	argv[n++] = "--netns";
	argv[n++] = (char *)netns_path;
	argv[n++] = "--events";
	argv[n++] = m->ev_path;
	argv[n++] = "--records";
	argv[n++] = m->rec_path;
	argv[n++] = "--ready-fd";
	argv[n++] = ready_arg;
	argv[n++] = "--cell-id";
	argv[n++] = "cell-test";
	argv[n++] = "--run-id";
	argv[n++] = "run-test";
	for (; extra && *extra && n < 46; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;

	/* stderr goes to a memfd so a failure can show what the monitor said. */
	fflush(stderr);
	saved_err = dup(STDERR_FILENO);
	dup2(m->err_fd, STDERR_FILENO);
	m->pid = nstest_spawn(argv, (int[]){ p[1], netns_fd }, 2);
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	close(p[1]);
	m->ready_fd = p[0];
	return m->pid < 0 ? (int)m->pid : 0;
}

int nstest_mon_stop(struct nstest_mon *m, int sig, int timeout_ms)
{
	int status;

	if (sig)
		kill(m->pid, sig);
	status = nstest_wait(m->pid, timeout_ms);
	if (status < 0) {
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
		return status;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

void nstest_mon_close(struct nstest_mon *m)
{
	util_closep(&m->ready_fd);
	util_closep(&m->ev_fd);
	util_closep(&m->rec_fd);
	util_closep(&m->err_fd);
}
