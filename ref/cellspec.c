// SPDX-License-Identifier: Apache-2.0
/*
 * The cell spec parser and validator (cellspec.h). One pass over the jansson tree in the order of
 * the format; each member is checked where it is read, and a rule that spans members is checked
 * once both are known. Every object's members are checked against its known names first, so a
 * typo is reported as such rather than as a missing member. Messages are "PATH: what is wrong"
 * with ", got VALUE" where a value was wrong; error paths never allocate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cellspec.h"
#include "dnspol.h"
#include "fault.h"
#include "util.h"

_Static_assert(CAP_LAST_CAP < 64, "cap_keep is a 64-bit set");

#define DESC_MAX       64		  /* a value quoted in a message, truncated */
#define UID_MAX_VALID  4294967294u	  /* (uid_t)-1 is "no id" for the kernel */
#define IDMAP_MAX      340		  /* entries the kernel accepts in uid_map since 4.15 */
#define PIDS_MAX_LIMIT 4194304		  /* pids.max refuses values above PID_MAX_LIMIT */
#define CPU_QUOTA_MIN  1000ull		  /* cpu.max: 1 ms minimum quota and period */
#define CPU_QUOTA_MAX  ((1ull << 44) - 1) /* max_cfs_runtime in microseconds */
#define CPU_PERIOD_MAX 1000000ull

struct ctx {
	char *err;
	size_t errlen;
	char path[256];
	size_t plen;
};

/* s quoted JSON-style into buf (at most DESC_MAX), cut with "..." between characters. */
static const char *quote(const char *s, char buf[DESC_MAX])
{
	size_t o = 0;

	buf[o++] = '"';
	while (*s) {
		unsigned char ch = (unsigned char)*s;
		char tmp[8];
		size_t n, used = 1;

		if (ch == '"' || ch == '\\') {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", ch);
		} else if (ch < 0x20 || ch == 0x7f) {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
		} else {
			/* A whole UTF-8 sequence at once (jansson strings are valid UTF-8). */
			used = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
			for (n = 0; n < used && s[n]; n++)
				tmp[n] = s[n];
			used = n;
		}
		/* Keep room for "...", the closing quote and the NUL. */
		if (o + n + 5 > DESC_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, n);
		o += n;
		s += used;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* A JSON value as a message shows it: scalars as written (strings quoted), containers by kind. */
static const char *describe(const json_t *v, char buf[DESC_MAX])
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return quote(json_string_value(v), buf);
	case JSON_INTEGER:
		snprintf(buf, DESC_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL: {
		double x = json_real_value(v), ax = x < 0 ? -x : x;

		/* The shortest text that reads back the same; fixed-point with a decimal point in
		 * the usual range, so 1500.0 shows as "1500.0" rather than "1500" or "1.5e+03". */
		if (x == 0 || (ax >= 1e-4 && ax < 1e15)) {
			for (int prec = 1; prec <= 20; prec++) {
				snprintf(buf, DESC_MAX, "%.*f", prec, x);
				if (strtod(buf, NULL) == x)
					break;
			}
			return buf;
		}
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, DESC_MAX, "%.*g", prec, x);
			if (strtod(buf, NULL) == x)
				break;
		}
		return buf;
	}
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

static bool simple_key(const char *k)
{
	size_t i;

	for (i = 0; k[i]; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '-'))
			return false;
	return i > 0 && i < DESC_MAX - 8;
}

static size_t push(struct ctx *c, const char *key)
{
	size_t old = c->plen, room = sizeof(c->path) - old;
	char q[DESC_MAX];
	int n;

	n = snprintf(c->path + old, room, "%s%s", old ? "." : "",
		     simple_key(key) ? key : quote(key, q));
	if (n > 0)
		c->plen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

static size_t push_index(struct ctx *c, size_t i)
{
	size_t old = c->plen, room = sizeof(c->path) - old;
	int n = snprintf(c->path + old, room, "[%zu]", i);

	if (n > 0)
		c->plen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

static void pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

__attribute__((format(printf, 2, 0))) static int vfail(struct ctx *c, const char *fmt, va_list ap)
{
	int n = 0;

	if (!c->errlen)
		return -EINVAL;
	if (c->plen)
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	return -EINVAL;
}

/* Message about the current path; -EINVAL. */
__attribute__((format(printf, 2, 3))) static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(c, fmt, ap);
	va_end(ap);
	return r;
}

/* Message about member key of the current path; -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail_key(struct ctx *c, const char *key,
							  const char *fmt, ...)
{
	size_t m = push(c, key);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(c, fmt, ap);
	va_end(ap);
	pop(c, m);
	return r;
}

static int oom(struct ctx *c)
{
	if (c->errlen)
		snprintf(c->err, c->errlen, "out of memory");
	return -ENOMEM;
}

/* o must be an object with no members but the known ones (NULL-terminated). */
static int check_object(struct ctx *c, const json_t *o, const char *const *known)
{
	const char *key;
	json_t *v;
	char d[DESC_MAX];

	if (!json_is_object(o))
		return fail(c, "expected an object, got %s", describe(o, d));
	json_object_foreach((json_t *)o, key, v)
	{
		const char *const *k;

		for (k = known; *k && strcmp(*k, key) != 0; k++)
			;
		if (!*k)
			return fail_key(c, key, "unknown member");
	}
	return 0;
}

/* The getters: 0 when the member is absent (ret untouched), 1 when present and valid. */

static int get_string(struct ctx *c, const json_t *o, const char *key, const char **ret)
{
	const json_t *v = json_object_get(o, key);
	char d[DESC_MAX];

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail_key(c, key, "expected a string, got %s", describe(v, d));
	*ret = json_string_value(v);
	return 1;
}

static int get_int(struct ctx *c, const json_t *o, const char *key, long long lo, long long hi,
		   long long *ret)
{
	const json_t *v = json_object_get(o, key);
	char d[DESC_MAX];

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail_key(c, key, "expected an integer in %lld..%lld, got %s", lo, hi,
				describe(v, d));
	*ret = json_integer_value(v);
	return 1;
}

static int get_u32(struct ctx *c, const json_t *o, const char *key, uint32_t lo, uint32_t hi,
		   bool required, uint32_t *ret)
{
	long long v;
	int r = get_int(c, o, key, lo, hi, &v);

	if (r == 0 && required)
		return fail_key(c, key, "required");
	if (r > 0)
		*ret = (uint32_t)v;
	return r;
}

static int get_bool(struct ctx *c, const json_t *o, const char *key, bool *ret)
{
	const json_t *v = json_object_get(o, key);
	char d[DESC_MAX];

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail_key(c, key, "expected true or false, got %s", describe(v, d));
	*ret = json_is_true(v);
	return 1;
}

/* Decimal digits s[0..n) without sign or leading zeros, at most max. */
static bool parse_dec(const char *s, size_t n, unsigned long long max, unsigned long long *ret)
{
	unsigned long long v = 0;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (unsigned)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

/* Dotted-quad IPv4 (inet_pton: exactly four decimal parts, no leading zeros), host order. */
static bool parse_ip4(const char *s, size_t n, uint32_t *ret)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*ret = ntohl(a.s_addr);
	return true;
}

static bool parse_endpoint(const char *s, uint32_t *ret_ip, uint16_t *ret_port)
{
	const char *colon = strrchr(s, ':');
	unsigned long long port;

	if (!colon || !parse_ip4(s, (size_t)(colon - s), ret_ip) ||
	    !parse_dec(colon + 1, strlen(colon + 1), 65535, &port) || port == 0)
		return false;
	*ret_port = (uint16_t)port;
	return true;
}

static const char *ip4_text(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = htonl(ip) };

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* cellId, runId: 1..63 of [A-Za-z0-9._-], not starting with '-' or '.'. */
static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= CELLSPEC_ID_MAX || s[0] == '-' || s[0] == '.')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int get_id(struct ctx *c, const json_t *o, const char *key, bool required,
		  char ret[CELLSPEC_ID_MAX])
{
	const char *s = NULL;
	char d[DESC_MAX];
	int r = get_string(c, o, key, &s);

	if (r == 0 && required)
		return fail_key(c, key, "required");
	if (r <= 0)
		return r;
	if (!id_ok(s))
		return fail_key(c, key,
				"expected 1..63 characters of [A-Za-z0-9._-] not starting with "
				"'-' or '.', got %s",
				quote(s, d));
	memcpy(ret, s, strlen(s) + 1);
	return 1;
}

