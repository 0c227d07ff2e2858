#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cellcheck's command line end to end (TAP): report formats (junit.xml parsed with xml.etree
and held to the Jenkins junit-10.xsd constraints, TAP 13 with YAML that parses, self-contained
HTML, Markdown), hostile messages escaped everywhere, report.json valid against
reports/report.schema.json, compare and merge exit statuses, list --filter, lint errors.

Usage: test_cellcheck.py PATH/TO/cellcheck   (CELLCHECK_SRCDIR names the source tree)
"""
import copy
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import jsonschema
import yaml

sys.dont_write_bytecode = True
from taprun import Tap, check  # noqa: E402 (after the line above: no __pycache__ in the tree)

CELLCHECK = sys.argv[1]
SRCDIR = os.environ.get("CELLCHECK_SRCDIR", os.path.join(os.path.dirname(__file__), "../.."))
SCHEMA = json.load(open(os.path.join(SRCDIR, "reports/report.schema.json")))

HOSTILE = ("<script src=\"http://evil.example/x.js\"></script> <img src=http://e/i.png> "
           "]]> & \"quotes\" 'single' `tick` | pipe | *bold* [l](javascript:alert(1)) # hash "
           "\u0001\u001b[31m\u007f\u0085 caf\u00e9 \u20ac\n- list\n# heading\r\n\tend \\")
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def report(kernel="6.1.0-test", shard=None, cases=None):
    r = {
        "reportVersion": 1,
        "kernel": {"release": kernel, "configSha256": SHA},
        "harness": {"version": "0.1.0", "gitRevision": "abc123"},
        "profile": {"name": "reference", "path": "fixtures/profiles/reference.json",
                    "sha256": SHA, "files": [{"component": "decoder", "role": "binary",
                                              "path": "/b/ref/cellref", "sha256": SHA}]},
        "startedAt": "2026-01-01T00:00:00Z",
        "endedAt": "2026-01-01T00:01:00Z",
        "cases": cases if cases is not None else [],
    }
    if shard:
        r["shard"] = {"index": shard[0], "count": shard[1]}
    return r


def case(cid, status, component="decoder", level="MUST", message=None, reason=None, **kw):
    c = {"id": cid, "title": "title of " + cid, "component": component,
         "requirements": [{"id": "FLOW-DEC-001", "level": level}],
         "status": status, "durationMs": 12}
    if message is not None:
        c["message"] = message
    if reason is not None:
        c["reason"] = reason
    c.update(kw)
    return c


SAMPLE = [
    case("decoder.a.pass", "PASS"),
    case("decoder.b.fail", "FAIL", message=HOSTILE, artifacts="artifacts/decoder.b.fail",
         reproduce="cellcheck run --filter 'decoder.b.fail' # <x>"),
    case("decoder.c.skip", "SKIP", reason="needs " + HOSTILE),
    case("flow.d.error", "ERROR", component="flow-monitor", message="timeout & leak <qdisc>"),
    case("flow.e.xfail", "XFAIL", component="flow-monitor", reason="known issue #12"),
    case("flow.f.xpass", "XPASS", component="flow-monitor", level="SHOULD", reason="k",
         message="passed"),
    case("dns.g.should", "FAIL", component="dns-proxy", level="SHOULD", message="warn",
         runs=5, flakes=2),
]


def cc(*args, env=None):
    return subprocess.run([CELLCHECK, *args], capture_output=True, text=True,
                          errors="surrogateescape", env=env, timeout=60)


# The Jenkins junit-10.xsd (xunit plugin): attributes each element may carry, its children.
XSD_ATTRS = {
    "testsuites": {"name", "time", "tests", "failures", "errors"},
    "testsuite": {"name", "tests", "failures", "errors", "group", "time", "skipped",
                  "timestamp", "hostname", "id", "package", "file", "log", "url"},
    "testcase": {"name", "time", "classname", "group"},
    "failure": {"type", "message"}, "error": {"type", "message"},
    "skipped": {"type", "message"}, "properties": set(), "property": {"name", "value"},
    "system-out": set(), "system-err": set(),
}
XSD_REQUIRED = {"testsuite": {"name", "tests", "failures", "errors"}, "testcase": {"name"},
                "property": {"name", "value"}}
XSD_CHILDREN = {"testsuites": {"testsuite"},
                "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
                "testcase": {"skipped", "error", "failure", "system-out", "system-err"},
                "properties": {"property"}}
SUREFIRE_TIME = re.compile(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")


def xsd_check(el):
    check(el.tag in XSD_ATTRS, f"element {el.tag} not in the XSD")
    extra = set(el.attrib) - XSD_ATTRS[el.tag]
    check(not extra, f"{el.tag}: attributes {extra} not allowed")
    missing = XSD_REQUIRED.get(el.tag, set()) - set(el.attrib)
    check(not missing, f"{el.tag}: required attributes {missing} missing")
    if "time" in el.attrib and el.tag in ("testsuites", "testsuite"):
        check(SUREFIRE_TIME.match(el.attrib["time"]), f"{el.tag} time {el.attrib['time']}")
    for child in el:
        check(child.tag in XSD_CHILDREN.get(el.tag, set()), f"{child.tag} inside {el.tag}")
        xsd_check(child)


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, attrs))


def write_reports(t):
    # Written next to report.json, as the runner does: artifact links are "./artifacts/...".
    src = t.write_json("in/report.json", report(cases=SAMPLE))
    p = cc("report", "--from", src, "--dir", os.path.dirname(src))
    check(p.returncode == 0, f"report exit {p.returncode}: {p.stderr}")
    return os.path.dirname(src)


def test_junit(t):
    d = write_reports(t)
    root = ET.parse(os.path.join(d, "junit.xml")).getroot()
    xsd_check(root)
    check(root.tag == "testsuites", "root is testsuites")
    check(root.get("tests") == "7" and root.get("failures") == "3" and root.get("errors") == "1",
          f"totals {root.attrib}")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    check(list(suites) == ["decoder", "flow-monitor", "dns-proxy"], f"suites {list(suites)}")
    dec = suites["decoder"]
    check((dec.get("tests"), dec.get("failures"), dec.get("errors"), dec.get("skipped")) ==
          ("3", "1", "0", "1"), f"decoder counts {dec.attrib}")
    flow = suites["flow-monitor"]
    check((flow.get("tests"), flow.get("failures"), flow.get("errors"), flow.get("skipped")) ==
          ("3", "1", "1", "1"), f"flow counts {flow.attrib}")
    props = {p.get("name"): p.get("value") for p in dec.find("properties")}
    check(props["kernel.release"] == "6.1.0-test" and props["sha256.binary"] == SHA, props)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    check(len(cases) == 7, "7 testcases")
    fail = cases["decoder.b.fail"].find("failure")
    check(fail is not None and fail.get("type") == "FAIL", "failure element")
    # The parser gives back the message exactly, minus what XML 1.0 cannot carry.
    want = re.sub("[\u0001\u001b\u007f\u0085\r]", "\ufffd", HOSTILE)
    check(fail.get("message") == want, f"message round trip: {fail.get('message')!r}")
    check(cases["flow.d.error"].find("error") is not None, "error element")
    check(cases["decoder.c.skip"].find("skipped") is not None, "skipped element")
    check(cases["flow.e.xfail"].find("skipped") is not None, "XFAIL is skipped")
    check(cases["flow.f.xpass"].find("failure").get("type") == "XPASS", "XPASS is a failure")
    check(cases["decoder.a.pass"].find("failure") is None, "PASS has no failure")
    check("FLOW-DEC-001 (MUST)" in cases["decoder.a.pass"].find("system-out").text,
          "requirements in system-out")


def test_tap(t):
    d = write_reports(t)
    lines = open(os.path.join(d, "report.tap"), encoding="utf-8").read().split("\n")
    check(lines[0] == "TAP version 13" and lines[1] == "1..7", lines[:2])
    points = [l for l in lines if re.match(r"^(not )?ok \d+ ", l)]
    check(len(points) == 7, f"{len(points)} test points")
    check(points[0] == "ok 1 - decoder.a.pass", points[0])
    check(points[1] == "not ok 2 - decoder.b.fail", points[1])
    check(points[2].startswith("ok 3 - decoder.c.skip # SKIP needs "), points[2])
    check(points[4].startswith("not ok 5 - flow.e.xfail # TODO"), points[4])
    check(points[5] == "not ok 6 - flow.f.xpass", points[5])
    # Every YAML block parses and carries the message intact.
    blocks, cur = [], None
    for l in lines:
        if l == "  ---":
            cur = []
        elif l == "  ..." and cur is not None:
            blocks.append(yaml.safe_load("\n".join(x[2:] for x in cur)))
            cur = None
        elif cur is not None:
            cur.append(l)
    check(len(blocks) == 4, f"{len(blocks)} YAML blocks (FAIL, ERROR, XPASS, SHOULD FAIL)")
    check(blocks[0]["status"] == "FAIL" and blocks[0]["requirements"] == ["FLOW-DEC-001"],
          blocks[0])
    want = re.sub("[\u0001\u001b\u007f\u0085\r]", "\ufffd", HOSTILE)
    check(blocks[0]["message"] == want, f"YAML message {blocks[0]['message']!r}")
    check(blocks[1]["severity"] == "error", blocks[1])


def test_html_self_contained(t):
    d = write_reports(t)
    html = open(os.path.join(d, "report.html"), encoding="utf-8").read()
    low = html.lower()
    check("<script" not in low, "no script element")
    tags = Tags()
    tags.feed(html)
    for tag, attrs in tags.seen:
        check(tag not in ("script", "iframe", "object", "embed", "img", "link"), f"<{tag}>")
        for name, value in attrs:
            check(not name.startswith("on"), f"event handler {name} on <{tag}>")
            v = (value or "").strip().lower()
            if name in ("src", "href", "action", "data"):
                check(v.startswith("./") or v.startswith("#"),
                      f"<{tag} {name}={value!r}>: only relative links")
    check("<link" not in low and "@import" not in low and "url(" not in low, "no fetches")
    check("content-security-policy" in low and "default-src 'none'" in html, "CSP present")
    check("&lt;script src=&quot;http://evil.example/x.js&quot;&gt;" in html, "message escaped")
    check(html.index("decoder.b.fail") < html.index("decoder.a.pass"), "failures first")
    check('href="./artifacts/decoder.b.fail/"' in html, "relative artifact link")
    check("\u0001" not in html and "\u001b" not in html, "control bytes replaced")
    for section in ("Summary by component", "Summary by level", "Requirements", "Environment",
                    "6.1.0-test", "cellcheck run --filter"):
        check(section in html, f"{section!r} in the page")
    # Well-formed enough for an XML parser once the doctype is dropped.
    ET.fromstring(html.split("\n", 1)[1])


def test_markdown(t):
    d = write_reports(t)
    md = open(os.path.join(d, "report.md"), encoding="utf-8").read()
    check(md.startswith("# cellcheck report\n"), "title")
    check("**Verdict: FAIL**" in md, "verdict")
    check("<script" not in md and "<img" not in md, "no raw HTML from messages")
    check("\n# heading" not in md and "\n- list" not in md, "no markup injected at line start")
    for line in md.split("\n"):
        if line.startswith("| decoder.b.fail") or line.startswith("| decoder\\.b"):
            check(line.count("|") - line.count("\\|") == 7, f"table row intact: {line}")
    check("](./artifacts/decoder.b.fail/)" in md, "artifact link")


def test_report_dir_elsewhere_links_back(t):
    src = t.write_json("runs/r1/report.json", report(cases=SAMPLE))
    out = os.path.join(t.tmp, "published", "site")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    p = cc("report", "--from", src, "--dir", out)
    check(p.returncode == 0, p.stderr)
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    check('href="./../../runs/r1/artifacts/decoder.b.fail/"' in html, "link relative to report.json")


def test_bad_input_exit_2(t):
    bad = t.path("bad.json")
    with open(bad, "w") as f:
        f.write('{"reportVersion": 1, "kernel": ')
    p = cc("report", "--from", bad, "--dir", t.path("o", "x"))
    check(p.returncode == 2 and "invalid JSON" in p.stderr, p.stderr)
    r = report(cases=[case("a.b", "PASS")])
    r["cases"][0]["statuss"] = "PASS"
    p = cc("compare", t.write_json("o1.json", r), t.write_json("o2.json", report()))
    check(p.returncode == 2 and "$.cases[0].statuss" in p.stderr, p.stderr)
    check(cc("compare", "/nonexistent.json", bad).returncode == 2, "missing file")
    check(cc("compare", bad).returncode == 2, "one operand")
    check(cc("frobnicate").returncode == 2, "unknown command")
    check(cc("list", "--bogus").returncode == 2, "unknown option")
    p = cc("--help")
    check(p.returncode == 0 and "Exit status" in p.stdout, "help names exit statuses")


def test_compare(t):
    old = t.write_json("c/old.json", report("6.1.0", cases=[
        case("a.reg", "PASS"), case("a.fix", "FAIL", message="m"), case("a.gone", "PASS")]))
    new = t.write_json("c/new.json", report("6.6.0", cases=[
        case("a.reg", "FAIL", message="port byte order"), case("a.fix", "PASS"),
        case("a.new", "SKIP", reason="no kdig")]))
    p = cc("compare", old, new)
    check(p.returncode == 1, f"regression exits 1, got {p.returncode}")
    check(p.stdout.startswith("kernel: 6.1.0 -> 6.6.0\n"), "kernel change first")
    check("REGRESSION a.reg: PASS -> FAIL (port byte order)" in p.stdout, p.stdout)
    check("FIXED      a.fix" in p.stdout and "REMOVED    a.gone" in p.stdout and
          "NEW        a.new" in p.stdout, p.stdout)
    only_fix = t.write_json("c/fix.json", report("6.1.0", cases=[
        case("a.reg", "PASS"), case("a.fix", "PASS"), case("a.gone", "PASS")]))
    p = cc("compare", old, only_fix)
    check(p.returncode == 0, f"a fix alone exits 0, got {p.returncode}: {p.stdout}")
    check("kernel: 6.1.0 (unchanged)" in p.stdout, p.stdout)


def test_merge(t):
    a = t.write_json("m/a.json", report(shard=(1, 2), cases=[case("m.one", "PASS"),
                                                             case("m.two", "FAIL", message="x")]))
    b = t.write_json("m/b.json", report(shard=(2, 2), cases=[case("m.three", "PASS"),
                                                             case("m.two", "FAIL", message="x")]))
    out = t.path("m/out/merged.json")
    p = cc("merge", "-o", out, a, b)
    check(p.returncode == 0, f"merge exit {p.returncode}: {p.stderr}")
    merged = json.load(open(out))
    jsonschema.validate(merged, SCHEMA)
    check([c["id"] for c in merged["cases"]] == ["m.one", "m.two", "m.three"], merged["cases"])
    check("shard" not in merged and merged["summary"]["total"] == 3, merged.get("summary"))
    for f in ("junit.xml", "report.tap", "report.md", "report.html"):
        check(os.path.exists(os.path.join(os.path.dirname(out), f)), f"{f} next to OUT")
    conflict = t.write_json("m/c.json", report(shard=(2, 2), cases=[case("m.two", "PASS")]))
    p = cc("merge", "-o", t.path("m/out2/x.json"), a, conflict)
    check(p.returncode == 2 and "m.two is FAIL in one input and PASS" in p.stderr, p.stderr)
    check(not os.path.exists(t.path("m/out2/x.json")), "nothing written on conflict")
    other = report(shard=(2, 2))
    other["profile"]["name"] = "vendor"
    p = cc("merge", "-o", t.path("m/out3/x.json"), a, t.write_json("m/v.json", other))
    check(p.returncode == 2 and "profile vendor" in p.stderr, p.stderr)
    p = cc("merge", "-o", t.path("m/out4/x.json"), a)
    check(p.returncode == 0 and "shard 2/2 missing" in p.stderr, p.stderr)
    check(cc("merge", a, b).returncode == 2, "-o is required")


def test_schema_matches_writer(t):
    # The C writer's own output (through merge) validates; the schema rejects what it should.
    src = t.write_json("s/in.json", report(cases=SAMPLE))
    out = t.path("s/out/r.json")
    check(cc("merge", "-o", out, src).returncode == 0, "merge one")
    doc = json.load(open(out))
    jsonschema.validate(doc, SCHEMA)
    for mutate in (lambda d: d.update(reportVersion=2),
                   lambda d: d["cases"][0].update(status="OK"),
                   lambda d: d["kernel"].update(configSha256="ABC"),
                   lambda d: d["cases"][0].pop("durationMs"),
                   lambda d: d["cases"][0].update(extra=1)):
        bad = copy.deepcopy(doc)
        mutate(bad)
        try:
            jsonschema.validate(bad, SCHEMA)
        except jsonschema.ValidationError:
            continue
        raise AssertionError("schema accepted an invalid report")


CASE = {
    "id": "decoder.x.one", "title": "One", "component": "decoder",
    "requirements": [{"id": "TEST-ONE-001", "level": "MUST"}],
    "fault": "decode.x",
    "steps": [{"action": "start", "name": "d", "stdin": "in.frames"},
              {"action": "stop", "target": "d", "signal": "none", "expect_exit": 0}],
    "expect": {"stdout": {"regex": "^[{]"}},
}
SPEC = """<!-- test spec -->
**TEST-ONE-001** A thing MUST hold.

