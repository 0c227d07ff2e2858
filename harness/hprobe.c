// SPDX-License-Identifier: Apache-2.0
#include "hprobe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "hsha256.h"
#include "netcfg.h"
#include "util.h"

const char *const hprobe_feature_names[] = { "btf",    "ringbuf", "clsact",  "veth",
					     "bridge", "userns",  "cgroup2", NULL };
const char *const hprobe_state_names[] = { "absent", "present", "unknown", NULL };

int hprobe_feature_from_name(const char *name)
{
	for (int i = 0; hprobe_feature_names[i]; i++)
		if (strcmp(hprobe_feature_names[i], name) == 0)
			return i;
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static void set(struct hprobe_result *r, enum hprobe_state st,
						      const char *fmt, ...)
{
	va_list ap;

	r->state = st;
	va_start(ap, fmt);
	vsnprintf(r->evidence, sizeof(r->evidence), fmt, ap);
	va_end(ap);
}

/* Hash the config text, decompressed, so /proc/config.gz and /boot/config-* agree. */
static int hash_config(const char *path, char hex[65])
{
	struct hsha256 s;
	char buf[65536];
	gzFile gz;
	int n;

	gz = gzopen(path, "rb"); /* reads plain files transparently too */
	if (!gz)
		return errno ? -errno : -ENOMEM;
	hsha256_init(&s);
	while ((n = gzread(gz, buf, sizeof(buf))) > 0)
		hsha256_update(&s, buf, (size_t)n);
	if (n < 0) {
		gzclose(gz);
		return -EIO;
	}
	gzclose(gz);
	hsha256_final_hex(&s, hex);
	return 0;
}

int hprobe_kernel(struct hprobe *p)
{
	char boot[sizeof(p->release) + 16];
	struct utsname u;
	int r;

	memset(p, 0, sizeof(*p));
	p->root = geteuid() == 0;
	if (uname(&u) < 0)
		return -errno;
	snprintf(p->release, sizeof(p->release), "%s", u.release);
	snprintf(boot, sizeof(boot), "/boot/config-%s", u.release);
	r = hash_config("/proc/config.gz", p->config_sha256);
	if (r == 0) {
		snprintf(p->config_source, sizeof(p->config_source), "/proc/config.gz");
		return 0;
	}
	r = hash_config(boot, p->config_sha256);
	if (r == 0) {
		snprintf(p->config_source, sizeof(p->config_source), "%s", boot);
		return 0;
	}
	snprintf(p->config_sha256, sizeof(p->config_sha256), "unavailable");
	snprintf(p->config_source, sizeof(p->config_source),
		 "neither /proc/config.gz nor %s is readable (%s)", boot, util_errno_name(r));
	return 0;
}

static void probe_btf(struct hprobe_result *r)
{
	struct stat st;

	if (stat("/sys/kernel/btf/vmlinux", &st) == 0)
		set(r, HPROBE_PRESENT, "/sys/kernel/btf/vmlinux, %lld bytes",
		    (long long)st.st_size);
	else
		set(r, HPROBE_ABSENT, "/sys/kernel/btf/vmlinux: %s", util_errno_name(errno));
}

static void probe_ringbuf(struct hprobe_result *r, bool root)
{
	int fd;

	/* One page is the smallest ring buffer the kernel accepts. */
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "cc_probe", 0, 0, (uint32_t)getpagesize(), NULL);
	if (fd >= 0) {
		close(fd);
		set(r, HPROBE_PRESENT, "bpf(BPF_MAP_CREATE, BPF_MAP_TYPE_RINGBUF) succeeded");
		return;
	}
	if ((fd == -EPERM || fd == -EACCES) && !root)
		set(r, HPROBE_UNKNOWN, "unknown (needs root): bpf(BPF_MAP_CREATE): %s",
		    util_errno_name(fd));
	else if (fd == -EINVAL)
		set(r, HPROBE_ABSENT,
		    "bpf(BPF_MAP_CREATE, BPF_MAP_TYPE_RINGBUF): EINVAL (type unknown)");
	else
		set(r, HPROBE_UNKNOWN, "bpf(BPF_MAP_CREATE, BPF_MAP_TYPE_RINGBUF): %s",
		    util_errno_name(fd));
}

struct ns_results {
	int unshare_err;
	int veth;
	int bridge;
	int clsact;
};

/* In the child, inside a fresh netns that dies with it: nothing to clean up. */
static void ns_child(int wfd)
{
	struct ns_results res = { 0 };
	struct netcfg_bridge_opts bo = { .name = "ccprobe-br" };
	struct netcfg *nc = NULL;
	int idx = 0;

	if (unshare(CLONE_NEWNET) < 0) {
		res.unshare_err = -errno;
	} else if ((res.veth = netcfg_open(-1, &nc)) == 0) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = 1, .attach_point = BPF_TC_EGRESS);

		res.veth = netcfg_veth_add(nc, "ccprobe0", "ccprobe1", -1);
		res.bridge = netcfg_bridge_add(nc, &bo, &idx);
		/* lo is ifindex 1 in every fresh namespace. */
		res.clsact = bpf_tc_hook_create(&hook);
		netcfg_free(nc);
	} else {
		res.bridge = res.clsact = res.veth;
	}
	(void)!write(wfd, &res, sizeof(res));
	_exit(0);
}

