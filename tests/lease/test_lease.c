// SPDX-License-Identifier: Apache-2.0
/*
 * The lease store: allocation order, stale owners (dead, zombie, recycled pid), the in_use hook,
 * a full subnet, concurrent allocation by 8 processes, run_id checks, corrupt records, the
 * /proc/PID/stat parser against a comm made of parentheses, and lease_reap's callback contract.
 * Every test works in its own mkdtemp directory, removed on the way out; children are killed and
 * reaped by a cleanup handler whatever happens.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "lease.h"
#include "tap.h"
#include "util.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* --- fixtures --- */

struct fixture {
	char dir[64];
	char state[96];
	char leases[128];
	pid_t janitor;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void fixture_done(struct fixture *f)
{
	if (f->dir[0])
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (f->janitor > 0) {
		kill(f->janitor, SIGKILL);
		waitpid(f->janitor, NULL, 0);
	}
}

static bool fixture_init(struct fixture *f)
{
	int p[2];
	char b;

	snprintf(f->dir, sizeof(f->dir), "/tmp/lease-test-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		return false;
	}
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->leases, sizeof(f->leases), "%s/leases", f->state);
	/*
	 * A test that times out (a deadlock, say) is SIGKILLed with its process group and runs no
	 * cleanup: a janitor outside the group removes the directory once the test and every
	 * process it forked are gone (the pipe's last write end closes).
	 */
	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	fflush(stdout);
	f->janitor = fork();
	if (f->janitor == 0) {
		setpgid(0, 0);
		close(p[1]);
		while (read(p[0], &b, 1) > 0)
			;
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		_exit(0);
	}
	close(p[0]);
	if (f->janitor < 0) {
		close(p[1]);
		return false;
	}
	/* p[1] stays open, on purpose, until this process ends. */
	return true;
}

#define FIXTURE(f)                                            \
	_cleanup_(fixture_done) struct fixture f = { { 0 } }; \
	if (!ASSERT_TRUE(fixture_init(&f)))                   \
	return

/* A child that lives until its pipe is closed; killed and reaped by the cleanup in any case. */
struct child {
	pid_t pid;
	int hold; /* write end: closing it lets the child exit */
	unsigned long long start;
};

static void child_killp(struct child *c)
{
	if (c->hold >= 0)
		close(c->hold);
	c->hold = -1;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	c->pid = 0;
}

#define CHILD(c) _cleanup_(child_killp) struct child c = { .pid = 0, .hold = -1 }

/* Start a child; with comm, it renames itself first and reports its start time read before. */
static bool child_start(struct child *c, const char *comm)
{
	int hold[2], ready[2];
	unsigned long long before = 0;

	if (pipe2(hold, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		return false;
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0)
		return false;
	if (c->pid == 0) {
		char b;

		close(hold[1]);
		close(ready[0]);
		if (lease_proc_start(getpid(), &before) < 0)
			_exit(2);
		if (comm && prctl(PR_SET_NAME, comm) < 0)
			_exit(2);
		if (util_write_all(ready[1], &before, sizeof(before)) < 0)
			_exit(2);
		while (read(hold[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(hold[0]);
	close(ready[1]);
	c->hold = hold[1];
	if (util_read_full(ready[0], &before, sizeof(before)) != sizeof(before)) {
		close(ready[0]);
		return false;
	}
	close(ready[0]);
	c->start = before;
	return true;
}

/* Let the child exit and reap it: from now on (pid, start) names a dead process. */
static void child_end(struct child *c)
{
	close(c->hold);
	c->hold = -1;
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
}

static struct lease rec(const char *run)
{
	struct lease l = { 0 };

	snprintf(l.run_id, sizeof(l.run_id), "%s", run);
	snprintf(l.cell_id, sizeof(l.cell_id), "cell-%s", run);
	return l;
}

struct seen {
	struct lease l[200];
	size_t n;
};

static int collect(void *ctx, const struct lease *l)
{
	struct seen *s = ctx;

	if (s->n < ARRAY_SIZE(s->l))
		s->l[s->n++] = *l;
	return 0;
}

static struct seen *list_all(const struct fixture *f)
{
	struct seen *s = calloc(1, sizeof(*s));

	if (s && lease_list(f->state, false, collect, s) < 0)
		s->n = (size_t)-1;
	return s;
}

static bool lease_file_exists(const struct fixture *f, const char *ip)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/%s", f->leases, ip);
	return access(path, F_OK) == 0;
}

static bool write_file(const struct fixture *f, const char *name, const char *text)
{
	char path[192];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", f->leases, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd >= 0 && util_write_all(fd, text, strlen(text)) == 0;
}

/* --- allocation --- */

TEST(allocation_order_skips_network_broadcast_gateway)
{
	FIXTURE(f);
	struct lease l;

	/* /24 with the gateway at .1: .2, .3, .4 in order; a released address is reused first. */
	for (uint32_t want = 2; want <= 4; want++) {
		l = rec("r1");
		if (!ASSERT_OK(lease_acquire(f.state, IP(10, 9, 0, 0), 24, IP(10, 9, 0, 1), 0, NULL,
					     NULL, &l)))
			return;
		ASSERT_EQ(l.ip, IP(10, 9, 0, want));
		ASSERT_EQ(l.owner_pid, getpid());
		ASSERT_GT(l.owner_start, 0);
	}
	ASSERT_TRUE(lease_file_exists(&f, "10.9.0.3"));
	ASSERT_OK(lease_release(f.state, IP(10, 9, 0, 3), "r1"));
	l = rec("r1");
	ASSERT_OK(lease_acquire(f.state, IP(10, 9, 0, 0), 24, IP(10, 9, 0, 1), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 9, 0, 3));

	/* /29 (.8-.15) with the gateway in the middle at .13, subnet given with host bits set. */
	uint32_t expect[] = { 9, 10, 11, 12, 14 };
	for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
		l = rec("r2");
		if (!ASSERT_OK(lease_acquire(f.state, IP(10, 9, 1, 11), 29, IP(10, 9, 1, 13), 0,
					     NULL, NULL, &l)))
			return;
		ASSERT_EQ(l.ip, IP(10, 9, 1, expect[i]));
	}
	l = rec("r2");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 9, 1, 8), 29, IP(10, 9, 1, 13), 0, NULL, NULL, &l),
		   -EADDRNOTAVAIL);
	ASSERT_FALSE(lease_file_exists(&f, "10.9.1.8"));
	ASSERT_FALSE(lease_file_exists(&f, "10.9.1.15"));
	ASSERT_FALSE(lease_file_exists(&f, "10.9.1.13"));

	/* Directories are private. */
	struct stat st;
	if (ASSERT_OK(stat(f.state, &st) < 0 ? -errno : 0))
		ASSERT_EQ(st.st_mode & 0777, 0700);
	if (ASSERT_OK(stat(f.leases, &st) < 0 ? -errno : 0))
		ASSERT_EQ(st.st_mode & 0777, 0700);
}