/* RFC 1123 host name: dot-separated labels of 1..63 letters, digits and inner hyphens. */
static bool hostname_ok(const char *s)
{
	size_t n = strlen(s), l = 0;

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];

		if (ch == '.' || ch == '\0') {
			if (l == 0 || l > 63 || s[i - 1] == '-')
				return false;
			l = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || (ch == '-' && l > 0)) {
			l++;
		} else {
			return false;
		}
	}
	return true;
}

/*
 * Interface names as the kernel's dev_valid_name() takes them (under IFNAMSIZ, not "." or "..",
 * no '/', ':' or white space), further limited to printable ASCII so bytes and characters agree.
 */
static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

static int get_ifname(struct ctx *c, const json_t *o, const char *key, char ret[16])
{
	const char *s = NULL;
	char d[DESC_MAX];
	int r = get_string(c, o, key, &s);

	if (r <= 0)
		return r;
	if (!ifname_ok(s))
		return fail_key(c, key,
				"expected an interface name of 1..15 printable ASCII characters "
				"without '/', ':' or spaces (not \".\" or \"..\"), got %s",
				quote(s, d));
	memcpy(ret, s, strlen(s) + 1);
	return 1;
}

static const struct {
	const char *name;
	unsigned long flag;
} namespaces[] = {
	{ "net", CLONE_NEWNET },       { "mount", CLONE_NEWNS }, { "pid", CLONE_NEWPID },
	{ "uts", CLONE_NEWUTS },       { "ipc", CLONE_NEWIPC },	 { "user", CLONE_NEWUSER },
	{ "cgroup", CLONE_NEWCGROUP },
};

static int parse_namespaces(struct ctx *c, const json_t *root, struct cellspec *s)
{
	const json_t *a = json_object_get(root, "namespaces"), *e;
	char d[DESC_MAX];
	size_t i, m;
	int r = 0;

	s->ns_flags = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail_key(c, "namespaces", "expected an array of namespace names, got %s",
				describe(a, d));
	s->ns_flags = 0;
	m = push(c, "namespaces");
	json_array_foreach(a, i, e)
	{
		size_t k, mi = push_index(c, i);

		for (k = 0; json_is_string(e) && k < ARRAY_SIZE(namespaces); k++)
			if (!strcmp(json_string_value(e), namespaces[k].name))
				break;
		if (!json_is_string(e))
			r = fail(c, "expected a namespace name, got %s", describe(e, d));
		else if (k == ARRAY_SIZE(namespaces))
			r = fail(c,
				 "unknown namespace %s (expected one of net, mount, pid, uts, ipc, "
				 "user, cgroup)",
				 describe(e, d));
		else if (s->ns_flags & namespaces[k].flag)
			r = fail(c, "duplicate %s", describe(e, d));
		else
			s->ns_flags |= namespaces[k].flag;
		pop(c, mi);
		if (r < 0)
			break;
	}
	pop(c, m);
	return r;
}

static int parse_idmap(struct ctx *c, const json_t *root, const char *key, bool userns,
		       struct cellspec_idmap **ret, size_t *ret_n)
{
	static const char *const known[] = { "inside", "outside", "count", NULL };
	const json_t *a = json_object_get(root, key), *e;
	struct cellspec_idmap *map;
	char d[DESC_MAX];
	size_t i, n, m;
	int r = 0;

	if (!a)
		return userns ? fail_key(c, key, "required when namespaces has \"user\"") : 0;
	if (!userns)
		return fail_key(c, key, "only allowed when namespaces has \"user\"");
	if (!json_is_array(a))
		return fail_key(c, key, "expected an array of {inside, outside, count}, got %s",
				describe(a, d));
	n = json_array_size(a);
	if (n < 1 || n > IDMAP_MAX)
		return fail_key(c, key, "expected 1..%d entries, got %zu", IDMAP_MAX, n);
	map = calloc(n, sizeof(*map));
	if (!map)
		return oom(c);
	*ret = map;
	*ret_n = n;
	m = push(c, key);
	json_array_foreach(a, i, e)
	{
		struct cellspec_idmap *x = &map[i];
		size_t mi = push_index(c, i);

		r = check_object(c, e, known);
		if (r >= 0)
			r = get_u32(c, e, "inside", 0, UID_MAX_VALID, true, &x->inside);
		if (r >= 0)
			r = get_u32(c, e, "outside", 0, UID_MAX_VALID, true, &x->outside);
		if (r >= 0)
			r = get_u32(c, e, "count", 1, UINT32_MAX, true, &x->count);
		/* The kernel refuses ranges that wrap, and (uid_t)-1 must stay unmapped. */
		if (r >= 0 && (uint64_t)x->inside + x->count > UINT32_MAX)
			r = fail(c, "inside + count exceeds %u", UINT32_MAX);
		if (r >= 0 && (uint64_t)x->outside + x->count > UINT32_MAX)
			r = fail(c, "outside + count exceeds %u", UINT32_MAX);
		for (size_t j = 0; r >= 0 && j < i; j++) {
			const struct cellspec_idmap *y = &map[j];

			if (x->inside < (uint64_t)y->inside + y->count &&
			    y->inside < (uint64_t)x->inside + x->count)
				r = fail(c, "inside range %u..%u overlaps %s[%zu]", x->inside,
					 x->inside + x->count - 1, key, j);
			else if (x->outside < (uint64_t)y->outside + y->count &&
				 y->outside < (uint64_t)x->outside + x->count)
				r = fail(c, "outside range %u..%u overlaps %s[%zu]", x->outside,
					 x->outside + x->count - 1, key, j);
		}
		pop(c, mi);
		if (r < 0)
			break;
	}
	pop(c, m);
	return r < 0 ? r : 1;
}

