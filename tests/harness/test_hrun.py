#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`cellcheck run`, `selftest` and `cleanup` end to end (TAP): the decoder cases against the
reference pass and write all five reports; a wrong expectation FAILs with an artifacts folder
and reproduce.sh; a hung component is an ERROR (TIMEOUT) inside its bound; known issues give
XFAIL, XPASS and, once expired, the plain status; shards 1/2 + 2/2 merged equal the unsharded
run; --jobs 2 equals --jobs 1; a process escaping its group is an ERROR; SIGKILL of cellcheck
mid-run leaves no process and `cleanup` removes its temp dir; a topology case (root only) runs
in fd-held namespaces; expect.btf.record_version SKIPs for a profile that neither declares the
version nor has the struct; usage and setup errors exit 2.

Profiles here start /bin/sleep with a unique argument so a leftover process is found by its
command line. Usage: test_hrun.py PATH/TO/cellcheck
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jsonschema

sys.dont_write_bytecode = True
from taprun import Tap, check  # noqa: E402 (after the line above: no __pycache__ in the tree)

CELLCHECK = os.path.abspath(sys.argv[1])
SRCDIR = os.environ.get("CELLCHECK_SRCDIR", os.path.join(os.path.dirname(__file__), "../.."))
SCHEMA = json.load(open(os.path.join(SRCDIR, "reports/report.schema.json")))
UPSTREAM_CASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_hrun.upstream.json")
REPORTS = ["report.json", "junit.xml", "report.tap", "report.md", "report.html"]
MARK = "%d.%d" % (os.getpid() % 1000 + 100, int(time.time()) % 1000)  # unique sleep length


def cc(*args, env=None, timeout=120):
    return subprocess.run([CELLCHECK, *args], capture_output=True, text=True,
                          errors="surrogateescape", env=env, timeout=timeout)


def procs_with(text):
    """PIDs whose command line contains text (leftover detection)."""
    found = []
    for d in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(d, "rb") as f:
                if text.encode() in f.read().replace(b"\0", b" "):
                    found.append(int(d.split("/")[2]))
        except OSError:
            pass
    return found


def decoder_case(cid, expect=None, timeout_ms=5000, stop_exit=2, sleeper=False):
    start = {"action": "start", "name": "decoder"}
    if not sleeper:
        start.update(args=["unexpected-operand"], stdin="fixtures/records/empty.frames")
    return {"id": cid, "title": "test case " + cid, "component": "decoder",
            "requirements": [{"id": "FLOW-FRM-011", "level": "MUST"}],
            "timeout_ms": timeout_ms, "fault": "decode.usage_ignored",
            "steps": [start,
                      {"action": "stop", "target": "decoder", "signal": "none",
                       "expect_exit": stop_exit}],
            "expect": expect if expect is not None else {"stdout": {"empty": True}}}


def sleeper_profile(t, name, argv, comp="decoder"):
    return t.write_json(f"{name}.json", {"profileVersion": 1, "name": name, "components": {
        comp: {"argv": argv, "ready": "none", "stop_timeout_ms": 3000}}})


def report(d):
    return json.load(open(os.path.join(d, "report.json")))


def statuses(d):
    return {c["id"]: c["status"] for c in report(d)["cases"]}


def test_decoder_pass(t):
    out = t.path("dec")
    r = cc("run", "--filter", "decoder.*", "--report-dir", out)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    for f in REPORTS:
        check(os.path.getsize(os.path.join(out, f)) > 0, f"{f} missing or empty")
    rep = report(out)
    jsonschema.validate(rep, SCHEMA)
    check(len(rep["cases"]) >= 4, rep["cases"])
    check(all(c["status"] == "PASS" for c in rep["cases"]), statuses(out))
    check(rep["summary"]["verdict"] == "PASS", rep["summary"])
    check(len(rep["kernel"]["configSha256"]) in (64, 11), rep["kernel"])
    check(any(f["role"] == "binary" for f in rep["profile"]["files"]), rep["profile"])
    check("verdict: PASS" in r.stdout, r.stdout)
    tm = rep.get("timing", {})
    check(tm.get("source") == "calibrated" and 1 <= tm.get("scale", 0) <= 100, rep.get("timing"))