TEST(small_and_bad_prefixes)
{
	FIXTURE(f);
	struct lease l = rec("r");

	/* /30: network .0, gateway .1, broadcast .3 leave .2 alone. */
	ASSERT_OK(lease_acquire(f.state, IP(10, 8, 0, 0), 30, IP(10, 8, 0, 1), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 8, 0, 2));
	l = rec("r");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 0, 0), 30, IP(10, 8, 0, 1), 0, NULL, NULL, &l),
		   -EADDRNOTAVAIL);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 1, 0), 31, 0, 0, NULL, NULL, &l),
		   -EADDRNOTAVAIL);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 2, 0), 32, 0, 0, NULL, NULL, &l),
		   -EADDRNOTAVAIL);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 2, 0), 33, 0, 0, NULL, NULL, &l), -EINVAL);
	/* A record without run_id cannot be released by its run later: refused up front. */
	l = rec("");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 3, 0), 24, 0, 0, NULL, NULL, &l), -EINVAL);
	l = rec("r");
	memset(l.host_if, 'x', sizeof(l.host_if));
	ASSERT_ERR(lease_acquire(f.state, IP(10, 8, 3, 0), 24, 0, 0, NULL, NULL, &l), -EINVAL);
}

TEST(subnet_full)
{
	FIXTURE(f);
	struct lease l;
	int got = 0;

	/* 10.30.0.16/28: hosts .17-.30, gateway .17: 13 leases. */
	for (;;) {
		l = rec("r");
		int r = lease_acquire(f.state, IP(10, 30, 0, 16), 28, IP(10, 30, 0, 17), 0, NULL,
				      NULL, &l);
		if (r == -EADDRNOTAVAIL)
			break;
		if (!ASSERT_OK(r) || !ASSERT_LE(got, 13))
			return;
		ASSERT_EQ(l.ip, IP(10, 30, 0, 18 + got));
		got++;
	}
	ASSERT_EQ(got, 13);
	ASSERT_OK(lease_release(f.state, IP(10, 30, 0, 25), NULL));
	l = rec("r");
	ASSERT_OK(lease_acquire(f.state, IP(10, 30, 0, 16), 28, IP(10, 30, 0, 17), 0, NULL, NULL,
				&l));
	ASSERT_EQ(l.ip, IP(10, 30, 0, 25));
}

TEST(want_specific_address)
{
	FIXTURE(f);
	struct lease l = rec("r1");

	ASSERT_OK(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 10, 0, 77),
				NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 10, 0, 77));
	ASSERT_TRUE(lease_file_exists(&f, "10.10.0.77"));

	/* Double lease refused, even to the same run and process. */
	l = rec("r1");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 10, 0, 77),
				 NULL, NULL, &l),
		   -EADDRINUSE);
	l = rec("r2");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 10, 0, 77),
				 NULL, NULL, &l),
		   -EADDRINUSE);
	ASSERT_EQ(l.ip, 0); /* untouched on failure */
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 10, 0, 1),
				 NULL, NULL, &l),
		   -EADDRINUSE);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 11, 0, 5),
				 NULL, NULL, &l),
		   -EINVAL);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), IP(10, 10, 0, 0),
				 NULL, NULL, &l),
		   -EINVAL);
	ASSERT_ERR(lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1),
				 IP(10, 10, 0, 255), NULL, NULL, &l),
		   -EINVAL);
	/* Allocation goes around the wanted one. */
	ASSERT_OK(
		lease_acquire(f.state, IP(10, 10, 0, 0), 24, IP(10, 10, 0, 1), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 10, 0, 2));
}

struct in_use_ctx {
	uint32_t busy[4];
	size_t nbusy;
	uint32_t asked[16];
	size_t nasked;
};

static bool in_use_cb(void *ctx, uint32_t ip)
{
	struct in_use_ctx *c = ctx;

	if (c->nasked < ARRAY_SIZE(c->asked))
		c->asked[c->nasked++] = ip;
	for (size_t i = 0; i < c->nbusy; i++) {
		if (c->busy[i] == ip)
			return true;
	}
	return false;
}

TEST(in_use_callback_honoured)
{
	FIXTURE(f);
	struct in_use_ctx c = { .busy = { IP(10, 11, 0, 2), IP(10, 11, 0, 3) }, .nbusy = 2 };
	struct lease l = rec("r");

	ASSERT_OK(lease_acquire(f.state, IP(10, 11, 0, 0), 24, IP(10, 11, 0, 1), 0, in_use_cb, &c,
				&l));
	ASSERT_EQ(l.ip, IP(10, 11, 0, 4));
	if (ASSERT_EQ(c.nasked, 3)) {
		ASSERT_EQ(c.asked[0], IP(10, 11, 0, 2));
		ASSERT_EQ(c.asked[1], IP(10, 11, 0, 3));
		ASSERT_EQ(c.asked[2], IP(10, 11, 0, 4));
	}
	ASSERT_FALSE(lease_file_exists(&f, "10.11.0.2"));
	l = rec("r");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 11, 0, 0), 24, IP(10, 11, 0, 1), IP(10, 11, 0, 3),
				 in_use_cb, &c, &l),
		   -EADDRINUSE);
	ASSERT_FALSE(lease_file_exists(&f, "10.11.0.3"));
	/* Without the hook the address is free for the store. */
	ASSERT_OK(lease_acquire(f.state, IP(10, 11, 0, 0), 24, IP(10, 11, 0, 1), IP(10, 11, 0, 3),
				NULL, NULL, &l));
}

/* --- records --- */

TEST(record_round_trip_and_update)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	struct lease l = rec("run-1"), u;
	json_auto_t *j = NULL;
	char path[192];

	snprintf(l.bridge, sizeof(l.bridge), "cellbr0");
	l.bridge_created = true;
	snprintf(l.cgroup, sizeof(l.cgroup), "/sys/fs/cgroup/cellref/run-1");
	if (!ASSERT_OK(lease_acquire(f.state, IP(10, 12, 0, 0), 24, IP(10, 12, 0, 1), 0, NULL, NULL,
				     &l)))
		return;

	/* The file is the documented JSON, private to us. */
	snprintf(path, sizeof(path), "%s/10.12.0.2", f.leases);
	j = json_load_file(path, 0, NULL);
	if (!ASSERT_TRUE(j))
		return;
	ASSERT_STREQ(json_string_value(json_object_get(j, "ip")), "10.12.0.2");
	ASSERT_STREQ(json_string_value(json_object_get(j, "runId")), "run-1");
	ASSERT_STREQ(json_string_value(json_object_get(j, "cellId")), "cell-run-1");
	ASSERT_EQ(json_integer_value(json_object_get(j, "ownerPid")), getpid());
	ASSERT_EQ(json_integer_value(json_object_get(j, "ownerStart")), l.owner_start);
	ASSERT_STREQ(json_string_value(json_object_get(j, "bridge")), "cellbr0");
	ASSERT_TRUE(json_is_true(json_object_get(j, "bridgeCreated")));
	ASSERT_STREQ(json_string_value(json_object_get(j, "hostIf")), "");
	ASSERT_EQ(json_integer_value(json_object_get(j, "cellPid")), 0);
	ASSERT_TRUE(json_is_integer(json_object_get(j, "cellStart")));
	ASSERT_STREQ(json_string_value(json_object_get(j, "cgroup")), l.cgroup);
	struct stat st;
	if (ASSERT_OK(stat(path, &st) < 0 ? -errno : 0))
		ASSERT_EQ(st.st_mode & 0777, 0600);

	/* Update once the links and the cell exist; leaving owner_pid 0 keeps the owner. */
	u = l;
	snprintf(u.host_if, sizeof(u.host_if), "vc-run-1");
	u.cell_pid = 4242;
	u.cell_start = 777;
	u.owner_pid = 0;
	ASSERT_OK(lease_update(f.state, &u));
	s = list_all(&f);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n, 1))
		return;
	ASSERT_FALSE(s->l[0].corrupt);
	ASSERT_EQ(s->l[0].ip, IP(10, 12, 0, 2));
	ASSERT_STREQ(s->l[0].run_id, "run-1");
	ASSERT_STREQ(s->l[0].cell_id, "cell-run-1");
	ASSERT_STREQ(s->l[0].host_if, "vc-run-1");
	ASSERT_STREQ(s->l[0].bridge, "cellbr0");
	ASSERT_TRUE(s->l[0].bridge_created);
	ASSERT_STREQ(s->l[0].cgroup, l.cgroup);
	ASSERT_EQ(s->l[0].owner_pid, getpid());
	ASSERT_EQ(s->l[0].owner_start, l.owner_start);
	ASSERT_EQ(s->l[0].cell_pid, 4242);
	ASSERT_EQ(s->l[0].cell_start, 777);

	/* Another run may not rewrite it; an address without a lease cannot be updated. */
	snprintf(u.run_id, sizeof(u.run_id), "run-2");
	ASSERT_ERR(lease_update(f.state, &u), -EPERM);
	u = l;
	u.ip = IP(10, 12, 0, 3);
	ASSERT_ERR(lease_update(f.state, &u), -ENOENT);
	ASSERT_FALSE(lease_file_exists(&f, "10.12.0.3"));
	/* No temp file is left behind by a write. */
	size_t n = 0;
	DIR *d = opendir(f.leases);
	for (struct dirent *de; d && (de = readdir(d));)
		n += strncmp(de->d_name, ".tmp", 4) == 0;
	if (d)
		closedir(d);
	ASSERT_EQ(n, 0);
}