static bool idmap_has(const struct cellspec_idmap *map, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= map[i].inside && id - map[i].inside < map[i].count)
			return true;
	return false;
}

static const struct {
	const char *name;
	int resource;
} rlimits[] = {
	{ "as", RLIMIT_AS },
	{ "core", RLIMIT_CORE },
	{ "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA },
	{ "fsize", RLIMIT_FSIZE },
	{ "memlock", RLIMIT_MEMLOCK },
	{ "nofile", RLIMIT_NOFILE },
	{ "nproc", RLIMIT_NPROC },
	{ "stack", RLIMIT_STACK },
	{ "rss", RLIMIT_RSS },
	{ "msgqueue", RLIMIT_MSGQUEUE },
	{ "nice", RLIMIT_NICE },
	{ "rtprio", RLIMIT_RTPRIO },
	{ "sigpending", RLIMIT_SIGPENDING },
	{ "locks", RLIMIT_LOCKS },
};

static int get_rlim_value(struct ctx *c, const json_t *o, const char *key, uint64_t *ret)
{
	const json_t *v = json_object_get(o, key);
	char d[DESC_MAX];

	if (!v)
		return fail_key(c, key, "required");
	if (json_is_string(v) && !strcmp(json_string_value(v), "unlimited"))
		*ret = RLIM_INFINITY;
	else if (json_is_integer(v) && json_integer_value(v) >= 0)
		*ret = (uint64_t)json_integer_value(v);
	else
		return fail_key(c, key, "expected a non-negative integer or \"unlimited\", got %s",
				describe(v, d));
	return 0;
}

static int parse_rlimits(struct ctx *c, const json_t *root, struct cellspec *s)
{
	static const char *const known[] = { "soft", "hard", NULL };
	const json_t *o = json_object_get(root, "rlimits"), *v;
	const char *key;
	char d[DESC_MAX];
	size_t m, n = 0;
	int r = 0;

	if (!o)
		return 0;
	if (!json_is_object(o))
		return fail_key(c, "rlimits", "expected an object, got %s", describe(o, d));
	s->rlimits = calloc(json_object_size(o) ?: 1, sizeof(*s->rlimits));
	if (!s->rlimits)
		return oom(c);
	m = push(c, "rlimits");
	json_object_foreach((json_t *)o, key, v)
	{
		struct cellspec_rlimit *x = &s->rlimits[n];
		size_t k, mk;

		for (k = 0; k < ARRAY_SIZE(rlimits) && strcmp(rlimits[k].name, key); k++)
			;
		if (k == ARRAY_SIZE(rlimits)) {
			r = fail_key(c, key,
				     "unknown member (expected one of as, core, cpu, data, fsize, "
				     "memlock, nofile, nproc, stack, rss, msgqueue, nice, rtprio, "
				     "sigpending, locks)");
			break;
		}
		mk = push(c, key);
		x->resource = rlimits[k].resource;
		r = check_object(c, v, known);
		if (r >= 0)
			r = get_rlim_value(c, v, "soft", &x->soft);
		if (r >= 0)
			r = get_rlim_value(c, v, "hard", &x->hard);
		if (r >= 0 && x->soft > x->hard) /* RLIM_INFINITY is the largest value */
			r = fail(c, "soft limit exceeds hard limit");
		pop(c, mk);
		if (r < 0)
			break;
		s->n_rlimits = ++n;
	}
	pop(c, m);
	return r;
}

static int parse_cpus(struct ctx *c, const json_t *root, struct cellspec *s)
{
	const json_t *a = json_object_get(root, "cpus"), *e;
	char d[DESC_MAX];
	size_t i, m;
	int r = 0;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail_key(c, "cpus", "expected an array of CPU numbers, got %s",
				describe(a, d));
	/* An empty set would make sched_setaffinity() fail with EINVAL. */
	if (json_array_size(a) == 0)
		return fail_key(c, "cpus", "expected at least one CPU");
	s->cpus = calloc(json_array_size(a), sizeof(*s->cpus));
	if (!s->cpus)
		return oom(c);
	m = push(c, "cpus");
	json_array_foreach(a, i, e)
	{
		size_t mi = push_index(c, i);

		if (!json_is_integer(e) || json_integer_value(e) < 0 ||
		    json_integer_value(e) > 1023)
			r = fail(c, "expected an integer in 0..1023, got %s", describe(e, d));
		for (size_t j = 0; r >= 0 && j < i; j++)
			if (s->cpus[j] == json_integer_value(e))
				r = fail(c, "duplicate %s", describe(e, d));
		pop(c, mi);
		if (r < 0)
			break;
		s->cpus[s->n_cpus++] = (int)json_integer_value(e);
	}
	pop(c, m);
	return r;
}

/* Why path is not a usable relative cgroup path, or NULL. */
static const char *cgroup_path_problem(const char *p)
{
	size_t n = strlen(p);

	if (n == 0)
		return "must not be empty";
	if (n > 4095)
		return "longer than 4095 bytes";
	if (p[0] == '/')
		return "must be relative (no leading '/')";
	for (const char *comp = p;;) {
		size_t l = strcspn(comp, "/");

		if (l == 0)
			return "has an empty component";
		if (l > 255)
			return "has a component longer than 255 bytes";
		if ((l == 1 && comp[0] == '.') || (l == 2 && comp[0] == '.' && comp[1] == '.'))
			return "must not have \".\" or \"..\" components";
		for (size_t i = 0; i < l; i++)
			if ((unsigned char)comp[i] < 0x20 || comp[i] == 0x7f)
				return "must not contain control characters";
		if (!comp[l])
			return NULL;
		comp += l + 1;
	}
}

/* memoryMax / pidsMax: an integer in 1..max or "max", as the text the cgroup file takes. */
static int get_cgroup_limit(struct ctx *c, const json_t *o, const char *key, long long max,
			    char **ret)
{
	const json_t *v = json_object_get(o, key);
	char d[DESC_MAX], buf[32];

	if (!v)
		return 0;
	if (json_is_string(v) && !strcmp(json_string_value(v), "max"))
		snprintf(buf, sizeof(buf), "max");
	else if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= max)
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		return fail_key(c, key, "expected an integer in 1..%lld or \"max\", got %s", max,
				describe(v, d));
	*ret = strdup(buf);
	return *ret ? 1 : oom(c);
}

