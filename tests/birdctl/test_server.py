"""The asyncio binding: pipelined commands, long lines, ``down`` and concurrent clients."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import datetime

from bc_helpers import query

from bgpd.birdctl.engine import ConfigureResult
from bgpd.birdctl.snapshot import Protocol, Snapshot, Status

T = datetime(2026, 8, 22, 10, 0, 0)
SNAP = Snapshot(Status("10.0.0.1", T, T), (Protocol("static1", "Static", "up", T),))


class Handler:
    def __init__(self) -> None:
        self.shutdowns = 0
        self.graceful = 0

    def configure(self, request):
        return ConfigureResult("bird.cfg")

    def protocol_command(self, action, name, message):
        return True

    def shutdown(self):
        self.shutdowns += 1

    def graceful_restart(self):
        self.graceful += 1


def test_pipelined_burst_answered_in_order(serve):
    """Unlike BIRD 1.6.8 (which drops a connection whose unread input passes 1 KiB), every
    command of a burst sent before the greeting is answered, in order."""
    path = serve(lambda: SNAP, clock=lambda: T)
    cmds = ["show status", "show protocols", "show memory", "foo"] * 50
    replies = query(path, *cmds, pipeline=True)
    assert replies[0] == ["0001 BIRD v0.3.3+birdv1.6.8 ready."]
    finals = [r[-1] for r in replies[1:]]
    assert finals == ["0013 Daemon is up and running", "0000 ", "0000 ", "9001 syntax error"] * 50


def test_too_long_command_then_more(serve):
    path = serve(lambda: SNAP, clock=lambda: T)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"show status" + b" " * 5000 + b"\nshow protocols static1\n")
        buf = b""
        while buf.count(b"\n0000 \n") < 1:
            buf += s.recv(65536)
    lines = buf.decode().split("\n")
    assert lines[1] == "9000 Command too long"
    assert lines[2:5] == [
        "2002-name     proto    table    state  since       info",
        "1002-static1  Static   master   up     10:00:00    ",
        "0000 ",
    ]


def test_down_replies_then_calls_shutdown(serve):
    h = Handler()
    path = serve(lambda: SNAP, h)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"down\nshow status\n")
        buf = b""
        while True:
            data = s.recv(4096)
            if not data:
                break
            buf += data
    assert buf == b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n0007 Shutdown requested\n"
    assert h.shutdowns == 1


def test_graceful_restart_replies_then_calls_graceful_restart(serve):
    """As BIRD 2.0.12: the reply, then the connection closes while the daemon stops."""
    h = Handler()
    path = serve(lambda: SNAP, h)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"graceful restart\nshow status\n")
        buf = b""
        while True:
            data = s.recv(4096)
            if not data:
                break
            buf += data
    assert buf == b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n0025 Graceful restart requested\n"
    assert (h.graceful, h.shutdowns) == (1, 0)


def test_concurrent_clients(serve):
    path = serve(lambda: SNAP)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(20):
                assert query(path, "show protocols")[1][-1] == "0000 "
        except BaseException as e:  # noqa: BLE001 - collected for the assert below
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(8)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and time.monotonic() - start < 30


async def test_held_server_greets_only_when_ready(tmp_sock_dir):
    """While the daemon starts, connections are accepted (the socket exists, as BIRD's does
    before its protocols start) but nobody is greeted or answered until ``ready()``."""
    import asyncio

    from bgpd.birdctl.engine import BirdCli
    from bgpd.birdctl.server import BirdControlServer

    path = str(tmp_sock_dir / "held.ctl")
    server = BirdControlServer(path, BirdCli(lambda: SNAP, Handler(), lambda: T))
    server.hold()
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"show status\n")
        with contextlib.suppress(asyncio.TimeoutError):
            early = await asyncio.wait_for(reader.read(100), 0.3)
            raise AssertionError(f"greeted before ready: {early!r}")
        server.ready()
        greeting = await asyncio.wait_for(reader.readline(), 5)
        assert greeting == b"0001 BIRD v0.3.3+birdv1.6.8 ready.\n"
        reply = await asyncio.wait_for(reader.readuntil(b"0013 Daemon is up and running\n"), 5)
        assert b"1000-BIRD v0.3.3+birdv1.6.8" in reply
        writer.close()
    finally:
        await server.close()
