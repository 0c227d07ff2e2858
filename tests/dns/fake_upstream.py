#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A scripted fake DNS upstream for the DNS proxy tests.

Usage: fake_upstream.py [--addr IP] [--port N] [--log-fd N] [--ready-fd N]
                        (--script JSON | --script-file PATH)

Listens on ADDR:PORT over UDP and TCP. The script is a JSON object:

  {"default": "answer",                    behaviour of a query nothing else matches
   "names": {"slow": "delay 300",          first label (lowercase) or whole name with the
             "x.example.test.": "drop"},   trailing dot (lowercase) -> behaviour
   "sequence": ["answer", "drop"]}         else the n-th such query takes sequence[n]

Behaviours (forgeries, truncation and the rest are the harness's upstream, which the cases use):
  answer                  one A record 192.0.2.1, question and id echoed
  drop                    never answer (over TCP the connection is held open)
  delay MS                answer after MS milliseconds
  rcode N                 no records, that rcode
  big                     100 A records (about 1.6 kB: only TCP or a large EDNS buffer fits)
  huge                    1000 A records (about 16 kB, for TCP)

For every received message, one JSON line goes to the log fd (stdout by default):
  {"transport", "src", "sport", "len", "id", "qname", "qtype", "qclass", "behaviour",
   "reply" (hex of the genuine reply it sent or will send, absent when none), "t" (monotonic)}
or {"transport", "src", "sport", "len", "malformed": reason} when the message does not parse.
Readiness: one byte on --ready-fd (then closed), or the line {"ready": true} on stdout. SIGTERM
ends it at once (exit 0).
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

# No __pycache__ in the source tree: the tests leave no files behind.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402

GENUINE_ADDR = "192.0.2.1"


class Script:
    def __init__(self, spec):
        self.default = spec.get("default", "answer")
        self.names = {k.lower(): v for k, v in spec.get("names", {}).items()}
        self.sequence = list(spec.get("sequence", []))
        self.n = 0
        self.lock = threading.Lock()

    def behaviour(self, labels):
        full = dnsmsg.name_text(labels).lower()
        if full in self.names:
            return self.names[full]
        if labels:
            first = labels[0].decode("latin-1").lower()
            if first in self.names:
                return self.names[first]
        with self.lock:
            n = self.n
            self.n += 1
        if n < len(self.sequence):
            return self.sequence[n]
        return self.default


class Log:
    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def write(self, obj):
        line = (json.dumps(obj, sort_keys=True) + "\n").encode()
        with self.lock:
            os.write(self.fd, line)


def make_reply(query, q, *, rcode=0, addrs=(GENUINE_ADDR,)):
    """A reply to `query` echoing its question with A records."""
    h = dnsmsg.header(query)
    flags = 0x8000 | (h["opcode"] << 11) | 0x0400 | (h["rd"] << 8)
    flags |= 0x0080 | (rcode & 0xF)
    qbytes = bytes(query[q["start"]:q["end"]])
    an = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(a)
                  for a in addrs)
    return struct.pack("!HHHHHH", h["id"], flags, 1, len(addrs), 0, 0) + qbytes + an


def genuine(query, q, behaviour, transport):
    """The genuine reply for a behaviour, or None when it never sends one."""
    kind = behaviour.split()[0]
    if kind == "drop":
        return None
    if kind == "rcode":
        return make_reply(query, q, rcode=int(behaviour.split()[1]), addrs=())
    if kind in ("big", "huge"):
        n = 100 if kind == "big" else 1000
        return make_reply(query, q, addrs=[f"192.0.2.{i % 250 + 1}" for i in range(n)])
    return make_reply(query, q)


class Server:
    def __init__(self, args, script, log):
        self.args = args
        self.script = script
        self.log = log
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.udp.bind((args.addr, args.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((args.addr, args.port))
        self.tcp.listen(1024)
        self.send_lock = threading.Lock()

    def entry(self, transport, src, msg):
        e = {"transport": transport, "src": src[0], "sport": src[1], "len": len(msg),
             "t": time.monotonic()}
        try:
            h = dnsmsg.header(msg)
            if h["qr"] or h["qdcount"] < 1:
                raise dnsmsg.ParseError("not a query")
            q = dnsmsg.question(msg)
        except dnsmsg.ParseError as err:
            e["malformed"] = str(err)
            return e, None
        e.update(id=h["id"], qname=q["qname"], qtype=q["qtype"], qclass=q["qclass"])
        return e, q

    # --- UDP ---
    def udp_send(self, data, dst):
        with self.send_lock:
            self.udp.sendto(data, dst)

    def udp_query(self, msg, src):
        e, q = self.entry("udp", src, msg)
        if q is None:
            self.log.write(e)
            return
        b = self.script.behaviour(q["labels"])
        reply = genuine(msg, q, b, "udp")
        e["behaviour"] = b
        if reply is not None:
            e["reply"] = reply.hex()
        self.log.write(e)
        kind = b.split()[0]
        if kind == "delay":
            threading.Timer(int(b.split()[1]) / 1000, self.udp_send, (reply, src)).start()
        elif reply is not None:
            self.udp_send(reply, src)

    def udp_loop(self):
        while True:
            msg, src = self.udp.recvfrom(65535)
            self.udp_query(msg, src)

    # --- TCP ---
    def tcp_conn(self, conn, src):
        buf = b""
        lock = threading.Lock()

        def send(data):
            with lock:
                try:
                    conn.sendall(struct.pack("!H", len(data)) + data)
                except OSError:
                    pass

        try:
            while True:
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from("!H", buf)[0]:
                    n = struct.unpack_from("!H", buf)[0]
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    self.tcp_query(msg, src, send)
                data = conn.recv(65535)
                if not data:
                    break
                buf += data
        except OSError:
            pass
        finally:
            conn.close()

    def tcp_query(self, msg, src, send):
        e, q = self.entry("tcp", src, msg)
        if q is None:
            self.log.write(e)
            return
        b = self.script.behaviour(q["labels"])
        reply = genuine(msg, q, b, "tcp")
        e["behaviour"] = b
        if reply is not None:
            e["reply"] = reply.hex()
        self.log.write(e)
        kind = b.split()[0]
        if kind == "delay":
            threading.Timer(int(b.split()[1]) / 1000, send, (reply,)).start()
        elif reply is not None:
            send(reply)

    def tcp_loop(self):
        while True:
            conn, src = self.tcp.accept()
            threading.Thread(target=self.tcp_conn, args=(conn, src), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description="scripted fake DNS upstream")
    ap.add_argument("--addr", default="10.77.0.1")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--log-fd", type=int, default=1)
    ap.add_argument("--ready-fd", type=int, default=-1)
    ap.add_argument("--script", default=None, help="the script as JSON text")
    ap.add_argument("--script-file", default=None)
    args = ap.parse_args()

    # SIGTERM ends everything at once: there is nothing to flush (every log line is one write).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.script_file:
        with open(args.script_file, encoding="utf-8") as f:
            spec = json.load(f)
    else:
        spec = json.loads(args.script or "{}")
    server = Server(args, Script(spec), Log(args.log_fd))
    threading.Thread(target=server.tcp_loop, daemon=True).start()
    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"R")
        os.close(args.ready_fd)
    else:
        print(json.dumps({"ready": True}), flush=True)
    try:
        server.udp_loop()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
