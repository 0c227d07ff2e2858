/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 address leases for cells, kept as files so that `cellref cleanup` can find what crashed
 * runs left behind:
 *
 *   <state>/leases/.lock        flock()ed exclusively for the duration of one call
 *   <state>/leases/10.0.0.2     one small JSON record per leased address, replaced by rename()
 *   <state>/leases/.tmp-XXXXXX  a record being written (only under the lock; lease_reap removes
 *                               the ones a crash left)
 *
 * A lease belongs to its owner process, named by pid and start time (clock ticks since boot) so
 * that a recycled pid is not mistaken for the owner. A lease whose owner is gone is stale:
 * lease_reap removes it and lease_acquire may take its address over. Taking over overwrites the
 * record, so what the stale lease named (links, cgroup) is then no longer findable: a supervisor
 * should reap with its cleanup callback as it acquires (lease_acquire_reaped).
 *
 * Liveness is judged from this process's /proc: owners must live in the same pid namespace.
 *
 * The lock is reentrant within one thread: a lease_list(locked) or lease_reap callback may call
 * lease_acquire/update/release on the same state dir. The lock is an flock() on an open file
 * description, so a callback must not fork a child that outlives the call without exec (the
 * child would keep the lock).
 *
 * Errors: 0 or -errno. Besides those of the system calls: -EINVAL for bad arguments, -EPERM when
 * a lease belongs to another run, -EBADMSG when the record to check is corrupt.
 */
#ifndef CELLREF_LEASE_H
#define CELLREF_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LEASE_ID_MAX 64

struct lease {
	uint32_t ip; /* host byte order */
	char cell_id[LEASE_ID_MAX], run_id[LEASE_ID_MAX];
	pid_t owner_pid;
	unsigned long long owner_start;
	pid_t cell_pid;
	unsigned long long cell_start; /* 0 when not known yet */
	char host_if[16], bridge[16];
	bool bridge_created;
	char cgroup[256]; /* "" when none */
	bool corrupt;	  /* lease_list only: the file could not be parsed */
};

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat); 0 or -errno
 * (-ESRCH when gone). */
int lease_proc_start(pid_t pid, unsigned long long *ret);

/* true when pid exists and its start time equals start (PID reuse makes a different start).
 * A zombie counts as gone: it can never release anything. */
bool lease_proc_alive(pid_t pid, unsigned long long start);

/*
 * Take a lease. want != 0: exactly that address (-EADDRINUSE if leased by a live owner, if it is
 * the gateway, or if its record is corrupt; a lease whose owner is dead is taken over: stale;
 * -EINVAL when outside subnet/prefixlen or its network/broadcast address). want == 0: the lowest
 * free host address of subnet/prefixlen that is not the network, broadcast or gateway address and
 * not leased by a live owner (-EADDRNOTAVAIL when full). Host bits set in subnet are ignored.
 * in_use (may be NULL) is asked for each candidate under the lock and returns true if the address
 * is already configured somewhere (the supervisor checks the host's addresses): a wanted address
 * in use => -EADDRINUSE, an allocated one is skipped. rec holds the record to write (ip is filled
 * in); owner_pid / owner_start default to the calling process when 0 (owner_start alone 0: the
 * start of owner_pid, -ESRCH if it is gone) and are filled in too. run_id must not be empty.
 */
int lease_acquire(const char *state_dir, uint32_t subnet, unsigned int prefixlen, uint32_t gateway,
		  uint32_t want, bool (*in_use)(void *ctx, uint32_t ip), void *ctx,
		  struct lease *rec);

/* What lease_acquire_reaped does with the stale leases it finds (lease_reap's fn and ctx). */
struct lease_reaper {
	int (*fn)(void *ctx, const struct lease *l); /* may be NULL */
	void *ctx;
	int result; /* out: what lease_reap would have returned */
};

/*
 * lease_reap and then lease_acquire, in one hold of the lock and from one read of the records
 * (each record read and its owner judged once): every stale lease is handed to reap->fn and
 * removed (reap->result as lease_reap returns it; a failed reap does not fail the acquire, and
 * the address of a stale lease kept that way may be taken over), then the address is chosen as
 * lease_acquire does. reap NULL: stale leases are only taken over, as by lease_acquire.
 */