TEST(release_checks_run_id)
{
	FIXTURE(f);
	struct lease l = rec("r1");

	ASSERT_ERR(lease_release(f.state, IP(10, 13, 0, 2), NULL), -ENOENT);
	if (!ASSERT_OK(lease_acquire(f.state, IP(10, 13, 0, 0), 24, IP(10, 13, 0, 1), 0, NULL, NULL,
				     &l)))
		return;
	ASSERT_ERR(lease_release(f.state, l.ip, "r2"), -EPERM);
	ASSERT_TRUE(lease_file_exists(&f, "10.13.0.2"));
	ASSERT_OK(lease_release(f.state, l.ip, "r1"));
	ASSERT_FALSE(lease_file_exists(&f, "10.13.0.2"));
	ASSERT_ERR(lease_release(f.state, l.ip, "r1"), -ENOENT);
	l = rec("r3");
	ASSERT_OK(
		lease_acquire(f.state, IP(10, 13, 0, 0), 24, IP(10, 13, 0, 1), 0, NULL, NULL, &l));
	ASSERT_OK(lease_release(f.state, l.ip, NULL));
	ASSERT_FALSE(lease_file_exists(&f, "10.13.0.2"));
}

TEST(missing_state_dir)
{
	FIXTURE(f);
	struct seen s = { .n = 0 };
	struct lease l = rec("r");

	ASSERT_EQ(lease_reap(f.state, NULL, NULL), 0);
	ASSERT_EQ(lease_list(f.state, true, collect, &s), 0);
	ASSERT_EQ(lease_list(f.state, false, collect, &s), 0);
	ASSERT_EQ(s.n, 0);
	ASSERT_ERR(lease_release(f.state, IP(10, 1, 0, 2), NULL), -ENOENT);
	l.ip = IP(10, 1, 0, 2);
	ASSERT_ERR(lease_update(f.state, &l), -ENOENT);
	/* None of these creates anything. */
	ASSERT_ERR(access(f.state, F_OK) < 0 ? -errno : 0, -ENOENT);
}

TEST(corrupt_records_tolerated)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	struct lease l = rec("r");
	char text[512], path[192];
	unsigned long long me;

	/* Create the directories through the API first. */
	ASSERT_OK(lease_acquire(f.state, IP(10, 40, 0, 0), 24, IP(10, 40, 0, 1), IP(10, 40, 0, 200),
				NULL, NULL, &l));
	ASSERT_OK(lease_release(f.state, IP(10, 40, 0, 200), NULL));
	if (!ASSERT_OK(lease_proc_start(getpid(), &me)))
		return;
	ASSERT_TRUE(write_file(&f, "10.40.0.2", "not json {"));
	ASSERT_TRUE(write_file(&f, "10.40.0.3", ""));
	ASSERT_TRUE(write_file(&f, "10.40.0.4",
			       "{\"ip\":\"10.40.0.4\",\"runId\":\"r\",\"ownerPid\":\"12\","
			       "\"ownerStart\":1}"));
	ASSERT_TRUE(write_file(&f, "10.40.0.5",
			       "{\"ip\":\"10.40.0.9\",\"runId\":\"r\",\"ownerPid\":1,"
			       "\"ownerStart\":1}"));
	/* Valid, with a member from a newer writer: read, not corrupt. */
	snprintf(text, sizeof(text),
		 "{\"ip\":\"10.40.0.6\",\"runId\":\"r\",\"ownerPid\":%d,\"ownerStart\":%llu,"
		 "\"future\":{\"x\":[1,2]}}",
		 (int)getpid(), me);
	ASSERT_TRUE(write_file(&f, "10.40.0.6", text));
	snprintf(path, sizeof(path), "%s/10.40.0.7", f.leases);
	ASSERT_OK(mkdir(path, 0700) < 0 ? -errno : 0);
	_cleanup_free_ char *big = malloc(40000);
	if (!ASSERT_TRUE(big))
		return;
	memset(big, ' ', 39998);
	big[0] = '{';
	big[39998] = '}';
	big[39999] = '\0';
	ASSERT_TRUE(write_file(&f, "10.40.0.8", big));
	/* Not lease names: ignored. */
	ASSERT_TRUE(write_file(&f, "junk", "x"));
	ASSERT_TRUE(write_file(&f, "10.40.0.010", "x"));

	s = list_all(&f);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n, 7))
		return;
	for (size_t i = 0; i < s->n; i++) {
		ASSERT_EQ(s->l[i].ip, IP(10, 40, 0, 2 + i));
		if (!ASSERT_EQ(s->l[i].corrupt, i != 4))
			tap_diag("lease %zu", i);
	}
	ASSERT_STREQ(s->l[4].run_id, "r");
	ASSERT_EQ(s->l[4].owner_pid, getpid());

	/* Corrupt records name no owner that could be checked: kept off, kept by reap. */
	l = rec("r2");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 40, 0, 0), 24, IP(10, 40, 0, 1), IP(10, 40, 0, 2),
				 NULL, NULL, &l),
		   -EADDRINUSE);
	ASSERT_OK(
		lease_acquire(f.state, IP(10, 40, 0, 0), 24, IP(10, 40, 0, 1), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 40, 0, 9));
	ASSERT_EQ(lease_reap(f.state, NULL, NULL), 0);
	ASSERT_TRUE(lease_file_exists(&f, "10.40.0.2"));
	l.ip = IP(10, 40, 0, 3);
	ASSERT_ERR(lease_update(f.state, &l), -EBADMSG);
	ASSERT_ERR(lease_release(f.state, IP(10, 40, 0, 2), "r"), -EBADMSG);
	ASSERT_OK(lease_release(f.state, IP(10, 40, 0, 2), NULL));
	ASSERT_FALSE(lease_file_exists(&f, "10.40.0.2"));
}

