#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Validate JSONL event files (or `cellref decode` output) against fixtures/schemas.

Usage: validate_events.py [--schemas DIR] [--expect-type TYPE=COUNT]... FILE...
       validate_events.py [--schemas DIR] --decode-output FILE...

Each FILE is JSONL; "-" reads stdin. Every line must be one JSON object that validates
against the schema its "type" selects (dev.cellos.events.cell.observability.v1.X ->
X.schema.json), and event ids must be unique across all files. With --decode-output every
line must be one line of `cellref decode` output (decode_output.schema.json), with frame
indexes counting from 0 and the `flow` object consistent with the `record` object.

One line per problem on stdout, as FILE:LINE: reason. Exit 0 when everything is valid,
1 when any line is invalid, 2 on a usage or I/O error.

Runs with Debian's python3-jsonschema (4.10): no network, every $ref resolves from DIR.
It shares no code with ref/ (SPEC.md is its only source).
"""

import argparse
import collections
import datetime
import decimal
import functools
import json
import os
import re
import sys

import jsonschema
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import ValidationError

TYPE_PREFIX = "dev.cellos.events.cell.observability.v1."
SCHEMA_SUFFIX = ".schema.json"
DECODE_SCHEMA = "decode_output" + SCHEMA_SUFFIX
EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?Z",
    re.ASCII)
SURROGATE = re.compile("[\ud800-\udfff]")
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
MAX_MESSAGE = 300


class UsageError(Exception):
    pass


@functools.lru_cache(maxsize=None)
def ecma_regex(pattern):
    """JSON Schema patterns are ECMA-262: `$` matches only at the very end, `\\d` is ASCII.

    Python's `$` also matches before a final newline, so a trailing unescaped `$` becomes
    `\\Z`; re.ASCII keeps `\\d`, `\\w`, `\\s` to ASCII.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.ASCII)


def strict_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(Draft202012Validator, {"pattern": strict_pattern})


def no_network(uri):
    raise jsonschema.exceptions.RefResolutionError(f"{uri}: not in the schema directory")


