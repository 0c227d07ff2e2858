/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conformance cases as data (cases/README.md is the format's documentation). A case file holds
 * one case object or an array of them (a family). The loader validates everything strictly:
 * unknown keys, wrong types, dangling references between steps and expectations are errors that
 * name the file and the JSON path, so the runner can walk a loaded case without re-checking.
 *
 * Header, topology and steps are typed; the upstream script and the expectations are kept as
 * the validated jansson trees (their shape is guaranteed by hcase_load_*), since their matchers
 * are interpreted against runtime values anyway.
 */
#ifndef CELLCHECK_HCASE_H
#define CELLCHECK_HCASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hjson.h"

enum hcase_level { HCASE_MUST, HCASE_SHOULD, HCASE_MAY, _HCASE_LEVEL_MAX };

/* The components a profile can provide, in report order. */
enum hcase_component {
	HCASE_DECODER,
	HCASE_FLOW_MONITOR,
	HCASE_DNS_PROXY,
	HCASE_SUPERVISOR,
	_HCASE_COMPONENT_MAX
};

/*
 * The step kinds, in the order lint lists them; each is a file of harness/steps/ and a row of
 * its table (harness/steps/hstep.h), which holds the name a case file's "action" gives.
 */
enum hcase_action {
	HCASE_ACT_START,  /* start a component from the profile's argv template */
	HCASE_ACT_DRIVER, /* one command to the scapy driver */
	HCASE_ACT_CLIENT, /* run a real client program (dig, kdig, getent) */
	HCASE_ACT_WAIT,	  /* sleep, or wait for events to arrive */
	HCASE_ACT_SIGNAL, /* send a signal to a started component */
	HCASE_ACT_STOP,	  /* SIGTERM (or nothing) and a bounded wait for exit */
	HCASE_ACT_FEED,	  /* write a file to a started component's stdin pipe, or close it */
	HCASE_ACT_DRAIN,  /* start reading a start step's stalled event sink */
	HCASE_ACT_FILE,	  /* write a file in the case dir (a planted lease, a tripwire script) */
	_HCASE_ACT_MAX
};

extern const char *const hcase_level_names[];	  /* "MUST", "SHOULD", "MAY", NULL */
extern const char *const hcase_component_names[]; /* "decoder", "flow-monitor", ... NULL */

int hcase_level_from_name(const char *s);     /* enum value or -EINVAL */
int hcase_component_from_name(const char *s); /* enum value or -EINVAL */

struct hcase_req {
	char *id; /* "FLOW-REC-001" */
	enum hcase_level level;
	char *clause; /* optional SPEC/RFC clause, "RFC 1035 4.2.2" */
};

struct hcase_endpoint {
	char *ns;     /* logical namespace name declared in topology.namespaces; NULL: no end */
	char *ifname; /* name inside that namespace */
	char *alias;  /* IFLA_IFALIAS, or NULL */
	char **addrs; /* "10.0.0.1/24", "fd00::1/64"; NULL-terminated, may be empty */
};

enum hcase_link_type { HCASE_LINK_VETH, HCASE_LINK_BRIDGE, HCASE_LINK_DUMMY };

struct hcase_link {
	enum hcase_link_type type;
	struct hcase_endpoint end[2]; /* a veth pair; a bridge or a dummy has only end[0] */
	uint32_t mtu;		      /* 0: kernel default */
	char **ports;		      /* bridge: interfaces of earlier links made its ports */
};

/* Where a start step's {events} goes. */
enum hcase_sink {
	HCASE_SINK_FILE,    /* a file in the case dir */
	HCASE_SINK_FULL,    /* /dev/full: every write fails */
	HCASE_SINK_STALLED, /* a 4 KiB FIFO nobody reads until a drain step or the stop */
	HCASE_SINK_SHARED,  /* a file another writer appends its own lines to all along */
};

struct hcase_route {
	char *ns;
	char *dst; /* "default" or a prefix */
	char *via;
};

struct hcase_topo {
	char **ns; /* logical names; each becomes a fresh netns held by an fd */
	size_t n_ns;
	struct hcase_link *links;
	size_t n_links;
	struct hcase_route *routes;
	size_t n_routes;
};

/* start: a component (or a helper process) and everything prepared before its exec. */
struct hstep_start {
	enum hcase_component component;
	char **args;	  /* appended to the profile's argv; placeholders allowed */
	json_t *vars;	  /* object: placeholder name -> string value for this start */
	char *stdin_file; /* path relative to the source tree */
	bool ready;	  /* wait for the ready byte (default: the profile decides) */
	enum hcase_sink sink;
	bool prefill;	 /* stalled sink: full before the start */
	bool stdin_pipe; /* stdin is a pipe the harness keeps open for feed steps */
	char *command;	 /* a named command of the profile's component ("cleanup"), or NULL */
	char **argv;	 /* a helper process instead of a profile template, or NULL */
	bool has_user;	 /* run as uid:gid, no supplementary groups */
	uint32_t uid, gid;
	uint64_t cap_inh; /* capabilities added to the inheritable set before exec (bit N) */
	bool has_groups;  /* setgroups(2) with exactly these before exec (also without user) */
	uint32_t *groups;
	size_t n_groups;
	json_t *env;			     /* object: extra environment, placeholders filled */
	bool lis_udp, lis_tcp, lis_tcp_busy; /* listeners the harness binds on vars.listen */
	char *lis_udp_at, *lis_tcp_at;	     /* IP:PORT to bind them on instead, or NULL */
	char *lis_pair2;		     /* a second UDP + TCP pair there (fds 6, 7) */
	bool expect_no_ready;		     /* the ready fd must close without a byte */
	/* a mount namespace of its own, prepared before exec */
	bool mount_ns, mount_shared;
	bool uts_ns; /* a UTS namespace of its own (a copy of the harness's host name) */
	char **mount_type, **mount_source, **mount_target; /* NULL-terminated, same length */
};

/* driver: one operation of the scapy driver. */
struct hstep_driver {
	char *op;     /* driver operation (harness/steps/step_driver.c) */
	json_t *args; /* validated against the op's key table */
};

/* client: a real program run to its end. */
struct hstep_client {
	char **argv;
	int expect_exit; /* -1: any */
	char *mnt_of;	 /* run in the mount namespace of this start step's process, or NULL */
};

/* wait: a sleep, events of a type, or lines on a start step's stdout. */
struct hstep_wait {
	uint32_t ms;	  /* fixed sleep */
	bool scaled;	  /* the sleep is multiplied by the run's deadline factor */
	char *event_type; /* or: until this many events of the type arrived */
	uint32_t count;
	char *target;	       /* or: until this start step's stdout has this many lines */
	uint32_t stdout_lines; /* 0: not this form */
};

/* signal: a signal to an earlier start step. */
struct hstep_signal {
	char *target;
	int signo;
};

/* stop: a signal (or none) and a bounded wait for the target's exit. */
struct hstep_stop {
	char *target;
	int signo;	 /* SIGTERM, or 0 to only wait */
	int expect_exit; /* -1: any */
};

/* feed: bytes to a start step's stdin pipe, or its close. */
struct hstep_feed {
	char *target;
	char *file;	  /* bytes to write (relative to the source tree), or NULL */
	bool close_stdin; /* then close the pipe */
};

/* drain: start reading a start step's stalled sink. */
struct hstep_drain {
	char *target;
};

/* file: a file planted in the case dir. */
struct hstep_file {
	char *path;    /* under {case_dir}; placeholders filled */
	char *content; /* placeholders filled */
};

/* The members every step has, then those of its kind (the union member its action names). */
struct hcase_step {
	enum hcase_action action;
	char *name;	     /* handle for later steps and expectations; unique in the case */
	char *ns;	     /* logical netns; NULL: the harness's own */
	uint32_t timeout_ms; /* 0: the case's timeout bounds it */
	union {
		struct hstep_start start;
		struct hstep_driver driver;
		struct hstep_client client;
		struct hstep_wait wait;
		struct hstep_signal signal;
		struct hstep_stop stop;
		struct hstep_feed feed;
		struct hstep_drain drain;
		struct hstep_file file;
	};
};

struct hcase {
	char *id; /* dotted, "flow.tcp.five-tuple" */
	char *title;
	char *file;   /* the file it was loaded from */
	size_t index; /* position in a family file */
	bool family;  /* loaded from an array */
	enum hcase_component component;
	unsigned int uses; /* bit set of components the case starts (includes component) */
	struct hcase_req *reqs;
	size_t n_reqs;
	char **features; /* NULL-terminated: probe feature names, "root", "tool:NAME" */
	uint32_t timeout_ms;
	/* 0, or the flow record version the case needs of its component (record_versions). */
	uint32_t record_version;
	char *fault; /* reference fault that must make the case fail */
	struct hcase_topo topo;
	json_t *upstream; /* NULL or the validated upstream script */
	struct hcase_step *steps;
	size_t n_steps;
	json_t *expect; /* validated expectations object */
};

struct hcase_set {
	struct hcase **cases;
	size_t n;
};

/*
 * Validate one case object; file is used for the error and kept in the case. On failure *err
 * names the path (rooted at "$", or "$[i]" inside a family file).
 */
int hcase_from_json(json_t *obj, const char *file, const char *path, struct hcase **ret,
		    struct hjson_err *err);
void hcase_free(struct hcase *c);

/* Load a file (one case or an array); appends to set. */
int hcase_load_file(struct hcase_set *set, const char *file, struct hjson_err *err);

/*
 * Load every *.json below dir (recursively, sorted by path). on_error is called for each file
 * that fails, and loading goes on; returns the number of files that failed, or -errno when dir
 * itself cannot be read. Duplicate case IDs across files are reported through on_error too.
 */
typedef void (*hcase_error_fn)(const char *file, const struct hjson_err *err, void *userdata);
int hcase_load_dir(struct hcase_set *set, const char *dir, hcase_error_fn on_error, void *userdata);

void hcase_set_free(struct hcase_set *set);

/*
 * Named topologies (cases/README.md "Named topologies"): a case's "topology" may be the name
 * of a file NAME.json in hcase_topology_dir(), SRCDIR/fixtures/topologies (SRCDIR is
 * $CELLCHECK_SRCDIR or the source tree cellcheck was built from); the loader reads it into
 * the case's topology as if it were written inline. hcase_topology_dir() returns a new string
 * (NULL: out of memory). hcase_topology_check() validates one such file the way a case naming
 * it would (for lint): 0, or -EINVAL with *err naming the path inside the file.
 */
char *hcase_topology_dir(void);
int hcase_topology_check(const char *file, struct hjson_err *err);

/* Does the case match any of the globs (fnmatch on the id)? No globs matches everything. */
bool hcase_match(const struct hcase *c, char *const *globs, size_t n_globs);

/*
 * The first expectation of @c that only an implementation doing the work can satisfy (an
 * event, an answer, a record, output, an exit status of its own, a layout: SPEC CHK-CASE-006),
 * as the path of its kind ("expect.events"), or NULL when every expectation is an absence
 * (count 0, empty output, `absent`, `none`). Syntactic: the null profiles' runs in ci/test
 * catch a demand that something else satisfies (a file the case itself planted).
 */
const char *hcase_positive_expectation(const struct hcase *c);

/* The strictest level among the case's requirements. */
enum hcase_level hcase_level(const struct hcase *c);

/* Syntax checks shared with the report and SPEC readers. */
bool hcase_id_valid(const char *id);
bool hcase_req_id_valid(const char *id);

/* The exit status a client or stop step expects, or -1 (any, or a kind without one). */
int hcase_step_expect_exit(const struct hcase_step *s);

/* The step named name among the first upto steps of c, or NULL. */
const struct hcase_step *hcase_step_find(const struct hcase *c, size_t upto, const char *name);

/*
 * Checks the loader shares with the step kinds' parsers (harness/steps/): a string member
 * duplicated (hjson_str's errors; absent and not required: 0 and *ret untouched), an IP address,
 * "A.B.C.D:PORT" / "[v6]:PORT" / "{placeholder}", a signal name ("TERM", ..., "none" is 0).
 */
int hcase_dup_str(json_t *obj, const char *path, const char *key, bool required, char **ret,
		  struct hjson_err *err);
bool hcase_ip_valid(const char *s);
bool hcase_hostport_valid(const char *s);
int hcase_signal_from_name(const char *s, int *ret);

#endif