def test_failing_case(t):
    cases = t.path("fail", "cases", "x.json")
    t.write_json("fail/cases/x.json", decoder_case("decoder.test.bad-expect",
                                              {"stdout": {"regex": "^never-matches$"}}))
    out = t.path("fail", "out")
    r = cc("run", "--cases", os.path.dirname(cases), "--report-dir", out)
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    c = report(out)["cases"][0]
    check(c["status"] == "FAIL" and "never-matches" in c["message"], c)
    check(c["artifacts"] == "artifacts/decoder.test.bad-expect", c)
    art = os.path.join(out, c["artifacts"])
    repro = os.path.join(art, "reproduce.sh")
    check(os.access(repro, os.X_OK), "reproduce.sh not executable")
    text = open(repro).read()
    check("--filter 'decoder.test.bad-expect'" in text and "--cases" in text, text)
    check(os.path.exists(os.path.join(art, "decoder.stderr")), os.listdir(art))
    check("--filter decoder.test.bad-expect" in c["reproduce"], c)
    # reproduce.sh really reproduces (into another report dir), from another directory, and
    # names no sudo when it need not (root may have none).
    check(os.path.isabs(text.split("--cases '")[1].split("'")[0]), text)
    r2 = subprocess.run([repro, "--report-dir", t.path("fail", "again")], capture_output=True,
                        text=True, timeout=60, cwd="/")
    check(r2.returncode == 1 and "FAIL" in r2.stdout, r2.stdout + r2.stderr)
    check(report(t.path("fail", "again"))["cases"][0]["status"] == "FAIL", "same status")


def test_problems(t):
    """CHK-RUN-004: every problem, not the first; the status is the worst."""
    t.write_json("pr/cases/x.json", decoder_case("decoder.test.two-problems",
                                            {"stdout": {"regex": "^never$"},
                                             "stderr": {"regex": "^nor-this$"}}, stop_exit=3))
    out = t.path("pr", "out")
    r = cc("run", "--cases", t.path("pr", "cases"), "--report-dir", out)
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    rep = report(out)
    jsonschema.validate(rep, SCHEMA)
    c = rep["cases"][0]
    probs = c.get("problems", [])
    check(len(probs) == 3 and all(p["status"] == "FAIL" for p in probs), probs)
    check("exit status 2, expected exit status 3" in probs[0]["message"], probs)
    check(probs[1]["message"].startswith("expect.stdout") and
          probs[2]["message"].startswith("expect.stderr"), probs)
    check(c["message"].endswith("(and 2 more)"), c["message"])
    tap = open(os.path.join(out, "report.tap")).read()
    check(tap.count("    - status: FAIL") == 3, tap)
    check("Problems (3)" in open(os.path.join(out, "report.html")).read(), "html lists them")


def test_signal_death(t):
    """CHK-RUN-014: death by a signal is not an exit status."""
    prof = t.write_json("sig.json", {"profileVersion": 1, "name": "sig", "components": {
        "decoder": {"argv": ["/bin/sh", "-c", "kill -TERM $$"], "ready": "none",
                    "stop_timeout_ms": 3000}}})
    t.write_json("sig/cases/x.json", decoder_case("decoder.test.sig", {"stdout": {"empty": True}},
                                             stop_exit=0, sleeper=True))
    out = t.path("sig", "out")
    r = cc("run", "--profile", prof, "--cases", t.path("sig", "cases"), "--report-dir", out)
    c = report(out)["cases"][0]
    check(c["status"] == "FAIL" and "killed by signal 15 (SIGTERM), expected exit status 0"
          in c["message"], c)
    prof = t.write_json("ex.json", {"profileVersion": 1, "name": "ex", "components": {
        "decoder": {"argv": ["/bin/sh", "-c", "exit 143"], "ready": "none",
                    "stop_timeout_ms": 3000}}})
    r = cc("run", "--profile", prof, "--cases", t.path("sig", "cases"), "--report-dir", out)
    c = report(out)["cases"][0]
    check(c["status"] == "FAIL" and "exit status 143, expected exit status 0" in c["message"],
          c)


