"""ICMP echo every INTERVAL seconds to DST until SIGTERM/SIGINT, then a JSON summary.

    ip netns exec H1 python icmp_probe.py DST [INTERVAL]

Run by tests/gr (gr_helpers.Pinger) instead of ping(8), which is not always installed.
Needs a raw socket (root). Prints ``R SEQ`` for every reply as it comes (the test waits for
the first ones), then, once stopped, waits up to 0.5 s for the replies still in flight and
prints one line ``{"transmitted": ..., "received": ..., "lost": [SEQ...], ...}``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo(ident: int, seq: int) -> bytes:
    payload = b"bgpd-gr-probe".ljust(32, b".")
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(head + payload), ident, seq) + payload


def main() -> None:
    dst = sys.argv[1]
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.01
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(1))
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    seq = 0
    nxt = time.monotonic()
    drain_until = None

    def receive() -> None:
        while True:
            try:
                pkt, (src, _) = sock.recvfrom(2048)
            except BlockingIOError:
                return
            ihl = (pkt[0] & 0x0F) * 4
            if len(pkt) < ihl + 8 or src != dst:
                continue
            typ, _code, _ck, pid, pseq = struct.unpack("!BBHHH", pkt[ihl : ihl + 8])
            if typ == 0 and pid == ident and pseq in sent and pseq not in got:
                got[pseq] = time.monotonic()
                sys.stdout.write(f"R {pseq}\n")
                sys.stdout.flush()

    while True:
        now = time.monotonic()
        if stopping and drain_until is None:
            drain_until = now + 0.5
        if drain_until is not None:
            if now >= drain_until or len(got) == len(sent):
                break
        elif now >= nxt:
            seq = seq % 0xFFFF + 1
            try:
                sock.sendto(echo(ident, seq), (dst, 0))
            except OSError:
                pass  # no route: counted as lost
            sent[seq] = now
            nxt = max(nxt + interval, now + interval / 2)
        timeout = 0.05 if drain_until is not None else max(0.0, nxt - time.monotonic())
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            ready = []
        if ready:
            receive()
    lost = sorted(s for s in sent if s not in got)
    times = [got[s] for s in sorted(got)]
    gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
    rtt = max((got[s] - sent[s] for s in got), default=0.0)
    summary = {
        "transmitted": len(sent),
        "received": len(got),
        "lost": lost,
        "longest_gap_ms": round(gap * 1000, 1),
        "max_rtt_ms": round(rtt * 1000, 2),
        "duration_s": round(max(sent.values(), default=0) - min(sent.values(), default=0), 2),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
