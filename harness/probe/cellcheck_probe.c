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
 *     escape               try to write in every mount point and usual system directory
 *                          (create a file, removed at once) and to open the usual system
 *                          files for writing: each place's outcome, the writable ones
 *     resolve=NAME         getaddrinfo(NAME, AF_INET); t_ns: CLOCK_MONOTONIC after the answer
 *     connect=HOST:PORT    resolve HOST when it is a name, then a TCP connect (then close)
 *     resolve6=NAME        one AAAA query over UDP over IPv6 to the first IPv6 nameserver of
 *                          /etc/resolv.conf: its answers (RFC 5952), the query's source port
 *     connect6=HOST:PORT   HOST [V6] or a name (resolved as resolve6 does), a TCP connect over
 *                          IPv6 (then close)
 *     udp=IP:PORT:N[:SPORT] N datagrams from N sockets (from ports SPORT.. if given)
 *     ls=DIR               the names in DIR, sorted (leases left behind)
 *     ipv6=IF              IPv6 on link IF: disable_ipv6, its addresses, and what a UDP
 *                          sendto(2) to ff02::1%IF returns (what a workload can send)
 *     ipv6-traffic=IF:PEER:PORT  once IF's link-local address is usable: UDP to [PEER%IF]:PORT,
 *                          a TCP connect there, an ICMPv6 echo by ping socket and by raw
 *                          socket; each outcome (what a workload can send over IPv6)
 *     net6=IF              IF's IPv6 addresses (scope, tentative, nodad) as the workload finds
 *                          them, the IPv6 default route, the IPv6 neighbours of IF
 *     egress=IF:PORT:DST[,DST...]  every family and protocol a workload without capabilities
 *                          can try, to each DST (IPv4, IPv6; fe80::/10 and ff02::/16 on IF):
 *                          UDP, TCP connect, ICMP/ICMPv6 echo by ping socket, UDP-Lite, SCTP,
 *                          DCCP, raw; one line per DST, then an egress-count line: packets of
 *                          the protocols an egress classifier does not consider that left,
 *                          from the netns's own counters
 *     udplite=IP:PORT      one UDP-Lite datagram (IPv6 in brackets) with IP(V6)_RECVERR, so a
 *                          drop on the way out reads ENOBUFS
 *     udplite-in           UDP-Lite datagrams that reached this netns (IPv4, IPv6 counters)
 *     frames=IF:KINDS[:N]  N (1) raw Ethernet frames of each kind (comma-separated: ipv6-udp,
 *                          ether, gre, fragment, truncated, and the IPv6 kinds of frame6())
 *                          out of IF with AF_PACKET: what an egress classifier must count or
 *                          parse; sent, and dropped (ENOBUFS: a tc filter or qdisc dropped it
 *                          on the way out)
 *     proc=PID             another process: cmdline, environ, AT_EXECFN, exe, every thread's
 *                          ids, groups, no_new_privs, capabilities and netns, every fd (memfd:
 *                          seals and content; socket: family, type, address, netns)
 *     children=PID         the same, one line per child of PID (workers=PID: an alias)
 *     await=PID:WHAT[:MS]  wait (at most MS ms, default 20000) until PID is traced
 *                          (WHAT "traced") or has at least N children (WHAT a number N);
 *                          exit 1 if not in time: a case's event-driven wait, not a pause
 *     watch-children=PID[:MS] pidfds on PID and its children; once PID exited, which children
 *                          still live after MS ms
 *     flock=PATH           hold an exclusive flock on PATH (created) until the probe exits
 *     neigh-set=IF:IP:MAC  a permanent neighbour IP -> MAC on IF, replacing any entry there
 *     trace-exec=PID[:N[:MS[:SUB]]] ptrace PID and its descendants; at each exec, before the new
 *                          image runs, the same line; after N execs or MS ms the probe exits
 *     links-watch          subscribe to the link notifications (RTNLGRP_LINK) of its netns
 *     links-seen=MS        then, for MS ms: the names of links created/changed, deleted
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
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* mountinfo's octal escapes (\040 for a space) undone in place. */
static void unescape_mnt(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Places a workload could hope to change the host through (escape): directories, files. */
static const char *const escape_dirs[] = {
	"/",
	"/bin",
	"/boot",
	"/dev",
	"/dev/mqueue",
	"/dev/pts",
	"/dev/shm",
	"/etc",
	"/etc/cron.d",
	"/etc/systemd/system",
	"/home",
	"/lib",
	"/media",
	"/mnt",
	"/opt",
	"/proc",
	"/proc/sys",
	"/proc/sys/kernel",
	"/proc/sys/net",
	"/root",
	"/run",
	"/run/cellref",
	"/run/lock",
	"/sbin",
	"/srv",
	"/sys",
	"/sys/fs/bpf",
	"/sys/fs/cgroup",
	"/sys/kernel",
	"/tmp",
	"/usr",
	"/usr/local",
	"/usr/local/bin",
	"/var",
	"/var/cache",
	"/var/lib",
	"/var/log",
	"/var/spool",
	"/var/tmp",
};
static const char *const escape_files[] = {
	"/etc/passwd",
	"/etc/shadow",
	"/etc/resolv.conf",
	"/etc/hostname",
	"/proc/sys/kernel/hostname",
	"/proc/sys/kernel/core_pattern",
	"/proc/sys/vm/drop_caches",
	"/proc/sysrq-trigger",
	"/sys/kernel/uevent_helper",
	"/sys/fs/cgroup/cgroup.procs",
	"/sys/class/net/lo/mtu",
};
#define ESCAPE_MAX 1024

/* The directories to try, sorted (duplicates kept): the usual ones and every mount point. */
static size_t escape_candidates(char *cand[ESCAPE_MAX])
{
	char *mi, *save = NULL;
	size_t nc = 0, n;

	for (size_t i = 0; i < sizeof(escape_dirs) / sizeof(escape_dirs[0]); i++)
		cand[nc++] = strdup(escape_dirs[i]);
	mi = slurp("/proc/self/mountinfo", &n); /* a static buffer */
	for (char *l = mi ? strtok_r(mi, "\n", &save) : NULL; l && nc < ESCAPE_MAX;
	     l = strtok_r(NULL, "\n", &save)) {
		char mp[4096];

		if (sscanf(l, "%*s %*s %*s %*s %4095s", mp) == 1) {
			unescape_mnt(mp);
			cand[nc++] = strdup(mp);
		}
	}
	qsort(cand, nc, sizeof(cand[0]), cmp_str);
	return nc;
}

/* A new file created and written in dir, then removed: "written", or the errno's name. */
static const char *escape_try_dir(const char *dir, const char *marker)
{
	char path[4200];
	int fd, e = 0;

	snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", marker);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
	} else {
		if (write(fd, "x", 1) != 1)
			e = errno ?: EIO;
		close(fd);
		unlink(path);
	}
	return e ? strerrorname_np(e) ?: "?" : fd >= 0 ? "written" : "?";
}

/*
 * escape: try to write in every place a workload could hope to change the host through: each
 * mount point it sees, and the usual directories and files of a system. A directory counts as
 * writable when a new file can be created in it (the file is removed at once); a file when it
 * opens for writing (nothing is written: /proc/sysrq-trigger and friends stay untouched).
 */