static void probe_netns(struct hprobe *p)
{
	struct hprobe_result *veth = &p->feat[HPROBE_VETH], *br = &p->feat[HPROBE_BRIDGE],
			     *cls = &p->feat[HPROBE_CLSACT];
	struct ns_results res;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	if (!p->root) {
		set(veth, HPROBE_UNKNOWN, "unknown (needs root)");
		set(br, HPROBE_UNKNOWN, "unknown (needs root)");
		set(cls, HPROBE_UNKNOWN, "unknown (needs root)");
		return;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		goto fail;
	}
	if (pid == 0) {
		close(fds[0]);
		ns_child(fds[1]);
	}
	close(fds[1]);
	n = util_read_full(fds[0], &res, sizeof(res));
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(res)) {
		errno = EPIPE;
		goto fail;
	}
	if (res.unshare_err) {
		set(veth, HPROBE_UNKNOWN, "unshare(CLONE_NEWNET): %s",
		    util_errno_name(res.unshare_err));
		*br = *cls = *veth;
		return;
	}
	if (res.veth == 0)
		set(veth, HPROBE_PRESENT, "RTM_NEWLINK kind veth in a fresh netns succeeded");
	else
		set(veth, res.veth == -EOPNOTSUPP ? HPROBE_ABSENT : HPROBE_UNKNOWN,
		    "RTM_NEWLINK kind veth: %s", util_errno_name(res.veth));
	if (res.bridge == 0)
		set(br, HPROBE_PRESENT, "RTM_NEWLINK kind bridge in a fresh netns succeeded");
	else
		set(br, res.bridge == -EOPNOTSUPP ? HPROBE_ABSENT : HPROBE_UNKNOWN,
		    "RTM_NEWLINK kind bridge: %s", util_errno_name(res.bridge));
	if (res.clsact == 0)
		set(cls, HPROBE_PRESENT, "RTM_NEWQDISC clsact on lo in a fresh netns succeeded");
	else
		set(cls,
		    res.clsact == -EOPNOTSUPP || res.clsact == -ENOENT ? HPROBE_ABSENT
								       : HPROBE_UNKNOWN,
		    "RTM_NEWQDISC clsact: %s", util_errno_name(res.clsact));
	return;
fail:
	set(veth, HPROBE_UNKNOWN, "probe process: %s", util_errno_name(errno));
	*br = *cls = *veth;
}

static void probe_userns(struct hprobe_result *r)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		set(r, HPROBE_UNKNOWN, "fork: %s", util_errno_name(errno));
		return;
	}
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) < 0 ? (errno & 0x7f) ?: 1 : 0);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			set(r, HPROBE_UNKNOWN, "waitpid: %s", util_errno_name(errno));
			return;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		set(r, HPROBE_PRESENT, "unshare(CLONE_NEWUSER) succeeded");
	else if (WIFEXITED(status))
		set(r, HPROBE_ABSENT, "unshare(CLONE_NEWUSER): %s",
		    util_errno_name(WEXITSTATUS(status)));
	else
		set(r, HPROBE_UNKNOWN, "probe child died (status 0x%x)", status);
}

static void probe_cgroup2(struct hprobe_result *r)
{
	char buf[200] = "";
	struct statfs sf;
	FILE *f;

	if (statfs("/sys/fs/cgroup", &sf) < 0) {
		set(r, HPROBE_ABSENT, "statfs /sys/fs/cgroup: %s", util_errno_name(errno));
		return;
	}
	f = fopen("/sys/fs/cgroup/cgroup.controllers", "re");
	if (!f || sf.f_type != CGROUP2_SUPER_MAGIC) {
		set(r, HPROBE_ABSENT, "/sys/fs/cgroup is not cgroup2 (f_type 0x%lx)%s",
		    (unsigned long)sf.f_type, f ? "" : ", no cgroup.controllers");
		if (f)
			fclose(f);
		return;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	set(r, HPROBE_PRESENT, "/sys/fs/cgroup/cgroup.controllers: %s", buf[0] ? buf : "(none)");
}

int hprobe_run(struct hprobe *p)
{
	int r;

	r = hprobe_kernel(p);
	if (r < 0)
		return r;
	probe_btf(&p->feat[HPROBE_BTF]);
	probe_ringbuf(&p->feat[HPROBE_RINGBUF], p->root);
	probe_netns(p);
	probe_userns(&p->feat[HPROBE_USERNS]);
	probe_cgroup2(&p->feat[HPROBE_CGROUP2]);
	return 0;
}
