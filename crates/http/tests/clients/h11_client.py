"""The server's responses read by h11, an independent strict HTTP/1.1 client.

Usage: h11_client.py HOST PORT CONNECTIONS SEED

On each of CONNECTIONS connections, sends a random batch of pipelined requests in one write
(GET, HEAD and POST to the test application's routes, bodies with Content-Length or chunked,
some with `Expect: 100-continue`, some asking to close; HTTP/1.1, the one version h11 sends), then reads every
response with h11 as the client that sent them, one after another. Each must be framed so
that h11 reads it without error and finds what the route answers: the body of an `/echo`,
nothing after a HEAD or a 204, the chunked bodies of `/stream` and `/write`, `METHOD URI`
otherwise. A response that closes the connection ends the batch: h11 must then see the
connection close and nothing after it. Exits 1 with the first mismatch.
"""

import random
import socket
import sys

import h11

STREAM = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(100000))


def request(rng):
    """One request: (h11 events to send, what its response must be)."""
    method = rng.choice([b"GET", b"GET", b"HEAD", b"POST"])
    route = rng.choice([b"/a", b"/echo", b"/stream", b"/write", b"/empty"])
    if method != b"POST" and route == b"/echo":
        route = b"/b"
    target = route + (b"?q=%d" % rng.randint(0, 99) if rng.random() < 0.3 else b"")
    headers = [(b"Host", b"x")]
    body = b""
    chunks = None
    if method == b"POST":
        body = bytes(rng.randint(0, 255) for _ in range(rng.choice([0, 1, 10, 5000])))
        if rng.random() < 0.5:
            headers.append((b"Transfer-Encoding", b"chunked"))
            cut = sorted(rng.sample(range(len(body) + 1), min(3, len(body) + 1)))
            chunks = [body[a:b] for a, b in zip([0] + cut, cut + [len(body)]) if b > a]
        else:
            headers.append((b"Content-Length", b"%d" % len(body)))
        if body and rng.random() < 0.3:
            headers.append((b"Expect", b"100-continue"))
    if rng.random() < 0.05:
        headers.append((b"Connection", b"close"))
    events = [h11.Request(method=method, target=target, headers=headers)]
    for c in chunks if chunks is not None else ([body] if body else []):
        events.append(h11.Data(data=c))
    events.append(h11.EndOfMessage())
    if route == b"/empty":
        want = (204, b"")
    elif method == b"HEAD":
        want = (200, b"")
    elif route == b"/echo":
        want = (200, body)
    elif route == b"/stream":
        want = (200, STREAM)
    elif route == b"/write":
        want = (200, b"one,two")
    else:
        want = (200, method + b" " + target)
    return events, want


def batch(rng, addr):
    reqs = [request(rng) for _ in range(rng.randint(1, 8))]
    # The bytes of every request, as h11 writes them (each on a client of its own: h11 does
    # not pipeline, the server must).
    wire = b""
    for events, _ in reqs:
        c = h11.Connection(h11.CLIENT)
        for ev in events:
            wire += c.send(ev) or b""
    with socket.create_connection(addr, timeout=20) as s:
        s.sendall(wire)
        client = h11.Connection(h11.CLIENT)
        for n, (events, (status, body)) in enumerate(reqs):
            for ev in events:
                client.send(ev)
            got, data = None, b""
            while True:
                ev = client.next_event()
                if ev is h11.NEED_DATA:
                    chunk = s.recv(65536)
                    client.receive_data(chunk)
                    continue
                if isinstance(ev, h11.InformationalResponse):
                    continue
                if isinstance(ev, h11.Response):
                    got = ev.status_code
                elif isinstance(ev, h11.Data):
                    data += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    break
                else:
                    raise AssertionError("request %d: %r" % (n, ev))
            if (got, data) != (status, body):
                raise AssertionError("request %d of %r: %r %r, wanted %r %r"
                                     % (n, wire[:2000], got, data[:200], status, body[:200]))
            if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
                # The server said it closes: the connection must end here.
                rest = s.recv(65536)
                while rest:
                    client.receive_data(rest)
                    rest = s.recv(65536)
                client.receive_data(b"")
                ev = client.next_event()
                assert isinstance(ev, h11.ConnectionClosed), "after a close: %r" % ev
                return n + 1
            client.start_next_cycle()
    return len(reqs)


def main():
    host, port, conns, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    answered = sum(batch(rng, (host, port)) for _ in range(conns))
    print("connections %d, responses read %d" % (conns, answered))


if __name__ == "__main__":
    main()