static void cmd_escape(void)
{
	char *cand[ESCAPE_MAX], *writable[ESCAPE_MAX], *files_w[64], marker[64];
	size_t nc = escape_candidates(cand), nw = 0, nf = 0;

	snprintf(marker, sizeof(marker), ".cellcheck-escape.%d", (int)getpid());
	printf("{\"probe\":\"escape\",\"uid\":%d,\"places\":[", (int)geteuid());
	size_t tried = 0;

	for (size_t i = 0; i < nc; i++) {
		struct stat st;
		const char *res;

		if (!cand[i] || (i > 0 && cand[i - 1] && strcmp(cand[i], cand[i - 1]) == 0))
			continue;
		if (stat(cand[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* a file mount point (/dev/null, a masked file) is not a place */
		res = escape_try_dir(cand[i], marker);
		if (strcmp(res, "written") == 0)
			writable[nw++] = cand[i];
		printf("%s{\"path\":", tried++ ? "," : "");
		jstr(cand[i]);
		printf(",\"result\":");
		jstr(res);
		printf("}");
	}
	for (size_t i = 0; i < sizeof(escape_files) / sizeof(escape_files[0]); i++) {
		int fd = open(escape_files[i],
			      O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

		if (fd < 0 && errno == ENOENT)
			continue;
		printf(",{\"path\":");
		jstr(escape_files[i]);
		printf(",\"result\":");
		jstr(fd >= 0 ? "opened" : strerrorname_np(errno) ?: "?");
		printf("}");
		tried++;
		if (fd >= 0) {
			close(fd);
			files_w[nf++] = (char *)escape_files[i];
		}
	}
	printf("],\"tried\":%zu,\"files_writable\":[", tried);
	for (size_t i = 0; i < nf; i++) {
		printf("%s", i ? "," : "");
		jstr(files_w[i]);
	}
	printf("],\"writable\":[");
	for (size_t i = 0; i < nw; i++) {
		printf("%s", i ? "," : "");
		jstr(writable[i]);
	}
	printf("]");
	end_line();
	for (size_t i = 0; i < nc; i++)
		free(cand[i]);
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
 * The first "nameserver" of /etc/resolv.conf that is an IPv6 address (a dual-stack cell's
 * proxy listener, SPEC SUP-DNS-005), port 53: glibc asks the nameservers in file order, so
 * getaddrinfo would reach the IPv4 one first; a case about IPv6 transport asks this one.
 */
static int resolv_ns6(struct sockaddr_in6 *ret)
{
	size_t n;
	char *t = slurp("/etc/resolv.conf", &n), *save = NULL;

	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		char a[INET6_ADDRSTRLEN + 1];

		if (sscanf(l, "nameserver %46s", a) == 1 &&
		    inet_pton(AF_INET6, a, &ret->sin6_addr) == 1) {
			ret->sin6_family = AF_INET6;
			ret->sin6_port = htons(53);
			return 0;
		}
	}
	return -ENOENT;
}

/* Skip a (possibly compressed) name at *off of msg; -1 when it runs past the end. */
static int dns_skip_name(const uint8_t *msg, size_t len, size_t *off)
{
	while (*off < len) {
		uint8_t c = msg[*off];

		if ((c & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len ? 0 : -1;
		}
		*off += 1u + c;
		if (c == 0)
			return 0;
	}
	return -1;
}

struct aaaa_answer {
	char server[INET6_ADDRSTRLEN + 8];
	char err[64];
	int rcode; /* -1: no answer */
	int sport;
	size_t n;
	struct in6_addr addrs[8];
	uint64_t t0_ns, t_ns;
};

/*
 * One AAAA query (RD) for NAME over UDP over IPv6 to resolv_ns6(), waited for 5 s: the answer's
 * rcode and its AAAA records, in order. Built by hand: no resolver library chooses the server.
 */
static int resolve_aaaa(const char *name, struct aaaa_answer *r)
{
	uint8_t q[300], a[1500];
	struct sockaddr_in6 ns = { 0 }, me;
	socklen_t ml = sizeof(me);
	size_t qn = 12, off;
	uint16_t id = (uint16_t)(mono_ns() ^ (uint64_t)getpid());
	struct pollfd p;
	ssize_t k;
	int fd, e;

	*r = (struct aaaa_answer){ .rcode = -1 };
	r->t0_ns = mono_ns();
	if (resolv_ns6(&ns) < 0) {
		snprintf(r->err, sizeof(r->err), "no IPv6 nameserver in /etc/resolv.conf");
		return -ENOENT;
	}
	{
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &ns.sin6_addr, ip, sizeof(ip));
		snprintf(r->server, sizeof(r->server), "[%s]:53", ip);
	}
	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0x01; /* RD */
	q[5] = 1;    /* QDCOUNT */
	for (const char *s = name; *s;) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);

		if (l == 0 || l > 63 || qn + l + 6 > sizeof(q)) {
			snprintf(r->err, sizeof(r->err), "EINVAL");
			return -EINVAL;
		}
		q[qn++] = (uint8_t)l;
		memcpy(q + qn, s, l);
		qn += l;
		s += l + (dot ? 1 : 0);
	}
	q[qn++] = 0;
	q[qn++] = 0;
	q[qn++] = 28; /* AAAA */
	q[qn++] = 0;
	q[qn++] = 1; /* IN */
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ns, sizeof(ns)) < 0 ||
	    send(fd, q, qn, 0) != (ssize_t)qn) {
		e = errno ?: EIO;
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0)
		r->sport = ntohs(me.sin6_port);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	do {
		if (poll(&p, 1, 5000) != 1) {
			e = ETIMEDOUT;
			goto fail;
		}
		k = recv(fd, a, sizeof(a), 0);
		if (k < 0) {
			e = errno;
			goto fail;
		}
	} while (k < 12 || a[0] != q[0] || a[1] != q[1] || !(a[2] & 0x80));
	r->t_ns = mono_ns();
	close(fd);
	r->rcode = a[3] & 0x0f;
	off = 12;
	for (int i = 0; i < (a[4] << 8 | a[5]); i++)
		if (dns_skip_name(a, (size_t)k, &off) < 0 || (off += 4) > (size_t)k)
			goto malformed;
	for (int i = 0; i < (a[6] << 8 | a[7]); i++) {
		uint16_t type, rdlen;

		if (dns_skip_name(a, (size_t)k, &off) < 0 || off + 10 > (size_t)k)
			goto malformed;
		type = (uint16_t)(a[off] << 8 | a[off + 1]);
		rdlen = (uint16_t)(a[off + 8] << 8 | a[off + 9]);
		off += 10;
		if (off + rdlen > (size_t)k)
			goto malformed;
		if (type == 28 && rdlen == 16 && r->n < sizeof(r->addrs) / sizeof(r->addrs[0]))
			memcpy(&r->addrs[r->n++], a + off, 16);
		off += rdlen;
	}
	return 0;
malformed:
	snprintf(r->err, sizeof(r->err), "malformed answer");
	return -EBADMSG;
fail:
	r->t_ns = mono_ns();
	snprintf(r->err, sizeof(r->err), "%s", strerrorname_np(e) ?: "?");
	if (fd >= 0)
		close(fd);
	return -e;
}

static void cmd_resolve6(const char *name)
{
	struct aaaa_answer r;
	int e = resolve_aaaa(name, &r);

	printf("{\"probe\":\"resolve6\",\"name\":");
	jstr(name);
	printf(",\"server\":");
	jstr(r.server);
	printf(",\"ok\":%s,\"addrs\":[", e == 0 && r.rcode == 0 && r.n > 0 ? "true" : "false");
	for (size_t i = 0; i < r.n; i++) {
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &r.addrs[i], ip, sizeof(ip));
		printf("%s\"%s\"", i ? "," : "", ip);
	}
	printf("],\"rcode\":");
	if (r.rcode >= 0)
		printf("%d", r.rcode);
	else
		printf("null");
	printf(",\"error\":");
	if (r.err[0])
		jstr(r.err);
	else
		printf("null");
	printf(",\"sport\":%d,\"t0_ns\":%llu,\"t_ns\":%llu", r.sport, (unsigned long long)r.t0_ns,
	       (unsigned long long)r.t_ns);
	end_line();
}

/*
 * [V6]:PORT or NAME:PORT: NAME resolved first (resolve_aaaa, its first AAAA), then a TCP
 * connection attempt over IPv6 bounded by 5 s (then closed).
 */
static void cmd_connect6(const char *arg)
{
	char host[256], ip[INET6_ADDRSTRLEN] = "", err[64] = "";
	const char *colon = strrchr(arg, ':');
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 }, me;
	struct timeval tv = { .tv_sec = 5 };
	socklen_t ml = sizeof(me);
	uint64_t t_res = 0, t_conn = 0;
	int fd = -1, ok = 0, e = 0, dns_sport = 0, sport = 0;
	size_t hl = colon ? (size_t)(colon - arg) : 0;

	if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), arg + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, arg);
	sa.sin6_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
	if (inet_pton(AF_INET6, host, &sa.sin6_addr) != 1) {
		struct aaaa_answer r;

		if (resolve_aaaa(host, &r) < 0 || r.rcode != 0 || r.n == 0) {
			snprintf(err, sizeof(err), "%s", r.err[0] ? r.err : "no AAAA answer");
			dns_sport = r.sport;
			goto out;
		}
		dns_sport = r.sport;
		sa.sin6_addr = r.addrs[0];
		t_res = mono_ns();
	}
	inet_ntop(AF_INET6, &sa.sin6_addr, ip, sizeof(ip));
	t_conn = mono_ns();
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	else
		ok = 1;
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&me, &ml) == 0)
		sport = ntohs(me.sin6_port);
out:
	printf("{\"probe\":\"connect6\",\"host\":");
	jstr(host);
	printf(",\"addr\":\"%s\",\"port\":%d,\"connected\":%s,\"error\":", ip, ntohs(sa.sin6_port),
	       ok ? "true" : "false");
	if (err[0])
		jstr(err);
	else if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	printf(",\"sport\":%d,\"dns_sport\":%d,\"t_resolved_ns\":%llu,\"t_connect_ns\":%llu", sport,
	       dns_sport, (unsigned long long)t_res, (unsigned long long)t_conn);
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

/* Addresses of IF in /proc/net/if_inet6 (absent: a kernel without IPv6), as a JSON array. */
static void ipv6_addrs(const char *ifname)
{
	size_t n;
	char *text = slurp("/proc/net/if_inet6", &n), *save = NULL;
	bool first = true;

	putchar('[');
	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char hex[33], dev[IFNAMSIZ + 1], txt[INET6_ADDRSTRLEN];
		unsigned int idx, plen, scope, flags;
		struct in6_addr a;

		if (sscanf(l, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags, dev) !=
			    6 ||
		    strcmp(dev, ifname) != 0)
			continue;
		for (int i = 0; i < 16; i++)
			sscanf(hex + 2 * i, "%2hhx", &a.s6_addr[i]);
		inet_ntop(AF_INET6, &a, txt, sizeof(txt));
		printf("%s\"%s/%u\"", first ? "" : ",", txt, plen);
		first = false;
	}
	putchar(']');
}

static void cmd_ipv6(const char *ifname)
{
	char path[128], val[16] = "";
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
	size_t n;
	char *text;
	int fd, e = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	text = slurp(path, &n);
	if (text)
		snprintf(val, sizeof(val), "%.*s", (int)strcspn(text, "\n"), text);
	printf("{\"probe\":\"ipv6\",\"ifname\":");
	jstr(ifname);
	printf(",\"disable_ipv6\":");
	if (text)
		jstr(val);
	else
		fputs("null", stdout);
	printf(",\"addrs\":");
	ipv6_addrs(ifname);
	/* All nodes on the link: needs no route and no address of ours but the link-local. */
	inet_pton(AF_INET6, "ff02::1", &sa.sin6_addr);
	sa.sin6_scope_id = if_nametoindex(ifname);
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, "cellcheck", 9, 0, (struct sockaddr *)&sa, sizeof(sa)) != 9)
		e = errno ?: EIO;
	if (fd >= 0)
		close(fd);
	printf(",\"sendto\":");
	jstr(e ? strerrorname_np(e) ?: "?" : "ok");
	end_line();
}

/* 1 when IF has a link-local address that is no longer tentative (/proc/net/if_inet6). */
static int ipv6_ll_ready(const char *ifname)
{
	char line[256], name[IFNAMSIZ + 1];
	unsigned int idx, plen, scope, flags;
	FILE *f = fopen("/proc/net/if_inet6", "re");
	int ok = 0;

	if (!f)
		return 0;
	while (!ok && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*32s %x %x %x %x %16s", &idx, &plen, &scope, &flags, name) ==
			    5 &&
		    strcmp(name, ifname) == 0 && scope == 0x20 && !(flags & 0x40 /* tentative */))
			ok = 1;
	}
	fclose(f);
	return ok;
}

