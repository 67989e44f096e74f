#!/usr/bin/env python3
"""Draw the echo sweep of the bench program as an SVG picture: messages per second against
the number of connections (log scale), one line per server.

Usage:
    cargo run --release -p gevent-bench -- --echo-only > sweep.txt
    scripts/plot-echo-sweep.py sweep.txt > echo-sweep.svg

Reads the bench program's `echo_<server>_msgs_per_sec_<size>` lines (server c, rust or tokio;
size 50, 1k, 5k, 10k, ...). Only the Python standard library is used.
"""
import math
import re
import sys

SERVERS = [
    ("c", "C libev (callbacks)", "#444444"),
    ("rust", "gevent for Rust (greenlets)", "#d9480f"),
    ("tokio", "tokio current_thread", "#1c7ed6"),
]


def size_of(label):
    m = re.fullmatch(r"(\d+)(k?)", label)
    return int(m.group(1)) * (1000 if m.group(2) else 1)


def read(lines):
    data = {}
    for line in lines:
        m = re.match(r"echo_(c|rust|tokio)_msgs_per_sec_(\d+k?) ([\d.]+)", line)
        if m:
            data.setdefault(m.group(1), {})[size_of(m.group(2))] = float(m.group(3))
    return data


def svg(data):
    w, h = 640, 400
    left, right, top, bottom = 80, 200, 30, 50
    sizes = sorted({n for series in data.values() for n in series})
    if not sizes:
        sys.exit("plot-echo-sweep: no echo_*_msgs_per_sec_* lines in the input")
    lo, hi = math.log10(min(sizes)), math.log10(max(sizes))
    if hi == lo:
        hi = lo + 1
    ymax = max(v for series in data.values() for v in series.values())
    step = 10 ** math.floor(math.log10(ymax / 4))
    ymax = math.ceil(ymax / step / 2) * step * 2

    def x(n):
        return left + (math.log10(n) - lo) / (hi - lo) * (w - left - right)

    def y(v):
        return h - bottom - v / ymax * (h - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Echo, 64-byte messages, one in flight per '
        f"connection, server on one core</text>",
    ]
    ticks = 4
    for i in range(ticks + 1):
        v = ymax * i / ticks
        out.append(
            f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#dddddd"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v / 1000:.0f}k</text>'
        )
    for n in sizes:
        out.append(
            f'<line x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{top}" y2="{h - bottom}" '
            f'stroke="#eeeeee"/>'
        )
        out.append(
            f'<text x="{x(n):.1f}" y="{h - bottom + 16}" text-anchor="middle">{n:,}</text>'
        )
    out.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">'
        f"connections (log scale)</text>"
    )
    out.append(
        f'<text x="18" y="{(top + h - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {(top + h - bottom) / 2})">messages per second</text>'
    )
    for i, (key, name, colour) in enumerate(SERVERS):
        series = data.get(key)
        if not series:
            continue
        pts = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in sorted(series.items()))
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for n, v in sorted(series.items()):
            out.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        ly = top + 20 + 20 * i
        out.append(
            f'<line x1="{w - right + 12}" x2="{w - right + 32}" y1="{ly}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{w - right + 38}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    sys.stdout.write(svg(read(src)))


if __name__ == "__main__":
    main()
