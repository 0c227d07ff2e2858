// SPDX-License-Identifier: Apache-2.0
/*
 * A workload for the cell benchmarks (bench/cell) and the soak tests of test_cell_net.c: it
 * stamps its exec time, asks the proxy, makes the traffic asked for and prints JSON lines on
 * stdout. What a cell looks like from inside is the harness's probe (harness/probe/), which the
 * cases use. Independent of ref/ on purpose: system calls, nothing else.
 *
 *   cellprobe STEP [ARGS] [-- STEP [ARGS]]...
 *     udp IP PORT        send one datagram
 *     tcp IP PORT        connect, send, close
 *     wait-stdin         block until stdin closes
 *     stamp              print CLOCK_MONOTONIC (the benchmark's exec time)
 *     dnsq IP            ask IP:53 for www.example.test every ms until answered; print the time
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

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
		} else if ((strcmp(step, "udp") == 0 || strcmp(step, "tcp") == 0) && i + 2 < argc) {
			send_to(step, argv[i + 1], argv[i + 2]);
			i += 2;
		} else if (strcmp(step, "wait-stdin") == 0) {
			char c;

			while (read(0, &c, 1) > 0)
				;
		} else {
			fprintf(stderr, "cellprobe: bad step '%s'\n", step);
			return 64;
		}
	}
	return 0;
}
