"""Test helpers: addresses of our own, a small BMP collector, and pmacct's pmbmpd.

The Python collector parses the stream with the RFC 7854 framing only (it is a test sink,
not a second encoder): each message is kept as ``(type, per-peer header fields, body)``.
It can stop reading (the kernel buffers fill and the sender's transport buffer grows) and
resume, as a collector that hangs or falls behind does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bgpd.wire import decode_message
from bgpd.wire.context import Context

_NEXT = [0]


def worker_base() -> int:
    """127.0.<N+1>.x for pytest-xdist worker gwN (the interop pool's /24), from .200 up."""
    w = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(w[2:]) + 1 if w.startswith("gw") else 0


def own_address() -> str:
    """A fresh 127.0.N.200+ address for one collector of this test session."""
    _NEXT[0] += 1
    return f"127.0.{worker_base()}.{200 + _NEXT[0] % 50}"


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@dataclass
class Msg:
    type: int
    peer_type: int | None = None
    flags: int | None = None
    peer_address: str | None = None
    peer_as: int | None = None
    body: bytes = b""  # after the per-peer header (the UPDATE for route monitoring)
    raw: bytes = b""

    def update(self, addpath=frozenset()):
        """The UPDATE, decoded keeping every attribute (LOCAL_PREF included, as a collector
        does: ``ibgp`` only decides whether bgpd's decoder discards it)."""
        u = decode_message(self.body[18], self.body[19:], Context(add_path_rx=addpath, ibgp=True))
        e = u.error
        if e is not None and e.code == 3 and e.subcode == 3 and e.data == b"\x05":
            u.error = None  # "missing LOCAL_PREF" is an iBGP rule, not the collector's
        return u


def parse(raw: bytes) -> Msg:
    t = raw[5]
    if t in (4, 5):  # no per-peer header
        return Msg(t, body=raw[6:], raw=raw)
    p = raw[6:48]
    addr = p[10:26]
    if p[1] & 0x80 and p[0] != 3:
        text = str(ipaddress.IPv6Address(addr))
    else:
        text = str(ipaddress.IPv4Address(addr[12:]))
    return Msg(t, p[0], p[1], text, int.from_bytes(p[26:30], "big"), raw[48:], raw)


class Connection(asyncio.Protocol):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.buf = bytearray()
        self.msgs: list[Msg] = []
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.collector.connections.append(self)
        if self.collector.paused:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 6:
            n = int.from_bytes(self.buf[1:5], "big")
            if len(self.buf) < n:
                break
            self.msgs.append(parse(bytes(self.buf[:n])))
            del self.buf[:n]

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


class Collector:
    """An asyncio BMP sink on ``address:port``."""

    def __init__(self, address: str, port: int, rcvbuf: int | None = None) -> None:
        self.address = address
        self.port = port
        self.rcvbuf = rcvbuf
        self.server: asyncio.AbstractServer | None = None
        self.connections: list[Connection] = []
        self.paused = False

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((self.address, self.port))
        self.server = await asyncio.get_running_loop().create_server(
            lambda: Connection(self), sock=sock
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for c in self.connections:
                if c.transport is not None:
                    c.transport.abort()
            await self.server.wait_closed()
            self.server = None

    def pause(self) -> None:
        self.paused = True
        for c in self.connections:
            if c.transport is not None and not c.transport.is_closing():
                c.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        for c in self.connections:
            if c.transport is not None and not c.transport.is_closing():
                c.transport.resume_reading()

    @property
    def last(self) -> Connection:
        return self.connections[-1]

    async def wait_for(self, cond, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {cond}")
            await asyncio.sleep(0.01)


# --- pmacct's pmbmpd --------------------------------------------------------------------


@dataclass
class Pmbmpd:
    """pmbmpd listening on our own address, logging every BMP message as JSON lines."""

    workdir: Path
    address: str
    port: int
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "bmp.json"

    def start(self) -> None:
        conf = self.workdir / "pmbmpd.conf"
        conf.write_text(
            "\n".join(
                [
                    f"bmp_daemon_ip: {self.address}",
                    f"bmp_daemon_port: {self.port}",
                    f"bmp_daemon_msglog_file: {self.log}",
                    "bmp_daemon_msglog_output: json",
                    "bmp_daemon_max_peers: 8",
                    # a fixed socket receive buffer (SO_RCVBUF, 2 x 64 KiB): autotuned, a
                    # stopped pmbmpd's buffer grows up to tcp_rmem's maximum (32 MiB here) and
                    # absorbs what a test of bgpd's own bound means to pile up
                    "bmp_daemon_pipe_size: 65536",
                    f"logfile: {self.workdir / 'pmbmpd.log'}",
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            [shutil.which("pmbmpd"), "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # probe from our own address too (pmbmpd logs every connection as a BMP router)
            with socket.socket() as s:
                s.bind((self.address, 0))
                if s.connect_ex((self.address, self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"pmbmpd exited: {self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"pmbmpd does not listen on {self.address}:{self.port}: {self.tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(0.5)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)  # pmbmpd takes ~10 s to act on SIGTERM
            self.proc.wait(5)
        self.proc = None

    def tail(self) -> str:
        p = self.workdir / "pmbmpd.log"
        return p.read_text()[-2000:] if p.exists() else ""

    def records(self) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line being written
        return out
