#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cellcheck's traffic driver: one long-lived process per runner worker (harness/hdrv.h).

Reads JSON requests, one per line, on stdin and answers each with one JSON line on stdout
(flushed); logs go to stderr. Greets with {"id": 0, "ok": true, "result": {"driver": ...}}.

  request:  {"id": 7, "op": "udp_flow", "netns": "/proc/123/fd/9", "timeout_ms": 2000,
             "args": {...}}
  response: {"id": 7, "ok": true, "result": {...}}  or  {"id": 7, "ok": false, "error": "..."}

Ops and args: cases/README.md, "Steps" (driver row); results: "Driver results". More ops
for the harness itself: "ping" (liveness, and the netns inode the command ran in),
"release" (drop the worker of a namespace, or of all with netns null, before the harness
closes the namespace's fd), and "sleep" ({"ms": N}, deaf to timeout_ms: for tests).

Namespaces: a worker thread per namespace, keyed by the namespace's inode (not the path),
that setns()ed once and runs that namespace's commands in order. A worker pins its
namespace, so it retires as soon as its path stops naming that inode (checked every 50 ms)
or on "release". Kernel sockets do the work (they take the namespace of the thread that
creates them); scapy is imported lazily, only for DNS type names outside the built-in table,
so startup stays fast. Every op is bounded by its timeout_ms; a bad request gets ok:false,
never a crash.
"""

import ctypes
import errno
import json
import os
import queue
import random
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True

VERSION = 1
CLONE_NEWNET = 0x40000000
DEFAULT_TIMEOUT_MS = 5000
TICK_S = 0.05
# Past its deadline a command gets this much grace before the driver answers for it.
WEDGE_GRACE_S = 0.25
SEGMENT_PAUSE_S = 0.02

_libc = ctypes.CDLL(None, use_errno=True)
_out_lock = threading.Lock()
_pending = {}  # request id (as JSON text) -> deadline; answered ids leave it


def log(msg):
    try:
        sys.stderr.write("cellcheck_driver[%d]: %s\n" % (os.getpid(), msg))
        sys.stderr.flush()
    except OSError:
        pass


def _write_line(obj):
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except (OSError, ValueError):
        # The harness is gone: nothing left to serve.
        os._exit(0)


def respond(rid, ok, payload, before=None):
    """Answer a request once: a late worker loses to the watchdog's timeout answer.

    before(), when given, runs once the answer is claimed and before it is written: the client
    sends its next request only after reading this answer, so what before() does is in place
    by then (the watchdog gives the namespace a fresh worker there).
    """
    key = json.dumps(rid)
    with _out_lock:
        if key not in _pending:
            return False
        del _pending[key]
        if before is not None:
            before()
        obj = {"id": rid, "ok": ok}
        obj["result" if ok else "error"] = payload
        _write_line(obj)
    return True


class BadRequest(Exception):
    pass


def errname(e):
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout"
    code = getattr(e, "errno", None)
    if code is None:
        return str(e) or type(e).__name__
    return errno.errorcode.get(code, "E%d" % code)


# ---------------------------------------------------------------- argument checking


class Args:
    """The args object of one request, read key by key with range checks."""

    def __init__(self, op, args, known):
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise BadRequest("%s: args: expected an object" % op)
        for k in args:
            if k not in known:
                raise BadRequest('%s: args: unknown key "%s"' % (op, k))
        self.op, self.a = op, args

    def _fail(self, key, what):
        raise BadRequest("%s: args.%s: %s" % (self.op, key, what))

    def int(self, key, default, lo, hi):
        v = self.a.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self._fail(key, "expected an integer %d..%d" % (lo, hi))
        return v

    def bool(self, key, default):
        v = self.a.get(key, default)
        if not isinstance(v, bool):
            self._fail(key, "expected true or false")
        return v

    def str(self, key, default=None, choices=None):
        v = self.a.get(key, default)
        if v is None:
            return None
        if not isinstance(v, str):
            self._fail(key, "expected a string")
        if choices and v not in choices:
            self._fail(key, "expected one of %s" % ", ".join(choices))
        return v

    def hex(self, key, default=None):
        v = self.str(key, default)
        if v is None:
            return None
        try:
            return bytes.fromhex(v)
        except ValueError:
            self._fail(key, "not hex")

    def parts(self, key):
        """A list of hex strings and {"repeat_hex": HEX, "count": N} objects, concatenated."""
        v = self.a.get(key)
        if v is None:
            return None
        if not isinstance(v, list):
            self._fail(key, "expected a list")
        out = b""
        for i, part in enumerate(v):
            if isinstance(part, str):
                try:
                    out += bytes.fromhex(part)
                except ValueError:
                    self._fail("%s[%d]" % (key, i), "not hex")
                continue
            if (not isinstance(part, dict) or set(part) != {"repeat_hex", "count"} or
                    not isinstance(part["repeat_hex"], str) or
                    isinstance(part["count"], bool) or not isinstance(part["count"], int) or
                    not 0 <= part["count"] <= 1000000):
                self._fail("%s[%d]" % (key, i),
                           'expected a hex string or {"repeat_hex": HEX, "count": 0..1000000}')
            try:
                out += bytes.fromhex(part["repeat_hex"]) * part["count"]
            except ValueError:
                self._fail("%s[%d].repeat_hex" % (key, i), "not hex")
            if len(out) > 16 * 1024 * 1024:
                self._fail(key, "longer than 16 MiB")
        return out

    def hostport(self, key):
        v = self.str(key)
        if v is None:
            self._fail(key, "required")
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            self._fail(key, '"%s" is not IP:PORT' % v)
        if host.startswith("[") and host.endswith("]"):
            fam, host = socket.AF_INET6, host[1:-1]
        else:
            fam = socket.AF_INET
        if not ip_ok(fam, host):
            self._fail(key, '"%s" is not IP:PORT' % v)
        return fam, (host, int(port))

    def ip(self, key):
        v = self.str(key)
        if v is None:
            self._fail(key, "required")
        host = v[1:-1] if v.startswith("[") and v.endswith("]") else v
        for fam in (socket.AF_INET, socket.AF_INET6):
            if ip_ok(fam, host):
                return fam, host
        self._fail(key, '"%s" is not an IP address' % v)


def ip_ok(fam, host):
    try:
        socket.inet_pton(fam, host)
        return True
    except (OSError, ValueError):
        return False


def fmt_addr(sa):
    if ":" in sa[0]:
        return "[%s]:%d" % (sa[0], sa[1])
    return "%s:%d" % (sa[0], sa[1])


class Clock:
    def __init__(self, deadline):
        self.deadline = deadline

    def left(self, cap_s=None):
        left = max(0.0, self.deadline - time.monotonic())
        return left if cap_s is None else min(left, cap_s)


# ---------------------------------------------------------------- DNS wire (independent of ref/)

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 64: "SVCB",
         65: "HTTPS", 252: "AXFR", 255: "ANY", 257: "CAA"}
TYPE_NUMS = {v: k for k, v in TYPES.items()}
CLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
CLASS_NUMS = {v: k for k, v in CLASSES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}


def dns_type_num(a, key, default):
    v = a.a.get(key, default)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535:
        return v
    if not isinstance(v, str):
        a._fail(key, "expected a type name or number")
    name = v.upper()
    if name in TYPE_NUMS:
        return TYPE_NUMS[name]
    if name.startswith("TYPE") and name[4:].isdigit() and int(name[4:]) < 65536:
        return int(name[4:])
    try:  # rare names: scapy's table, imported only now (it takes ~0.6 s)
        from scapy.layers.dns import dnstypes
        for num, nm in dnstypes.items():
            if nm.upper() == name:
                return num
    except ImportError:
        pass
    a._fail(key, 'unknown DNS type "%s"' % v)


def dns_class_num(a, key, default):
    v = a.a.get(key, default)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535:
        return v
    if isinstance(v, str) and v.upper() in CLASS_NUMS:
        return CLASS_NUMS[v.upper()]
    if isinstance(v, str) and v.upper().startswith("CLASS") and v[5:].isdigit():
        return int(v[5:]) & 0xFFFF
    a._fail(key, "expected a class name or number")


def dns_encode_name(name):
    out = b""
    labels = [x for x in name.rstrip(".").split(".")] if name not in ("", ".") else []
    for lab in labels:
        try:
            raw = lab.encode("ascii")
        except UnicodeEncodeError:
            raise BadRequest('dns_query: args.qname: not ASCII (give the A-label): "%s"' % name)
        if not 0 < len(raw) < 64:
            raise BadRequest('dns_query: args.qname: bad label in "%s"' % name)
        out += bytes([len(raw)]) + raw
    out += b"\0"
    if len(out) > 255:
        raise BadRequest("dns_query: args.qname: longer than 255 bytes")
    return out


def dns_build_query(qname, qtype, qclass, txid, rd):
    hdr = struct.pack("!HHHHHH", txid, 0x0100 if rd else 0, 1, 0, 0, 0)
    return hdr + dns_encode_name(qname) + struct.pack("!HH", qtype, qclass)


class Malformed(Exception):
    pass


def dns_read_name(msg, off):
    labels, jumps, end = [], 0, None
    while True:
        if off >= len(msg):
            raise Malformed("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise Malformed("truncated pointer")
            if end is None:
                end = off + 2
            jumps += 1
            if jumps > 64:
                raise Malformed("pointer loop")
            off = ((n & 0x3F) << 8) | msg[off + 1]
            continue
        if n & 0xC0:
            raise Malformed("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise Malformed("label runs past the end")
        labels.append(msg[off:off + n].decode("ascii", "backslashreplace"))
        off += n
    return ".".join(labels) + ".", (end if end is not None else off)


def dns_rdata_text(msg, rtype, off, rdlen):
    rd = msg[off:off + rdlen]
    try:
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntop(socket.AF_INET, rd)
        if rtype == 28 and rdlen == 16:
            return socket.inet_ntop(socket.AF_INET6, rd)
        if rtype in (2, 5, 12):
            return dns_read_name(msg, off)[0]
        if rtype == 15:
            return "%d %s" % (struct.unpack("!H", rd[:2])[0], dns_read_name(msg, off + 2)[0])
        if rtype == 16:
            parts, i = [], 0
            while i < len(rd):
                n = rd[i]
                parts.append('"%s"' % rd[i + 1:i + 1 + n].decode("ascii", "backslashreplace"))
                i += 1 + n
            return " ".join(parts)
        if rtype == 6:
            mname, o = dns_read_name(msg, off)
            rname, o = dns_read_name(msg, o)
            return "%s %s %d %d %d %d %d" % ((mname, rname) + struct.unpack("!IIIII",
                                                                              msg[o:o + 20]))
    except (Malformed, struct.error, IndexError):
        pass
    return "\\# %d %s" % (rdlen, rd.hex())  # RFC 3597 generic form


def dns_parse(msg):
    """What a case may match on in a response; never raises on garbage."""
    out = {"raw_hex": msg.hex(), "len": len(msg), "none": False}
    if len(msg) < 12:
        out["malformed"] = "shorter than a header"
        return out
    txid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    out.update(txid=txid, qr=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF,
               aa=bool(flags & 0x400), tc=bool(flags & 0x200), rd=bool(flags & 0x100),
               ra=bool(flags & 0x80), rcode_num=flags & 0xF,
               rcode=RCODES.get(flags & 0xF, "RCODE%d" % (flags & 0xF)),
               qdcount=qd, ancount=an, nscount=ns, arcount=ar, answers=[], authority=[],
               additional=[])
    off = 12
    try:
        for _ in range(qd):
            name, off = dns_read_name(msg, off)
            qt, qc = struct.unpack("!HH", msg[off:off + 4])
            off += 4
            out.setdefault("qname", name)
            out.setdefault("qtype", TYPES.get(qt, "TYPE%d" % qt))
        for section, n in (("answers", an), ("authority", ns), ("additional", ar)):
            for _ in range(n):
                name, off = dns_read_name(msg, off)
                rt, rc, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
                off += 10
                if off + rdlen > len(msg):
                    raise Malformed("rdata runs past the end")
                if rt == 41:
                    out["edns"] = {"udp_size": rc, "ext_rcode": ttl >> 24,
                                   "version": (ttl >> 16) & 0xFF}
                out[section].append("%s %d %s %s %s" % (
                    name, ttl, CLASSES.get(rc, "CLASS%d" % rc), TYPES.get(rt, "TYPE%d" % rt),
                    dns_rdata_text(msg, rt, off, rdlen)))
                off += rdlen
    except (Malformed, struct.error) as e:
        out["malformed"] = str(e) or "truncated"
    return out


# ---------------------------------------------------------------- ops (run on a namespace worker)


def recv_exact(s, n, clock):
    buf = b""
    while len(buf) < n:
        left = clock.left()
        if left <= 0:
            raise socket.timeout()
        s.settimeout(left)
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed")
        buf += chunk
    return buf


def tcp_open(fam, dst, clock, nodelay=False, rcvbuf=0):
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            # Before connect, so the window it announces is small and autotuning stays off.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(max(clock.left(), 0.001))
        s.connect(dst)
        return s
    except BaseException:
        s.close()
        raise


def udp_socket(fam, src_port):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if src_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", src_port))
    return s


def op_udp_send(a, clock, worker):
    fam, dst = a.hostport("dst")
    src_port = a.int("src_port", 0, 0, 65535)
    payload = a.hex("payload_hex", "")
    count = a.int("count", 1, 1, 100000)
    want = a.int("replies", 0, 0, 100000)
    wait_ms = a.int("wait_ms", 1000 if want else 0, 0, 600000)
    res = {"sent": 0, "replies": [], "errors": []}
    with udp_socket(fam, src_port) as s:
        res["src_port"] = s.getsockname()[1]
        for _ in range(count):
            try:
                s.sendto(payload, dst)
                res["sent"] += 1
            except OSError as e:
                res["errors"].append(errname(e))
        until = time.monotonic() + wait_ms / 1000
        while not want or len(res["replies"]) < want:
            left = min(until - time.monotonic(), clock.left())
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data, src = s.recvfrom(65535)
            except socket.timeout:
                break
            except OSError as e:
                res["errors"].append(errname(e))
                continue
            res["replies"].append({"src": fmt_addr(src), "hex": data.hex(), "len": len(data)})
    res["reply_count"] = len(res["replies"])
    return res


def op_udp_flow(a, clock, worker):
    fam, dst = a.hostport("dst")
    src_port = a.int("src_port", 0, 0, 65535)
    count = a.int("count", 1, 1, 1000000)
    size = a.int("size", 64, 0, 65507)
    payload = bytes((i & 0xFF for i in range(size)))
    res = {"sent": 0, "errors": []}
    # Unconnected: an ICMP error for one datagram must not fail the next send.
    with udp_socket(fam, src_port) as s:
        res["src_port"] = s.getsockname()[1]
        for _ in range(count):
            if clock.left() <= 0:
                res["errors"].append("timeout")
                break
            try:
                s.sendto(payload, dst)
                res["sent"] += 1
            except OSError as e:
                res["errors"].append(errname(e))
    res["bytes"] = res["sent"] * size
    return res


def _tcp_cuts(a, n):
    seg = a.a.get("segments")
    if seg is None:
        return [0, n]
    if isinstance(seg, int) and not isinstance(seg, bool):
        k = a.int("segments", 1, 1, max(1, n))
        return sorted(set([0, n] + [n * i // k for i in range(1, k)]))
    if isinstance(seg, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                     for x in seg):
        if any(not 0 < x < n for x in seg) or sorted(set(seg)) != seg:
            a._fail("segments", "offsets must increase strictly inside the payload")
        return [0] + seg + [n]
    a._fail("segments", "expected a count or a list of split offsets")


ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class SegmentTap:
    """The TCP segments a server sends to one local port, seen by an AF_PACKET socket of the
    namespace (opened before connect, so the first answer is not missed). Counts what the peer's
    kernel emitted: veth and lo do not merge segments on receive (no GRO by default on veth;
    lo passes the sender's skb as is)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.setblocking(False)

    def close(self):
        self.s.close()

    def segments(self, fam, server, lport):
        """[(seq, payload_len)] of data segments from server (IP, port) to lport, in arrival
        order, retransmissions (same seq) left out."""
        want_ip = socket.inet_pton(fam, server[0])
        out, seen = [], set()
        while True:
            try:
                data, meta = self.s.recvfrom(262144)
            except (BlockingIOError, InterruptedError):
                break
            if meta[2] == PACKET_OUTGOING:
                continue  # lo shows every packet twice: keep the received copy
            try:
                if meta[1] == 0x0800 and fam == socket.AF_INET and data[0] >> 4 == 4:
                    ihl, tot = (data[0] & 0xF) * 4, struct.unpack("!H", data[2:4])[0]
                    if data[9] != 6 or data[12:16] != want_ip:
                        continue
                    tcp, iplen = data[ihl:tot], tot - ihl
                elif meta[1] == 0x86DD and fam == socket.AF_INET6 and data[0] >> 4 == 6:
                    if data[6] != 6 or data[8:24] != want_ip:
                        continue
                    iplen = struct.unpack("!H", data[4:6])[0]
                    tcp = data[40:40 + iplen]
                else:
                    continue
                sport, dport, seq = struct.unpack("!HHI", tcp[:8])
                plen = iplen - (tcp[12] >> 4) * 4
            except (IndexError, struct.error):
                continue
            if sport != server[1] or dport != lport or plen <= 0 or seq in seen:
                continue
            seen.add(seq)
            out.append((seq, plen))
        return out


def segments_per_frame(segs, frame_lens):
    """For each DNS frame of the server's byte stream, how many segments carried its bytes."""
    if not segs:
        return [0 for _ in frame_lens]
    base = min(seq for seq, _ in segs)  # the stream's first data byte (no wrap in a test)
    spans = [((seq - base) & 0xFFFFFFFF, n) for seq, n in segs]
    out, off = [], 0
    for flen in frame_lens:
        lo, hi = off, off + 2 + flen
        out.append(sum(1 for o, n in spans if o < hi and o + n > lo))
        off = hi
    return out


def op_tcp_send(a, clock, worker):
    fam, dst = a.hostport("dst")
    payload = a.hex("payload_hex")
    parts = a.parts("payload_parts")
    if payload is not None and parts is not None:
        a._fail("payload_parts", "either payload_hex or payload_parts, not both")
    payload = parts if parts is not None else (payload or b"")
    cuts = _tcp_cuts(a, len(payload))
    half_close = a.bool("half_close", False)
    want = a.int("replies", 0, 0, 10000)
    wait_ms = a.int("wait_ms", 1000, 0, 600000)
    keep_open = a.bool("keep_open", False)
    capture = a.bool("capture", False)
    rcvbuf = a.int("rcvbuf", 0, 0, 1 << 26)
    res = {"connected": False, "sent": 0, "segments": 0, "hex": "", "received": 0,
           "eof": False}
    tap = SegmentTap() if capture else None
    try:
        s = tcp_open(fam, dst, clock, nodelay=True, rcvbuf=rcvbuf)
    except OSError as e:
        res["error"] = errname(e)
        if tap:
            tap.close()
        return res
    kept = False
    try:
        res["connected"] = True
        res["src_port"] = s.getsockname()[1]
        # TCP_NODELAY and a pause between sends: each piece leaves as its own segment.
        for k in range(len(cuts) - 1):
            if k:
                time.sleep(min(SEGMENT_PAUSE_S, clock.left()))
            piece = payload[cuts[k]:cuts[k + 1]]
            if piece:
                s.sendall(piece)
                res["sent"] += len(piece)
                res["segments"] += 1
        if half_close:
            s.shutdown(socket.SHUT_WR)
        rclock = Clock(min(clock.deadline, time.monotonic() + wait_ms / 1000))
        buf = b""
        if want:  # DNS framing (RFC 1035 4.2.2): want messages, each after a 2-byte length
            res["frames"] = []
            while len(res["frames"]) < want:
                n = struct.unpack("!H", recv_exact(s, 2, rclock))[0]
                frame = recv_exact(s, n, rclock)
                buf += struct.pack("!H", n) + frame
                res["frames"].append(frame.hex())
        else:
            while rclock.left() > 0:
                s.settimeout(rclock.left())
                chunk = s.recv(65536)
                if not chunk:
                    res["eof"] = True
                    break
                buf += chunk
    except EOFError:
        res["eof"] = True
    except OSError as e:
        if not isinstance(e, socket.timeout):
            res["error"] = errname(e)
    finally:
        if keep_open and res.get("error") is None and not res["eof"]:
            worker.kept.append(s)
            kept = True
        else:
            s.close()
    if want:
        res["hex"] = "".join(res["frames"])
        res["received"] = sum(len(f) // 2 for f in res["frames"])
    else:
        res["hex"] = buf.hex()
        res["received"] = len(buf)
    res["kept_open"] = kept
    if tap:
        time.sleep(min(0.02, clock.left()))  # the tap has the packets already; be generous
        segs = tap.segments(fam, dst, res["src_port"])
        tap.close()
        res["server_segments"] = [n for _, n in segs]
        if want:
            res["segments_per_frame"] = segments_per_frame(
                segs, [len(f) // 2 for f in res["frames"]])
    return res


def op_tcp_connect(a, clock, worker):
    fam, dst = a.hostport("dst")
    count = a.int("count", 1, 1, 10000)
    payload = a.hex("payload_hex", "")
    res = {"connected": 0, "errors": [], "src_ports": []}
    for _ in range(count):
        if clock.left() <= 0:
            res["errors"].append("timeout")
            break
        try:
            with tcp_open(fam, dst, Clock(min(clock.deadline, time.monotonic() + 3))) as s:
                res["connected"] += 1
                res["src_ports"].append(s.getsockname()[1])
                if payload:
                    s.sendall(payload)
        except OSError as e:
            res["errors"].append(errname(e))
    return res


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def op_icmp_echo(a, clock, worker):
    fam, dst = a.ip("dst")
    count = a.int("count", 1, 1, 10000)
    size = a.int("size", 56, 0, 65000)
    v6 = fam == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    req_type, rep_type = (128, 129) if v6 else (8, 0)
    ident = random.randrange(1, 65536)
    payload = bytes((i & 0xFF for i in range(size)))
    res = {"sent": 0, "received": 0, "rtt_us": [], "errors": []}
    # A raw socket (we run as root): ping sockets are off in a fresh netns (ping_group_range).
    with socket.socket(fam, socket.SOCK_RAW, proto) as s:
        for seq in range(1, count + 1):
            if clock.left() <= 0:
                res["errors"].append("timeout")
                break
            hdr = struct.pack("!BBHHH", req_type, 0, 0, ident, seq)
            pkt = hdr + payload
            if not v6:  # the kernel fills the ICMPv6 checksum itself
                pkt = hdr[:2] + struct.pack("!H", _csum(pkt)) + hdr[4:] + payload
            t0 = time.monotonic()
            try:
                s.sendto(pkt, (dst, 0))
                res["sent"] += 1
            except OSError as e:
                res["errors"].append(errname(e))
                continue
            until = min(clock.deadline, t0 + 1.0)
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data, src = s.recvfrom(65535)
                except socket.timeout:
                    break
                except OSError as e:
                    res["errors"].append(errname(e))
                    break
                if not v6:
                    data = data[(data[0] & 0xF) * 4:] if data else b""
                if len(data) < 8 or src[0] != dst:
                    continue
                t, _, _, i, q = struct.unpack("!BBHHH", data[:8])
                if t == rep_type and i == ident and q == seq:
                    res["received"] += 1
                    res["rtt_us"].append(int((time.monotonic() - t0) * 1e6))
                    break
    return res


def dns_exchange_one(fam, dst, transport, msg, wait_s, clock):
    qclock = Clock(min(clock.deadline, time.monotonic() + wait_s))
    out = {"none": True, "transport": transport}
    t0 = time.monotonic()
    try:
        if transport == "udp":
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.connect(dst)
                out["src_port"] = s.getsockname()[1]
                s.send(msg)
                s.settimeout(max(qclock.left(), 0.001))
                resp = s.recv(65535)
        else:
            with tcp_open(fam, dst, qclock) as s:
                out["src_port"] = s.getsockname()[1]
                s.sendall(struct.pack("!H", len(msg)) + msg)
                n = struct.unpack("!H", recv_exact(s, 2, qclock))[0]
                resp = recv_exact(s, n, qclock)
    except EOFError as e:
        out["error"] = str(e)
        return out
    except OSError as e:
        out["error"] = errname(e)
        return out
    out.update(dns_parse(resp))
    out["elapsed_us"] = int((time.monotonic() - t0) * 1e6)
    return out


def op_dns_query(a, clock, worker):
    fam, dst = a.hostport("dst")
    transport = a.str("transport", "udp", ("udp", "tcp"))
    raw = a.hex("raw_hex")
    qname = a.str("qname")
    if raw is None and qname is None:
        a._fail("qname", "required unless raw_hex is given")
    if raw is not None and qname is not None:
        a._fail("raw_hex", "either qname or raw_hex, not both")
    qtype = dns_type_num(a, "qtype", "A")
    qclass = dns_class_num(a, "qclass", "IN")
    txid = a.int("txid", -1, -1, 65535)
    rd = a.bool("rd", True)
    count = a.int("count", 1, 1, 10000)
    wait_ms = a.int("wait_ms", 2000, 0, 600000)
    results = []
    for _ in range(count):
        if raw is not None:
            msg = raw
            qid = struct.unpack("!H", raw[:2])[0] if len(raw) >= 2 else None
        else:
            qid = txid if txid >= 0 else random.randrange(65536)
            msg = dns_build_query(qname, qtype, qclass, qid, rd)
        r = dns_exchange_one(fam, dst, transport, msg, wait_ms / 1000, clock)
        r["query_txid"] = qid
        results.append(r)
    res = dict(results[0])
    res["answered"] = sum(1 for r in results if not r["none"])
    if count > 1:
        res["results"] = results
    return res


# Lengths every fuzz_send run includes, whatever the seed: the edges of 8.2 and of each transport.
FUZZ_UDP_EDGES = (0, 1, 11, 12, 13, 4095, 4096, 4097, 65507)
FUZZ_TCP_EDGES = (0, 1, 11, 12, 13, 4095, 4096, 4097, 16384, 16385, 65535)


def fuzz_query(rng):
    """A well-formed query, sometimes with an OPT record: the seed a mutation starts from."""
    labels = []
    for _ in range(rng.randrange(0, 5)):
        labels.append(bytes(rng.randrange(256) if rng.random() < 0.1 else rng.choice(b"abcxyz-0")
                            for _ in range(rng.randrange(1, 20))))
    name = b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
    ar = 1 if rng.random() < 0.5 else 0
    msg = struct.pack("!HHHHHH", rng.randrange(65536), 0x0100, 1, 0, 0, ar) + name + \
        struct.pack("!HH", rng.choice((1, 28, 16, 255, 0, 65535)), rng.choice((1, 1, 3, 255)))
    if ar:
        opts = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        msg += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opts)) + opts
    return msg


def fuzz_mutate(rng, msg, maxlen):
    m = bytearray(msg)
    for _ in range(rng.randrange(1, 5)):
        k = rng.randrange(8)
        if k == 0 and m:  # flip bits
            i = rng.randrange(len(m))
            m[i] ^= 1 << rng.randrange(8)
        elif k == 1 and m:  # any byte
            m[rng.randrange(len(m))] = rng.randrange(256)
        elif k == 2 and m:  # cut short
            del m[rng.randrange(len(m)):]
        elif k == 3:  # trailing bytes
            m += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif k == 4 and len(m) >= 12:  # a count or the flags
            off = rng.choice((2, 4, 6, 8, 10))
            m[off:off + 2] = struct.pack("!H", rng.choice((0, 1, 2, 0xFFFF, rng.randrange(65536))))
        elif k == 5 and len(m) > 12:  # a compression pointer anywhere, any direction
            i = rng.randrange(12, len(m))
            m[i:i] = struct.pack("!H", 0xC000 | rng.randrange(0, min(len(m) + 8, 0x3FFF)))
        elif k == 6 and len(m) > 12:  # a label type 0x40..0xBF, or a long label length
            m[rng.randrange(12, len(m))] = rng.choice((0x40, 0x7F, 0x80, 0xBF, 63, 64))
        elif k == 7:  # padding to a large size (OPT-like tail)
            m += bytes(rng.randrange(0, 9000))
    return bytes(m[:maxlen])


def fuzz_message(rng, maxlen):
    if rng.random() < 0.4:  # raw noise, mostly small
        r = rng.random()
        n = rng.randrange(0, 600) if r < 0.6 else rng.randrange(0, 4300) if r < 0.9 else \
            rng.randrange(0, maxlen + 1)
        return bytes(rng.getrandbits(8) for _ in range(min(n, 4300))) + bytes(max(0, n - 4300))
    return fuzz_mutate(rng, fuzz_query(rng), maxlen)


def fuzz_tcp_exchange(fam, dst, frames, wait_s, clock, res):
    """Writes every frame on one connection (a new one if the proxy closes it), reading all the
    while; then half-closes and reads until end of file or wait_s."""
    import select
    pending, s, buf = list(frames), None, b""
    out = b""
    while pending or out:
        if clock.left() <= 0:
            res["errors"].append("timeout")
            break
        if s is None:
            try:
                s = tcp_open(fam, dst, clock)
            except OSError as e:
                res["errors"].append(errname(e))
                break
            s.setblocking(False)
            res["tcp_connections"] += 1
            buf = b""
        if not out and pending:
            out = pending.pop(0)
        r, w, _ = select.select([s], [s] if out else [], [], clock.left(0.5))
        try:
            if w:
                out = out[s.send(out):]
                res["tcp_sent"] += not out
            if r:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionResetError(errno.ECONNRESET, "closed")
                buf += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            res["errors"].append(errname(e))
            s.close()
            s, out = None, b""  # the frame being written is lost with the connection
            continue
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            buf = buf[2 + struct.unpack("!H", buf[:2])[0]:]
            res["tcp_replies"] += 1
    if s is None:
        return
    try:
        s.shutdown(socket.SHUT_WR)
        until = Clock(min(clock.deadline, time.monotonic() + wait_s))
        while until.left() > 0:
            r, _, _ = select.select([s], [], [], until.left())
            if not r:
                break
            chunk = s.recv(65536)
            if not chunk:
                res["tcp_eof"] = True
                break
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                buf = buf[2 + struct.unpack("!H", buf[:2])[0]:]
                res["tcp_replies"] += 1
    except OSError as e:
        res["errors"].append(errname(e))
    finally:
        s.close()


def op_fuzz_send(a, clock, worker):
    """Seeded pseudo-random messages (DNS-PRS-012): the length edges of each transport, raw
    noise and mutated queries; over UDP from one socket, over TCP as frames on one connection.
    Replies are counted, not checked: the case then checks the proxy still serves."""
    fam, dst = a.hostport("dst")
    seed = a.int("seed", 1, 0, 2 ** 32 - 1)
    udp_count = a.int("udp_count", 200, 0, 100000)
    tcp_count = a.int("tcp_count", 200, 0, 100000)
    wait_ms = a.int("wait_ms", 1000, 0, 600000)
    rng = random.Random(seed)
    udp_max = 65507 if fam == socket.AF_INET else 65527
    udp_msgs = [bytes(rng.getrandbits(8) for _ in range(min(n, 64))) + bytes(max(0, n - 64))
                for n in FUZZ_UDP_EDGES if udp_count]
    udp_msgs += [fuzz_message(rng, udp_max) for _ in range(udp_count)]
    tcp_msgs = [bytes(rng.getrandbits(8) for _ in range(min(n, 64))) + bytes(max(0, n - 64))
                for n in FUZZ_TCP_EDGES if tcp_count]
    tcp_msgs += [fuzz_message(rng, 65535) for _ in range(tcp_count)]
    res = {"seed": seed, "udp_sent": 0, "udp_replies": 0, "tcp_sent": 0, "tcp_replies": 0,
           "tcp_connections": 0, "tcp_eof": False, "errors": [],
           "udp_lengths": [min(map(len, udp_msgs), default=0), max(map(len, udp_msgs), default=0)],
           "tcp_lengths": [min(map(len, tcp_msgs), default=0), max(map(len, tcp_msgs), default=0)]}
    if udp_msgs:
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
            for i, m in enumerate(udp_msgs):
                if clock.left() <= 0:
                    res["errors"].append("timeout")
                    break
                try:
                    s.sendto(m, dst)
                    res["udp_sent"] += 1
                except OSError as e:
                    res["errors"].append(errname(e))
                if i % 8 == 7:
                    time.sleep(0.001)  # let the proxy keep up: its receive queue is finite
                res["udp_replies"] += _drain_udp(s, 0)
            res["udp_replies"] += _drain_udp(s, min(wait_ms / 1000, clock.left()))
    if tcp_msgs:
        fuzz_tcp_exchange(fam, dst, [struct.pack("!H", len(m)) + m for m in tcp_msgs],
                          wait_ms / 1000, clock, res)
    return res


def _drain_udp(s, wait_s):
    """Datagrams waiting on s, then more until wait_s passes without one."""
    n = 0
    s.settimeout(wait_s if wait_s > 0 else 0.0)
    while True:
        try:
            s.recv(65535)
            n += 1
        except (BlockingIOError, socket.timeout, InterruptedError):
            return n
        except OSError:
            continue


def op_ping(a, clock, worker):
    return {"pong": True, "pid": os.getpid(),
            "netns_inode": os.stat("/proc/thread-self/ns/net").st_ino}


def op_sleep(a, clock, worker):
    # Deliberately deaf to timeout_ms: the tests' way to wedge a worker (watchdog, hdrv.c).
    ms = a.int("ms", 0, 0, 600000)
    time.sleep(ms / 1000)
    return {"slept_ms": ms}


OPS = {
    "udp_send": (op_udp_send, ("dst", "src_port", "payload_hex", "count", "wait_ms", "replies")),
    "tcp_send": (op_tcp_send, ("dst", "payload_hex", "payload_parts", "segments", "half_close",
                               "wait_ms", "replies", "keep_open", "capture", "rcvbuf")),
    "fuzz_send": (op_fuzz_send, ("dst", "seed", "udp_count", "tcp_count", "wait_ms")),
    "dns_query": (op_dns_query, ("dst", "transport", "qname", "qtype", "qclass", "txid", "rd",
                                 "count", "raw_hex", "wait_ms")),
    "icmp_echo": (op_icmp_echo, ("dst", "count", "size")),
    "tcp_connect": (op_tcp_connect, ("dst", "count", "payload_hex")),
    "udp_flow": (op_udp_flow, ("dst", "src_port", "count", "size")),
    "ping": (op_ping, ()),
    "sleep": (op_sleep, ("ms",)),
}


# ---------------------------------------------------------------- namespace workers


class Worker(threading.Thread):
    """Runs one namespace's commands in order, on a thread that setns()ed into it once."""

    def __init__(self, key, path):
        super().__init__(daemon=True, name="ns-%s" % (key,))
        self.key, self.path = key, path
        self.q = queue.Queue()
        self.kept = []  # tcp_send keep_open connections, closed when the worker retires
        self.retired = False
        self.entered = threading.Event()
        self.enter_error = None
        self.busy_id = None

    def run(self):
        if self.path is not None:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != self.key:
                        raise OSError(errno.ESTALE, "namespace changed under its path")
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, "setns: " + os.strerror(e))
                finally:
                    os.close(fd)
            except OSError as e:
                self.enter_error = "netns %s: %s" % (self.path, e.strerror or e)
        self.entered.set()
        while True:
            item = self.q.get()
            if item is None:
                break
            rid, op, args, deadline = item
            if self.enter_error:
                respond(rid, False, self.enter_error)
                continue
            self.busy_id = rid
            run_op(rid, op, args, deadline, self)
            self.busy_id = None
        for s in self.kept:
            s.close()
        self.kept = []

    def retire(self):
        self.retired = True
        self.q.put(None)


class Workers:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_key = {}

    def submit(self, path, item):
        """Queue item on the namespace's live worker (started if need be). Under the lock, so
        never on a worker that wedged() or sweep() retires at the same moment: an item queued
        behind a retirement would never run."""
        if path is None:
            key = "self"
        else:
            st = os.stat(path)  # follows /proc/PID/fd/N to the nsfs inode
            key = (st.st_dev, st.st_ino)
        with self.lock:
            w = self.by_key.get(key)
            if w is None or w.retired:
                w = Worker(key, path)
                self.by_key[key] = w
                w.start()
            w.q.put(item)

    def release(self, path):
        """Retire the worker(s) and wait until their threads (and so their netns) are gone."""
        with self.lock:
            if path is None:
                gone = list(self.by_key.values())
                self.by_key.clear()
            else:
                st = os.stat(path)
                w = self.by_key.pop((st.st_dev, st.st_ino), None)
                gone = [w] if w else []
        for w in gone:
            w.retire()
        for w in gone:
            w.join(2.0)
        # join() returns when Python is done with the thread; the kernel task (which holds
        # the namespace) ends a moment later: wait for it too, so release is synchronous.
        deadline = time.monotonic() + 1.0
        for w in gone:
            task = "/proc/self/task/%d" % (w.native_id or 0)
            while w.native_id and os.path.exists(task) and time.monotonic() < deadline:
                time.sleep(0.001)
        return sum(1 for w in gone if not w.is_alive())

    def sweep(self):
        """Retire workers whose path no longer names their namespace: they pin it."""
        with self.lock:
            for key, w in list(self.by_key.items()):
                if w.path is None:
                    continue
                try:
                    st = os.stat(w.path)
                    same = (st.st_dev, st.st_ino) == key
                except OSError:
                    same = False
                if not same:
                    del self.by_key[key]
                    w.retire()

    def wedged(self, rid):
        """A command overran its deadline: its namespace gets a fresh worker from now on."""
        with self.lock:
            for key, w in list(self.by_key.items()):
                if w.busy_id != rid:
                    continue
                # Commands queued behind the stuck one move to a fresh worker.
                fresh = Worker(key, w.path)
                while True:
                    try:
                        item = w.q.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        fresh.q.put(item)
                w.retire()
                self.by_key[key] = fresh
                fresh.start()


WORKERS = Workers()


def run_op(rid, op, args, deadline, worker):
    fn, known = OPS[op]
    try:
        res = fn(Args(op, args, known), Clock(deadline), worker)
    except BadRequest as e:
        respond(rid, False, str(e))
        return
    except Exception as e:  # never die on a request
        log("%s: %s: %r" % (op, type(e).__name__, e))
        respond(rid, False, "%s: %s" % (op, errname(e)))
        return
    respond(rid, True, res)


def watchdog():
    while True:
        time.sleep(TICK_S)
        WORKERS.sweep()
        now = time.monotonic()
        with _out_lock:
            late = [k for k, d in _pending.items() if d is not None and now > d + WEDGE_GRACE_S]
        for key in late:
            rid = json.loads(key)
            # The fresh worker first, then the answer: a request sent on reading the answer
            # must not be queued on the stuck worker after it was retired (it would be lost:
            # seen as a 15 s ping timeout under ci/load).
            if respond(rid, False, "timeout: no result within timeout_ms",
                       before=lambda rid=rid: WORKERS.wedged(rid)):
                log("request %s overran its deadline" % key)


def handle(line):
    try:
        req = json.loads(line)
    except ValueError as e:
        return None, "bad request: not JSON: %s" % e
    if not isinstance(req, dict):
        return None, "bad request: expected an object"
    rid = req.get("id")
    if rid is None or isinstance(rid, (dict, list)):
        return None, "bad request: needs an id (a number or string)"
    if json.dumps(rid) in _pending:
        return rid, "bad request: id %s is in flight" % json.dumps(rid)
    op = req.get("op")
    tmo = req.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    path = req.get("netns")
    if op == "release":
        if path is not None and not isinstance(path, str):
            return rid, "release: netns: expected a path or null"
        try:
            n = WORKERS.release(path)
        except OSError as e:
            return rid, "release: %s: %s" % (path, e.strerror)
        with _out_lock:
            _pending[json.dumps(rid)] = None
        respond(rid, True, {"released": n})
        return rid, None
    if op not in OPS:
        return rid, 'unknown op "%s"' % op
    if isinstance(tmo, bool) or not isinstance(tmo, int) or not 0 < tmo <= 600000:
        return rid, "timeout_ms: expected an integer 1..600000"
    if path is not None and not isinstance(path, str):
        return rid, "netns: expected a path or null"
    deadline = time.monotonic() + tmo / 1000
    key = json.dumps(rid)
    with _out_lock:
        _pending[key] = deadline  # before the queue: a fast worker answers at once
    try:
        WORKERS.submit(path, (rid, op, req.get("args"), deadline))
    except OSError as e:
        with _out_lock:
            _pending.pop(key, None)
        return rid, "netns %s: %s" % (path, e.strerror)
    return rid, None


def main():
    threading.Thread(target=watchdog, daemon=True, name="watchdog").start()
    with _out_lock:
        _write_line({"id": 0, "ok": True, "result": {"driver": "cellcheck_driver",
                                                     "version": VERSION, "pid": os.getpid(),
                                                     "ops": sorted(OPS) + ["release"]}})
    for line in sys.stdin.buffer:  # bytes: invalid UTF-8 is a bad request, not a crash
        if not line.strip():
            continue
        rid, err = handle(line)
        if err is not None:
            with _out_lock:
                _pending[json.dumps(rid)] = None
            respond(rid, False, err)
    # EOF: answer what is in flight (each within its deadline, which the watchdog enforces),
    # then leave without joining workers that may still sit in a syscall.
    while True:
        with _out_lock:
            if not _pending:
                break
        time.sleep(0.01)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
