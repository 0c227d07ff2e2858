// SPDX-License-Identifier: Apache-2.0
/*
 * Flow monitor benchmarks (not tests), in the nstest.h topology (cell fc0 -> peer fp0):
 *
 * 1. Packet rate on the veth with and without the classifier attached: one UDP 5-tuple blasted
 *    with sendmmsg from the cell, rounds alternating off/on in the same run, medians compared.
 * 2. New flows per second: every datagram a new 5-tuple, as fast as this machine sends them,
 *    with the monitor draining; reports the rate and the records lost (goal: 0).
 * 3. IPv6 (record version 2): one IPv6 UDP 5-tuple (fe80::2 -> fe80::1, one hop-by-hop header
 *    in a second row) blasted as raw frames with AF_PACKET out of the cell end, without the
 *    classifier and with it in v2 mode; the same for IPv4 frames in v2 mode beside it. The
 *    topology keeps IPv6 off (nstest.h), which an AF_PACKET sender does not need; raw frames
 *    skip the socket layer, so these ratios are harsher than the UDP-socket ones of 1.
 * 4. New IPv6 flows per second in v2 mode (raw frames, a new source port per frame).
 *
 * usage: bench_flowmon CELLREF [seconds-per-round]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "nstest.h"
#include "util.h"

#define BATCH  64
#define ROUNDS 5

static struct sockaddr_in peer(uint16_t port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(NSTEST_PEER_IP),
	};
}

/* Blast one 5-tuple for `secs`; packets per second the sender got through. */
static double blast_one_flow(int cell_ns, double secs)
{
	_cleanup_close_ int s = nstest_socket_in(cell_ns, AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = peer(9);
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = "0123456789abcdef01", .iov_len = 18 };
	uint64_t sent = 0, t0, end;

	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = util_now_monotonic_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (util_now_monotonic_ns() < end) {
		int n = sendmmsg(s, msgs, BATCH, 0);

		if (n > 0)
			sent += (uint64_t)n;
	}
	return (double)sent / ((double)(util_now_monotonic_ns() - t0) / 1e9);
}