static void jerr(const char *key, int e)
{
	printf(",\"%s\":", key);
	jstr(e ? strerrorname_np(e) ?: "?" : "ok");
}

/*
 * ipv6-traffic=IF:PEER:PORT: what a workload without capabilities can send over IPv6 link-local,
 * once IF's link-local address is usable (DAD done, waited for at most 5 s): a UDP datagram to
 * [PEER%IF]:PORT, a TCP connection attempt there (ECONNREFUSED: the SYN left and the peer's
 * RST came back), an ICMPv6 echo through a ping socket and a raw ICMPv6 socket (refused
 * without CAP_NET_RAW or a ping_group_range that holds us; sent when allowed). Each the errno
 * name or "ok".
 */
static void cmd_ipv6_traffic(const char *arg)
{
	char ifname[IFNAMSIZ] = "", peer[INET6_ADDRSTRLEN] = "";
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	static const uint8_t echo[8] = { 128, 0, 0, 0, 0, 1, 0, 1 };
	unsigned int port = 0;
	int ready = 0, fd, e;
	const char *c1 = strchr(arg, ':'), *c2 = strrchr(arg, ':');

	/* IF, then the address up to the last colon (an IPv6 address has colons), then PORT. */
	if (c1 && c2 > c1 && (size_t)(c1 - arg) < sizeof(ifname) &&
	    (size_t)(c2 - c1 - 1) < sizeof(peer)) {
		memcpy(ifname, arg, (size_t)(c1 - arg));
		memcpy(peer, c1 + 1, (size_t)(c2 - c1 - 1));
	}
	if (!c2 || sscanf(c2 + 1, "%u", &port) != 1 || port > 65535 ||
	    inet_pton(AF_INET6, peer, &sa.sin6_addr) != 1) {
		printf("{\"probe\":\"ipv6-traffic\",\"error\":\"EINVAL\"");
		end_line();
		return;
	}
	sa.sin6_port = htons((uint16_t)port);
	sa.sin6_scope_id = if_nametoindex(ifname);
	for (int i = 0; i < 500 && !(ready = ipv6_ll_ready(ifname)); i++)
		usleep(10000);
	printf("{\"probe\":\"ipv6-traffic\",\"arg\":");
	jstr(arg);
	printf(",\"linklocal\":%s", ready ? "true" : "false");

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	e = fd < 0 || sendto(fd, "cellcheck", 9, 0, (struct sockaddr *)&sa, sizeof(sa)) != 9
		    ? errno ?: EIO
		    : 0;
	if (fd >= 0)
		close(fd);
	jerr("udp", e);

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	e = fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno ?: EIO : 0;
	if (fd >= 0)
		close(fd);
	jerr("tcp", e);

	sa.sin6_port = 0;
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	e = fd < 0 || sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0
		    ? errno ?: EIO
		    : 0;
	if (fd >= 0)
		close(fd);
	jerr("ping", e);

	fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	e = fd < 0 || sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0
		    ? errno ?: EIO
		    : 0;
	if (fd >= 0)
		close(fd);
	jerr("raw", e);
	end_line();
}

/* ---- dual-stack: net6 and egress --------------------------------------------------------------
 */

/* The neighbours of family AF_INET6 on ifindex, by an RTM_GETNEIGH dump (no privilege needed). */
static void neigh6_list(int ifindex)
{
	struct {
		struct nlmsghdr h;
		struct ndmsg nd;
	} req = { .h = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = RTM_GETNEIGH,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			 .nlmsg_seq = 1 },
		  .nd = { .ndm_family = AF_INET6 } };
	static char buf[65536];
	bool first = true, done = false;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	putchar('[');
	if (fd < 0 || send(fd, &req, sizeof(req), 0) < 0)
		done = true;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct ndmsg *nd = NLMSG_DATA(h);
			struct rtattr *a = (struct rtattr *)((char *)nd + NLMSG_ALIGN(sizeof(*nd)));
			int len = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof(*nd));
			char ip[INET6_ADDRSTRLEN] = "", mac[18] = "";

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (h->nlmsg_type != RTM_NEWNEIGH || nd->ndm_ifindex != ifindex)
				continue;
			for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
				const uint8_t *d = RTA_DATA(a);

				if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) == 16)
					inet_ntop(AF_INET6, d, ip, sizeof(ip));
				if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6)
					snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
						 d[0], d[1], d[2], d[3], d[4], d[5]);
			}
			if (!ip[0])
				continue;
			printf("%s{\"ip\":\"%s\",\"mac\":\"%s\",\"perm\":%s}", first ? "" : ",", ip,
			       mac, nd->ndm_state & NUD_PERMANENT ? "true" : "false");
			first = false;
		}
	}
	if (fd >= 0)
		close(fd);
	putchar(']');
}

/*
 * net6=IF: what a dual-stack workload finds on IF the moment it starts: each IPv6 address
 * (/proc/net/if_inet6: scope, and the flags tentative 0x40 and nodad 0x02), the default route of
 * /proc/net/ipv6_route (the main table's, via and dev), the IPv6 neighbours of IF.
 */
static void cmd_net6(const char *ifname)
{
	size_t n;
	char *t = slurp("/proc/net/if_inet6", &n), *save = NULL;
	bool first = true, def = false;

	printf("{\"probe\":\"net6\",\"ifname\":");
	jstr(ifname);
	printf(",\"addrs\":[");
	/* Global addresses first, then the others: the file's order is a hash table's. */
	for (int pass = 0; pass < 2; pass++) {
		t = slurp("/proc/net/if_inet6", &n);
		save = NULL;
		for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l;
		     l = strtok_r(NULL, "\n", &save)) {
			char hex[33], dev[IFNAMSIZ + 1], txt[INET6_ADDRSTRLEN];
			unsigned int idx, plen, scope, flags;
			struct in6_addr a;

			if (sscanf(l, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags,
				   dev) != 6 ||
			    strcmp(dev, ifname) != 0 || (scope == 0) != (pass == 0))
				continue;
			for (int i = 0; i < 16; i++)
				sscanf(hex + 2 * i, "%2hhx", &a.s6_addr[i]);
			inet_ntop(AF_INET6, &a, txt, sizeof(txt));
			printf("%s{\"addr\":\"%s/%u\",\"scope\":\"%s\",\"tentative\":%s,\"nodad\":%s}",
			       first ? "" : ",", txt, plen,
			       scope == 0      ? "global"
			       : scope == 0x20 ? "link"
					       : "other",
			       flags & 0x40 ? "true" : "false", flags & 0x02 ? "true" : "false");
			first = false;
		}
	}
	/* dst plen src plen next_hop metric refcnt use flags dev; the default route: ::/0 */
	printf("],\"default\":");
	save = NULL;
	t = slurp("/proc/net/ipv6_route", &n);
	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l && !def;
	     l = strtok_r(NULL, "\n", &save)) {
		char dst[33], src[33], nh[33], dev[IFNAMSIZ + 1], txt[INET6_ADDRSTRLEN];
		unsigned int dplen, splen, metric, ref, use, flags;
		struct in6_addr a;

		if (sscanf(l, "%32s %x %32s %x %32s %x %x %x %x %16s", dst, &dplen, src, &splen, nh,
			   &metric, &ref, &use, &flags, dev) != 10 ||
		    dplen != 0 || strcmp(dev, ifname) != 0 || !(flags & 0x2 /* RTF_GATEWAY */))
			continue;
		for (int i = 0; i < 16; i++)
			sscanf(nh + 2 * i, "%2hhx", &a.s6_addr[i]);
		inet_ntop(AF_INET6, &a, txt, sizeof(txt));
		printf("{\"via\":\"%s\",\"dev\":", txt);
		jstr(dev);
		putchar('}');
		def = true;
	}
	if (!def)
		printf("null");
	printf(",\"neigh\":");
	neigh6_list((int)if_nametoindex(ifname));
	end_line();
}

/* The value of NAME in /proc/net/snmp6 or /proc/net/sctp/snmp ("Name value" lines); 0: none. */
static uint64_t snmp_kv(const char *path, const char *name)
{
	size_t n, len = strlen(name);
	char *t = slurp(path, &n), *save = NULL;
	uint64_t v = 0;

	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, name, len) == 0 && (l[len] == ' ' || l[len] == '\t'))
			v = strtoull(l + len, NULL, 10);
	return v;
}

/* A column of /proc/net/snmp: the line "Proto: names" then "Proto: values". */
static uint64_t snmp_col(const char *proto, const char *col)
{
	size_t n, plen = strlen(proto);
	char *t = slurp("/proc/net/snmp", &n), *save = NULL, *names = NULL;
	uint64_t v = 0;

	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, proto, plen) != 0 || l[plen] != ':')
			continue;
		if (!names) {
			names = l;
			continue;
		}
		/* the values line: walk both lines column by column */
		char *s1 = NULL, *s2 = NULL, *k = strtok_r(names + plen + 1, " ", &s1),
		     *x = strtok_r(l + plen + 1, " ", &s2);

		for (; k && x; k = strtok_r(NULL, " ", &s1), x = strtok_r(NULL, " ", &s2))
			if (strcmp(k, col) == 0)
				v = strtoull(x, NULL, 10);
		break;
	}
	return v;
}

/* eth0's tx_packets from /proc/net/dev (this netns). */
static uint64_t dev_tx(const char *ifname)
{
	size_t n, len = strlen(ifname);
	char *t = slurp("/proc/net/dev", &n), *save = NULL;
	uint64_t v = 0;

	for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long f[10];

		while (*l == ' ')
			l++;
		if (strncmp(l, ifname, len) != 0 || l[len] != ':')
			continue;
		if (sscanf(l + len + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0],
			   &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9]) == 10)
			v = f[9];
	}
	return v;
}

struct dst {
	int family;
	socklen_t len;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
};

static int errno_of(int ok)
{
	return ok ? 0 : errno ? errno : EIO;
}

