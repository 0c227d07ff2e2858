#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""report.html in a real browser (TAP): `cellcheck report --from` renders the fixture
tests/harness/report/report.json (FAIL, ERROR, XFAIL, XPASS, SKIP and PASS cases, four
components, shared requirements, a message and a title that carry markup pointing at
http://127.0.0.1:9/), and headless Chromium (Debian's `chromium`) loads the page:

- it renders: a screenshot is a PNG of the window's size that is not blank;
- the counts the rendered page shows (verdict line, summaries by first cause, requirement,
  component and level, one collapsed <details> per failing case) equal those of report.json,
  every in-page link has its target, and the injected markup stayed text;
- the page fetches nothing: Chromium runs in a fresh network namespace (lo down) when it can,
  its net log must hold no request the page made, and its console no request the
  Content-Security-Policy blocked. Two control pages, one that fetches and one whose fetch the
  policy blocks, prove that each of these detectors sees what it looks for.

Every Chromium runs in its own session with a profile in a temporary directory; the session is
killed on timeout and after each run, and the directory removed. Without chromium the file is
a SKIP.

Usage: test_report_html.py PATH/TO/cellcheck
"""
import ctypes
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from collections import Counter
from html.parser import HTMLParser

sys.dont_write_bytecode = True
from taprun import Tap, check  # noqa: E402 (after the line above: no __pycache__ in the tree)

CELLCHECK = sys.argv[1]
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report", "report.json")
BAD = ("FAIL", "ERROR", "XFAIL", "XPASS")  # the columns of the failure summaries
STATUSES = ("PASS", "FAIL", "SKIP", "ERROR", "XFAIL", "XPASS")
WINDOW = (1280, 900)
TIMEOUT = 180  # seconds per Chromium run, on a loaded machine
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def netns_flags():
    """The unshare(2) flags that give Chromium a network namespace of its own, or 0."""
    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if libc.unshare(flags) == 0 else 1)
        _, st = os.waitpid(pid, 0)
        if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
            return flags
    return 0


class Browser:
    def __init__(self, tmp):
        self.exe = chromium_path()
        self.tmp = tmp
        self.flags = netns_flags()
        self.runs = 0

    def _enter_netns(self):
        if self.flags and ctypes.CDLL(None, use_errno=True).unshare(self.flags) != 0:
            os._exit(126)

    def run(self, url, action):
        """Load url once; return (stdout, stderr, net log events as a list of dicts)."""
        self.runs += 1
        d = os.path.join(self.tmp, f"chromium.{self.runs}")
        os.makedirs(d)
        netlog = os.path.join(d, "netlog.json")
        argv = [self.exe, "--headless", "--disable-gpu", "--no-sandbox",
                f"--user-data-dir={d}/profile", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--disable-extensions",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--enable-logging=stderr", "--log-level=0",
                f"--log-net-log={netlog}", "--net-log-capture-mode=Everything",
                *action, url]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=self._enter_netns, cwd=d)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise AssertionError(f"chromium did not finish within {TIMEOUT} s: {url}")
        finally:
            # Helpers (zygote, crashpad) share the session's group: nothing may outlive it.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        check(p.returncode == 0, f"chromium exit status {p.returncode}; stderr ends: {err[-2000:]}")
        with open(netlog, encoding="utf-8") as f:
            text = f.read()
        try:
            log = json.loads(text)
        except ValueError:  # a log cut short still has its events
            log = json.loads(text.rstrip().rstrip(",") + "]}")
        names = {v: k for k, v in log.get("constants", {}).get("logEventTypes", {}).items()}
        events = [dict(e, type_name=names.get(e.get("type"))) for e in log.get("events", [])]
        return out, err, events


def page_requests(events):
    """URLs the page asked for. The browser's own background requests (component updates,
    time) have no initiator and the null isolation key; a page's carry its file:// site."""
    urls = []
    for e in events:
        p = e.get("params") or {}
        if e.get("type_name") != "URL_REQUEST_START_JOB" or "url" not in p:
            continue
        nik = p.get("network_isolation_key", "")
        if p.get("initiator", "not an origin") != "not an origin" or "file://" in nik:
            urls.append(p["url"])
    return urls


def blocked_requests(stderr):
    """Console lines of requests the Content-Security-Policy blocked."""
    return [l for l in stderr.splitlines()
            if "CONSOLE" in l and "Content Security Policy" in l]


