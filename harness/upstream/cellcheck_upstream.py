#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cellcheck's DNS upstream peer: the scripted fake, or a wrapper around a real unbound.

  cellcheck_upstream.py --netns PATH --upstream-json FILE --ready-fd N --log FILE
                        [--alt-addr IP] [--tmp-dir DIR]

Enters the network namespace at PATH, reads a case's "upstream" object from FILE (exactly the
JSON the case holds, cases/README.md "Upstream") and serves DNS on its "listen" address, over
UDP and, unless "tcp" is false, TCP. Writes one byte on the ready fd once serving, then closes
it. SIGTERM (or SIGINT) ends it promptly with exit status 0. A bad upstream object, a socket
that cannot be bound or an unbound that does not come up ends it with status 1 and a message
on stderr, before readiness.

kind "fake": for each query the rules are tried in order; a rule without "match" matches
every query, "qname" matches case-insensitively (a trailing dot is optional; a first label
"*" matches any name strictly below the rest), "qtype" is a type name, "TYPEn" or a number.
  answer        the question and id echoed, AA set, "records" (zone-file lines
                "name ttl IN TYPE rdata": A, AAAA, TXT, CNAME, NS, PTR, DNAME, MX, SRV, SOA,
                or any type as RFC 3597 "\\# LEN HEX") in the answer section, "rcode"
                (a name such as NXDOMAIN, "RCODEn" or a number; default NOERROR). A record
                whose owner is the question's name points at the question (keeps its case).
  drop          nothing, ever (over TCP the connection stays open).
  truncate      over UDP: TC set, no records; over TCP: the whole answer.
  forge         "forge": txid (another id), sport (from another source port), saddr (from
                --alt-addr, same port), question (the question names forged.invalid.).
                A forged reply carries one A record 198.51.100.66, so a relayed forgery is
                recognisable. With "records" or "rcode" the rule also sends the genuine
                answer 20 ms after the forgery (a proxy must keep waiting for it). Over TCP
                sport and saddr cannot be forged: only the genuine answer (if any) is sent.
  icmp-unreach  over UDP: an ICMP(v6) port unreachable to the client quoting its datagram,
                as the kernel would send for a closed port; over TCP: a reset.
  close         over TCP: the connection closed (FIN) without an answer; over UDP: nothing.
  (no match)    REFUSED, question echoed.
"delay_ms" delays whatever the rule sends. No automatic truncation: a large UDP answer is
sent whole. Malformed messages (short header, QR set, QDCOUNT not 1, bad label, name over
255 bytes, pointer loop or forward pointer, truncated question) are logged and unanswered.

