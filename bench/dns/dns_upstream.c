// SPDX-License-Identifier: Apache-2.0
/*
 * The benchmark's "fast upstream": a UDP DNS responder that answers every query from a fixed
 * answer (A 192.0.2.1, AAAA 2001:db8::1, TTL 300; other types NOERROR/NODATA), in batches with
 * recvmmsg/sendmmsg, single-threaded. It does no lookups and no allocation, so that the cost of
 * a forwarder in front of it dominates what is measured.
 *
 * usage: dns_upstream IP:PORT [--ready-fd N] [--counter-fd N]
 *   --ready-fd    one byte is written there once the socket is bound, then it is closed
 *   --counter-fd  a file (memfd) of at least 8 bytes: a shared uint64 counting answered queries
 *
 * Runs until killed. Queries that are not a plain one-question query (QR set, QDCOUNT != 1, a
 * compressed or overlong name) get no answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH  64
#define MAXPKT 4096
#define TTL    300
#define T_A    1
#define T_AAAA 28

static const uint8_t addr4[4] = { 192, 0, 2, 1 };
static const uint8_t addr6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

/* Build the answer to q (len bytes) into r; its length, or 0 for no answer. */
static size_t answer(const uint8_t *q, size_t len, uint8_t *r)
{
	size_t off = 12, qend, n;
	uint16_t qtype;
	const uint8_t *rdata = NULL;
	size_t rdlen = 0;

	if (len < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
		return 0;
	while (off < len && q[off] != 0) {
		if (q[off] > 63)
			return 0;
		off += 1u + q[off];
	}
	if (off + 5 > len || off - 12 + 1 > 255)
		return 0;
	qend = off + 5; /* root byte, QTYPE, QCLASS */
	qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
	if (qtype == T_A) {
		rdata = addr4;
		rdlen = sizeof(addr4);
	} else if (qtype == T_AAAA) {
		rdata = addr6;
		rdlen = sizeof(addr6);
	}
	memcpy(r, q, qend);
	r[2] = (uint8_t)(0x80 | (q[2] & 0x79) | 0x04); /* QR, opcode and RD kept, AA */
	r[3] = 0x80;				       /* RA, NOERROR */
	r[6] = 0;
	r[7] = rdata ? 1 : 0; /* ANCOUNT */
	memset(r + 8, 0, 4);  /* NSCOUNT, ARCOUNT: any OPT of the query is not echoed */
	n = qend;
	if (rdata) {
		uint8_t rr[12] = { 0xC0, 0x0C, 0, (uint8_t)qtype, 0, 1, 0, 0, 0, 0, 0, 0 };

		rr[8] = TTL >> 8;
		rr[9] = TTL & 0xFF;
		rr[11] = (uint8_t)rdlen;
		memcpy(r + n, rr, sizeof(rr));
		n += sizeof(rr);
		memcpy(r + n, rdata, rdlen);
		n += rdlen;
	}
	return n;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	port = strtol(colon + 1, NULL, 10);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return port > 0 && port < 65536 && inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static uint8_t in[BATCH][MAXPKT], out[BATCH][MAXPKT + 64];
	struct mmsghdr rx[BATCH], tx[BATCH];
	struct iovec rxv[BATCH], txv[BATCH];
	struct sockaddr_in from[BATCH], a;
	volatile uint64_t *counter = NULL;
	uint64_t answered = 0;
	int ready = -1, fd, one = 1, buf = 8 << 20;

	if (argc < 2 || parse_addr(argv[1], &a) < 0) {
		fprintf(stderr, "usage: dns_upstream IP:PORT [--ready-fd N] [--counter-fd N]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--ready-fd")) {
			ready = atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--counter-fd")) {
			int cfd = atoi(argv[i + 1]);
			void *p;

			if (ftruncate(cfd, 4096) < 0)
				return 1;
			p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
			if (p == MAP_FAILED)
				return 1;
			counter = p;
		} else {
			fprintf(stderr, "dns_upstream: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "dns_upstream: bind %s: %s\n", argv[1], strerror(errno));
		return 15;
	}
	if (ready >= 0) {
		if (write(ready, "R", 1) != 1)
			return 1;
		close(ready);
	}
	memset(rx, 0, sizeof(rx));
	memset(tx, 0, sizeof(tx));
	for (int i = 0; i < BATCH; i++) {
		rxv[i] = (struct iovec){ .iov_base = in[i], .iov_len = MAXPKT };
		rx[i].msg_hdr.msg_iov = &rxv[i];
		rx[i].msg_hdr.msg_iovlen = 1;
		rx[i].msg_hdr.msg_name = &from[i];
	}
	for (;;) {
		int n, k = 0;

		for (int i = 0; i < BATCH; i++)
			rx[i].msg_hdr.msg_namelen = sizeof(from[i]);
		n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "dns_upstream: recvmmsg: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			size_t len = answer(in[i], rx[i].msg_len, out[k]);

			if (!len)
				continue;
			txv[k] = (struct iovec){ .iov_base = out[k], .iov_len = len };
			tx[k].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							 .msg_namelen = rx[i].msg_hdr.msg_namelen,
							 .msg_iov = &txv[k],
							 .msg_iovlen = 1 };
			k++;
		}
		for (int done = 0; done < k;) {
			int s = sendmmsg(fd, tx + done, (unsigned int)(k - done), 0);

			if (s < 0) {
				if (errno == EINTR)
					continue;
				/* ECONNREFUSED and the like for one destination: skip it. */
				done++;
				continue;
			}
			done += s;
		}
		answered += (uint64_t)k;
		if (counter)
			*counter = answered;
	}
}
