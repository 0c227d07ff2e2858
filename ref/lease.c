// SPDX-License-Identifier: Apache-2.0
#include "lease.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fault.h"
#include "util.h"

#define LEASE_DIR	 "leases"
#define LEASE6_DIR	 "leases6"
#define LEASE_LOCK	 ".lock"
#define LEASE_TMP_PREFIX ".tmp-"
/* A record is a few hundred bytes; anything much bigger is not ours. */
#define LEASE_FILE_MAX 16384

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_closedir_ _cleanup_(closedirp)

/* --- processes --- */

static int proc_stat(pid_t pid, unsigned long long *ret_start, char *ret_state)
{
	_cleanup_close_ int fd = -1;
	char path[32], buf[2048], *p, *tok, *save = NULL;
	unsigned long long start;
	ssize_t n;
	char state;
	int r;

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = util_read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses of its own; only the last ')' ends it. */
	p = memrchr(buf, ')', (size_t)n);
	if (!p)
		return -EIO;
	p++;
	/* Tokens after comm start at field 3 (state); starttime is field 22. */
	tok = strtok_r(p, " \n", &save);
	if (!tok || strlen(tok) != 1)
		return -EIO;
	state = tok[0];
	for (int field = 4; field <= 22; field++) {
		tok = strtok_r(NULL, " \n", &save);
		if (!tok)
			return -EIO;
	}
	r = util_parse_u64(tok, 0, ULLONG_MAX, &start);
	if (r < 0)
		return -EIO;
	*ret_start = start;
	if (ret_state)
		*ret_state = state;
	return 0;
}

int lease_proc_start(pid_t pid, unsigned long long *ret)
{
	unsigned long long start;
	int r;

	if (!ret)
		return -EINVAL;
	r = proc_stat(pid, &start, NULL);
	if (r < 0)
		return r;
	*ret = start;
	return 0;
}

bool lease_proc_alive(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	char state;

	if (proc_stat(pid, &now, &state) < 0)
		return false;
	/* A zombie (or one being torn down) will never release its lease. */
	if (state == 'Z' || state == 'X' || state == 'x')
		return false;
	return now == start;
}

/* --- addresses and names --- */

static void ip_name(uint32_t ip, char buf[static INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	if (!inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN))
		buf[0] = '\0';
}

