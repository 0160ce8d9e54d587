"""Helpers of the kernel tests: namespaces, polling, processes, an in-memory kernel.

Namespaces, links and addresses are made with pyroute2 (netlink, no ``ip`` processes);
route listings are ``ip route show`` text, which is what the assertions compare.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import itertools
import os
import subprocess
import time

from pyroute2 import NetNS
from pyroute2 import netns as pr2netns

from bgpd.kernel.netlink import RTM_NEWROUTE, RouteMsg

_counter = itertools.count(1)


def _in_thread(fn, *args, **kw):
    """Run a pyroute2 call in a thread of its own: pyroute2's synchronous API drives an
    event loop of its own, which cannot run inside a test's running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(fn, *args, **kw).result(30)


def ip(*args: str, check: bool = True) -> str:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Netns:
    """One namespace: ``ns.ip("route", "add", ...)`` runs ``ip -n NAME route add ...``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def ip(self, *args: str, check: bool = True) -> str:
        return ip("-n", self.name, *args, check=check)

    def routes(self, *selector: str, family: str = "-4") -> list[str]:
        """``ip -n NAME [-4|-6] route show SELECTOR`` as lines (multipath routes are one
        line each, their ``nexthop`` lines joined)."""
        out = ip("-n", self.name, family, "route", "show", *selector)
        lines: list[str] = []
        for line in out.splitlines():
            if line.startswith(("\t", " ")) and lines:
                lines[-1] += " " + line.strip()
            elif line.strip():
                lines.append(line.strip())
        return lines

    def route_count(self, *selector: str, family: str = "-4") -> int:
        return len(self.routes(*selector, family=family))

    def up(self, ifname: str, *addrs: str) -> None:
        """Set ``ifname`` up and add ``addrs`` (``"10.0.0.1/24"``, ``"2001:db8::1/64"``)."""
        _in_thread(self._up, ifname, addrs)

    def _up(self, ifname: str, addrs) -> None:
        with NetNS(self.name) as nl:
            (idx,) = nl.link_lookup(ifname=ifname)
            nl.link("set", index=idx, state="up")
            for a in addrs:
                address, _, plen = a.partition("/")
                nl.addr("add", index=idx, address=address, prefixlen=int(plen or 128))

    def __repr__(self) -> str:
        return f"Netns({self.name})"


class Namespaces:
    def __init__(self) -> None:
        self.made: list[Netns] = []

    def __call__(self) -> Netns:
        name = f"bgpdt-{os.getpid()}-{next(_counter)}"
        _in_thread(pr2netns.create, name)
        ns = Netns(name)
        self.made.append(ns)
        ns.up("lo")
        return ns

    def veth(self, a: Netns, a_if: str, b: Netns | None, b_if: str) -> None:
        """A veth pair, created inside ``a`` (never in the host's namespace); the peer
        goes to ``b`` (None: stays in ``a``)."""
        peer: dict = {"ifname": b_if}
        if b is not None and b is not a:
            peer["net_ns_fd"] = b.name

        def add():
            with NetNS(a.name) as nl:
                nl.link("add", ifname=a_if, kind="veth", peer=peer)

        _in_thread(add)

    def close(self) -> None:
        for ns in reversed(self.made):
            with contextlib.suppress(OSError):
                _in_thread(pr2netns.remove, ns.name)
        self.made.clear()


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = ""):
    """Poll ``predicate()`` on the event loop until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


def wait_sync(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@contextlib.contextmanager
def popen(cmd: list[str], **kw):
    """A process that is killed (by its own pid) when the block ends."""
    p = subprocess.Popen(cmd, **kw)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        with contextlib.suppress(Exception):
            p.wait(5)


class FakeKernel:
    """The FIB writer's channel (``apply``, ``dump_routes``, ``close``) over a dict, with
    errors on demand: ``fail[dst] = errno`` refuses adds of that prefix, ``enobufs = True``
    loses the answers of the next batch (after applying it)."""

    def __init__(self) -> None:
        self.routes: dict = {}  # (family, dst, metric) -> KernelRoute
        self.fail: dict = {}
        self.enobufs = False
        self.batches: list[list] = []
        self.closed = False

    def apply(self, requests):
        self.batches.append(list(requests))
        failures = []
        for i, (op, r) in enumerate(requests):
            key = (r.family, r.dst, r.metric)
            if op == RTM_NEWROUTE:
                err = self.fail.get(r.dst)
                if err:
                    failures.append((i, err, f"injected {errno.errorcode[err]}"))
                    continue
                self.routes[key] = r
            else:
                cur = self.routes.get(key)
                if cur is None or cur.protocol != r.protocol or cur.table != r.table:
                    failures.append((i, errno.ESRCH, "No such process"))
                else:
                    del self.routes[key]
        if self.enobufs:
            self.enobufs = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return failures

    async def dump_routes(self, table: int, protocol: int):
        return [
            RouteMsg(r.family, r.dst, r.table, r.protocol, 0, r.type, r.metric, r.nexthops)
            for r in self.routes.values()
            if r.table == table and r.protocol == protocol
        ]

    def close(self) -> None:
        self.closed = True

    def by_dst(self) -> dict:
        return {r.dst: r for r in self.routes.values()}
