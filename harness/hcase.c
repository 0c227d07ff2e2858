// SPDX-License-Identifier: Apache-2.0
#include "hcase.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hprobe.h"
#include "hprof.h"
#include "steps/hstep.h"
#include "util.h"

const char *const hcase_level_names[] = { "MUST", "SHOULD", "MAY", NULL };
const char *const hcase_component_names[] = { "decoder", "flow-monitor", "dns-proxy", "supervisor",
					      NULL };

static int name_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -EINVAL;
}

int hcase_level_from_name(const char *s)
{
	return name_index(hcase_level_names, s);
}

int hcase_component_from_name(const char *s)
{
	return name_index(hcase_component_names, s);
}

bool hcase_id_valid(const char *id)
{
	/* Lowercase dotted segments of [a-z0-9-], at least two, no empty segment. */
	size_t segs = 1, len = 0;

	if (!id || !*id || strlen(id) > 128)
		return false;
	for (const char *p = id; *p; p++) {
		if (*p == '.') {
			if (len == 0 || p[1] == '\0')
				return false;
			segs++;
			len = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
			if (*p == '-' && len == 0)
				return false;
			len++;
		} else {
			return false;
		}
	}
	return segs >= 2;
}

bool hcase_req_id_valid(const char *id)
{
	/* PREFIX-NNN where PREFIX is one or more uppercase groups joined by '-' (SPEC 0.2). */
	size_t n;

	if (!id)
		return false;
	n = strlen(id);
	if (n < 5 || n > 32 || id[n - 4] != '-')
		return false;
	for (size_t i = n - 3; i < n; i++)
		if (!isdigit((unsigned char)id[i]))
			return false;
	if (!isupper((unsigned char)id[0]))
		return false;
	for (size_t i = 0; i < n - 4; i++) {
		char c = id[i];

		if (c == '-' && (id[i + 1] == '-' || i + 1 == n - 4))
			return false;
		if (!(isupper((unsigned char)c) || c == '-'))
			return false;
	}
	return true;
}

static bool ns_name_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 32 || !islower((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

static bool ip_valid(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool prefix_valid(const char *s)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	unsigned long long len;
	unsigned char buf[16];
	size_t n;

	if (!slash)
		return false;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, buf) == 1)
		return util_parse_u64(slash + 1, 0, 32, &len) == 0;
	if (inet_pton(AF_INET6, ip, buf) == 1)
		return util_parse_u64(slash + 1, 0, 128, &len) == 0;
	return false;
}

/* "A.B.C.D:PORT", "[v6]:PORT", or a placeholder "{name}" filled at run time. */
static bool hostport_valid(const char *s)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *colon;
	unsigned long long port;
	size_t n;

	if (s[0] == '{')
		return s[strlen(s) - 1] == '}';
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return false;
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof(ip))
			return false;
		memcpy(ip, s + 1, n);
		ip[n] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(ip))
			return false;
		memcpy(ip, s, n);
		ip[n] = '\0';
	}
	return ip_valid(ip) && util_parse_u64(colon + 1, 1, 65535, &port) == 0;
}

static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) ||
		    !isprint((unsigned char)*s))
			return false;
	return true;
}

static bool feature_valid(const char *f)
{
	if (hprobe_feature_from_name(f) >= 0 || strcmp(f, "root") == 0)
		return true;
	if (strncmp(f, "tool:", 5) == 0 && f[5]) {
		for (const char *p = f + 5; *p; p++)
			if (!(isalnum((unsigned char)*p) || strchr("._+-", *p)))
				return false;
		return true;
	}
	return false;
}

/* Context while validating one case: names declared so far, for cross-references. */
struct vctx {
	struct hjson_err *err;
	struct hcase *c;
};

static bool ns_declared(const struct hcase *c, const char *ns)
{
	for (size_t i = 0; i < c->topo.n_ns; i++)
		if (strcmp(c->topo.ns[i], ns) == 0)
			return true;
	return false;
}