/* Only the canonical dotted quad names a lease, so one address has exactly one file name. */
static bool ip_parse(const char *s, void *ret)
{
	char canon[INET_ADDRSTRLEN];
	struct in_addr a;
	uint32_t ip;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	ip = ntohl(a.s_addr);
	ip_name(ip, canon);
	if (strcmp(canon, s) != 0)
		return false;
	memcpy(ret, &ip, sizeof(ip));
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void ip6_name(const void *ip, char buf[static INET6_ADDRSTRLEN])
{
	if (!inet_ntop(AF_INET6, ip, buf, INET6_ADDRSTRLEN))
		buf[0] = '\0';
}

/* Only the RFC 5952 text inet_ntop makes names a lease: one file name per address. */
static bool ip6_parse(const char *s, void *ret)
{
	char canon[INET6_ADDRSTRLEN];
	uint8_t a[16];

	if (!strchr(s, ':') || inet_pton(AF_INET6, s, a) != 1)
		return false;
	ip6_name(a, canon);
	if (strcmp(canon, s) != 0)
		return false;
	memcpy(ret, a, 16);
	return true;
}

static int cmp_ip6(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/*
 * What differs between the IPv4 store (leases/) and the IPv6 one (leases6/, SUP-LEASE-008), so
 * that the steps they share are written once. An address is a uint32_t in host order (IPv4) or
 * 16 bytes in network order (IPv6).
 */
union lease_any {
	struct lease v4;
	struct lease6 v6;
};

struct lease_family {
	const char *dir;
	size_t size; /* of one address */
	bool (*parse)(const char *name, void *ret);
	int (*cmp)(const void *a, const void *b);
	void (*name)(const void *ip, char buf[static INET6_ADDRSTRLEN]);
	int (*read)(int dfd, const void *ip, union lease_any *ret); /* as record_read */
	size_t run_id;						    /* its offset in the record */
};

static const struct lease_family fam4, fam6;

/* --- directory and lock --- */

/* Open <state>/<dir>, creating both 0700 when create. The fd, or -errno (-ENOENT: none yet). */
static int store_open(const char *state_dir, const char *dir, bool create)
{
	_cleanup_close_ int sfd = -1;
	int fd;

	if (!state_dir || !*state_dir)
		return -EINVAL;
	if (create && mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	if (create && mkdirat(sfd, dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(sfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	return fd;
}

static int leases_open(const char *state_dir, bool create)
{
	return store_open(state_dir, LEASE_DIR, create);
}

/*
 * f's directory (created when create), and in *ret_lockdir the directory whose .lock guards the
 * whole store (-1: the one returned). That is leases/, for IPv6 too, so a run takes both families
 * in one critical section; it is created whenever leases6 exists, so a store left with IPv6
 * records alone is still reaped.
 */
static int family_open(const char *state_dir, const struct lease_family *f, bool create,
		       int *ret_lockdir)
{
	_cleanup_close_ int fd = -1;
	int ldir = -1;

	fd = store_open(state_dir, f->dir, create);
	if (fd < 0)
		return fd;
	if (f != &fam4) {
		ldir = leases_open(state_dir, true);
		if (ldir < 0)
			return ldir;
	}
	*ret_lockdir = ldir;
	return TAKE_FD(fd);
}

/*
 * Which lock this thread holds, so that a callback run under the lock can call back into us:
 * a second flock() on a new open file description of the same file would wait for ourselves.
 * The pid tells a forked child that the lock it sees recorded is its parent's.
 */
static __thread struct {
	pid_t pid;
	dev_t dev;
	ino_t ino;
	unsigned int depth;
} lock_held;

struct lease_lock {
	int fd;
	bool tracked; /* counted in lock_held */
};

static void lock_dropp(struct lease_lock *l)
{
	if (l->fd < 0)
		return;
	if (l->tracked)
		lock_held.depth--;
	/* Closing the last fd of the description we flock()ed releases the lock. */
	util_closep(&l->fd);
	l->fd = -1;
}

static int lock_take(int dfd, struct lease_lock *ret)
{
	_cleanup_close_ int fd = -1;
	bool mine;
	struct stat st;

	fd = openat(dfd, LEASE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	mine = lock_held.depth > 0 && lock_held.pid == getpid();
	if (mine && lock_held.dev == st.st_dev && lock_held.ino == st.st_ino) {
		lock_held.depth++;
		*ret = (struct lease_lock){ .fd = TAKE_FD(fd), .tracked = true };
		return 0;
	}
	while (!FAULT("sup.lease_no_lock") && flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	ret->tracked = false;
	if (!mine) {
		lock_held.pid = getpid();
		lock_held.dev = st.st_dev;
		lock_held.ino = st.st_ino;
		lock_held.depth = 1;
		ret->tracked = true;
	}
	ret->fd = TAKE_FD(fd);
	return 0;
}

/*
 * The addresses that have a lease file, sorted (an array of f->size elements). With remove_tmp
 * (only under the lock, where no record is being written), temp files a crashed writer left are
 * removed on the way.
 */
static int dir_ips(int dfd, const struct lease_family *f, bool remove_tmp, void **ret,
		   size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ uint8_t *ips = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd;

	/* A description of our own: readdir moves the offset, and dfd is used by others. */
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int err = -errno;

		close(fd);
		return err;
	}
	for (;;) {
		uint32_t ip[4]; /* room for either family, aligned for IPv4 */

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				return -errno;
			break;
		}
		if (de->d_name[0] == '.') {
			if (remove_tmp &&
			    strncmp(de->d_name, LEASE_TMP_PREFIX, strlen(LEASE_TMP_PREFIX)) == 0)
				(void)unlinkat(dfd, de->d_name, 0);
			continue;
		}
		if (!f->parse(de->d_name, ip))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint8_t *p = reallocarray(ips, ncap, f->size);

			if (!p)
				return -ENOMEM;
			ips = p;
			cap = ncap;
		}
		memcpy(ips + n++ * f->size, ip, f->size);
	}
	if (n)
		qsort(ips, n, f->size, f->cmp);
	*ret = TAKE_PTR(ips);
	*ret_n = n;
	return 0;
}

/* --- records --- */

static bool str_fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

/* What we are willing to write: every string terminated in its buffer, a real owner. */
static int record_check(const struct lease *l)
{
	if (!str_fits(l->cell_id, sizeof(l->cell_id)) || !str_fits(l->run_id, sizeof(l->run_id)) ||
	    !str_fits(l->host_if, sizeof(l->host_if)) || !str_fits(l->bridge, sizeof(l->bridge)) ||
	    !str_fits(l->cgroup, sizeof(l->cgroup)))
		return -EINVAL;
	if (!l->run_id[0] || l->owner_pid <= 0 || l->cell_pid < 0)
		return -EINVAL;
	if (l->owner_start > LLONG_MAX || l->cell_start > LLONG_MAX)
		return -ERANGE;
	return 0;
}

/* Replace the record named name by o's text (o NULL: json_pack failed). Only under the lock. */
static int record_put(int dfd, const char *name, json_t *o)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	char tmp[sizeof(LEASE_TMP_PREFIX) + INET6_ADDRSTRLEN];
	int r;

	/* json_pack fails on strings that are not UTF-8: those are bad arguments, like OOM rarely.
	 */
	if (!o)
		return -EINVAL;
	text = json_dumps(o, JSON_COMPACT);
	if (!text)
		return -ENOMEM;

	/* One name per address is enough: records are only written under the lock, so whatever
	 * is at that name is a crashed writer's leftover. */
	snprintf(tmp, sizeof(tmp), LEASE_TMP_PREFIX "%s", name);
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = util_write_all(fd, text, strlen(text));
	if (r >= 0)
		r = util_write_all(fd, "\n", 1);
	/* tmpfs: no fsync; a close error still means the data did not make it. */
	if (r >= 0 && close(TAKE_FD(fd)) < 0)
		r = -errno;
	if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dfd, tmp, 0);
	return r;
}

static int record_write(int dfd, const struct lease *l)
{
	struct lease partial;
	json_auto_t *o = NULL;
	char name[INET_ADDRSTRLEN];

	ip_name(l->ip, name);
	if (FAULT("sup.lease_record_incomplete")) { /* the cell's PID, start and cgroup never */
		partial = *l;
		partial.cell_pid = 0;
		partial.cell_start = 0;
		partial.cgroup[0] = '\0';
		l = &partial;
	}
	o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:b, s:s, s:i, s:I}", "ip", name,
		      "cellId", l->cell_id, "runId", l->run_id, "ownerPid", (int)l->owner_pid,
		      "ownerStart", (json_int_t)l->owner_start, "hostIf", l->host_if, "bridge",
		      l->bridge, "bridgeCreated", (int)l->bridge_created, "cgroup", l->cgroup,
		      "cellPid", (int)l->cell_pid, "cellStart", (json_int_t)l->cell_start);
	return record_put(dfd, name, o);
}

static bool get_str(json_t *o, const char *key, bool required, char *dst, size_t size)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t len;

	dst[0] = '\0';
	if (!v)
		return !required;
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len >= size || memchr(s, '\0', len))
		return false;
	memcpy(dst, s, len + 1);
	return true;
}