/* `flows` datagrams, each a new 5-tuple (source socket x destination port). Flows/s. */
static double blast_new_flows(int cell_ns, unsigned int flows)
{
	enum { PORTS = 60000 };
	struct sockaddr_in dst[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	unsigned int done = 0;
	uint64_t t0 = util_now_monotonic_ns();
	int s = -1;

	memset(msgs, 0, sizeof(msgs));
	while (done < flows) {
		unsigned int k, left_in_port_range = PORTS - done % PORTS;
		int n;

		if (done % PORTS == 0) {
			/* A fresh source port for every PORTS destination ports. */
			util_closep(&s);
			s = nstest_socket_in(cell_ns, AF_INET, SOCK_DGRAM, 0);
			if (s < 0)
				return -1;
		}
		k = BATCH;
		if (k > flows - done)
			k = flows - done;
		if (k > left_in_port_range)
			k = left_in_port_range;
		for (unsigned int i = 0; i < k; i++) {
			dst[i] = peer((uint16_t)(1024 + (done + i) % PORTS));
			msgs[i].msg_hdr.msg_name = &dst[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(dst[i]);
			msgs[i].msg_hdr.msg_iov = &iov;
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = sendmmsg(s, msgs, k, 0);
		if (n <= 0) {
			if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED)
				continue;
			fprintf(stderr, "sendmmsg: %s\n", strerror(errno));
			break;
		}
		done += (unsigned int)n;
	}
	util_closep(&s);
	return (double)done / ((double)(util_now_monotonic_ns() - t0) / 1e9);
}

/* An Ethernet frame with IPv6 (hbh: one hop-by-hop header) or IPv4, UDP 40000 -> 9, 18 bytes. */
static size_t build_frame(unsigned char *f, int v6, int hbh)
{
	unsigned char *ip = f + 14, *u;
	size_t iplen;

	memset(f, 0, 128);
	memset(f, 0xff, 6); /* broadcast: the peer takes it whatever its MAC */
	f[6] = 0x02;
	if (v6) {
		f[12] = 0x86, f[13] = 0xdd;
		ip[0] = 0x60, ip[7] = 64;
		ip[8] = 0xfe, ip[9] = 0x80, ip[23] = 2;
		ip[24] = 0xfe, ip[25] = 0x80, ip[39] = 1;
		ip[6] = hbh ? 0 : 17;
		u = ip + 40;
		if (hbh) {
			u[0] = 17, u[2] = 1, u[3] = 4; /* next UDP, PadN */
			u += 8;
		}
		iplen = (size_t)(u - ip) + 8 + 18;
		ip[4] = (unsigned char)((iplen - 40) >> 8), ip[5] = (unsigned char)(iplen - 40);
	} else {
		f[12] = 0x08, f[13] = 0x00;
		ip[0] = 0x45, ip[8] = 64, ip[9] = 17;
		ip[12] = 10, ip[13] = 77, ip[15] = 2;
		ip[16] = 10, ip[17] = 77, ip[19] = 1;
		u = ip + 20;
		iplen = 20 + 8 + 18;
		ip[2] = (unsigned char)(iplen >> 8), ip[3] = (unsigned char)iplen;
	}
	u[0] = 40000 >> 8, u[1] = 40000 & 0xff, u[3] = 9, u[5] = 8 + 18;
	memcpy(u + 8, "0123456789abcdef01", 18);
	return 14 + iplen;
}

/*
 * Blast raw frames out of the cell end for `secs`: frames per second. With new_flows, each frame
 * gets the next source port (a new 5-tuple each, up to 65536); *ret_n counts the frames.
 */
static double blast_frames(const struct nstest_topo *t, int v6, int hbh, double secs, int new_flows,
			   uint64_t *ret_n)
{
	_cleanup_close_ int s = nstest_socket_in(t->cell_ns, AF_PACKET, SOCK_RAW, 0);
	struct sockaddr_ll ll = { .sll_family = AF_PACKET,
				  .sll_ifindex = t->cell_ifindex,
				  .sll_protocol = htons(v6 ? ETH_P_IPV6 : ETH_P_IP),
				  .sll_halen = 6 };
	static unsigned char frames[BATCH][128];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	size_t len = 0, sport_off = 14 + (v6 ? 40 + (hbh ? 8 : 0) : 20);
	uint64_t sent = 0, t0, end;

	if (s < 0)
		return -1;
	memset(ll.sll_addr, 0xff, 6);
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		len = build_frame(frames[i], v6, hbh);
		iov[i] = (struct iovec){ .iov_base = frames[i], .iov_len = len };
		msgs[i].msg_hdr.msg_name = &ll;
		msgs[i].msg_hdr.msg_namelen = sizeof(ll);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = util_now_monotonic_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (util_now_monotonic_ns() < end && (!new_flows || sent < 65536)) {
		int n;

		for (int i = 0; new_flows && i < BATCH; i++) {
			frames[i][sport_off] = (unsigned char)((sent + (uint64_t)i) >> 8);
			frames[i][sport_off + 1] = (unsigned char)(sent + (uint64_t)i);
		}
		n = sendmmsg(s, msgs, BATCH, 0);
		if (n > 0)
			sent += (uint64_t)n;
	}
	if (ret_n)
		*ret_n = sent;
	return (double)sent / ((double)(util_now_monotonic_ns() - t0) / 1e9);
}

static char read_sysctl(const char *key)
{
	char path[128], c = '0';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	f = fopen(path, "re");
	if (f) {
		c = (char)fgetc(f);
		fclose(f);
	}
	return c;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Average ns per run of the monitor's program, from the kernel's BPF run-time stats. */
static double prog_ns_per_run(struct nstest_mon *m)
{
	_cleanup_free_ char *text = nstest_slurp(m->ev_fd, NULL);
	char *nl = text ? strchr(text, '\n') : NULL;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	json_t *started;
	int id, fd;

	if (!nl)
		return -1;
	*nl = '\0';
	started = json_loads(text, 0, NULL);
	id = (int)json_integer_value(json_object_get(json_object_get(started, "data"), "progId"));
	json_decref(started);
	fd = bpf_prog_get_fd_by_id((__u32)id);
	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0 || !info.run_cnt) {
		close(fd);
		return -1;
	}
	close(fd);
	return (double)info.run_time_ns / (double)info.run_cnt;
}

static json_t *summary_of(struct nstest_mon *m)
{
	_cleanup_free_ char *text = nstest_slurp(m->ev_fd, NULL);
	json_t *found = NULL;
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, "flow_monitor_summary"))
			continue;
		json_decref(found);
		found = json_loads(line, 0, NULL);
	}
	return found ? json_incref(json_object_get(found, "data")) : NULL;
}