def test_signal_defaults(t):
    """CHK-PROF-006: an IUT starts with every signal default and none blocked, whatever the
    harness inherited (here SIGHUP and SIGUSR1 ignored, SIGUSR2 blocked, as under nohup)."""
    prof = t.write_json("sd.json", {"profileVersion": 1, "name": "sd", "components": {
        "decoder": {"argv": ["/bin/sh", "-c",
                             "grep -E '^Sig(Ign|Blk):' /proc/self/status"],
                    "ready": "none", "stop_timeout_ms": 3000}}})
    # A fresh sh ignores nothing and blocks nothing by itself. /proc lists SigBlk first.
    t.write_json("sd/cases/x.json", decoder_case(
        "decoder.test.sd", {"stdout": {"regex": "^SigBlk:\t0{16}\nSigIgn:\t0{16}\n$"}},
        stop_exit=0, sleeper=True))
    out = t.path("sd", "out")

    def pre():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    r = subprocess.run([CELLCHECK, "run", "--profile", prof, "--cases", t.path("sd", "cases"),
                        "--report-dir", out], capture_output=True, text=True, timeout=120,
                       preexec_fn=pre)
    c = report(out)["cases"][0]
    check(r.returncode == 0 and c["status"] == "PASS", (r.stdout, r.stderr, c))


def test_ready_exit(t):
    """An IUT that dies before its ready byte is reported at once, with status and stderr."""
    mark = MARK + "5"
    # The ready fd lives on in a background child: only the death itself ends the wait.
    prof = t.write_json("rd.json", {"profileVersion": 1, "name": "rd", "components": {
        "decoder": {"argv": ["/bin/sh", "-c", f"/bin/sleep {mark} & echo cannot bind >&2; "
                             "exit 3", "{ready_fd}"], "start_timeout_ms": 20000,
                    "stop_timeout_ms": 3000}}})
    t.write_json("rd/cases/x.json", decoder_case("decoder.test.ready", {"stdout": {"empty": True}},
                                            stop_exit=0, sleeper=True))
    out = t.path("rd", "out")
    t0 = time.monotonic()
    r = cc("run", "--profile", prof, "--cases", t.path("rd", "cases"), "--report-dir", out,
           "--time-scale", "1")
    took = time.monotonic() - t0
    c = report(out)["cases"][0]
    check("ended before its ready byte (exit status 3)" in c["message"] and
          '"cannot bind"' in c["message"], c)
    check(took < 15, f"took {took:.1f} s: waited for the 20 s start timeout")
    check(not procs_with(f"sleep {mark}"), "sleep left behind")


def test_process_messages(t):
    """Issue 11: every process message names the expected outcome and what was seen, with
    the end of the process's stderr (why it failed, what it was doing)."""
    mark = MARK + "7"

    def run_one(name, argv, steps, ready="none"):
        prof = t.write_json(f"pm/{name}.json", {"profileVersion": 1, "name": name, "components": {
            "decoder": {"argv": argv, "ready": ready, "stop_timeout_ms": 400,
                        "start_timeout_ms": 1500}}})
        case = decoder_case(f"decoder.test.{name}", {"stdout": {"empty": True}}, sleeper=True)
        case["steps"] = [{"action": "start", "name": "decoder"}] + steps
        t.write_json(f"pm/{name}/cases/x.json", case)
        out = t.path("pm", name, "out")
        cc("run", "--profile", prof, "--cases", t.path("pm", name, "cases"), "--report-dir",
           out, "--time-scale", "1")
        c = report(out)["cases"][0]
        check(c["status"] == "FAIL", c)
        return c["problems"][0]["message"]

    # A stop that does not end it: the signal, the expected outcome, what it was doing.
    # Ready only once SIGTERM is ignored, so the stop cannot come first.
    m = run_one("stuck", ["/bin/sh", "-c", "trap '' TERM; echo draining >&2; echo >&$0; "
                          f"exec /bin/sleep {mark}", "{ready_fd}"],
                [{"action": "stop", "target": "decoder", "expect_exit": 2}], ready="fd")
    check(m.startswith("stop decoder: still running ") and
          "ms after signal 15 (SIGTERM), expected exit status 2 by then; "
          'stderr ends: "draining"' in m, m)
    # An exit status that is not the expected one: why, from its stderr.
    m = run_one("exit1", ["/bin/sh", "-c", "echo 'cannot open /x/events.jsonl' >&2; exit 1"],
                [{"action": "stop", "target": "decoder", "signal": "none", "expect_exit": 0}])
    check(m.startswith("stop decoder: exit status 1") and
          'expected exit status 0; stderr ends: "cannot open /x/events.jsonl"' in m, m)
    # A client: its argv[0], the outcome, the expected one, its stderr.
    m = run_one("client", ["/bin/sleep", mark],
                [{"action": "client", "name": "cat", "argv": ["/bin/cat", t.path("pm/none")],
                  "expect_exit": 0},
                 {"action": "stop", "target": "decoder", "expect_exit": 143}])
    check(m.startswith("client cat (/bin/cat): exit status 1, expected exit status 0; "
                       "stderr ends: ") and "No such file or directory" in m, m)
    # A client that does not end in its time.
    m = run_one("client-hung", ["/bin/sleep", mark],
                [{"action": "client", "name": "hang", "timeout_ms": 1500,
                  "argv": ["/bin/sh", "-c", f"echo waiting for a peer >&2; exec /bin/sleep {mark}"],
                  "expect_exit": 0},
                 {"action": "stop", "target": "decoder", "expect_exit": 143}])
    check(m == "client hang (/bin/sh): still running after 1500 ms, expected exit status 0 by "
          'then; stderr ends: "waiting for a peer"', m)
    # No ready byte: what was expected, and what the IUT was saying.
    m = run_one("not-ready", ["/bin/sh", "-c", f"echo still loading >&2; exec /bin/sleep {mark}",
                              "{ready_fd}"], [], ready="fd")
    check(m == "start decoder: not ready within 1500 ms, expected a byte on the ready fd; "
          'stderr ends: "still loading"', m)
    check(not procs_with(f"sleep {mark}"), "sleep left behind")