**TEST-TWO-001** Another thing SHOULD hold,
across lines.

| ID | Level | Summary | Verified by |
|----|-------|---------|-------------|
| TEST-ONE-001 | MUST | a | unit |
| TEST-TWO-001 | SHOULD | b | unit |
| TEST-OLD-001 | MUST | gone, *withdrawn* | - |
"""


# The clause map of the test SPEC (SPEC CHK-CASE-007): TEST-ONE-001 is its only MUST requirement.
CLAUSES = {"clauseMapVersion": 1, "requirements": {"TEST-ONE-001": [
    {"clause": "a thing holds", "checks": ["decoder.x.one#expect.stdout.regex"], "fault": "decode.x"},
    {"clause": "it holds everywhere", "checks": [], "gap": "no case looks everywhere"}]}}
FAULTS = [{"name": "decode.x", "component": "decoder", "kind": "env",
           "requirements": ["TEST-ONE-001"], "description": "x"},
          {"name": "decode.y", "component": "decoder", "kind": "env",
           "requirements": ["TEST-TWO-001"], "description": "y"}]


def lint_tree(t, name, cases, clauses=None, spec=SPEC, profile=None, args=(), faults=None):
    """clauses: the map to write; None: CLAUSES checked by the first case naming TEST-ONE-001
    (every case when none does); False: no map. profile: a second profile to write. faults: the
    fault registry (default FAULTS)."""
    root = t.path(name, "x")
    root = os.path.dirname(root)
    for i, c in enumerate(cases):
        t.write_json(f"{name}/cases/f{i}.json", c)
    if clauses is None:
        clauses = copy.deepcopy(CLAUSES)
        ids = [c["id"] for c in cases if any(r["id"] == "TEST-ONE-001"
                                              for r in c.get("requirements", []))]
        clauses["requirements"]["TEST-ONE-001"][0]["checks"] = ids[:1]
    if clauses is not False:
        t.write_json(f"{name}/fixtures/clauses.json", clauses)
    t.write_json(f"{name}/fixtures/faults.json", FAULTS if faults is None else faults)
    with open(os.path.join(root, "SPEC.md"), "w") as f:
        f.write(spec)
    with open(os.path.join(root, "in.frames"), "w") as f:
        f.write("")
    os.makedirs(os.path.join(root, "profiles"), exist_ok=True)
    t.write_json(f"{name}/profiles/p.json", {"profileVersion": 1, "name": "p",
                                             "components": {"decoder": {"argv": ["/bin/true"]}}})
    if profile is not None:
        t.write_json(f"{name}/profiles/q.json", profile)
    env = dict(os.environ, CELLCHECK_SRCDIR=root)
    return cc("lint", "--cases", os.path.join(root, "cases"), "--spec",
              os.path.join(root, "SPEC.md"), "--profiles", os.path.join(root, "profiles"),
              *args, env=env)


def test_lint_spec_and_profiles(t):
    """CHK-CLI-005, CHK-PROF-001: lint's findings about SPEC.md's index, coverage and profiles."""
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    spec = SPEC.replace("| TEST-OLD-001 |", "| TEST-IDX-001 | MUST | nowhere | unit |\n"
                        "| TEST-OLD-001 |") + "\n**TEST-BODY-001** A body thing MAY hold.\n"
    p = lint_tree(t, "sp-index", [CASE, two], spec=spec)
    check(p.returncode == 1, f"index findings exit 1: {p.stdout}{p.stderr}")
    check("TEST-BODY-001 is defined but missing from Appendix C" in p.stderr, p.stderr)
    check("TEST-IDX-001 is in Appendix C but defined nowhere" in p.stderr, p.stderr)

    spec = SPEC.replace("| TEST-OLD-001 |", "| TEST-THREE-001 | MAY | c | unit |\n"
                        "| TEST-OLD-001 |") + "\n**TEST-THREE-001** A third thing MAY hold.\n"
    p = lint_tree(t, "sp-cover", [CASE, two], spec=spec)
    check(p.returncode == 1 and "TEST-THREE-001 (MAY) has no case\n" in p.stderr,
          f"an uncovered requirement is a finding: {p.stderr}")
    check("1 without a case (0 of them not required by --require)" in p.stdout, p.stdout)
    p = lint_tree(t, "sp-cover-req", [CASE, two], spec=spec, args=("--require", "TEST-ONE"))
    check(p.returncode == 0 and "TEST-THREE-001 (MAY) has no case (not required yet)" in p.stderr,
          f"--require TEST-ONE leaves TEST-THREE pending: {p.stdout}{p.stderr}")
    p = lint_tree(t, "sp-cover-req3", [CASE, two], spec=spec, args=("--require", "TEST-THREE"))
    check(p.returncode == 1, f"--require TEST-THREE makes it a finding: {p.stderr}")

    p = lint_tree(t, "sp-profile", [CASE, two],
                  profile={"profileVersion": 1, "name": "q", "components": {"decoder": {
                      "argv": ["/bin/true"], "redy": "fd"}}})
    check(p.returncode == 1 and re.search(r"q\.json: \$\.components\.decoder\.redy: unknown key",
                                          p.stderr), f"a bad profile is a finding: {p.stderr}")


def test_lint(t):
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    p = lint_tree(t, "clean", [CASE, two])
    check(p.returncode == 0, f"clean tree exits 0: {p.stdout}{p.stderr}")
    check("2 requirements, 2 covered, 0 without a case" in p.stdout, p.stdout)

    wrong = copy.deepcopy(two)
    wrong["requirements"] = [{"id": "TEST-TWO-001", "level": "MUST"},
                             {"id": "TEST-NEW-001", "level": "MUST"},
                             {"id": "TEST-OLD-001", "level": "MUST"}]
    broken = copy.deepcopy(CASE)
    broken["id"] = "decoder.x.broken"
    broken["steps"][1]["target"] = "nobody"
    missing = copy.deepcopy(CASE)
    missing.update(id="decoder.x.missing")
    missing["steps"][0]["stdin"] = "no/such.frames"
    p = lint_tree(t, "dirty", [CASE, wrong, broken, missing])
    check(p.returncode == 1, f"findings exit 1, got {p.returncode}")
    err = p.stderr
    check(re.search(r"f2\.json: \$\.steps\[1\]\.target: \"nobody\" names no earlier start step",
                    err), err)
    check("TEST-NEW-001, which SPEC.md lacks" in err, err)
    check("TEST-OLD-001, which SPEC.md marks withdrawn" in err, err)
    check("says MUST for TEST-TWO-001, SPEC.md says SHOULD" in err, err)
    check("no/such.frames" in err, err)
    check("1 invalid case files" in p.stdout, p.stdout)

    dup = copy.deepcopy(CASE)
    p = lint_tree(t, "dup", [CASE, two, dup])
    check(p.returncode == 1 and "already defined" in p.stderr, p.stderr)


def test_lint_fault_kinds(t):
    """SPEC 10.8: a fault's kind is env, artifact or filter, and a filter fault is one of
    cellcheck-evfilter's output faults (the selftest could not apply it otherwise)."""
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    out = {"name": "decode.port_order", "component": "decoder", "kind": "filter",
           "requirements": ["TEST-ONE-001"], "description": "ports swapped in the lines"}
    p = lint_tree(t, "fk-ok", [CASE, two], faults=FAULTS + [out])
    check(p.returncode == 0, f"a filter fault of the table is fine: {p.stdout}{p.stderr}")
    bad = copy.deepcopy(FAULTS)
    bad[1]["kind"] = "filter"
    p = lint_tree(t, "fk-missing", [CASE, two], faults=bad)
    check(p.returncode == 1 and "fault decode.y has kind filter but cellcheck-evfilter's table "
          "has no such output fault" in p.stderr, f"not in the table: {p.stderr}")
    bad[1]["kind"] = "pipe"
    p = lint_tree(t, "fk-kind", [CASE, two], faults=bad)
    check(p.returncode == 1 and 'fault decode.y: kind "pipe" is none of env, artifact, filter'
          in p.stderr, f"an unknown kind: {p.stderr}")