static int parse_cgroup(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "path", "memoryMax", "pidsMax", "cpuMax", NULL };
	const char *p = NULL, *why;
	char d[DESC_MAX];
	int r;

	r = check_object(c, o, known);
	if (r < 0)
		return r;
	r = get_string(c, o, "path", &p);
	if (r < 0)
		return r;
	if (p) {
		why = cgroup_path_problem(p);
		if (why)
			return fail_key(c, "path", "%s, got %s", why, quote(p, d));
		s->cgroup_path = strdup(p);
		if (!s->cgroup_path)
			return oom(c);
	}
	r = get_cgroup_limit(c, o, "memoryMax", INT64_MAX, &s->memory_max);
	if (r >= 0)
		r = get_cgroup_limit(c, o, "pidsMax", PIDS_MAX_LIMIT, &s->pids_max);
	if (r < 0)
		return r;
	p = NULL;
	r = get_string(c, o, "cpuMax", &p);
	if (r > 0) {
		const char *sp = strchr(p, ' ');
		unsigned long long quota = 0, period;
		bool is_max = sp && sp - p == 3 && !strncmp(p, "max", 3);
		char buf[48];

		if (!sp || (!is_max && !parse_dec(p, (size_t)(sp - p), CPU_QUOTA_MAX, &quota)) ||
		    (!is_max && quota < CPU_QUOTA_MIN) ||
		    !parse_dec(sp + 1, strlen(sp + 1), CPU_PERIOD_MAX, &period) ||
		    period < CPU_QUOTA_MIN)
			return fail_key(
				c, "cpuMax",
				"expected \"QUOTA PERIOD\" or \"max PERIOD\" in microseconds "
				"(QUOTA %llu..%llu, PERIOD %llu..%llu), got %s",
				CPU_QUOTA_MIN, CPU_QUOTA_MAX, CPU_QUOTA_MIN, CPU_PERIOD_MAX,
				quote(p, d));
		if (is_max)
			snprintf(buf, sizeof(buf), "max %llu", period);
		else
			snprintf(buf, sizeof(buf), "%llu %llu", quota, period);
		s->cpu_max = strdup(buf);
		if (!s->cpu_max)
			return oom(c);
	}
	return r < 0 ? r : 0;
}

/* An address member of the network: inside the subnet, and neither its network nor broadcast. */
static int check_host_addr(struct ctx *c, const char *key, uint32_t ip, const struct cellspec *s)
{
	uint32_t mask = ~0u << (32 - s->prefixlen);
	char a[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN];

	if ((ip & mask) != s->subnet)
		return fail_key(c, key, "%s is outside the subnet %s/%u", ip4_text(ip, a),
				ip4_text(s->subnet, n), s->prefixlen);
	if (ip == s->subnet)
		return fail_key(c, key, "%s is the network address of the subnet", ip4_text(ip, a));
	if (ip == (s->subnet | ~mask))
		return fail_key(c, key, "%s is the broadcast address of the subnet",
				ip4_text(ip, a));
	return 0;
}

static int get_ip4(struct ctx *c, const json_t *o, const char *key, uint32_t *ret)
{
	const char *t = NULL;
	char d[DESC_MAX];
	int r = get_string(c, o, key, &t);

	if (r > 0 && !parse_ip4(t, strlen(t), ret))
		return fail_key(c, key, "expected an IPv4 address, got %s", quote(t, d));
	return r;
}

static int parse_member(struct ctx *c, const json_t *root, const char *key,
			int (*parse_fn)(struct ctx *, const json_t *, struct cellspec *),
			struct cellspec *s);

static const char *ip6_text(const uint8_t ip[16], char buf[INET6_ADDRSTRLEN])
{
	return inet_ntop(AF_INET6, ip, buf, INET6_ADDRSTRLEN);
}

static bool parse_ip6(const char *s, size_t n, uint8_t ret[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, ret) == 1;
}

/*
 * dns.upstream: IPv4:PORT, or [IPv6]:PORT (any inet_pton text; the proxy writes it in RFC 5952
 * text, DNS-CLI-004) in a dual-stack cell only: without network.ipv6 the cell has no IPv6
 * route to reach it (SUP-DNS-006).
 */
static int check_upstream(struct ctx *c, const char *t, const struct cellspec *s)
{
	const char *close = t[0] == '[' ? strstr(t, "]:") : NULL;
	unsigned long long port;
	char d[DESC_MAX];
	uint8_t ip6[16];
	uint32_t ip;
	uint16_t p4;

	bool ok = close ? parse_ip6(t + 1, (size_t)(close - t - 1), ip6) &&
				  parse_dec(close + 2, strlen(close + 2), 65535, &port) && port > 0
			: parse_endpoint(t, &ip, &p4);

	if (!ok)
		return fail_key(c, "upstream",
				"expected IPv4:PORT or [IPv6]:PORT with PORT 1..65535, got %s",
				quote(t, d));
	if (!close)
		return 0;
	/* sup.spec_upstream6_without_ipv6: an IPv6 upstream is accepted in an IPv4 cell */
	if (!s->ipv6 && !FAULT("sup.spec_upstream6_without_ipv6"))
		return fail_key(c, "upstream",
				"an IPv6 upstream needs network.ipv6 (the cell has no IPv6 route), "
				"got %s",
				quote(t, d));
	return 0;
}

/* Bits of a and b under the first plen bits equal. */
static bool ip6_in(const uint8_t a[16], const uint8_t net[16], unsigned int plen)
{
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;
		uint8_t mask = (uint8_t)(0xff00 >> bits);

		if ((a[i] & mask) != (net[i] & mask))
			return false;
	}
	return true;
}

/* An address member of network.ipv6: inside the subnet, not its Subnet-Router anycast address. */
static int check_host_addr6(struct ctx *c, const char *key, const uint8_t ip[16],
			    const struct cellspec *s)
{
	char a[INET6_ADDRSTRLEN], n[INET6_ADDRSTRLEN];

	if (!ip6_in(ip, s->subnet6, s->prefixlen6))
		return fail_key(c, key, "%s is outside the subnet %s/%u", ip6_text(ip, a),
				ip6_text(s->subnet6, n), s->prefixlen6);
	if (memcmp(ip, s->subnet6, 16) == 0)
		return fail_key(c, key,
				"%s is the subnet's own address (Subnet-Router anycast, RFC 4291)",
				ip6_text(ip, a));
	return 0;
}

/*
 * network.ipv6: a dual-stack cell (SUP-NET-012). Global or unique local unicast only: a
 * link-local prefix is every link's, multicast and IPv4-mapped prefixes are no subnet.
 */
