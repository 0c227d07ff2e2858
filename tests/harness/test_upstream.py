#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cellcheck's DNS upstream peer (harness/upstream/cellcheck_upstream.py) on the real kernel.

Each test gets a fresh network namespace, held by a forked child that unshare()d it:

    +--------------------- fresh netns (held by the holder child) ----------------------+
    | lo: 127.0.0.1, 10.98.0.1 (listen), 10.98.0.9 (alt), fd98::1 (listen v6)          |
    |   cellcheck_upstream.py --netns /proc/HOLDER/ns/net  <-- plain sockets of this test |
    +------------------------------------------------------------------------------------+

The test process setns()es into it for its client sockets and back to its own namespace
afterwards; the holder dies with its pipe, so the namespace goes with it, pass or fail.
Expected bytes are built by hand here, never by the program under test. Needs root (else
the whole file is a SKIP).

Usage: test_upstream.py PATH/TO/cellcheck_upstream.py
"""
import ctypes
import errno
import glob
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
from taprun import Tap, check  # noqa: E402 (after the line above: no __pycache__ in the tree)

PROG = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../../harness/upstream/cellcheck_upstream.py")
PY = "/usr/bin/python3"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
LISTEN = "10.98.0.1"
ALT = "10.98.0.9"
LISTEN6 = "fd98::1"
PORT = 53
libc = ctypes.CDLL(None, use_errno=True)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------- fixtures

class Netns:
    """A fresh netns held by a child; the test process enters it for its sockets."""

    def __init__(self):
        self.own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        rd, wr = os.pipe()
        hold_r, self.hold_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(rd)
                os.close(self.hold_w)
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if libc.unshare(CLONE_NEWNET) != 0:
                    os.write(wr, b"E%d" % ctypes.get_errno())
                    os._exit(1)
                for cmd in (["ip", "link", "set", "lo", "up"],
                            ["ip", "addr", "add", LISTEN + "/32", "dev", "lo"],
                            ["ip", "addr", "add", ALT + "/32", "dev", "lo"],
                            ["ip", "-6", "addr", "add", LISTEN6 + "/128", "dev", "lo",
                             "nodad"]):
                    subprocess.run(cmd, check=True)
                os.write(wr, b"R")
                os.close(wr)
                os.read(hold_r, 1)  # until the test closes its end (or dies)
            finally:
                os._exit(0)
        os.close(wr)
        os.close(hold_r)
        got = os.read(rd, 16)
        os.close(rd)
        if got != b"R":
            self.close()
            e = int(got[1:]) if got[:1] == b"E" else errno.EIO
            raise OSError(e, "netns setup: " + os.strerror(e))
        self.path = "/proc/%d/ns/net" % self.pid
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def close(self):
        libc.setns(self.own, CLONE_NEWNET)
        os.close(self.own)
        os.close(self.hold_w)
        os.waitpid(self.pid, 0)


class Upstream:
    """The program under test with an upstream object; stopped (SIGTERM) by stop()."""

    def __init__(self, ns, obj, alt=None, expect_ready=True):
        self.tmp = tempfile.mkdtemp(prefix="test-upstream-")
        self.json = os.path.join(self.tmp, "upstream.json")
        self.log = os.path.join(self.tmp, "log.jsonl")
        with open(self.json, "w") as f:
            json.dump(obj, f)
        rd, wr = os.pipe()
        # unbound's files go into the test's own directory: removed by close() even when the
        # peer had to be killed before it could remove them itself.
        argv = [PY, PROG, "--netns", ns.path, "--upstream-json", self.json, "--ready-fd",
                str(wr), "--log", self.log, "--tmp-dir", self.tmp]
        if alt:
            argv += ["--alt-addr", alt]
        self.t0 = time.monotonic()
        # Killed with this test process, even when meson's timeout kills it.
        self.p = subprocess.Popen(argv, pass_fds=(wr,), stderr=subprocess.PIPE,
                                  preexec_fn=lambda: libc.prctl(PR_SET_PDEATHSIG,
                                                                signal.SIGKILL))
        os.close(wr)
        r, _, _ = select.select([rd], [], [], 10)
        self.ready = os.read(rd, 1) if r else b""
        self.ready_s = time.monotonic() - self.t0
        os.close(rd)
        if expect_ready:
            eq(self.ready, b"R", "ready byte")

    def stop(self):
        """SIGTERM; -> (exit status, seconds to exit, log lines)."""
        t = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            # The unbound kind's stop is bounded by 3 s of statistics and 2 s of exit, then
            # SIGKILL: 15 s leaves room for a loaded machine (ci/load).
            st = self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            st = self.p.wait()
        dt = time.monotonic() - t
        return st, dt, self.lines()

    def lines(self):
        try:
            with open(self.log) as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- DNS by hand

def wire_name(name):
    out = b""
    for lab in name.rstrip(".").split("."):
        if lab:
            out += bytes([len(lab)]) + lab.encode()
    return out + b"\0"


def query(txid, name, qtype=1, flags=0x0100):
    return struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + wire_name(name) + \
        struct.pack("!HH", qtype, 1)


def head(msg):
    return dict(zip(("id", "flags", "qd", "an", "ns", "ar"), struct.unpack_from("!6H", msg)))


def udp_ask(msg, dst=(LISTEN, PORT), timeout=1.0, connected=True):
    fam = socket.AF_INET6 if ":" in dst[0] else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        if connected:
            s.connect(dst)
            s.send(msg)
            try:
                return s.recv(65535)
            except socket.timeout:
                return None
        s.sendto(msg, dst)
        try:
            return s.recvfrom(65535)
        except socket.timeout:
            return None


def tcp_open(dst=(LISTEN, PORT), timeout=1.0):
    s = socket.create_connection(dst, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    """n bytes, or None on EOF (socket.timeout goes to the caller)."""
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return buf


def tcp_read(s, timeout=1.0):
    """One length-prefixed message, or None on timeout / EOF.

    Reads exactly one message: a later answer already in the socket stays there for the next
    call (a test delayed on a loaded machine sees two pipelined answers arrive together).
    """
    s.settimeout(timeout)
    try:
        head_ = recv_exactly(s, 2)
        if head_ is None:
            return None
        return recv_exactly(s, struct.unpack("!H", head_)[0])
    except socket.timeout:
        return None


def framed(msg):
    return struct.pack("!H", len(msg)) + msg


A_RR = "a.example.test. 60 IN A 192.0.2.1"


def rule(name, action="answer", **kw):
    r = {"match": {"qname": name}, "action": action}
    r.update(kw)
    return r


def up(rules, listen=LISTEN, tcp=True):
    return {"kind": "fake", "ns": "peer", "listen": "%s:%d" % (
        "[%s]" % listen if ":" in listen else listen, PORT), "tcp": tcp, "rules": rules}


# ---------------------------------------------------------------- tests

def t_answer_a_bytes(ns):
    u = Upstream(ns, up([rule("a.example.test", records=[A_RR])]))
    try:
        q = query(0x1234, "A.Example.TEST")
        r = udp_ask(q)
        # Header: id echoed, QR|AA|RD; the question echoed in its case; the owner a pointer.
        want = struct.pack("!6H", 0x1234, 0x8500, 1, 1, 0, 0) + q[12:] + \
            b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
        eq(r, want, "UDP answer bytes")
        s = tcp_open()
        s.sendall(framed(q))
        eq(tcp_read(s), want, "TCP answer bytes")
        s.close()
        print("# ready after %.0f ms" % (u.ready_s * 1000))
        check(u.ready_s < 1.0, "ready within 1 s (%.3f s)" % u.ready_s)
    finally:
        u.close()


def t_aaaa_txt_cname_rcode(ns):
    u = Upstream(ns, up([
        {"match": {"qname": "v6.example.test", "qtype": "AAAA"}, "action": "answer",
         "records": ["v6.example.test. 300 IN AAAA 2001:db8::1"]},
        rule("txt.example.test", records=['txt.example.test. 5 IN TXT "hello world" x "a\\"b"']),
        rule("alias.example.test", records=["alias.example.test. 10 IN CNAME a.example.test.",
                                            A_RR]),
        rule("gone.example.test", rcode="NXDOMAIN")]))
    try:
        q = query(7, "v6.example.test", 28)
        eq(udp_ask(q), struct.pack("!6H", 7, 0x8500, 1, 1, 0, 0) + q[12:] + b"\xc0\x0c" +
           struct.pack("!HHIH", 28, 1, 300, 16) + socket.inet_pton(socket.AF_INET6,
                                                                  "2001:db8::1"), "AAAA")
        # qtype A does not match the AAAA rule: REFUSED
        eq(head(udp_ask(query(8, "v6.example.test", 1)))["flags"] & 0xF, 5, "qtype mismatch")
        q = query(9, "txt.example.test", 16)
        txt = b"\x0bhello world\x01x\x03a\"b"
        eq(udp_ask(q), struct.pack("!6H", 9, 0x8500, 1, 1, 0, 0) + q[12:] + b"\xc0\x0c" +
           struct.pack("!HHIH", 16, 1, 5, len(txt)) + txt, "TXT")
        q = query(10, "alias.example.test")
        eq(udp_ask(q), struct.pack("!6H", 10, 0x8500, 1, 2, 0, 0) + q[12:] + b"\xc0\x0c" +
           struct.pack("!HHIH", 5, 1, 10, 16) + wire_name("a.example.test") +
           wire_name("a.example.test") + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]),
           "CNAME + A")
        q = query(11, "gone.example.test")
        eq(udp_ask(q), struct.pack("!6H", 11, 0x8503, 1, 0, 0, 0) + q[12:], "NXDOMAIN")
    finally:
        u.close()


def t_refused_default(ns):
    u = Upstream(ns, up([rule("a.example.test", records=[A_RR])]))
    try:
        q = query(0xBEEF, "other.example.test", flags=0)
        eq(udp_ask(q), struct.pack("!6H", 0xBEEF, 0x8005, 1, 0, 0, 0) + q[12:], "REFUSED")
        st, dt, lines = u.stop()
        eq(lines[0]["action"], "refused", "logged action")
        eq(lines[0]["rule"], None, "logged rule")
    finally:
        u.close()


def t_wildcard_case(ns):
    u = Upstream(ns, up([rule("*.Wild.Test", records=["x.wild.test. 1 IN A 192.0.2.7"])]))
    try:
        eq(head(udp_ask(query(1, "x.wild.test")))["an"], 1, "x.wild.test matches")
        eq(head(udp_ask(query(2, "A.B.WILD.test")))["an"], 1, "a.b.wild.test matches")
        eq(head(udp_ask(query(3, "wild.test")))["flags"] & 0xF, 5, "the apex does not")
        eq(head(udp_ask(query(4, "xwild.test")))["flags"] & 0xF, 5, "label boundary")
    finally:
        u.close()


def t_delay(ns):
    u = Upstream(ns, up([rule("slow.test", records=["slow.test. 1 IN A 192.0.2.2"],
                              delay_ms=300)]))
    try:
        t = time.monotonic()
        r = udp_ask(query(1, "slow.test"), timeout=6)
        dt = time.monotonic() - t
        check(r is not None, "delayed answer arrives")
        # At least the delay; the upper bound only tells "delayed" from "never" on a loaded
        # machine (ci/load), not how precise the timer is.
        check(0.29 <= dt < 5, "delay %.3f s, want ~0.3" % dt)
        s = tcp_open()
        t = time.monotonic()
        s.sendall(framed(query(2, "slow.test")))
        r = tcp_read(s, 6)
        dt = time.monotonic() - t
        check(r is not None and 0.29 <= dt < 5, "TCP delay %.3f s" % dt)
        s.close()
    finally:
        u.close()


def t_drop(ns):
    u = Upstream(ns, up([rule("x.test", "drop")]))
    try:
        eq(udp_ask(query(1, "x.test"), timeout=0.4), None, "UDP drop: no answer")
        s = tcp_open()
        s.sendall(framed(query(2, "x.test")))
        s.settimeout(0.4)
        try:
            d = s.recv(100)
            raise AssertionError("TCP drop: got %r, want nothing (and the connection open)" % d)
        except socket.timeout:
            pass
        s.close()
        st, dt, lines = u.stop()
        eq([x["action"] for x in lines[:-1]], ["drop", "drop"], "logged")
        check(all("reply_hex" not in x for x in lines[:-1]), "no reply_hex for a drop")
    finally:
        u.close()


def t_truncate(ns):
    u = Upstream(ns, up([rule("big.test", "truncate", records=["big.test. 1 IN A 192.0.2.3"])]))
    try:
        q = query(5, "big.test")
        eq(udp_ask(q), struct.pack("!6H", 5, 0x8700, 1, 0, 0, 0) + q[12:], "UDP: TC, no records")
        s = tcp_open()
        # Two pipelined queries, the second split across segments (length prefix split too).
        q2 = query(6, "big.test")
        s.sendall(framed(q) + framed(q2)[:1])
        time.sleep(0.05)
        s.sendall(framed(q2)[1:9])
        time.sleep(0.05)
        s.sendall(framed(q2)[9:])
        want = q[12:] + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) + bytes([192, 0, 2, 3])
        eq(tcp_read(s), struct.pack("!6H", 5, 0x8500, 1, 1, 0, 0) + want, "TCP: full answer 1")
        eq(tcp_read(s), struct.pack("!6H", 6, 0x8500, 1, 1, 0, 0) + want, "TCP: full answer 2")
        s.close()
    finally:
        u.close()


def t_half_close(ns):
    u = Upstream(ns, up([rule("h.test", records=["h.test. 1 IN A 192.0.2.4"], delay_ms=100)]))
    try:
        s = tcp_open()
        s.sendall(framed(query(3, "h.test")))
        s.shutdown(socket.SHUT_WR)
        r = tcp_read(s, 2)
        check(r is not None and head(r)["an"] == 1, "answer after the client's half-close")
        s.settimeout(1)
        eq(s.recv(10), b"", "then EOF")
        s.close()
    finally:
        u.close()


FORGED = socket.inet_aton("198.51.100.66")


def t_forge_txid_question(ns):
    u = Upstream(ns, up([rule("t.test", "forge", forge="txid"),
                         rule("q.test", "forge", forge="question")]))
    try:
        r = udp_ask(query(0x1111, "t.test"))
        check(r is not None, "a forged reply arrives")
        check(head(r)["id"] != 0x1111, "txid differs")
        check(r.endswith(FORGED), "carries 198.51.100.66")
        eq(r[12:12 + len(wire_name("t.test")) + 4], query(0, "t.test")[12:], "question kept")
        r = udp_ask(query(0x2222, "q.test"))
        eq(head(r)["id"], 0x2222, "txid kept")
        eq(r[12:12 + len(wire_name("forged.invalid")) + 4],
           wire_name("forged.invalid") + struct.pack("!HH", 1, 1), "question forged")
        check(r.endswith(FORGED), "carries 198.51.100.66")
        s = tcp_open()
        s.sendall(framed(query(0x3333, "t.test")))
        r = tcp_read(s)
        check(r is not None and head(r)["id"] != 0x3333, "TCP forged txid")
        s.close()
    finally:
        u.close()


def t_forge_sport_saddr(ns):
    u = Upstream(ns, up([rule("p.test", "forge", forge="sport"),
                         rule("s.test", "forge", forge="saddr"),
                         rule("then.test", "forge", forge="sport",
                              records=["then.test. 1 IN A 192.0.2.5"])]), alt=ALT)
    try:
        r = udp_ask(query(1, "p.test"), timeout=0.4)
        eq(r, None, "a connected socket does not see a reply from another port")
        got = udp_ask(query(2, "p.test"), connected=False)
        check(got is not None, "reply on an unconnected socket")
        data, src = got
        eq(src[0], LISTEN, "sport: source address")
        check(src[1] != PORT, "sport: source port %d differs from %d" % (src[1], PORT))
        eq(head(data)["id"], 2, "sport: id right")
        check(data.endswith(FORGED), "sport: carries 198.51.100.66")
        data, src = udp_ask(query(3, "s.test"), connected=False)
        eq(src, (ALT, PORT), "saddr: from the alt address, same port")
        check(data.endswith(FORGED), "saddr: carries 198.51.100.66")
        # The forgery, then the genuine answer, which a connected socket does see.
        r = udp_ask(query(4, "then.test"))
        check(r is not None and r.endswith(bytes([192, 0, 2, 5])), "genuine answer after")
        st, dt, lines = u.stop()
        eq(lines[-2]["forge"], "sport", "logged forge kind")
        check("then_hex" in lines[-2] and "reply_hex" in lines[-2], "both replies logged")
    finally:
        u.close()


def t_forge_saddr_needs_alt(ns):
    u = Upstream(ns, up([rule("s.test", "forge", forge="saddr")]), expect_ready=False)
    try:
        eq(u.ready, b"", "not ready")
        eq(u.p.wait(5), 1, "exit status")
        check(b"--alt-addr" in u.p.stderr.read(), "says why")
    finally:
        u.close()


def t_icmp_unreach(ns):
    for listen in (LISTEN, LISTEN6):
        u = Upstream(ns, up([rule("i.test", "icmp-unreach"), rule("ok.test", records=[
            "ok.test. 1 IN A 192.0.2.6"])], listen=listen))
        try:
            fam = socket.AF_INET6 if ":" in listen else socket.AF_INET
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.settimeout(1)
                s.connect((listen, PORT))
                s.send(query(1, "i.test"))
                try:
                    s.recv(100)
                    raise AssertionError("%s: an answer, want ECONNREFUSED" % listen)
                except ConnectionRefusedError:
                    pass
                except socket.timeout:
                    raise AssertionError("%s: timeout, want ECONNREFUSED" % listen) from None
            check(udp_ask(query(2, "ok.test"), dst=(listen, PORT)) is not None,
                  "%s: still answering" % listen)
            s = tcp_open((listen, PORT))
            s.sendall(framed(query(3, "i.test")))
            s.settimeout(1)
            try:
                d = s.recv(10)
                check(d == b"", "TCP: reset or EOF, got %r" % d)
            except ConnectionResetError:
                pass
            s.close()
        finally:
            u.close()


def t_close(ns):
    """close: over TCP the query is read and the connection closed with a FIN, no answer (a
    proxy must fail the query at once, DNS-FWD-010); over UDP nothing is sent."""
    u = Upstream(ns, up([rule("c.test", "close"), rule("ok.test", records=[
        "ok.test. 1 IN A 192.0.2.6"])]))
    try:
        check(udp_ask(query(1, "c.test"), timeout=0.5) is None, "UDP: no answer")
        s = tcp_open((LISTEN, PORT))
        s.sendall(framed(query(2, "c.test")))
        s.settimeout(2)
        eq(s.recv(10), b"", "TCP: end of file, no answer")
        s.close()
        check(udp_ask(query(3, "ok.test")) is not None, "still answering")
    finally:
        u.close()


MALFORMED = [
    (b"", "empty message"),
    (b"\x00\x01\x01", "short header"),
    (struct.pack("!6H", 1, 0x8100, 1, 0, 0, 0) + wire_name("a.test") + b"\0\1\0\1", "QR set"),
    (struct.pack("!6H", 1, 0x0100, 0, 0, 0, 0), "QDCOUNT 0"),
    (struct.pack("!6H", 1, 0x0100, 2, 0, 0, 0) + (wire_name("a.test") + b"\0\1\0\1") * 2,
     "QDCOUNT 2"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x40" + b"a" * 64 + b"\0\0\1\0\1",
     "label over 63 (bad label type)"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 +
     b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\0\0\1\0\1", "name over 255"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x01b\xc0\x0c\0\1\0\1",
     "pointer loop or forward pointer"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x01a\x04te", "truncated question"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + wire_name("a.test") + b"\0\1",
     "truncated question"),
]


def t_malformed(ns):
    u = Upstream(ns, up([rule("b", records=["b. 1 IN A 192.0.2.8"]),
                         rule("a.test", records=["a.test. 1 IN A 192.0.2.9"])]))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.connect((LISTEN, PORT))
            for msg, _ in MALFORMED:
                s.send(msg)
            try:
                raise AssertionError("an answer to malformed input: %r" % s.recv(100))
            except socket.timeout:
                pass
        # A valid question that is a pointer into the header (offset 4 holds a 0: the root
        # label after "b"), and trailing garbage: both parse, both answered.
        q = struct.pack("!6H", 0x4242, 0x0100, 1, 0, 0, 0) + b"\x01b\xc0\x04\0\1\0\1"
        r = udp_ask(q)
        check(r is not None and head(r)["an"] == 1, "pointer in the question answered")
        eq(r[12:12 + 7], b"\x01b\x00\x00\x01\x00\x01", "question echoed uncompressed")
        r = udp_ask(query(5, "a.test") + b"garbage")
        check(r is not None and head(r)["an"] == 1, "trailing garbage answered")
        s = tcp_open()
        s.sendall(framed(b"\x00\x01") + framed(query(6, "a.test")))
        r = tcp_read(s)
        check(r is not None and head(r)["id"] == 6, "TCP: malformed skipped, next answered")
        s.close()
        st, dt, lines = u.stop()
        eq([x.get("malformed") for x in lines[:len(MALFORMED)]], [m for _, m in MALFORMED],
           "malformed reasons")
        eq(lines[len(MALFORMED)]["qname"], "b.", "logged qname through a pointer")
        eq(lines[-2].get("malformed"), None, "TCP valid query not malformed")
        eq(lines[-3].get("malformed"), "short header", "TCP malformed logged")
        eq(lines[-1]["summary"], {"queries": len(MALFORMED) + 4, "udp": len(MALFORMED) + 2,
                                  "tcp": 2, "malformed": len(MALFORMED) + 1}, "summary")
    finally:
        u.close()


def t_log_and_summary(ns):
    u = Upstream(ns, up([rule("a.example.test", records=[A_RR])]))
    try:
        for i in range(3):
            check(udp_ask(query(100 + i, "a.example.test")) is not None, "UDP answer %d" % i)
        s = tcp_open()
        for i in range(2):
            s.sendall(framed(query(200 + i, "a.example.test")))
            check(tcp_read(s) is not None, "TCP answer %d" % i)
        s.close()
        st, dt, lines = u.stop()
        eq(st, 0, "exit status on SIGTERM")
        check(dt < 1.0, "SIGTERM ends it promptly (%.3f s)" % dt)
        eq(lines[-1], {"summary": {"queries": 5, "udp": 3, "tcp": 2, "malformed": 0}},
           "summary line last")
        e = lines[0]
        for k in ("t", "transport", "src", "sport", "id", "qname", "qtype", "action",
                  "reply_hex"):
            check(k in e, "log key %s" % k)
        eq((e["transport"], e["src"], e["id"], e["qname"], e["qtype"], e["action"]),
           ("udp", LISTEN, 100, "a.example.test.", "A", "answer"), "log entry")
        eq(bytes.fromhex(e["query_hex"]), query(100, "a.example.test"), "query_hex")
        eq(head(bytes.fromhex(e["reply_hex"]))["id"], 100, "reply_hex")
        eq([x["transport"] for x in lines[:-1]], ["udp"] * 3 + ["tcp"] * 2, "transports")
        check(all(lines[i]["t"] <= lines[i + 1]["t"] for i in range(4)), "t monotonic")
    finally:
        u.close()


def t_udp_only(ns):
    u = Upstream(ns, up([rule("a.example.test", records=[A_RR])], tcp=False))
    try:
        try:
            tcp_open().close()
            raise AssertionError("TCP connected with tcp: false")
        except ConnectionRefusedError:
            pass
        check(udp_ask(query(1, "a.example.test")) is not None, "UDP answers")
    finally:
        u.close()


def t_bad_config(ns):
    for obj, why in ((up([rule("x.test", records=["x.test. 1 IN A 300.1.1.1"])]), b"address"),
                     (up([rule("x.test", records=["x.test. 1 IN WKS foo"])]), b"WKS"),
                     (up([rule("x.test", rcode="BOGUS")]), b"rcode"),
                     ({"kind": "fake", "listen": "nowhere", "rules": []}, b"listen")):
        u = Upstream(ns, obj, expect_ready=False)
        try:
            eq(u.ready, b"", "not ready")
            eq(u.p.wait(5), 1, "exit status")
            check(why in u.p.stderr.read(), "stderr names %r" % why)
        finally:
            u.close()


def t_unbound(ns):
    if not any(os.access(os.path.join(d, "unbound"), os.X_OK)
               for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin"]):
        return "unbound not installed"
    u = Upstream(ns, {"kind": "unbound", "ns": "peer", "listen": "%s:%d" % (LISTEN, PORT),
                      "zone": [A_RR, 'a.example.test. 60 IN TXT "hello world"',
                               "b.example.test. 60 IN AAAA 2001:db8::1"]})
    pattern = os.path.join(u.tmp, "cellcheck-unbound-*")
    before = set()
    check(glob.glob(pattern), "unbound's files in --tmp-dir while it runs")
    try:
        r = udp_ask(query(0x5151, "a.example.test"), timeout=2)
        check(r is not None, "unbound answers")
        h = head(r)
        eq((h["id"], h["flags"] & 0x800F, h["an"]), (0x5151, 0x8000, 1), "NOERROR, 1 answer")
        check(r.endswith(struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])), "A rdata")
        s = tcp_open()
        s.sendall(framed(query(0x5252, "a.example.test", 16)))
        r = tcp_read(s, 2)
        check(r is not None and r.endswith(b"\x0bhello world"), "TXT over TCP")
        s.close()
        r = udp_ask(query(0x5353, "c.example.test"), timeout=2)
        eq(head(r)["flags"] & 0xF, 3, "NXDOMAIN in the zone")
        st, dt, lines = u.stop()
        eq(st, 0, "exit status")
        eq(lines[-1], {"summary": {"queries": 3, "udp": 2, "tcp": 1, "malformed": None}},
           "summary")
        eq([x["qname"] for x in lines[:-1]], ["a.example.test.", "a.example.test.",
                                             "c.example.test."], "logged queries")
        eq(set(glob.glob(pattern)) - before, set(), "temp dir removed")
    finally:
        u.close()


TESTS = [t_answer_a_bytes, t_aaaa_txt_cname_rcode, t_refused_default, t_wildcard_case, t_delay,
         t_drop, t_truncate, t_half_close, t_forge_txid_question, t_forge_sport_saddr,
         t_forge_saddr_needs_alt, t_icmp_unreach, t_close, t_malformed, t_log_and_summary,
         t_udp_only, t_bad_config, t_unbound]


def in_netns(test):
    """Run test(ns) in a fresh network namespace, removed whatever happens; its skip reason."""
    ns = Netns()
    try:
        return test(ns)
    finally:
        ns.close()


def main():
    # meson's timeout sends SIGTERM first: unwind, so every finally removes what it made.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if os.geteuid() != 0:
        Tap.skip_all("needs root (network namespaces, raw ICMP)")
        return 0
    try:
        Netns().close()
    except OSError as e:
        Tap.skip_all("cannot make a network namespace: %s" % e)
        return 0
    t = Tap(prefix="test-upstream-")
    t.plan(len(TESTS))
    try:
        for test in TESTS:
            t.run(test.__name__[2:], in_netns, test)
    finally:
        status = t.done()
    return status


if __name__ == "__main__":
    sys.exit(main())
