// SPDX-License-Identifier: Apache-2.0
/*
 * The in-cell probe: a workload for the supervisor tests. It reports what it sees from inside
 * the cell as JSON lines on stdout and makes the traffic a test asks for. It is independent of
 * ref/ on purpose: it reads /proc and makes system calls, nothing else.
 *
 *   cellprobe STEP [ARGS] [-- STEP [ARGS]]...
 *     report             {"fds":[..],"ns":{..},"status":{..},"uidMap":..,"rlimits":..,...}
 *     udp IP PORT        send one datagram
 *     tcp IP PORT        connect, send, close
 *     sleep MS           then go on
 *     wait-stdin         block until stdin closes
 *     exit N             exit with N now
 *     kill SIG           send SIG to itself
 *     stamp              print CLOCK_MONOTONIC (the benchmark's exec time)
 *     dnsq IP            ask IP:53 for www.example.test every ms until answered; print the time
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void file_str(const char *key, const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	printf(",\"%s\":", key);
	if (n < 0) {
		printf("null");
		return;
	}
	buf[n] = '\0';
	json_str(buf);
}

static void report_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	bool first = true;
	int self = d ? dirfd(d) : -1;

	printf("\"fds\":[");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		printf("%s%s", first ? "" : ",", e->d_name);
		first = false;
	}
	printf("]");
	if (d)
		closedir(d);
}

static void report_ns(void)
{
	static const char *const names[] = { "net", "mnt", "pid", "uts", "ipc", "user", "cgroup" };

	printf(",\"ns\":{");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[64];
		struct stat st;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
		printf("%s\"%s\":%llu", i ? "," : "", names[i],
		       stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0ULL);
	}
	printf("}");
}

static void report_status(void)
{
	static const char *const keys[] = { "NoNewPrivs", "CapInh", "CapPrm", "CapEff",
					    "CapBnd",	  "CapAmb", "Uid",    "Gid" };
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool first = true;

	printf(",\"status\":{");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon = '\0';
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strcmp(line, keys[i]) != 0)
				continue;
			char *v = colon + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			printf("%s\"%s\":", first ? "" : ",", line);
			json_str(v);
			first = false;
		}
	}
	printf("}");
	if (f)
		fclose(f);
}

static void report_rlimits(void)
{
	static const struct {
		const char *name;
		int res;
	} lim[] = { { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },
		    { "core", RLIMIT_CORE },	 { "stack", RLIMIT_STACK },
		    { "as", RLIMIT_AS },	 { "fsize", RLIMIT_FSIZE } };

	printf(",\"rlimits\":{");
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		struct rlimit rl;

		getrlimit(lim[i].res, &rl);
		printf("%s\"%s\":[%lld,%lld]", i ? "," : "", lim[i].name,
		       rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
		       rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
	}
	printf("}");
}

static void report_addrs(void)
{
	struct ifaddrs *ifa = NULL;
	bool first = true;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	printf(",\"addrs\":[");
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
			char a[INET_ADDRSTRLEN];
			struct ifreq ifr;
			unsigned int prefix = 0;
			uint32_t m;

			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
				  sizeof(a));
			m = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
			while (m & 0x80000000u) {
				prefix++;
				m <<= 1;
			}
			memset(&ifr, 0, sizeof(ifr));
			snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->ifa_name);
			if (s < 0 || ioctl(s, SIOCGIFMTU, &ifr) < 0)
				ifr.ifr_mtu = 0;
			printf("%s{\"ifname\":", first ? "" : ",");
			json_str(i->ifa_name);
			printf(",\"addr\":\"%s\",\"prefix\":%u,\"mtu\":%d,\"up\":%s}", a, prefix,
			       ifr.ifr_mtu, (i->ifa_flags & IFF_UP) ? "true" : "false");
			first = false;
		}
		freeifaddrs(ifa);
	}
	printf("]");
	if (s >= 0)
		close(s);
}

static void report(void)
{
	char host[128] = "";
	int w;

	printf("{\"step\":\"report\",\"pid\":%d,\"sid\":%d,", (int)getpid(), (int)getsid(0));
	report_fds();
	report_ns();
	report_status();
	report_rlimits();
	report_addrs();
	gethostname(host, sizeof(host) - 1);
	printf(",\"hostname\":");
	json_str(host);
	file_str("uidMap", "/proc/self/uid_map");
	file_str("gidMap", "/proc/self/gid_map");
	file_str("routes", "/proc/net/route");
	file_str("resolvConf", "/etc/resolv.conf");
	file_str("cgroup", "/proc/self/cgroup");
	w = open("/etc/resolv.conf", O_WRONLY | O_APPEND | O_CLOEXEC);
	printf(",\"resolvWritable\":%s,\"resolvOpenErrno\":%d}\n", w >= 0 ? "true" : "false",
	       w >= 0 ? 0 : errno);
	if (w >= 0)
		close(w);
	fflush(stdout);
}

static int send_to(const char *proto, const char *ip, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
	bool tcp = strcmp(proto, "tcp") == 0;
	int s = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	int err = 0;

	if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		err = errno ? errno : EINVAL;
	else if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 || send(s, "probe", 5, 0) < 0)
		err = errno;
	printf("{\"step\":\"%s\",\"dst\":\"%s:%s\",\"errno\":%d}\n", proto, ip, port, err);
	fflush(stdout);
	if (s >= 0)
		close(s);
	return err;
}

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static int dns_query(const char *ip)
{
	static const unsigned char q[] = { 0x4b, 0x1d, 1,   0,	 0,   1,   0,	0,   0,
					   0,	 0,    0,   3,	 'w', 'w', 'w', 7,   'e',
					   'x',	 'a',  'm', 'p', 'l', 'e', 4,	't', 'e',
					   's',	 't',  0,   0,	 1,   0,   1 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned char buf[512];
	int rcode = -1;

	if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return -1;
	for (int i = 0; i < 2000 && rcode < 0; i++) {
		struct pollfd p = { .fd = s, .events = POLLIN };

		(void)sendto(s, q, sizeof(q), 0, (struct sockaddr *)&a, sizeof(a));
		if (poll(&p, 1, 1) == 1 && recv(s, buf, sizeof(buf), 0) >= 12)
			rcode = buf[3] & 0xf;
	}
	printf("{\"step\":\"dnsq\",\"mono\":%llu,\"rcode\":%d}\n", mono_ns(), rcode);
	fflush(stdout);
	close(s);
	return rcode;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *step = argv[i];

		if (strcmp(step, "--") == 0)
			continue;
		if (strcmp(step, "stamp") == 0) {
			printf("{\"step\":\"stamp\",\"mono\":%llu}\n", mono_ns());
			fflush(stdout);
		} else if (strcmp(step, "dnsq") == 0 && i + 1 < argc) {
			dns_query(argv[++i]);
		} else if (strcmp(step, "report") == 0) {
			report();
		} else if ((strcmp(step, "udp") == 0 || strcmp(step, "tcp") == 0) && i + 2 < argc) {
			send_to(step, argv[i + 1], argv[i + 2]);
			i += 2;
		} else if (strcmp(step, "sleep") == 0 && i + 1 < argc) {
			usleep((useconds_t)atoi(argv[++i]) * 1000u);
		} else if (strcmp(step, "wait-stdin") == 0) {
			char c;

			while (read(0, &c, 1) > 0)
				;
		} else if (strcmp(step, "exit") == 0 && i + 1 < argc) {
			return atoi(argv[++i]);
		} else if (strcmp(step, "kill") == 0 && i + 1 < argc) {
			kill(getpid(), atoi(argv[++i]));
			pause();
		} else {
			fprintf(stderr, "cellprobe: bad step '%s'\n", step);
			return 64;
		}
	}
	return 0;
}