class Dom(HTMLParser):
    """What the tests read from the rendered DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.hrefs = []
        self.tags = Counter()
        self.attrs = []  # (tag, name, value) of every attribute
        self.stack = []  # (tag, attrs) of open elements
        self.counts = []  # (row attrs, cell data-status, text) of count cells
        self.verdict = {}
        self.details = Counter()  # data-status of <details class="case ...">
        self.rows = Counter()  # data-status of <tr class="case">
        self.text = []
        self._cell = None

    VOID = {"meta", "br", "img", "link", "input", "hr", "col", "area", "base", "wbr", "source"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] += 1
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        cls = (a.get("class") or "").split()
        if tag == "details" and "case" in cls:
            self.details[a.get("data-status")] += 1
        if tag == "tr" and "case" in cls:
            self.rows[a.get("data-status")] += 1
        if "data-status" in a and tag in ("td", "span"):
            self._cell = (self._row(), a["data-status"], tag, [])
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def _row(self):
        for tag, a in reversed(self.stack):
            if tag == "tr":
                return a
            if tag == "p" and "verdict" in (a.get("class") or ""):
                return {"verdict": "1"}
        return {}

    def handle_endtag(self, tag):
        if self._cell and tag == self._cell[2]:
            row, st, _, text = self._cell
            n = int("".join(text).strip())
            if row.get("verdict"):
                self.verdict[st] = n
            else:
                self.counts.append((row, st, n))
            self._cell = None
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        self.text.append(data)
        if self._cell:
            self._cell[3].append(data)

    def table(self, key):
        """{row value of data-KEY: {status: count}} of the count cells."""
        out = {}
        for row, st, n in self.counts:
            if "data-" + key in row:
                out.setdefault(row["data-" + key], {})[st] = n
        return out


def png_ok(path):
    """Width, height, and whether the image holds more than a blank page."""
    with open(path, "rb") as f:
        d = f.read()
    check(d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    w, h = struct.unpack(">II", d[16:24])
    idat, i = b"", 8
    while i < len(d):
        n, t = struct.unpack(">I", d[i:i + 4])[0], d[i + 4:i + 8]
        if t == b"IDAT":
            idat += d[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    return w, h, len(set(raw)) > 16


def expected(rep):
    """The counts the page must show, from report.json's cases."""
    e = {"verdict": Counter(), "component": {}, "level": {}, "category": {}, "requirement": {}}
    order = {"MUST": 0, "SHOULD": 1, "MAY": 2}
    for c in rep["cases"]:
        st = c["status"]
        e["verdict"][st] += 1
        e["verdict"]["total"] += 1
        for key, val in (("component", c["component"]),
                         ("level", min((r["level"] for r in c["requirements"]),
                                       key=order.get, default="MAY"))):
            row = e[key].setdefault(val, Counter())
            row[st] += 1
            row["total"] += 1
        if c.get("category"):
            row = e["category"].setdefault(c["category"], Counter())
            row[st] += 1
            row["total"] += 1
        if st in BAD:
            for r in c["requirements"]:
                e["requirement"].setdefault(r["id"], Counter())[st] += 1
    return e


def test_renders(b, page):
    shot = os.path.join(b.tmp, "page.png")
    b.run("file://" + page, [f"--screenshot={shot}"])
    w, h, painted = png_ok(shot)
    check((w, h) == WINDOW, f"screenshot {w}x{h}, expected {WINDOW[0]}x{WINDOW[1]}")
    check(painted, "the screenshot is blank")


