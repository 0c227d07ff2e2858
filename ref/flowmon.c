// SPDX-License-Identifier: Apache-2.0
#include "flowmon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fault.h"
#include "flowmon.skel.h"
#include "util.h"

#ifdef CELLREF_FAULTS
#include "../bpf/flowmon_fault.h"

/* The classifier cannot read CELLREF_FAULT: its faults become bits of a .rodata knob. */
static uint32_t fault_bits(void)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} map[] = {
		{ "flow.pad_nonzero", FLOWMON_FAULT_PAD_NONZERO },
		{ "flow.port_order", FLOWMON_FAULT_PORT_ORDER },
		{ "flow.addr_order", FLOWMON_FAULT_ADDR_ORDER },
		{ "flow.record_per_packet", FLOWMON_FAULT_RECORD_PER_PACKET },
		{ "flow.pkt_count_double", FLOWMON_FAULT_PKT_COUNT_DOUBLE },
		{ "flow.first_seen_skew", FLOWMON_FAULT_FIRST_SEEN_SKEW },
		{ "flow.verdict_drop", FLOWMON_FAULT_VERDICT_DROP },
		{ "flow.icmp_proto_zero", FLOWMON_FAULT_ICMP_PROTO_ZERO },
		{ "flow.unconsidered_uncounted", FLOWMON_FAULT_UNCONSIDERED_UNCOUNTED },
		{ "flow.unconsidered_pass", FLOWMON_FAULT_UNCONSIDERED_PASS },
		{ "flow.v6_unconsidered", FLOWMON_FAULT_V6_UNCONSIDERED },
		{ "flow.v6_ext_unfollowed", FLOWMON_FAULT_V6_EXT_UNFOLLOWED },
		{ "flow.v6_ext_limit", FLOWMON_FAULT_V6_EXT_LIMIT },
		{ "flow.v6_first_fragment", FLOWMON_FAULT_V6_FIRST_FRAGMENT },
		{ "flow.byte_count_l2", FLOWMON_FAULT_BYTE_COUNT_L2 },
		{ "flow.v2_ipv4_unmapped", FLOWMON_FAULT_V2_IPV4_UNMAPPED },
		{ "flow.drop_unrecorded", FLOWMON_FAULT_DROP_UNRECORDED },
		{ "flow.drop_verdict_accept", FLOWMON_FAULT_DROP_VERDICT_ACCEPT },
		{ "flow.drop_key_merged", FLOWMON_FAULT_DROP_KEY_MERGED },
		{ "flow.drop_record_addrless", FLOWMON_FAULT_DROP_RECORD_ADDRLESS },
		{ "flow.drop_record_count_mode", FLOWMON_FAULT_DROP_RECORD_COUNT_MODE },
		{ "flow.udplite6_uncounted", FLOWMON_FAULT_UDPLITE6_UNCOUNTED },
	};
	uint32_t bits = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (FAULT(map[i].name))
			bits |= map[i].bit;
	return bits;
}
#endif

#define VERIFIER_LOG_SIZE (1u << 20)

struct flowmon {
	struct flowmon_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	bool attached;
	bool qdisc_created;
	char *log;
	struct flowmon_opts opts;
};

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool cap_effective(uint64_t caps, int cap)
{
	return caps & (1ULL << cap);
}

/*
 * CAP_NET_ADMIN for the qdisc and filter, CAP_BPF (or CAP_SYS_ADMIN on kernels before 5.8) for
 * the program and maps. Checked up front because an unprivileged probe cannot tell "no
 * permission" from "no such feature".
 */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint64_t eff;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	if (!cap_effective(eff, CAP_NET_ADMIN) ||
	    !(cap_effective(eff, CAP_BPF) || cap_effective(eff, CAP_SYS_ADMIN)))
		return -EPERM;
	return 0;
}

int flowmon_ringbuf_supported(void)
{
	static int cached = -1;
	int r;

	if (cached >= 0)
		return cached;
	r = check_privileges();
	if (r < 0)
		return r;
	r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	if (r < 0)
		return r;
	cached = r;
	return r;
}

static int on_ring_record(void *ctx, void *data, size_t len)
{
	struct flowmon *m = ctx;

	return m->opts.on_record ? m->opts.on_record(m->opts.ctx, data, len) : 0;
}

