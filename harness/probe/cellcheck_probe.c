// SPDX-License-Identifier: Apache-2.0
/*
 * cellcheck-probe: the harness's in-cell workload (cases/README.md, "The probe"). It reports
 * what it sees from inside a cell as JSON lines on stdout and makes the traffic a case asks
 * for. It shares no code with ref/ (DESIGN.md 8): it reads /proc and makes system calls.
 *
 *   cellcheck-probe CMD...      each CMD one argument, run in order, one JSON line each
 *     self                 ids, groups, session, fds, NoNewPrivs, capability sets, CPUs,
 *                          hostname
 *     ns=net:INO,mnt:INO   which of its namespaces differ from the given ones (the host's)
 *     maps                 uid_map, gid_map, setgroups
 *     rlimits              every resource limit, soft and hard (-1: unlimited)
 *     env                  the environment, in order
 *     net                  links (up, mtu, IPv4 addresses), IPv4 routes, permanent neighbours
 *     resolv               /etc/resolv.conf: content, whether it can be opened for writing,
 *                          its mount options
 *     resolve=NAME         getaddrinfo(NAME, AF_INET); t_ns: CLOCK_MONOTONIC after the answer
 *     connect=HOST:PORT    resolve HOST when it is a name, then a TCP connect (then close)
 *     udp=IP:PORT:N[:SPORT] N datagrams from N sockets (from ports SPORT.. if given)
 *     ls=DIR               the names in DIR, sorted (leases left behind)
 *     sleep=MS, exit=N, raise=SIG (a number)
 *
 * Every line is an object whose first member is "probe" (the command's name) and whose
 * members come in a fixed order, so a case can match a line with one regex.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void jstr_n(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void jstr(const char *s)
{
	jstr_n(s, strlen(s));
}

static void end_line(void)
{
	fputs("}\n", stdout);
	fflush(stdout);
}

/* The whole file (at most 64 KiB), or NULL with errno. */
static char *slurp(const char *path, size_t *ret_n)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t k;

	if (fd < 0)
		return NULL;
	while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	close(fd);
	buf[n] = '\0';
	*ret_n = n;
	return buf;
}

/* The value of "Key:" in /proc/self/status, whitespace trimmed, into out. */
static void status_field(const char *key, char *out, size_t len)
{
	size_t n, kl = strlen(key);
	char *s = slurp("/proc/self/status", &n), *l;

	snprintf(out, len, "?");
	for (l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
			char *v = l + kl + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			snprintf(out, len, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			for (char *p = out; *p; p++)
				if (*p == '\t')
					*p = ' ';
			return;
		}
	}
}

static void cmd_self(void)
{
	static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char buf[256], host[256] = "";
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[256];
	int ng = getgroups(256, groups), ctty, first = 1;
	DIR *d;
	struct dirent *de;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	printf("{\"probe\":\"self\",\"uid\":[%u,%u,%u],\"gid\":[%u,%u,%u],\"groups\":[", ru, eu, su,
	       rg, eg, sg);
	for (int i = 0; i < ng; i++)
		printf("%s%u", i ? "," : "", groups[i]);
	ctty = open("/dev/tty", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (ctty >= 0)
		close(ctty);
	printf("],\"pid\":%d,\"sid_is_pid\":%s,\"ctty\":%s,\"fds\":[", getpid(),
	       getsid(0) == getpid() ? "true" : "false", ctty >= 0 ? "true" : "false");
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		printf("%s%s", first ? "" : ",", de->d_name);
		first = 0;
	}
	if (d)
		closedir(d);
	status_field("NoNewPrivs", buf, sizeof(buf));
	printf("],\"nonewprivs\":%s", buf);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		status_field(caps[i], buf, sizeof(buf));
		printf(",\"%s\":", caps[i]);
		jstr(buf);
	}
	status_field("Cpus_allowed_list", buf, sizeof(buf));
	fputs(",\"cpus\":", stdout);
	jstr(buf);
	gethostname(host, sizeof(host) - 1);
	fputs(",\"hostname\":", stdout);
	jstr(host);
	end_line();
}

static const char *const ns_names[] = { "net", "mnt", "pid", "uts", "ipc", "user", "cgroup" };