/* A connection attempt bounded by 3 s (SO_SNDTIMEO bounds a blocking connect). */
static int try_connect(int family, int type, int proto, const struct dst *d)
{
	struct timeval tv = { .tv_sec = 3 };
	int fd = socket(family, type | SOCK_CLOEXEC, proto), e;

	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	e = errno_of(connect(fd, &d->a.sa, d->len) == 0);
	close(fd);
	return e;
}

static int try_dgram(int family, int proto, const struct dst *d, const void *msg, size_t n)
{
	int one = 1, fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto), e;

	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	e = errno_of(sendto(fd, msg, n, 0, &d->a.sa, d->len) == (ssize_t)n);
	close(fd);
	return e;
}

/* An echo through a ping socket, and its reply awaited (2 s): "ok" only when it came back. */
static int try_ping(const struct dst *d)
{
	uint8_t echo[8] = { d->family == AF_INET ? 8 : 128, 0, 0, 0, 0, 1, 0, 1 }, buf[256];
	int fd = socket(d->family, SOCK_DGRAM | SOCK_CLOEXEC,
			d->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6),
	    e;
	struct dst to = *d;
	struct pollfd p;

	if (fd < 0)
		return errno;
	if (d->family == AF_INET)
		to.a.in.sin_port = 0;
	else
		to.a.in6.sin6_port = 0;
	e = errno_of(sendto(fd, echo, sizeof(echo), 0, &to.a.sa, to.len) == sizeof(echo));
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (!e)
		e = poll(&p, 1, 2000) == 1 && recv(fd, buf, sizeof(buf), 0) > 0 ? 0 : ETIMEDOUT;
	close(fd);
	return e;
}

/*
 * egress=IF:PORT:DST[,DST...]: for each DST, every way a process without capabilities may try
 * to send: UDP, TCP (ECONNREFUSED: the SYN reached the peer, its RST came back), an echo by
 * ping socket (ok: the reply came back; EACCES: ping_group_range excludes us), UDP-Lite, SCTP
 * and DCCP (a connection attempt; an errno of socket() such as EPROTONOSUPPORT or
 * ESOCKTNOSUPPORT: the kernel lacks the protocol, so nothing was sent, the reason given), and a
 * raw socket (EPERM). Then egress-count: the packets of UDP-Lite (UdpLite OutDatagrams,
 * UdpLite6OutDatagrams), SCTP (SctpOutSCTPPacks) and DCCP (IF's tx_packets around each
 * attempt: DCCP has no counter of its own) that left during the command, and their sum.
 */
