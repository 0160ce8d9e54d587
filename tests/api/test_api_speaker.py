"""Speaker.snapshot and the metrics of two real speakers with an eBGP session on loopback."""

import asyncio
import socket
import tempfile
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bgpd.config import parse
from bgpd.speaker import Speaker
from bgpd.speaker.status import snapshot

A, B = "127.0.0.141", "127.0.0.142"


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _cfg(router_id, asn, address, port, peer, peer_asn, networks, neighbor=None, **top):
    return parse(
        {
            "router_id": router_id,
            "asn": asn,
            "listen": [{"address": address, "port": port}],
            "control_socket": tempfile.mktemp(prefix="bgpd-test-", suffix=".sock"),
            "networks": networks,
            "neighbors": [
                {"address": peer, "asn": peer_asn, "port": port, "connect_retry": 1}
                | (neighbor or {}),
            ],
            **top,
        }
    )


async def _until(pred, timeout=8.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


@pytest.fixture
async def pair():
    port = free_port(A)
    mport = free_port("127.0.0.1")
    a = Speaker(
        _cfg(
            "10.0.0.1",
            65001,
            A,
            port,
            B,
            65002,
            ["10.1.0.0/24", "10.1.1.0/24", "2001:db8:1::/48"],
            # An IPv4 loopback session carries the IPv6 route with this next hop.
            neighbor={"next_hop_ipv6": "2001:db8::1"},
            metrics={"address": "127.0.0.1", "port": mport},
        ),
        loop=asyncio.get_running_loop(),
    )
    b = Speaker(
        _cfg("10.0.0.2", 65002, B, port, A, 65001, ["10.2.0.0/24"]),
        loop=asyncio.get_running_loop(),
    )
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def test_snapshot_and_metrics_of_an_established_session(pair):
    a, b = pair
    assert a.command("health")["ready"] is False  # not Established yet, within the first 30 s
    assert await _until(lambda: a.neighbors[B].session.established)
    assert await _until(lambda: len(b.rde.rib.loc[(1, 1)]) == 3 and len(a.rde.rib.loc[(1, 1)]) == 3)

    snap = snapshot(a)
    (n,) = snap["neighbors"]
    assert n["address"] == B and n["asn"] == 65002 and n["state"] == "Established"
    assert n["enabled"] is True and n["dynamic"] is False
    # B sends its one IPv4 network; A advertises its two IPv4 and one IPv6 networks
    assert n["prefixes"] == {"received": 1, "accepted": 1, "advertised": 3}
    assert a.command("show_neighbors", address=B)["neighbors"][0]["prefixes"] == n["prefixes"]
    assert n["messages"]["in"]["open"] == 1 and n["messages"]["out"]["open"] == 1
    assert n["updates"]["out"] >= 1 and n["updates"]["in"] >= 1
    assert n["updates"]["in"] == n["messages"]["in"]["update"]
    assert snap["rib"] == {"ipv4": 3, "ipv6": 1}
    assert snap["fib"] is None  # no FIB writer
    assert snap["reloads"] == {"ok": 0, "error": 0, "last_timestamp": None, "last_result": None}
    assert "prefixes" not in snapshot(a, prefixes=False)["neighbors"][0]

    h = a.command("health")
    assert (h["live"], h["ready"]) == (True, True)
    assert h["reason"] == "ready: 1 of 1 neighbors Established"
    assert a.command("health") == h  # what the control socket answers

    url = f"http://127.0.0.1:{a.metrics.port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
    }

    def who(**more):
        return tuple(sorted({"asn": "65002", "neighbor": B, **more}.items()))

    assert got[("bgpd_neighbor_state", who())] == 6
    assert got[("bgpd_neighbor_up", who())] == 1
    assert got[("bgpd_neighbor_prefixes", who(direction="advertised"))] == 3
    assert got[("bgpd_neighbor_prefixes", who(direction="received"))] == 1
    assert got[("bgpd_rib_routes", (("family", "ipv6"),))] == 1
    assert got[("bgpd_ready", ())] == 1

    # The session goes down: a flap, and not ready any more (every neighbor, first 30 s).
    b.neighbors[A].session.stop()
    assert await _until(lambda: not a.neighbors[B].session.established)
    snap = snapshot(a)
    assert snap["neighbors"][0]["flaps"] == 1
    assert snap["neighbors"][0]["prefixes"]["advertised"] == 0
    assert a.command("health")["ready"] is False


async def test_reload_counts_reach_the_snapshot(pair, tmp_path):
    a, _ = pair
    a.config_path = str(tmp_path / "missing.yaml")
    assert a.reload()["ok"] is False
    r = snapshot(a, prefixes=False)["reloads"]
    assert (r["ok"], r["error"], r["last_result"]) == (0, 1, "error")


class FakeFib:
    """The parts of bgpd.kernel.fib.FibWriter the snapshot reads."""

    stats = {"added": 12, "failed": 2, "resyncs": 1}

    def count(self):
        return 10


async def test_fib_in_the_snapshot(tmp_path):
    s = Speaker(_cfg("10.0.0.9", 65009, A, 179, B, 65002, []), loop=asyncio.get_running_loop())
    assert snapshot(s)["fib"] is None  # no FIB writer: the fib metrics are left out
    s.kernel = type("Kernel", (), {"fib": FakeFib()})()  # the kernel service holding it
    assert snapshot(s)["fib"] == {"routes": 10, "sync_errors": 2}
    s.kernel.fib = None  # kernel service without route installation
    assert snapshot(s)["fib"] is None