/* --- owners --- */

TEST(proc_start_with_parentheses_in_comm)
{
	static const char comm[] = "x) (y) 9 9 9 9";
	CHILD(c);
	unsigned long long start, me;
	char path[64], buf[64] = "";
	_cleanup_close_ int fd = -1;

	if (!ASSERT_TRUE(child_start(&c, comm)))
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)c.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ASSERT_TRUE(fd >= 0))
		ASSERT_GT(util_read_full(fd, buf, sizeof(buf) - 1), 0);
	ASSERT_STREQ(buf, "x) (y) 9 9 9 9\n");
	/* The child read its start with its plain name; a parser splitting at the first ')'
	 * would now read "9" or a field too early. */
	if (!ASSERT_OK(lease_proc_start(c.pid, &start)))
		return;
	ASSERT_EQ(start, c.start);
	ASSERT_OK(lease_proc_start(getpid(), &me));
	ASSERT_LE(me, start);
	ASSERT_TRUE(lease_proc_alive(c.pid, start));
	ASSERT_FALSE(lease_proc_alive(c.pid, start + 1));
	ASSERT_FALSE(lease_proc_alive(c.pid, start - 1));
}

TEST(proc_gone_zombie_and_reused_pid)
{
	unsigned long long start = 0, me;
	siginfo_t si;
	pid_t pid;

	ASSERT_ERR(lease_proc_start(0, &start), -EINVAL);
	ASSERT_ERR(lease_proc_start(-1, &start), -EINVAL);
	ASSERT_OK(lease_proc_start(getpid(), &me));
	ASSERT_TRUE(lease_proc_alive(getpid(), me));
	/* PID reuse looks like this: the pid exists, with another start time. */
	ASSERT_FALSE(lease_proc_alive(getpid(), me + 1));

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (!ASSERT_GT(pid, 0))
		return;
	/* Zombie: still in /proc, never going to release anything. */
	ASSERT_OK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 ? -errno : 0);
	ASSERT_OK(lease_proc_start(pid, &start));
	ASSERT_FALSE(lease_proc_alive(pid, start));
	waitpid(pid, NULL, 0);
	ASSERT_ERR(lease_proc_start(pid, &start), -ESRCH);
	ASSERT_FALSE(lease_proc_alive(pid, start));
}

TEST(stale_owner_taken_over)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	CHILD(c);
	struct lease l = rec("theirs");
	pid_t dead;

	if (!ASSERT_TRUE(child_start(&c, NULL)))
		return;
	/* 10.50.0.8/29, gateway .9: hosts .10-.14. The child owns .10. */
	l.owner_pid = c.pid;
	l.owner_start = c.start;
	if (!ASSERT_OK(lease_acquire(f.state, IP(10, 50, 0, 8), 29, IP(10, 50, 0, 9),
				     IP(10, 50, 0, 10), NULL, NULL, &l)))
		return;
	ASSERT_EQ(l.owner_pid, c.pid);
	l = rec("mine");
	ASSERT_ERR(lease_acquire(f.state, IP(10, 50, 0, 8), 29, IP(10, 50, 0, 9), IP(10, 50, 0, 10),
				 NULL, NULL, &l),
		   -EADDRINUSE);
	ASSERT_OK(
		lease_acquire(f.state, IP(10, 50, 0, 8), 29, IP(10, 50, 0, 9), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 50, 0, 11));

	dead = c.pid;
	child_end(&c);
	ASSERT_FALSE(lease_proc_alive(dead, c.start));
	/* The owner is gone: the lowest address is free again, and the record is ours now. */
	l = rec("mine");
	ASSERT_OK(
		lease_acquire(f.state, IP(10, 50, 0, 8), 29, IP(10, 50, 0, 9), 0, NULL, NULL, &l));
	ASSERT_EQ(l.ip, IP(10, 50, 0, 10));
	s = list_all(&f);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n, 2))
		return;
	ASSERT_STREQ(s->l[0].run_id, "mine");
	ASSERT_EQ(s->l[0].owner_pid, getpid());
	/* An owner given without its start time must exist. */
	l = rec("ghost");
	l.owner_pid = dead;
	ASSERT_ERR(
		lease_acquire(f.state, IP(10, 50, 0, 8), 29, IP(10, 50, 0, 9), 0, NULL, NULL, &l),
		-ESRCH);
}

TEST(reused_pid_is_stale)
{
	FIXTURE(f);
	struct lease l = rec("old");
	unsigned long long me;
	int n;

	if (!ASSERT_OK(lease_proc_start(getpid(), &me)))
		return;
	/* Our pid, someone else's start time: the previous holder of this pid. */
	l.owner_pid = getpid();
	l.owner_start = me - 1;
	ASSERT_OK(lease_acquire(f.state, IP(10, 51, 0, 0), 24, IP(10, 51, 0, 1), IP(10, 51, 0, 7),
				NULL, NULL, &l));
	l = rec("old");
	l.owner_pid = getpid();
	l.owner_start = me + 1000;
	ASSERT_OK(lease_acquire(f.state, IP(10, 51, 0, 0), 24, IP(10, 51, 0, 1), IP(10, 51, 0, 8),
				NULL, NULL, &l));
	l = rec("new");
	ASSERT_OK(lease_acquire(f.state, IP(10, 51, 0, 0), 24, IP(10, 51, 0, 1), IP(10, 51, 0, 7),
				NULL, NULL, &l));
	n = lease_reap(f.state, NULL, NULL);
	ASSERT_EQ(n, 1);
	ASSERT_FALSE(lease_file_exists(&f, "10.51.0.8"));
	ASSERT_TRUE(lease_file_exists(&f, "10.51.0.7"));
}

struct reap_ctx {
	const struct fixture *f;
	uint32_t order[8];
	size_t n;
	bool existed[8];
	uint32_t fail_ip;
};

static int reap_cb(void *ctx, const struct lease *l)
{
	struct reap_ctx *c = ctx;
	char name[32];

	snprintf(name, sizeof(name), "%u.%u.%u.%u", l->ip >> 24, (l->ip >> 16) & 255,
		 (l->ip >> 8) & 255, l->ip & 255);
	if (c->n < ARRAY_SIZE(c->order)) {
		c->existed[c->n] = lease_file_exists(c->f, name);
		c->order[c->n++] = l->ip;
	}
	return l->ip == c->fail_ip ? -EIO : 0;
}