static void cmd_egress(const char *arg)
{
	char ifname[IFNAMSIZ] = "", list[1024];
	const char *c1 = strchr(arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	unsigned int port = 0;
	uint64_t ul0, ul60, sc0, dccp = 0;
	char *save = NULL;

	if (!c1 || !c2 || (size_t)(c1 - arg) >= sizeof(ifname) ||
	    sscanf(c1 + 1, "%u", &port) != 1 || port == 0 || port > 65535 ||
	    strlen(c2 + 1) >= sizeof(list)) {
		printf("{\"probe\":\"egress\",\"error\":\"EINVAL\"");
		end_line();
		return;
	}
	memcpy(ifname, arg, (size_t)(c1 - arg));
	snprintf(list, sizeof(list), "%s", c2 + 1);
	ul0 = snmp_col("UdpLite", "OutDatagrams");
	ul60 = snmp_kv("/proc/net/snmp6", "UdpLite6OutDatagrams");
	sc0 = snmp_kv("/proc/net/sctp/snmp", "SctpOutSCTPPacks");
	for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
		struct dst t = { 0 };
		uint64_t tx0;
		int e;

		if (inet_pton(AF_INET, d, &t.a.in.sin_addr) == 1) {
			t.family = t.a.in.sin_family = AF_INET;
			t.a.in.sin_port = htons((uint16_t)port);
			t.len = sizeof(t.a.in);
		} else if (inet_pton(AF_INET6, d, &t.a.in6.sin6_addr) == 1) {
			t.family = t.a.in6.sin6_family = AF_INET6;
			t.a.in6.sin6_port = htons((uint16_t)port);
			/* link-local and link-scope multicast: on IF */
			if (IN6_IS_ADDR_LINKLOCAL(&t.a.in6.sin6_addr) ||
			    IN6_IS_ADDR_MC_LINKLOCAL(&t.a.in6.sin6_addr))
				t.a.in6.sin6_scope_id = if_nametoindex(ifname);
			t.len = sizeof(t.a.in6);
		} else {
			printf("{\"probe\":\"egress\",\"dst\":");
			jstr(d);
			printf(",\"error\":\"EINVAL\"");
			end_line();
			continue;
		}
		printf("{\"probe\":\"egress\",\"dst\":");
		jstr(d);
		jerr("udp", try_dgram(t.family, 0, &t, "cellcheck", 9));
		jerr("tcp", try_connect(t.family, SOCK_STREAM, 0, &t));
		jerr("ping", try_ping(&t));
		jerr("udplite", try_dgram(t.family, IPPROTO_UDPLITE, &t, "cellcheck", 9));
		jerr("sctp", try_connect(t.family, SOCK_STREAM, IPPROTO_SCTP, &t));
		tx0 = dev_tx(ifname);
		e = try_connect(t.family, SOCK_DCCP, IPPROTO_DCCP, &t);
		if (e != EPROTONOSUPPORT && e != ESOCKTNOSUPPORT && e != EAFNOSUPPORT &&
		    e != EPROTOTYPE && e != EINVAL)
			dccp += dev_tx(ifname) - tx0;
		jerr("dccp", e);
		e = socket(t.family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
		if (e >= 0)
			close(e);
		jerr("raw", e >= 0 ? 0 : errno);
		end_line();
	}
	{
		uint64_t ul4 = snmp_col("UdpLite", "OutDatagrams") - ul0;
		uint64_t ul6 = snmp_kv("/proc/net/snmp6", "UdpLite6OutDatagrams") - ul60;
		uint64_t sc = snmp_kv("/proc/net/sctp/snmp", "SctpOutSCTPPacks") - sc0;

		printf("{\"probe\":\"egress-count\",\"udplite\":%llu,\"udplite6\":%llu,\"sctp\":%llu,"
		       "\"dccp\":%llu,\"otherproto\":%llu",
		       (unsigned long long)ul4, (unsigned long long)ul6, (unsigned long long)sc,
		       (unsigned long long)dccp, (unsigned long long)(ul4 + ul6 + sc + dccp));
		end_line();
	}
}

/*
 * udplite=IP:PORT (IPv6 in brackets): one UDP-Lite datagram (a protocol an egress classifier
 * does not consider) from an unprivileged socket. IP_RECVERR / IPV6_RECVERR make a drop on the
 * way out (a tc filter's TC_ACT_SHOT, which the stack sees as NET_XMIT_DROP) the ENOBUFS of
 * sendto(2); without them UDP reports success and counts SndbufErrors.
 */
static void cmd_udplite(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	size_t hl = colon ? (size_t)(colon - arg) : 0;
	char host[INET6_ADDRSTRLEN + 2] = "";
	struct dst t = { 0 };
	int one = 1, fd, e;
	unsigned int port = 0;

	if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']' && hl - 2 < sizeof(host))
		memcpy(host, arg + 1, hl - 2);
	else if (hl < sizeof(host))
		memcpy(host, arg, hl);
	if (colon)
		sscanf(colon + 1, "%u", &port);
	if (inet_pton(AF_INET, host, &t.a.in.sin_addr) == 1) {
		t.family = t.a.in.sin_family = AF_INET;
		t.a.in.sin_port = htons((uint16_t)port);
		t.len = sizeof(t.a.in);
	} else if (inet_pton(AF_INET6, host, &t.a.in6.sin6_addr) == 1) {
		t.family = t.a.in6.sin6_family = AF_INET6;
		t.a.in6.sin6_port = htons((uint16_t)port);
		t.len = sizeof(t.a.in6);
	}
	printf("{\"probe\":\"udplite\",\"dst\":");
	jstr(host);
	printf(",\"port\":%u", port);
	if (!t.family || port == 0 || port > 65535) {
		jerr("sent", EINVAL);
		end_line();
		return;
	}
	fd = socket(t.family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDPLITE);
	if (fd < 0) {
		jerr("sent", errno);
		end_line();
		return;
	}
	if (t.family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	e = errno_of(sendto(fd, "cellcheck", 9, 0, &t.a.sa, t.len) == 9);
	close(fd);
	jerr("sent", e);
	end_line();
}

/*
 * udplite-in: the UDP-Lite datagrams that reached this network namespace's stack, delivered or
 * not (InDatagrams + NoPorts + InErrors of /proc/net/snmp's UdpLite line, and of the UdpLite6
 * counters of /proc/net/snmp6): run in a host's namespace, whether a cell's UDP-Lite arrived.
 */
static void cmd_udplite_in(void)
{
	uint64_t v4 = snmp_col("UdpLite", "InDatagrams") + snmp_col("UdpLite", "NoPorts") +
		      snmp_col("UdpLite", "InErrors");
	uint64_t v6 = snmp_kv("/proc/net/snmp6", "UdpLite6InDatagrams") +
		      snmp_kv("/proc/net/snmp6", "UdpLite6NoPorts") +
		      snmp_kv("/proc/net/snmp6", "UdpLite6InErrors");

	printf("{\"probe\":\"udplite-in\",\"udplite\":%llu,\"udplite6\":%llu",
	       (unsigned long long)v4, (unsigned long long)v6);
	end_line();
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

/* An IPv4 header of 20 bytes (checksummed) for len bytes of payload. */
static void ipv4_header(uint8_t *ip, uint8_t proto, uint16_t frag, size_t len)
{
	static const uint8_t src[4] = { 192, 0, 2, 2 }, dst[4] = { 192, 0, 2, 1 };
	uint16_t tot = (uint16_t)(20 + len), sum;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = tot >> 8;
	ip[3] = tot & 0xff;
	ip[4] = 0x12; /* id */
	ip[6] = frag >> 8;
	ip[7] = frag & 0xff;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	sum = csum_fold(csum_add(0, ip, 20));
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
}

/*
 * IPv6 frames for the v2 classifier (SPEC.md FLOW-MON-029 to FLOW-MON-031), fe80::2 -> fe80::1,
 * checksums left 0 (the peer drops them; an egress classifier never looks). Each kind: the
 * extension headers in order (H hop-by-hop, D destination options, R routing, F first fragment,
 * f non-first fragment, A authentication header; lowercase d a 16-byte destination options),
 * the transport (17 UDP, 136 UDP-Lite, 6 TCP, 58 ICMPv6, 47 GRE) and its ports. The sizes (IP
 * bytes) are what a byte count sees: 40 + the headers + 8 (UDP, UDP-Lite, ICMPv6), 20 (TCP) or
 * 4 (GRE) + 8 payload.
 */
static const struct frame6 {
	const char *kind;
	const char *chain;
	uint8_t proto;
	uint16_t sport, dport;
	uint16_t cut; /* non-zero: only this many bytes of the IPv6 packet */
} frames6[] = {
	{ "ipv6-ext1", "H", 17, 40001, 9001, 0 },	  /* 64 bytes */
	{ "ipv6-ext5", "HdRFA", 6, 40002, 9002, 0 },	  /* 124 bytes */
	{ "ipv6-ext8", "DDDDDDDD", 17, 40008, 9008, 0 },  /* 120 bytes */
	{ "ipv6-ext9", "DDDDDDDDD", 17, 40009, 9009, 0 }, /* 128 bytes: one too many */
	{ "ipv6-frag1", "F", 17, 40011, 9011, 0 },	  /* 64 bytes, first fragment */
	{ "ipv6-frag2", "f", 17, 40012, 9012, 0 },	  /* 64 bytes, offset 1480 */
	{ "ipv6-icmp", "", 58, 0, 0, 0 },		  /* 56 bytes, echo request */
	{ "ipv6-tcp", "", 6, 40013, 9013, 0 },		  /* 68 bytes, SYN */
	{ "ipv6-gre", "", 47, 0, 0, 0 },		  /* 52 bytes */
	{ "ipv6-short", "", 17, 40014, 9014, 30 },	  /* not even the IPv6 header */
	{ "ipv6-extcut", "HD", 17, 40015, 9015, 52 },	  /* D cut off */
	{ "ipv6-udpcut", "", 17, 40016, 9016, 42 },	  /* 2 bytes of UDP header */
	{ "ipv6-udplite", "", 136, 40017, 9017, 0 },	  /* 56 bytes, UDP-Lite (RFC 3828) */
	{ "ipv6-icmpfrag", "f", 58, 0, 0, 0 },		  /* 64 bytes, offset 1480, ICMPv6 */
};

static size_t frame6_body(const struct frame6 *f, uint8_t *b)
{
	static const uint8_t payload[8] = "cellchek";
	uint8_t *nh = b + 6, *p = b + 40;
	size_t len;

	memset(b, 0, 40);
	b[0] = 0x60;
	b[7] = 64;
	b[8] = 0xfe, b[9] = 0x80, b[23] = 2;
	b[24] = 0xfe, b[25] = 0x80, b[39] = 1;
	for (const char *c = f->chain; *c; c++) {
		size_t hl = 8;

		memset(p, 0, 16);
		switch (*c) {
		case 'H':
			*nh = 0;
			p[2] = 1, p[3] = 4; /* PadN over the rest */
			break;
		case 'D':
		case 'd':
			*nh = 60;
			hl = *c == 'd' ? 16 : 8;
			p[1] = (uint8_t)(hl / 8 - 1);
			p[2] = 1, p[3] = (uint8_t)(hl - 4);
			break;
		case 'R':
			*nh = 43;
			p[2] = 4; /* segment routing, no segment left: 8 bytes */
			break;
		case 'F':
			*nh = 44;
			p[3] = 1; /* offset 0, more fragments */
			p[7] = 0x42;
			break;
		case 'f':
			*nh = 44;
			p[2] = 1480 >> 8, p[3] = 1480 & 0xf8; /* offset 185 units, last */
			p[7] = 0x42;
			break;
		case 'A':
			*nh = 51;
			hl = 16;
			p[1] = 2; /* (16 / 4) - 2: SPI, sequence, 4 bytes of ICV */
			p[7] = 1;
			break;
		}
		nh = p;
		p += hl;
	}
	*nh = f->proto;
	if (f->proto == 6) {
		p[0] = f->sport >> 8, p[1] = f->sport & 0xff, p[2] = f->dport >> 8;
		p[3] = f->dport & 0xff;
		memset(p + 4, 0, 16);
		p[12] = 5 << 4;
		p[13] = 0x02; /* SYN */
		p[15] = 0xff;
		p += 20;
	} else if (f->proto == 17 || f->proto == 136) {
		/* UDP-Lite: UDP's layout, the length field is the checksum coverage (16: all). */
		p[0] = f->sport >> 8, p[1] = f->sport & 0xff, p[2] = f->dport >> 8;
		p[3] = f->dport & 0xff, p[4] = 0, p[5] = 16, p[6] = p[7] = 0;
		p += 8;
	} else if (f->proto == 58) {
		memset(p, 0, 8);
		p[0] = 128; /* echo request */
		p += 8;
	} else {
		memset(p, 0, 4);
		p[2] = 0x86, p[3] = 0xdd;
		p += 4;
	}
	memcpy(p, payload, 8);
	p += 8;
	len = (size_t)(p - b);
	b[4] = (uint8_t)((len - 40) >> 8), b[5] = (uint8_t)((len - 40) & 0xff);
	return f->cut ? f->cut : len;
}

/* The frame of one kind after the 14-byte Ethernet header; its length and ethertype. */
static size_t frame_body(const char *kind, uint8_t *b, uint16_t *ethertype)
{
	static const uint8_t payload[8] = "cellchek";

	for (size_t i = 0; i < sizeof(frames6) / sizeof(frames6[0]); i++) {
		if (strcmp(kind, frames6[i].kind) == 0) {
			*ethertype = ETH_P_IPV6;
			return frame6_body(&frames6[i], b);
		}
	}

	*ethertype = ETH_P_IP;
	if (strcmp(kind, "ipv6-udp") == 0) {
		/* fe80::2 -> ff02::1, UDP 40000 -> 9, 8 bytes. */
		uint8_t *u = b + 40;
		uint32_t sum;

		*ethertype = ETH_P_IPV6;
		memset(b, 0, 40);
		b[0] = 0x60;
		b[5] = 16; /* payload length */
		b[6] = 17; /* next header: UDP */
		b[7] = 64;
		b[8] = 0xfe, b[9] = 0x80, b[23] = 2;
		b[24] = 0xff, b[25] = 0x02, b[39] = 1;
		u[0] = 40000 >> 8, u[1] = 40000 & 0xff, u[2] = 0, u[3] = 9, u[4] = 0, u[5] = 16;
		u[6] = u[7] = 0;
		memcpy(u + 8, payload, 8);
		sum = csum_add(0, b + 8, 32) + 16 + 17;
		sum = csum_fold(csum_add(sum, u, 16));
		u[6] = sum >> 8, u[7] = sum & 0xff;
		return 56;
	}
	if (strcmp(kind, "ether") == 0) {
		*ethertype = 0x88b5; /* IEEE 802 local experimental */
		memset(b, 0, 46);
		memcpy(b, payload, 8);
		return 46; /* the minimum Ethernet payload, zero padded */
	}
	if (strcmp(kind, "gre") == 0) {
		ipv4_header(b, 47, 0, 4);
		b[20] = b[21] = 0, b[22] = 0x08, b[23] = 0x00; /* GRE, carries IPv4 (none) */
		return 24;
	}
	if (strcmp(kind, "fragment") == 0) {
		/* The last piece of a UDP datagram: offset 1480 bytes (185 units), MF clear. */
		ipv4_header(b, 17, 185, 8);
		memcpy(b + 20, payload, 8);
		return 28;
	}
	if (strcmp(kind, "truncated") == 0) {
		/* Ethertype IPv4, 10 bytes: not even a whole IPv4 header. */
		ipv4_header(b, 17, 0, 8);
		return 10;
	}
	return 0;
}

static void cmd_frames(const char *arg)
{
	char ifname[IFNAMSIZ] = "", kinds[256] = "", *save = NULL;
	unsigned int count = 1, sent = 0, dropped = 0;
	uint8_t frame[256];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
	int fd = -1, e = 0;

	if (sscanf(arg, "%15[^:]:%255[^:]:%u", ifname, kinds, &count) < 2 || count > 10000)
		e = EINVAL;
	sll.sll_ifindex = e ? 0 : (int)if_nametoindex(ifname);
	if (!e && !sll.sll_ifindex)
		e = errno ?: ENODEV;
	if (!e && (fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)) < 0)
		e = errno;
	memset(sll.sll_addr, 0xff, 6);
	for (char *k = e ? NULL : strtok_r(kinds, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		uint16_t type;
		size_t len = frame_body(k, frame + 14, &type);

		if (!len) {
			e = EINVAL;
			break;
		}
		memset(frame, 0xff, 6); /* broadcast: the peer takes it whatever its MAC */
		memset(frame + 6, 0x02, 6);
		frame[12] = type >> 8;
		frame[13] = type & 0xff;
		/* sll_protocol becomes skb->protocol, which is what a tc classifier reads. */
		sll.sll_protocol = htons(type);
		for (unsigned int i = 0; i < count; i++) {
			if (sendto(fd, frame, 14 + len, 0, (struct sockaddr *)&sll, sizeof(sll)) ==
			    (ssize_t)(14 + len))
				sent++;
			else if (errno == ENOBUFS)
				dropped++; /* NET_XMIT_DROP: a qdisc or tc filter dropped it */
			else
				e = errno;
		}
	}
	if (fd >= 0)
		close(fd);
	printf("{\"probe\":\"frames\",\"arg\":");
	jstr(arg);
	printf(",\"sent\":%u,\"dropped\":%u,\"error\":", sent, dropped);
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		fputs("null", stdout);
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

/*
 * "flock=PATH": create PATH (and missing parent directories, 0700) and hold an exclusive
 * flock(2) on it until the probe exits: a supervisor that takes its lease lock waits there.
 */
static void cmd_flock(const char *path)
{
	char dir[4096];
	int fd, e = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		(void)mkdir(dir, 0700);
		*p = '/';
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		e = errno;
	printf("{\"probe\":\"flock\",\"path\":");
	jstr(path);
	printf(",\"locked\":%s,\"error\":", e ? "false" : "true");
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	end_line();
}

/*
 * A permanent neighbour IP -> MAC on IF in the probe's netns, replacing whatever entry is there
 * (RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE): a case changes an entry a cell made, mid-run.
 */
static void cmd_neigh_set(const char *arg)
{
	char ifname[IF_NAMESIZE + 1] = "", ip[INET_ADDRSTRLEN] = "";
	unsigned int m[6];
	struct {
		struct nlmsghdr nh;
		struct ndmsg nd;
		char attrs[64];
	} req = { 0 };
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	struct in_addr dst;
	struct rtattr *rta;
	int fd = -1, e = 0;

	if (sscanf(arg, "%16[^:]:%15[^:]:%x:%x:%x:%x:%x:%x", ifname, ip, &m[0], &m[1], &m[2], &m[3],
		   &m[4], &m[5]) != 8 ||
	    inet_pton(AF_INET, ip, &dst) != 1)
		e = EINVAL;
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.nd));
	req.nh.nlmsg_type = RTM_NEWNEIGH;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	req.nd.ndm_family = AF_INET;
	req.nd.ndm_state = NUD_PERMANENT;
	if (!e && !(req.nd.ndm_ifindex = (int)if_nametoindex(ifname)))
		e = errno;
	rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	rta->rta_type = NDA_DST;
	rta->rta_len = RTA_LENGTH(4);
	memcpy(RTA_DATA(rta), &dst, 4);
	req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	rta = (struct rtattr *)((char *)&req + req.nh.nlmsg_len);
	rta->rta_type = NDA_LLADDR;
	rta->rta_len = RTA_LENGTH(6);
	for (int i = 0; i < 6; i++)
		((unsigned char *)RTA_DATA(rta))[i] = (unsigned char)m[i];
	req.nh.nlmsg_len += RTA_ALIGN(rta->rta_len);
	if (!e && (fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0)
		e = errno;
	if (!e && send(fd, &req, req.nh.nlmsg_len, 0) < 0)
		e = errno;
	if (!e && recv(fd, &ack, sizeof(ack), 0) < (ssize_t)sizeof(ack))
		e = errno ?: EPROTO;
	if (!e && ack.nh.nlmsg_type == NLMSG_ERROR && ack.err.error)
		e = -ack.err.error;
	if (fd >= 0)
		close(fd);
	printf("{\"probe\":\"neigh-set\",\"arg\":");
	jstr(arg);
	printf(",\"error\":");
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	end_line();
}

/* ---- inspecting another process: proc=PID, children=PID, trace-exec=PID ------------------- */

/* The whole file, malloc'ed and NUL-terminated past *ret_n, or NULL. */
static char *slurp_all(const char *path, size_t *ret_n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 4096;
	char *buf, *nb;
	ssize_t k;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		k = read(fd, buf + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		*ret_n = n;
	}
	return buf;
}

/* NUL-separated strings (cmdline, environ, an argument memfd) as a JSON array. */
static void jarray_nul(const char *s, size_t n)
{
	putchar('[');
	for (size_t i = 0; s && i < n;) {
		size_t l = strnlen(s + i, n - i);

		printf("%s", i ? "," : "");
		jstr_n(s + i, l);
		i += l + 1;
	}
	putchar(']');
}

/* The value of "Key:" in a status text, whitespace trimmed, into out ("?" when absent). */
static void text_field(const char *text, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);

	snprintf(out, len, "?");
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
			const char *v = l + kl + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			snprintf(out, len, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			return;
		}
	}
}