static bool get_int(json_t *o, const char *key, bool required, long long min, long long max,
		    long long *ret)
{
	json_t *v = json_object_get(o, key);
	long long x;

	*ret = 0;
	if (!v)
		return !required;
	if (!json_is_integer(v))
		return false;
	x = json_integer_value(v);
	if (x < min || x > max)
		return false;
	*ret = x;
	return true;
}

/* Unknown members are ignored (newer writers); members we know must have the right type. */
static bool record_parse(json_t *o, uint32_t ip, struct lease *l)
{
	char ipstr[INET_ADDRSTRLEN + 1], name[INET_ADDRSTRLEN];
	long long owner_pid, owner_start, cell_pid, cell_start;
	json_t *bc;

	if (!json_is_object(o))
		return false;
	ip_name(ip, name);
	if (!get_str(o, "ip", true, ipstr, sizeof(ipstr)) || strcmp(ipstr, name) != 0)
		return false;
	if (!get_str(o, "runId", true, l->run_id, sizeof(l->run_id)) || !l->run_id[0])
		return false;
	if (!get_str(o, "cellId", false, l->cell_id, sizeof(l->cell_id)) ||
	    !get_str(o, "hostIf", false, l->host_if, sizeof(l->host_if)) ||
	    !get_str(o, "bridge", false, l->bridge, sizeof(l->bridge)) ||
	    !get_str(o, "cgroup", false, l->cgroup, sizeof(l->cgroup)))
		return false;
	if (!get_int(o, "ownerPid", true, 1, INT_MAX, &owner_pid) ||
	    !get_int(o, "ownerStart", true, 0, LLONG_MAX, &owner_start) ||
	    !get_int(o, "cellPid", false, 0, INT_MAX, &cell_pid) ||
	    !get_int(o, "cellStart", false, 0, LLONG_MAX, &cell_start))
		return false;
	bc = json_object_get(o, "bridgeCreated");
	if (bc && !json_is_boolean(bc))
		return false;
	l->bridge_created = bc && json_is_true(bc);
	l->owner_pid = (pid_t)owner_pid;
	l->owner_start = (unsigned long long)owner_start;
	l->cell_pid = (pid_t)cell_pid;
	l->cell_start = (unsigned long long)cell_start;
	return true;
}

/*
 * The text record_write makes, read without building a JSON tree: every run reads every record
 * (SUP-LEASE-004), so this is the hot path of a host with hundreds of cells. It takes only what
 * jansson's compact dump of record_write's object looks like, members in that order, strings of
 * printable ASCII without escapes, integers without sign, fraction or leading zero, and returns
 * false for anything else, which record_parse then judges: both give the same lease or the same
 * verdict for every text this one accepts.
 */
struct cursor {
	const char *p, *end;
};

static bool fast_lit(struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool fast_str(struct cursor *c, const char *key, char *dst, size_t size)
{
	const char *s, *q;

	if (!fast_lit(c, key) || c->p == c->end || *c->p != '"')
		return false;
	s = q = c->p + 1;
	while (q < c->end && *q != '"') {
		unsigned char ch = (unsigned char)*q;

		if (ch < 0x20 || ch > 0x7e || ch == '\\')
			return false;
		q++;
	}
	if (q == c->end || (size_t)(q - s) >= size)
		return false;
	memcpy(dst, s, (size_t)(q - s));
	dst[q - s] = '\0';
	c->p = q + 1;
	return true;
}

static bool fast_int(struct cursor *c, const char *key, long long max, long long *ret)
{
	long long x = 0;
	int digits = 0;

	if (!fast_lit(c, key))
		return false;
	/* 18 digits cannot overflow; a longer number is left to jansson. */
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && digits < 18) {
		if (digits == 1 && x == 0)
			return false; /* a leading zero */
		x = x * 10 + (*c->p++ - '0');
		digits++;
	}
	if (!digits || x > max || (c->p < c->end && *c->p >= '0' && *c->p <= '9'))
		return false;
	*ret = x;
	return true;
}

