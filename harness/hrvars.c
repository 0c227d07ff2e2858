// SPDX-License-Identifier: Apache-2.0
/*
 * The runner's placeholders (hrun_int.h), for start args and vars, client argv, env and file
 * steps, besides the profile's: {probe} (the harness's in-cell probe, next to this binary),
 * {case_dir} (the case's temp dir), {host_ns} ("net:INO,mnt:INO,...": the namespaces a process
 * started by the step is in), {harness_pid}, and {pid.STEP}, {pidstart.STEP} of every process
 * an earlier start step started.
 */
#include <string.h>
#include <sys/stat.h>

#include "hrun_int.h"

/*
 * Runner placeholders a start step's args and a client's argv may use besides the profile's:
 * {probe} (the harness's in-cell probe, next to this binary), {case_dir} (the case's temp dir,
 * e.g. for a supervisor's --state-dir) and {host_ns} ("net:INO,mnt:INO,...": the namespaces a
 * process started by the step is in, for the probe's ns= command).
 */
static char *probe_path(void)
{
	char exe[4096], *slash, *p = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (asprintf(&p, "%s/cellcheck-probe", exe) < 0)
		return NULL;
	return p;
}

static char *host_ns(struct run *r, const struct hcase_step *st)
{
	static const char *const names[] = { "mnt", "pid", "uts", "ipc", "user", "cgroup" };
	int nfd = htopo_step_ns_fd(r, st);
	struct stat sb;
	char buf[512];
	size_t o;

	if (nfd >= 0 ? fstat(nfd, &sb) : stat("/proc/self/ns/net", &sb))
		return NULL;
	o = (size_t)snprintf(buf, sizeof(buf), "net:%lu", (unsigned long)sb.st_ino);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
		if (stat(path, &sb) == 0 && o < sizeof(buf))
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, ",%s:%lu", names[i],
					      (unsigned long)sb.st_ino);
	}
	return strdup(buf);
}

/* Replace the runner placeholders in one word; the caller frees. */
static char *expand_word(const char *w, const char *const *names, const char *const *values,
			 size_t n)
{
	char *out = strdup(w);

	for (size_t i = 0; out && i < n; i++) {
		char ph[160], *at;

		snprintf(ph, sizeof(ph), "{%s}", names[i]);
		while (out && values[i] && (at = strstr(out, ph))) {
			char *nw = NULL;

			if (asprintf(&nw, "%.*s%s%s", (int)(at - out), out, values[i],
				     at + strlen(ph)) < 0)
				nw = NULL;
			free(out);
			out = nw;
		}
	}
	return out;
}

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or 0. */
static unsigned long long pid_start(pid_t pid)
{
	_cleanup_free_ char *st = NULL;
	char path[64], *p;
	unsigned long long v = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	st = hfile_slurp(path, &len);
	/* comm may hold spaces and parentheses: fields count from the last ')'. */
	p = st ? strrchr(st, ')') : NULL;
	if (p && sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			"%*d %*d %llu",
			&v) != 1)
		v = 0;
	return v;
}

static void hrvars_add(struct hrvars *rv, char *name, char *value)
{
	if (rv->n >= ARRAY_SIZE(rv->names) || rv->n_owned + 2 > ARRAY_SIZE(rv->owned) || !name ||
	    !value) {
		free(name);
		free(value);
		return;
	}
	rv->owned[rv->n_owned++] = name;
	rv->owned[rv->n_owned++] = value;
	rv->names[rv->n] = name;
	rv->values[rv->n++] = value;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

void hrvars_build(struct run *r, const struct hcase_step *st, struct hrvars *rv)
{
	memset(rv, 0, sizeof(*rv));
	hrvars_add(rv, strdup("probe"), probe_path());
	hrvars_add(rv, strdup("case_dir"), strdup(r->dir));
	hrvars_add(rv, strdup("host_ns"), host_ns(r, st));
	hrvars_add(rv, strdup("harness_pid"), xprintf("%d", getpid()));
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct proc *p = &r->procs[i];

		if (p->pid <= 0 || !p->st->name)
			continue;
		hrvars_add(rv, xprintf("pid.%s", p->st->name), xprintf("%d", p->pid));
		hrvars_add(rv, xprintf("pidstart.%s", p->st->name),
			   xprintf("%llu", pid_start(p->pid)));
	}
}

void hrvars_free(struct hrvars *rv)
{
	for (size_t i = 0; i < rv->n_owned; i++)
		free(rv->owned[i]);
	rv->n = rv->n_owned = 0;
}

char *hrvars_expand(const struct hrvars *rv, const char *w)
{
	return expand_word(w, rv->names, rv->values, rv->n);
}
