#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Many cells at once on one host (issue 18): not a test, it prints numbers.

Usage: bench_many.py CELLREF CELLPROBE [--counts 50,100,250] [--no-bwrap] [--no-pool]

Runs itself again inside a fresh network namespace (unshare --net), so everything it builds
dies with it. Inside, the "host" has a bridge cbr0 10.88.0.1/24 and unbound on 10.88.0.1:53
(www.example.test A 10.88.0.1). One state dir holds every lease, as on a real host.

For each N (at once: N processes spawned back to back, none waited for):
  cellref  N `cellref run` with network (bridge, address allocated from the /24), DNS proxy and
           flow monitor; the workload (cellprobe) prints CLOCK_MONOTONIC first thing
           ("stamp"), asks the proxy for www.example.test ("dnsq"), then blocks on its stdin.
  bwrap    N `bwrap --unshare-net --dev-bind / /` of the same probe ("stamp", then blocks):
           what a user scripts instead, with no network, DNS or flow monitor at all.
Reported: how many started (stamp printed), failures (exit status, no DNS answer), cells
started per second (N / (last stamp - first spawn)), spawn -> exec p50/p99 per cell under that
concurrency, CPU per cell (user + system of each run and of everything it waited for, from
wait4 once it returns: less sensitive to the other load on the machine than the rate), memory per idle cell once all are up (PSS from /proc/PID/smaps_rollup of every
process of the cell but the workload: supervisor + DNS proxy + flow monitor for cellref, the
bwrap process for bwrap), then, once every stdin is closed and every run has returned,
whether anything is left: host ends of veths, leases, processes.

With the largest N of cellref (and unless --no-pool), before the cells end: more cells until
the /24 is full (253 addresses: .2 to .254), then one more, which must be refused cleanly
(exit 16, cell_setup_failed step lease EADDRNOTAVAIL naming 10.88.0.0/24, no veth created).
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

GW = "10.88.0.1"

# The same bridge, unbound and link listing as the single-cell benchmark beside it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cell import links, sh, unbound_start  # noqa: E402

