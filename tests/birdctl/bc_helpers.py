"""Helpers for the birdctl tests: talking raw to a BIRD control socket, running our server in
a background thread, running the real clients, and normalising the values that differ
between two daemons (times, ticking timers, memory sizes)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bgpd.birdctl.engine import BirdCli, ControlHandler
from bgpd.birdctl.server import BirdControlServer
from bgpd.birdctl.snapshot import Snapshot


def is_final(line: str) -> bool:
    return len(line) > 4 and line[:4].isdigit() and line[4] == " "


def query(
    path: str | Path, *commands: str, timeout: float = 5.0, pipeline: bool = False
) -> list[list[str]]:
    """Send ``commands`` on one connection and return the replies, each a list of raw
    lines (without ``\\n``); the greeting is reply 0. The first command goes out before
    the greeting is read, as Calico's Go clients send it; the others each after the
    previous reply (BIRD 1.6.8 drops a connection whose unread input passes its 1 KiB
    receive buffer). ``pipeline``: send them all at once."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        todo = list(commands)
        if pipeline:
            s.sendall(b"".join(c.encode() + b"\n" for c in todo))
            todo = []
        elif todo:
            s.sendall(todo.pop(0).encode() + b"\n")
        replies: list[list[str]] = []
        cur: list[str] = []
        buf = b""
        while len(replies) < len(commands) + 1:
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {len(replies)} replies: {buf!r}")
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode()
                cur.append(line)
                if is_final(line):
                    replies.append(cur)
                    cur = []
                    if len(replies) > 1 and todo:
                        s.sendall(todo.pop(0).encode() + b"\n")
        return replies


class ThreadedServer:
    """Our control socket, served by an asyncio loop in a daemon thread."""

    def __init__(
        self,
        path: str | Path,
        snapshot: Callable[[], Snapshot],
        handler: ControlHandler | None = None,
        clock: Callable[[], datetime] = datetime.now,
        version: str | None = None,
    ) -> None:
        self.path = str(path)
        self.cli = BirdCli(snapshot, handler, clock)
        kw = {"version": version} if version else {}
        self.server = BirdControlServer(self.path, self.cli, **kw)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def run_client(argv: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


_TIME = re.compile(r"\b\d\d:\d\d:\d\d\b")
_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b")
_TIMER = re.compile(
    r"(Hold timer:|Keepalive timer:|Connect delay:|Error wait:|Wait timer is)(\s*)\d+/(\d+)"
)
_MEM = re.compile(
    r"^(\S*\s*(Routing tables|Route attributes|ROA tables|Protocols|Total):\s*)\s*\d+ [ kMG]B$"
)


def normalise(text: str) -> str:
    """Replace the values that legitimately differ between two daemons (or two moments):
    clock times and dates, the remaining seconds of ticking timers (their totals are
    kept) and ``show memory`` sizes."""
    out = []
    for line in text.split("\n"):
        line = _TIME.sub("HH:MM:SS", line)
        line = _DATE.sub("YYYY-MM-DD", line)
        line = _TIMER.sub(lambda m: f"{m.group(1)}{m.group(2)}N/{m.group(3)}", line)
        line = _MEM.sub(lambda m: m.group(1) + "<size>", line)
        out.append(line)
    return "\n".join(out)


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def pid_gone(pid: int) -> bool:
    """True once ``pid`` has exited: no such process, or a zombie.  A daemon (BIRD forks
    into the background) is not our child but init's, and an init that reaps orphans late
    (this VM's reaps them about every 2 s) would leave a plain ``kill(pid, 0)`` succeeding
    on the corpse long after the daemon is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def stop_pid_file(pid_file: Path, timeout: float = 5.0) -> None:
    """SIGTERM the daemon whose pid ``pid_file`` holds, SIGKILL it after ``timeout`` s."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