def test_leftover_keeps_fail(t):
    """CHK-AUDIT-001: a leftover is an ERROR that keeps the case's other problems."""
    prof = sleeper_profile(t, "leakfail", ["/bin/sh", "-c",
                                           f"setsid /bin/sleep {MARK}6 & sleep 0.2; exit 0"])
    t.write_json("lf/cases/e.json", decoder_case("decoder.test.leakfail",
                                            {"stdout": {"regex": "^never$"}},
                                            stop_exit=0, sleeper=True))
    out = t.path("lf", "out")
    cc("run", "--profile", prof, "--cases", t.path("lf", "cases"), "--report-dir", out)
    c = report(out)["cases"][0]
    kinds = [(p["status"], p["message"].split(":")[0]) for p in c.get("problems", [])]
    check(c["status"] == "ERROR", c)
    check(("FAIL", "expect.stdout") in kinds and any(s == "ERROR" for s, _ in kinds), kinds)
    check(not procs_with(f"sleep {MARK}6"), "escaped sleep left behind")


def test_timeout(t):
    prof = sleeper_profile(t, "sleeper", ["/bin/sleep", MARK])
    t.write_json("to/cases/t.json", decoder_case("decoder.test.timeout", timeout_ms=300, stop_exit=0,
                                                   sleeper=True))
    out = t.path("to", "out")
    t0 = time.monotonic()
    r = cc("run", "--profile", prof, "--cases", t.path("to", "cases"), "--report-dir", out)
    took = time.monotonic() - t0
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    c = report(out)["cases"][0]
    check(c["status"] == "ERROR" and c["message"].startswith("TIMEOUT"), c)
    check(took < 5, f"took {took:.1f} s")
    check(not procs_with("sleep " + MARK), "sleep left behind")


def test_escape(t):
    prof = sleeper_profile(t, "escaper", ["/bin/sh", "-c",
                                          f"setsid /bin/sleep {MARK}1 & sleep 0.2; exit 0"])
    t.write_json("esc/cases/e.json", decoder_case("decoder.test.escape", stop_exit=0, sleeper=True))
    out = t.path("esc", "out")
    r = cc("run", "--profile", prof, "--cases", t.path("esc", "cases"), "--report-dir", out)
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    c = report(out)["cases"][0]
    check(c["status"] == "ERROR" and "escaped its process group" in c["message"], c)
    check(not procs_with(f"sleep {MARK}1"), "escaped sleep left behind")