TEST(reap_calls_back_in_order_before_removing)
{
	FIXTURE(f);
	CHILD(c);
	struct reap_ctx rc = { .f = &f, .fail_ip = IP(10, 52, 0, 5) };
	struct lease l;
	const uint32_t stale[] = { 9, 3, 5 };
	char tmp[192];

	if (!ASSERT_TRUE(child_start(&c, NULL)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(stale); i++) {
		l = rec("crashed");
		l.owner_pid = c.pid;
		l.owner_start = c.start;
		ASSERT_OK(lease_acquire(f.state, IP(10, 52, 0, 0), 24, IP(10, 52, 0, 1),
					IP(10, 52, 0, stale[i]), NULL, NULL, &l));
	}
	l = rec("live");
	ASSERT_OK(lease_acquire(f.state, IP(10, 52, 0, 0), 24, IP(10, 52, 0, 1), IP(10, 52, 0, 4),
				NULL, NULL, &l));
	/* While the owner lives nothing is reaped. */
	ASSERT_EQ(lease_reap(f.state, reap_cb, &rc), 0);
	ASSERT_EQ(rc.n, 0);
	child_end(&c);

	/* A writer that crashed mid-write left its temp file. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp-10.52.0.66", f.leases);
	ASSERT_TRUE(write_file(&f, ".tmp-10.52.0.66", "{\"ip\":"));

	/* Sorted by address, each seen while its file still exists; the failing one is kept. */
	ASSERT_ERR(lease_reap(f.state, reap_cb, &rc), -EIO);
	if (ASSERT_EQ(rc.n, 3)) {
		ASSERT_EQ(rc.order[0], IP(10, 52, 0, 3));
		ASSERT_EQ(rc.order[1], IP(10, 52, 0, 5));
		ASSERT_EQ(rc.order[2], IP(10, 52, 0, 9));
		ASSERT_TRUE(rc.existed[0] && rc.existed[1] && rc.existed[2]);
	}
	ASSERT_FALSE(lease_file_exists(&f, "10.52.0.3"));
	ASSERT_TRUE(lease_file_exists(&f, "10.52.0.5"));
	ASSERT_FALSE(lease_file_exists(&f, "10.52.0.9"));
	ASSERT_TRUE(lease_file_exists(&f, "10.52.0.4"));
	ASSERT_ERR(access(tmp, F_OK) < 0 ? -errno : 0, -ENOENT);

	rc.n = 0;
	rc.fail_ip = 0;
	ASSERT_EQ(lease_reap(f.state, reap_cb, &rc), 1);
	ASSERT_EQ(rc.n, 1);
	ASSERT_EQ(lease_reap(f.state, NULL, NULL), 0);
	ASSERT_TRUE(lease_file_exists(&f, "10.52.0.4"));
}

/* The supervisor's path: many leases, live, stale and corrupt ones mixed, reaped in the same scan
 * that chooses the address. */
TEST(acquire_reaped_many_in_one_scan)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	CHILD(live);
	CHILD(gone);
	struct reap_ctx rc = { .f = &f };
	struct lease_reaper reaper = { .fn = reap_cb, .ctx = &rc };
	struct lease l;
	size_t n_live = 0;

	if (!ASSERT_TRUE(child_start(&live, NULL)) || !ASSERT_TRUE(child_start(&gone, NULL)))
		return;
	/* 10.53.0.0/24, gateway .1: .2-.181 leased, every 30th (.2, .32, ... .152) stale. */
	for (unsigned int h = 2; h <= 181; h++) {
		struct child *o = (h - 2) % 30 == 0 ? &gone : &live;

		l = rec((h - 2) % 30 == 0 ? "crashed" : "held");
		l.owner_pid = o->pid;
		l.owner_start = o->start;
		if (!ASSERT_OK(lease_acquire(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1),
					     IP(10, 53, 0, h), NULL, NULL, &l)))
			return;
	}
	ASSERT_TRUE(write_file(&f, "10.53.0.200", "{\"ip\":"));
	child_end(&gone);
	/* The first stale one's leftovers cannot be removed: it stays, and stays stale. */
	rc.fail_ip = IP(10, 53, 0, 2);

	l = rec("new");
	if (!ASSERT_OK(lease_acquire_reaped(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1), 0,
					    NULL, NULL, &reaper, &l)))
		return;
	/* Every stale one seen, in order, while its file still existed; all but .2 removed. */
	ASSERT_ERR(reaper.result, -EIO);
	if (ASSERT_EQ(rc.n, 6)) {
		for (size_t i = 0; i < 6; i++) {
			ASSERT_EQ(rc.order[i], IP(10, 53, 0, 2 + 30 * i));
			ASSERT_TRUE(rc.existed[i]);
		}
	}
	/* The lowest address free after the reap: .2's lease was kept but its owner is dead. */
	ASSERT_EQ(l.ip, IP(10, 53, 0, 2));
	s = list_all(&f);
	if (!ASSERT_TRUE(s))
		return;
	for (size_t i = 0; i < s->n; i++) {
		uint32_t h = s->l[i].ip & 255;

		if (h == 2) {
			ASSERT_STREQ(s->l[i].run_id, "new");
		} else if (h == 200) {
			ASSERT_TRUE(s->l[i].corrupt);
		} else if (!ASSERT_TRUE(h <= 181 && (h - 2) % 30 != 0) ||
			   !ASSERT_STREQ(s->l[i].run_id, "held")) {
			tap_diag("lease %u", h);
			break;
		} else {
			n_live++;
		}
	}
	ASSERT_EQ(n_live, 174);
	ASSERT_EQ(s->n, 176);

	/* Next: the lowest reaped address; nothing stale is left to report. */
	rc = (struct reap_ctx){ .f = &f };
	reaper.result = -1;
	l = rec("next");
	ASSERT_OK(lease_acquire_reaped(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1), 0, NULL,
				       NULL, &reaper, &l));
	ASSERT_EQ(l.ip, IP(10, 53, 0, 32));
	ASSERT_EQ(reaper.result, 0);
	ASSERT_EQ(rc.n, 0);
	/* A wanted address: a live one is refused, the corrupt one too, after the same reap. */
	l = rec("want");
	ASSERT_ERR(lease_acquire_reaped(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1),
					IP(10, 53, 0, 3), NULL, NULL, &reaper, &l),
		   -EADDRINUSE);
	ASSERT_ERR(lease_acquire_reaped(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1),
					IP(10, 53, 0, 200), NULL, NULL, &reaper, &l),
		   -EADDRINUSE);
	ASSERT_OK(lease_acquire_reaped(f.state, IP(10, 53, 0, 0), 24, IP(10, 53, 0, 1),
				       IP(10, 53, 0, 62), NULL, NULL, &reaper, &l));
}

struct grab_ctx {
	const char *state;
	uint32_t got;
};

/* A reap callback that takes an address itself (reentrant): it must not be handed out twice. */
static int grab_cb(void *ctx, const struct lease *l)
{
	struct grab_ctx *g = ctx;
	struct lease m = rec("grabbed");

	if (lease_acquire(g->state, IP(10, 54, 0, 0), 24, IP(10, 54, 0, 1), 0, NULL, NULL, &m) == 0)
		g->got = m.ip;
	return 0;
}

