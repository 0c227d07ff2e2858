// SPDX-License-Identifier: Apache-2.0
/*
 * The start step (hstep.h): a component from the profile's argv template (or the step's own
 * argv or a profile command), its placeholders filled, its sink, listeners and stdin prepared,
 * started in a process group of its own, then waited for on its ready fd. The longest kind:
 * its parse checks each group of keys in a function of its own, and each preparation of its
 * run is one, in the order the start needs them.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <ctype.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "hrun_int.h"
#include "hstep.h"

/* "user": "UID:GID", decimal. */
static int start_parse_user(struct hstep_pctx *v, json_t *e, const char *pi, struct hstep_start *k)
{
	const char *u = NULL;
	char pk[HJSON_PATH_MAX], *end;
	unsigned long uid, gid;
	int r;

	r = hjson_str(e, pi, "user", false, &u, v->err);
	if (r < 0 || !u)
		return r;
	hjson_path_key(pk, pi, "user");
	errno = 0;
	uid = strtoul(u, &end, 10);
	if (end == u || *end != ':' || errno)
		return hjson_fail(v->err, pk, "\"%s\" is not UID:GID", u);
	gid = strtoul(end + 1, &end, 10);
	if (*end || errno || uid >= UINT32_MAX || gid >= UINT32_MAX || u[0] == '-' ||
	    strchr(u, '-'))
		return hjson_fail(v->err, pk, "\"%s\" is not UID:GID", u);
	k->has_user = true;
	k->uid = (uint32_t)uid;
	k->gid = (uint32_t)gid;
	return 0;
}

/* "groups": [GID...]: exactly these supplementary groups, set before exec. */
static int start_parse_groups(struct hstep_pctx *v, json_t *e, const char *pi,
			      struct hstep_start *k)
{
	char pk[HJSON_PATH_MAX];
	json_t *a = NULL, *g;
	size_t i;
	int r;

	r = hjson_arr(e, pi, "groups", false, &a, v->err);
	if (r < 0 || !a)
		return r;
	hjson_path_key(pk, pi, "groups");
	k->groups = calloc(json_array_size(a) + 1, sizeof(*k->groups));
	if (!k->groups)
		return -ENOMEM;
	k->has_groups = true;
	json_array_foreach(a, i, g)
	{
		char pg[HJSON_PATH_MAX];

		hjson_path_idx(pg, pk, i);
		if (!json_is_integer(g) || json_integer_value(g) < 0 ||
		    json_integer_value(g) >= UINT32_MAX)
			return hjson_fail(v->err, pg, "expected a GID (0 to 4294967294)");
		k->groups[i] = (uint32_t)json_integer_value(g);
		k->n_groups = i + 1;
	}
	return 0;
}

/*
 * "mount_ns": {"propagation": "private"|"shared", "mounts": [{"type": "tmpfs", "target"} or
 * {"type": "bind", "source", "target"}]}: the step's process gets a mount namespace of its own
 * (made rprivate, the mounts done in order, then rshared if asked), gone with its processes.
 */
static int start_parse_mount_ns(struct hstep_pctx *v, json_t *e, const char *pi,
				struct hstep_start *k)
{
	static const char *const keys[] = { "propagation", "mounts", NULL };
	static const char *const mkeys[] = { "type", "source", "target", NULL };
	static const char *const props[] = { "private", "shared", NULL };
	static const char *const types[] = { "tmpfs", "bind", NULL };
	char pk[HJSON_PATH_MAX], pm[HJSON_PATH_MAX];
	json_t *o = NULL, *arr = NULL, *m;
	int prop = 0, r;
	size_t i, n;

	r = hjson_obj(e, pi, "mount_ns", false, &o, v->err);
	if (r < 0 || !o)
		return r;
	hjson_path_key(pk, pi, "mount_ns");
	r = hjson_only_keys(o, pk, keys, v->err);
	r = r ?: hjson_enum(o, pk, "propagation", false, props, &prop, v->err);
	r = r ?: hjson_arr(o, pk, "mounts", false, &arr, v->err);
	if (r < 0)
		return r;
	k->mount_ns = true;
	k->mount_shared = prop == 1;
	n = json_array_size(arr);
	k->mount_type = calloc(n + 1, sizeof(char *));
	k->mount_source = calloc(n + 1, sizeof(char *));
	k->mount_target = calloc(n + 1, sizeof(char *));
	if (!k->mount_type || !k->mount_source || !k->mount_target)
		return -ENOMEM;
	hjson_path_key(pm, pk, "mounts");
	json_array_foreach(arr, i, m)
	{
		char px[HJSON_PATH_MAX];
		int type = 0;

		hjson_path_idx(px, pm, i);
		r = hjson_only_keys(m, px, mkeys, v->err);
		r = r ?: hjson_enum(m, px, "type", true, types, &type, v->err);
		r = r ?: hcase_dup_str(m, px, "target", true, &k->mount_target[i], v->err);
		r = r ?: hcase_dup_str(m, px, "source", type == 1, &k->mount_source[i], v->err);
		if (r < 0)
			return r;
		k->mount_type[i] = strdup(types[type]);
		if (!k->mount_type[i])
			return -ENOMEM;
		if (!k->mount_source[i] && !(k->mount_source[i] = strdup("tmpfs")))
			return -ENOMEM;
		if (k->mount_target[i][0] != '/' && k->mount_target[i][0] != '{')
			return hjson_fail(v->err, px, "a mount target is an absolute path");
	}
	return 0;
}

