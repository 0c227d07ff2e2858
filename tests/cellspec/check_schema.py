#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Check fixtures/cells against fixtures/schemas/cell_spec.schema.json, printing TAP.

Every fixtures/cells/*.json must be valid. Every fixtures/cells/invalid/*.json must be rejected,
by strict JSON reading (duplicate keys, as the parser's JSON_REJECT_DUPLICATES) or by the schema,
unless expected.json marks it "schema-valid" (a rule JSON Schema cannot express); a file so
marked must really pass the schema, so the marks stay honest. expected.json and the invalid
files must list each other exactly.
"""
import argparse
import json
import os
import sys

import jsonschema


def strict_load(path):
    def no_dups(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise ValueError("duplicate key %r" % k)
            seen[k] = v
        return seen

    def no_constant(name):
        raise ValueError("not JSON: %s" % name)

    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=no_dups, parse_constant=no_constant)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", required=True)
    ap.add_argument("--dir", required=True, help="fixtures/cells")
    a = ap.parse_args()

    with open(a.schema, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    inv = os.path.join(a.dir, "invalid")
    expected = strict_load(os.path.join(inv, "expected.json"))
    valid = sorted(f for f in os.listdir(a.dir) if f.endswith(".json"))
    invalid = sorted(f for f in os.listdir(inv) if f.endswith(".json") and f != "expected.json")
    results = []

    for name in valid:
        try:
            errs = [e.message for e in validator.iter_errors(strict_load(os.path.join(a.dir, name)))]
        except ValueError as e:
            errs = [str(e)]
        results.append((not errs, "valid fixture %s passes the schema" % name, errs[:3]))

    for name in invalid:
        exp = expected.get(name)
        marked = isinstance(exp, dict) and exp.get("schema-valid") is True
        try:
            errs = [e.message for e in validator.iter_errors(strict_load(os.path.join(inv, name)))]
            why = errs[0] if errs else "schema accepts it"
        except ValueError as e:
            errs, why = [str(e)], "not strict JSON: %s" % e
        if exp is None:
            results.append((False, "invalid/%s is listed in expected.json" % name, []))
        elif marked:
            results.append((not errs, "invalid/%s is marked schema-valid and the schema accepts it"
                            % name, errs[:3]))
        else:
            results.append((bool(errs), "invalid/%s is rejected (%s)" % (name, why[:100]),
                            [] if errs else ["accepted but not marked \"schema-valid\""]))

    for name in sorted(set(expected) - set(invalid)):
        results.append((False, "expected.json entry %s has a file" % name, []))
    if not valid or not invalid:
        results.append((False, "fixtures found in %s" % a.dir, []))

    print("TAP version 13")
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, desc, notes) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, desc.replace("#", "\\#")))
        for n in notes:
            print("# %s" % n)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
