// SPDX-License-Identifier: Apache-2.0
/*
 * A pcap of every link end and of each namespace's loopback (hrun_int.h): an AF_PACKET socket
 * born inside the end's namespace and bound to it collects the packets in its receive buffer
 * while the case runs; it is drained into DIR/<ns>.<ifname>.pcap at the end (no thread,
 * nothing in the data path). The sockets hold their namespaces, so they are closed before the
 * namespace audit.
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>

#include "hrun_int.h"

/*
 * A pcap of every link end: an AF_PACKET socket born inside the end's namespace and bound
 * to it collects the packets in its receive buffer while the case runs; it is drained into
 * DIR/<ns>.<ifname>.pcap at the end (no thread, nothing in the data path). The sockets hold
 * their namespaces, so they are closed before the namespace audit.
 */
struct pcap_hdr {
	uint32_t magic;
	uint16_t major, minor;
	int32_t zone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_rec {
	uint32_t sec, usec, caplen, len;
};

static int capture_open(struct run *r, int ns_fd, const char *ifname)
{
	int fd = -1, one = 1, sz = 4 << 20;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };

	if (setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (setns(r->w->home_ns, CLONE_NEWNET) < 0)
		_exit(125);
	if (fd < 0)
		return -errno;
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -ENODEV;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one));
	return fd;
}

static void capture_drain(struct run *r, int fd, const char *ns, const char *ifname)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	struct pcap_hdr h = { 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1 /* LINKTYPE_ETHERNET */ };
	static uint8_t buf[65536];
	/* A loopback packet passes a packet socket twice, going out and coming in: keep one. */
	bool lo = strcmp(ifname, "lo") == 0;

	if (asprintf(&path, "%s/%s.%s.pcap", r->dir, ns, ifname) < 0)
		return;
	f = fopen(path, "we");
	if (!f || fwrite(&h, sizeof(h), 1, f) != 1)
		return;
	for (int i = 0; i < 100000; i++) {
		char cbuf[CMSG_SPACE(sizeof(struct timeval))];
		struct iovec iov = { buf, sizeof(buf) };
		struct sockaddr_ll from = { 0 };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct pcap_rec rec = { 0 };
		struct cmsghdr *cm;
		ssize_t n = recvmsg(fd, &mh, MSG_TRUNC);

		if (n < 0)
			break;
		if (lo && from.sll_pkttype == PACKET_OUTGOING)
			continue;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMP) {
				struct timeval tv;

				memcpy(&tv, CMSG_DATA(cm), sizeof(tv));
				rec.sec = (uint32_t)tv.tv_sec;
				rec.usec = (uint32_t)tv.tv_usec;
			}
		rec.len = (uint32_t)n;
		rec.caplen = (uint32_t)((size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
		if (fwrite(&rec, sizeof(rec), 1, f) != 1 || fwrite(buf, rec.caplen, 1, f) != 1)
			break;
	}
}

void hcapture_start(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; i < t->n_links; i++)
		for (int k = 0; k < 2; k++) {
			int ns = htopo_ns_index(r->c, t->links[i].end[k].ns);

			r->cap_fd[2 * i + (size_t)k] =
				ns < 0 ? -1
				       : capture_open(r, r->ns_fd[ns], t->links[i].end[k].ifname);
		}
	/* Client <-> proxy traffic inside a namespace never leaves its loopback. */
	for (size_t i = 0; i < t->n_ns; i++)
		r->cap_fd[2 * t->n_links + i] = capture_open(r, r->ns_fd[i], "lo");
}

void hcapture_stop(struct run *r)
{
	const struct hcase_topo *t = &r->c->topo;

	for (size_t i = 0; r->cap_fd && i < 2 * t->n_links; i++) {
		const struct hcase_endpoint *e = &t->links[i / 2].end[i % 2];

		if (r->cap_fd[i] < 0)
			continue;
		capture_drain(r, r->cap_fd[i], e->ns, e->ifname);
		close(r->cap_fd[i]);
		r->cap_fd[i] = -1;
	}
	for (size_t i = 0; r->cap_fd && i < t->n_ns; i++) {
		int *fd = &r->cap_fd[2 * t->n_links + i];

		if (*fd < 0)
			continue;
		capture_drain(r, *fd, t->ns[i], "lo");
		close(*fd);
		*fd = -1;
	}
}