/* "cap_inheritable": [N...]: capability numbers (CAP_NET_BIND_SERVICE is 10), 0 to 63. */
static int start_parse_caps(struct hstep_pctx *v, json_t *e, const char *pi, struct hstep_start *k)
{
	char pk[HJSON_PATH_MAX];
	json_t *a = NULL, *c;
	size_t i;
	int r;

	r = hjson_arr(e, pi, "cap_inheritable", false, &a, v->err);
	if (r < 0 || !a)
		return r;
	hjson_path_key(pk, pi, "cap_inheritable");
	json_array_foreach(a, i, c)
	{
		char pc[HJSON_PATH_MAX];

		hjson_path_idx(pc, pk, i);
		if (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > 63)
			return hjson_fail(v->err, pc, "expected a capability number (0 to 63)");
		k->cap_inh |= 1ull << json_integer_value(c);
	}
	return 0;
}

/*
 * "listeners": {"udp", "tcp", "tcp_busy"}: sockets the harness binds on vars.listen; "pair2":
 * a second UDP + TCP pair on another IP:PORT (IPv4 or IPv6).
 */
static int start_parse_listeners(struct hstep_pctx *v, json_t *e, const char *pi,
				 struct hstep_start *k)
{
	static const char *const keys[] = { "udp",    "tcp",   "tcp_busy", "udp_at",
					    "tcp_at", "pair2", NULL };
	char pk[HJSON_PATH_MAX];
	json_t *l = NULL, *listen;
	int r;

	r = hjson_obj(e, pi, "listeners", false, &l, v->err);
	if (r < 0 || !l)
		return r;
	hjson_path_key(pk, pi, "listeners");
	r = hjson_only_keys(l, pk, keys, v->err);
	r = r ?: hjson_bool(l, pk, "udp", false, &k->lis_udp, v->err);
	r = r ?: hjson_bool(l, pk, "tcp", false, &k->lis_tcp, v->err);
	r = r ?: hjson_bool(l, pk, "tcp_busy", false, &k->lis_tcp_busy, v->err);
	r = r ?: hcase_dup_str(l, pk, "udp_at", false, &k->lis_udp_at, v->err);
	r = r ?: hcase_dup_str(l, pk, "tcp_at", false, &k->lis_tcp_at, v->err);
	r = r ?: hcase_dup_str(l, pk, "pair2", false, &k->lis_pair2, v->err);
	if (r < 0)
		return r;
	if (k->lis_pair2 && (!hcase_hostport_valid(k->lis_pair2) || !k->lis_udp))
		return hjson_fail(v->err, pk, "\"pair2\" is IP:PORT, with \"udp\"");
	/* A socket bound elsewhere than --listen: the mismatches DNS-CLI-003 refuses. */
	if ((k->lis_udp_at && !hcase_hostport_valid(k->lis_udp_at)) ||
	    (k->lis_tcp_at && !hcase_hostport_valid(k->lis_tcp_at)))
		return hjson_fail(v->err, pk, "\"udp_at\" and \"tcp_at\" are IP:PORT");
	if ((k->lis_udp_at && !k->lis_udp) || (k->lis_tcp_at && !k->lis_tcp))
		return hjson_fail(v->err, pk, "\"udp_at\" needs \"udp\", \"tcp_at\" \"tcp\"");
	listen = json_object_get(json_object_get(e, "vars"), "listen");
	if (!json_is_string(listen) || !hcase_hostport_valid(json_string_value(listen)))
		return hjson_fail(v->err, pk, "listeners need \"vars\".\"listen\" as IP:PORT");
	if (k->lis_tcp && k->lis_tcp_busy)
		return hjson_fail(v->err, pk, "\"tcp\" and \"tcp_busy\" exclude each other");
	return 0;
}

