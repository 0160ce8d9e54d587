"""What the daemon-running test directories (tests/interop, tests/gr, tests/monitoring) share:
loopback addresses of their own, and the daemons a test started, stopped at its teardown."""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
from typing import Any

from peers import tcp_port_free

KEEP_ENV = "BGPD_KEEP_PEER_DIRS"  # set: keep the daemons' work directories (to read them)


def worker_address(last: int) -> str:
    """``127.0.0.<last>``, or ``127.0.<N+1>.<last>`` on pytest-xdist worker ``gwN`` (what a
    helper running the tests beside another sets, so that neither meets the other's)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    third = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    return f"127.0.{third}.{last}"


class AddressPool:
    """Hands out unique loopback addresses from ``start`` up to ``end``, never .0, .1 or
    .255 of a /24, skipping addresses where something already listens on ``port``."""

    def __init__(self, start: str, end: str = "127.255.255.254", port: int = 179) -> None:
        self._next = int(ipaddress.IPv4Address(start))
        self._end = int(ipaddress.IPv4Address(end))
        self.port = port
        self.handed_out: list[str] = []

    def allocate(self) -> str:
        while self._next <= self._end:
            addr = ipaddress.IPv4Address(self._next)
            self._next += 1
            if int(addr) & 0xFF in (0, 1, 255):
                continue
            text = str(addr)
            if tcp_port_free(text, self.port):
                self.handed_out.append(text)
                return text
        raise RuntimeError(f"loopback address pool exhausted ({ipaddress.IPv4Address(self._end)})")

    __call__ = allocate


class Daemons:
    """Everything a test started (bgpd, BIRD, GoBGP, FRR, collectors), stopped at teardown in
    reverse order, their log tails printed when the test failed, their work directories
    removed (kept with BGPD_KEEP_PEER_DIRS=1)."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def add(self, d):
        self.made.append(d)
        return d

    def close(self, failed: bool) -> None:
        keep = bool(os.environ.get(KEEP_ENV))
        for d in reversed(self.made):
            try:
                d.stop()
            except Exception as e:  # keep stopping the others
                sys.stderr.write(f"stopping {d!r}: {e}\n")
            if failed:
                tail = d.log_tail(120) if hasattr(d, "log_tail") else d._log_tail(120)
                sys.stderr.write(f"\n{tail}\n")
            workdir = getattr(d, "workdir", None)
            if workdir is not None and not keep:
                shutil.rmtree(workdir, ignore_errors=True)
            elif workdir is not None:
                sys.stderr.write(f"kept {d!r} work dir {workdir}\n")