static bool record_parse_fast(const char *buf, size_t n, uint32_t ip, struct lease *l)
{
	struct cursor c = { .p = buf, .end = buf + n };
	char ipstr[INET_ADDRSTRLEN + 1], name[INET_ADDRSTRLEN];
	long long owner_pid, owner_start, cell_pid, cell_start;
	bool bc;

	ip_name(ip, name);
	if (!fast_str(&c, "{\"ip\":", ipstr, sizeof(ipstr)) || strcmp(ipstr, name) != 0 ||
	    !fast_str(&c, ",\"cellId\":", l->cell_id, sizeof(l->cell_id)) ||
	    !fast_str(&c, ",\"runId\":", l->run_id, sizeof(l->run_id)) || !l->run_id[0] ||
	    !fast_int(&c, ",\"ownerPid\":", INT_MAX, &owner_pid) || owner_pid < 1 ||
	    !fast_int(&c, ",\"ownerStart\":", LLONG_MAX, &owner_start) ||
	    !fast_str(&c, ",\"hostIf\":", l->host_if, sizeof(l->host_if)) ||
	    !fast_str(&c, ",\"bridge\":", l->bridge, sizeof(l->bridge)))
		return false;
	if (fast_lit(&c, ",\"bridgeCreated\":true"))
		bc = true;
	else if (fast_lit(&c, ",\"bridgeCreated\":false"))
		bc = false;
	else
		return false;
	if (!fast_str(&c, ",\"cgroup\":", l->cgroup, sizeof(l->cgroup)) ||
	    !fast_int(&c, ",\"cellPid\":", INT_MAX, &cell_pid) ||
	    !fast_int(&c, ",\"cellStart\":", LLONG_MAX, &cell_start) || !fast_lit(&c, "}"))
		return false;
	/* jansson takes any whitespace after the object; the writer puts one newline. */
	if (c.p != c.end && !(c.end - c.p == 1 && *c.p == '\n'))
		return false;
	l->bridge_created = bc;
	l->owner_pid = (pid_t)owner_pid;
	l->owner_start = (unsigned long long)owner_start;
	l->cell_pid = (pid_t)cell_pid;
	l->cell_start = (unsigned long long)cell_start;
	return true;
}

/*
 * The text of the record named name into buf (LEASE_FILE_MAX + 1 bytes): its length; -ENOENT when
 * there is none; -EBADMSG when what is there is no record (not a regular file, too big); another
 * -errno when it could not be read.
 */
static ssize_t record_load(int dfd, const char *name, char *buf)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	/* O_NONBLOCK: a fifo planted under an address name must not hang us. */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > LEASE_FILE_MAX)
		return -EBADMSG;
	n = util_read_full(fd, buf, LEASE_FILE_MAX + 1);
	if (n < 0)
		return n;
	if (n > LEASE_FILE_MAX)
		return -EBADMSG;
	return n;
}

/*
 * Read the record of ip. 0; -ENOENT when there is none; -EBADMSG when it is corrupt (*ret then
 * holds only the ip and corrupt = true); another -errno when it could not be read.
 */
static int record_read(int dfd, uint32_t ip, struct lease *ret)
{
	json_auto_t *o = NULL;
	char name[INET_ADDRSTRLEN], buf[LEASE_FILE_MAX + 1];
	struct lease l = { .ip = ip };
	ssize_t n;

	ip_name(ip, name);
	*ret = (struct lease){ .ip = ip, .corrupt = true };
	n = record_load(dfd, name, buf);
	if (n < 0)
		return (int)n;
	if (!record_parse_fast(buf, (size_t)n, ip, &l)) {
		l = (struct lease){ .ip = ip };
		o = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
		if (!o || !record_parse(o, ip, &l))
			return -EBADMSG;
	}
	*ret = l;
	return 0;
}

static bool owner_alive(const struct lease *l)
{
	/* The fault takes any process with the owner's PID for the owner (PID reuse ignored). */
	if (FAULT("sup.lease_owner_pid_only"))
		return l->owner_pid > 0 && kill(l->owner_pid, 0) == 0;
	return lease_proc_alive(l->owner_pid, l->owner_start);
}

/* 1 when ip may be leased (no record, or a stale one), 0 when it is taken, or -errno. */
static int slot_free(int dfd, uint32_t ip)
{
	struct lease cur;
	int r;

	r = record_read(dfd, ip, &cur);
	if (r == -ENOENT)
		return 1;
	/* A corrupt record names no owner we could check: keep off it. */
	if (r == -EBADMSG)
		return 0;
	if (r < 0)
		return r;
	return !owner_alive(&cur);
}

/* --- one scan under the lock --- */

/* What a scan found at one address: slot_free's answer (1 free, 0 taken, or -errno). */
struct slot {
	uint32_t ip;
	int free;
};

struct scan {
	struct slot *slots; /* sorted by ip */
	size_t n;
	int removed, first_err;
	bool called; /* a reap callback ran: it may have changed the store */
};

static void scan_done(struct scan *s)
{
	free(s->slots);
}

/*
 * Under the lock: read every record once and judge its owner once. With reap, every stale lease
 * is handed to fn (may be NULL) and removed unless fn fails (lease_reap's contract); without,
 * stale leases stay and their addresses count as free (lease_acquire takes them over).
 */
static int scan_records(int dfd, bool reap, int (*fn)(void *ctx, const struct lease *l), void *ctx,
			struct scan *ret)
{
	_cleanup_free_ void *list = NULL;
	const uint32_t *ips;
	size_t n = 0;
	int r;