/* The start step's keys, each on its own; *comp is the component it names (or the case's). */
static int start_parse_keys(struct hstep_pctx *v, json_t *e, const char *pi, struct hstep_start *k,
			    int *comp)
{
	static const char *const sinks[] = { "file", "full", "stalled", "shared", NULL };
	static const char *const readies[] = { "byte", "none", NULL };
	int sink = 0, rdy = 0, r;

	k->ready = true;
	r = hjson_enum(e, pi, "component", false, hcase_component_names, comp, v->err);
	r = r ?: hjson_strv(e, pi, "args", false, false, &k->args, NULL, v->err);
	r = r ?: hjson_obj(e, pi, "vars", false, &k->vars, v->err);
	/* Owned from here on: hcase_free() drops it whatever fails below. */
	json_incref(k->vars);
	r = r ?: hcase_dup_str(e, pi, "stdin", false, &k->stdin_file, v->err);
	r = r ?: hjson_bool(e, pi, "ready", false, &k->ready, v->err);
	if (r < 0)
		return r;
	r = hjson_enum(e, pi, "events_sink", false, sinks, &sink, v->err);
	r = r ?: hjson_enum(e, pi, "expect_ready", false, readies, &rdy, v->err);
	if (r < 0)
		return r;
	k->sink = sink;
	k->expect_no_ready = rdy == 1;
	r = hjson_bool(e, pi, "stdin_pipe", false, &k->stdin_pipe, v->err);
	r = r ?: hjson_bool(e, pi, "prefill", false, &k->prefill, v->err);
	r = r ?: hcase_dup_str(e, pi, "command", false, &k->command, v->err);
	r = r ?: hjson_strv(e, pi, "argv", false, true, &k->argv, NULL, v->err);
	r = r ?: hjson_obj(e, pi, "env", false, &k->env, v->err);
	json_incref(k->env);
	r = r ?: start_parse_user(v, e, pi, k);
	r = r ?: start_parse_groups(v, e, pi, k);
	r = r ?: start_parse_mount_ns(v, e, pi, k);
	r = r ?: hjson_bool(e, pi, "uts_ns", false, &k->uts_ns, v->err);
	r = r ?: start_parse_caps(v, e, pi, k);
	r = r ?: start_parse_listeners(v, e, pi, k);
	return r;
}

/* A start step: the component, its argv, sink, user, mounts, listeners (hcase.h). */
static int start_parse(struct hstep_pctx *v, json_t *e, const char *pi, size_t idx,
		       struct hcase_step *s)
{
	struct hstep_start *k = &s->start;
	int comp = (int)v->c->component;
	const char *key;
	json_t *val;
	char pk[HJSON_PATH_MAX];
	int r;

	r = start_parse_keys(v, e, pi, k, &comp);
	if (r < 0)
		return r;
	if (k->prefill && k->sink != HCASE_SINK_STALLED)
		return hjson_fail(v->err, pi, "\"prefill\" goes with \"events_sink\": \"stalled\"");
	if (k->command && strcmp(k->command, "cleanup") != 0) {
		hjson_path_key(pk, pi, "command");
		return hjson_fail(v->err, pk, "unknown command \"%s\" (known: cleanup)",
				  k->command);
	}
	if (k->command && k->argv)
		return hjson_fail(v->err, pi, "\"command\" and \"argv\" exclude each other");
	if (k->env) {
		hjson_path_key(pk, pi, "env");
		json_object_foreach(k->env, key, val)
		{
			char pv[HJSON_PATH_MAX];

			hjson_path_key(pv, pk, key);
			if (!json_is_string(val) || !key[0] || strchr(key, '='))
				return hjson_fail(v->err, pv,
						  "expected NAME (no '=') with a string value");
		}
	}
	if (k->stdin_pipe && k->stdin_file)
		return hjson_fail(v->err, pi, "\"stdin\" and \"stdin_pipe\" exclude each other");
	k->component = comp;
	if (!(v->c->uses & (1u << comp))) {
		hjson_path_key(pk, pi, "component");
		return hjson_fail(
			v->err, pk,
			"component \"%s\" is neither the case's component nor in \"uses\"",
			hcase_component_names[comp]);
	}
	if (!s->name)
		return hjson_fail(v->err, pi,
				  "a start step needs a \"name\" (stop and "
				  "expectations refer to it)");
	if (k->vars) {
		hjson_path_key(pk, pi, "vars");
		json_object_foreach(k->vars, key, val)
		{
			char pv[HJSON_PATH_MAX];

			hjson_path_key(pv, pk, key);
			/* An object is written to a file whose path fills the
			 * placeholder (an inline cell spec). */
			if (!json_is_string(val) && !json_is_object(val))
				return hjson_fail(v->err, pv, "expected a string or an object");
		}
	}
	return 0;
}

static int add_var(struct hprof_var *v, size_t *n, const char *name, const char *value)
{
	v[*n].name = name;
	v[*n].value = value;
	(*n)++;
	return 0;
}

