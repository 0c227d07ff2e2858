#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""DNS client for the DNS proxy tests that are not cases yet: well-formed queries (built with
scapy's DNS layer), a TCP client that does not read, and malformed traffic (built by hand).

Usage: dns_client.py [--server IP:PORT] [--timeout S] MODE [options]; run it inside the netns
the queries should come from. Every mode prints JSON objects, one per line, and exits 0 when
it could run (what the answers say is for the caller to judge), 2 on bad usage, 77 when scapy
is missing.

Modes:
  queries --spec JSON   a list of {"name", "type", "tcp", "id", "edns", "rd", "opcode", "hex",
                        "timeout", "linger_ms"}: one line per query, in order
  stall                 TCP: small receive buffer, send queries, never read; hold, then drain
  flood --count N       N malformed datagrams of varied families, then one valid query

A query line: {"i", "name", "transport", "sport", "qid", "sent" (hex), "elapsedUs",
"response" (decoded: hex, id, flags, rcode, counts, qname, answers...) or "error"
("timeout", "closed", "reset", "refused", ...), "extra" (responses after the first)}.
"""

import argparse
import errno
import json
import os
import random
import select
import socket
import struct
import sys
import time

# No __pycache__ in the source tree: the tests leave no files behind.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402

try:
    from scapy.layers.dns import DNS, DNSQR, DNSRROPT
except ImportError:
    print("dns_client.py: python3-scapy is not installed", file=sys.stderr)
    sys.exit(77)


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def now_us():
    return time.monotonic_ns() // 1000


def addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def build_query(name, qtype="A", qid=None, rd=1, edns=None, opcode=0):
    qid = random.randrange(65536) if qid is None else qid
    ar = DNSRROPT(rclass=edns) if edns else None
    msg = DNS(id=qid, rd=rd, opcode=opcode,
              qd=DNSQR(qname=name, qtype=dnsmsg.qtype_value(qtype), qclass=1), ar=ar)
    return bytes(msg), qid


def error_name(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    code = getattr(e, "errno", None)
    return {errno.ECONNREFUSED: "refused", errno.ECONNRESET: "reset",
            errno.ENETUNREACH: "unreachable", errno.EHOSTUNREACH: "unreachable",
            errno.EPIPE: "reset"}.get(code, errno.errorcode.get(code, str(e)))


def recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed" if not buf else "closed mid-frame")
        buf += chunk
    return buf


def recv_frame(sock, deadline):
    n = struct.unpack("!H", recv_exact(sock, 2, deadline))[0]
    return recv_exact(sock, n, deadline)


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def exchange_udp(server, msg, timeout, linger_ms=0):
    out = {"transport": "udp"}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = now_us()
    try:
        s.connect(server)
        out["sport"] = s.getsockname()[1]
        t0 = now_us()
        s.send(msg)
        s.settimeout(timeout)
        resp = s.recv(65535)
        out["elapsedUs"] = now_us() - t0
        out["response"] = dnsmsg.describe(resp)
        extra = 0
        if linger_ms:
            s.settimeout(linger_ms / 1000)
            try:
                while s.recv(65535) is not None:
                    extra += 1
            except OSError:
                pass
        out["extra"] = extra
    except OSError as e:
        out["elapsedUs"] = now_us() - t0
        out["error"] = error_name(e)
    finally:
        s.close()
    return out


def exchange_tcp(server, msg, timeout):
    out = {"transport": "tcp"}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t0 = now_us()
    try:
        s.settimeout(timeout)
        s.connect(server)
        out["sport"] = s.getsockname()[1]
        t0 = now_us()
        s.sendall(frame(msg))
        resp = recv_frame(s, time.monotonic() + timeout)
        out["elapsedUs"] = now_us() - t0
        out["response"] = dnsmsg.describe(resp)
    except EOFError as e:
        out["elapsedUs"] = now_us() - t0
        out["error"] = str(e)
    except OSError as e:
        out["elapsedUs"] = now_us() - t0
        out["error"] = error_name(e)
    finally:
        s.close()
    return out


def one_query(args, spec, i):
    server = addr(spec["server"]) if "server" in spec else args.server
    if "hex" in spec:
        msg = bytes.fromhex(spec["hex"])
        qid = struct.unpack_from("!H", msg)[0] if len(msg) >= 2 else None
    else:
        msg, qid = build_query(spec["name"], spec.get("type", "A"), spec.get("id"),
                               spec.get("rd", 1), spec.get("edns"), spec.get("opcode", 0))
    timeout = spec.get("timeout", args.timeout)
    if spec.get("tcp"):
        out = exchange_tcp(server, msg, timeout)
    else:
        out = exchange_udp(server, msg, timeout, spec.get("linger_ms", 0))
    out.update(i=i, name=spec.get("name"), qid=qid, sent=msg.hex())
    return out


def mode_queries(args):
    specs = json.loads(args.spec)
    for i, spec in enumerate(specs):
        emit(one_query(args, spec, i))


def tcp_connect(args, nodelay=False, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(args.timeout)
    s.connect(args.server)
    return s


def wait_eof(s, deadline):
    """Read (and count) until EOF or reset: (frames, "eof"/"reset"/"timeout")."""
    frames = 0
    while True:
        try:
            recv_frame(s, deadline)
            frames += 1
        except EOFError:
            return frames, "eof"
        except OSError as e:
            return frames, error_name(e)


def mode_stall(args):
    s = tcp_connect(args, rcvbuf=args.rcvbuf)
    sport = s.getsockname()[1]
    data = b"".join(frame(build_query(args.name, args.type)[0]) for _ in range(args.count))
    # Never block for long on sending: a server that stops reading must not stall us here.
    s.setblocking(False)
    sent, stuck_since = 0, None
    while sent < len(data):
        try:
            sent += s.send(data[sent:])
            stuck_since = None
        except BlockingIOError:
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 1.0:
                break
            select.select([], [s], [], 0.05)
        except OSError as e:
            emit({"sendError": error_name(e)})
            break
    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"S")
        os.close(args.ready_fd)
    time.sleep(args.hold_ms / 1000)
    s.setblocking(True)
    frames, how = wait_eof(s, time.monotonic() + args.timeout)
    emit({"sport": sport, "queries": args.count, "bytesSent": sent, "bytesQueued": len(data),
          "answers": frames, "end": how, "closed": how in ("eof", "reset")})
    s.close()


# --- malformed traffic -----------------------------------------------------------------------

def hdr(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QNAME = dnsmsg.encode_name("flood.example.test")
QUESTION = QNAME + struct.pack("!HH", 1, 1)


def opt_rr(rdata=b"", rdlen=None):
    n = len(rdata) if rdlen is None else rdlen
    return b"\x00" + struct.pack("!HHIH", 41, 1232, 0, n) + rdata


# Each family: (builder(rng, qid) -> bytes, expected response)
# "none": no response at all; "header": FORMERR, 12-byte header only (the question did not
# parse); "question": FORMERR with the question echoed.
FAMILIES = {
    "empty": (lambda r, q: b"", "none"),
    "short": (lambda r, q: bytes(r.randrange(256) for _ in range(r.randrange(1, 12))), "none"),
    "response": (lambda r, q: hdr(q, 0x8100) + QUESTION, "none"),
    "qdcount0": (lambda r, q: hdr(q, qd=0), "header"),
    "qdcount2": (lambda r, q: hdr(q, qd=2) + QUESTION + QUESTION, "header"),
    "ancount1": (lambda r, q: hdr(q, an=1) + QUESTION + b"\xc0\x0c" +
                 struct.pack("!HHIH", 1, 1, 0, 4) + b"\x01\x02\x03\x04", "header"),
    "nscount1": (lambda r, q: hdr(q, ns=1) + QUESTION + b"\x00" +
                 struct.pack("!HHIH", 1, 1, 0, 4) + b"\x01\x02\x03\x04", "header"),
    "qpointer": (lambda r, q: hdr(q) + b"\x03abc\xc0\x0c" + struct.pack("!HH", 1, 1), "header"),
    "badlabel": (lambda r, q: hdr(q) + bytes([r.randrange(0x40, 0xC0)]) + b"abcdefgh\x00" +
                 struct.pack("!HH", 1, 1), "header"),
    "longname": (lambda r, q: hdr(q) + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" +
                 b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00" + struct.pack("!HH", 1, 1), "header"),
    "noqtype": (lambda r, q: hdr(q) + QNAME + b"\x00\x01"[:r.randrange(0, 2)], "header"),
    "unterminated": (lambda r, q: hdr(q) + b"\x05flood\x07example", "header"),
    "trailing": (lambda r, q: hdr(q) + QUESTION + bytes(r.randrange(1, 17)), "question"),
    "arcount_missing": (lambda r, q: hdr(q, ar=1) + QUESTION, "question"),
    "ar_rdlen": (lambda r, q: hdr(q, ar=1) + QUESTION + opt_rr(b"\x00" * 4, 40), "question"),
    "ar_fwdptr": (lambda r, q: hdr(q, ar=1) + QUESTION + b"\xc0\x40" +
                  struct.pack("!HHIH", 41, 1232, 0, 0) + b"\x00" * 40, "question"),
    "ar_selfptr": (lambda r, q: hdr(q, ar=1) + QUESTION + b"\xc0\x24" +
                   struct.pack("!HHIH", 41, 1232, 0, 0), "question"),
    "oversize": (lambda r, q: hdr(q, ar=1) + QUESTION +
                 opt_rr(bytes(4097 + r.randrange(0, 2000) - 12 - len(QUESTION) - 11)),
                 "question"),
}


def snmp_udp():
    try:
        with open("/proc/net/snmp") as f:
            lines = [l.split() for l in f if l.startswith("Udp:")]
        return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))
    except (OSError, IndexError, ValueError):
        return {}


def rx_queue(server):
    """Bytes waiting in the receive queue of the UDP socket bound to server (netns-local)."""
    ip = socket.inet_aton(server[0])
    local = "%08X:%04X" % (struct.unpack("<I", ip)[0], server[1])
    try:
        with open("/proc/net/udp") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 4 and parts[1] == local:
                    return int(parts[4].split(":")[1], 16)
    except OSError:
        pass
    return 0


def mode_flood(args):
    rng = random.Random(args.seed)
    names = sorted(FAMILIES)
    stats = {n: {"sent": 0, "responses": 0, "bad": 0} for n in names}
    sent_by_id = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.connect(args.server)
    s.setblocking(False)
    before = snmp_udp()
    t0 = time.monotonic()

    def drain():
        while True:
            try:
                resp = s.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            if len(resp) < 2:
                continue
            rid = struct.unpack_from("!H", resp)[0]
            fam, msg = sent_by_id.get(rid, (None, None))
            if fam is None:
                stats.setdefault("unknown", {"sent": 0, "responses": 0, "bad": 0})
                fam = "unknown"
            st = stats[fam]
            st["responses"] += 1
            if not formerr_ok(resp, msg, FAMILIES.get(fam, (None, None))[1]):
                st["bad"] += 1
                st.setdefault("badExample", resp.hex())

    def settle():
        deadline = time.monotonic() + 5
        while rx_queue(args.server) and time.monotonic() < deadline:
            drain()
            time.sleep(0.001)
        drain()

    for i in range(args.count):
        fam = names[i % len(names)]
        qid = i & 0xFFFF
        msg = FAMILIES[fam][0](rng, qid)
        if len(msg) >= 2:
            sent_by_id[qid] = (fam, msg)
        while True:
            try:
                s.send(msg)
                break
            except BlockingIOError:
                select.select([], [s], [], 0.01)
        stats[fam]["sent"] += 1
        # Paced so the proxy's socket buffer never overflows: a kernel drop would hide what
        # the proxy does with each datagram.
        if i % args.batch == args.batch - 1:
            settle()
    settle()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        drain()
        time.sleep(0.01)
    after = snmp_udp()
    for n in names:
        emit(dict(family=n, expect=FAMILIES[n][1], **stats[n]))
    if "unknown" in stats:
        emit(dict(family="unknown", **stats["unknown"]))
    drops = {k: after.get(k, 0) - before.get(k, 0) for k in ("InErrors", "RcvbufErrors")}
    msg, qid = build_query(args.then_name, "A")
    final = exchange_udp(args.server, msg, args.timeout)
    final.update(qid=qid, name=args.then_name)
    emit({"final": final, "drops": drops, "sent": args.count,
          "floodMs": int((time.monotonic() - t0) * 1000)})


def formerr_ok(resp, msg, expect):
    """A FORMERR made by the proxy: header copied as the brief says, question iff parsed."""
    if expect not in ("header", "question") or len(resp) < 12 or msg is None:
        return False
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", resp)
    mflags = struct.unpack_from("!H", msg, 2)[0]
    if qid != struct.unpack_from("!H", msg)[0] or not flags & 0x8000 or flags & 0xF != 1:
        return False
    if (flags >> 11) & 0xF != (mflags >> 11) & 0xF or (flags >> 8) & 1 != (mflags >> 8) & 1:
        return False
    if flags & 0x0080 or an or ns or ar:
        return False
    if expect == "header":
        return qd == 0 and len(resp) == 12
    return qd == 1 and resp[12:] == QUESTION


def main():
    ap = argparse.ArgumentParser(description="DNS test client")
    ap.add_argument("--server", type=addr, default=("10.77.0.2", 53))
    ap.add_argument("--timeout", type=float, default=3.0)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("queries")
    p.add_argument("--spec", required=True)
    p = sub.add_parser("stall")
    p.add_argument("--name", required=True)
    p.add_argument("--type", default="A")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--rcvbuf", type=int, default=4096)
    p.add_argument("--hold-ms", type=int, default=3000)
    p.add_argument("--ready-fd", type=int, default=-1)
    p = sub.add_parser("flood")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--then-name", default="after-flood.example.test")
    p.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    modes = {
        "queries": mode_queries,
        "stall": mode_stall,
        "flood": mode_flood,
    }
    modes[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
