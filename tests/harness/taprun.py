# SPDX-License-Identifier: Apache-2.0
"""The TAP 13 runner the harness's Python tests share (test_cellcheck.py, test_hrun.py, ...).

Each test is a function; Tap.run() calls it and prints one numbered line: "ok", "ok ... # SKIP
reason" (given, or returned by the test as a string) or "not ok" followed by the traceback as
diagnostics. A failure never stops the run: the next test goes on. Tap.tmp is a scratch folder
(made on first use) that Tap.done() removes, pass or fail.
"""
import json
import os
import shutil
import sys
import tempfile
import traceback


def check(cond, what):
    """An assertion that survives python -O and says what did not hold."""
    if not cond:
        raise AssertionError(what)


class Tap:
    def __init__(self, prefix="cellcheck-test."):
        self.n = 0
        self.failed = 0
        self._prefix = prefix
        self._tmp = None

    @property
    def tmp(self):
        """The scratch folder, made on first use."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix=self._prefix)
        return self._tmp

    @staticmethod
    def plan(count):
        print("TAP version 13")
        print(f"1..{count}")
        sys.stdout.flush()

    @staticmethod
    def skip_all(reason):
        """The whole file is a SKIP (exit 0 after it)."""
        print("TAP version 13")
        print(f"1..0 # SKIP {reason}")
        sys.stdout.flush()

    def run(self, name, fn, *args, skip=None):
        """Run fn(*args) as test NAME; skip: a reason not to run it at all."""
        self.n += 1
        try:
            if skip is None:
                skip = fn(*args)
            if isinstance(skip, str):
                print(f"ok {self.n} - {name} # SKIP {skip}")
            else:
                print(f"ok {self.n} - {name}")
        except Exception:  # every failure is a TAP line; go on with the next test
            self.failed += 1
            print(f"not ok {self.n} - {name}")
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        sys.stdout.flush()

    def path(self, *parts):
        """A path below tmp whose parent folder exists."""
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write_json(self, rel, obj):
        p = self.path(rel)
        with open(p, "w") as f:
            json.dump(obj, f)
        return p

    def done(self):
        """Remove tmp; the exit status: 1 when a test failed."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return 1 if self.failed else 0