static bool argv_mentions(char **argv, const char *ph)
{
	for (; argv && *argv; argv++)
		if (strstr(*argv, ph))
			return true;
	return false;
}

/* A socket bound (and listening, for TCP) on IP:PORT inside the step's namespace. */
static int listener_in_ns(struct run *r, const struct hcase_step *st, const char *hostport,
			  int type)
{
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	char ip[64];
	const char *colon = strrchr(hostport, ':'), *host = hostport;
	size_t hl = colon ? (size_t)(colon - hostport) : 0;
	int nfd = htopo_step_ns_fd(r, st), fd = -1, one = 1, e = 0;

	if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	if (!colon || hl >= sizeof(ip) || self < 0)
		return -EINVAL;
	memcpy(ip, host, hl);
	ip[hl] = '\0';
	if (inet_pton(AF_INET, ip, &sa->sin_addr) == 1) {
		sa->sin_family = AF_INET;
		sa->sin_port = htons((uint16_t)atoi(colon + 1));
		slen = sizeof(*sa);
	} else if (inet_pton(AF_INET6, ip, &sa6->sin6_addr) == 1) {
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)atoi(colon + 1));
		slen = sizeof(*sa6);
	} else {
		return -EAFNOSUPPORT;
	}
	if (nfd >= 0 && setns(nfd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	/* IPv6-only, as a DNS listener is: the IPv4 side of the port stays free. */
	if (fd < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    (type == SOCK_STREAM &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, slen) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0))
		e = -errno;
	/* The runner's own namespace back before anything else happens. */
	if (nfd >= 0 && setns(self, CLONE_NEWNET) < 0 && !e)
		e = -errno;
	if (e < 0) {
		if (fd >= 0)
			close(fd);
		return e;
	}
	return fd;
}

/*
 * A start step's "vars" value that is an object (an inline cell spec) is written to
 * CASE_DIR/STEP.VAR.json and the placeholder names that file; the supervisor's "spec" given as
 * a relative path is relative to the source tree.
 */
static char *var_value(struct run *r, const struct hcase_step *st, const struct hrvars *rv,
		       const char *k, json_t *v)
{
	char *p = NULL;

	if (json_is_object(v)) {
		if (asprintf(&p, "%s/%s.%s.json", r->dir, st->name, k) < 0)
			return NULL;
		if (json_dump_file(v, p, JSON_COMPACT) < 0 ||
		    (st->start.has_user && chown(p, st->start.uid, st->start.gid) < 0)) {
			free(p);
			return NULL;
		}
		return p;
	}
	/* Expanded first: "{case_dir}/spec.json" (a spec a file step wrote) is absolute. */
	p = hrvars_expand(rv, json_string_value(v));
	if (p && st->start.component == HCASE_SUPERVISOR && strcmp(k, "spec") == 0 && p[0] != '/') {
		char *q = NULL;

		if (asprintf(&q, "%s/%s", r->ctx->srcdir, p) < 0)
			q = NULL;
		free(p);
		return q;
	}
	return p;
}

/*
 * {hex:HH...} in a start step's args becomes those bytes, before the other placeholders: the
 * only way a case (JSON, so UTF-8) can hand a program an argument that is not UTF-8.
 */
static char **args_unhex(char *const *args)
{
	size_t n = 0;
	char **out;

	while (args && args[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		const char *a = args[i];
		char *o = malloc(strlen(a) + 1), *w = o;

		if (!o) {
			hjson_strv_free(out);
			return NULL;
		}
		out[i] = o;
		while (*a) {
			unsigned int b;

			if (strncmp(a, "{hex:", 5) != 0) {
				*w++ = *a++;
				continue;
			}
			a += 5;
			while (isxdigit((unsigned char)a[0]) && isxdigit((unsigned char)a[1]) &&
			       sscanf(a, "%2x", &b) == 1) {
				*w++ = (char)b;
				a += 2;
			}
			if (*a == '}')
				a++;
		}
		*w = '\0';
	}
	return out;
}

/* What a start step prepares, in the order it needs it; freed by start_free. */
struct start {
	struct run *r;
	const struct hcase_step *st;
	const struct hprof_comp *pc;
	struct proc *p;
	struct hprof_var vars[128];
	size_t nv;
	struct hrvars rv;
	char *owned[64]; /* values of the case's vars */
	size_t n_owned;
	char *nsp, *missing, *stdin_path;
	char **argv, **env, **args, **mnt_src, **mnt_tgt;
	char ready_s[8], cell_id[96];
	int rp[2], ip[2], lis[4]; /* ready pipe, stdin pipe, listeners handed over */
	bool want_ready;
	const char *listen;
};

/* The process's slot and its files; false (a problem noted) when out of memory. */
static bool start_proc(struct start *s)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;

	memset(p, 0, sizeof(*p));
	p->st = st;
	p->comp = st->start.component;
	p->stdin_w = -1;
	p->sink_fd = -1;
	p->busy_fd = -1;
	hrvars_build(r, st, &s->rv);
	if (asprintf(&p->out_path, "%s/%s.stdout", r->dir, st->name) < 0 ||
	    asprintf(&p->err_path, "%s/%s.stderr", r->dir, st->name) < 0 ||
	    asprintf(&p->ev_path, "%s/%s.events.jsonl", r->dir, st->name) < 0 ||
	    asprintf(&p->rec_path, "%s/%s.records", r->dir, st->name) < 0 || !s->nsp) {
		run_verdict(r, HREP_ERROR, "start %s: out of memory", st->name);
		hrvars_free(&s->rv);
		return false;
	}
	r->n_procs++;
	snprintf(s->ready_s, sizeof(s->ready_s), "%d", READY_FD);
	snprintf(s->cell_id, sizeof(s->cell_id), "cc-%s", r->c->id);
	return true;
}