static unsigned long long ns_ino(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (unsigned long long)sb.st_ino : 0;
}

static unsigned long long proc_net_ino(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return ns_ino(path);
}

static pid_t proc_ppid(pid_t pid)
{
	char path[64], v[64];
	size_t n;
	char *s;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	s = slurp_all(path, &n);
	text_field(s, "PPid", v, sizeof(v));
	free(s);
	return (pid_t)atoi(v);
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/* The numeric entries of a /proc directory, sorted, at most max. */
static size_t proc_numbers(const char *dir, int *out, size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	while (d && n < max && (de = readdir(d)))
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			out[n++] = atoi(de->d_name);
	if (d)
		closedir(d);
	qsort(out, n, sizeof(out[0]), int_cmp);
	return n;
}

/* The children of every thread of pid, sorted. */
static size_t proc_children(pid_t pid, int *out, size_t max)
{
	int tids[1024];
	char path[96];
	size_t nt, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	nt = proc_numbers(path, tids, 1024);
	for (size_t i = 0; i < nt && n < max; i++) {
		size_t len;
		char *s;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		s = slurp_all(path, &len);
		for (char *p = s, *e; p && *p && n < max; p = e) {
			long v = strtol(p, &e, 10);

			if (e == p)
				break;
			out[n++] = (int)v;
		}
		free(s);
	}
	qsort(out, n, sizeof(out[0]), int_cmp);
	return n;
}

/* One thread: ids, groups, no_new_privs, capability sets, network namespace. */
static void print_thread(pid_t pid, int tid, unsigned long long my_net)
{
	static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
	char path[96], v[512];
	unsigned long long r, e, s, net;
	size_t n;
	char *st;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	st = slurp_all(path, &n);
	printf("{\"tid\":%d", tid);
	for (int k = 0; k < 2; k++) {
		text_field(st, k ? "Gid" : "Uid", v, sizeof(v));
		if (sscanf(v, "%llu %llu %llu", &r, &e, &s) == 3)
			printf(",\"%s\":[%llu,%llu,%llu]", k ? "gid" : "uid", r, e, s);
		else
			printf(",\"%s\":null", k ? "gid" : "uid");
	}
	text_field(st, "Groups", v, sizeof(v));
	printf(",\"groups\":[");
	{
		char *p = v, *end;
		bool first = true;

		for (unsigned long g; (g = strtoul(p, &end, 10)), end != p; p = end) {
			printf("%s%lu", first ? "" : ",", g);
			first = false;
		}
	}
	text_field(st, "NoNewPrivs", v, sizeof(v));
	printf("],\"nonewprivs\":%s", v[0] == '?' ? "null" : v);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		text_field(st, caps[i], v, sizeof(v));
		printf(",\"%s\":", caps[i]);
		jstr(v);
	}
	free(st);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/ns/net", pid, tid);
	net = ns_ino(path);
	printf(",\"net\":%llu,\"net_mine\":%s}", net, net && net == my_net ? "true" : "false");
}

/* AT_EXECFN of pid: the auxv names its address, /proc/PID/mem holds the string. */
static void print_execfn(pid_t pid)
{
	char path[64], out[4096];
	size_t n;
	unsigned long *av;
	int fd;
	ssize_t k = -1;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	av = (unsigned long *)slurp_all(path, &n);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	for (size_t i = 0; av && i + 1 < n / sizeof(*av); i += 2) {
		if (av[i] != 31 /* AT_EXECFN */)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			k = pread(fd, out, sizeof(out) - 1, (off_t)av[i + 1]);
			close(fd);
		}
		break;
	}
	free(av);
	printf(",\"execfn\":");
	if (k < 0) {
		printf("null");
		return;
	}
	out[k] = '\0';
	jstr(out);
}

static const char *sock_family(int f)
{
	switch (f) {
	case AF_INET:
		return "inet";
	case AF_INET6:
		return "inet6";
	case AF_UNIX:
		return "unix";
	case AF_NETLINK:
		return "netlink";
	default:
		return "other";
	}
}

static const char *sock_type(int t)
{
	switch (t) {
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_STREAM:
		return "stream";
	case SOCK_SEQPACKET:
		return "seqpacket";
	case SOCK_RAW:
		return "raw";
	default:
		return "other";
	}
}

/*
 * Which processes share net namespace ino, relative to the fd's owner: "owner" (its main
 * thread), "parent" (its parent's), "sibling" (another child of that parent), "probe" (the
 * probe's own). A socket the supervisor made in the cell for a worker reads ["sibling"].
 */
static void print_netns_of(pid_t owner, unsigned long long ino)
{
	pid_t parent = proc_ppid(owner);
	int kids[256];
	size_t nk = parent > 0 ? proc_children(parent, kids, 256) : 0;
	bool sib = false, first = true;
	const char *who[4] = { NULL };

	for (size_t i = 0; i < nk; i++)
		if (kids[i] != owner && proc_net_ino(kids[i]) == ino)
			sib = true;
	who[0] = proc_net_ino(owner) == ino ? "owner" : NULL;
	who[1] = parent > 0 && proc_net_ino(parent) == ino ? "parent" : NULL;
	who[2] = sib ? "sibling" : NULL;
	who[3] = ns_ino("/proc/self/ns/net") == ino ? "probe" : NULL;
	printf(",\"netns_of\":[");
	for (size_t i = 0; i < 4; i++) {
		if (!who[i])
			continue;
		printf("%s\"%s\"", first ? "" : ",", who[i]);
		first = false;
	}
	printf("]");
}