SUBNET = "10.88.0.0/24"
POOL = 253


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))]


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_table():
    """pid -> (ppid, argv) for every process."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        t[int(d)] = (ppid, [a.decode(errors="replace") for a in argv if a])
    return t


def tree(t, root):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, (pp, _) in t.items() if pp == p)
    return out


class Cell:
    def __init__(self, i, argv, tmp, kind):
        self.i = i
        self.out = os.path.join(tmp, "%s-%d.out" % (kind, i))
        self.err = os.path.join(tmp, "%s-%d.err" % (kind, i))
        self.events = os.path.join(tmp, "%s-%d.events" % (kind, i))
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.t0 = time.monotonic_ns()
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=o, stderr=e)
        self.stamp = self.dns = None
        self.rc = None
        self.cpu_ms = None

    def poll_out(self):
        if self.stamp is not None and self.dns is not None:
            return
        with open(self.out) as f:
            for line in f:
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if j.get("step") == "stamp":
                    self.stamp = j["mono"]
                elif j.get("step") == "dnsq":
                    self.dns = j


def cellref_argv(cellref, probe, tmp, i, kind):
    spec = os.path.join(tmp, "spec-%s-%d.json" % (kind, i))
    with open(spec, "w") as f:
        json.dump({"specVersion": "1", "cellId": "many", "runId": "%s-%d" % (kind, i),
                   "network": {"mode": "bridge", "bridge": "cbr0", "subnet": SUBNET,
                               "gateway": GW},
                   "dns": {"upstream": GW + ":53"}, "flows": {"enabled": True}}, f)
    return [cellref, "run", "--spec", spec, "--events",
            os.path.join(tmp, "%s-%d.events" % (kind, i)), "--state-dir",
            os.path.join(tmp, "state"), "--", probe, "stamp", "dnsq", "127.0.0.53", "wait-stdin"]


def wait_started(cells, want_dns, limit_s=600):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        pending = 0
        for c in cells:
            if c.rc is None:
                c.rc = c.p.poll()
            c.poll_out()
            done = c.stamp is not None and (not want_dns or c.dns is not None)
            if not done and c.rc is None:
                pending += 1
        if not pending:
            return
        time.sleep(0.05)


def end_all(cells):
    for c in cells:
        try:
            c.p.stdin.close()
        except OSError:
            pass
    for c in cells:
        if c.p.returncode is not None:  # reaped by a poll: its CPU time is not known
            c.rc = c.p.returncode
            continue
        # wait4: the CPU time of the run and of everything it waited for (its cell, workers).
        _, status, ru = os.wait4(c.p.pid, 0)
        c.rc = c.p.returncode = os.waitstatus_to_exitcode(status)
        c.cpu_ms = (ru.ru_utime + ru.ru_stime) * 1e3


def leases(tmp):
    d = os.path.join(tmp, "state", "leases")
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []


def measure(kind, n, cellref, probe, tmp, pool):
    argvf = {
        "cellref": lambda i: cellref_argv(cellref, probe, tmp, i, "cellref"),
        "bwrap": lambda i: ["bwrap", "--unshare-net", "--dev-bind", "/", "/", probe, "stamp",
                            "wait-stdin"],
    }[kind]
    base_links = set(links())
    load0 = os.getloadavg()[0]
    t0 = time.monotonic_ns()
    cells = [Cell(i, argvf(i), tmp, kind) for i in range(n)]
    t_spawned = time.monotonic_ns()
    wait_started(cells, kind == "cellref")
    started = [c for c in cells if c.stamp is not None]
    last = max((c.stamp for c in started), default=t0)
    res = {"kind": kind, "n": n, "started": len(started), "spawn_s": (t_spawned - t0) / 1e9,
           "all_s": (last - t0) / 1e9, "load": load0}
    res["rate"] = len(started) / res["all_s"] if res["all_s"] > 0 else float("nan")
    lat = [(c.stamp - c.t0) / 1e6 for c in started]
    res["p50_ms"], res["p99_ms"] = pct(lat, 50), pct(lat, 99)
    if kind == "cellref":
        res["dns_failed"] = sum(1 for c in started if not c.dns or c.dns.get("rcode") != 0)
    # Memory once all are idle: every process of the cell but the workload.
    time.sleep(1.0)
    t = proc_table()
    per, by_role = [], {}
    for c in cells:
        if c.p.poll() is not None:
            continue
        kb = 0
        for pid in tree(t, c.p.pid):
            argv = t.get(pid, (0, []))[1]
            if argv and os.path.basename(argv[0]) == os.path.basename(probe):
                continue
            k = pss_kb(pid)
            kb += k
            # cellref: "run", "dns-proxy", "flow-monitor"; bwrap: "bwrap"
            role = argv[1] if kind == "cellref" and len(argv) > 1 else kind
            by_role[role] = by_role.get(role, 0) + k
        per.append(kb)
    res["pss_kb"] = sum(per) / len(per) if per else float("nan")
    res["pss_kb_by_process"] = {k: v / len(per) for k, v in by_role.items()} if per else {}
    res["alive"] = len(per)
    if kind == "cellref":
        ips = set()
        for c in started:
            for line in open(c.events):
                e = json.loads(line)
                if e["type"].endswith(".cell_running"):
                    ips.add(e["data"]["address"])
        res["distinct_addresses"] = len(ips)
    if pool and kind == "cellref":
        res.update(pool_check(cells, cellref, probe, tmp, n))
    end_all(cells)
    res["exit_nonzero"] = sum(1 for c in cells if c.rc != 0)
    cpu = [c.cpu_ms for c in cells[:n] if c.cpu_ms is not None]
    res["cpu_ms"] = sum(cpu) / len(cpu) if cpu else float("nan")
    # The kernel frees the namespaces (and the veths with them) asynchronously.
    t_ret = time.monotonic()
    while time.monotonic() - t_ret < 30:
        left = [l for l in set(links()) - base_links]
        if not left:
            break
        time.sleep(0.1)
    res["clean_s"] = time.monotonic() - t_ret
    res["links_left"] = sorted(set(links()) - base_links)
    res["leases_left"] = leases(tmp)
    # We are a child subreaper: whatever our runs left, orphans included, is below us.
    t = proc_table()
    res["procs_left"] = [p for p in tree(t, os.getpid())
                        if p not in (os.getpid(), UNBOUND_PID[0])]
    return res


def pool_check(cells, cellref, probe, tmp, n):
    """Fill the /24, then one more: the clean refusal (SUP-LEASE-006)."""
    extra = [Cell(10000 + i, cellref_argv(cellref, probe, tmp, 10000 + i, "cellref"), tmp,
                  "cellref") for i in range(POOL - n)]
    wait_started(extra, True)
    cells.extend(extra)
    held = len(leases(tmp))
    before = set(links())
    over = Cell(99999, cellref_argv(cellref, probe, tmp, 99999, "cellref"), tmp, "cellref")
    over.p.stdin.close()
    rc = over.p.wait()
    after = set(links())
    ev = [json.loads(line) for line in open(over.events)]
    failed = [e["data"] for e in ev if e["type"].endswith(".cell_setup_failed")]
    ok = (rc == 16 and len(failed) == 1 and failed[0]["step"] == "lease" and
          failed[0]["errnoName"] == "EADDRNOTAVAIL" and SUBNET in failed[0]["message"] and
          after == before and len(leases(tmp)) == held)
    return {"pool_held": held, "refused_rc": rc, "refused_event": failed[0] if failed else None,
            "refusal_clean": ok, "stderr": open(over.err).read().strip()}


UNBOUND_PID = [0]


def inner(cellref, probe, counts, bwrap, pool):
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    sh("ip link set lo up")
    sh("ip link add cbr0 type bridge && ip addr add %s/24 dev cbr0 && ip link set cbr0 up" % GW)
    tmp = tempfile.mkdtemp(prefix="bench-many-")
    ub = unbound_start(tmp)
    UNBOUND_PID[0] = ub.pid
    rows = []
    try:
        for n in counts:
            rows.append(measure("cellref", n, cellref, probe, tmp, pool and n == max(counts)))
            print(json.dumps(rows[-1]), flush=True)
            if bwrap:
                rows.append(measure("bwrap", n, cellref, probe, tmp, False))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ub.terminate()
        ub.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%-8s %5s %7s %6s %9s %9s %9s %9s %9s %8s %s" % (
        "peer", "N", "started", "failed", "cells/s", "p50 ms", "p99 ms", "CPU ms", "PSS KiB",
        "clean s", "left"))
    for r in rows:
        failed = r["exit_nonzero"] + r.get("dns_failed", 0) + (r["n"] - r["started"])
        left = len(r["links_left"]) + len(r["leases_left"]) + len(r["procs_left"])
        print("%-8s %5d %7d %6d %9.1f %9.1f %9.1f %9.2f %9.0f %8.2f %s" % (
            r["kind"], r["n"], r["started"], failed, r["rate"], r["p50_ms"], r["p99_ms"],
            r["cpu_ms"], r["pss_kb"], r["clean_s"], "nothing" if not left else left))
    by = {(r["kind"], r["n"]): r for r in rows}
    for n in counts:
        if ("bwrap", n) in by:
            a, b = by[("cellref", n)], by[("bwrap", n)]
            print("N=%d: cellref/bwrap cells per second %.2f (goal >= 0.33); CPU per cell "
                  "bwrap/cellref %.2f (the rate ratio when both are CPU-bound); PSS per idle "
                  "cell %.1fx bwrap's" % (n, a["rate"] / b["rate"], b["cpu_ms"] / a["cpu_ms"],
                                          a["pss_kb"] / b["pss_kb"]))
    for r in rows:
        if "refused_rc" in r:
            print("pool: %d leases held, the next run: exit %d, %s" % (
                r["pool_held"], r["refused_rc"],
                "clean refusal" if r["refusal_clean"] else "NOT a clean refusal: %s" % r))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split(",")],
              sys.argv[5] == "1", sys.argv[6] == "1")
        return
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    counts = "50,100,250"
    if "--counts" in sys.argv:
        counts = sys.argv[sys.argv.index("--counts") + 1]
    bwrap = "--no-bwrap" not in sys.argv and shutil.which("bwrap") is not None
    pool = "--no-pool" not in sys.argv
    if os.geteuid() != 0:
        raise SystemExit("bench_many: needs root (namespaces)")
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__),
                          "--inner", os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]),
                          counts, "1" if bwrap else "0", "1" if pool else "0"])


if __name__ == "__main__":
    main()