TEST(acquire_reaped_callback_changes_the_store)
{
	FIXTURE(f);
	CHILD(gone);
	struct grab_ctx g = { .state = f.state };
	struct lease_reaper reaper = { .fn = grab_cb, .ctx = &g };
	struct lease l;

	if (!ASSERT_TRUE(child_start(&gone, NULL)))
		return;
	l = rec("crashed");
	l.owner_pid = gone.pid;
	l.owner_start = gone.start;
	ASSERT_OK(lease_acquire(f.state, IP(10, 54, 0, 0), 24, IP(10, 54, 0, 1), IP(10, 54, 0, 9),
				NULL, NULL, &l));
	child_end(&gone);
	l = rec("mine");
	ASSERT_OK(lease_acquire_reaped(f.state, IP(10, 54, 0, 0), 24, IP(10, 54, 0, 1), 0, NULL,
				       NULL, &reaper, &l));
	/* The callback took .2 while the scan had seen it free; the run gets .3. */
	ASSERT_EQ(g.got, IP(10, 54, 0, 2));
	ASSERT_EQ(l.ip, IP(10, 54, 0, 3));
	ASSERT_EQ(reaper.result, 1);
	ASSERT_FALSE(lease_file_exists(&f, "10.54.0.9"));
}

/* Records are read by a fast path for the writer's own form and by jansson for anything else:
 * both must give the same lease or the same verdict. */
TEST(record_forms_read_alike)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	struct lease l = rec("r");
	unsigned long long me;
	char text[1024];
	const char *tail[] = {
		/* 2: the writer's form */
		"\"cgroup\":\"\",\"cellPid\":0,\"cellStart\":0}\n",
		/* 3: trailing whitespace of any kind is JSON's */
		"\"cgroup\":\"\",\"cellPid\":0,\"cellStart\":0} \r\n\t\n",
		/* 4: something after the object */
		"\"cgroup\":\"\",\"cellPid\":0,\"cellStart\":0}x",
		/* 5: a leading zero */
		"\"cgroup\":\"\",\"cellPid\":07,\"cellStart\":0}\n",
		/* 6: a cell PID out of range */
		"\"cgroup\":\"\",\"cellPid\":2147483648,\"cellStart\":0}\n",
		/* 7: escapes and non-ASCII, valid */
		"\"cgroup\":\"/a\\\"b\\u00e9\\/c\",\"cellPid\":12,\"cellStart\":34}\n",
		/* 8: a real number */
		"\"cgroup\":\"\",\"cellPid\":1.0,\"cellStart\":0}\n",
		/* 9: a start time of 19 digits, in range */
		"\"cgroup\":\"\",\"cellPid\":0,\"cellStart\":1234567890123456789}\n",
		/* 10: 20 digits: out of range */
		"\"cgroup\":\"\",\"cellPid\":0,\"cellStart\":12345678901234567890}\n",
		/* 11: members in another order, one of them twice */
		"\"cellStart\":0,\"cgroup\":\"\",\"cellPid\":0,\"cellPid\":1}\n",
		/* 12: a negative number */
		"\"cgroup\":\"\",\"cellPid\":-1,\"cellStart\":0}\n",
	};
	const bool corrupt[] = { false, false, true, true, true, false,
				 true,	false, true, true, true };

	ASSERT_OK(lease_acquire(f.state, IP(10, 41, 0, 0), 24, IP(10, 41, 0, 1), IP(10, 41, 0, 250),
				NULL, NULL, &l));
	if (!ASSERT_OK(lease_proc_start(getpid(), &me)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(tail); i++) {
		char name[32];

		snprintf(name, sizeof(name), "10.41.0.%zu", i + 2);
		snprintf(text, sizeof(text),
			 "{\"ip\":\"%s\",\"cellId\":\"c\",\"runId\":\"r%zu\",\"ownerPid\":%d,"
			 "\"ownerStart\":%llu,\"hostIf\":\"h\",\"bridge\":\"b\","
			 "\"bridgeCreated\":true,%s",
			 name, i + 2, (int)getpid(), me, tail[i]);
		ASSERT_TRUE(write_file(&f, name, text));
	}
	s = list_all(&f);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n, ARRAY_SIZE(tail) + 1))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(tail); i++) {
		if (!ASSERT_EQ(s->l[i].ip, IP(10, 41, 0, 2 + i)) ||
		    !ASSERT_EQ(s->l[i].corrupt, corrupt[i]))
			tap_diag("record %zu: %s", i + 2, tail[i]);
		if (corrupt[i])
			continue;
		ASSERT_EQ(s->l[i].owner_pid, getpid());
		ASSERT_EQ(s->l[i].owner_start, me);
		ASSERT_STREQ(s->l[i].host_if, "h");
		ASSERT_STREQ(s->l[i].bridge, "b");
		ASSERT_TRUE(s->l[i].bridge_created);
	}
	ASSERT_STREQ(s->l[5].cgroup, "/a\"b\xc3\xa9/c");
	ASSERT_EQ(s->l[5].cell_pid, 12);
	ASSERT_EQ(s->l[5].cell_start, 34);
	ASSERT_EQ(s->l[7].cell_start, 1234567890123456789ull);
	/* The writer's own form of every field comes back as written. */
	l = rec("round");
	snprintf(l.host_if, sizeof(l.host_if), "cr0a290002beef");
	snprintf(l.bridge, sizeof(l.bridge), "cbr0");
	snprintf(l.cgroup, sizeof(l.cgroup), "/sys/fs/cgroup/cellref/x y");
	l.cell_pid = 2147483647;
	l.cell_start = 9223372036854775807ull;
	ASSERT_OK(lease_acquire(f.state, IP(10, 41, 0, 0), 24, IP(10, 41, 0, 1), IP(10, 41, 0, 100),
				NULL, NULL, &l));
	free(s);
	s = list_all(&f);
	if (!ASSERT_TRUE(s) || !ASSERT_EQ(s->n, ARRAY_SIZE(tail) + 2))
		return;
	ASSERT_FALSE(s->l[ARRAY_SIZE(tail)].corrupt);
	ASSERT_STREQ(s->l[ARRAY_SIZE(tail)].cgroup, "/sys/fs/cgroup/cellref/x y");
	ASSERT_EQ(s->l[ARRAY_SIZE(tail)].cell_pid, 2147483647);
	ASSERT_EQ(s->l[ARRAY_SIZE(tail)].cell_start, 9223372036854775807ull);
	ASSERT_EQ(s->l[ARRAY_SIZE(tail)].owner_start, l.owner_start);
}

TEST(update_unchanged_is_not_rewritten)
{
	FIXTURE(f);
	struct lease l = rec("r"), u;
	struct stat a, b;
	char path[192];

	if (!ASSERT_OK(lease_acquire(f.state, IP(10, 42, 0, 0), 24, IP(10, 42, 0, 1), 0, NULL, NULL,
				     &l)))
		return;
	snprintf(path, sizeof(path), "%s/10.42.0.2", f.leases);
	if (!ASSERT_OK(stat(path, &a) < 0 ? -errno : 0))
		return;
	u = l;
	u.owner_pid = 0;
	ASSERT_OK(lease_update(f.state, &u));
	ASSERT_OK(stat(path, &b) < 0 ? -errno : 0);
	ASSERT_EQ(a.st_ino, b.st_ino);
	/* A change is written (a new file renamed over the old one). */
	u.cell_pid = 99;
	ASSERT_OK(lease_update(f.state, &u));
	ASSERT_OK(stat(path, &b) < 0 ? -errno : 0);
	ASSERT_NE(a.st_ino, b.st_ino);
}