/* The case's vars first: a case may name its own {events} (a file it planted, "-"). */
static int start_case_vars(struct start *s)
{
	const char *k;
	json_t *v;

	json_object_foreach(s->st->start.vars, k, v)
	{
		if (s->nv >= ARRAY_SIZE(s->vars) - ARRAY_SIZE(s->rv.names) - 12 ||
		    s->n_owned >= ARRAY_SIZE(s->owned) - 4)
			break;
		s->owned[s->n_owned] = var_value(s->r, s->st, &s->rv, k, v);
		if (!s->owned[s->n_owned]) {
			run_verdict(s->r, HREP_ERROR, "start %s: vars.%s: cannot prepare its value",
				    s->st->name, k);
			return -EINVAL;
		}
		add_var(s->vars, &s->nv, k, s->owned[s->n_owned++]);
	}
	for (size_t i = 0; i < s->rv.n; i++)
		add_var(s->vars, &s->nv, s->rv.names[i], s->rv.values[i]);
	if (s->r->c->upstream && !json_object_get(s->st->start.vars, "upstream"))
		add_var(s->vars, &s->nv, "upstream",
			json_string_value(json_object_get(s->r->c->upstream, "listen")));
	return 0;
}

/*
 * The sink, and a step run as another user must reach what it is given: the case dir is
 * searchable, its event file (made here) and inline vars files (var_value) are that user's.
 */
static int start_sink(struct start *s)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;
	int e;

	if (st->start.sink == HCASE_SINK_STALLED && (e = hsink_stalled(r, p)) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: stalled sink: %s", st->name,
			    util_errno_name(-e));
		return e;
	}
	if (st->start.sink == HCASE_SINK_SHARED &&
	    (p->noise_pid = hsink_noise_start(r, p->ev_path)) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: shared sink writer: %s", st->name,
			    util_errno_name(errno));
		return -EIO;
	}
	if (st->start.has_user) {
		_cleanup_close_ int efd =
			open(p->ev_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (chmod(r->ctx->run_dir, 0711) < 0 || chmod(r->dir, 0711) < 0 || efd < 0 ||
		    fchown(efd, st->start.uid, st->start.gid) < 0) {
			run_verdict(r, HREP_ERROR, "start %s: files for user %u: %s", st->name,
				    st->start.uid, util_errno_name(errno));
			return -EPERM;
		}
	}
	return 0;
}

/* The runner's own values, then the argv: the step's, a profile command's or the template. */
static int start_argv(struct start *s)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;
	int e;

	/* A sink that fails every write (ENOSPC), for the failing-sink cases. */
	add_var(s->vars, &s->nv, "events",
		st->start.sink == HCASE_SINK_FULL      ? "/dev/full"
		: st->start.sink == HCASE_SINK_STALLED ? p->fifo_path
						       : p->ev_path);
	add_var(s->vars, &s->nv, "records", p->rec_path);
	add_var(s->vars, &s->nv, "netns", s->nsp);
	add_var(s->vars, &s->nv, "ready_fd", s->ready_s);
	add_var(s->vars, &s->nv, "cell_id", s->cell_id);
	add_var(s->vars, &s->nv, "run_id", r->ctx->run_id);
	add_var(s->vars, &s->nv, "udp_fd", "4");
	add_var(s->vars, &s->nv, "tcp_fd", "5");
	add_var(s->vars, &s->nv, "udp_fd2", "6");
	add_var(s->vars, &s->nv, "tcp_fd2", "7");
	if (st->start.argv) {
		size_t n = 0;

		while (st->start.argv[n])
			n++;
		s->argv = calloc(n + 1, sizeof(*s->argv));
		for (size_t i = 0; s->argv && i < n; i++)
			if (hprof_expand(st->start.argv[i], s->vars, s->nv, &s->argv[i],
					 &s->missing) < 0) {
				e = -ENOENT;
				break;
			}
		e = !s->argv ? -ENOMEM : s->missing ? -ENOENT : 0;
	} else if (st->start.command) {
		e = hprof_cmd_argv(r->j->prof, st->start.component, st->start.command, s->vars,
				   s->nv, s->args, &s->argv, &s->missing);
	} else {
		e = hprof_argv(r->j->prof, st->start.component, s->vars, s->nv, s->args, &s->argv,
			       &s->missing);
	}
	if (e < 0)
		run_verdict(r, HREP_ERROR, "start %s: argv template: %s%s%s%s", st->name,
			    util_errno_name(-e), s->missing ? ": no value for {" : "",
			    s->missing ?: "", s->missing ? "}" : "");
	return e;
}