/* A socket, through a copy of the fd: family, type, listening, local address, netns. */
static void print_socket(pid_t pid, int fd)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
	socklen_t al = sizeof(a), ol = sizeof(int);
	int dom = -1, type = -1, acc = 0, nsfd;
	char ip[INET6_ADDRSTRLEN];
	struct stat sb;
	unsigned long long ino = 0;

	(void)getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &ol);
	ol = sizeof(int);
	(void)getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol);
	ol = sizeof(int);
	(void)getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol);
	printf(",\"family\":\"%s\",\"type\":\"%s\",\"listening\":%s,\"local\":", sock_family(dom),
	       sock_type(type), acc ? "true" : "false");
	memset(&a, 0, sizeof(a));
	if (getsockname(fd, &a.sa, &al) == 0 && a.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a.in.sin_addr, ip, sizeof(ip));
		printf("\"%s:%u\"", ip, ntohs(a.in.sin_port));
	} else if (a.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a.in6.sin6_addr, ip, sizeof(ip));
		printf("\"[%s]:%u\"", ip, ntohs(a.in6.sin6_port));
	} else {
		printf("null");
	}
	nsfd = ioctl(fd, SIOCGSKNS);
	if (nsfd >= 0 && fstat(nsfd, &sb) == 0)
		ino = (unsigned long long)sb.st_ino;
	if (nsfd >= 0)
		close(nsfd);
	printf(",\"netns\":%llu", ino);
	print_netns_of(pid, ino);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * NUL-separated arguments as "options": "--opt value" (a value is the next argument when it
 * does not start with "--") or "--flag", sorted, so one regex can check them in any order.
 */
static void print_options(const char *s, size_t n)
{
	char *tok[512], *opt[512];
	size_t nt = 0, no = 0;

	for (size_t i = 0; s && i < n && nt < 512; i += strnlen(s + i, n - i) + 1)
		tok[nt++] = strndup(s + i, n - i);
	for (size_t i = 0; i < nt; i++) {
		if (i + 1 < nt && strncmp(tok[i], "--", 2) == 0 &&
		    strncmp(tok[i + 1], "--", 2) != 0) {
			if (asprintf(&opt[no], "%s %s", tok[i], tok[i + 1]) < 0)
				opt[no] = NULL;
			i++;
		} else {
			opt[no] = strdup(tok[i]);
		}
		if (opt[no])
			no++;
	}
	qsort(opt, no, sizeof(opt[0]), str_cmp);
	printf(",\"options\":[");
	for (size_t i = 0; i < no; i++) {
		printf("%s", i ? "," : "");
		jstr(opt[i]);
		free(opt[i]);
	}
	printf("]");
	for (size_t i = 0; i < nt; i++)
		free(tok[i]);
}

/* A memfd, through a copy of the fd: its seals and its content as NUL-separated strings. */
static void print_memfd(int fd)
{
	static const char *const names[] = { "seal",  "shrink",	      "grow",
					     "write", "future_write", "exec" };
	int seals = fcntl(fd, F_GET_SEALS);
	char *buf = malloc(65536);
	size_t n = 0;
	ssize_t k;
	bool first = true;

	printf(",\"seals\":");
	if (seals < 0) {
		printf("null");
	} else {
		printf("[");
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (!(seals & (1 << i)))
				continue;
			printf("%s\"%s\"", first ? "" : ",", names[i]);
			first = false;
		}
		printf("]");
	}
	/* pread: the owner's file offset stays where it is */
	while (buf && n < 65536 && (k = pread(fd, buf + n, 65536 - n, (off_t)n)) > 0)
		n += (size_t)k;
	printf(",\"content\":");
	jarray_nul(buf, n);
	print_options(buf, n);
	free(buf);
}

/* The parent's fds that are the same open file as our fd (kcmp KCMP_FILE). */
static void print_parent_fds(pid_t pid, int fd, pid_t parent, const int *pfds, size_t npfds)
{
	bool first = true;

	printf(",\"parent_fds\":[");
	for (size_t i = 0; parent > 0 && i < npfds; i++) {
		if (syscall(SYS_kcmp, pid, parent, 0 /* KCMP_FILE */, fd, pfds[i]) == 0) {
			printf("%s%d", first ? "" : ",", pfds[i]);
			first = false;
		}
	}
	printf("]");
}

static void print_fds(pid_t pid)
{
	static int fds[4096], pfds[4096];
	char path[96], target[4096];
	pid_t parent = proc_ppid(pid);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	size_t n, np = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	n = proc_numbers(path, fds, 4096);
	if (parent > 0) {
		snprintf(path, sizeof(path), "/proc/%d/fd", parent);
		np = proc_numbers(path, pfds, 4096);
	}
	printf(",\"fds\":[");
	for (size_t i = 0; i < n; i++) {
		ssize_t k;
		int copy = -1;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
		k = readlink(path, target, sizeof(target) - 1);
		if (k < 0)
			continue; /* closed meanwhile */
		target[k] = '\0';
		printf("%s{\"fd\":%d,\"target\":", i ? "," : "", fds[i]);
		jstr(target);
		print_parent_fds(pid, fds[i], parent, pfds, np);
		if (pidfd >= 0 &&
		    (strncmp(target, "socket:", 7) == 0 || strncmp(target, "/memfd:", 7) == 0))
			copy = (int)syscall(SYS_pidfd_getfd, pidfd, fds[i], 0);
		if (copy >= 0 && target[0] == 's')
			print_socket(pid, copy);
		else if (copy >= 0)
			print_memfd(copy);
		if (copy >= 0)
			close(copy);
		printf("}");
	}
	printf("]");
	if (pidfd >= 0)
		close(pidfd);
}

/* Is pid's image the same file as its parent's (a worker re-executing its supervisor)? */
static bool exe_of_parent(pid_t pid)
{
	char a_path[64], b_path[64];
	struct stat a, b;

	snprintf(a_path, sizeof(a_path), "/proc/%d/exe", pid);
	snprintf(b_path, sizeof(b_path), "/proc/%d/exe", proc_ppid(pid));
	return stat(a_path, &a) == 0 && stat(b_path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* One line about pid: its cmdline, environ, AT_EXECFN, exe, threads, fds. */
static void print_proc(const char *name, pid_t pid)
{
	unsigned long long my_net = ns_ino("/proc/self/ns/net");
	int tids[1024];
	char path[96], exe[4096];
	size_t n, nt;
	char *s;
	ssize_t k;

	printf("{\"probe\":\"%s\",\"pid\":%d,\"ppid\":%d", name, pid, proc_ppid(pid));
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	s = slurp_all(path, &n);
	printf(",\"cmdline\":");
	jarray_nul(s, s ? n : 0);
	free(s);
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	s = slurp_all(path, &n);
	printf(",\"environ\":");
	jarray_nul(s, s ? n : 0);
	free(s);
	print_execfn(pid);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	k = readlink(path, exe, sizeof(exe) - 1);
	printf(",\"exe\":");
	if (k >= 0) {
		exe[k] = '\0';
		jstr(exe);
	} else {
		printf("null");
	}
	printf(",\"exe_of_parent\":%s", exe_of_parent(pid) ? "true" : "false");
	/* the main thread first, then the others in tid order */
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	nt = proc_numbers(path, tids, 1024);
	printf(",\"threads\":[");
	print_thread(pid, pid, my_net);
	for (size_t i = 0; i < nt; i++) {
		if (tids[i] == pid)
			continue;
		printf(",");
		print_thread(pid, tids[i], my_net);
	}
	printf("]");
	print_fds(pid);
	end_line();
}

static void cmd_children(const char *arg)
{
	int kids[256];
	pid_t pid = (pid_t)atoi(arg);
	size_t n = proc_children(pid, kids, 256);

	printf("{\"probe\":\"children\",\"pid\":%d,\"count\":%zu", pid, n);
	end_line();
	for (size_t i = 0; i < n; i++)
		print_proc("child", kids[i]);
}

/* Whether pid has ended: no such process, or a zombie its parent has not reaped yet. */
static bool proc_ended(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool ended = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		ended = p[2] == 'Z' || p[2] == 'X';
	if (f)
		fclose(f);
	return ended;
}

/* PID's TracerPid (0: none, -1: PID is gone). */
static int tracer_of(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int t = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &t) == 1)
			break;
	if (f)
		fclose(f);
	return t;
}

/*
 * "await=PID:WHAT[:MS]": poll every millisecond until PID is traced (WHAT "traced") or has at
 * least N children (WHAT the number N); a line with what was seen; exit 1 when not in time, so
 * a case waits for the state it needs instead of guessing how long a slow machine takes.
 */
static void cmd_await(const char *arg)
{
	char what[32] = "";
	int pid = 0, ms = 20000, want = -1, seen = 0;
	int kids[256];
	bool ok = false, gone = false;
	uint64_t deadline;

	if (sscanf(arg, "%d:%31[^:]:%d", &pid, what, &ms) < 2 || pid <= 0) {
		fprintf(stderr, "cellcheck-probe: await=PID:WHAT[:MS], got \"%s\"\n", arg);
		exit(2);
	}
	if (strcmp(what, "traced") != 0)
		want = atoi(what);
	deadline = mono_ns() + (uint64_t)ms * 1000000ull;
	for (;;) {
		seen = want < 0 ? tracer_of(pid) : (int)proc_children(pid, kids, 256);
		ok = want < 0 ? seen > 0 : seen >= want;
		/* A process that ended will never get there: say so now, not at the deadline. */
		gone = !ok && proc_ended(pid);
		if (ok || gone || mono_ns() >= deadline)
			break;
		usleep(1000);
	}
	printf("{\"probe\":\"await\",\"pid\":%d,\"what\":", pid);
	jstr(what);
	printf(",\"seen\":%d,\"ok\":%s,\"gone\":%s", seen, ok ? "true" : "false",
	       gone ? "true" : "false");
	end_line();
	if (!ok) {
		fflush(stdout);
		exit(1);
	}
}

/* Is the second argument of pid's command line sub (a worker's subcommand)? */
static bool exec_arg1_is(pid_t pid, const char *sub)
{
	char path[64], *s;
	size_t n;
	bool r;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	s = slurp_all(path, &n);
	r = s && strnlen(s, n) + 1 < n && strcmp(s + strlen(s) + 1, sub) == 0;
	free(s);
	return r;
}