static int parse_network6(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "subnet", "address", "gateway", NULL };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	const char *t = NULL, *slash;
	unsigned long long plen;
	char d[DESC_MAX], a[INET6_ADDRSTRLEN];
	uint8_t masked[16];
	int r;

	r = check_object(c, o, known);
	if (r < 0)
		return r;
	r = get_string(c, o, "subnet", &t);
	if (r == 0)
		return fail_key(c, "subnet", "required");
	if (r < 0)
		return r;
	slash = strchr(t, '/');
	if (!slash || !parse_ip6(t, (size_t)(slash - t), s->subnet6) ||
	    !parse_dec(slash + 1, strlen(slash + 1), 128, &plen))
		return fail_key(c, "subnet", "expected an IPv6 prefix like fd00:88::/64, got %s",
				quote(t, d));
	if (plen < 64 || plen > 126)
		return fail_key(c, "subnet", "prefix length must be in 64..126, got %s",
				quote(t, d));
	s->prefixlen6 = (unsigned int)plen;
	if (s->subnet6[0] == 0xff || (s->subnet6[0] == 0xfe && (s->subnet6[1] & 0xc0) == 0x80) ||
	    memcmp(s->subnet6, mapped, 12) == 0 || ip6_in(s->subnet6, (uint8_t[16]){ 0 }, 64))
		return fail_key(c, "subnet",
				"expected a global or unique local unicast prefix (not multicast, "
				"link-local, IPv4-mapped or ::/64), got %s",
				quote(t, d));
	memset(masked, 0, sizeof(masked));
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;

		masked[i] = s->subnet6[i] & (uint8_t)(0xff00 >> bits);
	}
	if (memcmp(masked, s->subnet6, 16) != 0)
		return fail_key(c, "subnet", "host bits must be zero (%s/%u), got %s",
				ip6_text(masked, a), s->prefixlen6, quote(t, d));

	memcpy(s->gateway6, s->subnet6, 16);
	s->gateway6[15] |= 1;
	t = NULL;
	r = get_string(c, o, "gateway", &t);
	if (r > 0 && !parse_ip6(t, strlen(t), s->gateway6))
		return fail_key(c, "gateway", "expected an IPv6 address, got %s", quote(t, d));
	if (r > 0)
		r = check_host_addr6(c, "gateway", s->gateway6, s);
	if (r < 0)
		return r;

	t = NULL;
	r = get_string(c, o, "address", &t);
	if (r < 0)
		return r;
	if (r > 0 && strcmp(t, "allocate")) {
		if (!parse_ip6(t, strlen(t), s->address6))
			return fail_key(c, "address",
					"expected an IPv6 address or \"allocate\", got %s",
					quote(t, d));
		r = check_host_addr6(c, "address", s->address6, s);
		if (r < 0)
			return r;
		if (memcmp(s->address6, s->gateway6, 16) == 0)
			return fail_key(c, "address", "%s is the gateway",
					ip6_text(s->address6, a));
	}
	s->ipv6 = true;
	return 0;
}

static int parse_network(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "mode", "bridge", "subnet", "address", "gateway",
					     "mtu",  "ifname", "ipv6",	 "ping",    NULL };
	const char *t = NULL, *slash;
	unsigned long long plen;
	char d[DESC_MAX], a[INET_ADDRSTRLEN];
	long long mtu = 1500;
	uint32_t mask;
	int r;

	r = check_object(c, o, known);
	if (r < 0)
		return r;
	if (!(s->ns_flags & CLONE_NEWNET))
		return fail(c, "requires \"net\" in namespaces");

	r = get_string(c, o, "mode", &t);
	if (r == 0)
		return fail_key(c, "mode", "required");
	if (r > 0 && !strcmp(t, "bridge"))
		s->net_mode = CELLSPEC_NET_BRIDGE;
	else if (r > 0 && !strcmp(t, "routed"))
		s->net_mode = CELLSPEC_NET_ROUTED;
	else if (r > 0)
		return fail_key(c, "mode", "expected \"bridge\" or \"routed\", got %s",
				quote(t, d));
	else
		return r;

	r = get_ifname(c, o, "bridge", s->bridge);
	if (r < 0)
		return r;
	if (r == 0 && s->net_mode == CELLSPEC_NET_BRIDGE)
		return fail_key(c, "bridge", "required when mode is \"bridge\"");
	if (r > 0 && s->net_mode == CELLSPEC_NET_ROUTED)
		return fail_key(c, "bridge", "only allowed when mode is \"bridge\"");

	t = NULL;
	r = get_string(c, o, "subnet", &t);
	if (r == 0)
		return fail_key(c, "subnet", "required");
	if (r < 0)
		return r;
	slash = strchr(t, '/');
	if (!slash || !parse_ip4(t, (size_t)(slash - t), &s->subnet) ||
	    !parse_dec(slash + 1, strlen(slash + 1), 32, &plen))
		return fail_key(c, "subnet", "expected an IPv4 CIDR like 10.88.0.0/24, got %s",
				quote(t, d));
	if (plen < 8 || plen > 30)
		return fail_key(c, "subnet", "prefix length must be in 8..30, got %s", quote(t, d));
	s->prefixlen = (unsigned int)plen;
	mask = ~0u << (32 - plen);
	if (s->subnet & ~mask)
		return fail_key(c, "subnet", "host bits must be zero (%s/%u), got %s",
				ip4_text(s->subnet & mask, a), s->prefixlen, quote(t, d));

	s->gateway = s->subnet + 1;
	r = get_ip4(c, o, "gateway", &s->gateway);
	if (r > 0)
		r = check_host_addr(c, "gateway", s->gateway, s);
	if (r < 0)
		return r;

	t = NULL;
	r = get_string(c, o, "address", &t);
	if (r < 0)
		return r;
	if (r > 0 && strcmp(t, "allocate")) {
		if (!parse_ip4(t, strlen(t), &s->address))
			return fail_key(c, "address",
					"expected an IPv4 address or \"allocate\", got %s",
					quote(t, d));
		r = check_host_addr(c, "address", s->address, s);
		if (r < 0)
			return r;
		if (s->address == s->gateway)
			return fail_key(c, "address", "%s is the gateway", ip4_text(s->address, a));
	}

	r = get_int(c, o, "mtu", 68, 65535, &mtu);
	if (r < 0)
		return r;
	s->mtu = (unsigned int)mtu;
	snprintf(s->ifname, sizeof(s->ifname), "eth0");
	r = get_ifname(c, o, "ifname", s->ifname);
	if (r >= 0)
		r = parse_member(c, o, "ipv6", parse_network6, s);
	if (r >= 0)
		r = get_bool(c, o, "ping", &s->ping);
	return r < 0 ? r : 0;
}

/* "allow": every suffix checked by the proxy's own rules before it is kept. */
static int parse_dns_allow(struct ctx *c, const json_t *a, struct cellspec *s)
{
	_cleanup_(dnspol_freep) struct dnspol *pol = NULL;
	const json_t *e;
	char d[DESC_MAX];
	size_t i, m;
	int r;

	if (!json_is_array(a))
		return fail_key(c, "allow", "expected an array of name suffixes, got %s",
				describe(a, d));
	s->dns_allow = calloc(json_array_size(a) + 1, sizeof(*s->dns_allow));
	r = dnspol_new(&pol);
	if (!s->dns_allow || r == -ENOMEM)
		return oom(c);
	if (r < 0)
		return r;
	m = push(c, "allow");
	json_array_foreach(a, i, e)
	{
		size_t mi = push_index(c, i);

		/* The proxy's own rules (dnspol) decide what a usable suffix is. */
		if (!json_is_string(e) || json_string_length(e) < 1 || json_string_length(e) > 253)
			r = fail(c, "expected a name suffix of 1..253 characters, got %s",
				 describe(e, d));
		else if ((r = dnspol_allow(pol, json_string_value(e))) == -ENOMEM)
			r = oom(c);
		/* sup.spec_allow_unchecked: a suffix the proxy refuses is passed on */
		else if (r < 0 && !FAULT("sup.spec_allow_unchecked"))
			r = fail(c,
				 "not a usable name suffix (empty label or label over 63 "
				 "bytes), got %s",
				 describe(e, d));
		else if (!(s->dns_allow[i] = strdup(json_string_value(e))))
			r = oom(c);
		else
			r = 0;
		pop(c, mi);
		if (r < 0)
			break;
		s->n_dns_allow = i + 1;
	}
	pop(c, m);
	return r;
}