int flowmon_open(const struct flowmon_opts *o, struct flowmon **ret, char **ret_log)
{
	struct flowmon *m;
	long page = sysconf(_SC_PAGESIZE);
	uint32_t entries;
	int err;

	if (ret_log)
		*ret_log = NULL;
	if (o->ifindex <= 0 || o->ringbuf_bytes < (uint32_t)page || o->record_version > 2 ||
	    (o->ringbuf_bytes & (o->ringbuf_bytes - 1)) || o->table_entries == 0)
		return -EINVAL;
	err = flowmon_ringbuf_supported();
	if (err <= 0)
		return err ?: -EOPNOTSUPP;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->opts = *o;
	if (!m->opts.record_version)
		m->opts.record_version = 1;
	m->log = calloc(1, VERIFIER_LOG_SIZE);
	m->skel = flowmon_bpf__open();
	if (!m->skel) {
		err = errno ? -errno : -ENOMEM;
		goto fail;
	}
	if (!m->log) {
		err = -ENOMEM;
		goto fail;
	}
	m->skel->rodata->l2_len = o->l2_len;
	m->skel->rodata->drop_unconsidered = o->drop_unconsidered;
	m->skel->rodata->record_version = m->opts.record_version;
#ifdef CELLREF_FAULTS
	m->skel->rodata->cellref_faults = fault_bits();
#endif
	/* Wake the consumer when a quarter of the ring waits: bounded latency, few wakeups. */
	m->skel->rodata->wakeup_bytes = o->ringbuf_bytes / 4;
	err = bpf_map__set_max_entries(m->skel->maps.FLOW_EVENTS, o->ringbuf_bytes);
	/* flow.table_size_ignored: the negative control of FLOW-MON-010/011 (ref/fault.h). */
	entries = FAULT("flow.table_size_ignored") ? FLOWMON_TABLE_DEFAULT : o->table_entries;
	/* The other version's table is never touched: one entry keeps it cheap to create. */
	err = err
		      ?: bpf_map__set_max_entries(m->skel->maps.FLOWS,
						  m->opts.record_version == 1 ? entries : 1);
	err = err
		      ?: bpf_map__set_max_entries(m->skel->maps.FLOWS_V2,
						  m->opts.record_version == 2 ? entries : 1);
	/* With level 0, libbpf asks for the log only when a load fails, into this buffer. */
	err = err
		      ?: bpf_program__set_log_buf(m->skel->progs.flowmon_egress, m->log,
						  VERIFIER_LOG_SIZE);
	if (err)
		goto fail;
	err = flowmon_bpf__load(m->skel);
	if (err) {
		if (m->log[0] && ret_log)
			*ret_log = strdup(m->log);
		goto fail;
	}
	m->rb = ring_buffer__new(bpf_map__fd(m->skel->maps.FLOW_EVENTS), on_ring_record, m, NULL);
	if (!m->rb) {
		err = -errno ?: -ENOMEM;
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	flowmon_free(m);
	return err < 0 ? err : -EINVAL;
}

int flowmon_attach(struct flowmon *m)
{
	int err;

	if (m->attached)
		return -EALREADY;
	m->hook = (struct bpf_tc_hook){
		.sz = sizeof(m->hook),
		.ifindex = m->opts.ifindex,
		.attach_point = BPF_TC_EGRESS,
	};
	err = bpf_tc_hook_create(&m->hook);
	if (err && err != -EEXIST)
		return err;
	/* An existing clsact belongs to someone else: we only ever remove our own filter. */
	m->qdisc_created = err == 0;

	m->tc = (struct bpf_tc_opts){
		.sz = sizeof(m->tc),
		.prog_fd = bpf_program__fd(m->skel->progs.flowmon_egress),
	};
	err = bpf_tc_attach(&m->hook, &m->tc);
	if (err) {
		if (m->qdisc_created) {
			m->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&m->hook);
			m->qdisc_created = false;
		}
		return err;
	}
	m->attached = true;
	return 0;
}

int flowmon_detach(struct flowmon *m)
{
	struct bpf_tc_opts del;
	int err, err2 = 0;

	if (!m->attached)
		return 0;
	/* Delete by the handle and priority the kernel gave us, nothing broader. */
	del = (struct bpf_tc_opts){
		.sz = sizeof(del),
		.handle = m->tc.handle,
		.priority = m->tc.priority,
	};
	err = bpf_tc_detach(&m->hook, &del);
	if (err == -ENOENT || err == -ENODEV || err == -EINVAL)
		err = 0; /* the filter or the interface is already gone */
	/* flow.foreign_qdisc_deleted: a clsact someone else created goes too (FLOW-MON-020). */
	if (m->qdisc_created || FAULT("flow.foreign_qdisc_deleted")) {
		m->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err2 = bpf_tc_hook_destroy(&m->hook);
		if (err2 == -ENOENT || err2 == -ENODEV || err2 == -EINVAL)
			err2 = 0;
	}
	m->attached = false;
	return err ?: err2;
}

