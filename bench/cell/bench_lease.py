#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""CPU of one run against the number of live leases (issue 18): not a test, it prints numbers.

Usage: bench_lease.py CELLREF [--before OLD_CELLREF] [--leases 0,250] [--runs 20]

Runs itself again inside a fresh network namespace (unshare --net), with a bridge cbr0
10.88.0.1/24 and one state dir (in a temporary directory, as bench_many.py has it). For each
count K it writes K lease records (10.88.0.2 upwards) owned by a live process (a sleep started
here, named by its PID and start time, so each is live and must be judged so), then starts RUNS
network-only runs one after another (`cellref run` with a bridge network, no DNS, no flows,
workload /bin/true), each of which reaps and allocates under the lease lock while the K others
are there. Reported per binary and K: CPU per run (user + system of the run and everything it
waited for, from wait4), p50 and mean, and wall time p50. With --before, both binaries are run
alternately, run by run, so both see the same machine.
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
SUBNET = "10.88.0.0/24"


def start_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    return int(st[st.rindex(")") + 2:].split()[19])


def fill(state, k, owner):
    d = os.path.join(state, "leases")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, mode=0o700)
    ticks = start_ticks(owner)
    for i in range(k):
        ip = "10.88.0.%d" % (2 + i)
        rec = {"ip": ip, "cellId": "held", "runId": "held-%d" % i, "ownerPid": owner,
               "ownerStart": ticks, "hostIf": "", "bridge": "cbr0", "bridgeCreated": False,
               "cgroup": "", "cellPid": 0, "cellStart": 0}
        with open(os.path.join(d, ip), "w") as f:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def one(cellref, spec, state, tmp):
    t0 = time.monotonic()
    p = subprocess.Popen([cellref, "run", "--spec", spec, "--events",
                          os.path.join(tmp, "events"), "--state-dir", state, "--", "/bin/true"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit("bench_lease: run failed (exit %d): %s" % (p.returncode, err))
    return (ru.ru_utime + ru.ru_stime) * 1e3, wall * 1e3


def inner(bins, counts, runs):
    subprocess.run("ip link set lo up && ip link add cbr0 type bridge && "
                   "ip addr add %s/24 dev cbr0 && ip link set cbr0 up" % GW, shell=True,
                   check=True)
    tmp = tempfile.mkdtemp(prefix="bench-lease-")
    owner = subprocess.Popen(["sleep", "3600"])
    try:
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"specVersion": "1", "cellId": "lease", "runId": "lease-bench",
                       "network": {"mode": "bridge", "bridge": "cbr0", "subnet": SUBNET,
                                   "gateway": GW}}, f)
        state = os.path.join(tmp, "state")
        print("%-8s %6s %5s %12s %12s %12s" % ("binary", "leases", "runs", "cpu p50 ms",
                                               "cpu mean ms", "wall p50 ms"))
        for k in counts:
            fill(state, k, owner.pid)
            res = {name: ([], []) for name, _ in bins}
            for _ in range(runs):
                for name, path in bins:
                    cpu, wall = one(path, spec, state, tmp)
                    res[name][0].append(cpu)
                    res[name][1].append(wall)
            left = len(os.listdir(os.path.join(state, "leases"))) - 1  # .lock
            for name, _ in bins:
                cpu, wall = res[name]
                print("%-8s %6d %5d %12.2f %12.2f %12.2f" % (
                    name, k, runs, statistics.median(cpu), statistics.mean(cpu),
                    statistics.median(wall)), flush=True)
            if left != k:
                print("  leases after: %d, expected the %d held ones" % (left, k))
    finally:
        owner.kill()
        owner.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--inner":
        bins = json.loads(sys.argv[2])
        inner(bins, [int(x) for x in sys.argv[3].split(",")], int(sys.argv[4]))
        return
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    args = sys.argv[1:]

    def opt(name, default):
        if name in args:
            return args[args.index(name) + 1]
        return default
    bins = [["after", os.path.abspath(args[0])]]
    if "--before" in args:
        bins.insert(0, ["before", os.path.abspath(opt("--before", ""))])
    if os.geteuid() != 0:
        raise SystemExit("bench_lease: needs root (namespaces)")
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__),
                          "--inner", json.dumps(bins), opt("--leases", "0,250"),
                          opt("--runs", "20")])


if __name__ == "__main__":
    main()