	*ret = (struct scan){ 0 };
	/* Under the lock no record is being written: temp files are a crashed writer's. */
	r = dir_ips(dfd, &fam4, true, &list, &n);
	if (r < 0)
		return r;
	ips = list;
	ret->slots = calloc(n ? n : 1, sizeof(*ret->slots));
	if (!ret->slots)
		return -ENOMEM;
	ret->n = n;
	for (size_t i = 0; i < n; i++) {
		struct slot *sl = &ret->slots[i];
		char name[INET_ADDRSTRLEN];
		struct lease l;

		sl->ip = ips[i];
		r = record_read(dfd, ips[i], &l);
		if (r == -ENOENT) { /* a callback released it */
			sl->free = 1;
			continue;
		}
		if (r == -EBADMSG) {
			/* Its owner is unknown: kept, and kept off. The fault takes it for stale.
			 */
			sl->free = 0;
			if (reap && FAULT("sup.cleanup_removes_corrupt")) {
				ip_name(ips[i], name);
				(void)unlinkat(dfd, name, 0);
				sl->free = 1;
			}
			continue;
		}
		if (r < 0) {
			sl->free = r;
			continue;
		}
		sl->free = !owner_alive(&l);
		if (!sl->free || !reap)
			continue;
		if (fn) {
			ret->called = true;
			r = fn(ctx, &l);
			if (r < 0) {
				/* Its leftovers are still there: the lease stays (still stale). */
				if (!ret->first_err)
					ret->first_err = r;
				continue;
			}
		}
		ip_name(ips[i], name);
		/* ENOENT: the callback released it itself. */
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
			if (!ret->first_err)
				ret->first_err = -errno;
			continue;
		}
		ret->removed++;
	}
	return 0;
}

/* What the scan knew of ip (1 when it had no record); a callback may have changed it since. */
static int scan_free(int dfd, const struct scan *s, uint32_t ip)
{
	size_t lo = 0, hi = s->n;

	if (s->called)
		return slot_free(dfd, ip);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->slots[mid].ip == ip)
			return s->slots[mid].free;
		if (s->slots[mid].ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 1;
}

/* The subnet being handed out, and who else may hold an address in it. */
struct lease_pool {
	uint32_t net, bcast, gateway;
	unsigned int prefixlen;
	bool (*in_use)(void *ctx, uint32_t ip);
	void *ctx;
};

/* The owner of a record the caller left blank is the calling process; its start is looked up. */
static int owner_prepare(pid_t *pid, unsigned long long *start)
{
	if (*pid == 0) {
		*pid = getpid();
		*start = 0;
	}
	if (*start == 0)
		return lease_proc_start(*pid, start);
	return 0;
}

/* Fills in the owner of a record the caller left partly blank, then checks it. */
static int record_prepare(struct lease *l)
{
	int r;

	l->corrupt = false;
	r = owner_prepare(&l->owner_pid, &l->owner_start);
	if (r < 0)
		return r;
	return record_check(l);
}

static int pick_wanted(int dfd, const struct scan *sc, const struct lease_pool *p, uint32_t want)
{
	int r;

	if (want == p->gateway)
		return -EADDRINUSE;
	/* sup.lease_want_ignores_leases: only the host's addresses count, not the leases */
	if (FAULT("sup.lease_want_ignores_leases"))
		r = 1;
	else
		r = scan_free(dfd, sc, want);
	if (r < 0)
		return r;
	if (r == 0 || (p->in_use && p->in_use(p->ctx, want)))
		return -EADDRINUSE;
	return 0;
}

/* The lowest address neither leased, nor the gateway, nor in use on the host. */
static int pick_free(int dfd, const struct scan *sc, const struct lease_pool *p, uint32_t *ret_ip)
{
	int r;

	/* /31 and /32 have no address besides network and broadcast by this rule. */
	if (p->prefixlen > 30)
		return -EADDRNOTAVAIL;
	for (uint32_t h = p->net + 1; h < p->bcast; h++) {
		if (h == p->gateway)
			continue;
		/* sup.lease_ignores_leases: only the host's addresses count, not the leases
		 */
		if (!FAULT("sup.lease_ignores_leases")) {
			r = scan_free(dfd, sc, h);
			if (r < 0)
				return r;
			if (r == 0)
				continue;
		}
		if (p->in_use && p->in_use(p->ctx, h))
			continue;
		*ret_ip = h;
		return 0;
	}
	/* sup.lease_pool_overcommit: a full pool hands out its last address again */
	if (FAULT("sup.lease_pool_overcommit") && p->bcast - 1 != p->gateway &&
	    p->bcast - 1 > p->net) {
		*ret_ip = p->bcast - 1;
		return 0;
	}
	return -EADDRNOTAVAIL;
}

/* --- API --- */

