/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Namespace fixtures for integration tests. Namespaces are held only by file descriptors, so
 * when the test process dies, however it dies, the kernel removes them with everything in them
 * (links, qdiscs, filters and the BPF programs those filters hold).
 */
#ifndef CELLCHECK_NSTEST_H
#define CELLCHECK_NSTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * How late a process may be woken after its timer or its input is due, on a shared CI runner
 * with the CPUs overcommitted two to one (ci/load) and the ASan build: scheduling delay plus
 * a fresh interpreter or two, not the work itself. An upper bound on a duration is "when it is
 * due + NSTEST_LATE_MS", and a test keeps the wrong behaviour it exists to catch (a timer that
 * never fires, a wait for some other timeout) further away than that bound (SPEC 10.0's rule
 * for cases, the same for the C tests: issue 13).
 */
#define NSTEST_LATE_MS 1500

/* Move the calling process into a fresh network namespace of its own; 0 or -errno. */
int nstest_enter_fresh_netns(void);

/*
 * The standard two-namespace topology of the kernel tests and benchmarks:
 *
 *   calling process netns (fresh, "peer")       cell netns (fresh, held by cell_ns)
 *   +-------------------------------+           +-------------------------------+
 *   | fp0 10.77.0.1/24              |<--veth--->| fc0 10.77.0.2/24              |
 *   | static neigh 10.77.0.2        |           | static neigh 10.77.0.1, lo up |
 *   +-------------------------------+           +-------------------------------+
 *
 * IPv6 is off and neighbours are static on both sides, so the only IPv4 packets leaving fc0
 * are the ones the caller sends. The cell end is created directly inside the cell netns.
 */
#define NSTEST_PEER_IP 0x0A4D0001u /* 10.77.0.1 */
#define NSTEST_CELL_IP 0x0A4D0002u /* 10.77.0.2 */

struct nstest_topo {
	int cell_ns;
	int cell_ifindex;
	int peer_ifindex;
	const char *step; /* what failed, for the message */
};

/* 0 or -errno; on -EPERM the machine cannot do it (not root): skip, do not fail. */
int nstest_topo_up(struct nstest_topo *t);

/* A new network namespace held by the returned fd; the caller stays where it is. */
int nstest_netns_new(void);

/* socket(2) created inside netns_fd (sockets keep the namespace they were born in). */
int nstest_socket_in(int netns_fd, int domain, int type, int protocol);

/* Write "value" to /proc/sys/<key> as seen from inside netns_fd (-1: the current one). */
int nstest_sysctl(int netns_fd, const char *key, const char *value);

/* A memfd whose /proc path a child process can open; *ret_path gets that path. */
int nstest_memfd(const char *name, char *ret_path, size_t len);
/* Its whole content, NUL-terminated; the caller frees. */
char *nstest_slurp(int fd, size_t *ret_len);

/*
 * fork+exec argv with the fds in keep[] inherited (all others close on exec). The child dies
 * with the test (PR_SET_PDEATHSIG) and sits in the test's process group.
 */
pid_t nstest_spawn(char *const argv[], const int *keep, int nkeep);
/* The same, with the child entering netns_fd (setns) before exec; -1: stay. */
pid_t nstest_spawn_in(int netns_fd, char *const argv[], const int *keep, int nkeep);
/* Wait up to timeout_ms; -ETIMEDOUT (the child is left running) or its wait status. */
int nstest_wait(pid_t pid, int timeout_ms);
/*
 * After kill(SIGSTOP): wait until every thread of the child has stopped (kill returns before
 * that, and a loaded machine may take long to get there). 0, -ETIMEDOUT, or -ECHILD if it ended.
 */
int nstest_wait_stopped(pid_t pid, int timeout_ms);
/* Read one byte from fd within timeout_ms: 0, -ETIMEDOUT, or -EPIPE on EOF. */
int nstest_wait_byte(int fd, int timeout_ms);

/*
 * A `cellref flow-monitor` (or a profile's equivalent at the same path) on ifname inside the
 * netns at netns_path (NULL: the one netns_fd holds), with events, raw records and stderr in
 * memfds the caller reads back, and a ready pipe.
 */
struct nstest_mon {
	pid_t pid;
	int ready_fd;
	int ev_fd;
	int rec_fd;
	int err_fd;
	char ev_path[64];
	char rec_path[64];
	char err_path[64];
};

int nstest_mon_spawn(struct nstest_mon *m, const char *cellref, const char *ifname,
		     const char *netns_path, int netns_fd, char **extra);
/* Send sig (0: none) and wait: the exit code, 128+signal, or -ETIMEDOUT (then killed). */
int nstest_mon_stop(struct nstest_mon *m, int sig, int timeout_ms);
void nstest_mon_close(struct nstest_mon *m);

/* Run /usr/bin/python3 tests/validate_events.py on a path: its exit code, or -errno. */
int nstest_validate_events(const char *path);

#endif