/* --- the lock --- */

struct nest_ctx {
	const char *state;
	int calls, released, acquired;
};

/* Under lease_list(locked): calling back into the store must not wait for ourselves. */
static int nest_cb(void *ctx, const struct lease *l)
{
	struct nest_ctx *c = ctx;
	struct lease n = rec("nested");

	c->calls++;
	if (lease_release(c->state, l->ip, l->run_id) == 0)
		c->released++;
	if (lease_acquire(c->state, IP(10, 60, 1, 0), 24, 0, 0, NULL, NULL, &n) == 0)
		c->acquired++;
	return 0;
}

static int stop_cb(void *ctx, const struct lease *l)
{
	(*(int *)ctx)++;
	return -EINTR;
}

TEST(locked_list_is_reentrant_and_stoppable)
{
	FIXTURE(f);
	struct nest_ctx c = { .state = f.state };
	struct lease l;
	int calls = 0;

	for (int i = 0; i < 3; i++) {
		l = rec("r");
		ASSERT_OK(lease_acquire(f.state, IP(10, 60, 0, 0), 24, 0, 0, NULL, NULL, &l));
	}
	ASSERT_ERR(lease_list(f.state, true, stop_cb, &calls), -EINTR);
	ASSERT_EQ(calls, 1);
	/* A lease_list(locked) callback calls back into the store (a deadlock would time out). */
	ASSERT_EQ(lease_list(f.state, true, nest_cb, &c), 0);
	ASSERT_EQ(c.calls, 3);
	ASSERT_EQ(c.released, 3);
	ASSERT_EQ(c.acquired, 3);
	ASSERT_FALSE(lease_file_exists(&f, "10.60.0.1"));
	ASSERT_TRUE(lease_file_exists(&f, "10.60.1.3"));
}

struct block_ctx {
	int go, done;
	bool blocked;
};

static int block_cb(void *ctx, const struct lease *l)
{
	struct block_ctx *c = ctx;
	struct pollfd p = { .fd = c->done, .events = POLLIN };

	/* Let the other process try to allocate while we hold the lock. */
	if (write(c->go, "g", 1) != 1)
		return -EIO;
	c->blocked = poll(&p, 1, 300) == 0;
	return 0;
}

TEST(lock_excludes_other_processes)
{
	FIXTURE(f);
	CHILD(c);
	struct block_ctx bc;
	struct lease l = rec("r");
	int go[2], done[2], result = -1;
	struct pollfd p;

	ASSERT_OK(
		lease_acquire(f.state, IP(10, 61, 0, 0), 24, IP(10, 61, 0, 1), 0, NULL, NULL, &l));
	if (!ASSERT_OK(pipe2(go, O_CLOEXEC)) || !ASSERT_OK(pipe2(done, O_CLOEXEC)))
		return;
	/* Forked before the lock is taken: a child must never inherit the locked description. */
	fflush(stdout);
	c.pid = fork();
	if (c.pid == 0) {
		struct lease m = rec("other");
		char b;
		int r;

		if (read(go[0], &b, 1) != 1)
			_exit(2);
		r = lease_acquire(f.state, IP(10, 61, 0, 0), 24, IP(10, 61, 0, 1), 0, NULL, NULL,
				  &m);
		(void)util_write_all(done[1], &r, sizeof(r));
		_exit(0);
	}
	if (!ASSERT_GT(c.pid, 0))
		return;
	close(go[0]);
	close(done[1]);
	bc = (struct block_ctx){ .go = go[1], .done = done[0] };
	ASSERT_EQ(lease_list(f.state, true, block_cb, &bc), 0);
	ASSERT_TRUE(bc.blocked);
	p = (struct pollfd){ .fd = done[0], .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 10000), 1);
	ASSERT_EQ(util_read_full(done[0], &result, sizeof(result)), sizeof(result));
	ASSERT_EQ(result, 0);
	close(go[1]);
	close(done[0]);
	ASSERT_TRUE(lease_file_exists(&f, "10.61.0.3"));
}

enum { NPROC = 8, PER_PROC = 20 };

TEST_TIMEOUT(concurrent_processes_get_distinct_addresses, 120)
{
	FIXTURE(f);
	_cleanup_free_ struct seen *s = NULL;
	pid_t pids[NPROC] = { 0 };
	int start[2], hold[2], out[2];
	uint32_t got[NPROC * PER_PROC];
	uint8_t *hit;
	bool ok = true;

	if (!ASSERT_OK(pipe2(start, O_CLOEXEC)) || !ASSERT_OK(pipe2(hold, O_CLOEXEC)) ||
	    !ASSERT_OK(pipe2(out, O_CLOEXEC)))
		return;
	fflush(stdout);
	for (int k = 0; k < NPROC; k++) {
		pids[k] = fork();
		if (pids[k] < 0)
			break;
		if (pids[k] == 0) {
			char b, run[16];

			close(start[1]);
			close(hold[1]);
			close(out[0]);
			/* All start together when the parent closes the start pipe. */
			while (read(start[0], &b, 1) > 0)
				;
			snprintf(run, sizeof(run), "run-%d", k);
			for (int i = 0; i < PER_PROC; i++) {
				struct lease l = rec(run);
				uint32_t ip = 0;

				if (lease_acquire(f.state, IP(10, 70, 0, 0), 24, IP(10, 70, 0, 1),
						  0, NULL, NULL, &l) == 0)
					ip = l.ip;
				if (util_write_all(out[1], &ip, sizeof(ip)) < 0)
					_exit(2);
			}
			/* Owners stay alive until checked, or their leases would be stale. */
			while (read(hold[0], &b, 1) > 0)
				;
			_exit(0);
		}
	}
	close(start[0]);
	close(hold[0]);
	close(out[1]);
	close(start[1]);
	ok = ASSERT_EQ(util_read_full(out[0], got, sizeof(got)), sizeof(got));
	close(out[0]);

	hit = calloc(256, 1);
	for (size_t i = 0; ok && hit && i < ARRAY_SIZE(got); i++) {
		if (!ASSERT_EQ(got[i] & 0xffffff00u, IP(10, 70, 0, 0)) ||
		    !ASSERT_GE(got[i] & 255, 2) || !ASSERT_LE(got[i] & 255, 254) ||
		    !ASSERT_EQ(hit[got[i] & 255], 0)) {
			ok = false;
			break;
		}
		hit[got[i] & 255] = 1;
	}
	free(hit);
	/* The lowest 160 went out, each to one owner that is one of the children. */
	s = list_all(&f);
	if (ok && ASSERT_TRUE(s) && ASSERT_EQ(s->n, NPROC * PER_PROC)) {
		for (size_t i = 0; i < s->n; i++) {
			bool owner_ok = false;

			for (int k = 0; k < NPROC; k++)
				owner_ok |= s->l[i].owner_pid == pids[k];
			if (!ASSERT_EQ(s->l[i].ip, IP(10, 70, 0, 2 + i)) || !ASSERT_TRUE(owner_ok))
				break;
		}
	}

	close(hold[1]);
	for (int k = 0; k < NPROC; k++) {
		int status = 0;

		if (pids[k] > 0 && waitpid(pids[k], &status, 0) == pids[k])
			ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* All owners are gone now. */
	ASSERT_EQ(lease_reap(f.state, NULL, NULL), NPROC * PER_PROC);
	free(s);
	s = list_all(&f);
	if (ASSERT_TRUE(s))
		ASSERT_EQ(s->n, 0);
}

/* --- IPv6 leases (SUP-LEASE-008) --- */

static struct lease6 rec6(const char *run)
{
	struct lease6 l = { 0 };

	snprintf(l.run_id, sizeof(l.run_id), "%s", run);
	snprintf(l.cell_id, sizeof(l.cell_id), "cell-%s", run);
	return l;
}

static void ip6(const char *s, uint8_t out[16])
{
	if (inet_pton(AF_INET6, s, out) != 1)
		memset(out, 0, 16);
}

static bool file6_exists(const struct fixture *f, const char *ip)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/../leases6/%s", f->leases, ip);
	return access(path, F_OK) == 0;
}