/*
 * LeakSanitizer cannot work in a process that another one traces (at exit it ptraces its own
 * threads), so an ASan build of the IUT would abort at its exit for that alone in a case that
 * attaches strace to it. When the harness itself was given ASAN_OPTIONS (the catalogue under
 * ASan, meson suite "catalogue"), such a case's processes get detect_leaks=0 appended; every
 * other ASan check stays, and nothing changes for a build without ASan. NULL: nothing to add.
 */
static char *start_asan_env(const struct hcase *c)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char *out = NULL;

	if (!asan)
		return NULL;
	for (size_t i = 0; c->features && c->features[i]; i++)
		if (!strcmp(c->features[i], "tool:strace"))
			return asprintf(&out, "ASAN_OPTIONS=%s:detect_leaks=0", asan) < 0 ? NULL
											  : out;
	return NULL;
}

/* Mount sources and targets with placeholders filled, and the environment the step adds. */
static int start_mounts_env(struct start *s)
{
	const struct hcase_step *st = s->st;
	char *asan = start_asan_env(s->r->c);
	size_t n_env = 0;
	const char *k;
	json_t *v;

	if (st->start.mount_ns) {
		size_t n = 0;

		while (st->start.mount_target[n])
			n++;
		s->mnt_src = calloc(n + 1, sizeof(*s->mnt_src));
		s->mnt_tgt = calloc(n + 1, sizeof(*s->mnt_tgt));
		for (size_t i = 0; s->mnt_src && s->mnt_tgt && i < n; i++) {
			s->mnt_src[i] = hrvars_expand(&s->rv, st->start.mount_source[i]);
			s->mnt_tgt[i] = hrvars_expand(&s->rv, st->start.mount_target[i]);
		}
	}
	if (!st->start.env && !asan)
		return 0;
	s->env = calloc(json_object_size(st->start.env) + 2, sizeof(*s->env));
	if (s->env && asan)
		s->env[n_env++] = asan;
	else
		free(asan);
	json_object_foreach(s->env ? st->start.env : NULL, k, v)
	{
		_cleanup_free_ char *val = NULL;

		if (hprof_expand(json_string_value(v), s->vars, s->nv, &val, &s->missing) < 0 ||
		    asprintf(&s->env[n_env], "%s=%s", k, val) < 0) {
			run_verdict(s->r, HREP_ERROR, "start %s: env.%s: cannot prepare its value",
				    st->name, k);
			return -EINVAL;
		}
		n_env++;
	}
	return 0;
}

/* Listeners handed over as fds 4 to 7, a busy one the harness keeps, and the pipes. */
static int start_fds(struct start *s)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;

	for (int t = 0; t < 2; t++) {
		bool want = t == 0 ? st->start.lis_udp : st->start.lis_tcp;
		const char *at =
			(t == 0 ? st->start.lis_udp_at : st->start.lis_tcp_at) ?: s->listen;

		if (want && (s->lis[t] = listener_in_ns(r, st, at,
							t == 0 ? SOCK_DGRAM : SOCK_STREAM)) < 0) {
			run_verdict(r, HREP_ERROR, "start %s: %s listener on %s: %s", st->name,
				    t == 0 ? "UDP" : "TCP", at, util_errno_name(-s->lis[t]));
			return -EIO;
		}
	}
	/* A second pair, UDP on fd 6 and TCP on fd 7: several listen addresses (DNS-CLI-007). */
	for (int t = 2; st->start.lis_pair2 && t < 4; t++) {
		if ((s->lis[t] = listener_in_ns(r, st, st->start.lis_pair2,
						t == 2 ? SOCK_DGRAM : SOCK_STREAM)) < 0) {
			run_verdict(r, HREP_ERROR, "start %s: %s listener on %s: %s", st->name,
				    t == 2 ? "UDP" : "TCP", st->start.lis_pair2,
				    util_errno_name(-s->lis[t]));
			return -EIO;
		}
	}
	if (st->start.lis_tcp_busy &&
	    (p->busy_fd = listener_in_ns(r, st, s->listen, SOCK_STREAM)) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: busy TCP listener on %s: %s", st->name,
			    s->listen, util_errno_name(-p->busy_fd));
		p->busy_fd = -1;
		return -EIO;
	}
	if (st->start.stdin_file &&
	    asprintf(&s->stdin_path, "%s/%s", r->ctx->srcdir, st->start.stdin_file) < 0)
		return -ENOMEM;
	if (s->want_ready && st->start.ready && pipe2(s->rp, O_CLOEXEC) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: pipe: %s", st->name, util_errno_name(errno));
		return -EIO;
	}
	/* Not waited for: {ready_fd} still names an open fd (a sink), as the option demands. */
	if (s->want_ready && !st->start.ready &&
	    (s->rp[1] = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: /dev/null: %s", st->name,
			    util_errno_name(errno));
		return -EIO;
	}
	if (st->start.stdin_pipe && pipe2(s->ip, O_CLOEXEC) < 0) {
		run_verdict(r, HREP_ERROR, "start %s: pipe: %s", st->name, util_errno_name(errno));
		return -EIO;
	}
	return 0;
}