def test_lint_clauses(t):
    """CHK-CASE-007: every MUST requirement split into clauses, each checked by a case or a gap."""
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    p = lint_tree(t, "cl-ok", [CASE, two], clauses=CLAUSES)
    check(p.returncode == 0, f"a complete map with a known gap exits 0: {p.stdout}{p.stderr}")
    check("clause map: 1 MUST requirements, 1 mapped, 2 clauses, 1 checked by a case or test, "
          "1 known gaps, 0 without a check or a reason" in p.stdout, p.stdout)
    check(re.search(r"warning: TEST-ONE-001 clause \"it holds everywhere\" has no check "
                    r"\(known gap: no case looks everywhere\)", p.stderr), p.stderr)

    def broken(name, mutate, *want):
        m = copy.deepcopy(CLAUSES)
        mutate(m)
        p = lint_tree(t, "cl-" + name, [CASE, two], clauses=m)
        check(p.returncode == 1, f"{name}: exits 1, got {p.returncode}: {p.stderr}")
        for w in want:
            check(w in p.stderr, f"{name}: stderr names {w!r}: {p.stderr}")
        check("0 clause map problems" not in p.stdout, f"{name}: counted: {p.stdout}")

    reqs = lambda m: m["requirements"]
    one = lambda m: m["requirements"]["TEST-ONE-001"]
    broken("missing", lambda m: reqs(m).pop("TEST-ONE-001"),
           "TEST-ONE-001 (MUST, SPEC.md line 2) has no entry in the clause map")
    broken("empty", lambda m: reqs(m).update({"TEST-ONE-001": []}),
           "TEST-ONE-001 has an entry without a clause")
    broken("unknown-req", lambda m: reqs(m).update({"TEST-NEW-001": one(m)}),
           "TEST-NEW-001 is not a requirement of SPEC.md")
    broken("should-req", lambda m: reqs(m).update({"TEST-TWO-001": one(m)}),
           "TEST-TWO-001 is not a MUST requirement")
    broken("unknown-case", lambda m: one(m)[0].update(checks=["decoder.x.nope"]),
           '$.requirements.TEST-ONE-001[0].checks[0]',
           'TEST-ONE-001 clause "a thing holds": no case decoder.x.nope in the catalogue')
    broken("case-not-listing", lambda m: one(m)[0].update(checks=["decoder.x.two"], fault=None)
           or one(m)[0].pop("fault"),
           'TEST-ONE-001 clause "a thing holds": case decoder.x.two does not list '
           'TEST-ONE-001 in its requirements')
    broken("no-check-path", lambda m: one(m)[0].update(checks=["decoder.x.one#expect.events"]),
           'TEST-ONE-001 clause "a thing holds": case decoder.x.one has no check expect.events')
    broken("unknown-fault", lambda m: one(m)[0].update(fault="decode.nope"),
           'TEST-ONE-001 clause "a thing holds": no fault decode.nope in fixtures/faults.json')
    broken("fault-elsewhere", lambda m: one(m)[0].update(fault="decode.y"),
           'fault decode.y neither lists TEST-ONE-001 nor is the fault of a case the clause names')
    broken("no-reason", lambda m: one(m)[1].pop("gap"),
           'TEST-ONE-001 clause "it holds everywhere" names no case and no test; name one, or '
           'say why')
    # A clause may be checked by a test of the source tree instead (CHK requirements).
    broken("test-file", lambda m: one(m)[1].update(tests=["tests/nope.py:test_x"]) or
           one(m)[1].pop("gap"), 'TEST-ONE-001 clause "it holds everywhere": test file '
           'tests/nope.py: No such file or directory')
    broken("test-name", lambda m: one(m)[1].update(tests=["in.frames:test_nope"]) or
           one(m)[1].pop("gap"), 'TEST-ONE-001 clause "it holds everywhere": no test test_nope '
           'in in.frames')
    broken("test-and-gap", lambda m: one(m)[1].update(tests=["in.frames"]),
           "a clause with checks is not a gap")
    broken("gap-with-checks", lambda m: one(m)[0].update(gap="x"),
           "a clause with checks is not a gap")
    broken("unknown-key", lambda m: one(m)[0].update(cases=["decoder.x.one"]),
           'unknown key "cases"')
    m = copy.deepcopy(CLAUSES)
    one(m)[1].pop("gap")
    one(m)[1]["tests"] = ["in.frames", "SPEC.md:thing", "SPEC.md:Another"]
    p = lint_tree(t, "cl-tests", [CASE, two], clauses=m)
    check(p.returncode == 0 and "2 checked by a case or test, 0 known gaps" in p.stdout,
          f"test references resolve: {p.stdout}{p.stderr}")
    one(m)[1]["tests"] = ["SPEC.md:Anoth"]
    p = lint_tree(t, "cl-tests2", [CASE, two], clauses=m)
    check(p.returncode == 1 and "no test Anoth in SPEC.md" in p.stderr, f"whole names: {p.stderr}")
    p = lint_tree(t, "cl-absent", [CASE, two], clauses=False)
    check(p.returncode == 1 and "clauses.json" in p.stderr, f"no map is a finding: {p.stderr}")
    # Check paths: an object key may hold dots, arrays take [N], steps by name or index.
    c = copy.deepcopy(CASE)
    c["expect"] = {"events": {"match": [{"type": "x", "fields": {"data.a.b": {"exact": 1}}}]},
                   "counts": {"var:upstream.id_distinct": 3}}
    m = copy.deepcopy(CLAUSES)
    one(m)[0]["checks"] = ["decoder.x.one#expect.events.match[0].fields.data.a.b.exact",
                           "decoder.x.one#expect.counts.var:upstream.id_distinct",
                           "decoder.x.one#steps.d", "decoder.x.one#steps[1].expect_exit"]
    p = lint_tree(t, "cl-paths", [c, two], clauses=m)
    check(p.returncode == 0, f"check paths resolve: {p.stderr}")
    for bad in ("expect.events.match[1]", "expect.events.match[0].fields.data",
                "steps.d.expect_exit", "steps.e", "steps[2]", "stdout"):
        one(m)[0]["checks"] = ["decoder.x.one#" + bad]
        p = lint_tree(t, "cl-badpath", [c, two], clauses=m)
        check(p.returncode == 1 and f"has no check {bad}" in p.stderr, f"{bad}: {p.stderr}")