def test_known_issues(t):
    d = t.path("ki", "cases")
    os.makedirs(d)
    for f in glob.glob(os.path.join(SRCDIR, "cases/decoder/*.json")):
        shutil.copy(f, d)
    t.write_json("ki/cases/bad.json", decoder_case("decoder.test.bad-expect",
                                              {"stdout": {"regex": "^never$"}}))
    t.write_json("ki/cases/bad2.json", decoder_case("decoder.test.bad-expired",
                                               {"stdout": {"regex": "^never$"}}))
    ki = t.write_json("ki/known.json", {"issues": [
        {"case": "decoder.test.bad-expect", "reason": "known bad", "link": "https://b/1",
         "expires": "2099-01-01"},
        {"case": "decoder.usage.operand", "reason": "thought broken"},
        {"case": "decoder.test.bad-expired", "reason": "old", "expires": "2000-01-01"}]})
    out = t.path("ki", "out")
    r = cc("run", "--cases", d, "--known-issues", ki, "--report-dir", out)
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    s = statuses(out)
    check(s["decoder.test.bad-expect"] == "XFAIL", s)
    check(s["decoder.usage.operand"] == "XPASS", s)
    check(s["decoder.test.bad-expired"] == "FAIL", s)
    check("expired" in r.stderr, r.stderr)
    rep = report(out)
    jsonschema.validate(rep, SCHEMA)
    xf = [c for c in rep["cases"] if c["status"] == "XFAIL"][0]
    check("known bad" in xf["reason"] and "https://b/1" in xf["reason"], xf)
    # Only the XFAIL: the run passes.
    ki2 = t.write_json("ki/known2.json", {"issues": [{"case": "decoder.test.bad-*", "reason": "k"}]})
    r = cc("run", "--cases", d, "--known-issues", ki2, "--report-dir", t.path("ki", "o2"))
    check(r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    r = cc("run", "--known-issues", t.write_json("ki/bad.json", {"issues": [{"case": 1}]}))
    check(r.returncode == 2 and "known issues" in r.stderr, r.stderr)


def test_shards(t):
    full, s1, s2 = t.path("sh", "full"), t.path("sh", "s1"), t.path("sh", "s2")
    check(cc("run", "--filter", "decoder.*", "--report-dir", full).returncode == 0, "full")
    check(cc("run", "--filter", "decoder.*", "--shard", "1/2", "--report-dir", s1)
          .returncode == 0, "shard 1")
    check(cc("run", "--filter", "decoder.*", "--shard", "2/2", "--report-dir", s2)
          .returncode == 0, "shard 2")
    a, b = statuses(s1), statuses(s2)
    check(a and b and not set(a) & set(b), (a, b))
    check(report(s1)["shard"] == {"index": 1, "count": 2}, report(s1).get("shard"))
    m = t.path("sh", "merged", "report.json")
    r = cc("merge", "-o", m, os.path.join(s1, "report.json"), os.path.join(s2, "report.json"))
    check(r.returncode == 0, r.stderr)
    merged = {c["id"]: c["status"] for c in json.load(open(m))["cases"]}
    check(merged == statuses(full), (merged, statuses(full)))


def test_jobs(t):
    one, two = t.path("j", "1"), t.path("j", "2")
    check(cc("run", "--filter", "decoder.*", "--report-dir", one).returncode == 0, "jobs 1")
    r = cc("run", "--filter", "decoder.*", "--jobs", "2", "--repeat", "2", "--report-dir", two)
    check(r.returncode == 0, r.stdout + r.stderr)
    check(statuses(one) == statuses(two), (statuses(one), statuses(two)))
    check(all(c["runs"] == 2 and c["flakes"] == 0 for c in report(two)["cases"]),
          report(two)["cases"])


def test_load(t):
    """--load N: the run beside N CPU hogs; each case's slowest run and deadline recorded; no
    hog survives the run (they are forks of cellcheck: same command line)."""
    out = t.path("load", "out")
    r = cc("run", "--filter", "decoder.usage.*", "--repeat", "2", "--load", "2",
           "--report-dir", out)
    check(r.returncode == 0, r.stdout + r.stderr)
    check("2 CPU hogs" in r.stderr and "closest to its deadline:" in r.stdout,
          r.stdout + r.stderr)
    for c in report(out)["cases"]:
        check(c["runs"] == 2 and 0 < c["slowestMs"] <= c["deadlineMs"], c)
    left = procs_with(out)
    check(not left, "hogs left behind: %s" % left)
    check("Closest to their deadline" in open(os.path.join(out, "report.md")).read(),
          "report.md lacks the deadline table")


def test_sigkill(t):
    mark = MARK + "2"
    prof = sleeper_profile(t, "long", ["/bin/sleep", mark])
    t.write_json("k/cases/l.json", decoder_case("decoder.test.long", timeout_ms=60000, stop_exit=0,
                                                sleeper=True))
    p = subprocess.Popen([CELLCHECK, "run", "--profile", prof, "--cases", t.path("k", "cases"),
                          "--jobs", "2", "--report-dir", t.path("k", "out")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not procs_with("sleep " + mark) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(procs_with("sleep " + mark), "the case never started")
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 3
    while procs_with("sleep " + mark) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(not procs_with("sleep " + mark), "process left behind after SIGKILL")
    tmp = os.environ.get("TMPDIR", "/tmp")
    left = glob.glob(os.path.join(tmp, f"cellcheck-run.{p.pid}.*"))
    check(left, "expected the killed run's temp dir (cleanup's evidence)")
    r = cc("cleanup")
    check(r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr)
    check(not glob.glob(os.path.join(tmp, f"cellcheck-run.{p.pid}.*")), "temp dir remains")


def test_cleanup_spares_locked(t):
    """A run's temp dir is locked while in use: cleanup leaves it even when its pid is gone
    (a harness in another pid namespace), and removes it once the lock is free."""
    import fcntl
    tmp = os.environ.get("TMPDIR", "/tmp")
    # A pid that cannot be alive: above the kernel's pid_max.
    d = tempfile.mkdtemp(prefix="cellcheck-run.%d." % (1 << 23), dir=tmp)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = cc("cleanup")
        check(r.returncode == 0 and os.path.isdir(d) and "left alone" in r.stdout,
              "expected the locked dir kept: " + r.stdout + r.stderr)
    finally:
        os.close(fd)
    r = cc("cleanup")
    check(r.returncode == 0 and not os.path.isdir(d),
          "expected the unlocked dir removed: " + r.stdout + r.stderr)
    shutil.rmtree(d, ignore_errors=True)


def test_topology(t):
    mark = MARK + "3"
    prof = sleeper_profile(t, "mon", ["/bin/sleep", mark], comp="flow-monitor")
    case = {"id": "flow.test.topology", "title": "fd-held namespaces with a veth",
            "component": "flow-monitor",
            "requirements": [{"id": "FLOW-MON-001", "level": "MUST"}],
            "features": ["veth", "root"], "timeout_ms": 8000, "fault": "flow.pad_nonzero",
            "topology": {"namespaces": ["cell", "peer"], "links": [{"type": "veth", "ends": [
                {"ns": "cell", "ifname": "c0", "addrs": ["10.97.0.2/24"]},
                {"ns": "peer", "ifname": "p0", "addrs": ["10.97.0.1/24"]}]}],
                "routes": [{"ns": "cell", "dst": "default", "via": "10.97.0.1"}]},
            "steps": [
                {"action": "start", "name": "mon", "ns": "cell"},
                {"action": "client", "name": "see", "ns": "cell", "expect_exit": 0,
                 "argv": ["/bin/sh", "-c", "grep -q c0: /proc/self/net/dev && "
                          "! grep -q p0: /proc/self/net/dev && ip=$(cat /proc/self/net/route)"
                          " && echo \"$ip\" | grep -q 0100610A"]},
                {"action": "stop", "target": "mon", "signal": "TERM", "expect_exit": 143}],
            "expect": {"stderr": {"empty": True}}}
    t.write_json("topo/cases/c.json", case)
    out = t.path("topo", "out")
    r = cc("run", "--profile", prof, "--cases", t.path("topo", "cases"), "--report-dir", out)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    check(statuses(out) == {"flow.test.topology": "PASS"}, statuses(out))
    check(not procs_with("sleep " + mark), "monitor left behind")
    # Failing: the artifacts hold a pcap of each link end.
    case["expect"] = {"stderr": {"regex": "never"}}
    t.write_json("topo/cases/c.json", case)
    r = cc("run", "--profile", prof, "--cases", t.path("topo", "cases"), "--report-dir", out)
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    art = os.path.join(out, "artifacts", "flow.test.topology")
    for f in ("cell.c0.pcap", "peer.p0.pcap", "reproduce.sh", "mon.stderr"):
        check(os.path.exists(os.path.join(art, f)), (f, os.listdir(art)))
    with open(os.path.join(art, "cell.c0.pcap"), "rb") as f:
        check(f.read(4) == b"\xd4\xc3\xb2\xa1", "not a pcap")
    check(open(os.path.join(art, "reproduce.sh")).read().count("sudo ") == 1, "no sudo")


def test_upstream(t):
    case = json.load(open(UPSTREAM_CASE))
    t.write_json("up/cases/u.json", case)
    out = t.path("up", "out")
    r = cc("run", "--cases", t.path("up", "cases"), "--report-dir", out)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    check(statuses(out) == {"dns.test.upstream": "PASS"}, statuses(out))
    # The count is exact: one query more expected fails.
    case["expect"]["counts"]["upstream_queries"] = 8
    t.write_json("up/cases/u.json", case)
    r = cc("run", "--cases", t.path("up", "cases"), "--report-dir", out)
    check(r.returncode == 1 and "upstream_queries" in report(out)["cases"][0]["message"],
          report(out)["cases"][0])


def test_time_scale(t):
    """CHK-RUN-013: one factor lengthens the case's deadline; report.json records it."""
    prof = sleeper_profile(t, "sleeper4", ["/bin/sleep", MARK + "4"])
    t.write_json("ts/cases/t.json", decoder_case("decoder.test.timeout", timeout_ms=300, stop_exit=0,
                                                   sleeper=True))
    out = t.path("ts", "out")
    t0 = time.monotonic()
    r = cc("run", "--profile", prof, "--cases", t.path("ts", "cases"), "--report-dir", out,
           "--time-scale", "4")
    took = time.monotonic() - t0
    check(r.returncode == 1, f"exit {r.returncode}: {r.stdout}{r.stderr}")
    rep = report(out)
    jsonschema.validate(rep, SCHEMA)
    c = rep["cases"][0]
    check(c["status"] == "ERROR" and "1200 ms" in c["message"], c)
    check(took >= 1.15, f"a 300 ms case under factor 4 ended after {took:.2f} s")
    check(rep["timing"] == {"scale": 4.0, "source": "option"}, rep["timing"])
    check(not procs_with("sleep " + MARK + "4"), "sleep left behind")
    for bad in ("0.5", "101", "fast", ""):
        r = cc("run", "--time-scale", bad, "--report-dir", t.path("ts", "bad"))
        check(r.returncode == 2 and "--time-scale" in r.stderr, f"{bad!r}: {r.stderr}")


def test_btf_record_version(t):
    """expect.btf.record_version N (SPEC 10.2): an undeclared version whose struct the object
    lacks is a SKIP naming both; declared (record_versions), the same case FAILs; a struct the
    object has is checked whether declared or not."""
    obj = os.path.join(os.path.dirname(CELLCHECK), "..", "bpf", "flowmon.bpf.o")
    if not os.path.exists(obj):
        raise AssertionError(f"{obj} missing")
    members = [{"name": "src_addr", "offset": 0, "size": 16}]

    def case(cid, struct):
        return {"id": cid, "title": "btf " + cid, "component": "flow-monitor",
                "requirements": [{"id": "FLOW-REC-009", "level": "MUST"}],
                "timeout_ms": 5000, "fault": "flow.btf_layout",
                "steps": [{"action": "wait", "ms": 1}],
                "expect": {"btf": {"artifact": "bpf_object", "struct": struct,
                                   "record_version": 2, "members": members}}}

    cases = t.path("btfcases", "c.json")
    with open(cases, "w") as f:
        json.dump([case("btf.absent", "flowrec_v2_absent"), case("btf.present", "flowrec_v2")],
                  f)

    def profile(name, versions):
        comp = {"argv": ["/bin/true"], "ready": "none", "artifacts": {"bpf_object": obj}}
        if versions:
            comp["record_versions"] = versions
        return t.write_json(f"{name}.json", {"profileVersion": 1, "name": name,
                                         "components": {"flow-monitor": comp}})

    for name, versions, want in (("v1only", None, {"btf.absent": "SKIP", "btf.present": "PASS"}),
                                 ("v2decl", [1, 2], {"btf.absent": "FAIL",
                                                     "btf.present": "PASS"})):
        out = t.path("btf-" + name)
        r = cc("run", "--cases", os.path.dirname(cases), "--profile", profile(name, versions),
               "--report-dir", out)
        check(statuses(out) == want, f"{name}: {statuses(out)}, expected {want}: {r.stdout}")
        if name == "v1only":
            why = [c for c in report(out)["cases"] if c["id"] == "btf.absent"][0]
            text = json.dumps(why)
            check("declares no record version 2" in text and "flowrec_v2_absent" in text, why)


def test_usage(t):
    r = cc("run", "--profile", t.write_json("badprof.json", {"profileVersion": 1}))
    check(r.returncode == 2 and "bad profile" in r.stderr, r.stderr)
    r = cc("run", "--shard", "3/2")
    check(r.returncode == 2 and "--shard" in r.stderr, r.stderr)
    r = cc("run", "--jobs", "0")
    check(r.returncode == 2, r.stderr)
    r = cc("run", "--filter", "no.such.case", "--report-dir", t.path("u", "out"))
    check(r.returncode == 0 and "matches no case" in r.stderr, r.stderr)
    env = dict(os.environ)
    env.pop("CELLCHECK_FAULTS_BUILD", None)
    r = cc("selftest", env=env)
    check(r.returncode == 2 and "-Dfaults=true" in r.stderr, r.stderr)
    # CHK-SELF-005: a filter fault cellcheck-evfilter lacks stops selftest before any case.
    t.write_json("u-sf/cases/c.json", decoder_case("decoder.sf.one"))
    reg = t.write_json("u-sf/faults.json", [{"name": "decode.usage_ignored", "component": "decoder",
                                        "kind": "filter", "requirements": ["FLOW-FRM-011"],
                                        "description": "not an output fault"}])
    r = cc("selftest", "--faults-build", "--own-only", "--cases", t.path("u-sf", "cases"),
           "--faults", reg)
    check(r.returncode == 2 and "decode.usage_ignored has kind filter but cellcheck-evfilter's "
          "table has no such output fault" in r.stderr and "decoder.sf.one" not in r.stdout,
          f"{r.stdout}{r.stderr}")
    r = cc("cleanup", "extra")
    check(r.returncode == 2, r.stderr)


def main():
    t = Tap(prefix="cellcheck-hrun-test.")
    tests = [("decoder cases pass, five reports", test_decoder_pass, None),
             ("failing case: FAIL, artifacts, reproduce.sh", test_failing_case, None),
             ("hung component: ERROR TIMEOUT", test_timeout, None),
             ("escaped process: ERROR", test_escape, None),
             ("every problem listed, worst status", test_problems, None),
             ("signal death vs exit status", test_signal_death, None),
             ("an IUT starts with default signals", test_signal_defaults, None),
             ("death before the ready byte: at once, with stderr", test_ready_exit, None),
             ("process messages: expected, seen, stderr", test_process_messages, None),
             ("a leftover keeps the FAIL's problems", test_leftover_keeps_fail, None),
             ("known issues: XFAIL, XPASS, expired", test_known_issues, None),
             ("shards merged equal the whole", test_shards, None),
             ("--jobs 2 and --repeat", test_jobs, None),
             ("--load: hogs beside the run, deadline margins, none left", test_load, None),
             ("SIGKILL leaves no process; cleanup", test_sigkill, None),
             ("cleanup spares a locked temp dir", test_cleanup_spares_locked, None),
             ("topology in fd-held namespaces", test_topology,
              None if os.geteuid() == 0 else "needs root"),
             ("fake DNS upstream: answer, drop, TCP, TC, rcode, REFUSED, count",
              test_upstream, None if os.geteuid() == 0 and shutil.which("dig")
              else "needs root and dig"),
             ("--time-scale: deadlines scaled, recorded", test_time_scale, None),
             ("expect.btf record_version: SKIP, FAIL when declared", test_btf_record_version,
              None),
             ("usage and setup errors", test_usage, None)]
    t.plan(len(tests))
    try:
        for name, fn, skip in tests:
            t.run(name, fn, t, skip=skip)
    finally:
        status = t.done()
    return status


if __name__ == "__main__":
    sys.exit(main())
