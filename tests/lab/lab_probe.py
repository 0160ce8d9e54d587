"""ICMP and ICMPv6 echo probes run inside a pod's namespace (no ping(8) on this machine).

    ip netns exec POD python lab_probe.py watch INTERVAL OUT TARGET...
    ip netns exec POD python lab_probe.py once TIMEOUT TARGET...

``watch``: an echo to every target every INTERVAL seconds (0.01: every 10 ms), each target
with its own identifier and sequence; every 0.2 s a status line ``{"received": {...}}`` to
stdout. On SIGTERM it waits up to 0.5 s for the replies in flight, then writes OUT (JSON):
per target the echoes sent, the replies, and the lost ones as their send times (wall
clock, so the test can set them against the times of its own actions).

``once``: an echo to every target every 20 ms until each has answered once or TIMEOUT
passes; prints ``{target: rtt_ms or null}``.

Needs a raw socket (root). The checksum of ICMPv6 is the kernel's.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

PAYLOAD = b"bgpd-lab-probe".ljust(24, b".")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Prober:
    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.v6 = {t: ipaddress.ip_address(t).version == 6 for t in targets}
        self.sock4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        for s in (self.sock4, self.sock6):
            s.setblocking(False)
        base = (os.getpid() * 16) & 0xFFFF
        self.ident = {t: (base + i) & 0xFFFF for i, t in enumerate(targets)}
        self.by_ident = {(self.v6[t], i): t for t, i in self.ident.items()}
        self.seq = dict.fromkeys(targets, 0)
        self.sent: dict[str, dict[int, float]] = {t: {} for t in targets}  # seq -> wall time
        self.got: dict[str, dict[int, float]] = {t: {} for t in targets}  # seq -> monotonic
        self.sent_mono: dict[str, dict[int, float]] = {t: {} for t in targets}

    def send(self, target: str) -> None:
        seq = self.seq[target] = self.seq[target] % 0xFFFF + 1
        ident = self.ident[target]
        if self.v6[target]:
            pkt = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + PAYLOAD
            sock, addr = self.sock6, (target, 0, 0, 0)
        else:
            head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(head + PAYLOAD), ident, seq) + PAYLOAD
            sock, addr = self.sock4, (target, 0)
        self.sent[target][seq] = time.time()
        self.sent_mono[target][seq] = time.monotonic()
        try:
            sock.sendto(pkt, addr)
        except OSError:
            pass  # no route: counted as lost

    def receive(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self.sock4, self.sock6], [], [], max(0.0, timeout))
        except InterruptedError:
            return
        for sock in ready:
            while True:
                try:
                    pkt, _ = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if sock is self.sock4:
                    off = (pkt[0] & 0x0F) * 4
                    want, v6 = 0, False
                else:
                    off, want, v6 = 0, 129, True
                if len(pkt) < off + 8:
                    continue
                typ, _c, _k, ident, seq = struct.unpack("!BBHHH", pkt[off : off + 8])
                target = self.by_ident.get((v6, ident))
                if typ == want and target and seq in self.sent[target]:
                    self.got[target].setdefault(seq, time.monotonic())

    def summary(self, target: str) -> dict:
        sent, got = self.sent[target], self.got[target]
        lost = sorted(sent[s] for s in sent if s not in got)
        times = sorted(got.values())
        gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
        rtts = [got[s] - self.sent_mono[target][s] for s in got]
        return {
            "sent": len(sent),
            "received": len(got),
            "lost": lost,
            "first": min(sent.values(), default=0.0),
            "last": max(sent.values(), default=0.0),
            "longest_gap_ms": round(gap * 1000, 1),
            "max_rtt_ms": round(max(rtts, default=0.0) * 1000, 2),
        }


def watch(interval: float, out: str, targets: list[str]) -> None:
    p = Prober(targets)
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(1))
    nxt = time.monotonic()
    status_at = nxt
    while not stopping:
        now = time.monotonic()
        if now >= nxt:
            for t in targets:
                p.send(t)
            nxt = max(nxt + interval, now + interval / 2)
        if now >= status_at:
            counts = {t: len(p.got[t]) for t in targets}
            sys.stdout.write(json.dumps({"received": counts}) + "\n")
            sys.stdout.flush()
            status_at = now + 0.2
        p.receive(nxt - time.monotonic())
    drain = time.monotonic() + 0.5
    while time.monotonic() < drain:
        if all(len(p.got[t]) == len(p.sent[t]) for t in targets):
            break
        p.receive(0.05)
    with open(out + ".tmp", "w") as f:
        json.dump({t: p.summary(t) for t in targets}, f)
    os.replace(out + ".tmp", out)


def once(timeout: float, targets: list[str]) -> None:
    p = Prober(targets)
    deadline = time.monotonic() + timeout
    answered: dict[str, float | None] = dict.fromkeys(targets)
    while time.monotonic() < deadline and any(v is None for v in answered.values()):
        for t in targets:
            if answered[t] is None:
                p.send(t)
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            p.receive(end - time.monotonic())
        for t in targets:
            if answered[t] is None and p.got[t]:
                seq, at = next(iter(p.got[t].items()))
                answered[t] = round((at - p.sent_mono[t][seq]) * 1000, 2)
    print(json.dumps(answered))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "watch":
        watch(float(sys.argv[2]), sys.argv[3], sys.argv[4:])
    elif mode == "once":
        once(float(sys.argv[2]), sys.argv[3:])
    else:
        raise SystemExit(f"usage: {sys.argv[0]} watch|once ...")