static int parse_dns(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "enabled", "listen",    "upstream",
					     "allow",	"timeoutMs", NULL };
	const json_t *a;
	const char *t = NULL;
	char d[DESC_MAX];
	long long timeout = 2000;
	int r;

	r = check_object(c, o, known);
	if (r < 0)
		return r;
	s->dns_enabled = true;
	r = get_bool(c, o, "enabled", &s->dns_enabled);
	if (r >= 0)
		r = get_string(c, o, "listen", &t);
	if (r < 0)
		return r;
	if (r > 0) {
		if (!parse_endpoint(t, &s->dns_listen_ip, &s->dns_listen_port))
			return fail_key(c, "listen",
					"expected IPv4:PORT with PORT 1..65535, got %s",
					quote(t, d));
	}

	t = NULL;
	r = get_string(c, o, "upstream", &t);
	if (r < 0)
		return r;
	if (r == 0 && s->dns_enabled)
		return fail_key(c, "upstream", "required when dns is enabled");
	if (r > 0) {
		r = check_upstream(c, t, s);
		if (r < 0)
			return r;
		s->dns_upstream = strdup(t);
		if (!s->dns_upstream)
			return oom(c);
	}

	a = json_object_get(o, "allow");
	if (a) {
		r = parse_dns_allow(c, a, s);
		if (r < 0)
			return r;
	}

	r = get_int(c, o, "timeoutMs", 100, 60000, &timeout);
	if (r < 0)
		return r;
	s->dns_timeout_ms = (unsigned int)timeout;

	if (s->dns_enabled && s->net_mode == CELLSPEC_NET_NONE)
		return fail(c, "enabled but there is no network (add \"network\" or set "
			       "\"enabled\": false)");
	if (s->dns_enabled &&
	    (s->ns_flags & (CLONE_NEWNET | CLONE_NEWNS)) != (CLONE_NEWNET | CLONE_NEWNS))
		return fail(c, "requires \"net\" and \"mount\" in namespaces");
	return 0;
}

#define CAP(n)        \
	{             \
#n, n \
	}
static const struct {
	const char *name;
	int value;
} caps[] = {
	CAP(CAP_CHOWN),
	CAP(CAP_DAC_OVERRIDE),
	CAP(CAP_DAC_READ_SEARCH),
	CAP(CAP_FOWNER),
	CAP(CAP_FSETID),
	CAP(CAP_KILL),
	CAP(CAP_SETGID),
	CAP(CAP_SETUID),
	CAP(CAP_SETPCAP),
	CAP(CAP_LINUX_IMMUTABLE),
	CAP(CAP_NET_BIND_SERVICE),
	CAP(CAP_NET_BROADCAST),
	CAP(CAP_NET_ADMIN),
	CAP(CAP_NET_RAW),
	CAP(CAP_IPC_LOCK),
	CAP(CAP_IPC_OWNER),
	CAP(CAP_SYS_MODULE),
	CAP(CAP_SYS_RAWIO),
	CAP(CAP_SYS_CHROOT),
	CAP(CAP_SYS_PTRACE),
	CAP(CAP_SYS_PACCT),
	CAP(CAP_SYS_ADMIN),
	CAP(CAP_SYS_BOOT),
	CAP(CAP_SYS_NICE),
	CAP(CAP_SYS_RESOURCE),
	CAP(CAP_SYS_TIME),
	CAP(CAP_SYS_TTY_CONFIG),
	CAP(CAP_MKNOD),
	CAP(CAP_LEASE),
	CAP(CAP_AUDIT_WRITE),
	CAP(CAP_AUDIT_CONTROL),
	CAP(CAP_SETFCAP),
	CAP(CAP_MAC_OVERRIDE),
	CAP(CAP_MAC_ADMIN),
	CAP(CAP_SYSLOG),
	CAP(CAP_WAKE_ALARM),
	CAP(CAP_BLOCK_SUSPEND),
	CAP(CAP_AUDIT_READ),
#ifdef CAP_PERFMON
	CAP(CAP_PERFMON),
#endif
#ifdef CAP_BPF
	CAP(CAP_BPF),
#endif
#ifdef CAP_CHECKPOINT_RESTORE
	CAP(CAP_CHECKPOINT_RESTORE),
#endif
};

static int parse_caps(struct ctx *c, const json_t *root, struct cellspec *s)
{
	const json_t *a = json_object_get(root, "capabilities"), *e;
	char d[DESC_MAX];
	size_t i, m;
	int r = 0;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail_key(c, "capabilities", "expected an array of CAP_* names, got %s",
				describe(a, d));
	m = push(c, "capabilities");
	json_array_foreach(a, i, e)
	{
		size_t k = 0, mi = push_index(c, i);

		while (json_is_string(e) && k < ARRAY_SIZE(caps) &&
		       strcmp(caps[k].name, json_string_value(e)))
			k++;
		if (!json_is_string(e))
			r = fail(c, "expected a capability name, got %s", describe(e, d));
		else if (k == ARRAY_SIZE(caps))
			r = fail(c, "unknown capability %s", describe(e, d));
		else if (s->cap_keep & (1ull << caps[k].value))
			r = fail(c, "duplicate %s", describe(e, d));
		else
			s->cap_keep |= 1ull << caps[k].value;
		pop(c, mi);
		if (r < 0)
			break;
	}
	pop(c, m);
	return r;
}

/* Run parse_fn on member key of root when present, with the path pointing at it. */
static int parse_member(struct ctx *c, const json_t *root, const char *key,
			int (*parse_fn)(struct ctx *, const json_t *, struct cellspec *),
			struct cellspec *s)
{
	const json_t *o = json_object_get(root, key);
	size_t m;
	int r;

	if (!o)
		return 0;
	m = push(c, key);
	r = parse_fn(c, o, s);
	pop(c, m);
	return r;
}

static int parse_user(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "uid", "gid", NULL };
	int r = check_object(c, o, known);

	if (r >= 0)
		r = get_u32(c, o, "uid", 0, UID_MAX_VALID, false, &s->uid);
	if (r >= 0)
		r = get_u32(c, o, "gid", 0, UID_MAX_VALID, false, &s->gid);
	return r < 0 ? r : 0;
}