static int start(struct nstest_mon *m, const char *cellref, const struct nstest_topo *t,
		 char **extra)
{
	int r = nstest_mon_spawn(m, cellref, "fc0", NULL, t->cell_ns, extra);

	r = r ?: nstest_wait_byte(m->ready_fd, 20000);
	if (r)
		fprintf(stderr, "bench: flow-monitor did not start: %s\n", strerror(-r));
	return r;
}

static int frame_rounds(const char *cellref, const struct nstest_topo *t, const char *what, int v6,
			int hbh, double secs)
{
	double off[ROUNDS], on[ROUNDS], ratio[ROUNDS];

	for (int round = 0; round < ROUNDS; round++) {
		struct nstest_mon m;

		off[round] = blast_frames(t, v6, hbh, secs, 0, NULL);
		if (start(&m, cellref, t, (char *[]){ "--record-version", "2", NULL }))
			return -1;
		on[round] = blast_frames(t, v6, hbh, secs, 0, NULL);
		nstest_mon_stop(&m, SIGTERM, 20000);
		nstest_mon_close(&m);
		ratio[round] = on[round] / off[round];
	}
	qsort(off, ROUNDS, sizeof(double), cmp);
	qsort(on, ROUNDS, sizeof(double), cmp);
	qsort(ratio, ROUNDS, sizeof(double), cmp);
	printf("raw %s frames/s (v2 classifier), median of %d: without %.0f, with %.0f; median "
	       "paired ratio %.3f\n",
	       what, ROUNDS, off[ROUNDS / 2], on[ROUNDS / 2], ratio[ROUNDS / 2]);
	return 0;
}

/* Up to 65536 new IPv6 5-tuples as raw frames in v2 mode: the rate, delivered and lost. */
static int new_flow6_round(const char *cellref, const struct nstest_topo *t)
{
	struct nstest_mon m;
	uint64_t n = 0;
	json_t *sum;
	double rate;

	if (start(&m, cellref, t,
		  (char *[]){ "--record-version", "2", "--flow-table-entries", "1048576",
			      "--ringbuf-bytes", "4194304", NULL }))
		return -1;
	rate = blast_frames(t, 1, 0, 30, 1, &n);
	nstest_mon_stop(&m, SIGTERM, 60000);
	sum = summary_of(&m);
	printf("new IPv6 flows (v2): %llu at %.0f flows/s, ring 4194304 bytes: delivered %lld, "
	       "lost %lld\n",
	       (unsigned long long)n, rate,
	       (long long)json_integer_value(json_object_get(sum, "recordsSeen")),
	       (long long)json_integer_value(json_object_get(sum, "recordsLost")));
	json_decref(sum);
	nstest_mon_close(&m);
	return 0;
}