/* Close *fd if open and mark it closed. */
static void close_fd_at(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int start_spawn(struct start *s)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;
	/* The profile passes the netns as {netns}; one that does not gets it by setns. */
	struct hproc_spawn_opts o = {
		.argv = s->argv,
		.netns_fd = !st->start.argv && !st->start.command &&
					    argv_mentions(s->pc->argv, "{netns}")
				    ? -1
				    : htopo_step_ns_fd(r, st),
		.stdin_path = s->stdin_path,
		.stdin_fd = s->ip[0],
		.out_path = p->out_path,
		.err_path = p->err_path,
		.ready_wfd = s->rp[1],
		.lis_fd = { s->lis[0], s->lis[1], s->lis[2], s->lis[3] },
		.fault = r->j->filter ? NULL : r->j->fault,
		.env = s->env,
		.has_user = st->start.has_user,
		.mnt_fd = -1,
		.cap_inh = st->start.cap_inh,
		.mount_ns = st->start.mount_ns,
		.uts_ns = st->start.uts_ns,
		.mount_shared = st->start.mount_shared,
		.mount_type = st->start.mount_type,
		.mount_source = s->mnt_src,
		.mount_target = s->mnt_tgt,
		.groups = st->start.groups,
		.n_groups = st->start.n_groups,
		.has_groups = st->start.has_groups,
		.uid = st->start.uid,
		.gid = st->start.gid,
	};
	int e = hproc_spawn(r, &o, &p->pid);

	/* The child's ends: only the child keeps them now. */
	close_fd_at(&s->rp[1]);
	close_fd_at(&s->ip[0]);
	/* Kept (close-on-exec) for the feed steps; closed at the latest with the case. */
	p->stdin_w = s->ip[1];
	s->ip[1] = -1;
	if (e < 0) {
		run_verdict(r, HREP_ERROR, "start %s: cannot execute %s: %s", st->name, s->argv[0],
			    util_errno_name(-e));
		return e;
	}
	p->running = true;
	return 0;
}

/*
 * The wait for the ready byte: n is poll's answer over the ready pipe (pf[0]) and the process
 * (its pidfd): nothing in time, an end without the byte, the byte, or the byte where the step
 * expected none.
 */
static void start_ready_judge(struct start *s, int n, int ms, const struct pollfd *pf)
{
	struct run *r = s->r;
	const struct hcase_step *st = s->st;
	struct proc *p = s->p;
	char b;

	if (n == 0) {
		char tail[320];

		if (run_timed_out(r))
			;
		else if (st->start.expect_no_ready)
			run_verdict(r, HREP_FAIL,
				    "start %s: ready fd neither written nor closed within %d ms, "
				    "expected it closed without a byte; stderr ends: %s",
				    st->name, ms, hfile_tail(p->err_path, tail, sizeof(tail)));
		else
			run_verdict(r, HREP_FAIL,
				    "start %s: not ready within %d ms, expected a byte on the "
				    "ready fd; stderr ends: %s",
				    st->name, ms, hfile_tail(p->err_path, tail, sizeof(tail)));
	} else if (n > 0 && (!(pf[0].revents & (POLLIN | POLLHUP)) || read(s->rp[0], &b, 1) != 1)) {
		char got[80], tail[320];
		int status = -1;

		if (hproc_wait_exit(p->pid, (int)run_scaled(r, 1000), &status)) {
			p->running = false;
			p->exited = true;
			p->status = status;
		}
		if (!st->start.expect_no_ready)
			run_verdict(r, HREP_FAIL,
				    "start %s: ended before its ready byte (%s), expected a byte "
				    "on the ready fd; stderr ends: %s",
				    st->name, hproc_status_text(status, got),
				    hfile_tail(p->err_path, tail, sizeof(tail)));
	} else if (n > 0 && st->start.expect_no_ready) {
		run_verdict(r, HREP_FAIL, "start %s: wrote a ready byte, expected none", st->name);
	} else if (n > 0) {
		/* What the sink held when the byte came: ready.STEP.events. */
		char name[160];

		snprintf(name, sizeof(name), "ready.%s.events", st->name);
		run_set_num(r->vars, name, hsink_lines(r, p->ev_path));
	}
}