TOPO = {"namespaces": ["a", "b"], "links": [{"type": "veth", "ends": [
    {"ns": "a", "ifname": "e0", "addrs": ["10.1.0.1/24"]},
    {"ns": "b", "ifname": "e0", "addrs": ["10.1.0.2/24"]}]}]}


def test_lint_topologies(t):
    """CHK-CASE-008: named topologies are validated, loaded by name, and not written out."""
    named = dict(TOPO, description="two namespaces",
                 diagram=["a e0 10.1.0.1/24 <-> b e0 10.1.0.2/24"])
    t.write_json("topo/fixtures/topologies/pair.json", named)
    by_name = copy.deepcopy(CASE)
    by_name["topology"] = "pair"
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    p = lint_tree(t, "topo", [by_name, two])
    check(p.returncode == 0, f"a case naming a valid topology is clean: {p.stdout}{p.stderr}")
    check(", 1 named topologies;" in p.stdout, p.stdout)

    written = dict(copy.deepcopy(two), topology=copy.deepcopy(TOPO))
    stale = dict(named, diagram=["a e0 <-> b e0 10.1.0.2/24"])
    t.write_json("topo-bad/fixtures/topologies/pair.json", named)
    t.write_json("topo-bad/fixtures/topologies/stale.json", stale)
    unknown = copy.deepcopy(CASE)
    unknown.update(id="decoder.x.three", topology="nope")
    p = lint_tree(t, "topo-bad", [by_name, written, unknown])
    check(p.returncode == 1, f"findings exit 1, got {p.returncode}: {p.stderr}")
    err = p.stderr
    check(re.search(r"stale\.json: \$\.diagram: the diagram does not show address "
                    r"10\.1\.0\.1/24", err), err)
    check(re.search(r"f1\.json: case decoder\.x\.two: its topology is the named topology pair "
                    r"written out: say \"topology\": \"pair\"", err), err)
    check(re.search(r"f2\.json: \$\.topology: no named topology \"nope\"", err), err)
    check("1 invalid case files" in p.stdout and ", 1 named topologies;" in p.stdout, p.stdout)