static bool ip6_is(const uint8_t a[16], const char *want)
{
	char txt[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, a, txt, sizeof(txt));
	if (strcmp(txt, want) == 0)
		return true;
	tap_diag("got %s, want %s", txt, want);
	return false;
}

static bool in_use6(void *ctx, const uint8_t ip[16])
{
	return memcmp(ctx, ip, 16) == 0;
}

static int count6(void *ctx, const struct lease6 *l)
{
	(*(int *)ctx)++;
	return 0;
}

TEST(v6_allocation_exclusive_and_released)
{
	FIXTURE(f);
	uint8_t net[16], gw[16], want[16], used[16];
	struct lease6 a = rec6("r1"), b = rec6("r2"), c = rec6("r3");
	int n = 0;

	ip6("fd00:88::", net);
	ip6("fd00:88::1", gw);
	/* The lowest address above the subnet's own that is not the gateway: ::2, then ::3. */
	if (!ASSERT_OK(lease_acquire6(f.state, net, 64, gw, NULL, NULL, NULL, &a)))
		return;
	ASSERT_TRUE(ip6_is(a.ip, "fd00:88::2"));
	ASSERT_EQ(a.owner_pid, getpid());
	ASSERT_TRUE(file6_exists(&f, "fd00:88::2"));
	/* The IPv4 store is untouched: a separate namespace of files. */
	ASSERT_FALSE(lease_file_exists(&f, "fd00:88::2"));
	ip6("fd00:88::3", used);
	ASSERT_OK(lease_acquire6(f.state, net, 64, gw, NULL, in_use6, used, &b));
	ASSERT_TRUE(ip6_is(b.ip, "fd00:88::4")); /* ::3 is configured somewhere: skipped */
	/* Exclusive: a wanted address leased by a live owner, the gateway, or in use. */
	ASSERT_ERR(lease_acquire6(f.state, net, 64, gw, a.ip, NULL, NULL, &c), -EADDRINUSE);
	ASSERT_ERR(lease_acquire6(f.state, net, 64, gw, gw, NULL, NULL, &c), -EADDRINUSE);
	ASSERT_ERR(lease_acquire6(f.state, net, 64, gw, used, in_use6, used, &c), -EADDRINUSE);
	/* Outside the subnet, or the subnet's own address: not an address of it. */
	ip6("fd00:89::5", want);
	ASSERT_ERR(lease_acquire6(f.state, net, 64, gw, want, NULL, NULL, &c), -EINVAL);
	ASSERT_ERR(lease_acquire6(f.state, net, 64, gw, net, NULL, NULL, &c), -EINVAL);
	ip6("fd00:88::ffff:ffff:ffff:ffff", want);
	ASSERT_OK(lease_acquire6(f.state, net, 64, gw, want, NULL, NULL, &c));
	ASSERT_OK(lease_list6(f.state, true, count6, &n));
	ASSERT_EQ(n, 3);
	/* Released only by its run. */
	ASSERT_ERR(lease_release6(f.state, a.ip, "r2"), -EPERM);
	ASSERT_OK(lease_release6(f.state, a.ip, "r1"));
	ASSERT_FALSE(file6_exists(&f, "fd00:88::2"));
	ASSERT_ERR(lease_release6(f.state, a.ip, "r1"), -ENOENT);
	ASSERT_OK(lease_release6(f.state, b.ip, NULL));
	ASSERT_OK(lease_release6(f.state, c.ip, "r3"));
	n = 0;
	ASSERT_OK(lease_list6(f.state, false, count6, &n));
	ASSERT_EQ(n, 0);
}

TEST(v6_small_subnet_full)
{
	FIXTURE(f);
	uint8_t net[16], gw[16];
	struct lease6 l = rec6("r");

	/* /126: ::1 gateway, ::2 and ::3 to lease. */
	ip6("fd00:1::", net);
	ip6("fd00:1::1", gw);
	ASSERT_OK(lease_acquire6(f.state, net, 126, gw, NULL, NULL, NULL, &l));
	ASSERT_TRUE(ip6_is(l.ip, "fd00:1::2"));
	l = rec6("r");
	ASSERT_OK(lease_acquire6(f.state, net, 126, gw, NULL, NULL, NULL, &l));
	ASSERT_TRUE(ip6_is(l.ip, "fd00:1::3"));
	l = rec6("r");
	ASSERT_ERR(lease_acquire6(f.state, net, 126, gw, NULL, NULL, NULL, &l), -EADDRNOTAVAIL);
	ASSERT_ERR(lease_acquire6(f.state, net, 63, gw, NULL, NULL, NULL, &l), -EINVAL);
}

/* A crash leaves the record; its owner being gone makes it stale: taken over, and reaped. */
TEST(v6_stale_survives_crash_then_reaped)
{
	FIXTURE(f);
	CHILD(c);
	uint8_t net[16], gw[16];
	struct lease6 l = rec6("theirs");
	int n = 0;

	ip6("fd00:2::", net);
	ip6("fd00:2::1", gw);
	if (!ASSERT_TRUE(child_start(&c, NULL)))
		return;
	l.owner_pid = c.pid;
	l.owner_start = c.start;
	if (!ASSERT_OK(lease_acquire6(f.state, net, 64, gw, NULL, NULL, NULL, &l)))
		return;
	ASSERT_TRUE(ip6_is(l.ip, "fd00:2::2"));
	/* Live owner: the store holds it across calls, a new lease gets the next address. */
	l = rec6("mine");
	ASSERT_OK(lease_acquire6(f.state, net, 64, gw, NULL, NULL, NULL, &l));
	ASSERT_TRUE(ip6_is(l.ip, "fd00:2::3"));
	ASSERT_EQ(lease_reap6(f.state), 0);
	child_end(&c);
	/* Owner gone: the record is still on disk until reaped. */
	ASSERT_TRUE(file6_exists(&f, "fd00:2::2"));
	ASSERT_EQ(lease_reap6(f.state), 1);
	ASSERT_FALSE(file6_exists(&f, "fd00:2::2"));
	ASSERT_TRUE(file6_exists(&f, "fd00:2::3")); /* ours: we live */
	ASSERT_OK(lease_list6(f.state, true, count6, &n));
	ASSERT_EQ(n, 1);
	/* A missing store is nothing to reap. */
	ASSERT_EQ(lease_reap6("/nonexistent/cellcheck-lease6"), 0);
}