/* "ns=net:INO,mnt:INO,...": for each namespace given, does ours differ from it? */
static int cmd_ns(const char *arg)
{
	bool first_d = true, first_s = true;

	printf("{\"probe\":\"ns\",\"differ\":[");
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			printf("],\"same\":[");
		for (size_t i = 0; i < 7; i++) {
			char key[16], path[64];
			const char *p;
			struct stat sb;
			unsigned long long host;
			bool differs;

			snprintf(key, sizeof(key), "%s:", ns_names[i]);
			p = strstr(arg, key);
			/* "net:" must not match inside another name ("cgroup:" ends in "p:") */
			while (p && p != arg && p[-1] != ',')
				p = strstr(p + 1, key);
			if (!p)
				continue;
			host = strtoull(p + strlen(key), NULL, 10);
			snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
			if (stat(path, &sb) < 0)
				return -errno;
			differs = (unsigned long long)sb.st_ino != host;
			if (differs == (pass == 0)) {
				bool *f = pass == 0 ? &first_d : &first_s;

				printf("%s\"%s\"", *f ? "" : ",", ns_names[i]);
				*f = false;
			}
		}
	}
	printf("]");
	end_line();
	return 0;
}

/* A map file's lines as "inside outside count" joined by ";". */
static void map_member(const char *key, const char *path)
{
	size_t n;
	char *s = slurp(path, &n), out[8192] = "";
	size_t o = 0;
	char *save = NULL;

	printf(",\"%s\":", key);
	if (!s) {
		printf("null");
		return;
	}
	for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long a, b, c;

		if (sscanf(l, "%lu %lu %lu", &a, &b, &c) == 3 && o < sizeof(out) - 64)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%lu %lu %lu",
					      o ? ";" : "", a, b, c);
	}
	jstr(out);
}

static void cmd_maps(void)
{
	size_t n;
	char *s;

	printf("{\"probe\":\"maps\"");
	map_member("uid_map", "/proc/self/uid_map");
	map_member("gid_map", "/proc/self/gid_map");
	s = slurp("/proc/self/setgroups", &n);
	if (s && n && s[n - 1] == '\n')
		s[n - 1] = '\0';
	printf(",\"setgroups\":");
	if (s)
		jstr(s);
	else
		printf("null");
	end_line();
}

static void cmd_rlimits(void)
{
	static const struct {
		const char *name;
		int res;
	} rl[] = { { "as", RLIMIT_AS },
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
		   { "locks", RLIMIT_LOCKS } };

	printf("{\"probe\":\"rlimits\"");
	for (size_t i = 0; i < sizeof(rl) / sizeof(rl[0]); i++) {
		struct rlimit r;

		getrlimit(rl[i].res, &r);
		printf(",\"%s\":[%lld,%lld]", rl[i].name,
		       r.rlim_cur == RLIM_INFINITY ? -1ll : (long long)r.rlim_cur,
		       r.rlim_max == RLIM_INFINITY ? -1ll : (long long)r.rlim_max);
	}
	end_line();
}

static void cmd_env(void)
{
	printf("{\"probe\":\"env\",\"env\":[");
	for (char **e = environ; e && *e; e++) {
		printf("%s", e == environ ? "" : ",");
		jstr(*e);
	}
	printf("]");
	end_line();
}

