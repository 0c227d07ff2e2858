#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`cellcheck matrix` end to end (TAP) on the hand-written reports of tests/harness/matrix/:
statuses that differ between kernels (a FAIL on one side fails the matrix, a SKIP on one side
does not, and shows its reason), a kernel that never produced a report (its column is ERROR with
the reason and console log), differing SKIP reasons, probe features and run.json beside a report,
row order (failing differences first), exit statuses, and the HTML page being self-contained.

Usage: test_matrix.py PATH/TO/cellcheck
"""
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

sys.dont_write_bytecode = True
from taprun import Tap, check  # noqa: E402 (after the line above: no __pycache__ in the tree)

CELLCHECK = sys.argv[1]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "matrix")
OLD = "old=" + os.path.join(FIX, "k-old/report.json")
NEW = "new=" + os.path.join(FIX, "k-new/report.json")
PANIC = "panic=" + os.path.join(FIX, "k-panic/report.json")  # does not exist: ERROR column


def cc(*args):
    return subprocess.run([CELLCHECK, *args], capture_output=True, text=True, timeout=60)


def matrix(out, *args, status):
    p = cc("matrix", "-o", out, *args)
    check(p.returncode == status,
          f"exit {p.returncode}, expected {status}: {p.stdout} {p.stderr}")
    with open(os.path.join(out, "matrix.json")) as f:
        doc = json.load(f)
    with open(os.path.join(out, "matrix.md")) as f:
        md = f.read()
    with open(os.path.join(out, "matrix.html")) as f:
        html = f.read()
    return doc, md, html


def row(doc, cid):
    return next(c for c in doc["cases"] if c["id"] == cid)


def test_statuses_differ(out):
    doc, md, _ = matrix(out, OLD, NEW, status=1)
    check(doc["matrixVersion"] == 1 and doc["verdict"] == "FAIL", doc["verdict"])
    check([k["label"] for k in doc["kernels"]] == ["old", "new"], "columns in argument order")
    ids = [c["id"] for c in doc["cases"]]
    # Failing differences, then other differences, then the rest; by ID within each group.
    check(ids == ["flow.b.regress", "flow.c.skip-one", "flow.d.skip-reason",
                  "decoder.a.same", "decoder.e.fail-both"], ids)
    b = row(doc, "flow.b.regress")
    check(b["differs"] and b["failingDifference"], b)
    check(b["results"]["old"]["status"] == "PASS" and b["results"]["new"]["status"] == "FAIL", b)
    check("expected 1 event, got 0" in b["results"]["new"]["message"], b)
    e = row(doc, "decoder.e.fail-both")
    check(not e["differs"] and not e["failingDifference"], "the same FAIL everywhere is no difference")
    s = doc["summary"]
    check((s["kernels"], s["cases"], s["differing"], s["failingDifferences"],
           s["kernelsWithoutReport"]) == (2, 5, 3, 1, 0), s)
    check(doc["kernels"][1]["regressions"] == 1, "compare of new against old: one regression")
    check("### flow.b.regress" in md and "expected 1 event, got 0" in md, "details in the md")
    check("kernel: 6.1.0-test-amd64 -> 6.12.0-test-amd64" in md, "compare output in the md")


def test_skip_on_one_kernel(out):
    doc, md, _ = matrix(out, OLD, NEW, status=1)
    c = row(doc, "flow.c.skip-one")
    check(c["differs"] and not c["failingDifference"], "a SKIP on one side is not a failure")
    check(c["results"]["old"] == {"status": "SKIP", "reason": "kernel feature cgroup2 absent"}, c)
    line = next(ln for ln in md.splitlines() if ln.startswith("| flow.c.skip-one"))
    check("SKIP: kernel feature cgroup2 absent" in line, line)
    # A SKIP that is the same everywhere is not spelt out in the table: nothing to explain.
    same = matrix(out + "-same", "a=" + OLD[4:], "b=" + OLD[4:], status=0)[1]
    line = next(ln for ln in same.splitlines() if ln.startswith("| flow.c.skip-one"))
    check("cgroup2" not in line, line)


def test_skip_reason_differs(out):
    doc, md, _ = matrix(out, OLD, NEW, status=1)
    d = row(doc, "flow.d.skip-reason")
    check(d["differs"] and not d["failingDifference"], d)
    check(d["results"]["old"]["reason"] == "needs unbound"
          and d["results"]["new"]["reason"] == "needs dig", d)
    line = next(ln for ln in md.splitlines() if ln.startswith("| flow.d.skip-reason"))
    check("needs unbound" in line and "needs dig" in line, line)


def test_error_column(out):
    doc, md, html = matrix(out, OLD, PANIC, "--console",
                           "panic=" + os.path.join(FIX, "k-panic/console.log"), status=1)
    k = doc["kernels"][1]
    check(k["status"] == "ERROR" and k["verdict"] is None, k)
    check(k["error"].startswith("kernel panic: VFS: Unable to mount root fs"), k["error"])
    check(k["console"].endswith("k-panic/console.log"), k["console"])
    check(k["release"] == "6.99.0-test-amd64", "release from run.json when there is no report")
    check(doc["summary"]["kernelsWithoutReport"] == 1, doc["summary"])
    # The ERROR column is one fact, not a difference in every row.
    check(doc["summary"]["differing"] == 0, doc["summary"])
    check(all(c["results"]["panic"] is None for c in doc["cases"]), "no results for panic")
    check("ERROR: kernel panic" in md and "k-panic/console.log" in md, "reason and log in md")
    check("kernel panic" in html and "console.log" in html, "reason and log in html")


def test_no_run_json_or_console(out):
    doc, _, _ = matrix(out, "p=" + os.path.join(out, "missing/report.json"), status=1)
    k = doc["kernels"][0]
    check(k["status"] == "ERROR" and "does not exist" in k["error"], k)


def test_same_reports_pass(out):
    doc, _, _ = matrix(out, "a=" + OLD[4:], "b=" + OLD[4:], status=0)
    check(doc["verdict"] == "PASS" and doc["summary"]["differing"] == 0, doc["summary"])


def test_kernel_info(out):
    doc, md, _ = matrix(out, OLD, NEW, status=1)
    old, new = doc["kernels"]
    check(old["release"] == "6.1.0-test-amd64" and old["configSha256"].startswith("5af3d09e"), old)
    check(old["accelerator"] == "tcg" and old["where"] == "vm" and old["seconds"] == 321, old)
    check(old["bootSeconds"] == 7.1, old)
    check(old["features"]["cgroup2"]["state"] == "absent", old["features"])
    check(new["features"]["cgroup2"]["state"] == "present", new["features"])
    check(new["accelerator"] is None, "no run.json: not known")
    check(old["summary"]["SKIP"] == 2 and old["summary"]["total"] == 5, old["summary"])
    check(old["verdict"] == "FAIL", "decoder.e.fail-both is a MUST failure")
    check("| cgroup2 | absent: cgroup2 absent | present: cgroup2 present |" in md, "features")


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k in ("href", "src")]


def test_html_self_contained(out):
    _, _, html = matrix(out, OLD, NEW, PANIC, status=1)
    p = Tags()
    p.feed(html)
    check("script" not in p.tags, "no script element (the message holds one, escaped)")
    check("&lt;script&gt;alert(1)&lt;/script&gt;" in html, "message escaped")
    check(all(h.startswith("./") or h.startswith("file:///") for h in p.hrefs), p.hrefs)
    check("Content-Security-Policy" in html and "default-src 'none'" in html, "CSP")


def test_usage(out):
    check(cc("matrix", OLD).returncode == 2, "no -o")
    check(cc("matrix", "-o", out).returncode == 2, "no column")
    check(cc("matrix", "-o", out, "no-equals-sign").returncode == 2, "not LABEL=FILE")
    check(cc("matrix", "-o", out, "=x.json").returncode == 2, "empty label")
    check(cc("matrix", "-o", out, OLD, OLD).returncode == 2, "label twice")
    check(cc("matrix", "-o", out, OLD, "--console", "nope=x.log").returncode == 2,
          "--console of an unknown label")


def main():
    t = Tap(prefix="cellcheck-matrix-test.")
    tests = [
        ("statuses differ: failing difference first, exit 1", test_statuses_differ),
        ("a SKIP on one kernel only shows its reason", test_skip_on_one_kernel),
        ("differing SKIP reasons are a (non-failing) difference", test_skip_reason_differs),
        ("a kernel without a report is an ERROR column with reason and console",
         test_error_column),
        ("a missing report without run.json says so", test_no_run_json_or_console),
        ("identical reports: no difference, exit 0", test_same_reports_pass),
        ("per kernel: release, config hash, accelerator, time, features, summary",
         test_kernel_info),
        ("matrix.html is self-contained and escapes messages", test_html_self_contained),
        ("usage errors exit 2", test_usage),
    ]
    t.plan(len(tests))
    try:
        for i, (name, fn) in enumerate(tests, 1):
            t.run(name, fn, os.path.join(t.tmp, str(i)))
    finally:
        status = t.done()
    return status


if __name__ == "__main__":
    sys.exit(main())
