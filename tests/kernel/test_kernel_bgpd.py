"""Two bgpd daemons in two namespaces joined by a veth pair, end to end.

B learns a blackhole another program adds (``ip route add blackhole``) and its connected
networks (one interface excluded by a glob) and announces them over BGP; A installs what it
receives into its kernel table with protocol ``bgp``. Then A is killed with SIGKILL: its
routes stay; a restarted A adopts them, keeps those B announces again without rewriting
them, and sweeps the others after End-of-RIB. Each daemon is ``ip netns exec NS python -m
bgpd.cli.main run``, signalled only by the pid this test started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kernel_helpers import popen, wait_sync

from bgpd.api.client import ApiError, request

ROOT = Path(__file__).resolve().parents[2]


class Daemon:
    def __init__(self, ns, workdir: Path, name: str, config: dict) -> None:
        self.ns = ns
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "bgpd.sock"
        self.log = self.dir / "bgpd.log"
        self.config = {**config, "control_socket": str(self.sock)}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> Daemon:
        cfg = self.dir / "bgpd.yaml"
        cfg.write_text(yaml.safe_dump(self.config, sort_keys=False))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("BGPD_SOCKET", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "bgpd.cli.main"]
                + ["run", "-c", str(cfg), "--log-level", "debug"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

        def ready():
            assert self.proc.poll() is None, f"bgpd exited\n{self.tail()}"
            with contextlib.suppress(ApiError, OSError):
                return request(str(self.sock), "ping", timeout=2).get("pong")
            return False

        wait_sync(ready, timeout, what=f"bgpd in {self.ns.name}")
        return self

    def request(self, command: str, args: dict | None = None):
        return request(str(self.sock), command, args)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def events(self) -> list[dict]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-n:]
        return f"--- {self.dir.name} log ---\n" + "\n".join(lines)


@pytest.fixture
def daemons():
    made: list[Daemon] = []
    try:
        yield made
    finally:
        for d in made:
            try:
                d.kill()
            except Exception:
                pass
            sys.stderr.write(d.tail() + "\n")


def test_end_to_end_learn_announce_install_kill_restart(namespaces, daemons, tmp_path):
    A, B = namespaces(), namespaces()
    namespaces.veth(A, "a0", B, "b0")
    A.up("a0", "10.0.0.1/24")
    B.up("b0", "10.0.0.2/24")
    namespaces.veth(B, "b1", None, "b2")
    B.up("b1", "172.16.1.1/24")
    B.up("b2", "172.16.2.1/24")
    B.ip("route", "add", "blackhole", "10.244.12.0/26")  # before B starts: from the dump

    common = {"connect_retry": 1, "hold_time": 9}
    b = Daemon(
        B,
        tmp_path,
        "B",
        {
            "router_id": "10.0.0.2",
            "asn": 65002,
            "listen": [{"address": "10.0.0.2"}],
            # passive: after A's kill both sides sit out an idle hold; a passive B is ready
            # to accept as soon as its own is over
            "neighbors": [{"address": "10.0.0.1", "asn": 65001, "passive": True}],
            "host_routes": {
                "kernel": {"prefixes": ["10.244.0.0/16 le 32"]},
                "connected": {"interfaces": ["-b2", "*"]},
            },
            **common,
        },
    )
    a = Daemon(
        A,
        tmp_path,
        "A",
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "listen": [{"address": "10.0.0.1"}],
            "neighbors": [{"address": "10.0.0.2", "asn": 65002}],
            "kernel": {"sweep_timeout": 60},
            **common,
        },
    )
    daemons += [b, a]
    b.start()
    a.start()
    B.ip("route", "add", "blackhole", "10.244.13.0/26")  # while running: from an event

    want = [
        "10.244.12.0/26 via 10.0.0.2 dev a0",
        "10.244.13.0/26 via 10.0.0.2 dev a0",
        "172.16.1.0/24 via 10.0.0.2 dev a0",
    ]
    wait_sync(lambda: A.routes("proto", "bgp") == want, 20, what=f"A's routes {want}")
    # b2 is excluded by the glob: never learned, never announced
    b_routes = {r["prefix"]: r for r in b.request("show_routes")["routes"]}
    assert "172.16.2.0/24" not in b_routes
    assert b_routes["10.244.12.0/26"]["paths"][0]["source"] == "kernel"
    assert b_routes["172.16.1.0/24"]["paths"][0]["source"] == "connected"
    # A received B's connected 10.0.0.0/24 too, but its own connected route stays
    a_routes = {r["prefix"] for r in a.request("show_routes")["routes"]}
    assert "10.0.0.0/24" in a_routes
    assert "10.0.0.0/24 dev a0 proto kernel scope link src 10.0.0.1" in A.routes()

    a.kill()
    assert A.routes("proto", "bgp") == want  # kill -9 leaves them in place
    B.ip("route", "del", "blackhole", "10.244.13.0/26")  # B will not announce it again
    A.ip("route", "add", "10.99.0.0/24", "via", "10.0.0.2", "proto", "bgp")  # stale, ours

    with popen(
        ["ip", "-n", A.name, "monitor", "route"],
        stdout=open(tmp_path / "monitor.txt", "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.DEVNULL,
    ) as mon:
        wait_sync(lambda: mon.poll() is None, 2)
        a.start()
        wait_sync(
            lambda: (
                A.routes("proto", "bgp")
                == ["10.244.12.0/26 via 10.0.0.2 dev a0", "172.16.1.0/24 via 10.0.0.2 dev a0"]
            ),
            20,
            what="the sweep after End-of-RIB",
        )
    adopted = [
        e for e in a.events() if e.get("event") == "kernel: adopted routes from a previous run"
    ]
    assert adopted and adopted[-1]["routes"] == 4
    conv = [e for e in a.events() if e.get("event") == "kernel: initial convergence"]
    assert conv[-1]["reason"] == "End-of-RIB from every neighbor"
    monitor = (tmp_path / "monitor.txt").read_text()
    assert "Deleted 10.244.13.0/26" in monitor and "Deleted 10.99.0.0/24" in monitor
    # what B announced again was adopted: never removed, never rewritten
    assert "10.244.12.0/26" not in monitor and "172.16.1.0/24" not in monitor

    a.stop()  # persist: a clean exit leaves them too
    assert A.routes("proto", "bgp") == [
        "10.244.12.0/26 via 10.0.0.2 dev a0",
        "172.16.1.0/24 via 10.0.0.2 dev a0",
    ]
    b.stop()


def pair(daemons, tmp_path, A, B, addresses, networks, common) -> tuple[Daemon, Daemon]:
    """bgpd in namespace B (AS 65002, announcing ``networks``) started, then in A (AS 65001,
    installing what it receives into its main table with protocol bgp), each listening on
    its address of ``addresses`` (A's, B's), peering with the other with the neighbor keys
    ``common``."""
    a_addr, b_addr = addresses
    b = Daemon(
        B,
        tmp_path,
        "B",
        {
            "router_id": "10.0.0.2",
            "asn": 65002,
            "listen": [{"address": b_addr}],
            "networks": networks,
            "neighbors": [{"address": a_addr, "asn": 65001, **common}],
        },
    ).start()
    daemons.append(b)
    a = Daemon(
        A,
        tmp_path,
        "A",
        {
            "router_id": "10.0.0.1",
            "asn": 65001,
            "listen": [{"address": a_addr}],
            "kernel": {"table": "main", "protocol": "bgp"},
            "neighbors": [{"address": b_addr, "asn": 65002, **common}],
        },
    ).start()
    daemons.append(a)
    return a, b


def first_path(d: Daemon, prefix: str) -> dict | None:
    """The first path ``d`` holds for ``prefix`` (``show_routes``), or None."""
    r = d.request("show_routes", {"prefix": prefix})["routes"]
    return r[0]["paths"][0] if r else None


def test_ipv6_routes_over_an_ipv4_session_take_the_interfaces_global_address(
    namespaces, daemons, tmp_path
):
    """Issue 19: an IPv6 route sent over an IPv4 session carried ::ffff:10.0.0.2, which no
    receiver can install. Now it carries the global IPv6 address of the interface that holds
    the session's IPv4 address (as BIRD and FRR do), found through netlink, and the receiver
    installs it through that address."""
    A, B = namespaces(), namespaces()
    namespaces.veth(A, "a0", B, "b0")
    A.up("a0", "10.0.0.1/24")
    B.up("b0", "10.0.0.2/24")
    A.ip("-6", "addr", "add", "2001:db8:ab::1/64", "dev", "a0", "nodad")
    B.ip("-6", "addr", "add", "2001:db8:ab::2/64", "dev", "b0", "nodad")
    common = {"connect_retry": 1, "hold_time": 9, "families": ["ipv4", "ipv6"]}
    a, _b = pair(
        daemons,
        tmp_path,
        A,
        B,
        ("10.0.0.1", "10.0.0.2"),
        ["2001:db8:99::/48", "10.99.0.0/24"],
        common,
    )

    def route6():
        return first_path(a, "2001:db8:99::/48")

    wait_sync(lambda: route6() is not None, 20, what="the IPv6 route at A")
    assert route6()["next_hop"] == "2001:db8:ab::2"
    wait_sync(
        lambda: (
            "2001:db8:99::/48 via 2001:db8:ab::2 dev a0"
            in " ".join(A.routes("proto", "bgp", family="-6"))
        ),
        15,
        what="the IPv6 route installed",
    )


def test_ipv4_routes_over_an_ipv6_session_with_extended_next_hop(namespaces, daemons, tmp_path):
    """RFC 8950 (issue 19): over an IPv6-only session with extended_next_hop on both ends,
    IPv4 routes go with the session's IPv6 address as next hop (in MP_REACH_NLRI)."""
    A, B = namespaces(), namespaces()
    namespaces.veth(A, "a0", B, "b0")
    A.ip("-6", "addr", "add", "2001:db8:ab::1/64", "dev", "a0", "nodad")
    B.ip("-6", "addr", "add", "2001:db8:ab::2/64", "dev", "b0", "nodad")
    A.up("a0")
    B.up("b0")
    common = {
        "connect_retry": 1,
        "hold_time": 9,
        "families": ["ipv4", "ipv6"],
        "extended_next_hop": True,
    }
    a, _b = pair(
        daemons, tmp_path, A, B, ("2001:db8:ab::1", "2001:db8:ab::2"), ["10.99.0.0/24"], common
    )

    def route4():
        return first_path(a, "10.99.0.0/24")

    wait_sync(lambda: route4() is not None, 20, what="the IPv4 route at A")
    assert route4()["next_hop"] == "2001:db8:ab::2"
    # installed as an IPv4 route via an IPv6 gateway (RTA_VIA)
    wait_sync(
        lambda: "10.99.0.0/24 via inet6 2001:db8:ab::2 dev a0" in A.routes("proto", "bgp"),
        15,
        what="the IPv4 route installed via IPv6",
    )