static void ip_str(uint32_t host_order, char *out)
{
	struct in_addr a = { .s_addr = htonl(host_order) };

	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

/* Links in ifindex order with their IPv4 addresses; routes and neighbours from /proc/net. */
static void cmd_net(void)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	struct ifaddrs *ia = NULL;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t n;
	char *t, *save = NULL;
	bool first = true;

	getifaddrs(&ia);
	printf("{\"probe\":\"net\",\"links\":[");
	for (i = ifs; i && i->if_index; i++) {
		struct ifreq ifr = { 0 };
		bool up = false, fa = true;

		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", i->if_name);
		if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
			up = ifr.ifr_flags & IFF_UP;
		if (s < 0 || ioctl(s, SIOCGIFMTU, &ifr) < 0)
			ifr.ifr_mtu = -1;
		printf("%s{\"name\":", i == ifs ? "" : ",");
		jstr(i->if_name);
		printf(",\"up\":%s,\"mtu\":%d,\"addrs\":[", up ? "true" : "false", ifr.ifr_mtu);
		for (struct ifaddrs *a = ia; a; a = a->ifa_next) {
			char ip[INET_ADDRSTRLEN];
			uint32_t m;
			int plen = 0;

			if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET ||
			    strcmp(a->ifa_name, i->if_name) != 0)
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, ip,
				  sizeof(ip));
			m = a->ifa_netmask
				    ? ntohl(((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr)
				    : 0;
			while (m & 0x80000000u) {
				plen++;
				m <<= 1;
			}
			printf("%s\"%s/%d\"", fa ? "" : ",", ip, plen);
			fa = false;
		}
		printf("]}");
	}
	if (ifs)
		if_freenameindex(ifs);
	if (ia)
		freeifaddrs(ia);
	if (s >= 0)
		close(s);
	/* /proc/net/route: Iface Destination Gateway Flags ... Mask (little-endian hex) */
	printf("],\"routes\":[");
	t = slurp("/proc/net/route", &n);
	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		char dev[IFNAMSIZ + 1], d[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
		unsigned int dst, gw, flags, ref, use, metric, mask;
		int plen = 0;

		if (sscanf(l, "%16s %x %x %x %u %u %u %x", dev, &dst, &gw, &flags, &ref, &use,
			   &metric, &mask) != 8)
			continue;
		for (uint32_t m = ntohl(mask); m & 0x80000000u; m <<= 1)
			plen++;
		ip_str(ntohl(dst), d);
		ip_str(ntohl(gw), g);
		printf("%s{\"dst\":\"%s/%d\",\"via\":\"%s\",\"dev\":", first ? "" : ",", d, plen,
		       g);
		jstr(dev);
		printf("}");
		first = false;
	}
	/* /proc/net/arp: IP HWtype Flags HWaddress Mask Device; ATF_PERM is 0x4 */
	printf("],\"neigh\":[");
	first = true;
	save = NULL;
	t = slurp("/proc/net/arp", &n);
	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		char ip[64], mac[64], mask[64], dev[IFNAMSIZ + 1];
		unsigned int hw, flags;

		if (sscanf(l, "%63s %x %x %63s %63s %16s", ip, &hw, &flags, mac, mask, dev) != 6)
			continue;
		printf("%s{\"ip\":\"%s\",\"mac\":\"%s\",\"perm\":%s,\"dev\":", first ? "" : ",", ip,
		       mac, flags & 0x4 ? "true" : "false");
		jstr(dev);
		printf("}");
		first = false;
	}
	printf("]");
	end_line();
}

static void cmd_resolv(void)
{
	size_t n;
	char *s = slurp("/etc/resolv.conf", &n), *mi, *save = NULL;
	int fd, e = 0;

	printf("{\"probe\":\"resolv\",\"content\":");
	if (s)
		jstr_n(s, n);
	else
		printf("null");
	fd = open("/etc/resolv.conf", O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		e = errno;
	else
		close(fd);
	printf(",\"writable\":%s,\"write_error\":", fd >= 0 ? "true" : "false");
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...; the last mount wins */
	printf(",\"mount\":");
	{
		char opts[256] = "";

		mi = slurp("/proc/self/mountinfo", &n);
		for (char *l = mi ? strtok_r(mi, "\n", &save) : NULL; l;
		     l = strtok_r(NULL, "\n", &save)) {
			char root[512], mp[512], o[256];

			if (sscanf(l, "%*s %*s %*s %511s %511s %255s", root, mp, o) == 3 &&
			    strcmp(mp, "/etc/resolv.conf") == 0)
				snprintf(opts, sizeof(opts), "%s", o);
		}
		if (opts[0])
			jstr(opts);
		else
			printf("null");
	}
	end_line();
}

static int resolve(const char *name, struct in_addr *ret, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	int e = getaddrinfo(name, NULL, &hints, &res);

	if (e != 0) {
		snprintf(err, errlen, "%s", gai_strerror(e));
		return -1;
	}
	*ret = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

static void cmd_resolve(const char *name)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	uint64_t t0 = mono_ns();
	int e = getaddrinfo(name, NULL, &hints, &res);
	uint64_t t1 = mono_ns();

	printf("{\"probe\":\"resolve\",\"name\":");
	jstr(name);
	printf(",\"ok\":%s,\"addrs\":[", e == 0 ? "true" : "false");
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof(ip));
		printf("%s\"%s\"", a == res ? "" : ",", ip);
	}
	printf("],\"error\":");
	if (e)
		jstr(gai_strerror(e));
	else
		printf("null");
	printf(",\"t0_ns\":%llu,\"t_ns\":%llu", (unsigned long long)t0, (unsigned long long)t1);
	end_line();
	if (res)
		freeaddrinfo(res);
}

/* HOST:PORT, HOST a dotted quad or a name (resolved first). */
static void cmd_connect(const char *arg)
{
	char host[256], err[128] = "", ip[INET_ADDRSTRLEN] = "";
	const char *colon = strrchr(arg, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	uint64_t t_res = 0, t_conn = 0;
	int fd = -1, ok = 0, e = 0;

	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - arg) : 0, arg);
	sa.sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		if (resolve(host, &sa.sin_addr, err, sizeof(err)) < 0)
			goto out;
		t_res = mono_ns();
	}
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	t_conn = mono_ns();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	else
		ok = 1;
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
		me.sin_port = 0;