int lease_acquire_reaped(const char *state_dir, uint32_t subnet, unsigned int prefixlen,
			 uint32_t gateway, uint32_t want, bool (*in_use)(void *ctx, uint32_t ip),
			 void *ctx, struct lease_reaper *reap, struct lease *rec)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_(scan_done) struct scan sc = { 0 };
	_cleanup_close_ int dfd = -1;
	struct lease_pool p = {
		.gateway = gateway, .prefixlen = prefixlen, .in_use = in_use, .ctx = ctx
	};
	uint32_t mask;
	struct lease l;
	int r;

	if (!state_dir || !rec || prefixlen > 32)
		return -EINVAL;
	mask = prefixlen ? ~0u << (32 - prefixlen) : 0;
	p.net = subnet & mask;
	p.bcast = p.net | ~mask;

	l = *rec;
	r = record_prepare(&l);
	if (r < 0)
		return r;
	if (want &&
	    ((want & mask) != p.net || (prefixlen <= 30 && (want == p.net || want == p.bcast))))
		return -EINVAL;

	dfd = leases_open(state_dir, true);
	if (dfd < 0)
		return dfd;
	r = lock_take(dfd, &lk);
	if (r < 0)
		return r;
	/*
	 * One read of the records serves both the reaping and the choice (SUP-LEASE-004, 007):
	 * every run reads every record, so a second pass would double the work done under the
	 * lock that every starting run waits for.
	 */
	r = scan_records(dfd, reap && !FAULT("sup.lease_no_reap"), reap ? reap->fn : NULL,
			 reap ? reap->ctx : NULL, &sc);
	if (r < 0)
		return r;
	if (reap)
		reap->result = sc.first_err ? sc.first_err : sc.removed;

	if (want) {
		r = pick_wanted(dfd, &sc, &p, want);
		l.ip = want;
	} else {
		r = pick_free(dfd, &sc, &p, &l.ip);
	}
	if (r < 0)
		return r;

	r = record_write(dfd, &l);
	if (r < 0)
		return r;
	*rec = l;
	return 0;
}

int lease_acquire(const char *state_dir, uint32_t subnet, unsigned int prefixlen, uint32_t gateway,
		  uint32_t want, bool (*in_use)(void *ctx, uint32_t ip), void *ctx,
		  struct lease *rec)
{
	return lease_acquire_reaped(state_dir, subnet, prefixlen, gateway, want, in_use, ctx, NULL,
				    rec);
}

static bool lease_same(const struct lease *a, const struct lease *b)
{
	return a->ip == b->ip && strcmp(a->cell_id, b->cell_id) == 0 &&
	       strcmp(a->run_id, b->run_id) == 0 && a->owner_pid == b->owner_pid &&
	       a->owner_start == b->owner_start && a->cell_pid == b->cell_pid &&
	       a->cell_start == b->cell_start && strcmp(a->host_if, b->host_if) == 0 &&
	       strcmp(a->bridge, b->bridge) == 0 && a->bridge_created == b->bridge_created &&
	       strcmp(a->cgroup, b->cgroup) == 0;
}

int lease_update(const char *state_dir, const struct lease *rec)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_close_ int dfd = -1;
	struct lease cur, l;
	int r;

	if (!state_dir || !rec)
		return -EINVAL;
	l = *rec;
	l.corrupt = false;
	dfd = leases_open(state_dir, false);
	if (dfd < 0)
		return dfd;
	r = lock_take(dfd, &lk);
	if (r < 0)
		return r;
	r = record_read(dfd, l.ip, &cur);
	if (r < 0)
		return r;
	if (!str_fits(l.run_id, sizeof(l.run_id)) || strcmp(cur.run_id, l.run_id) != 0)
		return -EPERM;
	/* The owner does not change by an update; let callers leave it out. */
	if (l.owner_pid == 0) {
		l.owner_pid = cur.owner_pid;
		l.owner_start = cur.owner_start;
	}
	r = record_check(&l);
	if (r < 0)
		return r;
	/* Nothing new (the setup steps update after each step that may add something). */
	if (lease_same(&l, &cur))
		return 0;
	return record_write(dfd, &l);
}

/* lease_release and lease_release6: remove the record of ip if run_id (NULL: any) owns it. */
static int store_release(const char *state_dir, const struct lease_family *f, const void *ip,
			 const char *run_id)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_close_ int dfd = -1, ldir = -1;
	char name[INET6_ADDRSTRLEN];
	union lease_any cur;
	int r;

	dfd = family_open(state_dir, f, false, &ldir);
	if (dfd < 0)
		return dfd;
	r = lock_take(ldir >= 0 ? ldir : dfd, &lk);
	if (r < 0)
		return r;
	r = f->read(dfd, ip, &cur);
	if (r == -ENOENT)
		return r;
	if (run_id && !(f == &fam4 && FAULT("sup.lease_release_any"))) {
		if (r < 0)
			return r;
		if (strcmp((const char *)&cur + f->run_id, run_id) != 0)
			return -EPERM;
	}
	f->name(ip, name);
	if (unlinkat(dfd, name, 0) < 0)
		return -errno;
	return 0;
}

int lease_release(const char *state_dir, uint32_t ip, const char *run_id)
{
	if (!state_dir)
		return -EINVAL;
	return store_release(state_dir, &fam4, &ip, run_id);
}