def test_lint_positive(t):
    """CHK-CASE-006: a case whose expectations are all absences is a lint finding."""
    two = copy.deepcopy(CASE)
    two.update(id="decoder.x.two", requirements=[{"id": "TEST-TWO-001", "level": "SHOULD"}])
    absences = [{"stdout": {"empty": True}},
                {"stdout": {"regex": "^x*$"}, "stderr": {"empty": True}},
                {"events": {"match": [{"type": "dns_query", "count": 0}]}},
                {"records": {"match": [{"count": 0}]}, "counts": {"records": 0, "lost": 0}},
                {"counts": {"events": {"range": [0, 3]}}},
                {"events": {"match": [{"type": "x", "fields": {"data.a": {"absent": True}},
                                       "count": 0}]}}]
    demands = [{"stdout": {"regex": "."}},
               {"events": {"match": [{"type": "dns_query"}]}},
               {"records": {"match": [{"count": 2}]}},
               {"counts": {"events:dns_query": 1}},
               {"counts": {"records": {"range": [1, 5]}}}]
    for i, ex in enumerate(absences + demands):
        c = copy.deepcopy(CASE)
        c.update(id=f"decoder.x.e{i}", expect=ex)
        p = lint_tree(t, f"pos{i}", [c, two])
        flagged = "every expectation is an absence" in p.stderr
        if i < len(absences):
            check(p.returncode == 1 and flagged and f"decoder.x.e{i}" in p.stderr,
                  f"{ex} must be flagged: {p.stderr}")
        else:
            check(p.returncode == 0 and not flagged, f"{ex} is a demand: {p.stderr}")
    c = copy.deepcopy(CASE)
    c.update(id="decoder.x.exit2", expect={"stdout": {"empty": True}})
    c["steps"][1]["expect_exit"] = 2
    p = lint_tree(t, "posexit", [c, two])
    check(p.returncode == 0, f"an exit status of its own is a demand: {p.stderr}")
    c["steps"][1]["expect_exit"] = 143
    p = lint_tree(t, "posexit2", [c, two])
    check(p.returncode == 1 and "absence" in p.stderr, f"143 is the harness's SIGTERM: {p.stderr}")