static void start_wait_ready(struct start *s)
{
	uint32_t cap = s->st->timeout_ms ?: s->pc->start_timeout_ms;
	_cleanup_close_ int pidfd = hproc_pidfd_open(s->p->pid);
	/* The process's death ends the wait too: its ready fd may live on in a child. */
	struct pollfd pf[2] = { { .fd = s->rp[0], .events = POLLIN },
				{ .fd = pidfd, .events = POLLIN } };
	int ms = run_remaining_ms(s->r, cap), n;

	n = poll(pf, pidfd >= 0 ? 2 : 1, ms);
	if (n > 0 && !(pf[0].revents & (POLLIN | POLLHUP))) {
		/* Exited: a byte written just before the end is still in the pipe. */
		struct pollfd last = { .fd = s->rp[0], .events = POLLIN };

		if (poll(&last, 1, 0) == 1)
			pf[0].revents = last.revents;
	}
	start_ready_judge(s, n, ms, pf);
}

/* Everything the start prepared, also when it stopped half way (fds included: none leaks). */
static void start_free(struct start *s)
{
	for (int t = 0; t < 4; t++)
		close_fd_at(&s->lis[t]);
	for (int t = 0; t < 2; t++) {
		close_fd_at(&s->rp[t]);
		close_fd_at(&s->ip[t]);
	}
	hjson_strv_free(s->argv);
	hjson_strv_free(s->env);
	hjson_strv_free(s->args);
	hjson_strv_free(s->mnt_src);
	hjson_strv_free(s->mnt_tgt);
	for (size_t i = 0; i < s->n_owned; i++)
		free(s->owned[i]);
	hrvars_free(&s->rv);
	free(s->nsp);
	free(s->missing);
	free(s->stdin_path);
}

/* Each preparation reports its own problem, and the start stops there. */
static void start_run(struct run *r, const struct hcase_step *st)
{
	const struct hprof_comp *pc = &r->j->prof->comp[st->start.component];
	struct start s = {
		.r = r,
		.st = st,
		.pc = pc,
		.p = &r->procs[r->n_procs],
		.nsp = htopo_netns_path(r, st),
		.args = args_unhex(st->start.args),
		.rp = { -1, -1 },
		.ip = { -1, -1 },
		.lis = { -1, -1, -1, -1 },
		.want_ready = pc->ready_fd && !st->start.argv && !st->start.command,
		.listen = json_string_value(json_object_get(st->start.vars, "listen")),
	};

	if (!start_proc(&s)) {
		hjson_strv_free(s.args);
		free(s.nsp);
		return;
	}
	if (start_case_vars(&s) < 0 || start_sink(&s) < 0 || start_argv(&s) < 0 ||
	    start_mounts_env(&s) < 0 || start_fds(&s) < 0 || start_spawn(&s) < 0)
		goto out;
	if (s.rp[0] >= 0)
		start_wait_ready(&s);
out:
	start_free(&s);
}

/* The step's members (start_free is the run's preparations). */
static void start_step_free(struct hcase_step *s)
{
	struct hstep_start *k = &s->start;

	hjson_strv_free(k->args);
	json_decref(k->vars);
	free(k->stdin_file);
	free(k->command);
	hjson_strv_free(k->argv);
	free(k->groups);
	json_decref(k->env);
	free(k->lis_udp_at);
	free(k->lis_tcp_at);
	free(k->lis_pair2);
	hjson_strv_free(k->mount_type);
	hjson_strv_free(k->mount_source);
	hjson_strv_free(k->mount_target);
}

static const char *const start_keys[] = {
	"component",
	"args",
	"vars",
	"stdin",
	"ready",
	"events_sink",
	"stdin_pipe",
	"command",
	"argv",
	"user",
	"env",
	"listeners",
	"expect_ready",
	"prefill",
	"groups",
	"mount_ns",
	"cap_inheritable",
	"uts_ns",
	NULL,
};

const struct hstep_kind hstep_kind_start = {
	.name = "start",
	.keys = start_keys,
	.parse = start_parse,
	.run = start_run,
	.free = start_step_free,
};