static int parse_flows(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "enabled",	     "ringbufBytes",  "tableEntries",
					     "unconsidered", "recordVersion", NULL };
	int r = check_object(c, o, known);
	const char *t = NULL;
	char d[DESC_MAX];

	s->flows_enabled = true;
	if (r >= 0)
		r = get_bool(c, o, "enabled", &s->flows_enabled);
	if (r >= 0)
		r = get_u32(c, o, "ringbufBytes", 4096, 1u << 30, false, &s->flows_ringbuf_bytes);
	if (r >= 0)
		r = get_u32(c, o, "tableEntries", 1, 1u << 22, false, &s->flows_table_entries);
	if (r >= 0)
		r = get_u32(c, o, "recordVersion", 1, 2, false, &s->flows_record_version);
	/* sup.spec_unconsidered_ignored: the negative control of SUP-FLOW-003 (any value, count).
	 */
	if (r >= 0 && !FAULT("sup.spec_unconsidered_ignored"))
		r = get_string(c, o, "unconsidered", &t);
	if (r < 0)
		return r;
	/* sup.spec_unconsidered_drop_default: no unconsidered reads as "drop" */
	if (t ? strcmp(t, "drop") == 0 : FAULT("sup.spec_unconsidered_drop_default"))
		s->flows_drop_unconsidered = true;
	else if (t && strcmp(t, "count") != 0)
		return fail_key(c, "unconsidered", "expected \"count\" or \"drop\", got %s",
				quote(t, d));
	/* The kernel takes a power of two, whole pages; saying so here beats an EINVAL later. */
	if (s->flows_ringbuf_bytes & (s->flows_ringbuf_bytes - 1))
		return fail_key(c, "ringbufBytes", "expected a power of two in 4096..1073741824");
	if (s->flows_enabled && s->net_mode == CELLSPEC_NET_NONE)
		return fail(c, "enabled but there is no network (add \"network\" or set "
			       "\"enabled\": false)");
	/* SUP-SPEC-004: a dual-stack cell's IPv6 is observed whenever its flows are. */
	if (s->flows_enabled && s->ipv6 && s->flows_record_version != 2 &&
	    !FAULT("sup.spec_ipv6_v1_accepted"))
		return fail_key(
			c, "recordVersion",
			"must be 2 with network.ipv6 (a version 1 record cannot carry IPv6), "
			"got %u",
			s->flows_record_version);
	return 0;
}

/*
 * A path the cell mounts on or from: absolute, at most PATH_MAX - 1 bytes, no empty, "." or
 * ".." component (so a target can never name a place outside the cell's root), no trailing
 * slash. "/" itself only where allowed.
 */
static bool abs_path_ok(const char *p, bool root_ok)
{
	size_t n = strlen(p);

	if (n == 0 || p[0] != '/' || n >= PATH_MAX)
		return false;
	if (n == 1)
		return root_ok;
	if (p[n - 1] == '/')
		return false;
	for (const char *q = p; *q;) {
		const char *e;
		size_t len;

		q++; /* the slash */
		e = strchr(q, '/');
		len = e ? (size_t)(e - q) : strlen(q);
		if (len == 0 || (len == 1 && q[0] == '.') ||
		    (len == 2 && q[0] == '.' && q[1] == '.'))
			return false;
		q += len;
	}
	return true;
}

#define PATH_RULE "an absolute path without empty, \".\" or \"..\" components"

static int parse_rootfs(struct ctx *c, const json_t *root, struct cellspec *s)
{
	const char *t = NULL;
	char d[DESC_MAX];
	struct stat st;
	int r = get_string(c, root, "rootfs", &t);

	if (r <= 0)
		return r;
	if (!abs_path_ok(t, false))
		return fail_key(c, "rootfs", "expected %s, not \"/\", got %s", PATH_RULE,
				quote(t, d));
	if (!(s->ns_flags & CLONE_NEWNS))
		return fail_key(c, "rootfs", "requires \"mount\" in namespaces");
	/* sup.rootfs_unchecked: any path is taken, left for pivot_root to trip over */
	if (FAULT("sup.rootfs_unchecked"))
		goto take;
	if (stat(t, &st) < 0)
		return fail_key(c, "rootfs", "%s: %s: %s", quote(t, d), util_errno_name(errno),
				strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail_key(c, "rootfs", "%s is not a directory", quote(t, d));
take:
	s->rootfs = strdup(t);
	return s->rootfs ? 0 : oom(c);
}

static int parse_mount(struct ctx *c, const json_t *o, struct cellspec_mount *m)
{
	static const char *const known[] = { "source", "target", "rw", NULL };
	const char *src = NULL, *tgt = NULL;
	char d[DESC_MAX];
	struct stat st;
	int r = check_object(c, o, known);

	if (r >= 0)
		r = get_string(c, o, "source", &src);
	if (r == 0)
		return fail_key(c, "source", "required");
	if (r > 0)
		r = get_string(c, o, "target", &tgt);
	if (r == 0)
		return fail_key(c, "target", "required");
	if (r > 0)
		r = get_bool(c, o, "rw", &m->rw);
	if (r < 0)
		return r;
	if (!abs_path_ok(src, true))
		return fail_key(c, "source", "expected %s, got %s", PATH_RULE, quote(src, d));
	/* sup.mount_source_unchecked: a missing source is left for the cell to find */
	if (!FAULT("sup.mount_source_unchecked") && stat(src, &st) < 0)
		return fail_key(c, "source", "%s: %s: %s", quote(src, d), util_errno_name(errno),
				strerror(errno));
	/* sup.mount_target_unchecked: any target string is taken */
	if (!abs_path_ok(tgt, false) && !FAULT("sup.mount_target_unchecked"))
		return fail_key(c, "target", "expected %s, not \"/\", got %s", PATH_RULE,
				quote(tgt, d));
	m->source = strdup(src);
	m->target = strdup(tgt);
	return m->source && m->target ? 0 : oom(c);
}

static int parse_mounts(struct ctx *c, const json_t *root, struct cellspec *s)
{
	const json_t *a = json_object_get(root, "mounts"), *e;
	char d[DESC_MAX];
	size_t i, m;
	int r = 0;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > CELLSPEC_MOUNTS_MAX)
		return fail_key(c, "mounts", "expected an array of at most %d mounts, got %s",
				CELLSPEC_MOUNTS_MAX, describe(a, d));
	if (!(s->ns_flags & CLONE_NEWNS))
		return fail_key(c, "mounts", "requires \"mount\" in namespaces");
	s->mounts = calloc(json_array_size(a) + 1, sizeof(*s->mounts));
	if (!s->mounts)
		return oom(c);
	m = push(c, "mounts");
	json_array_foreach(a, i, e)
	{
		size_t mi = push_index(c, i);

		r = parse_mount(c, e, &s->mounts[i]);
		s->n_mounts = i + 1; /* freed with the spec, even half-parsed */
		pop(c, mi);
		if (r < 0)
			break;
	}
	pop(c, m);
	return r;
}

static int parse_tmpfs(struct ctx *c, const json_t *o, struct cellspec *s)
{
	static const char *const known[] = { "tmp", "varTmp", "run", "devShm", NULL };
	int r = check_object(c, o, known);

	if (!(s->ns_flags & CLONE_NEWNS))
		return fail(c, "requires \"mount\" in namespaces");
	for (int i = 0; r >= 0 && known[i]; i++) {
		long long v;

		/* tmpfs takes any size; below a page nothing fits, above 1 TiB is a typo. */
		r = get_int(c, o, known[i], 4096, 1ll << 40, &v);
		if (r > 0)
			s->tmpfs_bytes[i] = (uint64_t)v;
	}
	return r < 0 ? r : 0;
}