kind "unbound": unbound -d on "listen" with the "zone" lines as local-data, in a temporary
directory removed at exit. The zone is "static" at each SOA owner, or else at the owners'
longest common suffix (its parent when there is one owner); any other name is REFUSED (or
gets unbound's built-in answer for RFC 6761 names such as test.), so nothing is recursed.
Ready once unbound answers a probe query (which is not counted).

--log FILE: one JSON line per received message, written before any reply is sent:
  {"t" (CLOCK_MONOTONIC seconds), "t_ns", "transport", "src", "sport", "len", "query_hex",
   "id", "qname" (presentation form, trailing dot), "qtype" (name or TYPEn),
   "edns_udp_size" (the OPT record's UDP size, null without one), "action"
   ("answer", "drop", "truncate", "forge", "icmp-unreach", "refused"), "rule" (index or
   null), "forge" (kind), "reply_hex" (the first reply sent, absent when none),
   "then_hex" (the genuine answer after a forgery)}
or {"t", "t_ns", "transport", "src", "sport", "len", "query_hex", "malformed": reason}.
unbound logs its queries itself; at exit they become lines {"src", "qname", "qtype",
"action": "unbound"}. The last line, at SIGTERM: {"summary": {"queries": N, "udp": N,
"tcp": N, "malformed": N}}; "queries" counts every message received, malformed or not (for
unbound: the queries it logged, and udp/tcp from its statistics, null when unavailable).
"""

import argparse
import ctypes
import ipaddress
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True

CLONE_NEWNET = 0x40000000
FORGED_ADDR = "198.51.100.66"
FORGED_QNAME = "forged.invalid."
FORGE_THEN_ANSWER_S = 0.02
PROBE_QNAME = "cellcheck-upstream-probe.invalid."
UNBOUND_READY_S = 5.0

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "HINFO": 13, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "NAPTR": 35, "DNAME": 39, "OPT": 41, "DS": 43, "SSHFP": 44,
         "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "NSEC3": 50, "TLSA": 52, "SVCB": 64,
         "HTTPS": 65, "AXFR": 252, "ANY": 255, "CAA": 257}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASSES = {"IN": 1, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
          "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10}


class ConfigError(Exception):
    pass


class Malformed(Exception):
    pass


def die(msg):
    sys.stderr.write("cellcheck_upstream: %s\n" % msg)
    sys.stderr.flush()
    os._exit(1)


# ---------------------------------------------------------------- names and types

def type_num(text, what):
    t = str(text).upper()
    if t in TYPES:
        return TYPES[t]
    if t.startswith("TYPE") and t[4:].isdigit() and int(t[4:]) < 65536:
        return int(t[4:])
    if t.isdigit() and int(t) < 65536:
        return int(t)
    raise ConfigError("%s: unknown DNS type \"%s\"" % (what, text))


def type_text(num):
    return TYPE_NAMES.get(num, "TYPE%d" % num)


def rcode_num(text, what):
    t = str(text).upper()
    if t in RCODES:
        return RCODES[t]
    if t.startswith("RCODE") and t[5:].isdigit():
        t = t[5:]
    if t.isdigit() and int(t) < 16:
        return int(t)
    raise ConfigError("%s: unknown rcode \"%s\" (extended rcodes need EDNS)" % (what, text))


def name_labels(text, what):
    """Presentation form ("a.b.", with \\. and \\DDD escapes) -> list of label bytes."""
    if text in (".", ""):
        return []
    labels, cur, i = [], bytearray(), 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
                v = int(text[i + 1:i + 4])
                if v > 255:
                    raise ConfigError("%s: bad escape in \"%s\"" % (what, text))
                cur.append(v)
                i += 4
                continue
            if i + 1 >= len(text):
                raise ConfigError("%s: trailing backslash in \"%s\"" % (what, text))
            cur += text[i + 1].encode("utf-8")
            i += 2
            continue
        if c == ".":
            if not cur:
                raise ConfigError("%s: empty label in \"%s\"" % (what, text))
            labels.append(bytes(cur))
            cur = bytearray()
            i += 1
            continue
        cur += c.encode("utf-8")
        i += 1
    if cur:
        labels.append(bytes(cur))
    for lab in labels:
        if len(lab) > 63:
            raise ConfigError("%s: label over 63 bytes in \"%s\"" % (what, text))
    if sum(len(x) + 1 for x in labels) + 1 > 255:
        raise ConfigError("%s: name over 255 bytes: \"%s\"" % (what, text))
    return labels


def name_wire(labels):
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\0"


def name_text(labels):
    out = []
    for lab in labels:
        s = ""
        for b in lab:
            if b in b".\\\"();@$":
                s += "\\" + chr(b)
            elif 0x21 <= b <= 0x7E:
                s += chr(b)
            else:
                s += "\\%03d" % b
        out.append(s)
    return ".".join(out) + "."


def lower_labels(labels):
    return [x.lower() for x in labels]  # bytes.lower() folds ASCII only, as DNS does


# ---------------------------------------------------------------- zone-file records

def tokenize(line, what):
    """Whitespace-separated tokens; "quoted strings" keep spaces. -> [(text, quoted)]"""
    toks, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        if line[i] == '"':
            j, buf = i + 1, ""
            while j < len(line) and line[j] != '"':
                if line[j] == "\\" and j + 1 < len(line):
                    buf += line[j:j + 2]
                    j += 2
                    continue
                buf += line[j]
                j += 1
            if j >= len(line):
                raise ConfigError("%s: unterminated quote" % what)
            toks.append((buf, True))
            i = j + 1
            continue
        j = i
        while j < len(line) and not line[j].isspace():
            j += 1
        toks.append((line[i:j], False))
        i = j
    return toks


def char_string(text, what):
    """A TXT character-string with \\X and \\DDD escapes -> bytes with its length byte."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            d = text[i + 1:i + 4]
            if len(d) == 3 and d.isdigit() and int(d) < 256:
                out.append(int(d))
                i += 4
                continue
            out += text[i + 1].encode("utf-8")
            i += 2
            continue
        out += text[i].encode("utf-8")
        i += 1
    if len(out) > 255:
        raise ConfigError("%s: TXT string over 255 bytes" % what)
    return bytes([len(out)]) + bytes(out)


def rdata_wire(rtype, toks, what):
    words = [t for t, _ in toks]

    def need(n):
        if len(words) != n:
            raise ConfigError("%s: %s needs %d rdata fields" % (what, type_text(rtype), n))

    def u(text, bits):
        if not text.isdigit() or int(text) >= 1 << bits:
            raise ConfigError("%s: \"%s\" is not a %d-bit number" % (what, text, bits))
        return int(text)

    if words and words[0] == "\\#" and not toks[0][1]:
        if len(words) < 2 or not words[1].isdigit():
            raise ConfigError("%s: \\# needs a length" % what)
        try:
            data = bytes.fromhex("".join(words[2:]))
        except ValueError:
            raise ConfigError("%s: bad hex after \\#" % what) from None
        if len(data) != int(words[1]):
            raise ConfigError("%s: \\# length %s but %d bytes" % (what, words[1], len(data)))
        return data
    try:
        if rtype == 1:
            need(1)
            return socket.inet_pton(socket.AF_INET, words[0])
        if rtype == 28:
            need(1)
            return socket.inet_pton(socket.AF_INET6, words[0])
    except OSError:
        raise ConfigError("%s: bad address \"%s\"" % (what, words[0])) from None
    if rtype in (2, 5, 12, 39):
        need(1)
        return name_wire(name_labels(words[0], what))
    if rtype == 15:
        need(2)
        return struct.pack("!H", u(words[0], 16)) + name_wire(name_labels(words[1], what))
    if rtype == 33:
        need(4)
        return struct.pack("!HHH", u(words[0], 16), u(words[1], 16), u(words[2], 16)) + \
            name_wire(name_labels(words[3], what))
    if rtype == 6:
        need(7)
        return name_wire(name_labels(words[0], what)) + name_wire(name_labels(words[1], what)) \
            + struct.pack("!IIIII", *(u(w, 32) for w in words[2:]))
    if rtype == 16:
        if not toks:
            raise ConfigError("%s: TXT needs a string" % what)
        return b"".join(char_string(t, what) for t, _ in toks)
    raise ConfigError("%s: type %s only in RFC 3597 form (\\# LEN HEX)" % (what, type_text(rtype)))


class Record:
    def __init__(self, line, what):
        toks = tokenize(line, what)
        if len(toks) < 4:
            raise ConfigError("%s: expected \"name ttl class type rdata\"" % what)
        self.owner = name_labels(toks[0][0], what)
        if not toks[1][0].isdigit() or int(toks[1][0]) >= 1 << 31:
            raise ConfigError("%s: bad ttl \"%s\"" % (what, toks[1][0]))
        self.ttl = int(toks[1][0])
        cls = toks[2][0].upper()
        if cls in CLASSES:
            self.rclass = CLASSES[cls]
        elif cls.startswith("CLASS") and cls[5:].isdigit() and int(cls[5:]) < 65536:
            self.rclass = int(cls[5:])
        else:
            raise ConfigError("%s: bad class \"%s\"" % (what, toks[2][0]))
        self.rtype = type_num(toks[3][0], what)
        self.rdata = rdata_wire(self.rtype, toks[4:], what)
        self.text = line

    def wire(self, qlabels_lower):
        # RFC 1035 4.1.4: the question's name sits at offset 12 of every reply built here.
        owner = b"\xc0\x0c" if lower_labels(self.owner) == qlabels_lower else \
            name_wire(self.owner)
        return owner + struct.pack("!HHIH", self.rtype, self.rclass, self.ttl,
                                   len(self.rdata)) + self.rdata


# ---------------------------------------------------------------- the upstream object

def parse_listen(text):
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([0-9.]+):(\d+)", str(text))
    if not m:
        raise ConfigError("listen: \"%s\" is not A.B.C.D:PORT or [V6]:PORT" % text)
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError("listen: bad address \"%s\"" % host) from None
    if not 0 < int(port) < 65536:
        raise ConfigError("listen: bad port %s" % port)
    fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return fam, str(ip), int(port)


class Rule:
    ACTIONS = ("answer", "drop", "truncate", "forge", "icmp-unreach", "close")
    FORGES = ("txid", "sport", "saddr", "question")
    KEYS = {"match", "action", "delay_ms", "records", "forge", "rcode"}

    def __init__(self, obj, idx):
        what = "rules[%d]" % idx
        if not isinstance(obj, dict):
            raise ConfigError("%s: not an object" % what)
        extra = set(obj) - self.KEYS
        if extra:
            raise ConfigError("%s: unknown key \"%s\"" % (what, sorted(extra)[0]))
        self.idx = idx
        self.action = obj.get("action")
        if self.action not in self.ACTIONS:
            raise ConfigError("%s.action: \"%s\" is not one of %s" %
                              (what, self.action, ", ".join(self.ACTIONS)))
        self.forge = obj.get("forge")
        if (self.action == "forge") != (self.forge is not None):
            raise ConfigError("%s: \"forge\" goes with action \"forge\" only" % what)
        if self.forge is not None and self.forge not in self.FORGES:
            raise ConfigError("%s.forge: \"%s\" is not one of %s" %
                              (what, self.forge, ", ".join(self.FORGES)))
        delay = obj.get("delay_ms", 0)
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 600000:
            raise ConfigError("%s.delay_ms: expected 0 to 600000" % what)
        self.delay_s = delay / 1000.0
        recs = obj.get("records", [])
        if not isinstance(recs, list) or not all(isinstance(r, str) for r in recs):
            raise ConfigError("%s.records: expected a list of strings" % what)
        self.records = [Record(r, "%s.records[%d]" % (what, i)) for i, r in enumerate(recs)]
        self.rcode = rcode_num(obj["rcode"], what + ".rcode") if "rcode" in obj else 0
        # A forge rule that names its genuine answer sends it after the forgery.
        self.then_answer = self.action == "forge" and ("records" in obj or "rcode" in obj)
        m = obj.get("match", {})
        if not isinstance(m, dict) or set(m) - {"qname", "qtype"}:
            raise ConfigError("%s.match: only \"qname\" and \"qtype\"" % what)
        self.qname, self.wild = None, False
        if "qname" in m:
            labels = lower_labels(name_labels(str(m["qname"]), what + ".match.qname"))
            if labels and labels[0] == b"*":
                self.wild, labels = True, labels[1:]
            self.qname = labels
        self.qtype = type_num(m["qtype"], what + ".match.qtype") if "qtype" in m else None

    def matches(self, qlabels_lower, qtype):
        if self.qtype is not None and qtype != self.qtype:
            return False
        if self.qname is None:
            return True
        if self.wild:
            n = len(self.qname)
            return len(qlabels_lower) > n and qlabels_lower[len(qlabels_lower) - n:] == self.qname
        return qlabels_lower == self.qname


class Upstream:
    def __init__(self, obj):
        if not isinstance(obj, dict):
            raise ConfigError("the upstream is not a JSON object")
        extra = set(obj) - {"kind", "ns", "listen", "tcp", "rules", "zone"}
        if extra:
            raise ConfigError("unknown key \"%s\"" % sorted(extra)[0])
        self.kind = obj.get("kind")
        if self.kind not in ("fake", "unbound"):
            raise ConfigError("kind: \"%s\" is neither fake nor unbound" % self.kind)
        self.fam, self.host, self.port = parse_listen(obj.get("listen"))
        self.tcp = obj.get("tcp", True)
        if not isinstance(self.tcp, bool):
            raise ConfigError("tcp: expected true or false")
        self.rules, self.zone = [], []
        if self.kind == "fake":
            rules = obj.get("rules")
            if not isinstance(rules, list) or "zone" in obj:
                raise ConfigError("a fake upstream needs \"rules\" (and no \"zone\")")
            self.rules = [Rule(r, i) for i, r in enumerate(rules)]
        else:
            zone = obj.get("zone")
            if not isinstance(zone, list) or not zone or "rules" in obj:
                raise ConfigError("an unbound upstream needs \"zone\" (and no \"rules\")")
            self.zone = [Record(z, "zone[%d]" % i) for i, z in enumerate(zone)]
            for z in zone:
                if "\n" in z or ("'" in z and '"' in z):
                    raise ConfigError("zone: a line may not hold a newline or both quotes")


# ---------------------------------------------------------------- wire parsing and building

def parse_query(msg):
    """-> (id, flags, qlabels, qtype, qclass) of a query; raises Malformed."""
    if len(msg) == 0:
        raise Malformed("empty message")
    if len(msg) < 12:
        raise Malformed("short header")
    qid, flags, qd = struct.unpack_from("!HHH", msg)
    if flags & 0x8000:
        raise Malformed("QR set")
    if qd != 1:
        raise Malformed("QDCOUNT %d" % qd)
    labels, off, end, total, limit = [], 12, None, 1, 12
    while True:
        if off >= len(msg):
            raise Malformed("truncated question")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise Malformed("truncated question")
            target = ((n & 0x3F) << 8) | msg[off + 1]
            # Each pointer must go before where the labels read so far began: the limit
            # strictly decreases, so no loop is possible.
            if target >= limit:
                raise Malformed("pointer loop or forward pointer")
            if end is None:
                end = off + 2
            off = limit = target
            continue
        if n & 0xC0:
            raise Malformed("label over 63 (bad label type)")
        if n == 0:
            off += 1
            break
        total += n + 1
        if total > 255:
            raise Malformed("name over 255")
        if off + 1 + n > len(msg):
            raise Malformed("truncated question")
        labels.append(bytes(msg[off + 1:off + 1 + n]))
        off += 1 + n
    off = end if end is not None else off
    if off + 4 > len(msg):
        raise Malformed("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return qid, flags, labels, qtype, qclass


def skip_name(msg, off):
    """Offset just past the (possibly compressed) name at off; raises Malformed."""
    for _ in range(128):
        if off >= len(msg):
            raise Malformed("truncated name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n
    raise Malformed("name too long")


def edns_udp_size(msg):
    """The UDP payload size of the query's OPT record (RFC 6891), None without one."""
    try:
        qd, an, ns, ar = struct.unpack_from("!HHHH", msg, 4)
        off = 12
        for _ in range(qd):
            off = skip_name(msg, off) + 4
        for i in range(an + ns + ar):
            off = skip_name(msg, off)
            rtype, rclass, _ttl, rdlen = struct.unpack_from("!HHIH", msg, off)
            if rtype == 41 and i >= an + ns:
                return rclass
            off += 10 + rdlen
    except (struct.error, Malformed):
        pass
    return None


def build_reply(qid, qflags, qlabels, qtype, qclass, *, rcode=0, aa=True, tc=False,
                records=(), forged_a=False, qname_override=None):
    flags = 0x8000 | (qflags & 0x7800) | (0x0400 if aa else 0) | (0x0200 if tc else 0) | \
        (qflags & 0x0100) | (rcode & 0xF)
    ql = qname_override if qname_override is not None else qlabels
    question = name_wire(ql) + struct.pack("!HH", qtype, qclass)
    answers = [r.wire(lower_labels(ql)) for r in records]
    if forged_a:
        answers = [b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) +
                   socket.inet_aton(FORGED_ADDR)]
    return struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0) + question + \
        b"".join(answers)


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def icmp_unreach(fam, client, server, payload):
    """ICMP(v6) port unreachable quoting the client's datagram (RFC 792, RFC 4443 3.1)."""
    udp_len = 8 + len(payload)
    if fam == socket.AF_INET:
        src, dst = socket.inet_aton(client[0]), socket.inet_aton(server[0])
        pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
        udp = struct.pack("!HHHH", client[1], server[1], udp_len, 0) + payload
        udp = udp[:6] + struct.pack("!H", csum16(pseudo + udp) or 0xFFFF) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, random.getrandbits(16),
                         0x4000, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
        quote = (ip + udp)[:576 - 20 - 8]  # RFC 1812 4.3.2.3: the reply fits 576 bytes
        msg = struct.pack("!BBHI", 3, 3, 0, 0) + quote
        return msg[:2] + struct.pack("!H", csum16(msg)) + msg[4:]
    src, dst = socket.inet_pton(fam, client[0]), socket.inet_pton(fam, server[0])
    pseudo = src + dst + struct.pack("!I3xB", udp_len, 17)
    udp = struct.pack("!HHHH", client[1], server[1], udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", csum16(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!IHBB16s16s", 6 << 28, udp_len, 17, 64, src, dst)
    quote = (ip + udp)[:1280 - 40 - 8]  # RFC 4443 2.4 (c): no more than the minimum MTU
    return struct.pack("!BBHI", 1, 4, 0, 0) + quote  # the kernel sums ICMPv6 raw sockets


# ---------------------------------------------------------------- the log

class Log:
    def __init__(self, path):
        if path == "-":
            self.fd = os.dup(1)
        else:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND |
                              os.O_CLOEXEC, 0o644)
        self.lock = threading.Lock()
        self.counts = {"queries": 0, "udp": 0, "tcp": 0, "malformed": 0}

    def _write(self, obj):
        try:
            os.write(self.fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())
        except OSError:
            pass

    def message(self, obj):
        with self.lock:
            self.counts["queries"] += 1
            self.counts[obj["transport"]] += 1
            if "malformed" in obj:
                self.counts["malformed"] += 1
            self._write(obj)

    def line(self, obj):
        with self.lock:
            self._write(obj)

    def summary(self, counts=None):
        # Holding the lock to the end: no message line can follow the summary.
        self.lock.acquire()
        self._write({"summary": counts if counts is not None else self.counts})


# ---------------------------------------------------------------- the fake

def setsockopt_freebind(s, fam):
    # The address may still be tentative (IPv6 DAD) or about to be added: bind anyway.
    try:
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND
        else:
            s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND
    except OSError:
        s.setsockopt(socket.IPPROTO_IP, 15, 1)


def sockaddr(fam, host, port):
    return (host, port, 0, 0) if fam == socket.AF_INET6 else (host, port)


class Fake:
    def __init__(self, up, log, alt_addr):
        self.up, self.log = up, log
        self.addr = sockaddr(up.fam, up.host, up.port)
        self.udp = socket.socket(up.fam, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        setsockopt_freebind(self.udp, up.fam)
        self.udp.bind(self.addr)
        self.tcp = None
        if up.tcp:
            self.tcp = socket.socket(up.fam, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            setsockopt_freebind(self.tcp, up.fam)
            self.tcp.bind(self.addr)
            self.tcp.listen(512)
        self.alt = None
        if any(r.forge == "saddr" for r in up.rules):
            if not alt_addr:
                raise ConfigError("a forge saddr rule needs --alt-addr")
            try:
                afam = socket.AF_INET6 if ipaddress.ip_address(alt_addr).version == 6 \
                    else socket.AF_INET
            except ValueError:
                raise ConfigError("--alt-addr: bad address \"%s\"" % alt_addr) from None
            if afam != up.fam:
                raise ConfigError("--alt-addr is not of the listen address's family")
            self.alt = socket.socket(up.fam, socket.SOCK_DGRAM)
            setsockopt_freebind(self.alt, up.fam)
            self.alt.bind(sockaddr(up.fam, alt_addr, up.port))
        self.raw = None
        if any(r.action == "icmp-unreach" for r in up.rules):
            proto = socket.IPPROTO_ICMPV6 if up.fam == socket.AF_INET6 else socket.IPPROTO_ICMP
            self.raw = socket.socket(up.fam, socket.SOCK_RAW, proto)
            # A raw socket sees every ICMP packet: filter them all out, it only sends.
            if up.fam == socket.AF_INET:
                self.raw.setsockopt(255, 1, struct.pack("I", 0xFFFFFFFF))  # SOL_RAW ICMP_FILTER
            else:
                self.raw.setsockopt(socket.IPPROTO_ICMPV6, 1, b"\xff" * 32)  # ICMP6_FILTER
            self.raw.bind(sockaddr(up.fam, up.host, 0))

    @staticmethod
    def later(delay_s, fn, *args):
        if delay_s <= 0:
            fn(*args)
            return
        t = threading.Timer(delay_s, fn, args)
        t.daemon = True
        t.start()

    def entry(self, transport, src, msg):
        now = time.monotonic_ns()
        return {"t": now / 1e9, "t_ns": now, "transport": transport, "src": src[0],
                "sport": src[1], "len": len(msg), "query_hex": msg.hex()}

    def plan(self, transport, msg, e):
        """Decide the reply to one message. -> (rule, [(delay_s, kind, bytes)]) where kind is
        "send" (normal), "sport", "saddr", "icmp" or "reset"; logs the message."""
        try:
            qid, qflags, qlabels, qtype, qclass = parse_query(msg)
        except Malformed as err:
            e["malformed"] = str(err)
            self.log.message(e)
            return None, []
        ql = lower_labels(qlabels)
        e.update(id=qid, qname=name_text(qlabels), qtype=type_text(qtype),
                 edns_udp_size=edns_udp_size(msg))
        rule = next((r for r in self.up.rules if r.matches(ql, qtype)), None)
        q = (qid, qflags, qlabels, qtype, qclass)
        out = []
        if rule is None:
            e.update(action="refused", rule=None)
            out.append((0, "send", build_reply(*q, rcode=5, aa=False)))
        else:
            e.update(action=rule.action, rule=rule.idx)
            d = rule.delay_s
            genuine = build_reply(*q, rcode=rule.rcode, records=rule.records)
            if rule.action == "answer":
                out.append((d, "send", genuine))
            elif rule.action == "truncate":
                out.append((d, "send", genuine if transport == "tcp" else
                            build_reply(*q, rcode=rule.rcode, tc=True)))
            elif rule.action == "icmp-unreach":
                out.append((d, "icmp" if transport == "udp" else "reset", b""))
            elif rule.action == "close" and transport == "tcp":
                out.append((d, "close", b""))
            elif rule.action == "forge":
                e["forge"] = rule.forge
                f = rule.forge
                forged = None
                if f == "txid":
                    forged = build_reply((qid + 0x5A5B) & 0xFFFF, *q[1:], forged_a=True)
                elif f == "question":
                    forged = build_reply(*q, forged_a=True,
                                         qname_override=name_labels(FORGED_QNAME, "forge"))
                elif transport == "udp":
                    forged = build_reply(*q, forged_a=True)
                if forged is not None:
                    out.append((d, "send" if f in ("txid", "question") else f, forged))
                if rule.then_answer:
                    out.append((d + (FORGE_THEN_ANSWER_S if forged else 0), "send", genuine))
        for i, (_, kind, data) in enumerate(out):
            if data:
                e["reply_hex" if i == 0 else "then_hex"] = data.hex()
        if any(k == "icmp" for _, k, _ in out):
            e["icmp"] = True
        self.log.message(e)
        return rule, out

    # --- UDP ---
    def udp_do(self, kind, data, src, msg):
        try:
            if kind == "send":
                self.udp.sendto(data, src)
            elif kind == "saddr":
                self.alt.sendto(data, src)
            elif kind == "sport":
                with socket.socket(self.up.fam, socket.SOCK_DGRAM) as s:
                    s.bind(sockaddr(self.up.fam, self.up.host, 0))
                    s.sendto(data, src)
            elif kind == "icmp":
                self.raw.sendto(icmp_unreach(self.up.fam, src, self.addr, msg),
                                sockaddr(self.up.fam, src[0], 0))
        except OSError as err:
            sys.stderr.write("cellcheck_upstream: udp %s to %s: %s\n" % (kind, src, err))

    def udp_loop(self):
        while True:
            try:
                msg, src = self.udp.recvfrom(65535)
                _, out = self.plan("udp", msg, self.entry("udp", src, msg))
                for delay, kind, data in out:
                    self.later(delay, self.udp_do, kind, data, src[:2], msg)
            except Exception as err:  # noqa: BLE001 - one bad message must not stop the server
                sys.stderr.write("cellcheck_upstream: udp: %r\n" % err)

    # --- TCP ---
    def tcp_loop(self):
        while True:
            try:
                conn, src = self.tcp.accept()
            except OSError:
                continue
            threading.Thread(target=self.tcp_conn, args=(conn, src[:2]), daemon=True).start()

    def tcp_conn(self, conn, src):
        lock = threading.Lock()
        idle = threading.Condition(lock)
        state = {"pending": 0, "reset": False}

        def send(kind, data):
            with lock:
                try:
                    if kind == "reset":
                        state["reset"] = True
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                        conn.shutdown(socket.SHUT_RDWR)
                    elif kind == "close":
                        state["reset"] = True  # read nothing more, answer nothing more
                        conn.shutdown(socket.SHUT_RDWR)
                    elif not state["reset"]:
                        conn.sendall(struct.pack("!H", len(data)) + data)
                except OSError:
                    pass
                state["pending"] -= 1
                idle.notify_all()

        buf = b""
        try:
            while not state["reset"]:
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from("!H", buf)[0]:
                    n = struct.unpack_from("!H", buf)[0]
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    _, out = self.plan("tcp", msg, self.entry("tcp", src, msg))
                    for delay, kind, data in out:
                        with lock:
                            state["pending"] += 1
                        self.later(delay, send, kind, data)
                if state["reset"]:
                    break
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
            # Half-closed by the client: answers still due go out before we close.
            with lock:
                while state["pending"] > 0:
                    idle.wait()
        except Exception as err:  # noqa: BLE001 - a bad connection must not stop the server
            if not isinstance(err, OSError):
                sys.stderr.write("cellcheck_upstream: tcp: %r\n" % err)
        finally:
            conn.close()

    def start(self):
        if self.tcp is not None:
            threading.Thread(target=self.tcp_loop, daemon=True).start()
        threading.Thread(target=self.udp_loop, daemon=True).start()


# ---------------------------------------------------------------- unbound

def zone_apexes(records):
    soa = [r.owner for r in records if r.rtype == 6]
    if soa:
        return soa
    owners = [lower_labels(r.owner) for r in records]
    common = owners[0]
    for o in owners[1:]:
        n = 0
        while n < min(len(o), len(common)) and o[-1 - n] == common[-1 - n]:
            n += 1
        common = common[len(common) - n:]
    if all(o == common for o in owners) and len(common) > 1:
        common = common[1:]
    return [common] if common else []


def cfg_quote(text):
    return "'%s'" % text if '"' in text else '"%s"' % text


class Unbound:
    def __init__(self, up, log, tmp_dir=None):
        # Imported only here: the fake must start fast, and it never needs them.
        import shutil
        import subprocess
        import tempfile

        self.shutil, self.subprocess, self.tempfile = shutil, subprocess, tempfile
        self.up, self.log = up, log
        self.tmp = self.tempfile.mkdtemp(prefix="cellcheck-unbound-", dir=tmp_dir)
        self.conf = os.path.join(self.tmp, "unbound.conf")
        self.logfile = os.path.join(self.tmp, "unbound.log")
        self.proc = None
        v6 = up.fam == socket.AF_INET6
        lines = ["server:",
                 "  interface: %s@%d" % (up.host, up.port),
                 "  port: %d" % up.port,
                 "  interface-automatic: no",
                 "  do-ip4: %s" % ("no" if v6 else "yes"),
                 "  do-ip6: %s" % ("yes" if v6 else "no"),
                 "  do-udp: yes",
                 "  do-tcp: %s" % ("yes" if up.tcp else "no"),
                 '  username: ""',
                 '  chroot: ""',
                 '  directory: "%s"' % self.tmp,
                 '  pidfile: "%s"' % os.path.join(self.tmp, "unbound.pid"),
                 '  logfile: "%s"' % self.logfile,
                 "  use-syslog: no",
                 "  log-queries: yes",
                 "  verbosity: 1",
                 "  num-threads: 1",
                 "  so-reuseport: no",
                 "  ip-freebind: yes",
                 "  access-control: 0.0.0.0/0 allow",
                 "  access-control: ::/0 allow",
                 '  module-config: "iterator"',
                 "  extended-statistics: yes",
                 # Never recurse: every name outside the zone is refused at once.
                 '  local-zone: "." refuse']
        for apex in zone_apexes(up.zone):
            lines.append('  local-zone: "%s" static' % name_text(apex))
        for r in up.zone:
            lines.append("  local-data: %s" % cfg_quote(r.text))
        lines += ["remote-control:",
                  "  control-enable: yes",
                  '  control-interface: "%s"' % os.path.join(self.tmp, "control.sock"),
                  "  control-use-cert: no"]
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def probe(self):
        q = struct.pack("!HHHHHH", 0x4343, 0, 1, 0, 0, 0) + \
            name_wire(name_labels(PROBE_QNAME, "probe")) + struct.pack("!HH", 1, 1)
        with socket.socket(self.up.fam, socket.SOCK_DGRAM) as s:
            s.settimeout(0.05)
            s.connect(sockaddr(self.up.fam, self.up.host, self.up.port))
            try:
                s.send(q)
                return len(s.recv(4096)) >= 12
            except OSError:
                return False

    def start(self):
        libc = ctypes.CDLL(None, use_errno=True)
        # unbound must not outlive its wrapper, even a SIGKILLed one (prctl PR_SET_PDEATHSIG).
        self.proc = self.subprocess.Popen(["unbound", "-d", "-p", "-c", self.conf],
                                          stdin=self.subprocess.DEVNULL,
                                          preexec_fn=lambda: libc.prctl(1, signal.SIGTERM))
        deadline = time.monotonic() + UNBOUND_READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError("unbound exited with status %d (config %s)" %
                                  (self.proc.returncode, self.conf))
            if self.probe():
                return
            time.sleep(0.02)
        raise ConfigError("unbound not answering within %.0f s" % UNBOUND_READY_S)

    def stats(self):
        try:
            out = self.subprocess.run(["unbound-control", "-c", self.conf, "stats_noreset"],
                                 capture_output=True, text=True, timeout=3).stdout
        except (OSError, self.subprocess.SubprocessError):
            return None
        kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        try:
            return int(kv["num.query.tcp"])
        except (KeyError, ValueError):
            return None

    def stop(self):
        tcp = self.stats() if self.proc and self.proc.poll() is None else None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except self.subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        pat = re.compile(r"\] unbound\[\d+:\d+\] info: (\S+) (\S+) (\S+) (\S+)$")
        n = 0
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = pat.search(line.rstrip("\n"))
                    if not m or m.group(2).lower() == PROBE_QNAME:
                        continue
                    try:
                        ipaddress.ip_address(m.group(1))
                    except ValueError:
                        continue
                    n += 1
                    self.log.line({"src": m.group(1), "qname": m.group(2),
                                   "qtype": m.group(3), "action": "unbound"})
        except OSError:
            pass
        self.shutil.rmtree(self.tmp, ignore_errors=True)
        # The readiness probes came over UDP and are left out of n: udp is the rest.
        udp = None if tcp is None else max(n - tcp, 0)
        return {"queries": n, "udp": udp, "tcp": tcp, "malformed": None}


# ---------------------------------------------------------------- main

def enter_netns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description="cellcheck's DNS upstream peer")
    ap.add_argument("--netns", help="network namespace to serve in (default: the current)")
    ap.add_argument("--upstream-json", required=True, help="the case's upstream object")
    ap.add_argument("--ready-fd", type=int, default=-1)
    ap.add_argument("--log", required=True, help="JSON lines log ('-': stdout)")
    ap.add_argument("--alt-addr", help="source address of forge saddr replies")
    ap.add_argument("--tmp-dir", help="where unbound's files go (default: $TMPDIR); the runner "
                    "gives the case dir, removed even when the upstream is killed")
    args = ap.parse_args()

    term = threading.Event()

    def on_term(*_):
        term.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        with open(args.upstream_json, encoding="utf-8") as f:
            up = Upstream(json.load(f))
    except (OSError, ValueError, ConfigError) as e:
        die("%s: %s" % (args.upstream_json, e))
    try:
        if args.netns:
            enter_netns(args.netns)
        log = Log(args.log)
    except OSError as e:
        die(str(e))

    server = None
    try:
        if up.kind == "fake":
            server = Fake(up, log, args.alt_addr)
        else:
            server = Unbound(up, log, args.tmp_dir)
        server.start()
    except (OSError, ConfigError) as e:
        if isinstance(server, Unbound):
            server.stop()
        die("listen %s:%d: %s" % (up.host, up.port, e))

    if args.ready_fd >= 0:
        try:
            os.write(args.ready_fd, b"R")
            os.close(args.ready_fd)
        except OSError:
            pass

    if up.kind == "fake":
        # Signal handlers run on the main thread; the serving threads are daemons.
        while not term.is_set():
            term.wait(1.0)
        log.summary()
        os._exit(0)
    status = 0
    while not term.is_set():
        if server.proc.poll() is not None:
            sys.stderr.write("cellcheck_upstream: unbound exited (status %d)\n" %
                             server.proc.returncode)
            status = 1
            break
        term.wait(0.05)
    log.summary(server.stop())
    os._exit(status)


if __name__ == "__main__":
    main()