int lease_acquire_reaped(const char *state_dir, uint32_t subnet, unsigned int prefixlen,
			 uint32_t gateway, uint32_t want, bool (*in_use)(void *ctx, uint32_t ip),
			 void *ctx, struct lease_reaper *reap, struct lease *rec);

/* Rewrite the record of rec->ip (to add host_if, cell_pid... after they exist); owner_pid 0 keeps
 * the recorded owner; a record that would not change is not written again. -ENOENT if not leased,
 * -EPERM if leased by another run_id, -EBADMSG if the current record is corrupt. */
int lease_update(const char *state_dir, const struct lease *rec);

/* Remove the lease of ip; -ENOENT when there is none. Only removes it if run_id matches (NULL:
 * any, corrupt records included): -EPERM for another run's lease, -EBADMSG for a corrupt one. */
int lease_release(const char *state_dir, uint32_t ip, const char *run_id);

/* Visit every lease (sorted by ip). fn returning < 0 stops and is returned; 0 otherwise. Lock held
 * during the walk only if locked is true (cleanup wants that so nobody allocates meanwhile). A
 * missing state dir visits nothing. Files that are not named by an address are not leases. */
int lease_list(const char *state_dir, bool locked, int (*fn)(void *ctx, const struct lease *l),
	       void *ctx);

/*
 * Under the lock: remove every lease whose owner is dead, calling fn (may be NULL) first for each
 * (sorted by ip), so the caller can remove what the lease names (links, cgroup) before the lease
 * disappears. When fn returns < 0 that lease is kept (its leftovers are still there), the others
 * are still reaped, and the first such value is returned instead of the count. Corrupt records are
 * kept (their owner is unknown; lease_release(ip, NULL) removes them). Returns the number removed
 * or -errno. A missing state dir is 0 (nothing to do), not an error.
 */
int lease_reap(const char *state_dir, int (*fn)(void *ctx, const struct lease *l), void *ctx);

/*
 * IPv6 leases of dual-stack cells (SUP-LEASE-008): a namespace of their own beside the IPv4
 * ones, under the same lock, so a run takes both in one critical section of the store:
 *
 *   <state>/leases6/fd00:88::2   one JSON record per leased address, named by its RFC 5952 text
 *
 * A record names only the address and its owner; the links and cgroup of the run are in its IPv4
 * lease. Addresses in network byte order.
 */
struct lease6 {
	uint8_t ip[16];
	char cell_id[LEASE_ID_MAX], run_id[LEASE_ID_MAX];
	pid_t owner_pid;
	unsigned long long owner_start;
	bool corrupt; /* lease_list6 only */
};

/*
 * lease_acquire's rules for IPv6: want non-NULL (and not ::) is exactly that address, else the
 * lowest address of subnet/prefixlen above the subnet's own (its Subnet-Router anycast address)
 * that is neither gateway nor leased by a live owner nor in use (in_use, may be NULL). Stale
 * leases (owner gone) found on the way are removed: their address is free again.
 * -EADDRINUSE, -EADDRNOTAVAIL, -EINVAL as lease_acquire. prefixlen 64..128.
 */
int lease_acquire6(const char *state_dir, const uint8_t subnet[16], unsigned int prefixlen,
		   const uint8_t gateway[16], const uint8_t *want,
		   bool (*in_use)(void *ctx, const uint8_t ip[16]), void *ctx, struct lease6 *rec);
/* Remove the IPv6 lease of ip; run_id as lease_release. */
int lease_release6(const char *state_dir, const uint8_t ip[16], const char *run_id);
/* Visit every IPv6 lease (sorted by address); as lease_list. */
int lease_list6(const char *state_dir, bool locked, int (*fn)(void *ctx, const struct lease6 *l),
		void *ctx);
/* Under the lock: remove every IPv6 lease whose owner is dead; the number removed or -errno. */
int lease_reap6(const char *state_dir);

#endif