/*
 * "trace-exec=PID[:N[:MS[:SUB]]]": attach (ptrace) to every thread of PID and follow its forks;
 * report each exec of PID or a descendant at the moment the new image is loaded, before it
 * runs one instruction (the fds, argv and environment a worker starts with), until N (default
 * 1) execs or MS ms (default 10000); with SUB, only the execs whose argv[1] is SUB count. Exiting
 * detaches from everything, which resumes it.
 */
static void cmd_trace_exec(const char *arg)
{
	const long opts =
		PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC;
	int pid = 0, want = 1, ms = 10000, tids[1024], attached = 0, execs = 0, err = 0;
	char path[64], sub[256] = "";
	size_t nt;
	uint64_t deadline;

	if (sscanf(arg, "%d:%d:%d:%255s", &pid, &want, &ms, sub) < 1 || pid <= 0)
		pid = -1;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	nt = proc_numbers(path, tids, 1024);
	for (size_t i = 0; i < nt; i++) {
		if (ptrace(PTRACE_SEIZE, tids[i], 0, opts) == 0)
			attached++;
		else
			err = errno;
	}
	printf("{\"probe\":\"trace\",\"pid\":%d,\"attached\":%d,\"error\":", pid, attached);
	if (err || !nt)
		jstr(strerrorname_np(err ?: ESRCH) ?: "?");
	else
		printf("null");
	end_line();
	deadline = mono_ns() + (uint64_t)ms * 1000000ull;
	while (attached && execs < want && mono_ns() < deadline) {
		int st, w = waitpid(-1, &st, __WALL | WNOHANG);
		int sig, ev;

		if (w == 0) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (w < 0)
			break;
		if (!WIFSTOPPED(st))
			continue; /* a tracee ended */
		sig = WSTOPSIG(st);
		ev = st >> 16;
		if (ev == PTRACE_EVENT_EXEC) {
			if (!sub[0] || exec_arg1_is(w, sub)) {
				print_proc("exec", w);
				execs++;
			}
			(void)ptrace(PTRACE_CONT, w, 0, 0);
		} else if (ev == PTRACE_EVENT_STOP) {
			/* a new tracee's first stop (SIGTRAP), or a group stop: leave it stopped */
			if (sig == SIGTRAP)
				(void)ptrace(PTRACE_CONT, w, 0, 0);
			else
				(void)ptrace(PTRACE_LISTEN, w, 0, 0);
		} else if (ev) {
			(void)ptrace(PTRACE_CONT, w, 0, 0); /* fork, vfork, clone */
		} else {
			(void)ptrace(PTRACE_CONT, w, 0, sig == SIGTRAP ? 0 : sig);
		}
	}
	printf("{\"probe\":\"trace-end\",\"execs\":%d", execs);
	end_line();
	/* exiting is the one detach that leaves no tracee stopped: the kernel resumes them */
	_exit(0);
}

/* ---- links-watch, links-seen=MS: which link names this netns sees appear ------------------ */

static int links_fd = -1;

/* Subscribe first (its own line), so a case can start what it watches after that line. */
static void cmd_links_watch(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int e = 0;

	links_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (links_fd < 0 || bind(links_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	printf("{\"probe\":\"links-watch\",\"error\":");
	if (e)
		jstr(strerrorname_np(e) ?: "?");
	else
		printf("null");
	end_line();
}

/* Add name to list (n names of IFNAMSIZ) unless there. */
static void name_add(char (*list)[IF_NAMESIZE], size_t *n, size_t max, const char *name)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(list[i], name) == 0)
			return;
	}
	if (*n < max)
		snprintf(list[(*n)++], IF_NAMESIZE, "%s", name);
}

/*
 * Every RTM_NEWLINK (a link created, or changed) and RTM_DELLINK for MS ms, by IFLA_IFNAME,
 * each name once, in the order first seen; "overrun" when the socket lost notifications.
 */
static void cmd_links_seen(const char *arg)
{
	static char news[64][IF_NAMESIZE], dels[64][IF_NAMESIZE];
	size_t nn = 0, nd = 0;
	bool overrun = false;
	uint64_t deadline = mono_ns() + (uint64_t)atoi(arg) * 1000000ull;
	char buf[16384] __attribute__((aligned(4)));

	while (links_fd >= 0) {
		uint64_t now = mono_ns();
		struct pollfd p = { .fd = links_fd, .events = POLLIN };
		ssize_t len;

		if (now >= deadline)
			break;
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			continue;
		len = recv(links_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (len < 0) {
			overrun |= errno == ENOBUFS;
			continue;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			int alen = (int)IFLA_PAYLOAD(h);

			if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
				continue;
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen)) {
				if (a->rta_type != IFLA_IFNAME)
					continue;
				if (h->nlmsg_type == RTM_NEWLINK)
					name_add(news, &nn, 64, RTA_DATA(a));
				else
					name_add(dels, &nd, 64, RTA_DATA(a));
			}
		}
	}
	printf("{\"probe\":\"links-seen\",\"new\":[");
	for (size_t i = 0; i < nn; i++) {
		printf("%s", i ? "," : "");
		jstr(news[i]);
	}
	printf("],\"deleted\":[");
	for (size_t i = 0; i < nd; i++) {
		printf("%s", i ? "," : "");
		jstr(dels[i]);
	}
	printf("],\"overrun\":%s", overrun ? "true" : "false");
	end_line();
}

/*
 * "watch-children=PID[:MS]": hold a pidfd on PID and on each of its children (a line "watch":
 * the children), wait (at most 20 s) until PID has exited, then up to MS (default 1000) ms
 * more for the children (a line "watch-end": those still alive). Another step kills PID.
 */
static void cmd_watch_children(const char *arg)
{
	int pid = 0, ms = 1000, kids[64], pfd[64], sup;
	size_t n;
	char path[64];
	uint64_t deadline;
	bool alive[64], first = true, exited = false;

	if (sscanf(arg, "%d:%d", &pid, &ms) < 1 || pid <= 0)
		pid = -1;
	sup = (int)syscall(SYS_pidfd_open, pid, 0);
	n = sup >= 0 ? proc_children(pid, kids, 64) : 0;
	printf("{\"probe\":\"watch\",\"pid\":%d,\"error\":", pid);
	if (sup < 0)
		jstr(strerrorname_np(errno) ?: "?");
	else
		printf("null");
	printf(",\"children\":[");
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *s;

		pfd[i] = (int)syscall(SYS_pidfd_open, kids[i], 0);
		alive[i] = pfd[i] >= 0;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", kids[i]);
		s = slurp_all(path, &len);
		printf("%s{\"pid\":%d,\"cmdline\":", i ? "," : "", kids[i]);
		jarray_nul(s, s ? len : 0);
		printf("}");
		free(s);
	}
	printf("]");
	end_line();
	deadline = mono_ns() + 20000000000ull;
	while (sup >= 0 && !exited && mono_ns() < deadline) {
		struct pollfd p = { .fd = sup, .events = POLLIN };

		exited = poll(&p, 1, 10) == 1;
	}
	deadline = mono_ns() + (uint64_t)ms * 1000000ull;
	for (size_t i = 0; i < n; i++) {
		struct pollfd p = { .fd = pfd[i], .events = POLLIN };
		int64_t left = (int64_t)(deadline - mono_ns()) / 1000000;

		if (alive[i] && poll(&p, 1, left > 0 ? (int)left : 0) == 1)
			alive[i] = false;
	}
	printf("{\"probe\":\"watch-end\",\"pid_exited\":%s,\"alive\":[", exited ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		if (alive[i]) {
			printf("%s%d", first ? "" : ",", kids[i]);
			first = false;
		}
		if (pfd[i] >= 0)
			close(pfd[i]);
	}
	printf("]");
	end_line();
	if (sup >= 0)
		close(sup);
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
		} else if (strcmp(a, "escape") == 0) {
			cmd_escape();
		} else if (strncmp(a, "resolve=", 8) == 0) {
			cmd_resolve(v);
		} else if (strncmp(a, "connect=", 8) == 0) {
			cmd_connect(v);
		} else if (strncmp(a, "resolve6=", 9) == 0) {
			cmd_resolve6(v);
		} else if (strncmp(a, "connect6=", 9) == 0) {
			cmd_connect6(v);
		} else if (strncmp(a, "ls=", 3) == 0) {
			cmd_ls(v);
		} else if (strncmp(a, "udp=", 4) == 0) {
			cmd_udp(v);
		} else if (strncmp(a, "ipv6=", 5) == 0) {
			cmd_ipv6(v);
		} else if (strncmp(a, "ipv6-traffic=", 13) == 0) {
			cmd_ipv6_traffic(v);
		} else if (strncmp(a, "net6=", 5) == 0) {
			cmd_net6(v);
		} else if (strncmp(a, "egress=", 7) == 0) {
			cmd_egress(v);
		} else if (strncmp(a, "udplite=", 8) == 0) {
			cmd_udplite(v);
		} else if (strcmp(a, "udplite-in") == 0) {
			cmd_udplite_in();
		} else if (strncmp(a, "frames=", 7) == 0) {
			cmd_frames(v);
		} else if (strncmp(a, "proc=", 5) == 0) {
			print_proc("proc", (pid_t)atoi(v));
		} else if (strncmp(a, "children=", 9) == 0 || strncmp(a, "workers=", 8) == 0) {
			cmd_children(v);
		} else if (strncmp(a, "await=", 6) == 0) {
			cmd_await(v);
		} else if (strncmp(a, "watch-children=", 15) == 0) {
			cmd_watch_children(v);
		} else if (strncmp(a, "flock=", 6) == 0) {
			cmd_flock(v);
		} else if (strncmp(a, "neigh-set=", 10) == 0) {
			cmd_neigh_set(v);
		} else if (strncmp(a, "trace-exec=", 11) == 0) {
			cmd_trace_exec(v);
		} else if (strcmp(a, "links-watch") == 0) {
			cmd_links_watch();
		} else if (strncmp(a, "links-seen=", 11) == 0) {
			cmd_links_seen(v);
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