class Schemas:
    """Every *.schema.json of a directory, indexed by $id, resolved offline."""

    def __init__(self, directory):
        self.by_file = {}
        store = {}
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(SCHEMA_SUFFIX))
        except OSError as e:
            raise UsageError(f"{directory}: {e.strerror}") from e
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    schema = json.load(f)
                Draft202012Validator.check_schema(schema)
            except OSError as e:
                raise UsageError(f"{path}: {e.strerror}") from e
            except (ValueError, jsonschema.exceptions.SchemaError) as e:
                raise UsageError(f"{path}: not a valid schema: {e}") from e
            if not isinstance(schema.get("$id"), str):
                raise UsageError(f"{path}: schema has no $id")
            store[schema["$id"]] = schema
            self.by_file[name] = schema
        self.store = store
        self._validators = {}

    def validator(self, name, fragment=""):
        """Validator for schema file `name`, or for the subschema at `fragment` in it."""
        key = (name, fragment)
        if key not in self._validators:
            schema = self.by_file[name]
            resolver = RefResolver.from_schema(
                schema, store=self.store, handlers={"http": no_network, "https": no_network})
            root = {"$ref": schema["$id"] + "#" + fragment} if fragment else schema
            self._validators[key] = Validator(
                root, resolver=resolver, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return self._validators[key]


def schema_problems(validator, instance):
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        msg = err.message
        if len(msg) > MAX_MESSAGE:
            msg = msg[:MAX_MESSAGE] + "..."
        out.append(f"{where}: {msg}")
    return out


def parse_line(raw):
    """(object or None, problems) for one line without its LF."""
    problems = []
    if raw.endswith(b"\r"):
        problems.append("line ends with CR LF; lines end with LF only")
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, problems + [f"invalid UTF-8 at byte {e.start} of the line"]
    if not text.strip():
        return None, problems + ["empty line"]

    def pairs(items):
        obj = {}
        for k, v in items:
            if k in obj:
                problems.append(f"duplicate member {k!r} in one object")
            obj[k] = v
        return obj

    def parse_int(s):
        if s == "-0":
            problems.append("integer written as -0")
        return int(s)

    def parse_constant(s):
        raise ValueError(f"{s} is not JSON")

    try:
        # Non-integers stay Decimal so that 1.0 or 1e3 never pass as integers.
        obj = json.loads(text, parse_float=decimal.Decimal, parse_int=parse_int,
                         parse_constant=parse_constant, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        return None, problems + [f"not JSON: {e.msg} at column {e.colno}"]
    except ValueError as e:
        return None, problems + [f"not JSON: {e}"]
    if not isinstance(obj, dict):
        return None, problems + ["not a JSON object"]
    problems.extend(surrogate_problems(obj, ""))
    return obj, problems


def surrogate_problems(value, where):
    out = []
    if isinstance(value, str):
        if SURROGATE.search(value):
            out.append(f"{where or '/'}: string holds an unpaired surrogate escape")
    elif isinstance(value, dict):
        for k, v in value.items():
            if SURROGATE.search(k):
                out.append(f"{where or '/'}: member name holds an unpaired surrogate escape")
            out.extend(surrogate_problems(v, f"{where}/{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(surrogate_problems(v, f"{where}/{i}"))
    return out


def timestamp_problems(value, where):
    """The schema pattern checks the shape; this checks that the date and time exist."""
    if not isinstance(value, str):
        return []
    m = TIMESTAMP.fullmatch(value)
    if not m:
        return []
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime.datetime(y, mo, d, h, mi, min(s, 59))  # RFC 3339 allows leap second 60
        if s > 60:
            raise ValueError
    except ValueError:
        return [f"{where}: {value!r} is not a real date and time"]
    return []


class Checker:
    def __init__(self, schemas, decode_output):
        self.schemas = schemas
        self.decode_output = decode_output
        self.problems = 0
        self.lines = 0
        self.ids = {}
        self.type_counts = collections.Counter()

    def report(self, loc, reason):
        self.problems += 1
        print(f"{loc}: {reason}")

    def check_file(self, label, data):
        state = {"index": 0, "stopped": None}
        lines = data.split(b"\n")
        complete = lines[-1] == b""
        if complete:
            lines.pop()
        for n, raw in enumerate(lines, 1):
            loc = f"{label}:{n}"
            self.lines += 1
            obj, problems = parse_line(raw)
            if obj is not None:
                if self.decode_output:
                    problems += self.check_decode_line(obj, state)
                else:
                    problems += self.check_event(obj, loc)
            for p in problems:
                self.report(loc, p)
        if not complete:
            self.report(f"{label}:{len(lines)}", "no LF after the last line (incomplete write?)")

    def check_event(self, obj, loc):
        problems = []
        etype = obj.get("type")
        name = None
        if isinstance(etype, str):
            self.type_counts[etype] += 1
            if etype.startswith(TYPE_PREFIX):
                candidate = etype[len(TYPE_PREFIX):] + SCHEMA_SUFFIX
                if candidate in self.schemas.by_file and candidate != DECODE_SCHEMA:
                    name = candidate
            if name is None:
                problems.append(f"/type: unknown event type {etype!r}")
        else:
            problems.append("/type: missing or not a string")
        problems += schema_problems(self.schemas.validator(name or "envelope" + SCHEMA_SUFFIX), obj)
        problems += timestamp_problems(obj.get("time"), "/time")
        data = obj.get("data")
        if isinstance(data, dict):
            problems += timestamp_problems(data.get("observedAt"), "/data/observedAt")
        eid = obj.get("id")
        if isinstance(eid, str) and eid:
            if eid in self.ids:
                problems.append(f"/id: duplicate id {eid!r} (first at {self.ids[eid]})")
            else:
                self.ids[eid] = loc
        return problems

    def check_decode_line(self, obj, state):
        problems = []
        if state["stopped"]:
            problems.append(f"line after the truncated_frame line {state['stopped']}; "
                            "decoding stops at a truncated frame")
        if obj.get("ok") is True:
            # A v2 line carries record.family (FLOW-FRM-012); a v1 line never does.
            record = obj.get("record")
            v2 = isinstance(record, dict) and "family" in record
            fragment = "/$defs/okV2" if v2 else "/$defs/ok"
        elif obj.get("error") == "wrong_length":
            fragment = "/$defs/wrongLength"
        elif obj.get("error") == "truncated_frame":
            fragment = "/$defs/truncatedFrame"
        else:
            fragment = ""
        shape = schema_problems(self.schemas.validator(DECODE_SCHEMA, fragment), obj)
        problems += shape
        index = obj.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and index != state["index"]:
            problems.append(f"/index: {index}, expected {state['index']} "
                            "(one line per frame, counting from 0)")
        state["index"] += 1
        if obj.get("error") == "truncated_frame":
            state["stopped"] = state["index"]
            exp, got = obj.get("expected"), obj.get("got")
            if not shape and got >= exp:
                problems.append(f"/got: {got} bytes present is not fewer than expected {exp}")
        if fragment in ("/$defs/ok", "/$defs/okV2") and not shape:
            problems += flow_problems(obj["record"], obj["flow"])
        return problems

    def check_expectations(self, expectations):
        for etype, count, at_least in expectations:
            got = self.type_counts[etype]
            if got < count or (not at_least and got != count):
                want = f"at least {count}" if at_least else str(count)
                self.report("expect-type", f"{etype}: {got} events, expected {want}")


def flow_problems(rec, flow):
    """The `flow` object is derived from `record` by SPEC.md chapter 2."""
    out = []
    for rk, fk in (("srcAddr", "srcAddr"), ("dstAddr", "dstAddr"), ("srcPort", "srcPort"),
                   ("dstPort", "dstPort"), ("pktCount", "packetCount"),
                   ("firstSeenNs", "firstSeenNs")):
        if rec[rk] != flow[fk]:
            out.append(f"/flow/{fk}: {flow[fk]!r} differs from /record/{rk} {rec[rk]!r}")
    if "byteCount" in rec and rec["byteCount"] != flow["byteCount"]:
        out.append(f"/flow/byteCount: {flow['byteCount']!r} differs from /record/byteCount "
                   f"{rec['byteCount']!r}")
    decision = "deny" if rec["verdict"] == 2 else "allow"
    if flow["decision"] != decision:
        out.append(f"/flow/decision: {flow['decision']!r} for verdict {rec['verdict']}, "
                   f"expected {decision!r}")
    protocol = PROTOCOLS.get(rec["proto"])
    if flow.get("protocol") != protocol:
        want = repr(protocol) if protocol else "absent"
        have = repr(flow["protocol"]) if "protocol" in flow else "absent"
        out.append(f"/flow/protocol: {have} for proto {rec['proto']}, expected {want}")
    return out


def parse_expectation(text):
    etype, sep, count = text.rpartition("=")
    at_least = count.endswith("+")
    digits = count[:-1] if at_least else count
    if not sep or not etype or not digits.isdigit() or not digits.isascii():
        raise UsageError(f"--expect-type {text!r}: expected TYPE=COUNT or TYPE=COUNT+")
    if "." not in etype:
        etype = TYPE_PREFIX + etype
    return etype, int(digits), at_least


def read_input(name):
    if name == "-":
        return "<stdin>", sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return name, f.read()


def main(argv=None):
    default_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                               "schemas")
    ap = argparse.ArgumentParser(
        prog="validate_events.py",
        description="Validate JSONL events (or `cellref decode` output) against JSON Schemas.",
        epilog="Exit status: 0 all valid, 1 an invalid line or unmet --expect-type, "
               "2 usage or I/O error.")
    ap.add_argument("--schemas", metavar="DIR", default=os.path.normpath(default_dir),
                    help="schema directory (default: ../fixtures/schemas next to this script)")
    ap.add_argument("--expect-type", metavar="TYPE=COUNT", action="append", default=[],
                    help="require exactly COUNT events of TYPE over all files (COUNT+ for at "
                         "least COUNT); TYPE is the full type or its last part")
    ap.add_argument("--decode-output", action="store_true",
                    help="lines are `cellref decode` output, not events")
    ap.add_argument("files", nargs="+", metavar="FILE", help="JSONL file, - for stdin")
    args = ap.parse_args(argv)

    try:
        if args.decode_output and args.expect_type:
            raise UsageError("--expect-type applies to events, not to --decode-output")
        if args.files.count("-") > 1:
            raise UsageError("stdin (-) given more than once")
        expectations = [parse_expectation(t) for t in args.expect_type]
        schemas = Schemas(args.schemas)
        needed = [DECODE_SCHEMA] if args.decode_output else ["envelope" + SCHEMA_SUFFIX]
        for name in needed:
            if name not in schemas.by_file:
                raise UsageError(f"{args.schemas}: {name} is missing")
    except UsageError as e:
        print(f"validate_events.py: {e}", file=sys.stderr)
        return EXIT_USAGE

    checker = Checker(schemas, args.decode_output)
    io_error = False
    for name in args.files:
        try:
            label, data = read_input(name)
        except OSError as e:
            print(f"validate_events.py: {name}: {e.strerror}", file=sys.stderr)
            io_error = True
            continue
        checker.check_file(label, data)
    if not args.decode_output:
        checker.check_expectations(expectations)
    sys.stdout.flush()
    if io_error:
        return EXIT_USAGE
    if checker.problems:
        print(f"validate_events.py: {checker.problems} problem(s) in {checker.lines} line(s)",
              file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