out:
	printf("{\"probe\":\"connect\",\"host\":");
	jstr(host);
	printf(",\"addr\":\"%s\",\"port\":%d,\"connected\":%s,\"error\":", ip, ntohs(sa.sin_port),
	       ok ? "true" : "false");
	if (err[0])
		jstr(err);
	else if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	printf(",\"sport\":%d,\"t_resolved_ns\":%llu,\"t_connect_ns\":%llu",
	       fd >= 0 ? ntohs(me.sin_port) : 0, (unsigned long long)t_res,
	       (unsigned long long)t_conn);
	end_line();
	if (fd >= 0)
		close(fd);
}

/*
 * IP:PORT:N[:SPORT]: N sockets, one datagram each, so N distinct 5-tuples; with SPORT they are
 * bound to source ports SPORT..SPORT+N-1 (ephemeral ports of closed sockets may repeat).
 */
static void cmd_udp(const char *arg)
{
	char ip[64];
	unsigned int port = 0, count = 1, sent = 0, sport = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET };

	if (sscanf(arg, "%63[^:]:%u:%u:%u", ip, &port, &count, &sport) < 2 ||
	    inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		ip[0] = '\0';
	sa.sin_port = htons((uint16_t)port);
	for (unsigned int k = 0; ip[0] && k < count && k < 4096; k++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in me = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)(sport + k)) };

		if (fd >= 0 && sport && bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
			close(fd);
			continue;
		}
		if (fd >= 0 &&
		    sendto(fd, "cellcheck", 9, 0, (struct sockaddr *)&sa, sizeof(sa)) == 9)
			sent++;
		if (fd >= 0)
			close(fd);
	}
	printf("{\"probe\":\"udp\",\"dst\":");
	jstr(arg);
	printf(",\"sent\":%u", sent);
	end_line();
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void cmd_ls(const char *dir)
{
	static char names[256][256];
	char *p[256];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	int e = d ? 0 : errno;

	while (d && n < 256 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(names[n], sizeof(names[n]), "%s", de->d_name);
		p[n] = names[n];
		n++;
	}
	if (d)
		closedir(d);
	qsort(p, n, sizeof(p[0]), name_cmp);
	printf("{\"probe\":\"ls\",\"dir\":");
	jstr(dir);
	printf(",\"error\":");
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	printf(",\"entries\":[");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		jstr(p[i]);
	}
	printf("]");
	end_line();
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = strchr(a, '=');

		v = v ? v + 1 : "";
		if (strcmp(a, "self") == 0) {
			cmd_self();
		} else if (strncmp(a, "ns=", 3) == 0) {
			if (cmd_ns(v) < 0)
				return 1;
		} else if (strcmp(a, "maps") == 0) {
			cmd_maps();
		} else if (strcmp(a, "rlimits") == 0) {
			cmd_rlimits();
		} else if (strcmp(a, "env") == 0) {
			cmd_env();
		} else if (strcmp(a, "net") == 0) {
			cmd_net();
		} else if (strcmp(a, "resolv") == 0) {
			cmd_resolv();
		} else if (strncmp(a, "resolve=", 8) == 0) {
			cmd_resolve(v);
		} else if (strncmp(a, "connect=", 8) == 0) {
			cmd_connect(v);
		} else if (strncmp(a, "ls=", 3) == 0) {
			cmd_ls(v);
		} else if (strncmp(a, "udp=", 4) == 0) {
			cmd_udp(v);
		} else if (strncmp(a, "sleep=", 6) == 0) {
			struct timespec ts = { atoi(v) / 1000, (atoi(v) % 1000) * 1000000L };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		} else if (strncmp(a, "exit=", 5) == 0) {
			fflush(stdout);
			_exit(atoi(v));
		} else if (strncmp(a, "raise=", 6) == 0) {
			fflush(stdout);
			signal(atoi(v), SIG_DFL);
			kill(getpid(), atoi(v));
			/* Init of a PID namespace is immune to its own signals: say so. */
			printf("{\"probe\":\"raise\",\"survived\":%s}\n", v);
			fflush(stdout);
		} else {
			fprintf(stderr, "cellcheck-probe: unknown command \"%s\"\n", a);
			return 2;
		}
	}
	return 0;
}