static int new_flow_round(const char *cellref, const struct nstest_topo *t, unsigned int flows,
			  char *ring)
{
	struct nstest_mon m;
	json_t *sum;
	double rate;

	if (start(&m, cellref, t,
		  (char *[]){ "--flow-table-entries", "1048576", "--ringbuf-bytes", ring, NULL }))
		return -1;
	rate = blast_new_flows(t->cell_ns, flows);
	nstest_mon_stop(&m, SIGTERM, 60000);
	sum = summary_of(&m);
	printf("new flows: %u at %.0f flows/s, ring %s bytes: delivered %lld, lost %lld\n", flows,
	       rate, ring, (long long)json_integer_value(json_object_get(sum, "recordsSeen")),
	       (long long)json_integer_value(json_object_get(sum, "recordsLost")));
	json_decref(sum);
	nstest_mon_close(&m);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cellref = argc > 1 ? argv[1] : "build/ref/cellref";
	double secs = argc > 2 ? atof(argv[2]) : 2.0;
	double off[ROUNDS], on[ROUNDS], ratio[ROUNDS];
	struct nstest_topo t;
	_cleanup_close_ int sink = -1;
	char stats_was;
	int r;

	r = nstest_topo_up(&t);
	if (r) {
		fprintf(stderr, "bench: topology (%s): %s\n", t.step, strerror(-r));
		return r == -EPERM ? 77 : 1;
	}
	/* Something to receive on the peer, so no ICMP errors are generated. */
	sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in a = peer(9);

		bind(sink, (struct sockaddr *)&a, sizeof(a));
	}

	for (int round = 0; round <= ROUNDS; round++) {
		struct nstest_mon m;

		if (round == ROUNDS) {
			/*
			 * A last round only for the program's own cost: the kernel's run-time stats
			 * slow every run down, so they stay off while the rates are compared.
			 */
			stats_was = read_sysctl("kernel/bpf_stats_enabled");
			nstest_sysctl(-1, "kernel/bpf_stats_enabled", "1");
			if (start(&m, cellref, &t, NULL))
				return 1;
			blast_one_flow(t.cell_ns, secs);
			printf("classifier run time (bpf_stats): %.0f ns/packet\n",
			       prog_ns_per_run(&m));
			nstest_sysctl(-1, "kernel/bpf_stats_enabled", stats_was == '1' ? "1" : "0");
			nstest_mon_stop(&m, SIGTERM, 20000);
			nstest_mon_close(&m);
			break;
		}
		off[round] = blast_one_flow(t.cell_ns, secs);
		if (start(&m, cellref, &t, NULL))
			return 1;
		on[round] = blast_one_flow(t.cell_ns, secs);
		nstest_mon_stop(&m, SIGTERM, 20000);
		nstest_mon_close(&m);
		ratio[round] = on[round] / off[round];
		printf("round %d: without %.0f pps, with classifier %.0f pps, ratio %.3f\n", round,
		       off[round], on[round], ratio[round]);
	}
	qsort(off, ROUNDS, sizeof(double), cmp);
	qsort(on, ROUNDS, sizeof(double), cmp);
	qsort(ratio, ROUNDS, sizeof(double), cmp);
	printf("veth UDP pps, median of %d: without %.0f, with %.0f; median paired ratio %.3f\n",
	       ROUNDS, off[ROUNDS / 2], on[ROUNDS / 2], ratio[ROUNDS / 2]);

	frame_rounds(cellref, &t, "IPv4 UDP", 0, 0, secs);
	frame_rounds(cellref, &t, "IPv6 UDP", 1, 0, secs);
	frame_rounds(cellref, &t, "IPv6 hop-by-hop UDP", 1, 1, secs);
	new_flow6_round(cellref, &t);

	new_flow_round(cellref, &t, 200000, "262144");
	new_flow_round(cellref, &t, 500000, "262144");
	new_flow_round(cellref, &t, 500000, "4194304");
	return 0;
}