void flowmon_free(struct flowmon *m)
{
	if (!m)
		return;
	ring_buffer__free(m->rb);
	flowmon_bpf__destroy(m->skel);
	free(m->log);
	free(m);
}

void flowmon_freep(struct flowmon **m)
{
	flowmon_free(*m);
}

bool flowmon_qdisc_created(const struct flowmon *m)
{
	return m->qdisc_created;
}

uint32_t flowmon_prog_id(const struct flowmon *m)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(m->skel->progs.flowmon_egress), &info, &len))
		return 0;
	return info.id;
}

int flowmon_epoll_fd(const struct flowmon *m)
{
	return ring_buffer__epoll_fd(m->rb);
}

int flowmon_consume(struct flowmon *m)
{
	return ring_buffer__consume(m->rb);
}

int flowmon_read_stats(struct flowmon *m, struct flowmon_stats *ret)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sums[FLOWREC_STAT_MAX] = { 0 };
	_cleanup_free_ uint64_t *vals = NULL;
	int fd = bpf_map__fd(m->skel->maps.FLOW_STATS);

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t slot = 0; slot < FLOWREC_STAT_MAX; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, vals) < 0)
			return -errno;
		for (int c = 0; c < ncpu; c++)
			sums[slot] += vals[c];
	}
	*ret = (struct flowmon_stats){
		.records = sums[FLOWREC_STAT_RECORDS],
		.lost = sums[FLOWREC_STAT_LOST],
		.packets = sums[FLOWREC_STAT_PACKETS],
		.table_full = sums[FLOWREC_STAT_TABLE_FULL],
	};
	for (uint32_t i = 0; i < FLOWREC_STAT_UNCONSIDERED_N; i++)
		ret->unconsidered[i] = sums[FLOWREC_STAT_UNCONSIDERED_FIRST + i];
	return 0;
}

static int foreach_v1(struct flowmon *m, int (*fn)(void *ctx, const struct flowrec *r), void *ctx)
{
	int fd = bpf_map__fd(m->skel->maps.FLOWS);
	struct flowrec_key key, next;
	struct flowrec_state st;
	void *prev = NULL;
	int err, r;

	while ((r = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		struct flowrec rec;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &st) < 0)
			continue; /* evicted between the two calls */
		rec = (struct flowrec){
			.version = 1,
			.family = FLOWREC_FAMILY_IPV4,
			.src_ip = key.src_ip,
			.dst_ip = key.dst_ip,
			.src_port = key.src_port,
			.dst_port = key.dst_port,
			.proto = key.proto,
			.pkt_count = st.pkt_count,
			.first_seen_ns = st.first_seen_ns,
			.verdict = st.verdict,
		};
		flowrec_addr_map_ipv4(key.src_ip, rec.src_addr);
		flowrec_addr_map_ipv4(key.dst_ip, rec.dst_addr);
		err = fn(ctx, &rec);
		if (err < 0)
			return err;
	}
	return r == -ENOENT ? 0 : r;
}

static int foreach_v2(struct flowmon *m, int (*fn)(void *ctx, const struct flowrec *r), void *ctx)
{
	int fd = bpf_map__fd(m->skel->maps.FLOWS_V2);
	struct flowrec_key_v2 key, next;
	struct flowrec_state_v2 st;
	void *prev = NULL;
	int err, r;

	while ((r = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		struct flowrec rec;
		uint32_t src4, dst4;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &st) < 0)
			continue; /* evicted between the two calls */
		memcpy(&src4, key.src_addr + 12, 4);
		memcpy(&dst4, key.dst_addr + 12, 4);
		rec = (struct flowrec){
			.version = 2,
			.family = key.family,
			.src_ip = ntohl(src4),
			.dst_ip = ntohl(dst4),
			.src_port = key.src_port,
			.dst_port = key.dst_port,
			.proto = key.proto,
			.pkt_count = st.pkt_count,
			.byte_count = st.byte_count,
			.first_seen_ns = st.first_seen_ns,
			.verdict = st.verdict,
		};
		memcpy(rec.src_addr, key.src_addr, 16);
		memcpy(rec.dst_addr, key.dst_addr, 16);
		err = fn(ctx, &rec);
		if (err < 0)
			return err;
	}
	return r == -ENOENT ? 0 : r;
}

int flowmon_foreach_flow(struct flowmon *m, int (*fn)(void *ctx, const struct flowrec *r),
			 void *ctx)
{
	return m->opts.record_version == 2 ? foreach_v2(m, fn, ctx) : foreach_v1(m, fn, ctx);
}