/* lease_list and lease_list6: one of fn4 and fn6 is called for each record. */
static int store_list(const char *state_dir, const struct lease_family *f, bool locked,
		      int (*fn4)(void *ctx, const struct lease *l),
		      int (*fn6)(void *ctx, const struct lease6 *l), void *ctx)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_close_ int dfd = -1, ldir = -1;
	_cleanup_free_ void *list = NULL;
	const uint8_t *ips;
	size_t n = 0;
	int r;

	dfd = family_open(state_dir, f, false, &ldir);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	if (locked) {
		r = lock_take(ldir >= 0 ? ldir : dfd, &lk);
		if (r < 0)
			return r;
	}
	r = dir_ips(dfd, f, false, &list, &n);
	if (r < 0)
		return r;
	ips = list;
	for (size_t i = 0; i < n; i++) {
		union lease_any l;

		r = f->read(dfd, ips + i * f->size, &l);
		/* Unlocked, a lease may go between readdir and open. */
		if (r == -ENOENT)
			continue;
		/* Anything unreadable is reported, never fatal to the walk (r < 0: l.corrupt). */
		r = fn4 ? fn4(ctx, &l.v4) : fn6(ctx, &l.v6);
		if (r < 0)
			return r;
	}
	return 0;
}

int lease_list(const char *state_dir, bool locked, int (*fn)(void *ctx, const struct lease *l),
	       void *ctx)
{
	if (!state_dir || !fn)
		return -EINVAL;
	return store_list(state_dir, &fam4, locked, fn, NULL, ctx);
}

int lease_reap(const char *state_dir, int (*fn)(void *ctx, const struct lease *l), void *ctx)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_(scan_done) struct scan sc = { 0 };
	_cleanup_close_ int dfd = -1;
	int r;

	if (!state_dir)
		return -EINVAL;
	if (FAULT("sup.lease_no_reap")) /* stale leases and what they name stay */
		return 0;
	dfd = leases_open(state_dir, false);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	r = lock_take(dfd, &lk);
	if (r < 0)
		return r;
	r = scan_records(dfd, true, fn, ctx, &sc);
	if (r < 0)
		return r;
	return sc.first_err ? sc.first_err : sc.removed;
}

/* --- IPv6 leases (SUP-LEASE-008) --- */

static int record6_write(int dfd, const struct lease6 *l)
{
	json_auto_t *o = NULL;
	char name[INET6_ADDRSTRLEN];

	ip6_name(l->ip, name);
	o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "ip", name, "cellId", l->cell_id, "runId",
		      l->run_id, "ownerPid", (int)l->owner_pid, "ownerStart",
		      (json_int_t)l->owner_start);
	return record_put(dfd, name, o);
}

/* As record_read: 0, -ENOENT, -EBADMSG (*ret: ip and corrupt only) or another -errno. */
static int record6_read(int dfd, const uint8_t ip[16], struct lease6 *ret)
{
	json_auto_t *o = NULL;
	char name[INET6_ADDRSTRLEN], ipstr[INET6_ADDRSTRLEN + 1], buf[LEASE_FILE_MAX + 1];
	long long owner_pid, owner_start;
	struct lease6 l = { 0 };
	ssize_t n;

	memcpy(l.ip, ip, 16);
	*ret = l;
	ret->corrupt = true;
	ip6_name(ip, name);
	n = record_load(dfd, name, buf);
	if (n < 0)
		return (int)n;
	o = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	if (!o || !json_is_object(o) || !get_str(o, "ip", true, ipstr, sizeof(ipstr)) ||
	    strcmp(ipstr, name) != 0 || !get_str(o, "runId", true, l.run_id, sizeof(l.run_id)) ||
	    !l.run_id[0] || !get_str(o, "cellId", false, l.cell_id, sizeof(l.cell_id)) ||
	    !get_int(o, "ownerPid", true, 1, INT_MAX, &owner_pid) ||
	    !get_int(o, "ownerStart", true, 0, LLONG_MAX, &owner_start))
		return -EBADMSG;
	l.owner_pid = (pid_t)owner_pid;
	l.owner_start = (unsigned long long)owner_start;
	*ret = l;
	return 0;
}

static void name4(const void *ip, char buf[static INET6_ADDRSTRLEN])
{
	uint32_t v;

	memcpy(&v, ip, sizeof(v));
	ip_name(v, buf);
}

static int read4(int dfd, const void *ip, union lease_any *ret)
{
	uint32_t v;

	memcpy(&v, ip, sizeof(v));
	return record_read(dfd, v, &ret->v4);
}

static int read6(int dfd, const void *ip, union lease_any *ret)
{
	return record6_read(dfd, ip, &ret->v6);
}

static const struct lease_family fam4 = {
	.dir = LEASE_DIR,
	.size = sizeof(uint32_t),
	.parse = ip_parse,
	.cmp = cmp_u32,
	.name = name4,
	.read = read4,
	.run_id = offsetof(struct lease, run_id),
};

static const struct lease_family fam6 = {
	.dir = LEASE6_DIR,
	.size = 16,
	.parse = ip6_parse,
	.cmp = cmp_ip6,
	.name = ip6_name,
	.read = read6,
	.run_id = offsetof(struct lease6, run_id),
};

