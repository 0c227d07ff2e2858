// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: any bytes as a cell spec (ref/cellspec.c). Beyond "no crash, no leak, no
 * overread": an accepted spec satisfies every cross-member rule the supervisor relies on, a
 * rejected one has a NUL-terminated message that fits, and a smaller error buffer gives the same
 * verdict with a prefix of the same message.
 */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cellspec.h"

#define ALL_NS                                                                                     \
	(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
	 CLONE_NEWCGROUP)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_map(const struct cellspec_idmap *m, size_t n, uint32_t id)
{
	bool mapped = false;

	if (!m || n < 1 || n > 340)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!m[i].count || (uint64_t)m[i].inside + m[i].count > UINT32_MAX ||
		    (uint64_t)m[i].outside + m[i].count > UINT32_MAX)
			abort();
		for (size_t j = 0; j < i; j++)
			if ((m[i].inside < (uint64_t)m[j].inside + m[j].count &&
			     m[j].inside < (uint64_t)m[i].inside + m[i].count) ||
			    (m[i].outside < (uint64_t)m[j].outside + m[j].count &&
			     m[j].outside < (uint64_t)m[i].outside + m[i].count))
				abort();
		mapped |= id >= m[i].inside && id - m[i].inside < m[i].count;
	}
	if (!mapped)
		abort();
}

static void check_spec(const struct cellspec *s)
{
	size_t l = strlen(s->cell_id);
	uint32_t mask;

	if (l < 1 || l >= CELLSPEC_ID_MAX || strlen(s->run_id) >= CELLSPEC_ID_MAX)
		abort();
	if ((s->ns_flags & ~(unsigned long)ALL_NS) ||
	    (s->hostname[0] && !(s->ns_flags & CLONE_NEWUTS)))
		abort();
	if (s->ns_flags & CLONE_NEWUSER) {
		check_map(s->uid_map, s->n_uid_map, s->uid);
		check_map(s->gid_map, s->n_gid_map, s->gid);
	} else if (s->uid_map || s->gid_map || s->n_uid_map || s->n_gid_map) {
		abort();
	}
	for (size_t i = 0; i < s->n_rlimits; i++)
		if (s->rlimits[i].soft > s->rlimits[i].hard)
			abort();
	for (size_t i = 0; i < s->n_cpus; i++)
		for (size_t j = 0; j < i; j++)
			if (s->cpus[i] < 0 || s->cpus[i] > 1023 || s->cpus[i] == s->cpus[j])
				abort();
	if (s->cgroup_path && (s->cgroup_path[0] == '/' || strstr(s->cgroup_path, "//")))
		abort();
	if (s->net_mode == CELLSPEC_NET_NONE) {
		if (s->dns_enabled || s->flows_enabled || s->bridge[0] || s->ifname[0])
			abort();
	} else {
		if (!(s->ns_flags & CLONE_NEWNET) || s->prefixlen < 8 || s->prefixlen > 30)
			abort();
		mask = ~0u << (32 - s->prefixlen);
		if ((s->subnet & ~mask) || (s->gateway & mask) != s->subnet ||
		    s->gateway == s->subnet || s->gateway == (s->subnet | ~mask))
			abort();
		if (s->address && ((s->address & mask) != s->subnet || s->address == s->gateway ||
				   s->address == s->subnet || s->address == (s->subnet | ~mask)))
			abort();
		if (s->mtu < 68 || s->mtu > 65535 || !s->ifname[0] ||
		    (s->bridge[0] == '\0') != (s->net_mode == CELLSPEC_NET_ROUTED))
			abort();
	}
	if (s->dns_enabled && (!s->dns_upstream || (s->ns_flags & CLONE_NEWNS) == 0))
		abort();
	if (s->dns_timeout_ms < 100 || s->dns_timeout_ms > 60000 || s->dns_listen_port == 0)
		abort();
	for (size_t i = 0; i < s->n_dns_allow; i++)
		if (!s->dns_allow[i] || !s->dns_allow[i][0] || strlen(s->dns_allow[i]) > 253)
			abort();
	if (CAP_LAST_CAP < 63 && (s->cap_keep >> (CAP_LAST_CAP + 1)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1), err[256], small[7];
	struct cellspec *s = NULL, *s2 = NULL;
	int r, r2;

	/* An exact-size copy without a NUL, so any read past the end is caught by ASan. */
	memcpy(text, data, size);
	r = cellspec_parse(text, size, &s, err, sizeof(err));
	r2 = cellspec_parse(text, size, &s2, small, sizeof(small));
	if (r != r2 || strlen(err) >= sizeof(err) || strlen(small) >= sizeof(small) ||
	    strncmp(err, small, strlen(small)))
		abort();
	if (r == 0) {
		if (!s || !s2 || err[0])
			abort();
		check_spec(s);
	} else if (r != -EINVAL || !err[0] || s || s2) {
		abort();
	}
	cellspec_free(s);
	cellspec_free(s2);
	free(text);
	return 0;
}