static int check_ns(struct vctx *v, json_t *obj, const char *path, const char *key, bool required,
		    char **ret)
{
	char p[HJSON_PATH_MAX];
	const char *s = NULL;
	int r;

	r = hjson_str(obj, path, key, required, &s, v->err);
	if (r < 0 || !s)
		return r;
	hjson_path_key(p, path, key);
	if (!ns_declared(v->c, s))
		return hjson_fail(v->err, p,
				  "namespace \"%s\" is not declared in topology.namespaces", s);
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int dup_str(json_t *obj, const char *path, const char *key, bool required, char **ret,
		   struct hjson_err *err)
{
	const char *s = NULL;
	int r;

	r = hjson_str(obj, path, key, required, &s, err);
	if (r < 0 || !s)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int parse_reqs(struct vctx *v, json_t *obj, const char *path)
{
	static const char *const keys[] = { "id", "level", "clause", NULL };
	char p[HJSON_PATH_MAX];
	json_t *arr = NULL, *e;
	size_t i;
	int r;

	r = hjson_arr(obj, path, "requirements", true, &arr, v->err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "requirements");
	if (json_array_size(arr) == 0)
		return hjson_fail(v->err, p, "a case covers at least one requirement");
	v->c->reqs = calloc(json_array_size(arr), sizeof(*v->c->reqs));
	if (!v->c->reqs)
		return -ENOMEM;
	json_array_foreach(arr, i, e)
	{
		struct hcase_req *q = &v->c->reqs[i];
		char pi[HJSON_PATH_MAX], pid[HJSON_PATH_MAX];
		int level = 0;

		v->c->n_reqs = i + 1;
		hjson_path_idx(pi, p, i);
		hjson_path_key(pid, pi, "id");
		r = hjson_only_keys(e, pi, keys, v->err);
		r = r ?: dup_str(e, pi, "id", true, &q->id, v->err);
		r = r ?: hjson_enum(e, pi, "level", true, hcase_level_names, &level, v->err);
		r = r ?: dup_str(e, pi, "clause", false, &q->clause, v->err);
		if (r < 0)
			return r;
		q->level = level;
		if (!hcase_req_id_valid(q->id))
			return hjson_fail(v->err, pid,
					  "\"%s\" is not a requirement ID (PREFIX-NNN)", q->id);
		for (size_t j = 0; j < i; j++)
			if (strcmp(v->c->reqs[j].id, q->id) == 0)
				return hjson_fail(v->err, pid, "requirement %s listed twice",
						  q->id);
	}
	return 0;
}

/* The members an endpoint and a bridge share; the caller checked the keys. */
static int parse_endpoint_keys(struct vctx *v, json_t *e, const char *path,
			       struct hcase_endpoint *ep)
{
	char p[HJSON_PATH_MAX];
	int r;

	r = check_ns(v, e, path, "ns", true, &ep->ns);
	r = r ?: dup_str(e, path, "alias", false, &ep->alias, v->err);
	r = r ?: dup_str(e, path, "ifname", true, &ep->ifname, v->err);
	r = r ?: hjson_strv(e, path, "addrs", false, false, &ep->addrs, NULL, v->err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "ifname");
	if (!ifname_valid(ep->ifname))
		return hjson_fail(v->err, p, "\"%s\" is not an interface name (1-15 bytes)",
				  ep->ifname);
	hjson_path_key(p, path, "alias");
	if (ep->alias && (!ep->alias[0] || strlen(ep->alias) > 255))
		return hjson_fail(v->err, p, "an alias is 1 to 255 bytes");
	for (size_t i = 0; ep->addrs && ep->addrs[i]; i++) {
		char pa[HJSON_PATH_MAX], pk[HJSON_PATH_MAX];

		hjson_path_key(pk, path, "addrs");
		hjson_path_idx(pa, pk, i);
		if (!prefix_valid(ep->addrs[i]))
			return hjson_fail(v->err, pa, "\"%s\" is not ADDRESS/PREFIXLEN",
					  ep->addrs[i]);
	}
	return 0;
}

static int parse_endpoint(struct vctx *v, json_t *e, const char *path, struct hcase_endpoint *ep)
{
	static const char *const keys[] = { "ns", "ifname", "addrs", "alias", NULL };
	int r;

	r = hjson_only_keys(e, path, keys, v->err);
	return r ?: parse_endpoint_keys(v, e, path, ep);
}

/*
 * A bridge: one end in one namespace, its ports named among the interfaces declared before.
 * A dummy (a lone link, for cleanup cases) has the same members but no ports.
 */
static int parse_bridge(struct vctx *v, json_t *e, const char *path, size_t idx)
{
	static const char *const keys[] = { "type",  "ns",    "ifname", "addrs",
					    "alias", "ports", "mtu",	NULL };
	struct hcase_link *l = &v->c->topo.links[idx];
	char p[HJSON_PATH_MAX];
	int r;

	r = hjson_only_keys(e, path, keys, v->err);
	r = r ?: parse_endpoint_keys(v, e, path, &l->end[0]);
	r = r ?: hjson_strv(e, path, "ports", false, false, &l->ports, NULL, v->err);
	if (r < 0)
		return r;
	if (l->type == HCASE_LINK_DUMMY && l->ports)
		return hjson_fail(v->err, path, "a dummy link has no \"ports\"");
	hjson_path_key(p, path, "ports");
	for (size_t i = 0; l->ports && l->ports[i]; i++) {
		bool found = false;

		for (size_t j = 0; j < idx; j++)
			for (size_t k = 0; k < 2; k++) {
				const struct hcase_endpoint *x = &v->c->topo.links[j].end[k];

				if (x->ns && strcmp(x->ns, l->end[0].ns) == 0 &&
				    strcmp(x->ifname, l->ports[i]) == 0)
					found = true;
			}
		if (!found)
			return hjson_fail(v->err, p,
					  "port \"%s\" is no interface of an earlier link in %s",
					  l->ports[i], l->end[0].ns);
	}
	return 0;
}

/* A topology object at path p (inline in a case, or a named topology's file); keys checked. */
static int parse_topology_obj(struct vctx *v, json_t *topo, const char *p)
{
	static const char *const link_keys[] = { "type", "ends", "mtu", NULL };
	static const char *const route_keys[] = { "ns", "dst", "via", NULL };
	static const char *const link_types[] = { "veth", "bridge", "dummy", NULL };
	struct hcase_topo *t = &v->c->topo;
	char pl[HJSON_PATH_MAX];
	json_t *arr = NULL, *e;
	size_t i;
	int r;

	r = hjson_strv(topo, p, "namespaces", true, true, &t->ns, &t->n_ns, v->err);
	if (r < 0)
		return r;
	for (i = 0; i < t->n_ns; i++) {
		char pn[HJSON_PATH_MAX], pi[HJSON_PATH_MAX];

		hjson_path_key(pn, p, "namespaces");
		hjson_path_idx(pi, pn, i);
		if (!ns_name_valid(t->ns[i]))
			return hjson_fail(v->err, pi,
					  "\"%s\" is not a namespace name ([a-z][a-z0-9_-]*)",
					  t->ns[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->ns[i], t->ns[j]) == 0)
				return hjson_fail(v->err, pi, "namespace \"%s\" declared twice",
						  t->ns[i]);
	}

	r = hjson_arr(topo, p, "links", false, &arr, v->err);
	if (r < 0)
		return r;
	hjson_path_key(pl, p, "links");
	if (arr) {
		t->links = calloc(json_array_size(arr) ?: 1, sizeof(*t->links));
		if (!t->links)
			return -ENOMEM;
		json_array_foreach(arr, i, e)
		{
			struct hcase_link *l = &t->links[i];
			char pi[HJSON_PATH_MAX], pe[HJSON_PATH_MAX];
			json_t *ends = NULL;
			int type = 0;

			t->n_links = i + 1;
			hjson_path_idx(pi, pl, i);
			r = hjson_enum(e, pi, "type", true, link_types, &type, v->err);
			r = r ?: hjson_u32(e, pi, "mtu", false, 68, 65535, &l->mtu, v->err);
			if (r < 0)
				return r;
			l->type = type;
			if (type != HCASE_LINK_VETH)
				r = parse_bridge(v, e, pi, i);
			else
				r = hjson_only_keys(e, pi, link_keys, v->err);
			r = r
				    ?: type != HCASE_LINK_VETH
				       ? 0
				       : hjson_arr(e, pi, "ends", true, &ends, v->err);
			if (r < 0)
				return r;
			hjson_path_key(pe, pi, "ends");
			if (type == HCASE_LINK_VETH && json_array_size(ends) != 2)
				return hjson_fail(v->err, pe, "a veth link has exactly 2 ends");
			for (size_t k = 0; type == HCASE_LINK_VETH && k < 2; k++) {
				char pk[HJSON_PATH_MAX];

				hjson_path_idx(pk, pe, k);
				r = parse_endpoint(v, json_array_get(ends, k), pk, &l->end[k]);
				if (r < 0)
					return r;
			}
			/* Two interfaces of one name in one namespace cannot both exist. */
			for (size_t j = 0; j <= i; j++)
				for (size_t a = 0; a < 2; a++)
					for (size_t b = 0; b < 2; b++) {
						const struct hcase_endpoint *x =
							&t->links[j].end[a];
						const struct hcase_endpoint *y = &l->end[b];

						if ((j == i && a >= b) || !x->ns || !y->ns ||
						    strcmp(x->ns, y->ns) ||
						    strcmp(x->ifname, y->ifname))
							continue;
						return hjson_fail(
							v->err, pi,
							"interface %s twice in namespace %s",
							y->ifname, y->ns);
					}
		}
	}

	arr = NULL;
	r = hjson_arr(topo, p, "routes", false, &arr, v->err);
	if (r < 0 || !arr)
		return r;
	hjson_path_key(pl, p, "routes");
	t->routes = calloc(json_array_size(arr) ?: 1, sizeof(*t->routes));
	if (!t->routes)
		return -ENOMEM;
	json_array_foreach(arr, i, e)
	{
		struct hcase_route *rt = &t->routes[i];
		char pi[HJSON_PATH_MAX], pk[HJSON_PATH_MAX];

		t->n_routes = i + 1;
		hjson_path_idx(pi, pl, i);
		r = hjson_only_keys(e, pi, route_keys, v->err);
		r = r ?: check_ns(v, e, pi, "ns", true, &rt->ns);
		r = r ?: dup_str(e, pi, "dst", true, &rt->dst, v->err);
		r = r ?: dup_str(e, pi, "via", true, &rt->via, v->err);
		if (r < 0)
			return r;
		hjson_path_key(pk, pi, "dst");
		if (strcmp(rt->dst, "default") != 0 && !prefix_valid(rt->dst))
			return hjson_fail(v->err, pk, "\"%s\" is neither \"default\" nor a prefix",
					  rt->dst);
		hjson_path_key(pk, pi, "via");
		if (!ip_valid(rt->via))
			return hjson_fail(v->err, pk, "\"%s\" is not an IP address", rt->via);
	}
	return 0;
}

/*
 * Named topologies (cases/README.md "Named topologies"): TOPODIR/NAME.json is a topology object
 * with a "description" and a "diagram" (lines of an ASCII drawing). The diagram must show every
 * namespace, interface, address and route gateway, so it cannot drift from what it draws.
 */
static bool topology_name_valid(const char *s)
{
	if (!s || !islower((unsigned char)*s) || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
			return false;
	return true;
}

char *hcase_topology_dir(void)
{
	char *d;

	if (asprintf(&d, "%s/fixtures/topologies",
		     getenv("CELLCHECK_SRCDIR") ?: CELLCHECK_SRCDIR_DEFAULT) < 0)
		return NULL;
	return d;
}

static int diagram_shows(json_t *diagram, const char *what, const char *s, struct hjson_err *err)
{
	json_t *line;
	size_t i;

	json_array_foreach(diagram, i, line)
	{
		if (strstr(json_string_value(line), s))
			return 0;
	}
	return hjson_fail(err, "$.diagram", "the diagram does not show %s %s", what, s);
}

static int check_diagram(const struct hcase_topo *t, json_t *diagram, struct hjson_err *err)
{
	int r = 0;

	for (size_t i = 0; i < t->n_ns && !r; i++)
		r = diagram_shows(diagram, "namespace", t->ns[i], err);
	for (size_t i = 0; i < t->n_links && !r; i++)
		for (size_t k = 0; k < 2 && !r; k++) {
			const struct hcase_endpoint *ep = &t->links[i].end[k];

			if (!ep->ns)
				continue;
			r = diagram_shows(diagram, "interface", ep->ifname, err);
			for (size_t a = 0; ep->addrs && ep->addrs[a] && !r; a++)
				r = diagram_shows(diagram, "address", ep->addrs[a], err);
		}
	for (size_t i = 0; i < t->n_routes && !r; i++)
		r = diagram_shows(diagram, "route via", t->routes[i].via, err);
	return r;
}

/* Load and check TOPODIR/NAME.json into v->c->topo; errors at paths inside that file. */
static int load_named_topology(struct vctx *v, const char *file)
{
	static const char *const keys[] = { "description", "diagram", "namespaces",
					    "links",	   "routes",  NULL };
	const char *desc = NULL;
	json_t *doc = NULL, *diagram = NULL, *line;
	size_t i;
	int r;

	r = hjson_load_file(file, &doc, v->err);
	if (r < 0)
		return r;
	r = hjson_only_keys(doc, "$", keys, v->err);
	r = r ?: hjson_str(doc, "$", "description", true, &desc, v->err);
	r = r ?: hjson_arr(doc, "$", "diagram", true, &diagram, v->err);
	if (r < 0)
		goto out;
	if (!desc[0] || json_array_size(diagram) == 0) {
		r = hjson_fail(v->err, desc[0] ? "$.diagram" : "$.description",
			       "a named topology says what it is for and draws it");
		goto out;
	}
	json_array_foreach(diagram, i, line)
	{
		char p[HJSON_PATH_MAX];

		if (json_is_string(line))
			continue;
		hjson_path_idx(p, "$.diagram", i);
		r = hjson_fail(v->err, p, "expected a string (a line of the diagram)");
		goto out;
	}
	r = parse_topology_obj(v, doc, "$");
	r = r ?: check_diagram(&v->c->topo, diagram, v->err);
out:
	json_decref(doc);
	return r;
}

/* "topology": "NAME": the named topology's file, checked as if written inline. */
static int parse_named_topology(struct vctx *v, const char *name, const char *p)
{
	_cleanup_free_ char *dir = NULL, *file = NULL;
	struct hjson_err ferr = { 0 };
	struct vctx fv = { .err = &ferr, .c = v->c };
	int r;

	if (!topology_name_valid(name))
		return hjson_fail(v->err, p, "\"%s\" is not a topology name ([a-z][a-z0-9-]*)",
				  name);
	dir = hcase_topology_dir();
	if (!dir || asprintf(&file, "%s/%s.json", dir, name) < 0)
		return -ENOMEM;
	if (access(file, F_OK) < 0)
		return hjson_fail(v->err, p, "no named topology \"%s\" (%s: %s)", name, file,
				  strerror(errno));
	r = load_named_topology(&fv, file);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return hjson_fail(v->err, p, "topology \"%s\": %s: %s: %s", name, file, ferr.path,
				  ferr.msg);
	return 0;
}

static int parse_topology(struct vctx *v, json_t *obj, const char *path)
{
	static const char *const keys[] = { "namespaces", "links", "routes", NULL };
	char p[HJSON_PATH_MAX];
	json_t *topo = json_object_get(obj, "topology");
	int r;

	hjson_path_key(p, path, "topology");
	if (json_is_string(topo))
		return parse_named_topology(v, json_string_value(topo), p);
	if (topo && !json_is_object(topo))
		return hjson_fail(v->err, p, "expected an object or the name of a topology");
	if (!topo)
		return 0;
	r = hjson_only_keys(topo, p, keys, v->err);
	return r ?: parse_topology_obj(v, topo, p);
}

int hcase_topology_check(const char *file, struct hjson_err *err)
{
	struct hcase *c = calloc(1, sizeof(*c));
	struct vctx v = { .err = err, .c = c };
	int r;

	if (!c)
		return -ENOMEM;
	r = load_named_topology(&v, file);
	hcase_free(c);
	return r;
}

static int parse_upstream(struct vctx *v, json_t *obj, const char *path)
{
	static const char *const keys[] = { "kind", "ns", "listen", "tcp", "rules", "zone", NULL };
	static const char *const kinds[] = { "fake", "unbound", NULL };
	static const char *const rule_keys[] = { "match", "action", "delay_ms", "records",
						 "forge", "rcode",  NULL };
	static const char *const match_keys[] = { "qname", "qtype", NULL };
	static const char *const actions[] = { "answer",       "drop",	"truncate", "forge",
					       "icmp-unreach", "close", NULL };
	static const char *const forges[] = { "txid", "sport", "saddr", "question", NULL };
	char p[HJSON_PATH_MAX], pk[HJSON_PATH_MAX];
	json_t *up = NULL, *rules = NULL, *e;
	_cleanup_free_ char *ns = NULL;
	char **zone = NULL;
	const char *listen = NULL;
	bool tcp = true;
	int kind = 0;
	size_t i;
	int r;

	r = hjson_obj(obj, path, "upstream", false, &up, v->err);
	if (r < 0 || !up)
		return r;
	hjson_path_key(p, path, "upstream");
	r = hjson_only_keys(up, p, keys, v->err);
	r = r ?: hjson_enum(up, p, "kind", true, kinds, &kind, v->err);
	r = r ?: check_ns(v, up, p, "ns", true, &ns);
	r = r ?: hjson_str(up, p, "listen", true, &listen, v->err);
	r = r ?: hjson_bool(up, p, "tcp", false, &tcp, v->err);
	r = r ?: hjson_arr(up, p, "rules", false, &rules, v->err);
	r = r ?: hjson_strv(up, p, "zone", false, true, &zone, NULL, v->err);
	hjson_strv_free(zone);
	if (r < 0)
		return r;
	hjson_path_key(pk, p, "listen");
	if (!hostport_valid(listen))
		return hjson_fail(v->err, pk, "\"%s\" is not IP:PORT", listen);
	hjson_path_key(pk, p, kind == 0 ? "zone" : "rules");
	if (json_object_get(up, kind == 0 ? "zone" : "rules"))
		return hjson_fail(v->err, pk, "not allowed for kind \"%s\"", kinds[kind]);
	if (kind == 0 && !rules)
		return hjson_fail(v->err, p, "a fake upstream needs \"rules\"");
	if (kind == 1 && !json_object_get(up, "zone"))
		return hjson_fail(v->err, p, "an unbound upstream needs \"zone\"");

	hjson_path_key(pk, p, "rules");
	json_array_foreach(rules, i, e)
	{
		char pi[HJSON_PATH_MAX], pm[HJSON_PATH_MAX];
		json_t *match = NULL, *recs = NULL;
		uint32_t delay;
		int action = 0, forge = 0;
		const char *s;

		hjson_path_idx(pi, pk, i);
		r = hjson_only_keys(e, pi, rule_keys, v->err);
		r = r ?: hjson_obj(e, pi, "match", false, &match, v->err);
		r = r ?: hjson_enum(e, pi, "action", true, actions, &action, v->err);
		r = r ?: hjson_u32(e, pi, "delay_ms", false, 0, 600000, &delay, v->err);
		r = r ?: hjson_arr(e, pi, "records", false, &recs, v->err);
		r = r ?: hjson_enum(e, pi, "forge", false, forges, &forge, v->err);
		r = r ?: hjson_str(e, pi, "rcode", false, &s, v->err);
		if (r < 0)
			return r;
		if (match) {
			hjson_path_key(pm, pi, "match");
			r = hjson_only_keys(match, pm, match_keys, v->err);
			r = r ?: hjson_str(match, pm, "qname", false, &s, v->err);
			r = r ?: hjson_str(match, pm, "qtype", false, &s, v->err);
			if (r < 0)
				return r;
		}
		if ((action == 3) != !!json_object_get(e, "forge"))
			return hjson_fail(v->err, pi,
					  "\"forge\" goes with action \"forge\" only, "
					  "and that action needs it");
		if (recs) {
			char **tmp = NULL;

			r = hjson_strv(e, pi, "records", false, false, &tmp, NULL, v->err);
			hjson_strv_free(tmp);
			if (r < 0)
				return r;
		}
	}
	v->c->upstream = json_incref(up);
	return 0;
}

static const struct hcase_step *find_step(const struct hcase *c, size_t upto, const char *name)
{
	for (size_t i = 0; i < upto; i++)
		if (c->steps[i].name && strcmp(c->steps[i].name, name) == 0)
			return &c->steps[i];
	return NULL;
}

static int parse_signal(const char *s, int *ret)
{
	static const struct {
		const char *name;
		int signo;
	} sigs[] = { { "TERM", SIGTERM }, { "INT", SIGINT },   { "KILL", SIGKILL },
		     { "HUP", SIGHUP },	  { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		     { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "none", 0 } };

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (strcmp(s, sigs[i].name) == 0) {
			*ret = sigs[i].signo;
			return 0;
		}
	return -EINVAL;
}

/* The checks above, for the step kinds' parsers (harness/steps/). */
int hcase_dup_str(json_t *obj, const char *path, const char *key, bool required, char **ret,
		  struct hjson_err *err)
{
	return dup_str(obj, path, key, required, ret, err);
}

bool hcase_ip_valid(const char *s)
{
	return ip_valid(s);
}

bool hcase_hostport_valid(const char *s)
{
	return hostport_valid(s);
}

int hcase_signal_from_name(const char *s, int *ret)
{
	return parse_signal(s, ret);
}

const struct hcase_step *hcase_step_find(const struct hcase *c, size_t upto, const char *name)
{
	return find_step(c, upto, name);
}

int hcase_step_expect_exit(const struct hcase_step *s)
{
	if (s->action == HCASE_ACT_CLIENT)
		return s->client.expect_exit;
	if (s->action == HCASE_ACT_STOP)
		return s->stop.expect_exit;
	return -1;
}

/* The common keys here, the rest by the kind's row (harness/steps/hstep.h). */
static int parse_step(struct vctx *v, json_t *e, const char *pi, size_t idx)
{
	static const char *const common[] = { "action", "name", "ns", "timeout_ms" };
	struct hcase_step *s = &v->c->steps[idx];
	struct hstep_pctx pv = { .c = v->c, .err = v->err };
	const char *names[_HCASE_ACT_MAX + 1], *keys[40];
	const struct hstep_kind *kind;
	char pk[HJSON_PATH_MAX];
	int action = 0, r;
	size_t nk = 0;

	for (size_t i = 0; i < _HCASE_ACT_MAX; i++)
		names[i] = hstep_kinds[i]->name;
	names[_HCASE_ACT_MAX] = NULL;
	r = hjson_enum(e, pi, "action", true, names, &action, v->err);
	if (r < 0)
		return r;
	s->action = action;
	kind = hstep_kinds[action];
	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		keys[nk++] = common[i];
	for (size_t i = 0; kind->keys[i]; i++) {
		if (nk + 1 >= ARRAY_SIZE(keys))
			return -E2BIG; /* a kind with more keys than this table holds */
		keys[nk++] = kind->keys[i];
	}
	keys[nk] = NULL;
	r = hjson_only_keys(e, pi, keys, v->err);
	r = r ?: dup_str(e, pi, "name", false, &s->name, v->err);
	r = r ?: check_ns(v, e, pi, "ns", false, &s->ns);
	r = r ?: hjson_u32(e, pi, "timeout_ms", false, 1, 600000, &s->timeout_ms, v->err);
	if (r < 0)
		return r;
	if (s->name) {
		hjson_path_key(pk, pi, "name");
		if (!ns_name_valid(s->name))
			return hjson_fail(v->err, pk,
					  "\"%s\" is not a step name ([a-z][a-z0-9_-]*)", s->name);
		if (find_step(v->c, idx, s->name))
			return hjson_fail(v->err, pk, "step name \"%s\" used twice", s->name);
	}
	return kind->parse(&pv, e, pi, idx, s);
}

static int parse_steps(struct vctx *v, json_t *obj, const char *path)
{
	char p[HJSON_PATH_MAX];
	json_t *arr = NULL, *e;
	size_t i;
	int r;

	r = hjson_arr(obj, path, "steps", true, &arr, v->err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "steps");
	if (json_array_size(arr) == 0)
		return hjson_fail(v->err, p, "a case has at least one step");
	v->c->steps = calloc(json_array_size(arr), sizeof(*v->c->steps));
	if (!v->c->steps)
		return -ENOMEM;
	json_array_foreach(arr, i, e)
	{
		char pi[HJSON_PATH_MAX];

		v->c->n_steps = i + 1;
		hjson_path_idx(pi, p, i);
		if (!json_is_object(e))
			return hjson_fail(v->err, pi, "expected an object");
		r = parse_step(v, e, pi, i);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool field_path_valid(const char *s)
{
	bool seg = false;

	for (; *s; s++) {
		if (*s == '.') {
			if (!seg)
				return false;
			seg = false;
		} else if (isalnum((unsigned char)*s) || *s == '_' || *s == '-') {
			seg = true;
		} else {
			return false;
		}
	}
	return seg;
}

static bool is_var(json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;

	return n > 2 && s[0] == '{' && s[n - 1] == '}';
}

/*
 * {"exact": V} | {"regex": ERE} | {"range": [LO, HI]} | {"present": true} | {"absent": true} |
 * {"distinct": true} | {"same": true} | {"var": NAME} | {"time_range": [LO, HI]}
 */
static int check_matcher(struct vctx *v, json_t *m, const char *path)
{
	char pk[HJSON_PATH_MAX];
	const char *key;
	json_t *val;

	if (!json_is_object(m) || json_object_size(m) != 1)
		return hjson_fail(v->err, path,
				  "a matcher is an object with exactly one of exact, regex, range, "
				  "present, absent, distinct, same, var, time_range");
	json_object_foreach(m, key, val)
	{
		hjson_path_key(pk, path, key);
		if (strcmp(key, "exact") == 0)
			return 0;
		if (strcmp(key, "regex") == 0) {
			regex_t re;
			int rc;

			if (!json_is_string(val))
				return hjson_fail(v->err, pk, "expected a string");
			rc = regcomp(&re, json_string_value(val), REG_EXTENDED | REG_NOSUB);
			if (rc != 0) {
				char msg[128];

				regerror(rc, &re, msg, sizeof(msg));
				return hjson_fail(v->err, pk, "not a POSIX extended regex: %s",
						  msg);
			}
			regfree(&re);
			return 0;
		}
		if (strcmp(key, "range") == 0 || strcmp(key, "time_range") == 0) {
			json_t *lo = json_array_get(val, 0), *hi = json_array_get(val, 1);

			if (!json_is_array(val) || json_array_size(val) != 2 ||
			    !(json_is_number(lo) || is_var(lo)) ||
			    !(json_is_number(hi) || is_var(hi)))
				return hjson_fail(
					v->err, pk,
					"expected [LO, HI], each a number or \"{variable}\"");
			if (json_is_number(lo) && json_is_number(hi) &&
			    json_number_value(lo) > json_number_value(hi))
				return hjson_fail(v->err, pk, "LO is greater than HI");
			return 0;
		}
		if (strcmp(key, "var") == 0) {
			if (!json_is_string(val) || !*json_string_value(val))
				return hjson_fail(v->err, pk, "expected a runner variable's name");
			return 0;
		}
		if (strcmp(key, "present") == 0 || strcmp(key, "absent") == 0 ||
		    strcmp(key, "distinct") == 0 || strcmp(key, "same") == 0) {
			if (!json_is_true(val))
				return hjson_fail(v->err, pk, "expected true");
			return 0;
		}
		return hjson_fail(v->err, pk, "unknown matcher \"%s\"", key);
	}
	return 0;
}

/* The fields of v1 and of v2 records (a stream holds one version; hrecord.h). */
static const char *const record_fields[] = { "src_ip",	"dst_ip",     "src_port",  "dst_port",
					     "proto",	"pad0",	      "pkt_count", "first_seen_ns",
					     "verdict", "pad1",	      "src_addr",  "dst_addr",
					     "family",	"byte_count", NULL };

static int check_fields(struct vctx *v, json_t *parent, const char *path, bool records)
{
	char p[HJSON_PATH_MAX];
	json_t *fields = NULL, *m;
	const char *key;
	int r;

	r = hjson_obj(parent, path, "fields", false, &fields, v->err);
	if (r < 0 || !fields)
		return r;
	hjson_path_key(p, path, "fields");
	json_object_foreach(fields, key, m)
	{
		char pf[HJSON_PATH_MAX];

		hjson_path_key(pf, p, key);
		if (records ? name_index(record_fields, key) < 0 : !field_path_valid(key))
			return hjson_fail(v->err, pf, "\"%s\" is not a %s", key,
					  records ? "record field" : "dotted field path");
		r = check_matcher(v, m, pf);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The start step a stream expectation reads; the only one when the case has one. */
static int check_source(struct vctx *v, json_t *obj, const char *path, const char *key)
{
	char pk[HJSON_PATH_MAX];
	const struct hcase_step *s;
	const char *name = NULL;
	size_t starts = 0;
	int r;

	r = hjson_str(obj, path, key, false, &name, v->err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < v->c->n_steps; i++)
		starts += v->c->steps[i].action == HCASE_ACT_START;
	hjson_path_key(pk, path, key);
	if (!name) {
		if (starts != 1)
			return hjson_fail(v->err, path,
					  "\"%s\" is required: the case has %zu start steps", key,
					  starts);
		return 0;
	}
	s = find_step(v->c, v->c->n_steps, name);
	if (!s || s->action != HCASE_ACT_START)
		return hjson_fail(v->err, pk, "\"%s\" names no start step", name);
	return 0;
}

static int check_output(struct vctx *v, json_t *ex, const char *path, const char *key)
{
	static const char *const keys[] = { "step", "file", "compare", "regex", "empty", NULL };
	static const char *const compares[] = { "bytes", "jsonl", NULL };
	char p[HJSON_PATH_MAX];
	json_t *o = NULL;
	const char *file = NULL;
	int cmp = 0, forms;
	bool empty;
	int r;

	r = hjson_obj(ex, path, key, false, &o, v->err);
	if (r < 0 || !o)
		return r;
	hjson_path_key(p, path, key);
	r = hjson_only_keys(o, p, keys, v->err);
	r = r ?: check_source(v, o, p, "step");
	r = r ?: hjson_str(o, p, "file", false, &file, v->err);
	r = r ?: hjson_enum(o, p, "compare", false, compares, &cmp, v->err);
	r = r ?: hjson_bool(o, p, "empty", false, &empty, v->err);
	if (r < 0)
		return r;
	forms = !!file + !!json_object_get(o, "regex") + !!json_object_get(o, "empty");
	if (forms != 1)
		return hjson_fail(v->err, p, "exactly one of \"file\", \"regex\", \"empty\"");
	if (json_object_get(o, "compare") && !file)
		return hjson_fail(v->err, p, "\"compare\" goes with \"file\"");
	if (json_object_get(o, "regex")) {
		json_t *m = json_pack("{s:O}", "regex", json_object_get(o, "regex"));

		if (!m)
			return -ENOMEM;
		r = check_matcher(v, m, p);
		json_decref(m);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_stream(struct vctx *v, json_t *ex, const char *path, const char *key, bool records)
{
	static const char *const ev_keys[] = { "step",	 "order", "exhaustive",
					       "schema", "match", NULL };
	static const char *const rec_keys[] = { "step",	    "order",	 "exhaustive", "match",
						"pad_zero", "monotonic", NULL };
	static const char *const item_ev[] = { "type", "count", "fields", NULL };
	static const char *const item_rec[] = { "count", "fields", NULL };
	static const char *const orders[] = { "ordered", "unordered", NULL };
	char p[HJSON_PATH_MAX], pm[HJSON_PATH_MAX];
	json_t *o = NULL, *match = NULL, *item;
	char **mono = NULL;
	int order = 0;
	bool b;
	size_t i;
	int r;

	r = hjson_obj(ex, path, key, false, &o, v->err);
	if (r < 0 || !o)
		return r;
	hjson_path_key(p, path, key);
	r = hjson_only_keys(o, p, records ? rec_keys : ev_keys, v->err);
	r = r ?: check_source(v, o, p, "step");
	r = r ?: hjson_enum(o, p, "order", false, orders, &order, v->err);
	r = r ?: hjson_bool(o, p, "exhaustive", false, &b, v->err);
	r = r ?: hjson_bool(o, p, "schema", false, &b, v->err);
	r = r ?: hjson_bool(o, p, "pad_zero", false, &b, v->err);
	r = r ?: hjson_strv(o, p, "monotonic", false, true, &mono, NULL, v->err);
	r = r ?: hjson_arr(o, p, "match", false, &match, v->err);
	if (r < 0)
		goto out;
	for (i = 0; mono && mono[i]; i++)
		if (name_index(record_fields, mono[i]) < 0) {
			char pk[HJSON_PATH_MAX], pi[HJSON_PATH_MAX];

			hjson_path_key(pk, p, "monotonic");
			hjson_path_idx(pi, pk, i);
			r = hjson_fail(v->err, pi, "\"%s\" is not a record field", mono[i]);
			goto out;
		}
	hjson_path_key(pm, p, "match");
	json_array_foreach(match, i, item)
	{
		char pi[HJSON_PATH_MAX];
		const char *type = NULL;
		uint32_t count;

		hjson_path_idx(pi, pm, i);
		r = hjson_only_keys(item, pi, records ? item_rec : item_ev, v->err);
		r = r ?: hjson_str(item, pi, "type", false, &type, v->err);
		r = r ?: hjson_u32(item, pi, "count", false, 0, 1000000, &count, v->err);
		r = r ?: check_fields(v, item, pi, records);
		if (r < 0)
			goto out;
	}
out:
	hjson_strv_free(mono);
	return r;
}

static int check_responses(struct vctx *v, json_t *ex, const char *path)
{
	static const char *const keys[] = { "step", "none", "fields", NULL };
	char p[HJSON_PATH_MAX];
	json_t *arr = NULL, *item;
	size_t i;
	int r;

	r = hjson_arr(ex, path, "responses", false, &arr, v->err);
	if (r < 0 || !arr)
		return r;
	hjson_path_key(p, path, "responses");
	json_array_foreach(arr, i, item)
	{
		char pi[HJSON_PATH_MAX], ps[HJSON_PATH_MAX];
		const struct hcase_step *s;
		const char *step = NULL;
		bool none = false;

		hjson_path_idx(pi, p, i);
		r = hjson_only_keys(item, pi, keys, v->err);
		r = r ?: hjson_str(item, pi, "step", true, &step, v->err);
		r = r ?: hjson_bool(item, pi, "none", false, &none, v->err);
		r = r ?: check_fields(v, item, pi, false);
		if (r < 0)
			return r;
		hjson_path_key(ps, pi, "step");
		s = find_step(v->c, v->c->n_steps, step);
		if (!s || (s->action != HCASE_ACT_DRIVER && s->action != HCASE_ACT_CLIENT))
			return hjson_fail(v->err, ps, "\"%s\" names no driver or client step",
					  step);
		if (none && json_object_get(item, "fields"))
			return hjson_fail(v->err, pi,
					  "\"none\" expects no response: no \"fields\"");
	}
	return 0;
}

static bool counter_valid(const char *k, size_t n)
{
	static const char *const names[] = { "records", "events", "lost", "upstream_queries" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == n && memcmp(k, names[i], n) == 0)
			return true;
	}
	return (n > 7 && memcmp(k, "events:", 7) == 0) || (n > 4 && memcmp(k, "var:", 4) == 0);
}

/* "records", "events:dns_query", or a sum: "records+lost". */
static bool counter_key_valid(const char *key)
{
	for (const char *k = key;;) {
		const char *plus = strchr(k, '+');
		size_t n = plus ? (size_t)(plus - k) : strlen(k);

		if (!counter_valid(k, n))
			return false;
		if (!plus)
			return true;
		k = plus + 1;
	}
}

static int check_counts(struct vctx *v, json_t *ex, const char *path)
{
	char p[HJSON_PATH_MAX];
	json_t *o = NULL, *val;
	const char *key;
	int r;

	r = hjson_obj(ex, path, "counts", false, &o, v->err);
	if (r < 0 || !o)
		return r;
	hjson_path_key(p, path, "counts");
	json_object_foreach(o, key, val)
	{
		char pk[HJSON_PATH_MAX];

		hjson_path_key(pk, p, key);
		if (!counter_key_valid(key))
			return hjson_fail(
				v->err, pk,
				"unknown counter (records, events, events:TYPE, lost, "
				"upstream_queries, var:NAME, or a sum of them joined by +)");
		if (json_is_integer(val) && json_integer_value(val) >= 0)
			continue;
		r = check_matcher(v, val, pk);
		if (r < 0)
			return r;
	}
	return 0;
}

/* expect.btf: a struct's layout in the BTF of a profile artifact. */
static int check_btf(struct vctx *v, json_t *ex, const char *path)
{
	static const char *const keys[] = { "artifact", "struct",	  "size", "exhaustive",
					    "members",	"record_version", NULL };
	static const char *const mkeys[] = { "name", "offset", "size", NULL };
	char p[HJSON_PATH_MAX];
	json_t *o = NULL, *members, *m, *x;
	size_t i;
	int r;

	r = hjson_obj(ex, path, "btf", false, &o, v->err);
	if (r < 0 || !o)
		return r;
	hjson_path_key(p, path, "btf");
	r = hjson_only_keys(o, p, keys, v->err);
	if (r < 0)
		return r;
	x = json_object_get(o, "artifact");
	if (!json_is_string(x) || strcmp(json_string_value(x), "bpf_object") != 0)
		return hjson_fail(v->err, p, "artifact: expected \"bpf_object\"");
	x = json_object_get(o, "struct");
	if (!json_is_string(x) || !*json_string_value(x))
		return hjson_fail(v->err, p, "struct: expected a struct name");
	x = json_object_get(o, "size");
	if (x && (!json_is_integer(x) || json_integer_value(x) < 0))
		return hjson_fail(v->err, p, "size: expected a byte count");
	x = json_object_get(o, "exhaustive");
	if (x && !json_is_boolean(x))
		return hjson_fail(v->err, p, "exhaustive: expected true or false");
	x = json_object_get(o, "record_version");
	if (x && (!json_is_integer(x) || json_integer_value(x) < HPROF_RECORD_VERSION_MIN ||
		  json_integer_value(x) > HPROF_RECORD_VERSION_MAX))
		return hjson_fail(v->err, p,
				  "record_version: expected a flow record version, %d to %d",
				  HPROF_RECORD_VERSION_MIN, HPROF_RECORD_VERSION_MAX);
	members = json_object_get(o, "members");
	if (!json_is_array(members))
		return hjson_fail(v->err, p, "members: expected an array");
	json_array_foreach(members, i, m)
	{
		char pmem[HJSON_PATH_MAX], pm[HJSON_PATH_MAX];

		hjson_path_key(pmem, p, "members");
		hjson_path_idx(pm, pmem, i);
		if (!json_is_object(m))
			return hjson_fail(v->err, pm, "expected an object");
		r = hjson_only_keys(m, pm, mkeys, v->err);
		if (r < 0)
			return r;
		if (!json_is_string(json_object_get(m, "name")) ||
		    !json_is_integer(json_object_get(m, "offset")) ||
		    !json_is_integer(json_object_get(m, "size")))
			return hjson_fail(v->err, pm,
					  "name (string), offset and size (bytes) required");
	}
	return 0;
}

static int parse_expect(struct vctx *v, json_t *obj, const char *path)
{
	static const char *const keys[] = { "stdout",  "stderr", "responses", "events",
					    "records", "counts", "btf",	      NULL };
	char p[HJSON_PATH_MAX];
	json_t *ex = NULL;
	int r;

	r = hjson_obj(obj, path, "expect", true, &ex, v->err);
	if (r < 0)
		return r;
	hjson_path_key(p, path, "expect");
	if (json_object_size(ex) == 0)
		return hjson_fail(v->err, p, "a case expects something");
	r = hjson_only_keys(ex, p, keys, v->err);
	r = r ?: check_output(v, ex, p, "stdout");
	r = r ?: check_output(v, ex, p, "stderr");
	r = r ?: check_responses(v, ex, p);
	r = r ?: check_stream(v, ex, p, "events", false);
	r = r ?: check_stream(v, ex, p, "records", true);
	r = r ?: check_counts(v, ex, p);
	r = r ?: check_btf(v, ex, p);
	if (r < 0)
		return r;
	v->c->expect = json_incref(ex);
	return 0;
}

int hcase_from_json(json_t *obj, const char *file, const char *path, struct hcase **ret,
		    struct hjson_err *err)
{
	static const char *const keys[] = { "id",     "title",		"description", "component",
					    "uses",   "requirements",	"features",    "timeout_ms",
					    "fault",  "topology",	"upstream",    "steps",
					    "expect", "record_version", NULL };
	struct hcase *c;
	struct vctx v = { .err = err };
	char p[HJSON_PATH_MAX];
	const char *desc = NULL;
	char **uses = NULL;
	int comp = 0, r;

	if (!json_is_object(obj))
		return hjson_fail(err, path, "expected a case object");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	v.c = c;
	c->timeout_ms = 10000;
	c->file = strdup(file ?: "");
	if (!c->file) {
		r = -ENOMEM;
		goto fail;
	}
	r = hjson_only_keys(obj, path, keys, err);
	r = r ?: dup_str(obj, path, "id", true, &c->id, err);
	r = r ?: dup_str(obj, path, "title", true, &c->title, err);
	r = r ?: hjson_str(obj, path, "description", false, &desc, err);
	r = r ?: hjson_enum(obj, path, "component", true, hcase_component_names, &comp, err);
	r = r ?: hjson_strv(obj, path, "uses", false, true, &uses, NULL, err);
	if (r < 0)
		goto fail;
	hjson_path_key(p, path, "id");
	if (!hcase_id_valid(c->id)) {
		r = hjson_fail(err, p,
			       "\"%s\" is not a case ID (dotted lowercase segments, e.g. "
			       "flow.tcp.five-tuple)",
			       c->id);
		goto fail;
	}
	c->component = comp;
	c->uses = 1u << comp;
	for (size_t i = 0; uses && uses[i]; i++) {
		int u = hcase_component_from_name(uses[i]);

		if (u < 0) {
			char pu[HJSON_PATH_MAX], pi[HJSON_PATH_MAX];

			hjson_path_key(pu, path, "uses");
			hjson_path_idx(pi, pu, i);
			r = hjson_fail(err, pi, "\"%s\" is not a component", uses[i]);
			goto fail;
		}
		c->uses |= 1u << u;
	}
	r = parse_reqs(&v, obj, path);
	r = r ?: hjson_strv(obj, path, "features", false, false, &c->features, NULL, err);
	r = r ?: hjson_u32(obj, path, "timeout_ms", false, 1, 600000, &c->timeout_ms, err);
	r = r
		    ?: hjson_u32(obj, path, "record_version", false, HPROF_RECORD_VERSION_MIN,
				 HPROF_RECORD_VERSION_MAX, &c->record_version, err);
	r = r ?: dup_str(obj, path, "fault", true, &c->fault, err);
	if (r < 0)
		goto fail;
	for (size_t i = 0; c->features && c->features[i]; i++) {
		char pf[HJSON_PATH_MAX], pi[HJSON_PATH_MAX];

		if (feature_valid(c->features[i]))
			continue;
		hjson_path_key(pf, path, "features");
		hjson_path_idx(pi, pf, i);
		r = hjson_fail(
			err, pi,
			"unknown feature \"%s\" (btf, ringbuf, clsact, veth, bridge, userns, "
			"cgroup2, root, tool:NAME)",
			c->features[i]);
		goto fail;
	}
	hjson_path_key(p, path, "fault");
	for (const char *f = c->fault; *f; f++)
		if (!(islower((unsigned char)*f) || isdigit((unsigned char)*f) || *f == '.' ||
		      *f == '_' || *f == '-')) {
			r = hjson_fail(err, p, "\"%s\" is not a fault name ([a-z0-9._-])",
				       c->fault);
			goto fail;
		}
	r = parse_topology(&v, obj, path);
	r = r ?: parse_upstream(&v, obj, path);
	r = r ?: parse_steps(&v, obj, path);
	r = r ?: parse_expect(&v, obj, path);
	if (r < 0)
		goto fail;
	hjson_strv_free(uses);
	*ret = c;
	return 0;
fail:
	hjson_strv_free(uses);
	hcase_free(c);
	if (r == -EINVAL && err && !err->msg[0])
		hjson_fail(err, path, "invalid case");
	return r;
}

static void endpoint_free(struct hcase_endpoint *e)
{
	free(e->ns);
	free(e->ifname);
	free(e->alias);
	hjson_strv_free(e->addrs);
}

void hcase_free(struct hcase *c)
{
	if (!c)
		return;
	free(c->id);
	free(c->title);
	free(c->file);
	for (size_t i = 0; i < c->n_reqs; i++) {
		free(c->reqs[i].id);
		free(c->reqs[i].clause);
	}
	free(c->reqs);
	hjson_strv_free(c->features);
	free(c->fault);
	hjson_strv_free(c->topo.ns);
	for (size_t i = 0; i < c->topo.n_links; i++) {
		endpoint_free(&c->topo.links[i].end[0]);
		endpoint_free(&c->topo.links[i].end[1]);
		hjson_strv_free(c->topo.links[i].ports);
	}
	free(c->topo.links);
	for (size_t i = 0; i < c->topo.n_routes; i++) {
		free(c->topo.routes[i].ns);
		free(c->topo.routes[i].dst);
		free(c->topo.routes[i].via);
	}
	free(c->topo.routes);
	json_decref(c->upstream);
	for (size_t i = 0; i < c->n_steps; i++) {
		struct hcase_step *s = &c->steps[i];

		free(s->name);
		free(s->ns);
		hstep_kinds[s->action]->free(s);
	}
	free(c->steps);
	json_decref(c->expect);
	free(c);
}

void hcase_set_free(struct hcase_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		hcase_free(set->cases[i]);
	free(set->cases);
	set->cases = NULL;
	set->n = 0;
}

static int set_add(struct hcase_set *set, struct hcase *c)
{
	struct hcase **n = realloc(set->cases, (set->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	set->cases = n;
	set->cases[set->n++] = c;
	return 0;
}

int hcase_load_file(struct hcase_set *set, const char *file, struct hjson_err *err)
{
	json_t *doc = NULL;
	struct hcase *c;
	size_t before = set->n;
	int r;

	r = hjson_load_file(file, &doc, err);
	if (r < 0)
		return r;
	if (json_is_array(doc)) {
		json_t *e;
		size_t i;

		if (json_array_size(doc) == 0) {
			r = hjson_fail(err, "$", "empty case family");
			goto out;
		}
		json_array_foreach(doc, i, e)
		{
			char p[HJSON_PATH_MAX];

			hjson_path_idx(p, "$", i);
			r = hcase_from_json(e, file, p, &c, err);
			if (r < 0)
				goto out;
			c->index = i;
			c->family = true;
			r = set_add(set, c);
			if (r < 0) {
				hcase_free(c);
				goto out;
			}
		}
	} else {
		r = hcase_from_json(doc, file, "$", &c, err);
		if (r < 0)
			goto out;
		r = set_add(set, c);
		if (r < 0)
			hcase_free(c);
	}
out:
	/* All or nothing per file, so a family is never half loaded. */
	if (r < 0) {
		while (set->n > before)
			hcase_free(set->cases[--set->n]);
	}
	json_decref(doc);
	return r;
}

struct pathv {
	char **v;
	size_t n;
};

static int collect(const char *dir, struct pathv *pv)
{
	struct dirent **ents = NULL;
	int n, r = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		struct stat st;
		char *full;

		if (r < 0 || name[0] == '.')
			goto next;
		if (asprintf(&full, "%s/%s", dir, name) < 0) {
			r = -ENOMEM;
			goto next;
		}
		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
			r = collect(full, pv);
			free(full);
		} else if (len > 5 && strcmp(name + len - 5, ".json") == 0) {
			char **nv = realloc(pv->v, (pv->n + 1) * sizeof(*nv));

			if (!nv) {
				free(full);
				r = -ENOMEM;
				goto next;
			}
			pv->v = nv;
			pv->v[pv->n++] = full;
		} else {
			free(full);
		}
	next:
		free(ents[i]);
	}
	free(ents);
	return r;
}

int hcase_load_dir(struct hcase_set *set, const char *dir, hcase_error_fn on_error, void *userdata)
{
	struct pathv pv = { 0 };
	int failed = 0, r;

	r = collect(dir, &pv);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < pv.n; i++) {
		struct hjson_err err = { 0 };
		size_t before = set->n;

		r = hcase_load_file(set, pv.v[i], &err);
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			failed++;
			if (on_error)
				on_error(pv.v[i], &err, userdata);
			continue;
		}
		/* An ID is how reports, filters and compare name a case: it must be unique. */
		for (size_t j = before; j < set->n; j++)
			for (size_t k = 0; k < j; k++) {
				struct hjson_err derr = { 0 };
				char p[HJSON_PATH_MAX];

				if (strcmp(set->cases[j]->id, set->cases[k]->id) != 0)
					continue;
				if (set->cases[j]->family)
					snprintf(p, sizeof(p), "$[%zu].id", set->cases[j]->index);
				else
					snprintf(p, sizeof(p), "$.id");
				hjson_fail(&derr, p, "case ID \"%s\" already defined in %s",
					   set->cases[j]->id, set->cases[k]->file);
				failed++;
				if (on_error)
					on_error(pv.v[i], &derr, userdata);
			}
	}
	r = failed;
out:
	for (size_t i = 0; i < pv.n; i++)
		free(pv.v[i]);
	free(pv.v);
	return r;
}

bool hcase_match(const struct hcase *c, char *const *globs, size_t n_globs)
{
	if (n_globs == 0)
		return true;
	for (size_t i = 0; i < n_globs; i++)
		if (fnmatch(globs[i], c->id, 0) == 0)
			return true;
	return false;
}

enum hcase_level hcase_level(const struct hcase *c)
{
	enum hcase_level best = HCASE_MAY;

	for (size_t i = 0; i < c->n_reqs; i++)
		if (c->reqs[i].level < best)
			best = c->reqs[i].level;
	return best;
}

/* ---- the positive-expectation rule (SPEC CHK-CASE-006) ---- */

/* Does the POSIX ERE match something that is not empty only? (An invalid one: be lenient.) */
static bool regex_demands(const char *re)
{
	regex_t rx;
	bool empty_ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return true;
	empty_ok = regexec(&rx, "", 0, NULL, 0) == 0;
	regfree(&rx);
	return !empty_ok;
}

/* A matcher that something doing nothing cannot satisfy by being absent. */
static bool matcher_demands(json_t *m)
{
	json_t *v;

	if (!json_is_object(m))
		return false;
	if ((v = json_object_get(m, "regex")))
		return json_is_string(v) && regex_demands(json_string_value(v));
	if ((v = json_object_get(m, "range"))) {
		json_t *lo = json_array_get(v, 0);

		/* A bound the runner fills ({events.STEP.TYPE}) may be 0: not a demand. */
		return json_is_number(lo) && json_number_value(lo) > 0;
	}
	if ((v = json_object_get(m, "exact")))
		return !(json_is_integer(v) && json_integer_value(v) == 0) &&
		       !(json_is_string(v) && !*json_string_value(v)) && !json_is_null(v) &&
		       !json_is_false(v);
	/* distinct and same hold only for a present value, var and time_range for a value. */
	return json_object_get(m, "present") || json_object_get(m, "distinct") ||
	       json_object_get(m, "same") || json_object_get(m, "var") ||
	       json_object_get(m, "time_range");
}

/* events or records: a match item that wants at least one. */
static bool matches_demand(json_t *x)
{
	json_t *item;
	size_t i;

	json_array_foreach(json_object_get(x, "match"), i, item)
	{
		json_t *n = json_object_get(item, "count");

		if (!n || (json_is_integer(n) && json_integer_value(n) > 0))
			return true;
	}
	return false;
}

static bool output_demands(json_t *o)
{
	json_t *re = json_object_get(o, "regex");

	if (json_object_get(o, "file"))
		return true;
	return re && json_is_string(re) && regex_demands(json_string_value(re));
}

const char *hcase_positive_expectation(const struct hcase *c)
{
	json_t *x = c->expect, *v, *item;
	const char *key;
	size_t i;

	for (size_t k = 0; k < c->n_steps; k++) {
		int e = hcase_step_expect_exit(&c->steps[k]);

		/* An exit status of its own choosing, not the signal the harness sent. */
		if ((c->steps[k].action == HCASE_ACT_STOP ||
		     c->steps[k].action == HCASE_ACT_CLIENT) &&
		    e > 0 && e != 128 + SIGTERM && e != 128 + SIGKILL && e != 128 + SIGINT)
			return "steps[].expect_exit";
	}
	if ((v = json_object_get(x, "stdout")) && output_demands(v))
		return "expect.stdout";
	if ((v = json_object_get(x, "stderr")) && output_demands(v))
		return "expect.stderr";
	if ((v = json_object_get(x, "events")) && matches_demand(v))
		return "expect.events";
	if ((v = json_object_get(x, "records")) && matches_demand(v))
		return "expect.records";
	if (json_object_get(x, "btf"))
		return "expect.btf";
	json_array_foreach(json_object_get(x, "responses"), i, item)
	{
		json_t *f = json_object_get(item, "fields"), *m;

		json_object_foreach(f, key, m) if (matcher_demands(m)) return "expect.responses";
	}
	json_object_foreach(json_object_get(x, "counts"), key,
			    v) if ((json_is_integer(v) && json_integer_value(v) > 0) ||
				   matcher_demands(v)) return "expect.counts";
	return NULL;
}