/* Under the lock: drop stale records; *ret the live (or corrupt, so kept off) addresses. */
static int scan6(int dfd, uint8_t (**ret)[16], size_t *ret_n, int *ret_removed)
{
	_cleanup_free_ void *list = NULL;
	uint8_t(*ips)[16];
	size_t n = 0, kept = 0;
	int r, removed = 0;

	r = dir_ips(dfd, &fam6, true, &list, &n);
	if (r < 0)
		return r;
	ips = list;
	for (size_t i = 0; i < n; i++) {
		char name[INET6_ADDRSTRLEN];
		struct lease6 l;

		r = record6_read(dfd, ips[i], &l);
		if (r == -ENOENT)
			continue;
		if (r == 0 && !lease_proc_alive(l.owner_pid, l.owner_start)) {
			ip6_name(ips[i], name);
			if (unlinkat(dfd, name, 0) == 0) {
				removed++;
				continue;
			}
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		/* Live, corrupt (owner unknown) or unreadable: taken. */
		memmove(ips[kept++], ips[i], 16);
	}
	*ret = TAKE_PTR(list);
	*ret_n = kept;
	if (ret_removed)
		*ret_removed = removed;
	return 0;
}

static bool ip6_taken(uint8_t (*ips)[16], size_t n, const uint8_t ip[16])
{
	return n && bsearch(ip, ips, n, 16, cmp_ip6);
}

/* ip + 1 as a 128-bit big-endian number; false when it wrapped. */
static bool ip6_inc(uint8_t ip[16])
{
	for (int i = 15; i >= 0; i--)
		if (++ip[i] != 0)
			return true;
	return false;
}

static void ip6_mask(const uint8_t ip[16], unsigned int plen, uint8_t ret[16])
{
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;

		ret[i] = ip[i] & (uint8_t)(0xff00 >> bits);
	}
}

int lease_acquire6(const char *state_dir, const uint8_t subnet[16], unsigned int prefixlen,
		   const uint8_t gateway[16], const uint8_t *want,
		   bool (*in_use)(void *ctx, const uint8_t ip[16]), void *ctx, struct lease6 *rec)
{
	static const uint8_t zero[16];
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_close_ int dfd = -1, ldir = -1;
	_cleanup_free_ uint8_t(*taken)[16] = NULL;
	uint8_t net[16], h[16], m[16];
	size_t ntaken = 0;
	struct lease6 l;
	int r;

	if (!state_dir || !rec || !subnet || !gateway || prefixlen < 64 || prefixlen > 128)
		return -EINVAL;
	ip6_mask(subnet, prefixlen, net);
	if (want && memcmp(want, zero, 16) == 0)
		want = NULL;
	l = *rec;
	l.corrupt = false;
	r = owner_prepare(&l.owner_pid, &l.owner_start);
	if (r < 0)
		return r;
	if (!str_fits(l.cell_id, sizeof(l.cell_id)) || !str_fits(l.run_id, sizeof(l.run_id)) ||
	    !l.run_id[0] || l.owner_pid <= 0)
		return -EINVAL;
	if (want) {
		ip6_mask(want, prefixlen, m);
		if (memcmp(m, net, 16) != 0 || memcmp(want, net, 16) == 0)
			return -EINVAL;
	}

	dfd = family_open(state_dir, &fam6, true, &ldir);
	if (dfd < 0)
		return dfd;
	r = lock_take(ldir, &lk);
	if (r < 0)
		return r;
	r = scan6(dfd, &taken, &ntaken, NULL);
	if (r < 0)
		return r;
	if (want) {
		if (memcmp(want, gateway, 16) == 0)
			return -EADDRINUSE;
		/* sup.lease6_ignores_leases: only the host's addresses count, not the leases */
		if ((!FAULT("sup.lease6_ignores_leases") && ip6_taken(taken, ntaken, want)) ||
		    (in_use && in_use(ctx, want)))
			return -EADDRINUSE;
		memcpy(l.ip, want, 16);
	} else {
		bool found = false;

		/* At most ntaken + 2 candidates are ever looked at: the search ends early. */
		memcpy(h, net, 16);
		while (ip6_inc(h)) {
			ip6_mask(h, prefixlen, m);
			if (memcmp(m, net, 16) != 0)
				break; /* past the subnet's last address */
			if (memcmp(h, gateway, 16) == 0 ||
			    (!FAULT("sup.lease6_ignores_leases") && ip6_taken(taken, ntaken, h)) ||
			    (in_use && in_use(ctx, h)))
				continue;
			memcpy(l.ip, h, 16);
			found = true;
			break;
		}
		if (!found)
			return -EADDRNOTAVAIL;
	}
	r = record6_write(dfd, &l);
	if (r < 0)
		return r;
	*rec = l;
	return 0;
}

int lease_release6(const char *state_dir, const uint8_t ip[16], const char *run_id)
{
	if (!state_dir || !ip)
		return -EINVAL;
	if (FAULT("sup.lease6_kept")) /* the IPv6 lease outlives its run */
		return 0;
	return store_release(state_dir, &fam6, ip, run_id);
}

int lease_list6(const char *state_dir, bool locked, int (*fn)(void *ctx, const struct lease6 *l),
		void *ctx)
{
	if (!state_dir || !fn)
		return -EINVAL;
	return store_list(state_dir, &fam6, locked, NULL, fn, ctx);
}

int lease_reap6(const char *state_dir)
{
	_cleanup_(lock_dropp) struct lease_lock lk = { .fd = -1 };
	_cleanup_close_ int dfd = -1, ldir = -1;
	_cleanup_free_ uint8_t(*ips)[16] = NULL;
	size_t n = 0;
	int r, removed = 0;

	if (!state_dir)
		return -EINVAL;
	dfd = family_open(state_dir, &fam6, false, &ldir);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	r = lock_take(ldir, &lk);
	if (r < 0)
		return r;
	r = scan6(dfd, &ips, &n, &removed);
	return r < 0 ? r : removed;
}