def test_list_filter(t):
    d = os.path.dirname(t.path("l/cases/x"))
    fam = [dict(copy.deepcopy(CASE), id=i) for i in ("flow.tcp.five-tuple", "flow.udp.five-tuple",
                                                     "dns.tcp.pipeline")]
    fam[2]["requirements"] = [{"id": "TEST-TWO-001", "level": "SHOULD"},
                              {"id": "TEST-ONE-001", "level": "MAY"}]
    t.write_json("l/cases/fam.json", fam)
    p = cc("list", "--cases", d)
    check(p.returncode == 0, p.stderr)
    rows = [l.split("\t") for l in p.stdout.splitlines()]
    check(len(rows) == 3 and all(len(r) == 5 for r in rows), rows)
    check(rows[2] == ["dns.tcp.pipeline", "decoder", "TEST-TWO-001,TEST-ONE-001", "SHOULD",
                      "One"], rows[2])
    p = cc("list", "--cases", d, "--filter", "flow.*.five-tuple")
    check([r.split("\t")[0] for r in p.stdout.splitlines()] ==
          ["flow.tcp.five-tuple", "flow.udp.five-tuple"], p.stdout)
    p = cc("list", "--cases", d, "--filter", "dns.*", "--filter", "*.tcp.*")
    check([r.split("\t")[0] for r in p.stdout.splitlines()] ==
          ["flow.tcp.five-tuple", "dns.tcp.pipeline"], p.stdout)
    p = cc("list", "--cases", d, "--filter", "flow.tcp")
    check(p.returncode == 0 and p.stdout == "", "a glob matches whole IDs")
    t.write_json("l/cases/zbad.json", {"id": "x"})
    p = cc("list", "--cases", d)
    check(p.returncode == 2 and len(p.stdout.splitlines()) == 3 and "zbad.json: $" in p.stderr,
          p.stderr)