static int parse_root(struct ctx *c, const json_t *root, struct cellspec *s)
{
	static const char *const known[] = {
		"specVersion", "cellId", "runId",	 "namespaces",
		"hostname",    "user",	 "uidMap",	 "gidMap",
		"rlimits",     "cpus",	 "cgroup",	 "network",
		"dns",	       "flows",	 "capabilities", "noNewPrivileges",
		"strict",      "rootfs", "mounts",	 "tmpfs",
		NULL
	};
	const json_t *v;
	const char *t = NULL;
	char d[DESC_MAX];
	int r;

	if (!json_is_object(root))
		return fail(c, "expected a JSON object at the top level, got %s",
			    describe(root, d));
	r = check_object(c, root, known);
	if (r < 0)
		return r;

	v = json_object_get(root, "specVersion");
	if (!v)
		return fail_key(c, "specVersion", "required");
	if (!json_is_string(v) || strcmp(json_string_value(v), "1"))
		return fail_key(c, "specVersion", "expected \"1\", got %s", describe(v, d));
	r = get_id(c, root, "cellId", true, s->cell_id);
	if (r >= 0)
		r = get_id(c, root, "runId", false, s->run_id);
	if (r >= 0)
		r = parse_namespaces(c, root, s);
	if (r >= 0)
		r = get_string(c, root, "hostname", &t);
	if (r < 0)
		return r;
	if (t && !hostname_ok(t))
		return fail_key(c, "hostname",
				"expected an RFC 1123 host name (labels of letters, digits and "
				"inner hyphens, at most 64 characters), got %s",
				quote(t, d));
	if (t && !(s->ns_flags & CLONE_NEWUTS))
		return fail_key(c, "hostname", "requires \"uts\" in namespaces");
	if (t)
		memcpy(s->hostname, t, strlen(t) + 1);

	r = parse_member(c, root, "user", parse_user, s);
	if (r >= 0)
		r = parse_idmap(c, root, "uidMap", s->ns_flags & CLONE_NEWUSER, &s->uid_map,
				&s->n_uid_map);
	if (r >= 0)
		r = parse_idmap(c, root, "gidMap", s->ns_flags & CLONE_NEWUSER, &s->gid_map,
				&s->n_gid_map);
	if (r < 0)
		return r;
	/* The workload's identity must exist inside, or setuid() in the cell fails. */
	if (s->uid_map && !idmap_has(s->uid_map, s->n_uid_map, s->uid))
		return fail(c, "user.uid: %u%s is not mapped by uidMap", s->uid,
			    json_object_get(root, "user") ? "" : " (the default)");
	if (s->gid_map && !idmap_has(s->gid_map, s->n_gid_map, s->gid))
		return fail(c, "user.gid: %u%s is not mapped by gidMap", s->gid,
			    json_object_get(root, "user") ? "" : " (the default)");

	r = parse_rlimits(c, root, s);
	if (r >= 0)
		r = parse_cpus(c, root, s);
	if (r >= 0)
		r = parse_member(c, root, "cgroup", parse_cgroup, s);
	if (r >= 0)
		r = parse_member(c, root, "network", parse_network, s);
	if (r >= 0)
		r = parse_member(c, root, "dns", parse_dns, s);
	if (r >= 0)
		r = parse_member(c, root, "flows", parse_flows, s);
	if (r >= 0)
		r = parse_caps(c, root, s);
	if (r >= 0)
		r = get_bool(c, root, "noNewPrivileges", &s->no_new_privs);
	if (r >= 0)
		r = get_bool(c, root, "strict", &s->strict);
	if (r >= 0)
		r = parse_rootfs(c, root, s);
	if (r >= 0)
		r = parse_mounts(c, root, s);
	if (r >= 0)
		r = parse_member(c, root, "tmpfs", parse_tmpfs, s);
	return r < 0 ? r : 0;
}

int cellspec_parse(const char *text, size_t len, struct cellspec **ret, char *err, size_t errlen)
{
	_cleanup_(cellspec_freep) struct cellspec *s = NULL;
	struct ctx c = { .err = err, .errlen = err ? errlen : 0 };
	json_error_t jerr;
	json_t *root;
	int r;

	if (c.errlen)
		err[0] = '\0';
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return oom(&c);
		if (c.errlen)
			snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(root);
		return oom(&c);
	}
	s->no_new_privs = true;
	/* sup.default_root: the old default, root */
	s->uid = s->gid = FAULT("sup.default_root") ? 0 : CELLSPEC_DEFAULT_ID;
	/* Limits, not allocations: tmpfs takes pages only as files are written. */
	s->tmpfs_bytes[CELLSPEC_TMP] = 64ull << 20;
	s->tmpfs_bytes[CELLSPEC_VAR_TMP] = 64ull << 20;
	s->tmpfs_bytes[CELLSPEC_RUN] = 16ull << 20;
	s->tmpfs_bytes[CELLSPEC_DEV_SHM] = 64ull << 20;
	s->dns_listen_ip = 0x7f000035; /* 127.0.0.53:53 */
	s->dns_listen_port = 53;
	s->dns_timeout_ms = 2000;
	/* A cell's flows: small maps load fast (a 65536-entry table costs milliseconds). */
	s->flows_ringbuf_bytes = 65536;
	s->flows_table_entries = 8192;
	s->flows_record_version = 1;
	r = parse_root(&c, root, s);
	json_decref(root);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int cellspec_load(const char *path, struct cellspec **ret, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	ssize_t n;

	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;

		if (err && errlen)
			snprintf(err, errlen, "open: %s: %s", util_errno_name(e), strerror(e));
		return -e;
	}
	/* One byte more than allowed tells a file at the limit from a bigger one. */
	buf = malloc(CELLSPEC_MAX_SIZE + 1);
	if (!buf) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = util_read_full(fd, buf, CELLSPEC_MAX_SIZE + 1);
	if (n < 0) {
		if (err && errlen)
			snprintf(err, errlen, "read: %s: %s", util_errno_name((int)-n),
				 strerror((int)-n));
		return (int)n;
	}
	if (n > CELLSPEC_MAX_SIZE) {
		if (err && errlen)
			snprintf(err, errlen, "spec is larger than 1 MiB (%d bytes)",
				 CELLSPEC_MAX_SIZE);
		return -EFBIG;
	}
	return cellspec_parse(buf, (size_t)n, ret, err, errlen);
}

void cellspec_free(struct cellspec *s)
{
	if (!s)
		return;
	free(s->uid_map);
	free(s->gid_map);
	free(s->rlimits);
	free(s->cpus);
	free(s->cgroup_path);
	free(s->memory_max);
	free(s->pids_max);
	free(s->cpu_max);
	free(s->dns_upstream);
	for (size_t i = 0; s->dns_allow && s->dns_allow[i]; i++)
		free(s->dns_allow[i]);
	free(s->dns_allow);
	free(s->rootfs);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].source);
		free(s->mounts[i].target);
	}
	free(s->mounts);
	free(s);
}

void cellspec_freep(struct cellspec **s)
{
	cellspec_free(*s);
	*s = NULL;
}