def test_counts(b, page, rep):
    out, _, _ = b.run("file://" + page, ["--dump-dom"])
    dom = Dom()
    dom.feed(out)
    want = expected(rep)
    got_verdict = {k: v for k, v in dom.verdict.items()}
    want_verdict = {s: want["verdict"][s] for s in (*STATUSES, "total")}
    check(got_verdict == want_verdict, f"verdict line {got_verdict}, expected {want_verdict}")
    for key in ("component", "level"):
        got = dom.table(key)
        for val, cnt in want[key].items():
            exp = {s: cnt[s] for s in (*STATUSES, "total")}
            check(got.get(val) == exp, f"{key} {val}: {got.get(val)}, expected {exp}")
        check(set(got) >= set(want[key]), f"{key} rows {sorted(got)}")
    got = dom.table("category")
    exp = {k: {s: v[s] for s in (*BAD, "total")} for k, v in want["category"].items()}
    check(got == exp, f"by first cause {got}, expected {exp}")
    got = dom.table("requirement")
    exp = {k: {s: v[s] for s in BAD} for k, v in want["requirement"].items()}
    check(got == exp, f"by requirement {got}, expected {exp}")
    # One collapsed <details> per failing case, a row per PASS and SKIP case.
    for s in STATUSES:
        n = dom.details[s] + dom.rows[s]
        check(n == want["verdict"][s], f"{n} {s} cases on the page, expected {want['verdict'][s]}")
    check(dom.details["FAIL"] == want["verdict"]["FAIL"], "FAIL cases are <details>")
    # Anchors: every in-page link has its target; the documented ones exist.
    for h in dom.hrefs:
        if h.startswith("#"):
            check(h[1:] in dom.ids, f"link {h} has no target")
    for s in STATUSES:
        if want["verdict"][s]:
            check(f"status-{s}" in dom.ids, f"#status-{s}")
    for comp in want["component"]:
        check(f"component-{comp}" in dom.ids, f"#component-{comp}")
    # The IUT's markup and the hostile title stayed text.
    text = "".join(dom.text)
    check("cellcheck-escape.png" in text and "cellcheck-title.png" in text, "markup kept as text")
    check(dom.tags["img"] == 0 and dom.tags["link"] == 0 and dom.tags["script"] == 0,
          f"elements that fetch: {dict(dom.tags)}")
    check(dom.tags["style"] == 1, f"{dom.tags['style']} <style> elements, expected 1")
    for tag, k, v in dom.attrs:
        check(not k.startswith("on"), f"event handler {k} on <{tag}>")
        if k in ("src", "href", "srcset", "action", "data", "poster", "background"):
            check(v.startswith("./") or v.startswith("#"), f"<{tag} {k}={v!r}>: not relative")
    check(dom.tags["details"] >= sum(dom.details.values()), "details")


def test_fetches_nothing(b, page, control, control_csp):
    # The detectors first: a page that fetches, and one whose fetch the policy blocks.
    _, err, events = b.run("file://" + control, ["--dump-dom"])
    reqs = page_requests(events)
    check(any("cellcheck-control.png" in u for u in reqs),
          f"the net log shows no request of the control page (requests: {reqs})")
    _, err, events = b.run("file://" + control_csp, ["--dump-dom"])
    check(any("cellcheck-csp.png" in l for l in blocked_requests(err)),
          "the console shows no blocked request of the CSP control page")
    _, err, events = b.run("file://" + page, ["--dump-dom"])
    reqs = page_requests(events)
    check(not reqs, f"report.html made requests: {reqs}")
    blocked = blocked_requests(err)
    check(not blocked, f"report.html tried to load what its policy blocked: {blocked}")


def main():
    exe = chromium_path()
    if not exe:
        Tap.skip_all("chromium is not installed (ci/setup installs Debian's chromium)")
        return 0
    t = Tap(prefix="cellcheck-report-html-test.")
    out = os.path.join(t.tmp, "out")
    try:
        with open(FIXTURE, encoding="utf-8") as f:
            rep = json.load(f)
        p = subprocess.run([CELLCHECK, "report", "--from", FIXTURE, "--dir", out],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            print("1..1\nnot ok 1 - cellcheck report --from the fixture")
            print("# " + p.stderr.replace("\n", "\n# "))
            return 1
        page = os.path.join(out, "report.html")
        control = os.path.join(t.tmp, "control.html")
        with open(control, "w") as f:
            f.write('<!DOCTYPE html><html><head><meta charset="utf-8"/><title>c</title></head>'
                    '<body><img src="http://127.0.0.1:9/cellcheck-control.png"/></body></html>\n')
        control_csp = os.path.join(t.tmp, "control-csp.html")
        with open(control_csp, "w") as f:
            f.write('<!DOCTYPE html><html><head><meta charset="utf-8"/>'
                    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'"/>'
                    '<title>c</title></head><body>'
                    '<img src="http://127.0.0.1:9/cellcheck-csp.png"/></body></html>\n')
        b = Browser(t.tmp)
        t.plan(3)
        print(f"# {exe}; network namespace: "
              f"{'own' if b.flags == CLONE_NEWNET else 'own, in a user namespace' if b.flags else 'none (unshare refused)'}")
        t.run("report.html renders (a screenshot that is not blank)", test_renders, b, page)
        t.run("the counts on the page equal report.json's; anchors resolve; markup stays text",
              test_counts, b, page, rep)
        t.run("report.html fetches nothing (net log, CSP console, with controls)",
              test_fetches_nothing, b, page, control, control_csp)
    finally:
        status = t.done()
    return status


if __name__ == "__main__":
    sys.exit(main())
