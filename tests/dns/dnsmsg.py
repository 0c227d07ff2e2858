# SPDX-License-Identifier: Apache-2.0
"""DNS wire helpers of dns_client.py.

Written from RFC 1035 sections 3.1, 4.1 and 5.1 and the presentation rules of the DNS brief,
never from ref/: the tests must not share a parser with the code they check. Only what the
test scripts need: a header, the question, resource records for display, and names.
"""

import socket
import struct

HEADER_LEN = 12
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "ANY": 255}


class ParseError(Exception):
    pass


def qtype_value(t):
    """"A", "aaaa", "28" or 28 -> 28."""
    if isinstance(t, int):
        return t
    if t.isdigit():
        return int(t)
    return TYPES[t.upper()]


def header(msg):
    if len(msg) < HEADER_LEN:
        raise ParseError(f"{len(msg)} bytes, shorter than a header")
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    return {
        "id": qid,
        "qr": flags >> 15,
        "opcode": (flags >> 11) & 0xF,
        "aa": (flags >> 10) & 1,
        "tc": (flags >> 9) & 1,
        "rd": (flags >> 8) & 1,
        "ra": (flags >> 7) & 1,
        "z": (flags >> 4) & 7,
        "rcode": flags & 0xF,
        "qdcount": qd,
        "ancount": an,
        "nscount": ns,
        "arcount": ar,
    }


def read_name(msg, off, pointers=True):
    """(labels, offset after the name where it sits); pointers followed at most 16 hops."""
    labels = []
    end = None
    hops = 0
    total = 1
    while True:
        if off >= len(msg):
            raise ParseError("name runs past the end")
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            if not pointers:
                raise ParseError("compression pointer where none is allowed")
            if off + 1 >= len(msg):
                raise ParseError("pointer runs past the end")
            target = ((n & 0x3F) << 8) | msg[off + 1]
            if end is None:
                end = off + 2
            hops += 1
            if hops > 16 or target >= off:
                raise ParseError("pointer loop or forward pointer")
            off = target
            continue
        if n & 0xC0:
            raise ParseError(f"label type 0x{n:02x}")
        if off + 1 + n > len(msg):
            raise ParseError("label runs past the end")
        labels.append(bytes(msg[off + 1:off + 1 + n]))
        total += n + 1
        if total > 255:
            raise ParseError("name longer than 255 bytes")
        off += 1 + n
    return labels, (end if end is not None else off)


def question(msg):
    """The first question: {labels, qname, qtype, qclass, start, end} (end past qclass)."""
    if len(msg) < HEADER_LEN:
        raise ParseError("no header")
    labels, off = read_name(msg, HEADER_LEN, pointers=False)
    if off + 4 > len(msg):
        raise ParseError("question without type and class")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return {"labels": labels, "qname": name_text(labels), "qtype": qtype, "qclass": qclass,
            "start": HEADER_LEN, "end": off + 4}


def name_text(labels):
    """Presentation format: "www.example.test.", "." for the root, \\. \\\\ and \\DDD escapes."""
    if not labels:
        return "."
    out = []
    for label in labels:
        s = []
        for b in label:
            if b in (0x2E, 0x5C):
                s.append("\\" + chr(b))
            elif 0x21 <= b <= 0x7E:
                s.append(chr(b))
            else:
                s.append(f"\\{b:03d}")
        out.append("".join(s))
    return ".".join(out) + "."


def encode_name(text):
    """Wire form of a plain dotted name (no escapes): "a.example.test" -> b"\\x01a..."."""
    text = text.rstrip(".")
    if not text:
        return b"\x00"
    out = b""
    for label in text.split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def rdata_text(rtype, msg, off, rdlen):
    rdata = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    if rtype == 16:
        parts, i = [], 0
        while i < len(rdata):
            n = rdata[i]
            parts.append(rdata[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        return " ".join('"' + p + '"' for p in parts)
    return rdata.hex()


def records(msg, off, count):
    """`count` resource records from off: ([{name, type, class, ttl, data}], offset after)."""
    out = []
    for _ in range(count):
        labels, off = read_name(msg, off)
        if off + 10 > len(msg):
            raise ParseError("record header runs past the end")
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, off)
        off += 10
        if off + rdlen > len(msg):
            raise ParseError("rdata runs past the end")
        out.append({"name": name_text(labels), "type": rtype, "class": rclass, "ttl": ttl,
                    "data": rdata_text(rtype, msg, off, rdlen)})
        off += rdlen
    return out, off


def describe(msg):
    """Everything a test asserts on about a response, as a JSON-ready dict."""
    d = {"hex": bytes(msg).hex(), "len": len(msg)}
    try:
        d.update(header(msg))
    except ParseError as e:
        d["error"] = str(e)
        return d
    off = HEADER_LEN
    try:
        if d["qdcount"] >= 1:
            q = question(msg)
            d.update(qname=q["qname"], qtype=q["qtype"], qclass=q["qclass"])
            off = q["end"]
            for _ in range(d["qdcount"] - 1):
                _, off = read_name(msg, off)
                off += 4
        d["answers"], off = records(msg, off, d["ancount"])
        d["authority"], off = records(msg, off, d["nscount"])
        d["additional"], off = records(msg, off, d["arcount"])
        d["trailing"] = len(msg) - off
    except ParseError as e:
        d["error"] = str(e)
    return d