def test_probe(t):
    import gzip
    import hashlib
    p = cc("probe", "--json")
    check(p.returncode == 0, p.stderr)
    doc = json.loads(p.stdout)
    check(doc["kernel"]["release"] == os.uname().release, doc["kernel"])
    for src in ("/proc/config.gz", f"/boot/config-{os.uname().release}"):
        try:
            with gzip.open(src) if src.endswith(".gz") else open(src, "rb") as f:
                want = hashlib.sha256(f.read()).hexdigest()
            break
        except OSError:
            continue
    else:
        want = "unavailable"
    check(doc["kernel"]["configSha256"] == want, f"{doc['kernel']} vs {want}")
    names = ["btf", "ringbuf", "clsact", "veth", "bridge", "userns", "cgroup2"]
    check(list(doc["features"]) == names, list(doc["features"]))
    for name, f in doc["features"].items():
        check(f["state"] in ("present", "absent", "unknown") and f["evidence"], (name, f))
    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    check((doc["features"]["btf"]["state"] == "present") == btf, doc["features"]["btf"])
    if os.geteuid() != 0:
        check(doc["features"]["veth"]["evidence"] == "unknown (needs root)", doc["features"])
    p = cc("probe")
    check(p.returncode == 0 and p.stdout.startswith("kernel release: "), p.stdout)
    check(cc("probe", "extra").returncode == 2, "operand rejected")


def main():
    t = Tap()
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    t.plan(len(tests))
    try:
        for name, fn in tests:
            t.run(name[5:], fn, t)
    finally:
        status = t.done()
    return status


if __name__ == "__main__":
    sys.exit(main())
