"""Differential check of the server's request framing against h11, an independent strict
HTTP/1.1 parser.

Usage: h11_differential.py HOST PORT CASES SEED

Makes CASES byte streams (request heads and bodies, valid ones and mutations of them: bytes
inserted, deleted or changed, framing fields repeated, a second request after the first),
sends each on a connection of its own to the server (then shuts the write side), and reads
what the server answered until it closes. The server's handler answers every request it
reads in full with 200 and `METHOD TARGET HEX(BODY)`. h11 reads the same stream as a server
would (a response sent after each request).

The two may refuse different streams (each is allowed to be stricter than the other, and the
server is on purpose: bare LF, whitespace after a chunk size, DEL in values...), but where
both accept the k-th request of a stream they must read the same method, target and body:
a stream that two parsers read two ways is how requests are smuggled. Prints one line of
counts, and every disagreement; exits 1 on a disagreement or if too few streams were read
by both for the check to mean anything.
"""

import random
import re
import socket
import sys

import h11

HEADS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /q?a=b HTTP/1.1\r\nHost: a:80\r\nConnection: close\r\nX-A: b c\r\n\r\n",
]
BODIES = [
    b"",
    b"hello",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=1\r\nhello\r\n0\r\n\r\n",
    b"2\r\nhe\r\n3\r\nllo\r\n0\r\nX-T: y\r\n\r\n",
    b"000005\r\nhello\r\n0\r\n\r\n",
    b"0\r\n\r\n",
]
SECOND = b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n"
PIECES = [
    b" ", b"\t", b"\r", b"\n", b"\r\n", b":", b",", b";", b"=", b"0", b"1", b"5", b"a", b"x",
    b"-", b"+", b"\x00", b"\x0b", b"\x7f", b"\x80", b'"', b"chunked", b"identity",
    b"Content-Length: 1\r\n", b"Transfer-Encoding: chunked\r\n", b"Host: b\r\n",
    b"\r\n0\r\n\r\n", SECOND,
]


def mutate(rng, data, times):
    b = bytearray(data)
    for _ in range(times):
        op = rng.random()
        i = rng.randint(0, len(b))
        if op < 0.45:
            b[i:i] = rng.choice(PIECES)
        elif op < 0.7 and len(b) > 1:
            del b[i:min(len(b), i + rng.randint(1, 3))]
        elif op < 0.85 and i < len(b):
            b[i] = rng.choice(b" \t\r\n:;,0a5")
        elif i < len(b):
            b[i:i + 1] = bytes([b[i]]).swapcase()
    return bytes(b)


def stream(rng):
    head, body = rng.choice(HEADS), rng.choice(BODIES)
    r = rng.random()
    if r < 0.35:
        head = mutate(rng, head, rng.randint(1, 3))
    elif r < 0.8:
        body = mutate(rng, body, rng.randint(1, 2))
    else:
        head, body = mutate(rng, head, 1), mutate(rng, body, 1)
    return head + body + SECOND


def normalized(target):
    """An absolute-form target as the server's `Uri` writes it: `http` or `https` in lower
    case (a scheme is case-insensitive, RFC 3986 §3.1) and an empty path as `/` (the same,
    RFC 9110 §4.2.3)."""
    m = re.match(rb"(https?)://([^/?#]*)(.*)", target, re.S | re.I)
    if not m:
        return target
    rest = m.group(3) if m.group(3).startswith(b"/") else b"/" + m.group(3)
    return m.group(1).lower() + b"://" + m.group(2) + rest


def h11_reading(data):
    """The requests h11 reads in full, in order, as `METHOD TARGET HEX`."""
    conn = h11.Connection(h11.SERVER)
    read = []
    try:
        conn.receive_data(data)
        conn.receive_data(b"")
        req, body = None, b""
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
                return read
            if isinstance(ev, h11.Request):
                req, body = ev, b""
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                read.append(b"%s %s %s" % (req.method, normalized(req.target), body.hex().encode()))
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return read
                conn.start_next_cycle()
    except h11.ProtocolError:
        return read


def server_reading(addr, data):
    """The requests the server answered with 200, in order, as its handler saw them."""
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    read = []
    while got:
        end = got.find(b"\r\n\r\n")
        if end < 0:
            raise AssertionError("a response head cut short: %r" % got)
        lines = got[:end].split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = got[end + 4:end + 4 + length]
        got = got[end + 4 + length:]
        if not lines[0].startswith(b"HTTP/1.1 200 "):
            break
        read.append(body)
    return read


def main():
    host, port, cases, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    seen = set()
    both = both_twice = 0
    disagreements = []
    while len(seen) < cases:
        data = stream(rng)
        if data in seen:
            continue
        seen.add(data)
        theirs, ours = h11_reading(data), server_reading((host, port), data)
        agreed = 0
        for a, b in zip(theirs, ours):
            if a != b:
                disagreements.append((data, theirs, ours))
                break
            agreed += 1
        both += agreed >= 1
        both_twice += agreed >= 2
    print("streams %d, first request read alike by both %d, two requests %d, disagreements %d"
          % (len(seen), both, both_twice, len(disagreements)))
    for data, theirs, ours in disagreements:
        print("DISAGREE %r\n  h11:    %r\n  server: %r" % (data, theirs, ours))
    # The check means something only if many streams got through both parsers.
    if disagreements or both < len(seen) // 5 or both_twice < len(seen) // 40:
        sys.exit(1)


if __name__ == "__main__":
    main()
