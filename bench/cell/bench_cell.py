#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Supervisor benchmark: cell start latency of `cellref run` against the tools a user would
script instead, measured side by side in one run. Not a test: it prints numbers and ratios.

Usage: bench_cell.py CELLREF CELLPROBE [--cells N] [--before CELLREF_OLD]

Runs itself again inside a fresh network namespace (unshare --net), so everything it builds
dies with it. Inside, the "host" has a bridge cbr0 10.88.0.1/24 and unbound on 10.88.0.1:53.

Measured per cell (N cells each, interleaved round by round so drift hits every peer alike):
  cellref      `cellref run` with network (bridge), DNS proxy and flow monitor on;
               spawn -> workload exec (the probe prints CLOCK_MONOTONIC first thing),
               spawn -> first DNS answer through the proxy, networkSetupUs and teardownUs
               from its events, and the time until the host is clean again after it returns.
  ip-script    the same network built by a shell script of `ip` commands (netns, veth with
               the cell end moved in, bridge port, addresses, routes, links up), then
               `ip netns exec` of the probe; its network part is timed on its own.
  cellref-bare `cellref run` of the smallest spec (no network, DNS or flows): the namespaces
               and the filesystem view (SUP-FS-*) alone; spawn -> exec.
  before       with --before: the same two cellref rows with another cellref binary (one built
               without the filesystem view, say), interleaved with the others, so that the cost
               of a change is measured side by side in one run.
  unshare      `unshare --net --mount --pid --uts --ipc --fork` of the probe (no network).
  bwrap        `bwrap --unshare-net --dev-bind / /` of the probe (Debian's bubblewrap).
  bwrap-iso    `bwrap --ro-bind / / --tmpfs /tmp --dev /dev --proc /proc --unshare-net`: the
               isolation a cell gets (read-only root, private /tmp, minimal /dev, own /proc).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

GW = "10.88.0.1"


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def ms(ns):
    return ns / 1e6


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def probe_stamps(out):
    stamps = {}
    for line in out.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        stamps.setdefault(j.get("step"), j)
    return stamps


def links():
    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, text=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def unbound_start(tmp):
    conf = os.path.join(tmp, "unbound.conf")
    with open(conf, "w") as f:
        f.write("server:\n\tinterface: %s\n\tport: 53\n\tdo-ip6: no\n"
                "\taccess-control: 10.88.0.0/16 allow\n\tchroot: \"\"\n\tusername: \"\"\n"
                "\tdirectory: \"/\"\n\tpidfile: \"\"\n\tuse-syslog: no\n\tlogfile: \"\"\n"
                "\tverbosity: 0\n\tnum-threads: 1\n"
                "\tlocal-zone: \"example.test.\" static\n"
                "\tlocal-data: \"www.example.test. 300 IN A %s\"\n"
                "remote-control:\n\tcontrol-enable: no\n" % (GW, GW))
    p = subprocess.Popen(["/usr/sbin/unbound", "-d", "-c", conf], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def run_bare(cellref, probe, tmp, i):
    spec = os.path.join(tmp, "bare.json")
    with open(spec, "w") as f:
        json.dump({"specVersion": "1", "cellId": "bench", "runId": "bare-%d" % i}, f)
    t0 = time.monotonic_ns()
    r = subprocess.run([cellref, "run", "--spec", spec, "--state-dir",
                        os.path.join(tmp, "state"), "--", probe, "stamp"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit("cellref run failed (%d): %s" % (r.returncode, r.stderr))
    return {"exec": probe_stamps(r.stdout)["stamp"]["mono"] - t0}


def run_cellref(cellref, probe, tmp, i):
    spec = os.path.join(tmp, "spec.json")
    with open(spec, "w") as f:
        json.dump({"specVersion": "1", "cellId": "bench", "runId": "bench-%d" % i,
                   "network": {"mode": "bridge", "bridge": "cbr0", "subnet": "10.88.0.0/24",
                               "gateway": GW},
                   "dns": {"upstream": GW + ":53"}, "flows": {"enabled": True}}, f)
    ev = os.path.join(tmp, "events.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    t0 = time.monotonic_ns()
    r = subprocess.run([cellref, "run", "--spec", spec, "--events", ev, "--state-dir",
                        os.path.join(tmp, "state"), "--", probe, "stamp", "dnsq", "127.0.0.53"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t_ret = time.monotonic_ns()
    if r.returncode != 0:
        raise SystemExit("cellref run failed (%d): %s" % (r.returncode, r.stderr))
    # Everything gone: the host end of the veth disappears with the cell.
    base = set(links())
    while any(n.startswith("cr") for n in base):
        if time.monotonic_ns() - t_ret > 1e9:
            break
        base = set(links())
    t_clean = time.monotonic_ns()
    st = probe_stamps(r.stdout)
    events = [json.loads(line) for line in open(ev)]
    data = {e["type"].rsplit(".", 1)[1]: e["data"] for e in events}
    if st.get("dnsq", {}).get("rcode") != 0:
        raise SystemExit("no DNS answer through the proxy: %s" % r.stdout)
    return {
        "exec": st["stamp"]["mono"] - t0,
        "dns": st["dnsq"]["mono"] - t0,
        "net": data["cell_running"]["networkSetupUs"] * 1000,
        "teardown": data["cell_exited"]["teardownUs"] * 1000,
        "clean": t_clean - t_ret,
        "total": t_ret - t0,
    }


IP_NET = """set -e
ip netns add bn{i}
ip link add bh{i} type veth peer name eth0
ip link set eth0 netns bn{i}
ip link set bh{i} master cbr0 up
ip -n bn{i} addr add 10.88.{hi}.{lo}/16 dev eth0
ip -n bn{i} link set eth0 up
ip -n bn{i} link set lo up
ip -n bn{i} route add default via {gw}
"""


def run_ip(probe, i):
    hi, lo = 1 + i // 250, 2 + i % 250
    net = IP_NET.format(i=i, hi=hi, lo=lo, gw=GW)
    t0 = time.monotonic_ns()
    subprocess.run(["bash", "-c", net], check=True)
    t_net = time.monotonic_ns()
    r = subprocess.run(["ip", "netns", "exec", "bn%d" % i, probe, "stamp"],
                       stdout=subprocess.PIPE, text=True, check=True)
    st = probe_stamps(r.stdout)
    t1 = time.monotonic_ns()
    subprocess.run(["ip", "netns", "del", "bn%d" % i], check=True)
    t2 = time.monotonic_ns()
    return {"net": t_net - t0, "exec": st["stamp"]["mono"] - t0, "teardown": t2 - t1}


def run_cmd(argv):
    t0 = time.monotonic_ns()
    r = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True)
    return {"exec": probe_stamps(r.stdout)["stamp"]["mono"] - t0}


def inner(cellref, probe, cells, before=None):
    sh("ip link set lo up")
    sh("ip link add cbr0 type bridge && ip addr add %s/16 dev cbr0 && ip link set cbr0 up" % GW)
    tmp = tempfile.mkdtemp(prefix="bench-cell-")
    ub = unbound_start(tmp)
    have_bwrap = shutil.which("bwrap") is not None
    res = {"cellref": [], "ip-script": [], "unshare": [], "bwrap": [], "cellref-bare": [],
           "before": [], "before-bare": [], "bwrap-iso": []}
    try:
        for i in range(cells):
            res["cellref"].append(run_cellref(cellref, probe, tmp, i))
            res["cellref-bare"].append(run_bare(cellref, probe, tmp, i))
            if before:
                res["before"].append(run_cellref(before, probe, tmp, i))
                res["before-bare"].append(run_bare(before, probe, tmp, i))
            res["ip-script"].append(run_ip(probe, i))
            res["unshare"].append(run_cmd(["unshare", "--net", "--mount", "--pid", "--uts",
                                           "--ipc", "--fork", probe, "stamp"]))
            if have_bwrap:
                res["bwrap"].append(run_cmd(["bwrap", "--unshare-net", "--dev-bind", "/", "/",
                                             probe, "stamp"]))
                res["bwrap-iso"].append(run_cmd(["bwrap", "--ro-bind", "/", "/", "--tmpfs", "/tmp",
                                                 "--dev", "/dev", "--proc", "/proc",
                                                 "--unshare-net", probe, "stamp"]))
    finally:
        ub.terminate()
        ub.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name, key):
        v = [m[key] for m in res[name] if key in m]
        if not v:
            return None
        return pct(v, 50), pct(v, 99)

    print("cells per peer: %d (interleaved)" % cells)
    print("%-34s %10s %10s" % ("metric", "p50 ms", "p99 ms"))
    lines = [
        ("cellref: spawn -> exec", "cellref", "exec"),
        ("cellref: spawn -> first DNS answer", "cellref", "dns"),
        ("cellref: network setup", "cellref", "net"),
        ("cellref: teardown (in supervisor)", "cellref", "teardown"),
        ("cellref: return -> host clean", "cellref", "clean"),
        ("cellref: whole run", "cellref", "total"),
        ("cellref-bare: spawn -> exec", "cellref-bare", "exec"),
        ("before: spawn -> exec", "before", "exec"),
        ("before: spawn -> first DNS answer", "before", "dns"),
        ("before-bare: spawn -> exec", "before-bare", "exec"),
        ("ip-script: network setup", "ip-script", "net"),
        ("ip-script: spawn -> exec", "ip-script", "exec"),
        ("ip-script: teardown (netns del)", "ip-script", "teardown"),
        ("unshare: spawn -> exec", "unshare", "exec"),
        ("bwrap --unshare-net: spawn -> exec", "bwrap", "exec"),
        ("bwrap-iso: spawn -> exec", "bwrap-iso", "exec"),
    ]
    got = {}
    for label, name, key in lines:
        r = row(name, key)
        if r is None:
            print("%-34s %10s %10s" % (label, "n/a", "n/a"))
            continue
        got[(name, key)] = r
        print("%-34s %10.3f %10.3f" % (label, ms(r[0]), ms(r[1])))
    n_ours, n_ip = got[("cellref", "net")][0], got[("ip-script", "net")][0]
    print("ratio ip-script/cellref network setup p50: %.1fx (goal >= 6x)" % (n_ip / n_ours))
    print("ratio ip-script/cellref spawn->exec p50: %.2fx" %
          (got[("ip-script", "exec")][0] / got[("cellref", "exec")][0]))
    if ("bwrap", "exec") in got:
        print("ratio cellref/bwrap spawn->exec p50: %.2fx (cellref also builds network, DNS, flows)"
              % (got[("cellref", "exec")][0] / got[("bwrap", "exec")][0]))
    if ("before-bare", "exec") in got:
        print("filesystem view cost p50 (cellref-bare - before-bare): %.3f ms; with network, DNS "
              "and flows: exec %.3f ms, first DNS answer %.3f ms (goal < 1 ms)" % (
                  ms(got[("cellref-bare", "exec")][0] - got[("before-bare", "exec")][0]),
                  ms(got[("cellref", "exec")][0] - got[("before", "exec")][0]),
                  ms(got[("cellref", "dns")][0] - got[("before", "dns")][0])))
    if ("bwrap-iso", "exec") in got:
        print("ratio cellref-bare/bwrap-iso spawn->exec p50: %.2fx (the same isolation)" %
              (got[("cellref-bare", "exec")][0] / got[("bwrap-iso", "exec")][0]))
    print("goals: network p50 < 2 ms (%.3f), p99 < 5 ms (%.3f); first DNS answer p50 < 10 ms "
          "(%.3f); teardown < 1 ms (%.3f); clean < 100 ms (%.3f)" % (
              ms(got[("cellref", "net")][0]), ms(got[("cellref", "net")][1]),
              ms(got[("cellref", "dns")][0]), ms(got[("cellref", "teardown")][0]),
              ms(got[("cellref", "clean")][1])))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
        return
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cells = 50
    if "--cells" in sys.argv:
        cells = int(sys.argv[sys.argv.index("--cells") + 1])
    before = []
    if "--before" in sys.argv:
        before = [os.path.abspath(sys.argv[sys.argv.index("--before") + 1])]
    if os.geteuid() != 0:
        raise SystemExit("bench_cell: needs root (namespaces)")
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__),
                          "--inner", os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]),
                          str(cells)] + before)


if __name__ == "__main__":
    main()
